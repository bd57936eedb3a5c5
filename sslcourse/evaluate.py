"""Downstream evaluation of frozen representations (Course: :ref:`ch1-downstream`).

- ``extract_features``: run a frozen encoder over a dataset once (inference mode: BatchNorm
  uses its running statistics, no dropout).
- ``knn_accuracy``: cosine similarity, temperature-weighted votes of the k nearest training
  samples (Wu et al. 2018), the usual monitor of SSL training.
- ``ncc_accuracy``: nearest class centre.
- ``linear_probe``: L2-regularised multinomial logistic regression fit by full-batch L-BFGS on
  precomputed features, with a regularisation sweep and warm starts (Kolesnikov et al. 2019).
- ``linear_probe_sgd``: the same model trained by mini-batch SGD, for comparison.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .data import ImageSet


@torch.no_grad()
def extract_features(encoder: Callable[[Tensor], Tensor], data: ImageSet | Tensor,
                     batch_size: int = 512, device: str | torch.device | None = None) -> Tensor:
    """Return the features (N, D), float32 on the CPU, of every image of ``data``.

    ``encoder`` is a method (its ``encode`` is used), an ``nn.Module`` or any callable on
    float images (B, C, H, W) in [0, 1]. Modules are put in eval mode for the pass and
    restored afterwards.
    """
    images = data.images if isinstance(data, ImageSet) else data
    fn = encoder.encode if hasattr(encoder, "encode") else encoder
    module = encoder if isinstance(encoder, nn.Module) else None
    if device is None:
        params = list(module.parameters()) if module is not None else []
        device = params[0].device if params else torch.device("cpu")
    was_training = module.training if module is not None else False
    if module is not None:
        module.eval()
    autocast = torch.autocast("cuda", dtype=torch.bfloat16, enabled=torch.device(device).type == "cuda")
    feats = []
    with autocast:
        for i in range(0, len(images), batch_size):
            x = images[i : i + batch_size].to(device).float().div_(255)
            feats.append(fn(x).float().cpu())
    if module is not None:
        module.train(was_training)
    return torch.cat(feats)


def raw_pixels(data: ImageSet) -> Tensor:
    """Return the images flattened to (N, C*H*W) floats in [0, 1]: the no-learning baseline."""
    return data.images.flatten(1).float() / 255


@torch.no_grad()
def knn_accuracy(train_x: Tensor, train_y: Tensor, test_x: Tensor, test_y: Tensor,
                 k: int = 20, temperature: float = 0.07, chunk: int = 1024) -> float:
    r"""Return the accuracy of a weighted k-nearest-neighbour classifier on cosine similarity.

    Each test point takes its k most similar training points; neighbour j votes for its
    class with weight :math:`\exp(s_j / T)` (Wu et al. 2018, "Unsupervised feature learning
    via non-parametric instance discrimination", eq. 7, T = 0.07).

    Args:
        train_x: (N, D) features; train_y: (N,) labels. test_x: (M, D); test_y: (M,).
    """
    _check_pair(train_x, train_y, "train")
    _check_pair(test_x, test_y, "test")
    num_classes = int(max(train_y.max(), test_y.max())) + 1
    train_n = F.normalize(train_x.float(), dim=1)
    correct = 0
    for i in range(0, len(test_x), chunk):
        q = F.normalize(test_x[i : i + chunk].float(), dim=1)
        sim, idx = (q @ train_n.T).topk(min(k, len(train_x)), dim=1)  # (m, k)
        # exp((s - s_max) / T): the same votes up to a factor per test point, finite at any T
        weights = ((sim - sim[:, :1]) / temperature).exp()  # topk sorts: column 0 is the largest
        votes = torch.zeros(len(q), num_classes).scatter_add_(1, train_y[idx], weights)
        correct += (votes.argmax(1) == test_y[i : i + chunk]).sum().item()
    return correct / len(test_x)


@torch.no_grad()
def ncc_accuracy(train_x: Tensor, train_y: Tensor, test_x: Tensor, test_y: Tensor) -> float:
    """Return the accuracy of the nearest-class-centre classifier (Euclidean distance to the
    mean training feature of each class; Ben-Shaul et al. 2023). Course: :ref:`ch1-knn`."""
    _check_pair(train_x, train_y, "train")
    classes = train_y.unique()
    centres = torch.stack([train_x[train_y == c].float().mean(0) for c in classes])  # (C, D)
    pred = classes[torch.cdist(test_x.float(), centres).argmin(1)]
    return (pred == test_y).float().mean().item()


@dataclass
class ProbeResult:
    """Outcome of ``linear_probe``: test accuracy, chosen L2 strength and the sweep."""

    accuracy: float
    l2: float
    sweep: list[tuple[float, float]] = field(default_factory=list)  # (l2, validation accuracy)
    classifier: nn.Linear | None = None


def _fit_logreg(x: Tensor, y: Tensor, l2: float, layer: nn.Linear, max_iter: int) -> None:
    """Fit ``layer`` in place: mean cross-entropy + l2/2 ||W||^2, full-batch L-BFGS."""
    opt = torch.optim.LBFGS(layer.parameters(), lr=1, max_iter=max_iter, history_size=20,
                            line_search_fn="strong_wolfe", tolerance_grad=1e-6)

    def closure() -> Tensor:
        opt.zero_grad()
        loss = F.cross_entropy(layer(x), y) + 0.5 * l2 * layer.weight.pow(2).sum()
        loss.backward()
        return loss

    opt.step(closure)


def linear_probe(train_x: Tensor, train_y: Tensor, test_x: Tensor, test_y: Tensor,
                 l2_grid: tuple[float, ...] = (1e-1, 1e-2, 1e-3, 1e-4, 1e-5, 0.0),
                 val_fraction: float = 0.2, max_iter: int = 200, seed: int = 0) -> ProbeResult:
    """Return the test accuracy of an L2-regularised logistic regression on frozen features.

    Features are standardised with the training mean/std. The sweep goes from the strongest
    to the weakest regularisation, each fit warm-started from the previous solution, and
    picks the L2 strength with the best accuracy on a held-out ``val_fraction`` of the
    training set; the final classifier is refit on all training data with that strength.
    """
    _check_pair(train_x, train_y, "train")
    xtr, xte = _standardize(train_x, test_x)
    num_classes = int(max(train_y.max(), test_y.max())) + 1
    gen = torch.Generator().manual_seed(seed)
    perm = torch.randperm(len(xtr), generator=gen)
    n_val = max(1, int(val_fraction * len(xtr)))
    val, fit_idx = perm[:n_val], perm[n_val:]
    layer = nn.Linear(xtr.shape[1], num_classes)
    nn.init.zeros_(layer.weight), nn.init.zeros_(layer.bias)
    sweep = []
    for l2 in sorted(l2_grid, reverse=True):
        _fit_logreg(xtr[fit_idx], train_y[fit_idx], l2, layer, max_iter)
        with torch.no_grad():
            sweep.append((l2, (layer(xtr[val]).argmax(1) == train_y[val]).float().mean().item()))
    best = max(sweep, key=lambda s: s[1])[0]
    final = nn.Linear(xtr.shape[1], num_classes)
    nn.init.zeros_(final.weight), nn.init.zeros_(final.bias)
    _fit_logreg(xtr, train_y, best, final, max_iter)
    with torch.no_grad():
        acc = (final(xte).argmax(1) == test_y).float().mean().item()
    return ProbeResult(accuracy=acc, l2=best, sweep=sweep, classifier=final)


def linear_probe_sgd(train_x: Tensor, train_y: Tensor, test_x: Tensor, test_y: Tensor,
                     epochs: int = 50, lr: float = 0.1, weight_decay: float = 1e-4,
                     batch_size: int = 256, seed: int = 0) -> float:
    """Return the test accuracy of the same logistic regression trained by mini-batch SGD
    (momentum 0.9, cosine learning rate) on standardised features."""
    _check_pair(train_x, train_y, "train")
    xtr, xte = _standardize(train_x, test_x)
    num_classes = int(max(train_y.max(), test_y.max())) + 1
    gen = torch.Generator().manual_seed(seed)
    layer = nn.Linear(xtr.shape[1], num_classes)
    opt = torch.optim.SGD(layer.parameters(), lr=lr, momentum=0.9, weight_decay=weight_decay)
    steps = epochs * -(-len(xtr) // batch_size)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)
    for _ in range(epochs):
        perm = torch.randperm(len(xtr), generator=gen)
        for i in range(0, len(xtr), batch_size):
            idx = perm[i : i + batch_size]
            loss = F.cross_entropy(layer(xtr[idx]), train_y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
    with torch.no_grad():
        return (layer(xte).argmax(1) == test_y).float().mean().item()


def _standardize(train_x: Tensor, test_x: Tensor) -> tuple[Tensor, Tensor]:
    """Scale every feature to zero mean and unit std using the training statistics only."""
    mean, std = train_x.mean(0), train_x.std(0) + 1e-6
    return (train_x - mean) / std, (test_x - mean) / std


def _check_pair(x: Tensor, y: Tensor, what: str) -> None:
    if x.ndim != 2 or y.ndim != 1 or len(x) != len(y):
        raise ValueError(f"{what} features must be (N, D) with labels (N,); got {tuple(x.shape)} "
                         f"and {tuple(y.shape)}")


def kmeans_scores(features: Tensor, labels: Tensor, n_clusters: int | None = None, seed: int = 0) -> dict[str, float]:
    """Return NMI and ARI between k-means clusters of the L2-normalised features and the labels."""
    from sklearn.cluster import KMeans
    from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score

    x = F.normalize(features.float(), dim=1).numpy()
    k = n_clusters or int(labels.max()) + 1
    clusters = KMeans(n_clusters=k, n_init=10, random_state=seed).fit_predict(x)
    y = labels.cpu().numpy()
    return {"nmi": float(normalized_mutual_info_score(y, clusters)), "ari": float(adjusted_rand_score(y, clusters))}
