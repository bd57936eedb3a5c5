r"""How tightly representations cluster by class: within-class variance against class separation.

- ``cdnv``: the class-distance normalized variance of Galanti et al. 2022 ("On the role of
  neural collapse in transfer learning", section 3), the neural-collapse measure that
  Ben-Shaul et al. 2023 ("Reverse engineering self-supervised learning", arXiv 2305.15614)
  track through SSL training, for semantic classes and for "sample-level" classes;
- ``within_class_variance`` and ``class_mean_distances``: its numerator and denominator,
  averaged over classes and class pairs, the two curves plotted beside it;
- ``augmentation_identity_set``: the sample-level dataset, one class per source image whose
  members are its random augmentations.

All statistics take ``features`` (n, D), floating, and integer ``labels`` (n,) (any values: the
classes are the distinct labels), compute in float64 and return a Python float.

book: chapter 7, ``ch7-clustering`` (planned).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor


def _check(features: Tensor, labels: Tensor, min_classes: int) -> None:
    if features.dim() != 2 or features.shape[0] == 0:
        raise ValueError(f"features must have shape (n, D) with n >= 1, got {tuple(features.shape)}")
    if not torch.is_floating_point(features):
        raise ValueError(f"features must be a floating tensor, got {features.dtype}")
    if labels.dim() != 1 or labels.shape[0] != features.shape[0]:
        raise ValueError(f"labels must have shape ({features.shape[0]},), got {tuple(labels.shape)}")
    if torch.is_floating_point(labels) or torch.is_complex(labels) or labels.dtype == torch.bool:
        raise ValueError(f"labels must be an integer tensor, got {labels.dtype}")
    if not torch.isfinite(features).all():
        raise ValueError("features must be finite")
    n_classes = int(torch.unique(labels).numel())
    if n_classes < min_classes:
        raise ValueError(f"need at least {min_classes} distinct labels, got {n_classes}")


def _class_means_and_variances(features: Tensor, labels: Tensor) -> tuple[Tensor, Tensor]:
    """Per distinct label (sorted): the mean (C, D) and mean squared distance to it (C,), float64."""
    x = features.detach().double()
    _, index, counts = torch.unique(labels, return_inverse=True, return_counts=True)
    counts = counts.to(x.dtype)
    means = torch.zeros(counts.numel(), x.shape[1], dtype=x.dtype, device=x.device).index_add_(0, index, x)
    means = means / counts.unsqueeze(1)
    squared = ((x - means[index]) ** 2).sum(dim=1)
    variances = torch.zeros_like(counts).index_add_(0, index, squared) / counts
    return means, variances


def _squared_mean_distances(means: Tensor) -> Tensor:
    """(C, C) squared distances between class means, via Gram matrices (C x C, not C x C x D)."""
    centred = means - means.mean(dim=0)  # translation-invariant; reduces cancellation in the Gram form
    norms = (centred ** 2).sum(dim=1)
    return (norms.unsqueeze(1) + norms.unsqueeze(0) - 2 * centred @ centred.T).clamp_min(0.0)


def _off_diagonal_mean(matrix: Tensor) -> Tensor:
    mask = ~torch.eye(matrix.shape[0], dtype=torch.bool, device=matrix.device)
    return matrix[mask].mean()


def within_class_variance(features: Tensor, labels: Tensor) -> float:
    r"""Return the within-class variance averaged over the C classes of ``labels`` (n,), ``features`` (n, D).

    .. math:: \frac{1}{C} \sum_c \mathrm{Var}_c, \qquad
              \mathrm{Var}_c = \frac{1}{n_c} \sum_{k : y_k = c} \|f_k - \mu_c\|^2, \qquad
              \mu_c = \frac{1}{n_c} \sum_{k : y_k = c} f_k

    (the variance of Galanti et al. 2022, section 3, under the uniform distribution on the class's
    samples: divided by :math:`n_c`, not :math:`n_c - 1`). Every class has the same weight.
    0 when every feature equals its class mean.
    """
    _check(features, labels, min_classes=1)
    return float(_class_means_and_variances(features, labels)[1].mean())


def class_mean_distances(features: Tensor, labels: Tensor) -> float:
    r"""Return the mean squared distance between the means of two different classes.

    .. math:: \frac{1}{C (C - 1)} \sum_{i \neq j} \|\mu_i - \mu_j\|^2

    with :math:`\mu_c` the mean of class :math:`c`'s rows of ``features`` (n, D), ``labels`` (n,);
    the denominator of the CDNV of Galanti et al. 2022 (section 3), up to its factor 2.
    Needs at least two classes.
    """
    _check(features, labels, min_classes=2)
    means, _ = _class_means_and_variances(features, labels)
    return float(_off_diagonal_mean(_squared_mean_distances(means)))


def cdnv(features: Tensor, labels: Tensor) -> float:
    r"""Return the class-distance normalized variance (Galanti et al. 2022, section 3), averaged over class pairs.

    .. math:: \mathrm{CDNV} = \frac{1}{C (C - 1)} \sum_{i \neq j}
              \frac{\mathrm{Var}_i + \mathrm{Var}_j}{2\, \|\mu_i - \mu_j\|^2}

    Galanti et al. define, for class-conditional distributions :math:`Q_i, Q_j` and features
    :math:`f`, :math:`V_f(Q_i, Q_j) = (\mathrm{Var}_f(Q_i) + \mathrm{Var}_f(Q_j)) / (2 \|\mu_f(Q_i) - \mu_f(Q_j)\|^2)`
    with :math:`\mathrm{Var}_f(Q) = E_{x \sim Q} \|f(x) - \mu_f(Q)\|^2`, and measure neural
    collapse on samples as :math:`\mathrm{Avg}_{i \neq j} V_f(S_i, S_j)`, each :math:`S_c` taken
    as the uniform distribution on class :math:`c`'s samples; so :math:`\mathrm{Var}_c` divides by
    :math:`n_c` (see ``within_class_variance``). Ben-Shaul et al. 2023 plot it for SSL features.

    ``features`` (n, D), ``labels`` (n,). 0 for perfectly collapsed classes; invariant to
    scaling, rotating and translating the features. Raises ValueError for fewer than two
    classes or two classes with the same mean (the ratio is then undefined).
    """
    _check(features, labels, min_classes=2)
    means, variances = _class_means_and_variances(features, labels)
    distances = _squared_mean_distances(means)
    off_diagonal = ~torch.eye(means.shape[0], dtype=torch.bool, device=means.device)
    if (distances[off_diagonal] <= 0).any():
        classes = torch.unique(labels)
        i, j = (torch.nonzero((distances <= 0) & off_diagonal)[0]).tolist()
        raise ValueError(f"classes {int(classes[i])} and {int(classes[j])} have the same mean: CDNV is undefined")
    ratios = (variances.unsqueeze(1) + variances.unsqueeze(0)) / (2 * distances.masked_fill(~off_diagonal, 1.0))
    return float(ratios[off_diagonal].mean())


def augmentation_identity_set(images: Tensor, n_images: int, n_augmentations: int,
                              augment: Callable[[Tensor], Tensor],
                              generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
    r"""Return the "sample-level" dataset: K = ``n_images`` sources, each seen through A = ``n_augmentations`` views.

    .. math:: \{(\mathrm{aug}_a(x_k),\ k) : k \in S,\ a = 1..A\}, \qquad |S| = K

    The classes of Ben-Shaul et al. 2023 (arXiv 2305.15614) at the sample level: one class per
    source image, its members the source's random augmentations, which an SSL objective pulls
    together; their CDNV (``cdnv``) measures how tightly it does.

    - ``images``: (N, C, H, W) float in [0, 1].
    - ``augment``: called once as ``augment(batch)`` on the (K*A, C, H, W) batch of the sources,
      each repeated A times in a row; returns (K*A, C', H', W'). It must draw its random
      parameters per image, as ``sslcourse.augment``'s functions and recipes do, or the A views
      of a source would be one view. For reproducible views bind a generator into it (e.g.
      ``functools.partial(aug, generator=g)``) or seed torch's global generator: ``generator``
      here only chooses the sources.
    - ``generator``: with one, the K sources are a random subset of the N images (without
      replacement); without, the first K images.

    Returns ``(views, labels)``: views (K*A, C', H', W'), labels (K*A,) int64, the index in
    ``images`` of each view's source, sources in ascending order, A consecutive views each.
    """
    if images.dim() != 4 or images.shape[0] == 0:
        raise ValueError(f"images must have shape (N, C, H, W) with N >= 1, got {tuple(images.shape)}")
    if not torch.is_floating_point(images):
        raise ValueError(f"images must be a float tensor in [0, 1], got {images.dtype}")
    if images.min() < 0 or images.max() > 1:
        raise ValueError("images must lie in [0, 1]")
    if not 1 <= n_images <= images.shape[0]:
        raise ValueError(f"n_images must be in [1, {images.shape[0]}], got {n_images}")
    if n_augmentations < 1:
        raise ValueError(f"n_augmentations must be >= 1, got {n_augmentations}")
    if not callable(augment):
        raise ValueError("augment must be a callable on a (B, C, H, W) batch")
    if generator is None:
        sources = torch.arange(n_images)
    else:
        sources = torch.sort(torch.randperm(images.shape[0], generator=generator)[:n_images]).values
    labels = sources.to(images.device).repeat_interleave(n_augmentations)
    views = augment(images[labels])
    expected = n_images * n_augmentations
    if not isinstance(views, Tensor) or views.dim() != 4 or views.shape[0] != expected:
        shape = tuple(views.shape) if isinstance(views, Tensor) else type(views).__name__
        raise ValueError(f"augment must return a ({expected}, C, H, W) tensor, got {shape}")
    return views, labels
