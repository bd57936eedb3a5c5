"""BYOL, SimSiam, VICReg and Barlow Twins: EMA exactness, stop-gradient, learning."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from sslcourse import augment
from sslcourse.backbones import ConvNet
from sslcourse.data import Batch, DeviceLoader, MultiViewLoader, make_shapes
from sslcourse.methods import BYOL, BarlowTwins, SimSiam, VICReg
from sslcourse.schedules import cosine_momentum
from sslcourse.train import fit


def views(n: int = 8) -> Batch:
    torch.manual_seed(0)
    x = torch.rand(n, 3, 8, 8)
    return Batch(views=[x, x.flip(-1)], labels=torch.zeros(n))


def test_byol_target_gets_no_gradient_and_follows_an_exact_ema():
    torch.manual_seed(0)
    byol = BYOL(ConvNet(width=4, depth=2), hidden_dim=16, projection_dim=8, base_momentum=0.9)
    byol.training_step(views())["loss"].backward()
    assert all(p.grad is None for p in byol.target_backbone.parameters())
    with torch.no_grad():
        for p in byol.backbone.parameters():
            p.add_(1.0)  # move the online network so the EMA has something to do
    before = [p.clone() for p in byol.target_backbone.parameters()]
    byol.on_after_step(3, 10)
    m = cosine_momentum(3, 10, 0.9)
    for t, t0, o in zip(byol.target_backbone.parameters(), before, byol.backbone.parameters(), strict=True):
        assert torch.allclose(t, m * t0 + (1 - m) * o, atol=1e-7)


class ConstantPredictor(nn.Module):
    """A predictor whose output does not depend on its input: only the target branch links
    the loss to the encoder, so the stop-gradient must leave the encoder without gradient."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.value = nn.Parameter(torch.randn(dim))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.value.expand(len(z), -1)


@pytest.mark.parametrize("stop_gradient", [True, False])
def test_simsiam_stop_gradient_blocks_the_target_branch(stop_gradient: bool):
    torch.manual_seed(0)
    simsiam = SimSiam(ConvNet(width=4, depth=2), projection_dim=8, predictor_hidden_dim=4,
                      stop_gradient=stop_gradient)
    simsiam.predictor = ConstantPredictor(8)
    simsiam.training_step(views())["loss"].backward()
    grads = [p.grad for p in simsiam.backbone.parameters()]
    blocked = all(g is None or g.abs().max() == 0 for g in grads)
    assert blocked == stop_gradient


@pytest.mark.parametrize("make", [
    lambda b: BYOL(b, hidden_dim=64, projection_dim=32, base_momentum=0.99),
    lambda b: SimSiam(b, projection_dim=64, predictor_hidden_dim=16),
    lambda b: VICReg(b, hidden_dim=64, projection_dim=64),
    lambda b: BarlowTwins(b, hidden_dim=64, projection_dim=64, off_diagonal_weight=1 / 64),
])
def test_loss_falls(make):
    torch.manual_seed(0)
    data = make_shapes(256, 12, captions=False)
    loader = MultiViewLoader(DeviceLoader(data, 64), augment.shapes_views(12))
    method = make(ConvNet(width=8, depth=2))
    history = fit(method, loader, 60, log_every=10, progress=False)
    assert history[-1]["loss"] < history[0]["loss"]
    assert "z_std" in history[-1]


def test_vicreg_reports_its_three_terms():
    torch.manual_seed(0)
    out = VICReg(ConvNet(width=4, depth=2), hidden_dim=16, projection_dim=16).training_step(views())
    assert {"invariance", "variance", "covariance"} <= set(out)
    assert torch.allclose(out["loss"], 25 * out["invariance"] + 25 * out["variance"] + out["covariance"])
    assert not out["variance"].requires_grad  # diagnostics are detached
