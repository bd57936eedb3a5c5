"""BiGAN (Donahue, Krähenbühl & Darrell 2017, "Adversarial Feature Learning"; the same model is
ALI, Dumoulin et al. 2017, "Adversarially Learned Inference"): a GAN with an encoder.

Course: :ref:`ch3b-bigan`. A GAN's generator G maps codes to images but nothing maps images
back to codes. BiGAN trains an encoder E beside G, and a discriminator D(x, z) that sees
pairs: it must tell data with its encoding, (x, E(x)), from samples with their code,
(G(z), z). The two joint distributions can only be matched when E inverts G (BiGAN,
section 3), so E learns a code of images without labels.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ..augment import generative_views
from ..backbones import ConvGenerator, ConvNet
from ..data import Batch
from ..losses.adversarial import discriminator_loss
from .base import CourseContext, Method, MethodSpec, feature_dim
from .gan import eval_mode, like, sample_std


class JointDiscriminator(nn.Module):
    """D(x, z): a small ConvNet on x whose pooled features are concatenated with an MLP of z,
    then an MLP to one logit (LeakyReLU 0.2, as in DCGAN's discriminator).

    Args:
        latent_dim: size of z.
        width, depth: the image ConvNet's (``backbones.ConvNet``).
        hidden_dim: width of both MLPs.
    """

    def __init__(self, latent_dim: int, width: int = 16, depth: int = 3, hidden_dim: int = 128) -> None:
        super().__init__()
        self.image = ConvNet(width=width, depth=depth)
        self.code = nn.Sequential(nn.Linear(latent_dim, hidden_dim), nn.LeakyReLU(0.2),
                                  nn.Linear(hidden_dim, hidden_dim), nn.LeakyReLU(0.2))
        self.joint = nn.Sequential(nn.Linear(self.image.feature_dim + hidden_dim, hidden_dim), nn.LeakyReLU(0.2),
                                   nn.Linear(hidden_dim, 1))

    def forward(self, x: Tensor, z: Tensor) -> Tensor:
        """Return the logits (B,) of pairs: images ``x`` (B, 3, H, W), codes ``z`` (B, latent_dim)."""
        return self.joint(torch.cat([self.image(x), self.code(z)], dim=1)).squeeze(1)


class BiGAN(Method):
    """Encoder E = ``backbone`` + linear map to the latent (the ``projection_head``); generator
    G = ``ConvGenerator``; joint discriminator D = ``JointDiscriminator``.

    ``encode(x)`` = h, the backbone's pooled features (what every method of the course is probed
    on; BiGAN's own transfer experiments read E's convolutional features); ``embed(x)`` = E(x) =
    z, the latent code, on which the collapse diagnostics are measured. Players: "discriminator"
    (D) and "generator" (G and E together). D minimises the cross-entropy of calling (x, E(x))
    real and (G(z), z) fake; G and E minimise it with the labels swapped (the non-saturating form
    for both pairs). The prior is N(0, I), ALI's: E's output is an unbounded linear map, and a
    bounded prior (BiGAN's uniform) would let D reject any code outside its support.

    Args:
        backbone: the encoder's trunk, with ``feature_dim`` (``backbones.ConvNet``).
        latent_dim: size of z (100, the course's DCGAN's).
        image_size: side of the generated images, a multiple of 4 (resized to the data's when
            it differs, as in ``DCGAN``).
        generator_width: the generator's last block width (default feature_dim / 8, at least 8).
        disc_width, disc_depth, disc_hidden: the joint discriminator's sizes.
        lr_scale: learning rate multiplier of both players.
    """

    players = ("discriminator", "generator")

    def __init__(self, backbone: nn.Module, latent_dim: int = 100, image_size: int = 32,
                 generator_width: int | None = None, disc_width: int = 16, disc_depth: int = 3,
                 disc_hidden: int = 128, lr_scale: float = 1.0) -> None:
        d = feature_dim(backbone)
        super().__init__(backbone, nn.Linear(d, latent_dim))
        self.generator = ConvGenerator(latent_dim, 3, image_size, generator_width or max(d // 8, 8))
        self.discriminator = JointDiscriminator(latent_dim, disc_width, disc_depth, disc_hidden)
        self.latent_dim, self.image_size, self.lr_scale = latent_dim, image_size, lr_scale

    def encoder_parameters(self) -> list[nn.Parameter]:
        return [*self.backbone.parameters(), *self.projection_head.parameters()]

    def param_groups(self) -> list[dict]:
        # No weight decay, as DCGAN (BiGAN's and ALI's networks follow its recipe).
        return [{"params": list(self.discriminator.parameters()), "lr_scale": self.lr_scale, "weight_decay": 0.0,
                 "player": "discriminator"},
                {"params": [*self.generator.parameters(), *self.encoder_parameters()], "lr_scale": self.lr_scale,
                 "weight_decay": 0.0, "player": "generator"}]

    def latent(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        """Return n codes (n, latent_dim) from the prior N(0, I)."""
        device = self.projection_head.weight.device
        return torch.randn(n, self.latent_dim, generator=generator, device=device)

    def training_step(self, batch: Batch, player: str = "discriminator") -> dict[str, Tensor]:
        """One player's step on ``batch.views[0]`` (B, 3, H, W): "loss", "d_real_prob" (mean D on
        (x, E(x))), "d_fake_prob" (on (G(z), z)), "sample_std" and the collapse diagnostics of
        z = E(x). Without ``player``: the discriminator's step."""
        if player not in self.players:
            raise ValueError(f"unknown player {player!r}; valid: {', '.join(self.players)}")
        real = batch.views[0]
        code = self.latent(len(real))
        with torch.no_grad() if player == "discriminator" else torch.enable_grad():  # E and G: own step only
            encoded = self.embed(real)
            fake = like(torch.sigmoid(self.generator(code)), real)
        real_logits, fake_logits = self.discriminator(real, encoded), self.discriminator(fake, code)
        if player == "discriminator":
            loss = discriminator_loss(real_logits, fake_logits)
        else:
            loss = discriminator_loss(fake_logits, real_logits)  # the labels swapped
        with torch.no_grad():
            probs = {"d_real_prob": torch.sigmoid(real_logits.float()).mean(),
                     "d_fake_prob": torch.sigmoid(fake_logits.float()).mean()}
        return {"loss": loss, **probs, "sample_std": sample_std(fake), **self.collapse_diagnostics(encoded)}

    def sample(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        """Return n generated images G(z) (n, 3, image_size, image_size) in [0, 1], z from the
        prior (seeded by ``generator`` when given), G in eval mode."""
        with eval_mode(self.generator):
            return torch.sigmoid(self.generator(self.latent(n, generator)))

    def reconstruct(self, x: Tensor) -> Tensor:
        """Return G(E(x)) (B, 3, image_size, image_size) in [0, 1] for images ``x`` (B, 3, H, W),
        E and G in eval mode: a BiGAN's reconstructions keep what E encodes, not necessarily the
        exact pixels (nothing asks G(E(x)) to equal x)."""
        with eval_mode(self.backbone, self.projection_head, self.generator):
            return torch.sigmoid(self.generator(self.embed(x)))


def _course_settings(context: CourseContext) -> dict:
    return {"image_size": context.image_size or 32, "lr_scale": 0.1}


# latent_dim 100 and lr_scale 0.1 (Adam's 2e-4 at the profiles' 2e-3): DCGAN's recipe, which
# BiGAN and ALI follow. image_size: the profile's, else 32. One view, the whole image.
SPEC = MethodSpec(name="bigan", method=BiGAN, settings=_course_settings, views=generative_views)
