"""CIELAB colour and the quantised ab space of colorization: pure, batched input makers.

- ``rgb_to_lab`` / ``lab_to_rgb``: sRGB in [0, 1] (IEC 61966-2-1, D65 white) <-> CIE 1976
  L*a*b*, differentiable, on whatever device the images are.
- ``ab_bins``: the ab grid of Zhang, Isola & Efros 2016 ("Colorful image colorization", §2.1):
  bins of side 10 whose centres are reached by in-gamut sRGB colours.
- ``ab_to_bins`` (hard), ``soft_encode`` (the paper's soft targets), ``rebalancing_weights``
  (its class rebalancing, §2.2) and ``bins_to_ab`` (its annealed-mean decoding, §2.3).
- ``lab_to_network`` / ``network_to_lab``: the scaling of Lab to about [-1, 1] that the
  colorization methods feed their networks (L / 50 - 1, ab / 110).

Course: :ref:`ch4b-colorization` (colorization, split-brain autoencoders).
"""

from __future__ import annotations

from functools import lru_cache

import torch
import torch.nn.functional as F
from torch import Tensor

# IEC 61966-2-1 (sRGB), linear RGB -> CIE XYZ with the D65 white at Y = 1.
_RGB_TO_XYZ = torch.tensor([[0.4124, 0.3576, 0.1805],
                            [0.2126, 0.7152, 0.0722],
                            [0.0193, 0.1192, 0.9505]], dtype=torch.float64)
# The reference white (Xn, Yn, Zn) is the image of RGB = (1, 1, 1): the rows' sums, so that sRGB
# white maps to exactly (100, 0, 0). They equal the D65 white (0.9505, 1.0000, 1.0890).
_WHITE = _RGB_TO_XYZ.sum(1)
_XYZ_TO_RGB = torch.linalg.inv(_RGB_TO_XYZ)
_DELTA = 6 / 29  # CIE 1976: the knee of f(t), where the cube root meets its tangent line

L_SCALE, L_SHIFT, AB_SCALE = 50.0, 1.0, 110.0  # network input: L / 50 - 1, ab / 110 (about [-1, 1])


def _check_images(x: Tensor, name: str, channels: int = 3) -> None:
    if x.ndim != 4 or x.shape[1] != channels:
        raise ValueError(f"{name} must be a batch of images (B, {channels}, H, W), got shape {tuple(x.shape)}")
    if not x.is_floating_point():
        raise ValueError(f"{name} must be a float tensor, got {x.dtype}; divide uint8 images by 255 first")


def _srgb_decode(c: Tensor) -> Tensor:
    """Return linear RGB from gamma-encoded sRGB (IEC 61966-2-1: linear segment below 0.04045)."""
    # The clamp keeps the unused branch's power away from negative bases (NaN gradients).
    return torch.where(c <= 0.04045, c / 12.92, ((c.clamp_min(0.04045) + 0.055) / 1.055) ** 2.4)


def _srgb_encode(c: Tensor) -> Tensor:
    """Return gamma-encoded sRGB from linear RGB (the inverse of ``_srgb_decode``)."""
    return torch.where(c <= 0.0031308, 12.92 * c, 1.055 * c.clamp_min(0.0031308) ** (1 / 2.4) - 0.055)


def _f(t: Tensor) -> Tensor:
    """CIE 1976 f(t): the cube root above delta^3, its tangent line t / (3 delta^2) + 4/29 below."""
    return torch.where(t > _DELTA**3, t.clamp_min(_DELTA**3) ** (1 / 3), t / (3 * _DELTA**2) + 4 / 29)


def _f_inverse(f: Tensor) -> Tensor:
    """The inverse of ``_f``: f^3 above delta, 3 delta^2 (f - 4/29) below."""
    return torch.where(f > _DELTA, f**3, 3 * _DELTA**2 * (f - 4 / 29))


def rgb_to_lab(x: Tensor) -> Tensor:
    r"""Return the CIELAB colours (B, 3, H, W) of sRGB images ``x`` (B, 3, H, W) in [0, 1].

    Decode the sRGB gamma, map linear RGB to XYZ (IEC 61966-2-1, D65), then (CIE 1976)

    .. math:: L = 116 f(Y/Y_n) - 16,\quad a = 500 (f(X/X_n) - f(Y/Y_n)),\quad b = 200 (f(Y/Y_n) - f(Z/Z_n))

    with :math:`f(t) = t^{1/3}` for :math:`t > \delta^3` and :math:`t / (3\delta^2) + 4/29`
    otherwise, :math:`\delta = 6/29`. L is in [0, 100]; a and b lie within about [-128, 127]
    (sRGB reaches a in [-86, 98], b in [-108, 95]). Differentiable.

    Args:
        x: (B, 3, H, W) float RGB in [0, 1].
    """
    _check_images(x, "x")
    linear = _srgb_decode(x)
    matrix = (_RGB_TO_XYZ / _WHITE[:, None]).to(x)  # XYZ already divided by the white
    fx, fy, fz = _f(torch.einsum("ij,bjhw->bihw", matrix, linear)).unbind(1)  # i: X/Xn.., j: R, G, B
    return torch.stack([116 * fy - 16, 500 * (fx - fy), 200 * (fy - fz)], dim=1)


def lab_to_rgb(lab: Tensor) -> Tensor:
    """Return the sRGB images (B, 3, H, W) of CIELAB colours ``lab`` (B, 3, H, W): the inverse
    of ``rgb_to_lab``. Colours outside the sRGB gamut come out outside [0, 1]: clamp them to
    show them. Differentiable.

    Args:
        lab: (B, 3, H, W) float, L in [0, 100], a and b in about [-128, 127].
    """
    _check_images(lab, "lab")
    lightness, a, b = lab.unbind(1)
    fy = (lightness + 16) / 116
    f = torch.stack([fy + a / 500, fy, fy - b / 200], dim=1)
    xyz = _f_inverse(f) * _WHITE.to(lab)[:, None, None]
    return _srgb_encode(torch.einsum("ij,bjhw->bihw", _XYZ_TO_RGB.to(lab), xyz))  # i: R, G, B, j: X, Y, Z


def lab_to_network(lab: Tensor) -> tuple[Tensor, Tensor]:
    """Return the network inputs (L / 50 - 1 (B, 1, H, W), ab / 110 (B, 2, H, W)) of ``lab``
    (B, 3, H, W): both in about [-1, 1] (110 is the radius of the ab grid of Zhang et al.)."""
    _check_images(lab, "lab")
    return lab[:, :1] / L_SCALE - L_SHIFT, lab[:, 1:] / AB_SCALE


def network_to_lab(l_scaled: Tensor, ab_scaled: Tensor) -> Tensor:
    """Return the Lab images (B, 3, H, W) of network-scaled L (B, 1, H, W) and ab (B, 2, H, W):
    the inverse of ``lab_to_network``."""
    return torch.cat([(l_scaled + L_SHIFT) * L_SCALE, ab_scaled * AB_SCALE], dim=1)


@lru_cache(maxsize=4)
def _in_gamut_bins(bin_size: float, steps: int) -> Tensor:
    levels = torch.linspace(0, 1, steps, dtype=torch.float64)
    rgb = torch.cartesian_prod(levels, levels, levels).T.reshape(1, 3, steps**3, 1)  # every RGB triple
    ab = rgb_to_lab(rgb)[0, 1:, :, 0].T  # (steps^3, 2)
    centres = torch.unique(torch.floor(ab / bin_size + 0.5), dim=0) * bin_size  # the bins these colours fall in
    return centres.float()


def ab_bins(bin_size: float = 10.0, steps: int = 64) -> Tensor:
    """Return the centres (Q, 2) of the in-gamut ab bins: the squares of side ``bin_size``
    centred on multiples of ``bin_size`` that contain the ab of at least one sRGB colour of a
    dense grid (``steps`` levels per channel, at any lightness). Zhang et al. 2016 (§2.1, grid
    size 10) keep Q = 313 bins, counted over the colours that occur in ImageNet; the sRGB cube
    itself reaches fewer of them (Q = 261 here; the tests pin it).

    Rows are sorted by a, then b; the result is a fresh tensor (computed once, cached).
    """
    if bin_size <= 0 or steps < 2:
        raise ValueError(f"bin_size must be positive and steps at least 2, got {bin_size}, {steps}")
    return _in_gamut_bins(float(bin_size), int(steps)).clone()


def _pixels_and_distances(ab: Tensor, bins: Tensor) -> Tensor:
    """Squared distances (B, H, W, Q) of each pixel's ab (B, 2, H, W) to the bins (Q, 2)."""
    _check_images(ab, "ab", channels=2)
    if bins.ndim != 2 or bins.shape[1] != 2:
        raise ValueError(f"bins must be ab centres (Q, 2), got shape {tuple(bins.shape)}")
    pixels = ab.permute(0, 2, 3, 1)  # (B, H, W, 2)
    return (pixels[..., None, :] - bins.to(ab)).pow(2).sum(-1)  # (B, H, W, Q)


def ab_to_bins(ab: Tensor, bins: Tensor) -> Tensor:
    """Return the index (B, H, W) of the nearest bin of each pixel's ab.

    Args:
        ab: (B, 2, H, W) the a and b channels, in Lab units.
        bins: (Q, 2) the bin centres (``ab_bins()``).
    """
    return _pixels_and_distances(ab, bins).argmin(-1)


def soft_encode(ab: Tensor, bins: Tensor, k: int = 5, sigma: float = 5.0) -> Tensor:
    r"""Return the soft targets Z (B, Q, H, W) of Zhang et al. 2016 (§2.1): each pixel's
    weights on its ``k`` nearest bins, Gaussian in the distance to its ab,

    .. math:: Z_{q} \propto \exp(-\|ab - b_q\|^2 / (2\sigma^2)) \text{ for the k nearest } b_q,\ 0 \text{ otherwise},

    normalised to sum to 1 over q (the paper: k = 5, sigma = 5).

    Args:
        ab: (B, 2, H, W) in Lab units. bins: (Q, 2) centres. k: bins per pixel. sigma: kernel width.
    """
    d2 = _pixels_and_distances(ab, bins)  # (B, H, W, Q)
    if not 1 <= k <= d2.shape[-1]:
        raise ValueError(f"k must be between 1 and the number of bins ({d2.shape[-1]}), got {k}")
    nearest, index = d2.topk(k, dim=-1, largest=False)  # (B, H, W, k)
    weights = torch.softmax(-nearest / (2 * sigma**2), dim=-1)  # Gaussian weights, normalised
    targets = torch.zeros_like(d2).scatter_(-1, index, weights)
    return targets.permute(0, 3, 1, 2)  # (B, Q, H, W)


def rebalancing_weights(bin_counts: Tensor, lam: float = 0.5, sigma: float = 5.0,
                        bins: Tensor | None = None) -> Tensor:
    r"""Return the class-rebalancing weights w (Q,) of Zhang et al. 2016 (§2.2):

    .. math:: w \propto \big((1 - \lambda)\,\tilde p + \lambda / Q\big)^{-1},\qquad \textstyle\sum_q p_q w_q = 1,

    with p = counts / sum(counts) the empirical distribution of the bins and
    :math:`\tilde p = G_\sigma p` its smoothing by a Gaussian kernel in ab space: bin q
    spreads its mass over the bins r with weights :math:`\propto \exp(-\|b_q - b_r\|^2 / (2\sigma^2))`,
    normalised per source bin so that :math:`\tilde p` still sums to 1 (``sigma=0``: no
    smoothing). The normalisation uses p, so that the mean weight over the pixels the counts
    came from is 1 and the loss keeps its scale (the paper writes the expectation under
    :math:`\tilde p`; the two differ only by the smoothing). Rare colours get large weights;
    ``lam=1`` gives w = 1 everywhere.

    Args:
        bin_counts: (Q,) how often each bin occurs (hard assignments) in the training data.
        lam: the mixing weight with the uniform distribution (the paper: 0.5).
        sigma: width of the smoothing kernel in Lab units (the paper: 5).
        bins: (Q, 2) the centres the counts refer to; default ``ab_bins()``.
    """
    bins = ab_bins() if bins is None else bins
    if bin_counts.ndim != 1 or bins.shape != (len(bin_counts), 2):
        raise ValueError(f"bin_counts must be (Q,) with bins (Q, 2), got {tuple(bin_counts.shape)} and "
                         f"{tuple(bins.shape)}")
    if not 0 <= lam <= 1:
        raise ValueError(f"lam must be in [0, 1], got {lam}")
    counts = bin_counts.float()  # float32, not float64: the weights are also computed on GPUs without it
    if (counts < 0).any() or counts.sum() <= 0:
        raise ValueError("bin_counts must be non-negative with a positive total")
    p = counts / counts.sum()
    if sigma > 0:
        centres = bins.to(counts)
        d2 = torch.cdist(centres, centres).pow(2)  # (Q, Q), symmetric
        kernel = torch.softmax(-d2 / (2 * sigma**2), dim=0)  # column q: where bin q's mass goes
        p_smooth = kernel @ p
    else:
        p_smooth = p
    w = 1 / ((1 - lam) * p_smooth + lam / len(p))
    return w / (p * w).sum()


def bins_to_ab(probabilities: Tensor, bins: Tensor, temperature: float = 0.38) -> Tensor:
    r"""Return the annealed-mean ab (B, 2, H, W) of per-pixel bin distributions (Zhang et al.
    2016, §2.3):

    .. math:: f_T(z)_q = \frac{\exp(\log z_q / T)}{\sum_r \exp(\log z_r / T)},\qquad ab = \sum_q f_T(z)_q\, b_q,

    between the mean (T = 1, desaturated) and the mode (T -> 0, patchy); the paper: T = 0.38.

    Args:
        probabilities: (B, Q, H, W), non-negative, summing to 1 over Q (a softmax of logits).
        bins: (Q, 2) the centres. temperature: T > 0.
    """
    if probabilities.ndim != 4 or bins.ndim != 2 or bins.shape[1] != 2 or probabilities.shape[1] != len(bins):
        raise ValueError(f"probabilities must be (B, Q, H, W) with bins (Q, 2), got {tuple(probabilities.shape)} "
                         f"and {tuple(bins.shape)}")
    if temperature <= 0:
        raise ValueError(f"temperature must be positive, got {temperature}")
    # A floor instead of log(0) = -inf: a bin of probability 0 keeps weight 0 without NaNs.
    log_z = probabilities.clamp_min(torch.finfo(probabilities.dtype).tiny).log()
    annealed = F.softmax(log_z / temperature, dim=1)
    return torch.einsum("bqhw,qc->bchw", annealed, bins.to(probabilities))  # c: a, b
