"""The supervised method's regularisers, whose effect on transfer chapter 2 measures."""

import pytest
import torch
import torch.nn.functional as F

from sslcourse.backbones import ConvNet
from sslcourse.data import Batch
from sslcourse.methods import Supervised
from sslcourse.train import make_optimizer


def _batch(n: int = 8, seed: int = 0) -> Batch:
    gen = torch.Generator().manual_seed(seed)
    return Batch(views=[torch.rand(n, 3, 12, 12, generator=gen)], labels=torch.randint(0, 4, (n,), generator=gen))


def _method(seed: int = 0, **options) -> Supervised:
    torch.manual_seed(seed)
    return Supervised(ConvNet(width=4, depth=2), num_classes=4, **options)


def _head_grad(method: Supervised, batch: Batch) -> torch.Tensor:
    method.zero_grad()
    method.training_step(batch)["loss"].backward()
    return method.projection_head.weight.grad.clone()


def test_label_smoothing_reaches_the_loss_and_its_gradient():
    batch = _batch()
    plain, smooth = _method(), _method(label_smoothing=0.3)
    assert not torch.allclose(_head_grad(plain, batch), _head_grad(smooth, batch))
    smooth.eval()  # no BN update between the two forward passes
    logits = smooth.embed(batch.views[0])
    log_p = F.log_softmax(logits, 1)
    target = torch.full_like(log_p, 0.3 / 4).scatter_add(1, batch.labels[:, None], torch.full((8, 1), 0.7))
    torch.testing.assert_close(smooth.training_step(batch)["loss"], -(target * log_p).sum(1).mean())


def test_dropout_acts_in_training_only():
    batch, method = _batch(), _method(dropout=0.5)
    method.eval()
    assert torch.equal(method.training_step(batch)["loss"], method.training_step(batch)["loss"])
    method.train()
    torch.manual_seed(1)
    first = method.training_step(batch)["loss"]
    assert not torch.equal(first, method.training_step(batch)["loss"])


def test_head_weight_decay_is_the_classifiers_own_and_spares_its_bias():
    method = _method(head_weight_decay=0.5)
    decays = {id(p): g["weight_decay"] for g in make_optimizer(method, "sgd", 0.1, 1e-4).param_groups
              for p in g["params"]}
    assert decays[id(method.projection_head.weight)] == 0.5 and decays[id(method.projection_head.bias)] == 0.0
    assert decays[id(method.backbone.blocks[0].weight)] == 1e-4


@pytest.mark.parametrize("steps", [1, 3])
def test_adversarial_examples_stay_within_epsilon_and_raise_the_loss(steps):
    batch, method = _batch(16), _method(adversarial_steps=steps, adversarial_epsilon=8 / 255).eval()
    x = batch.views[0]
    x_adv = method.adversarial_examples(x, batch.labels)
    assert (x_adv - x).abs().max() <= 8 / 255 + 1e-6 and x_adv.min() >= 0 and x_adv.max() <= 1
    with torch.no_grad():
        clean = F.cross_entropy(method.embed(x), batch.labels)
        attacked = F.cross_entropy(method.embed(x_adv), batch.labels)
    assert attacked > clean
