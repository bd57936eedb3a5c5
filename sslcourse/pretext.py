"""Input makers of the transformation-prediction pretext tasks: rotations, relative patch
positions and jigsaw puzzles. Course: :ref:`ch4-rotation`, :ref:`ch4-relative-position`,
:ref:`ch4-jigsaw`, :ref:`ch4-shortcuts`.

Each function is pure: it reads a float batch (B, C, H, W) and returns the pretext inputs with
their labels, batched on the batch's device; the only randomness comes from the explicit
``generator`` argument (None: torch's global generator of the batch's device). The methods of
``sslcourse.methods.rotation``, ``relative_position`` and ``jigsaw`` call them inside their
``training_step``.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

# The 8 neighbours of the centre cell of a 3x3 grid, as (row, column) offsets, row-major with
# the centre skipped: label k of ``relative_position_pairs`` is the offset NEIGHBOUR_OFFSETS[k].
NEIGHBOUR_OFFSETS = ((-1, -1), (-1, 0), (-1, 1), (0, -1), (0, 1), (1, -1), (1, 0), (1, 1))

# Candidates of ``jigsaw_permutations``: all n_tiles! permutations up to this many, else this many
# random ones. Over 10,000 random permutations of 9 tiles greedy selection reaches the same
# minimum Hamming distance as over all 9! = 362,880 (7 for 24 classes, 6 for 100; seeds 0-2)
# in a tenth of the time (under a second on 2 cores, where 9! takes several).
DEFAULT_POOL_SIZE = 10_000


def _check_images(x: Tensor, name: str = "x") -> None:
    if x.ndim != 4:
        raise ValueError(f"{name} must be a batch of images (B, C, H, W), got shape {tuple(x.shape)}")


def _rand(shape: tuple[int, ...], generator: torch.Generator | None, device: torch.device) -> Tensor:
    """Uniform [0, 1) numbers drawn on the generator's device, returned on ``device``."""
    where = generator.device if generator is not None else device
    return torch.rand(shape, generator=generator, device=where).to(device)


def _randint(high: int | Tensor, shape: tuple[int, ...], generator: torch.Generator | None,
             device: torch.device) -> Tensor:
    """Integers uniform in [0, high) (``high`` a number or a tensor broadcast to ``shape``)."""
    return (_rand(shape, generator, device) * high).long().clamp(min=0)


def rotations(x: Tensor) -> tuple[Tensor, Tensor]:
    """Return (rotated (4B, C, H, W), labels (4B,)): every image at 0, 90, 180 and 270 degrees.

    RotNet's pretext input (Gidaris, Singh & Komodakis 2018, "Unsupervised representation
    learning by predicting image rotations"): the rotated copy with label k is
    ``torch.rot90(x, k, dims=(2, 3))``, i.e. k quarter turns counter-clockwise as the image
    is displayed (row 0 at the top). Rows are ordered by rotation, then by image: rows
    [kB, (k + 1)B) hold rotation k, so the first B rows are the images themselves.

    Args:
        x: images (B, C, H, W) with H == W (a quarter turn of a non-square image changes its shape).
    """
    _check_images(x)
    if x.shape[2] != x.shape[3]:
        raise ValueError(f"rotations needs square images (H == W), got H={x.shape[2]}, W={x.shape[3]}")
    rotated = torch.cat([torch.rot90(x, k, dims=(2, 3)) for k in range(4)])
    labels = torch.arange(4, device=x.device).repeat_interleave(len(x))
    return rotated, labels


def enlarge_patches(patches: Tensor, min_side: int) -> Tensor:
    """Return ``patches`` (N, C, p, p) bilinearly enlarged to (N, C, min_side, min_side) when p
    is smaller, else unchanged.

    At the course's 20 px a patch or tile is 5-6 px, smaller than a 4-block ConvNet's total
    downsampling (8), whose pooling would leave no pixel; the papers' patches (64-96 px) need
    no such step. Pass the backbone's ``downsampling`` as ``min_side``.
    """
    if patches.shape[-1] >= min_side and patches.shape[-2] >= min_side:
        return patches
    return torch.nn.functional.interpolate(patches, size=(min_side, min_side), mode="bilinear", align_corners=False)


def _gather_patches(x: Tensor, top: Tensor, left: Tensor, ph: int, pw: int, image: Tensor | None = None) -> Tensor:
    """Return the patches (N, C, ph, pw) of ``x`` whose top-left corners are (top, left) (N,),
    patch i cut from image ``image[i]`` (None: image i)."""
    rows = top[:, None] + torch.arange(ph, device=x.device)  # (N, ph)
    cols = left[:, None] + torch.arange(pw, device=x.device)  # (N, pw)
    b = (torch.arange(len(x), device=x.device) if image is None else image)[:, None, None]
    return x[b, :, rows[:, :, None], cols[:, None, :]].permute(0, 3, 1, 2)  # (N, ph, pw, C) -> (N, C, ph, pw)


def _colour_fix(patch: Tensor, color_shift: float, drop_channels: bool, generator: torch.Generator | None) -> Tensor:
    """Apply the per-patch colour changes of ``relative_position_pairs`` to patches (B, C, p, p)."""
    n, c = patch.shape[:2]
    if color_shift > 0:
        shift = (_rand((n, c, 1, 1), generator, patch.device) * 2 - 1) * color_shift
        patch = patch + shift.to(patch.dtype)
    if drop_channels and c > 1:
        keep = _randint(c, (n,), generator, patch.device)
        kept = patch[torch.arange(n, device=patch.device), keep][:, None]  # (B, 1, p, p)
        mean, std = kept.mean((2, 3), keepdim=True), kept.std((2, 3), keepdim=True)
        noise = torch.randn(patch.shape, generator=generator,
                            device=generator.device if generator is not None else patch.device).to(patch)
        dropped = mean + 0.01 * std * noise  # the paper: Gaussian noise of 1/100 the kept channel's std
        is_kept = torch.arange(c, device=patch.device)[None, :, None, None] == keep[:, None, None, None]
        patch = torch.where(is_kept, patch, dropped)
    return patch


def relative_position_pairs(
    x: Tensor, patch: int, gap: int, generator: torch.Generator | None = None, jitter: int | None = None,
    color_shift: float = 0.0, drop_channels: bool = False,
) -> tuple[Tensor, Tensor, Tensor]:
    """Return (center (B, C, p, p), neighbour (B, C, p, p), labels (B,)): one pair of patches
    per image and the position of the neighbour relative to the centre (0-7).

    Doersch, Gupta & Efros 2015 ("Unsupervised visual representation learning by context
    prediction"): a 3x3 grid of square patches of side ``patch`` whose neighbours are
    ``gap`` pixels apart (stride patch + gap) is laid at a random offset in each image; each
    patch then moves by up to ``jitter`` pixels in each direction on its own (the paper's
    jitter, default gap // 2, which keeps patches from overlapping); the centre patch and one
    neighbour drawn uniformly are returned. Label k means the neighbour sits at
    ``NEIGHBOUR_OFFSETS[k]`` = (row, column) cells from the centre: 0 top-left, 1 top, 2
    top-right, 3 left, 4 right, 5 bottom-left, 6 bottom, 7 bottom-right (row-major, centre
    skipped). ``gap=0, jitter=0`` gives touching patches, whose shared edge is a low-level
    shortcut (continuing lines and textures across the border). Against the colour shortcut
    (the paper's chromatic aberration) each patch can get its own brightness shift per
    channel, uniform in [-color_shift, color_shift] (values may leave [0, 1]), and/or
    ``drop_channels``: keep one random channel per patch and replace the others by the kept
    channel's mean plus Gaussian noise of 1/100 its std (the paper's colour dropping).

    Args:
        x: images (B, C, H, W); the grid's extent 3 * patch + 2 * gap + 2 * jitter must fit in H and W.
        patch: side p of the patches (>= 1).
        gap: pixels between neighbouring patches (>= 0).
        generator: source of the random offsets, neighbours and colour changes.
        jitter: largest per-patch displacement in pixels, 0 <= jitter <= gap // 2 (None: gap // 2).
        color_shift: half-width of the per-patch, per-channel brightness shift (0: none).
        drop_channels: drop all but one random colour channel of each patch.
    """
    _check_images(x)
    jitter = gap // 2 if jitter is None else jitter
    if patch < 1 or gap < 0:
        raise ValueError(f"patch must be >= 1 and gap >= 0, got patch={patch}, gap={gap}")
    if not 0 <= jitter <= gap // 2:
        raise ValueError(f"jitter must be in [0, gap // 2] = [0, {gap // 2}] so patches never overlap, got {jitter}")
    if color_shift < 0:
        raise ValueError(f"color_shift must be >= 0, got {color_shift}")
    extent = 3 * patch + 2 * gap + 2 * jitter
    n, _, h, w = x.shape
    if extent > min(h, w):
        raise ValueError(f"the 3x3 grid needs {extent} px (3 * patch + 2 * gap + 2 * jitter) but the images are "
                         f"{h}x{w}; use a smaller patch or gap")
    device, stride = x.device, patch + gap
    # Top-left corner of the (unjittered) top-left cell, then the centre cell's corner.
    grid_top = _randint(h - extent + 1, (n,), generator, device) + jitter
    grid_left = _randint(w - extent + 1, (n,), generator, device) + jitter
    labels = _randint(8, (n,), generator, device)
    offsets = torch.tensor(NEIGHBOUR_OFFSETS, device=device)[labels]  # (B, 2)
    moves = _randint(2 * jitter + 1, (2, 2, n), generator, device) - jitter  # (patch, row/col, B)
    center_top, center_left = grid_top + stride + moves[0, 0], grid_left + stride + moves[0, 1]
    nb_top = grid_top + (1 + offsets[:, 0]) * stride + moves[1, 0]
    nb_left = grid_left + (1 + offsets[:, 1]) * stride + moves[1, 1]
    center = _gather_patches(x, center_top, center_left, patch, patch)
    neighbour = _gather_patches(x, nb_top, nb_left, patch, patch)
    if color_shift > 0 or drop_channels:
        center = _colour_fix(center, color_shift, drop_channels, generator)
        neighbour = _colour_fix(neighbour, color_shift, drop_channels, generator)
    return center, neighbour, labels


def _all_permutations(n: int) -> Tensor:
    """Return all n! permutations of 0..n-1 (n!, n) as int8, in lexicographic order."""
    perms = torch.zeros(1, 0, dtype=torch.int8)
    for k in range(1, n + 1):  # from the permutations of k - 1 values to those of k
        # first value v, then a permutation of the other k - 1 values (j -> j + 1 from v on)
        parts = [torch.cat([torch.full((len(perms), 1), v, dtype=torch.int8), perms + (perms >= v)], 1)
                 for v in range(k)]
        perms = torch.cat(parts)
    return perms


def min_hamming_distance(perms: Tensor) -> int:
    """Return the smallest Hamming distance (number of positions that differ) between two
    distinct rows of ``perms`` (P, n), P >= 2."""
    if perms.ndim != 2 or len(perms) < 2:
        raise ValueError(f"perms must be (P, n) with P >= 2, got shape {tuple(perms.shape)}")
    d = (perms[:, None, :] != perms[None, :, :]).sum(-1)
    d.fill_diagonal_(perms.shape[1] + 1)
    return int(d.min())


def jigsaw_permutations(n_tiles: int = 9, n_permutations: int = 100, generator: torch.Generator | None = None,
                        pool_size: int = DEFAULT_POOL_SIZE) -> Tensor:
    """Return ``n_permutations`` permutations (P, n_tiles) of the tiles, far apart in Hamming
    distance: the classes of the jigsaw task.

    A max-min variant of the maximal-Hamming-distance selection of Noroozi & Favaro 2016
    ("Unsupervised learning of visual representations by solving jigsaw puzzles"): start from
    one random permutation, then repeatedly add the candidate whose *minimum* Hamming distance
    to the permutations already chosen is the largest (ties: the first candidate), which
    guarantees a minimum distance between any two classes. The paper's Algorithm 1 instead adds
    the candidate with the largest *average* distance to the chosen set. Permutations that are close
    would be hard to tell apart from ambiguous tiles, and the task would teach less. The
    candidates are all n_tiles! permutations when that is at most ``pool_size``, else
    ``pool_size`` random ones (``DEFAULT_POOL_SIZE``: 10,000 random ones for 9 tiles, where
    9! = 362,880; the paper uses 1,000 classes chosen among all 9!).

    Args:
        n_tiles: number of tiles (grid * grid), >= 2.
        n_permutations: P, the number of classes, 2 <= P <= n_tiles!.
        generator: source of the first permutation (and of the pool when it is random).
        pool_size: the largest number of candidates.
    """
    if n_tiles < 2:
        raise ValueError(f"n_tiles must be >= 2, got {n_tiles}")
    total = math.factorial(n_tiles)
    if not 2 <= n_permutations <= min(total, pool_size):
        raise ValueError(f"n_permutations must be in [2, {min(total, pool_size)}] for {n_tiles} tiles, "
                         f"got {n_permutations}")
    if total <= pool_size:
        pool = _all_permutations(n_tiles)
    else:  # random permutations: argsort of uniform numbers
        pool = torch.rand(pool_size, n_tiles, generator=generator).argsort(1).to(torch.int8)
    first = int(torch.randint(len(pool), (1,), generator=generator))
    chosen = [first]
    min_dist = (pool != pool[first]).sum(1)  # (N,) distance of each candidate to the chosen set
    for _ in range(n_permutations - 1):
        best = int(min_dist.argmax())
        if int(min_dist[best]) == 0:  # only duplicates left (a random pool with repeats)
            raise ValueError(f"the pool has fewer than {n_permutations} distinct permutations; raise pool_size")
        chosen.append(best)
        min_dist = torch.minimum(min_dist, (pool != pool[best]).sum(1))
    return pool[chosen].long()


def jigsaw_tiles(x: Tensor, permutations: Tensor, grid: int = 3, *, labels: Tensor | None = None,
                 tile: int | None = None, generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
    """Return (tiles (B, grid * grid, C, t, t), labels (B,)): each image cut into a grid of
    tiles, shuffled by the permutation of its label.

    Noroozi & Favaro 2016: the image is split into grid x grid cells of side
    c = min(H, W) // grid (from the top-left corner); from each cell a t x t tile is cropped at
    a random offset (the paper: 64 px tiles from 75 px cells), so that neighbouring tiles do not
    continue each other across a shared edge; position i of the output holds the tile of cell
    ``permutations[label][i]`` (cells numbered row-major). Undo it with
    ``tiles[:, permutations[label].argsort()]``.

    Args:
        x: images (B, C, H, W) with min(H, W) >= grid.
        permutations: the classes (P, grid * grid), e.g. from ``jigsaw_permutations``.
        grid: tiles per side.
        labels: (B,) class of each image in [0, P); None: drawn uniformly with ``generator``.
        tile: side t of the tiles, 1 <= t <= c (None: c - max(1, c // 8), about the paper's
            64/75; t = c: no crop, the tiles cover the cells exactly).
        generator: source of the labels (when not given) and of the crop offsets.
    """
    _check_images(x)
    n_tiles = grid * grid
    if grid < 1 or permutations.ndim != 2 or permutations.shape[1] != n_tiles:
        raise ValueError(f"permutations must be (P, grid * grid) = (P, {n_tiles}), got {tuple(permutations.shape)}")
    if not torch.equal(permutations.sort(1).values.cpu(), torch.arange(n_tiles).expand_as(permutations)):
        raise ValueError(f"every row of permutations must be a permutation of 0..{n_tiles - 1}")
    n, c_in, h, w = x.shape
    cell = min(h, w) // grid
    if cell < 1:
        raise ValueError(f"images of {h}x{w} are too small for a {grid}x{grid} grid")
    tile = cell - max(1, cell // 8) if tile is None else tile
    tile = max(tile, 1)
    if not 1 <= tile <= cell:
        raise ValueError(f"tile must be in [1, cell] = [1, {cell}], got {tile}")
    device = x.device
    if labels is None:
        labels = _randint(len(permutations), (n,), generator, device)
    elif labels.shape != (n,) or labels.min() < 0 or labels.max() >= len(permutations):
        raise ValueError(f"labels must be ({n},) with values in [0, {len(permutations)}), got shape "
                         f"{tuple(labels.shape)}")
    labels = labels.to(device)
    cells = torch.arange(n_tiles, device=device)
    top = (cells // grid) * cell + _randint(cell - tile + 1, (n, n_tiles), generator, device)  # (B, n_tiles)
    left = (cells % grid) * cell + _randint(cell - tile + 1, (n, n_tiles), generator, device)
    image = torch.arange(n, device=device).repeat_interleave(n_tiles)
    tiles = _gather_patches(x, top.flatten(), left.flatten(), tile, tile, image).view(n, n_tiles, c_in, tile, tile)
    order = permutations.to(device)[labels]  # (B, n_tiles): the cell shown at each position
    shuffled = tiles[torch.arange(n, device=device)[:, None], order]
    return shuffled, labels
