"""Autoencoders: plain, linear, sparse and denoising (Course: :ref:`ch3-autoencoders`).

An encoder f maps an image to a code z = f(x), a decoder g maps the code back, and the loss is
the squared reconstruction error (``losses.reconstruction_error``). Without a constraint the
pair can learn the identity, so every variant adds one: a code narrower than the input (the
bottleneck), an L1 penalty on the code (sparse), or corrupted inputs with clean targets
(denoising, Vincent et al. 2008). The code is the representation: ``encode(x) = z``.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..augment import generative_views
from ..backbones import ConvGenerator, resize_to
from ..data import Batch
from ..losses.generative import l1_sparsity, reconstruction_error
from .base import CourseContext, Method, MethodSpec, feature_dim

CORRUPTIONS = ["mask", "gaussian"]


class CodeEncoder(nn.Module):
    """A convolutional trunk's feature map, average-pooled to a ``grid`` x ``grid`` map (so the
    code still knows roughly *where* things are, which global pooling would discard), flattened
    and mapped linearly to ``out_dim`` numbers.

    Args:
        trunk: a network with ``feature_map(x)`` and ``feature_dim`` (``backbones.ConvNet``).
        out_dim: size of the output (the code; a VAE asks for 2k: means and log-variances).
        grid: side of the pooled map.
    """

    def __init__(self, trunk: nn.Module, out_dim: int, grid: int = 2) -> None:
        super().__init__()
        if not hasattr(trunk, "feature_map"):
            raise TypeError(f"{type(trunk).__name__} has no feature_map: the encoder reads the trunk's spatial map "
                            "(use backbones.ConvNet)")
        self.trunk, self.grid, self.feature_dim = trunk, grid, out_dim
        self.linear = nn.Linear(feature_dim(trunk) * grid * grid, out_dim)

    def forward(self, x: Tensor) -> Tensor:
        pooled = F.adaptive_avg_pool2d(self.trunk.feature_map(x), self.grid)
        return self.linear(pooled.flatten(1))


class PixelEncoder(nn.Sequential):
    """Flattened pixels -> code: one linear map (``hidden_dim=0``) or linear -> ReLU -> linear."""

    def __init__(self, input_dim: int, code_dim: int, hidden_dim: int = 0) -> None:
        layers = ([nn.Linear(input_dim, code_dim)] if hidden_dim == 0 else
                  [nn.Linear(input_dim, hidden_dim), nn.ReLU(inplace=True), nn.Linear(hidden_dim, code_dim)])
        super().__init__(nn.Flatten(), *layers)
        self.feature_dim = code_dim


class PixelDecoder(nn.Sequential):
    """Code -> pixels of ``shape`` (C, H, W), mirroring ``PixelEncoder``."""

    def __init__(self, code_dim: int, shape: tuple[int, int, int], hidden_dim: int = 0) -> None:
        d = math.prod(shape)
        layers = ([nn.Linear(code_dim, d)] if hidden_dim == 0 else
                  [nn.Linear(code_dim, hidden_dim), nn.ReLU(inplace=True), nn.Linear(hidden_dim, d)])
        super().__init__(*layers, nn.Unflatten(1, shape))


def corrupt(x: Tensor, kind: str, level: float, generator: torch.Generator | None = None) -> Tensor:
    """Return a corrupted copy of images ``x`` (B, C, H, W) in [0, 1] for a denoising autoencoder:
    "mask" sets a fraction ``level`` of the pixels (all channels of a pixel together) to 0, the
    masking noise of Vincent et al. (2008); "gaussian" adds N(0, level^2) noise and clips to [0, 1]."""
    if kind not in CORRUPTIONS:
        raise ValueError(f"unknown corruption {kind!r}; valid: {', '.join(CORRUPTIONS)}")
    if level == 0:
        return x
    if kind == "mask":
        if not 0 <= level < 1:
            raise ValueError(f"a masking level is a fraction in [0, 1), got {level}")
        keep = torch.rand((x.shape[0], 1, *x.shape[2:]), generator=generator, device=x.device) >= level
        return x * keep
    noise = torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)
    return (x + level * noise).clamp(0, 1)


class Autoencoder(Method):
    """Encoder -> code z -> decoder; loss = ``reconstruction_error`` (+ ``sparsity`` x
    ``l1_sparsity(z)``), the input corrupted by ``corruption`` at ``noise_level`` when that is > 0.

    The backbone is the encoder and its output is the code, so z = h = ``encode(x)`` (the
    projection head is the identity). Built from a convolutional trunk (the course's ConvNet),
    the encoder is a ``CodeEncoder`` and the decoder a ``ConvGenerator`` whose output goes
    through a sigmoid; ``pixel_autoencoder`` builds the linear and MLP variants on raw pixels.

    Args:
        backbone: a trunk with ``feature_map`` (wrapped in a ``CodeEncoder``), or, with
            ``decoder`` given, the whole encoder (its ``feature_dim`` is the code size).
        code_dim: size of the code (the bottleneck).
        image_size: side of the images the decoder paints (a multiple of 4).
        sparsity: weight of the L1 penalty on the code (0: none).
        noise_level: the corruption's level (0: a plain autoencoder).
        corruption: "mask" (Vincent et al. 2008's masking noise) or "gaussian".
        decoder: a decoder from codes to images; None builds a ``ConvGenerator``.
        sigmoid_output: squash the decoder's output to [0, 1] (off for the linear autoencoder).
    """

    def __init__(self, backbone: nn.Module, code_dim: int = 32, image_size: int = 32, sparsity: float = 0.0,
                 noise_level: float = 0.0, corruption: str = "mask", decoder: nn.Module | None = None,
                 sigmoid_output: bool = True) -> None:
        if corruption not in CORRUPTIONS:
            raise ValueError(f"unknown corruption {corruption!r}; valid: {', '.join(CORRUPTIONS)}")
        if decoder is None:
            width = getattr(backbone, "feature_dim", 64) // 8  # the ConvNet's first-block width at depth 4
            decoder = ConvGenerator(code_dim, 3, image_size, max(width, 8))
            backbone = CodeEncoder(backbone, code_dim)
        super().__init__(backbone)
        self.decoder, self.sigmoid_output = decoder, sigmoid_output
        self.sparsity, self.noise_level, self.corruption = sparsity, noise_level, corruption

    def decode(self, z: Tensor, size: tuple[int, int] | None = None) -> Tensor:
        """Return the images decoded from codes ``z`` (B, k), resized to ``size`` if given."""
        out = self.decoder(z)
        if size is not None:
            out = resize_to(out, size)
        return torch.sigmoid(out) if self.sigmoid_output else out

    def reconstruct(self, x: Tensor) -> Tensor:
        """Return g(f(x)) for images ``x`` (B, C, H, W), uncorrupted: what the pictures show."""
        return self.decode(self.encode(x), tuple(x.shape[-2:]))

    def training_step(self, batch: Batch) -> dict[str, Tensor]:
        x = batch.views[0]
        z = self.encode(corrupt(x, self.corruption, self.noise_level) if self.noise_level > 0 else x)
        reconstruction = reconstruction_error(self.decode(z, tuple(x.shape[-2:])), x)
        penalty = l1_sparsity(z)
        loss = reconstruction + self.sparsity * penalty if self.sparsity > 0 else reconstruction
        return {"loss": loss, "reconstruction": reconstruction.detach(), "code_l1": penalty.detach(),
                **self.collapse_diagnostics(z)}


def pixel_autoencoder(shape: tuple[int, int, int], code_dim: int, hidden_dim: int = 0, **kwargs: object) -> Autoencoder:
    """Return an autoencoder on flattened pixels of ``shape`` (C, H, W): linear encoder and decoder
    with no output squashing (``hidden_dim=0``: the linear autoencoder whose optimum spans the
    principal subspace, Course: :ref:`ch3-linear-ae`), else one hidden ReLU layer each way."""
    encoder = PixelEncoder(math.prod(shape), code_dim, hidden_dim)
    decoder = PixelDecoder(code_dim, shape, hidden_dim)
    kwargs.setdefault("sigmoid_output", hidden_dim > 0)
    return Autoencoder(encoder, code_dim, decoder=decoder, **kwargs)


def _settings(context: CourseContext) -> dict[str, object]:
    # A 32-number code: far below the 1,200 pixel values of a 20 px image, far above the shapes'
    # dozen generating factors; the chapter sweeps it.
    return {"code_dim": 32, "image_size": context.image_size or 32}


SPEC = MethodSpec(name="autoencoder", method=Autoencoder, settings=_settings, views=generative_views)
