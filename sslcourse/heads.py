"""Heads that sit on top of a backbone: projection heads, predictors, classifiers."""

from __future__ import annotations

from torch import nn


def mlp(in_dim: int, hidden_dim: int, out_dim: int, n_layers: int = 2,
        batch_norm: bool = True, last_batch_norm: bool = False) -> nn.Sequential:
    """Return an MLP ``in_dim -> hidden_dim -> ... -> out_dim`` with ``n_layers`` linear layers.

    Hidden layers are Linear -> (BatchNorm) -> ReLU. SimCLR's projection head is
    ``mlp(d, 2048, 128, n_layers=2)``; BYOL's is ``mlp(d, 4096, 256)``; SimSiam and
    MoCo v3 add ``last_batch_norm=True`` (an affine-free BatchNorm on the output).
    Course: :ref:`ch5-why-h` (why a projection head, and why it is thrown away),
    :ref:`ch6b-tips` (how wide).
    """
    if n_layers < 1:
        raise ValueError(f"n_layers must be >= 1, got {n_layers}")
    layers: list[nn.Module] = []
    dim = in_dim
    for _ in range(n_layers - 1):
        layers += [nn.Linear(dim, hidden_dim, bias=not batch_norm)]
        if batch_norm:
            layers.append(nn.BatchNorm1d(hidden_dim))
        layers.append(nn.ReLU(inplace=True))
        dim = hidden_dim
    layers.append(nn.Linear(dim, out_dim, bias=not last_batch_norm))
    if last_batch_norm:
        layers.append(nn.BatchNorm1d(out_dim, affine=False))
    return nn.Sequential(*layers)
