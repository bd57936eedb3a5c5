"""The method contract of ``sslcourse.methods.base``, item by item, for every image method:
the diagnostics ``training_step`` returns and what they are measured on, ``embed`` and the
before/after-head probe, the ``pending`` hand-over to ``on_after_step``, ``Batch.to``, the
``players`` path of ``fit`` (a toy GAN), ``sample``, the ``SPECS`` registry and its overrides,
and a pretext task reading ``batch.targets``."""

from __future__ import annotations

import dataclasses
import inspect
import itertools

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor, nn

import sslcourse.methods as methods_module
from sslcourse import experiment
from sslcourse.analysis import embedding_std
from sslcourse.backbones import ConvNet
from sslcourse.data import Batch, make_shapes
from sslcourse.experiment import views_for
from sslcourse.methods import IMAGE_METHODS, SPECS, Method, build_method
from sslcourse.profiles import Profile, get_profile
from sslcourse.train import fit, make_optimizers

SIZE = 12
# What each method leaves in ``pending`` for ``on_after_step`` (the base class's docstring).
PENDING = {"moco": {"keys"}, "dino": {"teacher_logits"}}


def small_backbone(in_channels: int) -> ConvNet:
    return ConvNet(width=4, depth=2, in_channels=in_channels)


def small_method(name: str, **overrides: object) -> Method:
    torch.manual_seed(0)
    return build_method(name, small_backbone, num_classes=8, head_hidden_dim=16, **overrides)


def images(n: int = 16, seed: int = 0) -> tuple[Tensor, Tensor]:
    data = make_shapes(n, SIZE, seed=seed, captions=False)
    return data.images.float() / 255, data.labels


def course_batch(name: str, n: int = 16) -> Batch:
    """A batch of the views the course trains ``name`` on."""
    x, y = images(n)
    return Batch(views=[t(x) for t in views_for(name, "shapes", SIZE)], labels=y)


# --- training_step's diagnostics --------------------------------------------------------------


@pytest.mark.parametrize("name", IMAGE_METHODS)
def test_training_step_reports_detached_scalar_collapse_signals(name):
    method = small_method(name)
    method.track_rank = True
    out = method.training_step(course_batch(name))
    assert {"loss", "z_std", "z_raw_std", "z_erank"} <= set(out)
    assert all(v.ndim == 0 for v in out.values()), {k: v.shape for k, v in out.items()}
    assert out["loss"].requires_grad
    assert not any(v.requires_grad for k, v in out.items() if k != "loss")


@pytest.mark.parametrize("name", IMAGE_METHODS)
def test_effective_rank_is_logged_only_with_track_rank(name):
    method = small_method(name)
    assert not method.track_rank and "z_erank" not in method.training_step(course_batch(name))


def z_of_training_step(method: Method, name: str, x: Tensor) -> Tensor:
    """The tensor whose spread ``name``'s training_step reports, computed from ``embed``."""
    z = method.embed(x)
    if name == "cmc":  # the luminance head's output: the first half of CMC's concatenated z
        return z.chunk(2, dim=1)[0]
    return z  # SupCon: view 1's rows; DINO: the student's output on the first global view


def step_on_identical_views(name: str) -> tuple[dict[str, Tensor], Tensor, Tensor]:
    """(training_step's output, z from ``embed``, h) on identity views, deterministically.

    Eval mode makes BatchNorm deterministic, and identical identity "views" remove the
    augmentations, so the step's z on view 1 must equal embed(x). CMC's own colour jitter is
    switched off for the same reason."""
    overrides = {"color_jitter": None} if name == "cmc" else {}
    method = small_method(name, **overrides).eval()
    x, y = images()
    n_views = len(views_for(name, "shapes", SIZE))
    with torch.no_grad():
        out = method.training_step(Batch(views=[x] * n_views, labels=y))
        return out, z_of_training_step(method, name, x), method.encode(x)


@pytest.mark.parametrize("name", IMAGE_METHODS)
def test_z_std_is_measured_on_the_projection_heads_output(name):
    out, z, h = step_on_identical_views(name)
    assert torch.allclose(out["z_std"], embedding_std(z), atol=1e-6), name
    if not isinstance(small_method(name).projection_head, nn.Identity):  # pretext tasks: z = h
        # a z of another tensor (h, say) would give a different value: the comparison can fail
        assert not torch.allclose(embedding_std(h), embedding_std(z), atol=1e-4)


@pytest.mark.parametrize("name", IMAGE_METHODS)
def test_z_raw_std_is_the_unnormalised_spread_of_z(name):
    out, z, _ = step_on_identical_views(name)  # SwAV normalises z for its loss: not here
    assert torch.allclose(out["z_raw_std"], z.float().std(0).mean(), atol=1e-6), name


# --- embed and the probe before and after the head ---------------------------------------------


@pytest.fixture(scope="module")
def probe_data():
    return make_shapes(240, SIZE, seed=0, captions=False), make_shapes(120, SIZE, seed=1, captions=False)


@pytest.mark.parametrize("name", IMAGE_METHODS)
def test_probe_before_and_after_head_works_for_every_image_method(name, probe_data):
    train, test = probe_data
    result = experiment.probe_before_and_after_head(small_method(name), train, test)
    assert set(result) == {"h", "z"}
    for accuracies in result.values():
        assert set(accuracies) == {"class", "color", "bg_color"}
        assert all(0.0 <= a <= 1.0 for a in accuracies.values())


def test_position_cells_cut_the_training_positions_into_equal_thirds(probe_data):
    train, test = probe_data
    cells = experiment.position_cells(train, train)
    assert cells.dtype == torch.int64 and cells.min() >= 0 and cells.max() < 9
    column, row = cells // 3, cells % 3  # pos_x's third, pos_y's third
    for third in (column, row):
        assert (third.bincount(minlength=3) - len(train) / 3).abs().max() <= 1
    assert (column[train.factors["pos_x"].argsort()].diff() >= 0).all()  # ordered along x
    assert experiment.position_cells(test, train).shape == (len(test),)


def test_probe_features_reads_a_target_written_into_the_features(probe_data):
    train, test = probe_data
    cells = (experiment.position_cells(train, train), experiment.position_cells(test, train))
    one_hot = [F.one_hot(c, 9).float() for c in cells]
    result = experiment.probe_features(*one_hot, train, test, ("position", "class"))
    assert result["position"] == 1.0 and result["class"] < 0.6


# --- pending: the hand-over from training_step to on_after_step ---------------------------------


@pytest.mark.parametrize("name", IMAGE_METHODS)
def test_pending_is_filled_by_training_step_and_emptied_by_on_after_step(name):
    method = small_method(name)
    batch = course_batch(name)
    assert method.pending == {}
    method.training_step(batch)
    assert set(method.pending) == PENDING.get(name, set())
    held = dict(method.pending)
    method.on_after_step(0, 10)
    assert method.pending == {}
    if name == "moco":  # the keys of this step were enqueued: the queue was at position 0
        assert held["keys"].shape == (len(batch), method.queue.shape[1])
        assert torch.allclose(method.queue[: len(batch)], held["keys"])
    if name == "dino":  # the center moved towards this step's teacher logits (zero center before)
        assert held["teacher_logits"].shape[:2] == (2, len(batch))
        assert torch.allclose(method.center, (1 - method.center_momentum) * held["teacher_logits"].mean((0, 1)))


# --- Batch ------------------------------------------------------------------------------------


def test_batch_to_moves_every_field_and_makes_float_images_channels_last():
    n = 4
    batch = Batch(views=[torch.rand(n, 3, 5, 5), torch.rand(n, 1, 16), torch.randint(0, 255, (n, 3, 5, 5))],
                  labels=torch.arange(n), tokens=torch.randint(0, 9, (n, 7)),
                  masks=torch.rand(n, 5, 5) > 0.5, targets=torch.randint(0, 4, (n,)))
    moved = batch.to("meta")  # a device other than the CPU, without needing a GPU
    fields = [*moved.views, moved.labels, moved.tokens, moved.masks, moved.targets]
    assert all(t.device.type == "meta" for t in fields)
    assert moved.views[0].is_contiguous(memory_format=torch.channels_last)
    assert not moved.views[0].is_contiguous()  # really reordered (a 5x5 image with 3 channels)
    assert moved.views[1].is_contiguous() and moved.views[2].is_contiguous()  # signals, integer images
    for before, after in zip([*batch.views, batch.labels, batch.tokens, batch.masks, batch.targets], fields,
                             strict=True):
        assert (after.dtype, after.shape) == (before.dtype, before.shape)
    same = batch.to("cpu")
    assert all(torch.equal(a, b) for a, b in zip(same.views, batch.views, strict=True))
    assert torch.equal(same.tokens, batch.tokens) and torch.equal(same.targets, batch.targets)
    assert len(batch) == n


def test_batch_to_keeps_absent_fields_absent():
    moved = Batch(views=[torch.rand(3, 3, 4, 4)], labels=torch.zeros(3)).to("meta")
    assert (moved.tokens, moved.masks, moved.targets) == (None, None, None)
    assert len(moved) == 3


# --- players: a toy GAN through fit ---------------------------------------------------------


class PointFeatures(nn.Sequential):
    """The discriminator's body on 2-D points (a backbone: it says its ``feature_dim``)."""

    def __init__(self, width: int = 16) -> None:
        super().__init__(nn.Linear(2, width), nn.LeakyReLU(0.2), nn.Linear(width, width), nn.LeakyReLU(0.2))
        self.feature_dim = width


class ToyGAN(Method):
    """A GAN on 2-D points: the discriminator is backbone + projection head (one logit), the
    generator maps Gaussian noise to points. Each ``training_step`` records which player ran
    and a copy of both players' weights, so the test can see what each optimizer changed."""

    players = ("discriminator", "generator")

    def __init__(self, latent_dim: int = 2) -> None:
        super().__init__(PointFeatures(), nn.Linear(16, 1))
        self.generator = nn.Sequential(nn.Linear(latent_dim, 16), nn.ReLU(), nn.Linear(16, 2))
        self.latent_dim = latent_dim
        self.calls: list[tuple[str, list[Tensor], list[Tensor]]] = []

    def discriminator_parameters(self) -> list[nn.Parameter]:
        return [*self.backbone.parameters(), *self.projection_head.parameters()]

    def param_groups(self) -> list[dict]:
        return [{"params": self.discriminator_parameters(), "lr_scale": 1.0, "player": "discriminator"},
                {"params": list(self.generator.parameters()), "lr_scale": 1.0, "player": "generator"}]

    def sample(self, n: int) -> Tensor:
        return self.generator(torch.randn(n, self.latent_dim, device=self.projection_head.weight.device))

    def training_step(self, batch: Batch, player: str) -> dict[str, Tensor]:
        self.calls.append((player, [p.detach().clone() for p in self.discriminator_parameters()],
                           [p.detach().clone() for p in self.generator.parameters()]))
        real = batch.views[0]
        # Not detached on purpose: the discriminator's loss then gives the generator gradients
        # too, and only the optimizer choice keeps them from moving it.
        fake = self.sample(len(real))
        d_real, d_fake = self.embed(real), self.embed(fake)
        if player == "discriminator":
            loss = (F.binary_cross_entropy_with_logits(d_real, torch.ones_like(d_real))
                    + F.binary_cross_entropy_with_logits(d_fake, torch.zeros_like(d_fake)))
        else:
            loss = F.binary_cross_entropy_with_logits(d_fake, torch.ones_like(d_fake))
        return {"loss": loss, **self.collapse_diagnostics(fake)}


def unchanged(before: list[Tensor], after: list[Tensor]) -> bool:
    return all(torch.equal(a, b) for a, b in zip(before, after, strict=True))


@pytest.fixture(scope="module")
def trained_gan() -> tuple[ToyGAN, list[dict]]:
    torch.manual_seed(0)
    real = torch.randn(64, 2) * 0.1 + torch.tensor([2.0, -1.0])
    gan = ToyGAN()
    history = fit(gan, [Batch(views=[real], labels=torch.zeros(64))], 40, lr=1e-2, log_every=10,
                  progress=False, device="cpu")
    return gan, history


def test_fit_logs_each_players_loss_and_their_sum(trained_gan):
    _, history = trained_gan
    assert len(history) == 4
    for record in history:
        assert {"loss_discriminator", "loss_generator", "z_std_generator"} <= set(record)
        assert record["loss"] == pytest.approx(record["loss_discriminator"] + record["loss_generator"], rel=1e-5)


def test_fit_steps_the_players_in_turn_each_optimizer_moving_only_its_own_weights(trained_gan):
    gan, _ = trained_gan
    assert [c[0] for c in gan.calls] == ["discriminator", "generator"] * 40
    for (player, d_before, g_before), (_, d_after, g_after) in itertools.pairwise(gan.calls):
        if player == "discriminator":  # between this call and the next, only the discriminator stepped
            assert unchanged(g_before, g_after) and not unchanged(d_before, d_after)
        else:
            assert unchanged(d_before, d_after) and not unchanged(g_before, g_after)


def test_make_optimizers_gives_each_player_exactly_its_tagged_parameters():
    gan = ToyGAN()
    optimizers = make_optimizers(gan)
    assert list(optimizers) == ["discriminator", "generator"]

    def ids(opt: torch.optim.Optimizer) -> set[int]:
        return {id(p) for g in opt.param_groups for p in g["params"]}

    assert ids(optimizers["discriminator"]) == {id(p) for p in gan.discriminator_parameters()}
    assert ids(optimizers["generator"]) == {id(p) for p in gan.generator.parameters()}


def test_a_generative_method_samples_n_points(trained_gan):
    gan, _ = trained_gan
    with torch.no_grad():
        assert gan.sample(5).shape == (5, 2)


def test_players_with_untagged_parameter_groups_are_refused():
    class Untagged(ToyGAN):
        def param_groups(self) -> list[dict]:
            return Method.param_groups(self)  # one group, no "player"

    with pytest.raises(ValueError, match="must tag every group with one of its players"):
        make_optimizers(Untagged())


def test_sample_of_a_non_generative_method_says_so():
    with pytest.raises(NotImplementedError, match="SimCLR is not a generative method"):
        small_method("simclr").sample(4)


# --- the registry ----------------------------------------------------------------------------


def test_specs_declare_every_exported_method_class():
    exported = {obj for obj in vars(methods_module).values()
                if inspect.isclass(obj) and issubclass(obj, Method) and obj is not Method}
    assert exported and exported <= {spec.method for spec in SPECS.values()}
    assert all(spec.name == name for name, spec in SPECS.items())


def test_build_method_applies_an_override():
    assert small_method("moco", queue_size=24).queue.shape[0] == 24
    assert small_method("moco").queue.shape[0] != 24


def test_build_method_rejects_an_unknown_argument_by_name():
    with pytest.raises(TypeError, match="queue_length"):
        small_method("moco", queue_length=24)


def test_profile_cannot_be_built_from_positional_numbers():
    fields = dataclasses.asdict(get_profile("ci"))
    assert Profile(**fields) == get_profile("ci")
    with pytest.raises(TypeError):
        Profile(*fields.values())


# --- a pretext task: the batch carries its targets ---------------------------------------------


class MissingChannel(Method):
    """A pretext task (a cousin of rotation prediction and colourisation): tell which colour
    channel of the image was zeroed. Its labels come in ``batch.targets``, not ``batch.labels``."""

    def __init__(self, backbone: nn.Module) -> None:
        super().__init__(backbone, nn.Linear(backbone.feature_dim, 3))

    def training_step(self, batch: Batch) -> dict[str, Tensor]:
        logits = self.embed(batch.views[0])
        return {"loss": F.cross_entropy(logits, batch.targets), **self.collapse_diagnostics(logits)}


def channel_dropped(x: Tensor, seed: int) -> Batch:
    k = torch.randint(0, 3, (len(x),), generator=torch.Generator().manual_seed(seed))
    keep = 1.0 - F.one_hot(k, 3).float()[:, :, None, None]
    return Batch(views=[x * keep], labels=torch.full((len(x),), -1), targets=k)


def test_a_pretext_method_trains_on_the_targets_its_batches_carry():
    torch.manual_seed(0)
    x, _ = images(64)
    loader = [channel_dropped(x, seed) for seed in range(4)]
    method = MissingChannel(ConvNet(width=4, depth=2))
    history = fit(method, loader, 40, lr=1e-2, log_every=10, progress=False, device="cpu")
    assert history[-1]["loss"] < 0.5 * history[0]["loss"], [h["loss"] for h in history]
    test = channel_dropped(images(64, seed=1)[0], seed=99)
    with torch.no_grad():
        accuracy = (method.embed(test.views[0]).argmax(1) == test.targets).float().mean()
    assert accuracy > 0.8  # chance: 1/3
