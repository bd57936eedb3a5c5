"""Chapter-5 losses against naive per-sample loops and analytic values."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from sslcourse import losses


def rand(*shape: int, seed: int = 0) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def test_margin_contrastive_matches_loop():
    z1, z2, same = rand(6, 4), rand(6, 4, seed=1), torch.tensor([1, 0, 1, 0, 0, 1])
    naive = 0.0
    for i in range(6):
        d = torch.dist(z1[i], z2[i])
        naive += d**2 if same[i] else max(0.0, 1.5 - d) ** 2
    assert losses.margin_contrastive(z1, z2, same, margin=1.5).item() == pytest.approx(float(naive) / 6, abs=1e-10)


def test_triplet_matches_loop_and_is_zero_past_the_margin():
    a, p, n = rand(5, 3), rand(5, 3, seed=1), rand(5, 3, seed=2)
    naive = sum(max(0.0, float((a[i] - p[i]).square().sum() - (a[i] - n[i]).square().sum() + 0.2))
                for i in range(5)) / 5
    assert losses.triplet(a, p, n, 0.2).item() == pytest.approx(naive, abs=1e-10)
    assert losses.triplet(a, a, a + 10.0, 0.2).item() == 0.0  # the epsilon problem: nothing left to learn


def naive_info_nce(q, kp, kn, t):
    q, kp, kn = F.normalize(q, dim=-1), F.normalize(kp, dim=-1), F.normalize(kn, dim=-1)
    total = 0.0
    for i in range(len(q)):
        negs = kn if kn.ndim == 2 else kn[i]
        num = torch.exp(q[i] @ kp[i] / t)
        total -= torch.log(num / (num + sum(torch.exp(q[i] @ k / t) for k in negs)))
    return total / len(q)


@pytest.mark.parametrize("shared", [True, False])
def test_info_nce_matches_loop(shared):
    q, kp = rand(4, 5), rand(4, 5, seed=1)
    kn = rand(7, 5, seed=2) if shared else rand(4, 7, 5, seed=2)
    assert losses.info_nce(q, kp, kn, 0.2).item() == pytest.approx(naive_info_nce(q, kp, kn, 0.2).item(), abs=1e-10)


def test_info_nce_uniform_value_and_key_gets_no_gradient():
    q = torch.ones(3, 4, requires_grad=True)
    k = torch.ones(3, 4, requires_grad=True)
    loss = losses.info_nce(q, k, torch.ones(9, 4), temperature=1.0)
    assert loss.item() == pytest.approx(math.log(10), abs=1e-6)
    loss.backward()
    assert k.grad is None


def naive_supcon(z, y, t):
    z = F.normalize(z, dim=1)
    anchors = []
    for i in range(len(z)):
        pos = [p for p in range(len(z)) if p != i and y[p] == y[i]]
        if not pos:
            continue
        denom = sum(torch.exp(z[i] @ z[a] / t) for a in range(len(z)) if a != i)
        anchors.append(-sum(torch.log(torch.exp(z[i] @ z[p] / t) / denom) for p in pos) / len(pos))
    return sum(anchors) / len(anchors)


def test_supcon_matches_loop_and_leaves_anchors_without_a_positive_out_of_the_mean():
    z, y = rand(7, 4), torch.tensor([0, 1, 0, 2, 1, 0, 3])
    assert losses.supcon(z, y, 0.1).item() == pytest.approx(naive_supcon(z, y, 0.1).item(), abs=1e-9)


def test_supcon_without_any_positive_is_a_zero_that_backward_accepts():
    z = rand(5, 4).requires_grad_()
    loss = losses.supcon(z, torch.arange(5), 0.1)
    assert loss.item() == 0.0
    loss.backward()  # still connected to z: a training step on such a batch runs and changes nothing
    assert z.grad is not None and not z.grad.any()


def test_supcon_with_unique_labels_pairs_is_nt_xent():
    """Two views per image, each image its own class: SupCon reduces to NT-Xent."""
    z1, z2 = rand(5, 4), rand(5, 4, seed=1)
    y = torch.arange(5).repeat(2)
    assert losses.supcon(torch.cat([z1, z2]), y, 0.5).item() == pytest.approx(
        losses.nt_xent(z1, z2, 0.5).item(), abs=1e-10)


def test_clip_loss_matches_loop():
    u, v = rand(5, 3), rand(5, 3, seed=1)
    un, vn = F.normalize(u, dim=1), F.normalize(v, dim=1)
    s = un @ vn.T / 0.07
    naive = sum(-torch.log_softmax(s[i], 0)[i] - torch.log_softmax(s[:, i], 0)[i] for i in range(5)) / 10
    assert losses.clip_loss(u, v, 0.07).item() == pytest.approx(naive.item(), abs=1e-9)
    # the mean of the image->text and text->image cross-entropies; symmetric in its two arguments
    target = torch.arange(5)
    halves = (F.cross_entropy(s, target) + F.cross_entropy(s.T, target)) / 2
    assert losses.clip_loss(u, v, 0.07).item() == pytest.approx(halves.item(), abs=1e-9)
    assert losses.clip_loss(v, u, 0.07).item() == pytest.approx(losses.clip_loss(u, v, 0.07).item(), abs=1e-9)
    # identical embeddings leave every candidate equally likely: log N at tau = 1
    same = rand(1, 3).expand(5, 3)
    assert losses.clip_loss(same, same, 1.0).item() == pytest.approx(math.log(5), abs=1e-9)


def test_cpc_matches_loop():
    c, z, w = rand(4, 3), rand(4, 2, 5, seed=1), rand(2, 5, 3, seed=2)
    total = 0.0
    for k in range(2):
        for i in range(4):
            scores = torch.stack([z[j, k] @ w[k] @ c[i] for j in range(4)])
            total -= torch.log_softmax(scores, 0)[i]
    assert losses.cpc_info_nce(c, z, w).item() == pytest.approx(total.item() / 8, abs=1e-9)


def test_hard_negative_nt_xent_matches_loop_and_reduces_to_nt_xent():
    z1, z2, t, beta = rand(5, 4), rand(5, 4, seed=1), 0.5, 1.5
    z = F.normalize(torch.cat([z1, z2]), dim=1)
    n2, total = 10, 0.0
    for i in range(n2):
        p = (i + 5) % n2
        negs = [k for k in range(n2) if k not in (i, p)]
        s = {k: float(z[i] @ z[k]) / t for k in range(n2)}
        w = [math.exp(beta * s[k]) for k in negs]
        weighted = (n2 - 2) * sum(wk * math.exp(s[k]) for wk, k in zip(w, negs, strict=False)) / sum(w)
        total += -math.log(math.exp(s[p]) / (math.exp(s[p]) + weighted))
    assert losses.hard_negative_nt_xent(z1, z2, t, beta).item() == pytest.approx(total / n2, abs=1e-8)
    assert losses.hard_negative_nt_xent(z1, z2, t, 0.0).item() == pytest.approx(losses.nt_xent(z1, z2, t).item(),
                                                                                 abs=1e-10)


WRONG_SHAPES = {
    "nt_xent": lambda: losses.nt_xent(rand(4, 3), rand(5, 3)),
    "hard_negative_nt_xent": lambda: losses.hard_negative_nt_xent(rand(4, 3), rand(4, 2)),
    "margin_contrastive": lambda: losses.margin_contrastive(rand(4, 3), rand(4, 3), torch.ones(5)),
    "triplet": lambda: losses.triplet(rand(4, 3), rand(4, 3), rand(3, 3)),
    "info_nce": lambda: losses.info_nce(rand(4, 3), rand(4, 3), rand(7, 2)),
    "info_nce per-query negatives": lambda: losses.info_nce(rand(4, 3), rand(4, 3), rand(5, 7, 3)),
    "supcon": lambda: losses.supcon(rand(6, 3), torch.zeros(5, dtype=torch.long)),
    "clip_loss": lambda: losses.clip_loss(rand(4, 3), rand(6, 3)),
    "cpc_info_nce": lambda: losses.cpc_info_nce(rand(4, 3), rand(4, 2, 5), rand(2, 3, 5)),
}


@pytest.mark.parametrize("case", list(WRONG_SHAPES))
def test_contrastive_losses_reject_wrong_shapes_naming_expected_and_given(case):
    loss = case.split()[0]
    with pytest.raises(ValueError, match=rf"^{loss} expects .*\(.+; got \w+ \(\d"):  # expected, then given
        WRONG_SHAPES[case]()
