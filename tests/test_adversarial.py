"""The adversarial models of chapter 3b: the GAN losses against their definitions, and DCGAN and
BiGAN through ``fit``'s players path (each optimizer moves only its player's weights), their
samples, their diagnostics and the views they train on."""

from __future__ import annotations

import copy
import itertools
import math

import pytest
import torch
from torch import Tensor, nn

from sslcourse.analysis import embedding_std
from sslcourse.augment import generative_views
from sslcourse.backbones import ConvNet
from sslcourse.data import Batch, make_shapes
from sslcourse.losses.adversarial import discriminator_loss, generator_loss
from sslcourse.methods.base import CourseContext, Method
from sslcourse.methods.bigan import SPEC as BIGAN_SPEC
from sslcourse.methods.bigan import BiGAN
from sslcourse.methods.gan import DCGAN, running_stats_frozen
from sslcourse.methods.gan import SPEC as DCGAN_SPEC
from sslcourse.train import fit, make_optimizers

SIZE = 12
CLASSES = {"dcgan": DCGAN, "bigan": BiGAN}


def small(name: str, image_size: int = SIZE) -> Method:
    torch.manual_seed(0)
    return CLASSES[name](ConvNet(width=4, depth=2), latent_dim=8, image_size=image_size)


def shapes_batch(n: int = 16, seed: int = 0) -> Batch:
    data = make_shapes(n, SIZE, seed=seed, captions=False)
    return Batch(views=[data.images.float() / 255], labels=data.labels)


def neg_mean_log_sigmoid(logits: Tensor) -> Tensor:
    return -torch.log(torch.sigmoid(logits.double())).mean()


# --- the losses ---------------------------------------------------------------------------------


def test_losses_at_logits_zero_are_those_of_the_equilibrium():
    zeros = torch.zeros(8)
    assert discriminator_loss(zeros, zeros).item() == pytest.approx(2 * math.log(2))
    assert generator_loss(zeros).item() == pytest.approx(math.log(2))


def test_losses_vanish_when_each_player_wins():
    assert discriminator_loss(torch.full((5,), 30.0), torch.full((7,), -30.0)).item() < 1e-9
    assert generator_loss(torch.full((5, 1), 30.0)).item() < 1e-9


def test_losses_match_the_explicit_formula_of_the_value_function():
    gen = torch.Generator().manual_seed(0)
    real, fake = torch.randn(32, generator=gen) * 3, torch.randn(20, 1, generator=gen) * 3
    expected_d = neg_mean_log_sigmoid(real) - torch.log(1 - torch.sigmoid(fake.double())).mean()
    assert discriminator_loss(real, fake).item() == pytest.approx(expected_d.item(), rel=1e-5)
    assert generator_loss(fake).item() == pytest.approx(neg_mean_log_sigmoid(fake).item(), rel=1e-5)


def test_losses_stay_finite_and_fp32_for_extreme_and_bf16_logits():
    extreme = torch.tensor([-200.0, 200.0])
    assert torch.isfinite(discriminator_loss(extreme, extreme)) and torch.isfinite(generator_loss(extreme))
    assert generator_loss(torch.zeros(4, dtype=torch.bfloat16)).dtype == torch.float32


def test_the_non_saturating_loss_keeps_a_gradient_where_d_rejects_the_fakes():
    fake = torch.full((1,), -10.0, requires_grad=True)  # D is sure these are fakes
    (g_ns,) = torch.autograd.grad(generator_loss(fake), fake)
    (g_sat,) = torch.autograd.grad(torch.log(1 - torch.sigmoid(fake)).mean(), fake)  # minimax: min log(1 - D)
    assert g_ns.abs().item() > 0.99 and g_sat.abs().item() < 1e-4


@pytest.mark.parametrize("bad", [torch.zeros(4, 2), torch.zeros(4, dtype=torch.long), torch.zeros(0)])
def test_losses_refuse_logits_that_are_not_one_float_per_sample(bad):
    with pytest.raises(ValueError, match=r"\(B,\) or \(B, 1\)"):
        discriminator_loss(torch.zeros(4), bad)
    with pytest.raises(ValueError, match="fake_logits"):
        generator_loss(bad)


# --- through fit: each player's optimizer moves only its own weights -----------------------------


def players_parameters(method: Method) -> dict[str, list[nn.Parameter]]:
    return {player: [p for g in method.param_groups() if g["player"] == player for p in g["params"]]
            for player in method.players}


@pytest.fixture(scope="module", params=["dcgan", "bigan"])
def trained(request) -> tuple[str, Method, list, list[dict]]:
    """A method trained 6 steps through fit, with a copy of every player's weights at each call."""
    method = small(request.param)
    calls: list[tuple[str, dict[str, list[Tensor]]]] = []
    step = method.training_step

    def recording(batch: Batch, player: str) -> dict[str, Tensor]:
        calls.append((player, {k: [p.detach().clone() for p in v] for k, v in players_parameters(method).items()}))
        return step(batch, player)

    method.training_step = recording
    history = fit(method, [shapes_batch(16, seed) for seed in range(2)], 6, lr=1e-2, log_every=3,
                  progress=False, device="cpu")
    return request.param, method, calls, history


def test_the_players_partition_the_parameters():
    for name in CLASSES:
        method = small(name)
        groups = players_parameters(method)
        ids = [id(p) for params in groups.values() for p in params]
        assert len(ids) == len(set(ids)) == len(list(method.parameters()))
        optimizers = make_optimizers(method)
        assert list(optimizers) == ["discriminator", "generator"]


def test_fit_steps_the_players_in_turn_each_moving_only_its_own_weights(trained):
    name, _, calls, history = trained
    assert [c[0] for c in calls] == ["discriminator", "generator"] * 6
    for (player, before), (_, after) in itertools.pairwise(calls):
        other = "generator" if player == "discriminator" else "discriminator"
        assert all(torch.equal(a, b) for a, b in zip(before[other], after[other], strict=True)), (name, player)
        assert not all(torch.equal(a, b) for a, b in zip(before[player], after[player], strict=True)), (name, player)
    for record in history:
        assert {"loss_discriminator", "loss_generator", "d_real_prob_discriminator", "d_fake_prob_generator",
                "sample_std_generator", "z_std_discriminator"} <= set(record)
        assert all(math.isfinite(v) for v in record.values())


def test_sample_returns_n_images_in_the_unit_range_and_keeps_the_mode(trained):
    _, method, _, _ = trained
    method.train()
    images = method.sample(5, generator=torch.Generator().manual_seed(1))
    assert images.shape == (5, 3, SIZE, SIZE) and 0 <= images.min() and images.max() <= 1
    assert method.training and method.generator.training  # the mode it had
    assert torch.equal(images, method.sample(5, generator=torch.Generator().manual_seed(1)))
    method.eval()
    method.sample(2)
    assert not method.generator.training


def test_bigans_encoder_gets_gradients_only_in_the_generators_step():
    method = small("bigan")
    batch = shapes_batch()
    encoder = method.encoder_parameters()
    for player in method.players:
        method.zero_grad(set_to_none=True)
        method.training_step(batch, player)["loss"].backward()
        got = [p.grad is not None and p.grad.abs().sum() > 0 for p in encoder]
        assert all(got) if player == "generator" else not any(got), player
        assert any(p.grad is not None for p in method.discriminator.parameters())


def test_bigan_reconstructs_images_through_its_code():
    method = small("bigan").train()
    x = shapes_batch(4).views[0]
    out = method.reconstruct(x)
    assert out.shape == x.shape and 0 <= out.min() and out.max() <= 1
    assert method.backbone.training and method.embed(x).shape == (4, 8)


def test_only_real_images_update_the_discriminators_running_statistics():
    method = small("dcgan").train()
    norm = next(m for m in method.backbone.modules() if isinstance(m, nn.BatchNorm2d))
    before = norm.running_mean.clone()
    with running_stats_frozen(method.backbone):
        method.critic_logits(torch.rand(8, 3, SIZE, SIZE))
    assert torch.equal(norm.running_mean, before) and norm.momentum == 0.1  # restored
    real_only = copy.deepcopy(method)
    for player in method.players:  # each step: real passes update the statistics, fake ones do not
        method.training_step(shapes_batch(), player)
        real_only.critic_logits(shapes_batch().views[0])
    for a, b in zip(method.backbone.buffers(), real_only.backbone.buffers(), strict=True):
        assert torch.allclose(a.float(), b.float(), atol=1e-6)
    assert not torch.equal(norm.running_mean, before)


def test_a_model_built_for_another_size_trains_on_the_datas_size():
    method = small("dcgan", image_size=16)  # generates 16 px, the data has 12 px
    out = method.training_step(shapes_batch(), "generator")
    assert math.isfinite(out["loss"].item()) and method.sample(2).shape == (2, 3, 16, 16)


def test_an_unknown_player_is_named():
    with pytest.raises(ValueError, match="discriminator, generator"):
        small("dcgan").training_step(shapes_batch(), "critic")


# --- the contract ----------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "player"), list(itertools.product(CLASSES, ("discriminator", "generator"))))
def test_training_step_returns_detached_scalar_diagnostics(name, player):
    method = small(name)
    method.track_rank = True
    out = method.training_step(shapes_batch(), player)
    assert {"loss", "z_std", "z_raw_std", "z_erank", "d_real_prob", "d_fake_prob", "sample_std"} <= set(out)
    assert all(v.ndim == 0 for v in out.values()) and out["loss"].requires_grad
    assert not any(v.requires_grad for k, v in out.items() if k != "loss")
    method.track_rank = False
    assert "z_erank" not in method.training_step(shapes_batch(), player)


@pytest.mark.parametrize("name", CLASSES)
def test_collapse_diagnostics_are_measured_on_embed_of_the_real_images(name):
    method = small(name).eval()  # eval: batch norm is deterministic
    batch = shapes_batch()
    with torch.no_grad():
        out = method.training_step(batch)  # the default player: the discriminator
        z = method.embed(batch.views[0])
    assert torch.allclose(out["z_std"], embedding_std(z), atol=1e-6)
    assert torch.allclose(out["z_raw_std"], z.std(0).mean(), atol=1e-6)


def test_specs_build_the_methods_at_the_contexts_image_size():
    context = CourseContext(make_backbone=lambda c: ConvNet(width=4, depth=2, in_channels=c), image_size=SIZE)
    for spec, cls in [(DCGAN_SPEC, DCGAN), (BIGAN_SPEC, BiGAN)]:
        method = spec.build(context)
        assert isinstance(method, cls) and method.image_size == SIZE and method.latent_dim == 100
        assert method.sample(2).shape == (2, 3, SIZE, SIZE)
        assert spec.build(CourseContext(make_backbone=context.make_backbone)).image_size == 32
    assert (DCGAN_SPEC.name, BIGAN_SPEC.name) == ("dcgan", "bigan")


def test_generative_views_are_the_images_themselves_up_to_a_flip():
    x = shapes_batch(32).views[0]
    (view,) = generative_views("shapes", SIZE)
    torch.manual_seed(0)
    y = view(x)
    same = (y == x).flatten(1).all(1)
    flipped = (y == x.flip(-1)).flatten(1).all(1)
    assert bool((same | flipped).all()) and 0 < int(flipped.sum()) < 32
    assert view(make_shapes(4, 16, captions=False).images.float() / 255).shape == (4, 3, SIZE, SIZE)
