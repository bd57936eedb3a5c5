"""Contrastive Predictive Coding (van den Oord, Li & Vinyals 2018) on 1-D sequences.

Course: :ref:`ch5b-cpc`. A strided convolutional encoder turns a signal into latents
:math:`z_t`; an autoregressive network (a GRU) summarises :math:`z_{\\le t}` into a context
:math:`c_t`; for each step k = 1..K a bilinear score :math:`z_{t+k}^\\top W_k c_t` must pick the
true future latent among the latents of other positions and other sequences (InfoNCE,
``losses.cpc_info_nce``). The positive pair here comes from time, not from augmentation.
Train it with ``fit(CPC(), SequenceLoader(make_sequences(1500), 64), 300)`` (``data.sequences``).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from ..data import Batch
from ..losses import cpc_info_nce
from .base import Method, MethodSpec


class SignalEncoder(nn.Module):
    """Strided 1-D convolutions: signals (B, 1, L) -> latents (B, L // 8, latent_dim).

    Each latent sees about 20 samples (receptive field) and latents are 8 samples apart,
    like CPC's audio encoder (which downsamples by 160) scaled to short sequences."""

    def __init__(self, latent_dim: int = 64, width: int = 64, in_channels: int = 1) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv1d(in_channels, width, kernel_size=8, stride=4, padding=2), nn.ReLU(),
            nn.Conv1d(width, width, kernel_size=4, stride=2, padding=1), nn.ReLU(),
            nn.Conv1d(width, latent_dim, kernel_size=1),
        )
        self.feature_dim = latent_dim

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x).transpose(1, 2)


class CPC(Method):
    """Encoder + GRU context network + one bilinear map :math:`W_k` per prediction step.

    Args:
        encoder: maps (B, C, L) to (B, T, D) and has ``feature_dim`` = D (default ``SignalEncoder``).
        context_dim: GRU state size (the paper: 256 for audio).
        steps_ahead: K, how many future latents each context predicts (the paper: 12 for audio).
        anchors_per_sequence: context positions scored per sequence and step; the other
            positions and sequences of the batch are the negatives (the paper draws negatives
            from the same and from other sequences, as here).
    """

    def __init__(self, encoder: nn.Module | None = None, context_dim: int = 128, steps_ahead: int = 4,
                 anchors_per_sequence: int = 8) -> None:
        super().__init__(encoder if encoder is not None else SignalEncoder())
        d = self.backbone.feature_dim
        self.context_net = nn.GRU(d, context_dim, batch_first=True)
        self.w = nn.Parameter(torch.randn(steps_ahead, d, context_dim) / math.sqrt(context_dim))
        self.steps_ahead, self.anchors_per_sequence = steps_ahead, anchors_per_sequence

    def latents_and_context(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """Return latents z (B, T, D) and contexts c (B, T, context_dim) of signals x (B, C, L)."""
        z = self.backbone(x)
        c, _ = self.context_net(z)
        return z, c

    def training_step(self, batch: Batch) -> dict[str, Tensor]:
        z, c = self.latents_and_context(batch.views[0])
        n, t_len, _ = z.shape
        k = self.steps_ahead
        if t_len <= k:
            raise ValueError(f"sequences give {t_len} latents, too few to predict {k} steps ahead")
        anchors = torch.randperm(t_len - k, device=z.device)[: self.anchors_per_sequence]  # (A,) distinct
        context = c[:, anchors].reshape(-1, c.shape[-1])  # (N*A, C)
        ahead = anchors[:, None] + torch.arange(1, k + 1, device=z.device)  # (A, K): t+1..t+K
        future = z[:, ahead].reshape(-1, k, z.shape[-1])  # (N*A, K, D)
        loss = cpc_info_nce(context, future, self.w)
        return {"loss": loss, **self.collapse_diagnostics(z.reshape(n * t_len, -1))}

    def encode(self, x: Tensor) -> Tensor:
        """The sequence's representation: its contexts averaged over time (B, context_dim)."""
        return self.latents_and_context(x)[1].mean(1)

    def encode_latents(self, x: Tensor) -> Tensor:
        """The encoder's latents averaged over time (B, D): local features without order."""
        return self.backbone(x).mean(1)


# CPC makes its own 1-D encoder (``SignalEncoder``) and trains on ``data.sequences``.
SPEC = MethodSpec(name="cpc", method=CPC, views=None, in_channels=(), inputs="sequences")
