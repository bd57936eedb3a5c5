"""The procedural shapes dataset: images rendered from known factors, fully offline.

Each image shows one shape (the class) drawn with a random colour, size, position and
rotation on a random textured background, plus pixel noise. Because every nuisance factor
is known, the course can ask precise questions: which factors does a representation keep,
which does it discard, and are they disentangled? (Course: :ref:`ch0-shapes`,
:ref:`ch1-disentanglement`.)

Rendering is vectorised: every shape is a signed distance function evaluated on a pixel
grid for a whole chunk of images at once, and the distance is turned into an anti-aliased
coverage value. 50,000 images of 32 px render in a few seconds on two CPU cores
(``benchmarks/render_shapes.py``).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from .imageset import ImageSet

SHAPE_NAMES = ["circle", "ellipse", "ring", "half-disc", "square", "triangle", "star", "cross"]
SUPERCLASS_NAMES = ["round", "angular"]
SUPERCLASS_OF = torch.tensor([0, 0, 0, 0, 1, 1, 1, 1])

COLOR_NAMES = ["red", "orange", "yellow", "green", "cyan", "blue", "purple", "pink", "white", "gray"]
PALETTE = torch.tensor(
    [
        [0.85, 0.15, 0.15], [0.95, 0.55, 0.10], [0.95, 0.90, 0.20], [0.20, 0.70, 0.25],
        [0.20, 0.80, 0.85], [0.15, 0.30, 0.85], [0.55, 0.25, 0.75], [0.95, 0.55, 0.75],
        [0.95, 0.95, 0.95], [0.50, 0.50, 0.50],
    ]
)
TEXTURE_NAMES = ["plain", "striped", "checkered", "mottled"]

# Ranges of the continuous factors. Shapes fill 35-75% of the half-width... tuned so that a
# small ConvNet can see the shape at 20 px while colour and texture still dominate the pixels.
SCALE_RANGE = (0.5, 0.9)
TEXTURE_CONTRAST = 0.3  # how much darker the texture's dark parts are than the background
NOISE_MAX = 0.06  # largest per-image std of the Gaussian pixel noise

# Domain shifts of growing size for transfer experiments: a source dataset draws half the
# colours and half the textures (``make_shapes(**SHIFT_SOURCE)``); each shift replaces some of
# the source's ranges (``make_shapes(**{**SHIFT_SOURCE, **DOMAIN_SHIFTS[name]})``).
SHIFT_SOURCE = {"colors": COLOR_NAMES[:5], "textures": TEXTURE_NAMES[:2]}
DOMAIN_SHIFTS = {
    "no shift": {},
    "new colours": {"colors": COLOR_NAMES[5:]},
    "new textures": {"textures": TEXTURE_NAMES[2:]},
    "new colours and textures": {"colors": COLOR_NAMES[5:], "textures": TEXTURE_NAMES[2:]},
}


def _sdf(shape: int, x: Tensor, y: Tensor) -> Tensor:
    """Approximate signed distance (negative inside) of shape ``shape`` at local coords."""
    r = torch.sqrt(x * x + y * y)
    if shape == 0:  # circle
        return r - 0.85
    if shape == 1:  # ellipse, axes 1.0 and 0.45
        return (torch.sqrt((x / 1.0) ** 2 + (y / 0.45) ** 2) - 1.0) * 0.45
    if shape == 2:  # ring
        return (r - 0.72).abs() - 0.2
    if shape == 3:  # half-disc, centred on its centroid
        yy = y + 0.35
        return torch.maximum(torch.sqrt(x * x + yy * yy) - 0.95, -yy)
    if shape == 4:  # square
        return torch.maximum(x.abs(), y.abs()) - 0.7
    if shape == 5:  # equilateral triangle, circumradius 1
        d = [math.cos(a) * x + math.sin(a) * y for a in (-math.pi / 2, math.pi / 6, 5 * math.pi / 6)]
        return torch.maximum(torch.maximum(d[0], d[1]), d[2]) - 0.5
    if shape == 6:  # five-pointed star: radius falls linearly from tip (1.0) to notch (0.45)
        theta = torch.atan2(y, x) - math.pi / 2
        frac = torch.acos(torch.cos(5 * theta).clamp(-1, 1)) / math.pi  # 0 at a tip, 1 at a notch
        return (r - (1.0 - 0.55 * frac)) * 0.6
    if shape == 7:  # plus-shaped cross
        ax, ay = x.abs(), y.abs()
        return torch.minimum(torch.maximum(ax - 0.95, ay - 0.28), torch.maximum(ax - 0.28, ay - 0.95))
    raise ValueError(f"unknown shape index {shape}; valid 0..{len(SHAPE_NAMES) - 1}")


def _sample_factors(n: int, gen: torch.Generator) -> dict[str, Tensor]:
    """Draw the generating factors of ``n`` images."""
    def uniform(lo: float, hi: float, *shape: int) -> Tensor:
        return lo + (hi - lo) * torch.rand(n, *shape, generator=gen)

    shape = torch.randint(0, len(SHAPE_NAMES), (n,), generator=gen)
    color = torch.randint(0, len(COLOR_NAMES), (n,), generator=gen)
    # Background colour differs from the shape colour so the shape is always visible.
    bg_color = (color + torch.randint(1, len(COLOR_NAMES), (n,), generator=gen)) % len(COLOR_NAMES)
    scale = uniform(*SCALE_RANGE)
    return {
        "shape": shape,
        "color": color,
        "scale": scale,
        "pos_x": uniform(-1, 1) * (1 - scale) * 0.9,
        "pos_y": uniform(-1, 1) * (1 - scale) * 0.9,
        "rotation": uniform(0, 2 * math.pi),
        "bg_color": bg_color,
        "texture": torch.randint(0, len(TEXTURE_NAMES), (n,), generator=gen),
        "texture_freq": uniform(2.0, 6.0),
        "texture_angle": uniform(0, math.pi),
        "noise": uniform(0.0, NOISE_MAX),
        # Colour jitter around the named palette entry keeps colours continuous.
        "color_jitter": uniform(-0.08, 0.08, 3),
        "bg_jitter": uniform(-0.08, 0.08, 3),
    }


def _render_chunk(f: dict[str, Tensor], size: int, gen: torch.Generator) -> Tensor:
    """Render one chunk of images from factors ``f``; returns float (n, 3, size, size) in [0, 1]."""
    n = len(f["shape"])
    lin = (torch.arange(size, dtype=torch.float32) + 0.5) / size * 2 - 1  # pixel centres in [-1, 1]
    v, u = torch.meshgrid(lin, lin, indexing="ij")  # (S, S); v grows downwards
    u, v = u.expand(n, size, size), v.expand(n, size, size)

    # Background: a texture mixes the background colour with a darker copy of itself.
    ang = f["texture_angle"].view(n, 1, 1)
    freq = f["texture_freq"].view(n, 1, 1) * math.pi
    a = u * torch.cos(ang) + v * torch.sin(ang)
    b = -u * torch.sin(ang) + v * torch.cos(ang)
    stripes = (torch.sin(freq * a) > 0).float()
    checks = ((torch.sin(freq * a) * torch.sin(freq * b)) > 0).float()
    mottle = 0.5 + 0.25 * (torch.sin(freq * a + 1.3 * torch.sin(freq * b)) + torch.sin(0.7 * freq * b))
    plain = torch.zeros_like(u)
    texture = torch.stack([plain, stripes, checks, mottle], 1)  # (n, 4, S, S)
    pattern = texture[torch.arange(n), f["texture"]].unsqueeze(1)  # (n, 1, S, S)
    bg = (PALETTE[f["bg_color"]] + f["bg_jitter"]).clamp(0, 1).view(n, 3, 1, 1)
    image = bg * (1 - TEXTURE_CONTRAST * pattern)

    # Shape: local coordinates = rotate(-angle) of (pixel - position) / scale.
    rot = f["rotation"].view(n, 1, 1)
    scale = f["scale"].view(n, 1, 1)
    du, dv = u - f["pos_x"].view(n, 1, 1), v - f["pos_y"].view(n, 1, 1)
    x = (du * torch.cos(rot) + dv * torch.sin(rot)) / scale
    y = (-du * torch.sin(rot) + dv * torch.cos(rot)) / scale
    sdf = torch.empty_like(x)
    for s in range(len(SHAPE_NAMES)):
        idx = torch.nonzero(f["shape"] == s).flatten()
        if len(idx):
            sdf[idx] = _sdf(s, -y[idx], x[idx])  # -y: "up" in the image is negative v
    pixel = 2.0 / size / scale  # one pixel in local units
    coverage = (0.5 - sdf / pixel).clamp(0, 1).unsqueeze(1)  # anti-aliased edge
    fg = (PALETTE[f["color"]] + f["color_jitter"]).clamp(0, 1).view(n, 3, 1, 1)
    image = image * (1 - coverage) + fg * coverage

    noise = torch.randn(image.shape, generator=gen) * f["noise"].view(n, 1, 1, 1)
    return (image + noise).clamp(0, 1)


def _caption(f: dict[str, Tensor], i: int) -> str:
    """One sentence describing image ``i`` from its factors (used by CLIP-style models)."""
    lo, hi = SCALE_RANGE  # the size words keep their meaning when a dataset narrows the range
    size = ["small", "medium", "large"][min(max(int((f["scale"][i] - lo) / (hi - lo) * 3), 0), 2)]
    col = ["left", "", "right"][min(int((f["pos_x"][i] + 1) / 2 * 3), 2)]
    row = ["top", "", "bottom"][min(int((f["pos_y"][i] + 1) / 2 * 3), 2)]
    where = " ".join(w for w in (row, col) if w) or "center"
    return (
        f"a {size} {COLOR_NAMES[f['color'][i]]} {SHAPE_NAMES[f['shape'][i]]} at the {where} "
        f"on a {TEXTURE_NAMES[f['texture'][i]]} {COLOR_NAMES[f['bg_color'][i]]} background"
    )


def render_shapes(factors: dict[str, Tensor], image_size: int = 32, seed: int = 0, chunk: int = 2048) -> Tensor:
    """Return uint8 images (n, 3, S, S) drawn from given ``factors`` (as made by ``make_shapes``)."""
    gen = torch.Generator().manual_seed(seed)
    n = len(factors["shape"])
    images = torch.empty(n, 3, image_size, image_size, dtype=torch.uint8)
    for start in range(0, n, chunk):
        part = {k: v[start : start + chunk] for k, v in factors.items()}
        images[start : start + chunk] = (_render_chunk(part, image_size, gen) * 255).round().to(torch.uint8)
    return images


FACTOR_GRID_COLUMNS = ["reference", "colour", "scale", "position", "rotation", "background", "texture", "noise"]


def factor_grid(image_size: int = 32, seed: int = 0) -> tuple[Tensor, list[str]]:
    """Return a grid of images (8 shapes x 8 columns) in which each column changes one factor
    of the reference image of its row, and the column titles. Course: :ref:`ch0-shapes`
    (figure ``fig-shapes-factors``)."""
    gen = torch.Generator().manual_seed(seed)
    base = _sample_factors(1, gen)
    base.update(shape=torch.tensor([0]), scale=torch.tensor([0.7]), pos_x=torch.tensor([0.0]),
                pos_y=torch.tensor([0.0]), rotation=torch.tensor([0.3]), noise=torch.tensor([0.0]),
                texture=torch.tensor([0]), color=torch.tensor([0]), bg_color=torch.tensor([5]))
    changes = [{}, {"color": torch.tensor([3])}, {"scale": torch.tensor([0.5])},
               {"pos_x": torch.tensor([-0.25]), "pos_y": torch.tensor([0.2])}, {"rotation": torch.tensor([1.2])},
               {"bg_color": torch.tensor([8])}, {"texture": torch.tensor([2])}, {"noise": torch.tensor([0.12])}]
    rows = []
    for shape in range(len(SHAPE_NAMES)):
        for change in changes:
            f = {k: v.clone() for k, v in base.items()}
            f.update(change)
            f["shape"] = torch.tensor([shape])
            rows.append(f)
    factors = {k: torch.cat([r[k] for r in rows]) for k in base}
    return render_shapes(factors, image_size, seed), FACTOR_GRID_COLUMNS


def _indices(kind: str, chosen: list[str], valid: list[str]) -> Tensor:
    """Return the indices of the names ``chosen`` in ``valid``; a clear error for any other name."""
    unknown = [c for c in chosen if c not in valid]
    if unknown or not chosen or len(set(chosen)) != len(chosen):
        raise ValueError(f"{kind} must be distinct names from {', '.join(valid)}; got {chosen}")
    return torch.tensor([valid.index(c) for c in chosen])


def _restrict(factors: dict[str, Tensor], gen: torch.Generator, classes: list[str] | None, colors: list[str] | None,
              textures: list[str] | None, scale_range: tuple[float, float] | None) -> None:
    """Redraw the factors that a dataset restricts, in place, from ``gen`` (a stream of its own,
    so that the unrestricted factors, and the default dataset, stay as they were)."""
    n = len(factors["shape"])

    def pick(allowed: Tensor) -> Tensor:
        return allowed[torch.randint(0, len(allowed), (n,), generator=gen)]

    if classes is not None:
        factors["shape"] = pick(_indices("classes", classes, SHAPE_NAMES))
    if textures is not None:
        factors["texture"] = pick(_indices("textures", textures, TEXTURE_NAMES))
    if colors is not None:
        factors["color"] = pick(_indices("colors", colors, COLOR_NAMES))
        shift = torch.randint(1, len(COLOR_NAMES), (n,), generator=gen)
        factors["bg_color"] = (factors["color"] + shift) % len(COLOR_NAMES)  # never the shape's colour
    if scale_range is not None:
        lo, hi = scale_range
        if not 0 < lo <= hi < 1:
            raise ValueError(f"scale_range must satisfy 0 < low <= high < 1 (default {SCALE_RANGE}); got {scale_range}")
        scale = lo + (hi - lo) * torch.rand(n, generator=gen)
        # Keep each shape's relative position: the offsets are drawn as a fraction of the free room.
        room = (1 - scale) / (1 - factors["scale"])
        factors["pos_x"], factors["pos_y"], factors["scale"] = factors["pos_x"] * room, factors["pos_y"] * room, scale


def make_shapes(
    n: int,
    image_size: int = 32,
    seed: int = 0,
    captions: bool = True,
    chunk: int = 2048,
    upright: bool = False,
    *,
    classes: list[str] | None = None,
    colors: list[str] | None = None,
    textures: list[str] | None = None,
    scale_range: tuple[float, float] | None = None,
) -> ImageSet:
    """Return ``n`` procedural shape images with their class, super-class, factors and captions.

    The same ``seed`` always gives the same images. Use different seeds for the training
    and test sets (``load_dataset("shapes", split=...)`` does).

    Args:
        n: number of images.
        image_size: side length in pixels (16, 32 and 64 are the course's sizes; any >= 8 works).
        seed: random seed of the factors and the pixel noise.
        captions: also build a caption string per image (costs about 1 s per 50,000).
        chunk: images rendered per vectorised step (bounds the memory used).
        upright: draw every shape at rotation 0, a canonical orientation as photographs have
            (rotation prediction needs one); every other factor is the same as without it.
        classes: draw only these shapes (names from ``SHAPE_NAMES``); labels then count
            0..len(classes)-1 in this order and ``class_names`` is ``classes``
            (``factors["shape"]`` keeps the index into ``SHAPE_NAMES``).
        colors: shape colours to draw from (names from ``COLOR_NAMES``); the background is
            still any other colour.
        textures: background textures to draw from (names from ``TEXTURE_NAMES``).
        scale_range: (low, high) of the shape's scale, within (0, 1); default ``SCALE_RANGE``.

    A *domain shift* is a change of these ranges between two datasets (``SHIFT_SOURCE`` and
    ``DOMAIN_SHIFTS``). Without them the images are exactly those of earlier versions:
    restricted factors are redrawn from a stream of their own.
    """
    if image_size < 8:
        raise ValueError(f"image_size must be at least 8 pixels, got {image_size}")
    factors = _sample_factors(n, torch.Generator().manual_seed(seed))
    _restrict(factors, torch.Generator().manual_seed(seed + 2), classes, colors, textures, scale_range)
    if upright:
        factors["rotation"] = torch.zeros_like(factors["rotation"])
    images = render_shapes(factors, image_size, seed=seed + 1, chunk=chunk)  # own stream for the noise
    labels = factors["shape"].clone()
    if classes is not None:  # relabel 0..k-1 in the order given
        labels = torch.argmax((labels[:, None] == _indices("classes", classes, SHAPE_NAMES)).long(), dim=1)
    return ImageSet(
        images=images,
        labels=labels,
        class_names=list(classes) if classes is not None else list(SHAPE_NAMES),
        coarse_labels=SUPERCLASS_OF[factors["shape"]],
        coarse_names=list(SUPERCLASS_NAMES),
        factors=factors,
        captions=[_caption(factors, i) for i in range(n)] if captions else None,
        name="shapes",
    )
