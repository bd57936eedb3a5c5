from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from sslcourse.losses import nt_xent


def naive_nt_xent(z1: torch.Tensor, z2: torch.Tensor, t: float) -> torch.Tensor:
    """Eq. (1) of SimCLR, one anchor at a time."""
    z = F.normalize(torch.cat([z1, z2]), dim=1)
    n2 = len(z)
    total = 0.0
    for i in range(n2):
        pos = (i + n2 // 2) % n2
        denom = sum(torch.exp(z[i] @ z[k] / t) for k in range(n2) if k != i)
        total = total - torch.log(torch.exp(z[i] @ z[pos] / t) / denom)
    return total / n2


@pytest.mark.parametrize("t", [0.1, 0.5, 1.0])
def test_nt_xent_matches_the_naive_loop(t):
    torch.manual_seed(0)
    z1, z2 = torch.randn(6, 5), torch.randn(6, 5)
    assert torch.allclose(nt_xent(z1, z2, t), naive_nt_xent(z1, z2, t), atol=1e-5)


def test_nt_xent_identical_embeddings_equals_log_2n_minus_1():
    z = torch.ones(8, 4)
    assert math.isclose(nt_xent(z, z, 1.0).item(), math.log(2 * 8 - 1), rel_tol=1e-6)


def test_nt_xent_is_low_when_views_agree_and_differ_from_others():
    z = torch.eye(8) * 10
    assert nt_xent(z, z, 0.1) < 1e-3


def test_nt_xent_gradient_in_float64():
    torch.manual_seed(1)
    z1 = torch.randn(4, 3, dtype=torch.float64, requires_grad=True)
    z2 = torch.randn(4, 3, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda a, b: nt_xent(a, b, 0.5), (z1, z2))
    g_fast = torch.autograd.grad(nt_xent(z1, z2, 0.5), z1)[0]
    g_naive = torch.autograd.grad(naive_nt_xent(z1, z2, 0.5), z1)[0]
    assert torch.allclose(g_fast, g_naive, atol=1e-10)


def test_nt_xent_rejects_mismatched_shapes():
    with pytest.raises(ValueError, match=r"\(N, D\)"):
        nt_xent(torch.randn(4, 3), torch.randn(5, 3))
