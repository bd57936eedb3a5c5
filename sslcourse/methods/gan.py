"""DCGAN (Radford, Metz & Chintala 2016, "Unsupervised Representation Learning with Deep
Convolutional Generative Adversarial Networks"): a GAN (Goodfellow et al. 2014) whose
discriminator is a convolutional encoder, read afterwards as a representation.

Course: :ref:`ch3b-gan`. The discriminator is the backbone (a ``ConvNet``, its pooled features
h are what the chapter probes) plus a linear critic giving one logit; the generator is
``backbones.ConvGenerator``. The two players take turns through ``fit``'s players path, with
the cross-entropy and non-saturating losses of ``losses.adversarial``. This module also holds
what the course's generative models share: the sampling helpers.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch
from torch import Tensor, nn

from ..augment import generative_views
from ..backbones import ConvGenerator, resize_to
from ..data import Batch
from ..losses.adversarial import discriminator_loss, generator_loss
from .base import CourseContext, Method, MethodSpec, feature_dim

_NORMS = (nn.BatchNorm1d, nn.BatchNorm2d, nn.SyncBatchNorm)


@contextlib.contextmanager
def running_stats_frozen(module: nn.Module) -> Iterator[None]:
    """Within the block, ``module``'s batch norms still normalise with batch statistics but keep
    their running statistics (momentum 0): a discriminator's pass on generated images then does
    not shift the statistics that ``encode`` (eval mode) applies to real ones."""
    norms = [m for m in module.modules() if isinstance(m, _NORMS) and m.track_running_stats]
    saved = [(m.momentum, m.num_batches_tracked.clone()) for m in norms]  # the count too: as if never run
    for m in norms:
        m.momentum = 0.0
    try:
        yield
    finally:
        for m, (momentum, count) in zip(norms, saved, strict=True):
            m.momentum = momentum
            m.num_batches_tracked.copy_(count)


@contextlib.contextmanager
def eval_mode(*modules: nn.Module) -> Iterator[None]:
    """Within the block, ``modules`` are in eval mode and no gradient is recorded; each gets its
    own mode back afterwards (sampling in the middle of training leaves training as it was)."""
    modes = [[m.training for m in module.modules()] for module in modules]
    for module in modules:
        module.eval()
    try:
        with torch.no_grad():
            yield
    finally:
        for module, mode in zip(modules, modes, strict=True):
            for m, training in zip(module.modules(), mode, strict=True):
                m.training = training


def like(images: Tensor, real: Tensor) -> Tensor:
    """Return generated ``images`` at the side of the ``real`` batch (bilinear; unchanged when the
    sizes agree), so a model built for one size still trains on another: the discriminator
    then compares images of one size."""
    return resize_to(images, real.shape[-2:], antialias=True)


def sample_std(images: Tensor) -> Tensor:
    """Return the spread of generated ``images`` (B, C, H, W) across the batch: the per-pixel std
    over samples, averaged. It falls towards 0 when the generator collapses onto a few modes."""
    return images.detach().float().std(0).mean()


class DCGAN(Method):
    """Discriminator = ``backbone`` + ``critic`` (linear, one logit); generator = ``ConvGenerator``.

    z = h: the projection head is the identity, so ``embed(x)`` = ``encode(x)`` = the
    discriminator's pooled features of real images, and the collapse diagnostics measure them.
    The critic is a separate attribute, the discriminator's last layer, not a head to probe
    behind. Real and generated images go through the discriminator in separate batches (each
    normalised by its own batch statistics, as in DCGAN); only real ones update its running
    statistics (``running_stats_frozen``).

    Args:
        backbone: the discriminator's trunk, with ``feature_dim`` (``backbones.ConvNet``).
        latent_dim: size of the code z ~ U(-1, 1)^latent_dim (DCGAN: a 100-d uniform).
        image_size: side of the generated images, a multiple of 4; generated images are resized
            to the real batch's side when it differs (``like``).
        generator_width: the generator's last block width (default: feature_dim / 8, the first
            block width of a 4-block ConvNet, so the generator mirrors the discriminator as in
            DCGAN; at least 8).
        lr_scale: learning rate multiplier of both players (``fit``'s lr times this).
    """

    players = ("discriminator", "generator")

    def __init__(self, backbone: nn.Module, latent_dim: int = 100, image_size: int = 32,
                 generator_width: int | None = None, lr_scale: float = 1.0) -> None:
        super().__init__(backbone)
        d = feature_dim(backbone)
        self.critic = nn.Linear(d, 1)
        self.generator = ConvGenerator(latent_dim, 3, image_size, generator_width or max(d // 8, 8))
        self.latent_dim, self.image_size, self.lr_scale = latent_dim, image_size, lr_scale

    def param_groups(self) -> list[dict]:
        # No weight decay: DCGAN trains both players with plain Adam.
        return [{"params": [*self.backbone.parameters(), *self.critic.parameters()], "lr_scale": self.lr_scale,
                 "weight_decay": 0.0, "player": "discriminator"},
                {"params": list(self.generator.parameters()), "lr_scale": self.lr_scale, "weight_decay": 0.0,
                 "player": "generator"}]

    def latent(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        """Return n codes (n, latent_dim) from the prior U(-1, 1) (DCGAN's)."""
        device = self.critic.weight.device
        return torch.rand(n, self.latent_dim, generator=generator, device=device) * 2 - 1

    def generate(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        """Return n images (n, 3, image_size, image_size) in [0, 1], in the current mode, with
        gradients (what ``training_step`` uses; ``sample`` is for pictures)."""
        return torch.sigmoid(self.generator(self.latent(n, generator)))

    def critic_logits(self, x: Tensor, fake: bool = False) -> tuple[Tensor, Tensor]:
        """Return (the discriminator's pooled features h (B, feature_dim), logits (B,)) of ``x``;
        ``fake`` keeps the batch out of the running statistics."""
        with running_stats_frozen(self.backbone) if fake else contextlib.nullcontext():
            h = self.backbone(x)
        return h, self.critic(h).squeeze(1)

    def training_step(self, batch: Batch, player: str = "discriminator") -> dict[str, Tensor]:
        """One player's step on ``batch.views[0]`` (B, 3, H, W): "loss", "d_real_prob" and
        "d_fake_prob" (mean D on real and generated images), "sample_std" and the collapse
        diagnostics of z = h of the real images. Without ``player``: the discriminator's step."""
        if player not in self.players:
            raise ValueError(f"unknown player {player!r}; valid: {', '.join(self.players)}")
        real = batch.views[0]
        if player == "discriminator":
            with torch.no_grad():  # the generator is not this player: no graph through it
                fake = like(self.generate(len(real)), real)
            h, real_logits = self.critic_logits(real)
            _, fake_logits = self.critic_logits(fake, fake=True)
            loss = discriminator_loss(real_logits, fake_logits)
        else:
            fake = like(self.generate(len(real)), real)
            _, fake_logits = self.critic_logits(fake, fake=True)
            loss = generator_loss(fake_logits)
            with torch.no_grad():  # only for the diagnostics of real images
                h, real_logits = self.critic_logits(real)
        with torch.no_grad():
            probs = {"d_real_prob": torch.sigmoid(real_logits.float()).mean(),
                     "d_fake_prob": torch.sigmoid(fake_logits.float()).mean()}
        return {"loss": loss, **probs, "sample_std": sample_std(fake), **self.collapse_diagnostics(h)}

    def sample(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        """Return n generated images (n, 3, image_size, image_size) in [0, 1], the generator in
        eval mode (its running batch-norm statistics), seeded by ``generator`` when given."""
        with eval_mode(self.generator):
            return self.generate(n, generator)


def _course_settings(context: CourseContext) -> dict:
    return {"image_size": context.image_size or 32, "lr_scale": 0.1}


# latent_dim 100: DCGAN's. image_size: the profile's (20 px in ci/cpu), 32 (CIFAR's) when unknown.
# lr_scale 0.1: DCGAN's Adam learning rate 2e-4 at the profiles' lr of 2e-3 (fit keeps AdamW's
# beta1 = 0.9; DCGAN's is 0.5). One view, the whole image (generative_views).
SPEC = MethodSpec(name="dcgan", method=DCGAN, settings=_course_settings, views=generative_views)
