from __future__ import annotations

import pytest
import torch

from sslcourse import augment
from sslcourse.backbones import ConvNet
from sslcourse.data import Batch, DeviceLoader, MultiViewLoader, make_shapes
from sslcourse.experiment import views_for
from sslcourse.methods import IMAGE_METHODS, MoCo, build_method
from sslcourse.train import fit


def small_moco(queue_size: int = 8) -> MoCo:
    torch.manual_seed(0)
    return MoCo(ConvNet(width=4, depth=2), hidden_dim=16, projection_dim=4, queue_size=queue_size, bn_splits=2)


def test_queue_is_first_in_first_out():
    moco = small_moco(queue_size=5)
    first, second = torch.ones(3, 4), 2 * torch.ones(3, 4)
    moco.enqueue(first)
    moco.enqueue(second)  # wraps: fills slots 3, 4, then overwrites slot 0
    assert moco.queue[:, 0].tolist() == [2, 1, 1, 2, 2] and int(moco.queue_ptr) == 1


def test_key_encoder_gets_no_gradient_and_follows_by_ema():
    moco = small_moco()
    x = torch.rand(8, 3, 8, 8)
    out = moco.training_step(Batch(views=[x, x.flip(-1)], labels=torch.zeros(8)))
    out["loss"].backward()
    assert all(p.grad is None for p in moco.key_backbone.parameters())
    assert all(p.grad is None for p in moco.key_head.parameters())
    online = next(moco.backbone.parameters())
    with torch.no_grad():
        online.add_(1.0)
    key = next(moco.key_backbone.parameters())
    before = key.clone()
    moco.on_after_step(0, 10)
    assert torch.allclose(key, before + (1 - moco.momentum) * (online - before))
    assert int(moco.queue_ptr) == 8 % len(moco.queue)


def test_moco_loss_falls():
    torch.manual_seed(0)
    data = make_shapes(256, 12, captions=False)
    loader = MultiViewLoader(DeviceLoader(data, 32), augment.shapes_views(12))
    moco = MoCo(ConvNet(width=8, depth=2), hidden_dim=32, projection_dim=16, queue_size=128)
    history = fit(moco, loader, 120, log_every=10, progress=False)
    # The first record has a queue of random vectors (easy negatives); from the second on the
    # queue holds real keys, and the loss must fall from there.
    assert min(h["loss"] for h in history[-4:]) < history[1]["loss"] - 0.1


def test_supcon_method_uses_labels_across_views():
    from sslcourse.losses import supcon
    from sslcourse.methods import SupCon

    torch.manual_seed(0)
    method = SupCon(ConvNet(width=4, depth=2), hidden_dim=16, projection_dim=8)
    x, y = torch.rand(6, 3, 8, 8), torch.tensor([0, 1, 0, 1, 2, 2])
    out = method.training_step(Batch(views=[x, x.flip(-1)], labels=y))
    z = method.projection_head(method.backbone(torch.cat([x, x.flip(-1)])))
    assert torch.allclose(out["loss"], supcon(z, y.repeat(2), 0.1))


def test_cmc_splits_luma_and_chroma_and_encodes_with_both():
    from sslcourse.methods import CMC
    from sslcourse.methods.cmc import luma_chroma

    grey = torch.rand(2, 1, 4, 4).expand(-1, 3, -1, -1)
    y, c = luma_chroma(grey)
    assert torch.allclose(y, grey[:, :1], atol=1e-6) and c.abs().max() < 1e-6  # grey has no chroma
    cmc = CMC(ConvNet(width=8, depth=2, in_channels=1), ConvNet(width=4, depth=2, in_channels=2), hidden_dim=32,
              projection_dim=16)
    assert cmc.encode(torch.rand(3, 3, 12, 12)).shape == (3, 16 + 8)  # both encoders' features
    # CMC's learning test (loss falls, z keeps its spread) is in test_learning.py


def test_cmc_course_views_are_two_independent_crops_without_colour_changes():
    torch.manual_seed(0)
    recipes = views_for("cmc", "shapes", 12)
    # two crops, colour left to CMC's own per-group jitter (a grey view would have no chrominance)
    assert len(recipes) == 2 and all(r.jitter_p == 0 and r.gray_p == 0 for r in recipes)
    x = make_shapes(16, 12, captions=False).images.float() / 255
    first, second = (r(x) for r in recipes)
    assert not torch.allclose(first, second)  # independent crops, not one crop seen twice


def test_cmc_contrasts_the_luminance_of_the_first_view_with_the_chrominance_of_the_second():
    from sslcourse.losses import clip_loss
    from sslcourse.methods import CMC
    from sslcourse.methods.cmc import luma_chroma

    torch.manual_seed(0)
    cmc = CMC(ConvNet(width=4, depth=2, in_channels=1), ConvNet(width=4, depth=2, in_channels=2), hidden_dim=16,
              projection_dim=8).eval()  # no colour jitter, fixed BatchNorm: the step is deterministic
    first, second = torch.rand(6, 3, 8, 8), torch.rand(6, 3, 8, 8)
    with torch.no_grad():
        loss = cmc.training_step(Batch(views=[first, second], labels=torch.zeros(6)))["loss"]
        z_luma = cmc.projection_head.luma(cmc.backbone.luma(luma_chroma(first)[0]))
        z_chroma = cmc.projection_head.chroma(cmc.backbone.chroma(luma_chroma(second)[1]))
        one_crop = cmc.training_step(Batch(views=[first, first], labels=torch.zeros(6)))["loss"]
    assert torch.allclose(loss, clip_loss(z_luma, z_chroma, cmc.temperature))
    assert not torch.allclose(loss, one_crop)  # the second view's chrominance is what it contrasts


@pytest.mark.parametrize("name", IMAGE_METHODS)
def test_every_registered_method_builds_and_steps_on_its_views(name):
    data = make_shapes(16, 12, captions=False)
    x = data.images.float() / 255
    torch.manual_seed(0)
    method = build_method(name, lambda c: ConvNet(width=4, depth=2, in_channels=c), 8, head_hidden_dim=16)
    out = method.training_step(Batch(views=[t(x) for t in views_for(name, "shapes", 12)], labels=data.labels))
    out["loss"].backward()
    assert torch.isfinite(out["loss"]), name
    method.on_after_step(0, 1)
    assert method.encode(x).ndim == 2


def test_unknown_method_names_the_valid_ones():
    with pytest.raises(ValueError, match="simclr"):
        build_method("nosuchmethod", lambda c: ConvNet(width=4, depth=2, in_channels=c))


def test_symmetric_moco_averages_both_directions():
    from sslcourse.losses import info_nce

    moco = small_moco()
    moco.symmetric = True
    x1, x2 = torch.rand(8, 3, 8, 8), torch.rand(8, 3, 8, 8)
    moco.eval()  # deterministic keys: batch norm uses running statistics
    out = moco.training_step(Batch(views=[x1, x2], labels=torch.zeros(8)))

    def q(x):
        return moco.projection_head(moco.backbone(x))

    def k(x):
        return moco.key_head(moco.key_backbone(x))

    want = 0.5 * (info_nce(q(x1), k(x2), moco.queue, 0.2) + info_nce(q(x2), k(x1), moco.queue, 0.2))
    assert torch.allclose(out["loss"], want, atol=1e-6)


def test_build_for_profile_takes_overrides_of_the_profile_settings_too():
    from sslcourse.experiment import build_for_profile
    from sslcourse.profiles import get_profile

    profile = get_profile("ci")
    assert build_for_profile("simclr", profile).temperature == profile.temperature
    assert build_for_profile("simclr", profile, temperature=0.05).temperature == 0.05
    assert build_for_profile("moco", profile, queue_size=64).queue.shape[0] == 64
