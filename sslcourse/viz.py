"""Figures the chapters show. Each function returns the figure.

Course: :ref:`ch0-datasets` and :ref:`ch0-first-run` (image grids, training curves, accuracy bars),
:ref:`ch1-pictures` (t-SNE and UMAP maps)."""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import torch
from matplotlib.figure import Figure
from torch import Tensor


def image_grid(images: Tensor, ncols: int, col_titles: Sequence[str] | None = None,
               row_labels: Sequence[str] | None = None, captions: Sequence[str] | None = None,
               cell_inches: float = 1.0) -> Figure:
    """Show uint8 or [0, 1] float images (N, C, H, W) in a grid with optional titles/labels."""
    images = images.detach().cpu()
    if images.dtype != torch.uint8:
        images = (images.clamp(0, 1) * 255).round().to(torch.uint8)
    nrows = -(-len(images) // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(ncols * cell_inches, nrows * cell_inches * (1.35 if captions
                             else 1.0)), squeeze=False)
    for i, ax in enumerate(axes.flat):
        ax.set_xticks([]), ax.set_yticks([])
        for spine in ax.spines.values():
            spine.set_visible(False)
        if i >= len(images):
            continue
        ax.imshow(images[i].permute(1, 2, 0).squeeze(-1), interpolation="nearest",
                  cmap="gray" if images.shape[1] == 1 else None)
        r, c = divmod(i, ncols)
        if col_titles is not None and r == 0:
            ax.set_title(col_titles[c], fontsize=9)
        if row_labels is not None and c == 0:
            ax.set_ylabel(row_labels[r], fontsize=9, rotation=0, ha="right", va="center")
        if captions is not None:
            ax.set_xlabel(captions[i], fontsize=6, wrap=True)
    fig.tight_layout()
    return fig


def plot_history(history: list[dict], keys: Sequence[str] = ("loss",), title: str = "") -> Figure:
    """Plot ``keys`` of ``fit`` history records against the step, one panel per key."""
    fig, axes = plt.subplots(1, len(keys), figsize=(4 * len(keys), 3), squeeze=False)
    steps = [h["step"] for h in history]
    for ax, key in zip(axes.flat, keys, strict=True):
        ax.plot(steps, [h[key] for h in history])
        ax.set_xlabel("step"), ax.set_ylabel(key)
        ax.grid(alpha=0.3)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def bar_accuracies(results: dict[str, float], chance: float | None = None, title: str = "") -> Figure:
    """Horizontal bars of accuracies (in [0, 1]) labelled with their percentages."""
    fig, ax = plt.subplots(figsize=(6, 0.5 + 0.45 * len(results)))
    names, values = list(results), [100 * v for v in results.values()]
    bars = ax.barh(names, values, color=plt.cm.viridis(torch.linspace(0.2, 0.8, len(names)).numpy()))
    ax.bar_label(bars, fmt="%.1f%%", padding=3)
    if chance is not None:
        ax.axvline(100 * chance, color="gray", ls="--", lw=1, label="chance")
        ax.legend(loc="lower right")
    ax.set_xlim(0, 105), ax.set_xlabel("accuracy (%)"), ax.invert_yaxis()
    if title:
        ax.set_title(title)
    fig.tight_layout()
    return fig


def embedding_2d(features: Tensor, method: str = "tsne", seed: int = 0) -> Tensor:
    """Return a 2-D embedding (n, 2) of ``features`` by t-SNE (scikit-learn) or UMAP (umap-learn)."""
    x = features.detach().cpu().float().numpy()
    if method == "tsne":
        from sklearn.manifold import TSNE

        return torch.from_numpy(TSNE(2, init="pca", perplexity=30, random_state=seed).fit_transform(x))
    if method == "umap":
        import warnings

        # umap warns that random_state overrides n_jobs (we ask for both on purpose) and, through
        # tqdm.auto, that ipywidgets is missing; neither concerns the reader.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            import umap

            return torch.from_numpy(umap.UMAP(n_components=2, random_state=seed, n_jobs=1).fit_transform(x))
    raise ValueError(f"unknown embedding method {method!r}; valid names: tsne, umap")


def scatter_2d(points: Tensor, labels: Tensor, class_names: Sequence[str], ax: plt.Axes | None = None,
               title: str = "") -> Figure:
    """Scatter 2-D points coloured by class, with a legend of class names."""
    fig = ax.figure if ax is not None else plt.figure(figsize=(5, 4))
    ax = ax or fig.add_subplot()
    cmap = plt.get_cmap("tab10")
    for c, name in enumerate(class_names):
        sel = labels == c
        ax.scatter(points[sel, 0], points[sel, 1], s=4, color=cmap(c % 10), label=name)
    ax.set_xticks([]), ax.set_yticks([])
    ax.set_title(title, fontsize=10)
    return fig
