"""Batched view generation on the device, with independent random parameters per image.

SSL methods see each image through two or more random "views". Standard pipelines make
them one image at a time on the CPU (PIL + torchvision in DataLoader workers), which is
the usual bottleneck of SSL training. Every function here transforms a whole float batch
(B, C, H, W) in [0, 1] at once on whatever device it lives on, drawing one set of random
parameters per image (Course: :ref:`ch5-positives` for what the views teach, :ref:`ch0-first-run`
for the recipe, :ref:`scaling-time` for the speed comparison, ``benchmarks/augment_throughput.py``).

Departures from torchvision, stated so results can be compared:
- random resized crop clamps an out-of-range box into the image instead of re-sampling
  up to ten times and falling back to a centre crop;
- colour jitter applies brightness, contrast, saturation, hue in this fixed order
  (torchvision shuffles the order per call), and hue is a rotation about the grey axis
  in YIQ space rather than a shift in HSV (close for small shifts, much cheaper).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

# ITU-R 601 luma weights, as in torchvision's rgb_to_grayscale.
_LUMA = (0.299, 0.587, 0.114)


def _uniform(lo: float, hi: float, n: int, device: torch.device) -> Tensor:
    return lo + (hi - lo) * torch.rand(n, device=device)


def _bernoulli(p: float, n: int, device: torch.device) -> Tensor:
    """(n, 1, 1, 1) boolean mask, True with probability p."""
    return (torch.rand(n, device=device) < p).view(n, 1, 1, 1)


def grayscale(x: Tensor) -> Tensor:
    """Return the luma of RGB batch ``x`` as (B, 1, H, W)."""
    r, g, b = x.unbind(1)
    return (_LUMA[0] * r + _LUMA[1] * g + _LUMA[2] * b).unsqueeze(1)


def random_resized_crop(
    x: Tensor, size: int, scale: tuple[float, float] = (0.08, 1.0),
    ratio: tuple[float, float] = (3 / 4, 4 / 3), flip_p: float = 0.5,
) -> Tensor:
    """Crop a random box of each image (area fraction in ``scale``, aspect in ``ratio``),
    flip it horizontally with probability ``flip_p`` and resize it to ``size`` (bilinear).

    Implemented as one affine sampling grid per image: box width/height become the grid's
    scale, the box centre its translation, a flip a negative x scale.
    """
    n, device = x.shape[0], x.device
    area = _uniform(*scale, n, device)
    log_r = _uniform(math.log(ratio[0]), math.log(ratio[1]), n, device)
    w = torch.sqrt(area * torch.exp(log_r)).clamp(max=1.0)  # fraction of the image width
    h = torch.sqrt(area / torch.exp(log_r)).clamp(max=1.0)
    cx = (torch.rand(n, device=device) * 2 - 1) * (1 - w)  # centre, in [-1, 1] grid units
    cy = (torch.rand(n, device=device) * 2 - 1) * (1 - h)
    flip = torch.where(torch.rand(n, device=device) < flip_p, -1.0, 1.0)
    theta = torch.zeros(n, 2, 3, device=device, dtype=x.dtype)
    theta[:, 0, 0], theta[:, 0, 2] = w * flip, cx
    theta[:, 1, 1], theta[:, 1, 2] = h, cy
    grid = F.affine_grid(theta, [n, x.shape[1], size, size], align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)


def _hue_matrices(shift: Tensor) -> Tensor:
    """(n, 3, 3) RGB->RGB matrices rotating chroma by ``shift`` turns in YIQ space."""
    to_yiq = torch.tensor([[0.299, 0.587, 0.114], [0.596, -0.274, -0.322], [0.211, -0.523, 0.312]],
                          device=shift.device)
    from_yiq = torch.linalg.inv(to_yiq)
    c, s = torch.cos(2 * math.pi * shift), torch.sin(2 * math.pi * shift)
    rot = torch.zeros(len(shift), 3, 3, device=shift.device)
    rot[:, 0, 0] = 1
    rot[:, 1, 1], rot[:, 1, 2], rot[:, 2, 1], rot[:, 2, 2] = c, -s, s, c
    return from_yiq @ rot @ to_yiq


def color_jitter(
    x: Tensor, brightness: float = 0.4, contrast: float = 0.4, saturation: float = 0.4,
    hue: float = 0.1, p: float = 0.8,
) -> Tensor:
    """Randomly change brightness, contrast, saturation and hue of each image (probability p).

    Factors are drawn per image: brightness, contrast and saturation from
    U[1 - s, 1 + s], the hue shift from U[-hue, hue] (in turns of the colour wheel).
    """
    n, device = x.shape[0], x.device
    y = x * _uniform(1 - brightness, 1 + brightness, n, device).view(n, 1, 1, 1)
    y = y.clamp(0, 1)
    mean = grayscale(y).mean(dim=(1, 2, 3), keepdim=True)
    y = ((y - mean) * _uniform(1 - contrast, 1 + contrast, n, device).view(n, 1, 1, 1) + mean).clamp(0, 1)
    gray = grayscale(y)
    y = ((y - gray) * _uniform(1 - saturation, 1 + saturation, n, device).view(n, 1, 1, 1) + gray).clamp(0, 1)
    if hue > 0:
        m = _hue_matrices(_uniform(-hue, hue, n, device)).to(y.dtype)
        y = torch.einsum("bij,bjhw->bihw", m, y).clamp(0, 1)  # b: image, i/j: colour channels
    return torch.where(_bernoulli(p, n, device), y, x)


def random_grayscale(x: Tensor, p: float = 0.2) -> Tensor:
    """Replace each image by its luma (repeated over RGB) with probability ``p``."""
    return torch.where(_bernoulli(p, x.shape[0], x.device), grayscale(x).expand_as(x), x)


def gaussian_blur(x: Tensor, p: float = 0.5, sigma: tuple[float, float] = (0.1, 2.0),
                  kernel_fraction: float = 0.1) -> Tensor:
    """Blur each image with probability ``p`` by a Gaussian of random std in ``sigma`` (pixels
    at 224 px, scaled to this image size), kernel about ``kernel_fraction`` of the image side.

    The per-image kernels run as one grouped convolution: (1, B*C, H, W) with B*C groups.
    """
    n, c, h, w = x.shape
    k = max(3, int(kernel_fraction * h) // 2 * 2 + 1)  # odd kernel size
    s = _uniform(*sigma, n, x.device) * (h / 224)  # SimCLR's sigma range is given for 224 px
    t = torch.arange(k, device=x.device, dtype=x.dtype) - k // 2
    kern = torch.exp(-(t.view(1, k) ** 2) / (2 * s.view(n, 1).clamp(min=1e-3) ** 2))
    kern = (kern / kern.sum(1, keepdim=True)).repeat_interleave(c, 0)  # (n*c, k)
    y = F.pad(x.reshape(1, n * c, h, w), (k // 2,) * 4, mode="reflect")
    y = F.conv2d(y, kern.view(n * c, 1, k, 1), groups=n * c)  # vertical pass
    y = F.conv2d(y, kern.view(n * c, 1, 1, k), groups=n * c)  # horizontal pass
    return torch.where(_bernoulli(p, n, x.device), y.view(n, c, h, w), x)


def solarize(x: Tensor, p: float = 0.2, threshold: float = 0.5) -> Tensor:
    """Invert pixels above ``threshold`` with probability ``p`` per image."""
    return torch.where(_bernoulli(p, x.shape[0], x.device) & (x >= threshold), 1 - x, x)


@dataclass(frozen=True)
class ViewRecipe:
    """The random transformations of one view, applied in the order of the fields.

    Defaults are SimCLR's (Chen et al. 2020, appendix A): crop scale (0.08, 1), flip 0.5,
    colour jitter (0.4, 0.4, 0.4, 0.1) with p = 0.8 ("strength 0.5" is 0.4/0.4/0.4/0.1),
    grayscale 0.2, blur 0.5 (ImageNet; SimCLR drops blur on CIFAR), no solarization.
    """

    size: int
    crop_scale: tuple[float, float] = (0.08, 1.0)
    flip_p: float = 0.5
    jitter: tuple[float, float, float, float] = (0.4, 0.4, 0.4, 0.1)
    jitter_p: float = 0.8
    gray_p: float = 0.2
    blur_p: float = 0.5
    solarize_p: float = 0.0

    def __call__(self, x: Tensor) -> Tensor:
        """Return one augmented view of float batch ``x`` (B, 3, H, W) in [0, 1]."""
        x = random_resized_crop(x, self.size, self.crop_scale, flip_p=self.flip_p)
        if self.jitter_p > 0:
            x = color_jitter(x, *self.jitter, p=self.jitter_p)
        if self.gray_p > 0:
            x = random_grayscale(x, self.gray_p)
        if self.blur_p > 0:
            x = gaussian_blur(x, self.blur_p)
        if self.solarize_p > 0:
            x = solarize(x, self.solarize_p)
        return x


def simclr_views(size: int, blur: bool | None = None, **overrides: object) -> list[ViewRecipe]:
    """SimCLR's two identical view recipes; blur only from 64 px up unless ``blur`` says."""
    blur = size >= 64 if blur is None else blur
    recipe = ViewRecipe(size=size, blur_p=0.5 if blur else 0.0, **overrides)  # type: ignore[arg-type]
    return [recipe, recipe]


def byol_views(size: int) -> list[ViewRecipe]:
    """BYOL's two asymmetric recipes (Grill et al. 2020, table 6): blur 1.0 / 0.1,
    solarize 0 / 0.2, jitter (0.4, 0.4, 0.2, 0.1) with p = 0.8, grayscale 0.2."""
    common = dict(size=size, jitter=(0.4, 0.4, 0.2, 0.1), jitter_p=0.8, gray_p=0.2)
    return [ViewRecipe(blur_p=1.0, solarize_p=0.0, **common),  # type: ignore[arg-type]
            ViewRecipe(blur_p=0.1, solarize_p=0.2, **common)]  # type: ignore[arg-type]


def shapes_views(size: int) -> list[ViewRecipe]:
    """The course's recipe for the shapes dataset: SimCLR's, with colour made useless.

    In the shapes dataset colour is pure nuisance, and two palette colours identify an
    image among a batch far more easily than its shape does; with SimCLR's mild hue jitter
    (0.1) the network learns colour, not shape (the colour-histogram shortcut of the SimCLR
    paper, section 3.2). So the hue is drawn over the whole colour wheel (0.5) and half the
    views are grey. Crops keep at least 40% of the area because the shapes are small at
    20 px and a smaller crop often misses the shape entirely.
    """
    recipe = ViewRecipe(size=size, crop_scale=(0.4, 1.0), jitter=(0.4, 0.4, 0.4, 0.5), gray_p=0.5,
                        blur_p=0.0)
    return [recipe, recipe]


def with_local_crops(recipes: list[ViewRecipe], n_local: int, size: int,
                     scale: tuple[float, float] = (0.05, 0.4)) -> list[ViewRecipe]:
    """Return ``recipes`` (the global views) followed by ``n_local`` small crops of side
    ``size`` covering a fraction ``scale`` of the image, with the first recipe's colour
    changes: the multi-crop of SwAV and DINO (Caron et al. 2020, 2021: 2 x 224 px global
    crops with scale (0.4, 1) and several 96 px local ones with scale (0.05, 0.4))."""
    local = dataclasses.replace(recipes[0], size=size, crop_scale=scale)
    return list(recipes) + [local] * n_local


@dataclass(frozen=True)
class WholeImageView(ViewRecipe):
    """A view that keeps the whole image: resize to ``size`` (only when the side differs) and a
    horizontal flip with probability ``flip_p``; the other fields are ignored. Needed because
    ``ViewRecipe``'s crop draws an aspect ratio in (3/4, 4/3) even at crop_scale (1, 1), which
    stretches and resamples every image (up to 0.7 per pixel on 20 px shapes)."""

    def __call__(self, x: Tensor) -> Tensor:
        if x.shape[-2:] != (self.size, self.size):
            x = F.interpolate(x, size=(self.size, self.size), mode="bilinear", align_corners=False, antialias=True)
        flip = torch.rand(len(x), device=x.device) < self.flip_p
        return torch.where(flip[:, None, None, None], x.flip(-1), x)


def generative_views(dataset: str, size: int) -> list[ViewRecipe]:
    """One view, the image itself (flipped half of the time): a generative model learns the
    distribution of the data, and augmentations would change it. Flips leave the shapes'
    distribution as it is (shapes at random angles, mirror-symmetric classes)."""
    return [WholeImageView(size=size, crop_scale=(1.0, 1.0), flip_p=0.5, jitter_p=0.0, gray_p=0.0, blur_p=0.0)]
