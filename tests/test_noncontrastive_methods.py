"""Non-contrastive methods (BYOL, SimSiam, VICReg, Barlow Twins, W-MSE, DINO, SwAV): EMA
exactness, stop-gradient, centering, prototypes, multi-crop, learning."""

from __future__ import annotations

import functools
import math

import pytest
import torch
from torch import nn

from sslcourse import augment
from sslcourse.backbones import ConvNet
from sslcourse.data import Batch, DeviceLoader, MultiViewLoader, make_shapes
from sslcourse.methods import BYOL, DINO, WMSE, BarlowTwins, SimSiam, SwAV, VICReg
from sslcourse.schedules import cosine_momentum
from sslcourse.train import fit, make_optimizer
from sslcourse.vit import TinyViT


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


@pytest.mark.parametrize("predictor", [True, False])
def test_byol_predictor_learning_rate_scale_reaches_the_optimizer(predictor):
    byol = BYOL(ConvNet(width=4, depth=2), hidden_dim=16, projection_dim=8, predictor=predictor,
                predictor_lr_scale=10.0)
    optimizer = make_optimizer(byol, lr=1e-3)
    scales = {id(p): g["lr_scale"] for g in optimizer.param_groups for p in g["params"]}
    assert all(scales[id(p)] == 10.0 for p in byol.predictor.parameters())
    assert all(scales[id(p)] == 1.0 for p in [*byol.backbone.parameters(), *byol.projection_head.parameters()])
    # every trainable parameter is optimised once; the target is not
    assert len(scales) == sum(p.numel() > 0 for p in byol.parameters() if p.requires_grad)
    assert not any(id(p) in scales for p in byol.target_backbone.parameters())


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


# BYOL's, SimSiam's and DINO's learning tests, with the collapse they must avoid, are in
# test_learning.py; the methods below keep their spread by construction (variance term,
# decorrelation, whitening, equipartition).
@pytest.mark.parametrize("make", [
    pytest.param(lambda b: VICReg(b, hidden_dim=64, projection_dim=64), id="vicreg"),
    pytest.param(lambda b: BarlowTwins(b, hidden_dim=64, projection_dim=64, off_diagonal_weight=1 / 64),
                 id="barlow_twins"),
    pytest.param(lambda b: WMSE(b, hidden_dim=64, projection_dim=16, sub_batch=32), id="wmse"),
    pytest.param(lambda b: SwAV(b, hidden_dim=64, projection_dim=16, n_prototypes=20), id="swav"),
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


def test_dino_center_follows_the_teacher_and_ablations_change_what_is_used():
    torch.manual_seed(0)
    dino = DINO(ConvNet(width=4, depth=2), out_dim=10, hidden_dim=16, bottleneck_dim=8, center_momentum=0.9)
    out = dino.training_step(views())
    teacher = dino.pending["teacher_logits"].clone()
    dino.on_after_step(0, 10)
    assert torch.allclose(dino.center, 0.1 * teacher.mean(dim=(0, 1)))  # from a zero center
    assert all(p.grad is None and not p.requires_grad for p in dino.teacher_backbone.parameters())
    assert {"teacher_entropy", "teacher_std", "z_std"} <= set(out)
    assert DINO(ConvNet(width=4, depth=2), out_dim=10, sharpening=False).teacher_temperature == 0.1


def test_dino_multi_crop_gives_local_crops_to_the_student_only():
    torch.manual_seed(0)
    dino = DINO(TinyViT(image_size=8, patch_size=2, dim=12, depth=1, heads=2), out_dim=10, hidden_dim=16,
                bottleneck_dim=8)
    recipes = augment.with_local_crops(augment.shapes_views(8), n_local=2, size=4)
    x = torch.rand(6, 3, 8, 8)
    batch = Batch(views=[r(x) for r in recipes], labels=torch.zeros(6))
    assert [v.shape[-1] for v in batch.views] == [8, 8, 4, 4]
    dino.training_step(batch)["loss"].backward()
    assert dino.pending["teacher_logits"].shape == (2, 6, 10)
    assert dino.backbone.pos_embed.grad is not None


def test_swav_prototypes_stay_on_the_unit_sphere():
    torch.manual_seed(0)
    swav = SwAV(ConvNet(width=4, depth=2), hidden_dim=16, projection_dim=8, n_prototypes=5)
    opt = torch.optim.SGD(swav.parameters(), lr=1.0)
    swav.training_step(views())["loss"].backward()
    opt.step()
    swav.on_after_step(0, 1)
    assert torch.allclose(swav.prototypes.weight.norm(dim=1), torch.ones(5), atol=1e-6)


def test_wmse_refuses_a_sub_batch_too_small_to_whiten():
    with pytest.raises(ValueError, match="sub_batch"):
        WMSE(ConvNet(width=4, depth=2), projection_dim=64, sub_batch=64)


def test_tiny_vit_attention_is_a_distribution_over_patches():
    vit = TinyViT(image_size=8, patch_size=2, dim=12, depth=2, heads=3)
    attn = vit.cls_attention(torch.rand(2, 3, 8, 8))
    assert attn.shape == (2, 3, 4, 4)
    block_attn = vit.blocks[-1].attention(vit.tokens(torch.rand(2, 3, 8, 8)))
    assert torch.allclose(block_attn.sum(-1), torch.ones(2, 3, 17))
    with pytest.raises(ValueError, match="divisible"):
        vit(torch.rand(1, 3, 7, 7))


def test_track_rank_logs_the_effective_rank():
    vicreg = VICReg(ConvNet(width=4, depth=2), hidden_dim=16, projection_dim=16)
    assert "z_erank" not in vicreg.training_step(views())
    vicreg.track_rank = True
    out = vicreg.training_step(views())
    assert 1.0 <= float(out["z_erank"]) <= 8.0


@functools.cache
def dino_teacher_entropy(variant: str) -> float:
    """Return the teacher's output entropy after 60 steps of DINO ``variant`` ("full",
    "no_centering", "no_sharpening"); cached, since both ablations compare with "full"."""
    options = {"full": {}, "no_centering": {"centering": False}, "no_sharpening": {"sharpening": False}}[variant]
    torch.manual_seed(0)
    loader = MultiViewLoader(DeviceLoader(make_shapes(256, 12, captions=False), 64), augment.shapes_views(12))
    dino = DINO(ConvNet(width=8, depth=2), out_dim=64, hidden_dim=64, bottleneck_dim=16, base_momentum=0.99,
                **options)
    return fit(dino, loader, 60, log_every=10, progress=False)[-1]["teacher_entropy"]


def test_dino_without_sharpening_drifts_to_the_uniform_distribution():
    """The paper's fig. 7: without sharpening the teacher's entropy reaches log K."""
    assert dino_teacher_entropy("no_sharpening") > 0.95 * math.log(64)


def test_dino_without_centering_concentrates_on_few_outputs():
    """The paper's fig. 7: without centering the teacher's entropy falls far below the full method's."""
    assert dino_teacher_entropy("no_centering") < 0.5 * dino_teacher_entropy("full")
