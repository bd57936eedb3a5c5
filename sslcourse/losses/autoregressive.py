r"""Likelihood losses of autoregressive image models (Course: :ref:`ch3b-pixelcnn`).

An autoregressive model factorises an image's probability over its pixels in raster order,
:math:`p(x) = \prod_i p(x_i \mid x_{<i})` (van den Oord et al. 2016, "Pixel Recurrent Neural
Networks", eq. 1); with one categorical per pixel over a palette of K colours, training is a
K-way classification of every pixel from the pixels before it.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor


def pixel_nll(logits: Tensor, targets: Tensor) -> Tensor:
    r"""Return the mean negative log-likelihood of ``targets``, in nats per dimension:

    .. math:: \mathcal{L} = -\frac{1}{BHW}\sum_{b,i,j} \log \mathrm{softmax}(\ell_{b,:,i,j})_{x_{b,i,j}}

    where a dimension is one pixel (one categorical over the palette; with R, G and B predicted
    separately it would be one sub-pixel). A model that ignores its input and predicts the
    uniform distribution scores :math:`\ln K`. Course: :ref:`ch3b-pixelcnn`. Paper: van den Oord
    et al. 2016, section 5.1 (reported there as bits per dimension: ``bits_per_dim``).

    Args:
        logits: (B, K, H, W) unnormalised log-probabilities of the K palette entries of every
            pixel; the prediction at (i, j) must depend only on pixels before (i, j).
        targets: (B, H, W) int64 palette indices in [0, K).
    Returns:
        scalar, nats per pixel (computed in fp32 or wider).
    """
    if logits.ndim != 4 or not logits.is_floating_point():
        raise ValueError(f"pixel_nll expects float logits (B, K, H, W); got {tuple(logits.shape)} {logits.dtype}")
    if targets.dtype != torch.int64 or targets.shape != (logits.shape[0], *logits.shape[2:]):
        raise ValueError(f"pixel_nll expects int64 targets (B, H, W) = {(logits.shape[0], *logits.shape[2:])} "
                         f"for logits {tuple(logits.shape)}; got {tuple(targets.shape)} {targets.dtype}")
    return F.cross_entropy(logits.to(torch.promote_types(logits.dtype, torch.float32)), targets)


def bits_per_dim(nll_nats: Tensor | float) -> Tensor | float:
    r"""Return a negative log-likelihood in bits: :math:`\mathrm{nats} / \ln 2`.

    Bits per dimension is the unit of the likelihood literature (PixelRNN/PixelCNN tables):
    the length of the shortest code of one dimension under the model. The uniform categorical
    over K values gives :math:`\log_2 K` (2 bits for 4 colours).

    Args:
        nll_nats: a NLL in nats per dimension (``pixel_nll``), a tensor of any shape or a float.
    """
    return nll_nats / math.log(2)
