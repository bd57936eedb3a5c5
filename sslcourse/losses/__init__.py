"""Loss functions of the course: pure functions, one per equation, grouped by family.

Each docstring gives the returned value, the equation, the course section, the paper and
the tensor shapes. Nothing here calls ``torch.distributed``: under DDP the caller gathers
embeddings first (``sslcourse.distributed.gather_with_grad``) and passes the global batch.
Argument order is always (online/student/query, target/teacher/key); targets are detached
inside.
"""

from .adversarial import discriminator_loss, generator_loss
from .autoregressive import bits_per_dim, pixel_nll
from .colorization import ab_classification_loss, ab_regression_loss
from .contrastive import (
    clip_loss,
    cpc_info_nce,
    hard_negative_nt_xent,
    info_nce,
    margin_contrastive,
    nt_xent,
    supcon,
    triplet,
)
from .generative import (
    bernoulli_log_likelihood,
    beta_vae_loss,
    gaussian_kl,
    gaussian_log_likelihood,
    l1_sparsity,
    reconstruction_error,
    reparameterize,
)
from .masked import mae_loss, masked_reconstruction_loss, normalize_patches
from .noncontrastive import (
    barlow_twins,
    barlow_twins_terms,
    dino_center,
    dino_loss,
    negative_cosine,
    sinkhorn_knopp,
    swav_loss,
    vicreg,
    vicreg_covariance,
    vicreg_invariance,
    vicreg_terms,
    vicreg_variance,
    whiten,
    wmse,
)
from .video import colour_pointer, colour_propagation_loss, propagate

__all__ = [
    "ab_classification_loss", "ab_regression_loss",
    "barlow_twins", "barlow_twins_terms", "clip_loss", "cpc_info_nce", "dino_center", "dino_loss",
    "hard_negative_nt_xent", "info_nce", "margin_contrastive", "negative_cosine", "nt_xent", "sinkhorn_knopp",
    "supcon", "swav_loss", "triplet", "vicreg", "vicreg_covariance",
    "vicreg_invariance", "vicreg_terms", "vicreg_variance", "whiten", "wmse",
    "colour_pointer", "colour_propagation_loss", "propagate",
    "mae_loss", "masked_reconstruction_loss", "normalize_patches",
    "bernoulli_log_likelihood", "beta_vae_loss", "gaussian_kl", "gaussian_log_likelihood", "l1_sparsity",
    "reconstruction_error", "reparameterize",
    "discriminator_loss", "generator_loss", "bits_per_dim", "pixel_nll",
]
