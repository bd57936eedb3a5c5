"""Video colorization (Vondrick et al. 2018, "Tracking emerges by colorizing videos"):
recolour a grey target frame by copying colours from a colour reference frame, and track
objects with the same pointer. Course: :ref:`ch4b-video`. Train it with
``fit(method, FramePairLoader(make_moving_shapes(...), batch_size), steps)`` (``data.video``).

An encoder of *grey* frames keeps a spatial map; every position i gets an embedding f_i. The
colour of target position i is copied from the reference positions j with the pointer
:math:`A_{ij} = \\mathrm{softmax}_j(f_i^\\top f_j / T)` (``losses.colour_pointer``); the loss is
the error of the copied colours against the target's true colours
(``losses.colour_propagation_loss``). Since grey does not determine colour (two objects of
equal luma but different colours), the cheapest way to copy the right colour is to point at
the same object in the reference frame: the pointer becomes a tracker. At test time the
first frame's object masks are copied instead of colours (``track_masks``) and compared with
the true masks (``mask_iou``).

Choices of this version, and why:
- Embeddings are L2-normalised and the pointer divides by a temperature T = 0.05 (the paper
  uses raw dot products): the sharpness is then a setting, not something the weights must
  grow into, which matters for a few hundred steps of training.
- Colours are regressed (mean squared error on RGB) at the feature map's resolution, the
  frames' colours averaged over each cell. The paper classifies over 16 colour clusters to
  avoid the desaturated average a regression predicts for ambiguous positions; a copied
  colour is already a mixture of colours present in the reference, and our videos hold few.
- One reference frame 1..max_gap frames before the target (the loader's choice; the paper
  uses three earlier frames).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .. import augment
from ..data import Batch
from ..losses.video import colour_pointer, colour_propagation_loss, propagate
from .base import Method, MethodSpec

TRACKING_REFERENCES = ["first_and_previous", "first", "previous"]


def grey(x: Tensor) -> Tensor:
    """Return the grey level (B, 1, H, W) of RGB images (B, 3, H, W), or grey images unchanged."""
    if x.ndim != 4 or x.shape[1] not in (1, 3):
        raise ValueError(f"expected images (B, 3, H, W) RGB or (B, 1, H, W) grey, got shape {tuple(x.shape)}")
    return augment.grayscale(x) if x.shape[1] == 3 else x


def cell_values(x: Tensor, size: tuple[int, int]) -> Tensor:
    """Return the values of maps ``x`` (B, C, H, W) averaged over each cell of a (h, w) grid, as
    rows (B, h * w, C): the colours (or mask fractions) at the feature map's positions."""
    return F.adaptive_avg_pool2d(x.float(), size).flatten(2).transpose(1, 2)


class VideoColorization(Method):
    """A fully convolutional encoder of grey frames + a 1x1 embedding layer on its map.

    Args:
        backbone: an encoder of 1-channel images with ``feature_map(x)`` (B, feature_dim, h, w)
            and ``feature_dim`` (e.g. ``backbones.ConvNet(in_channels=1)``: h = H / 2**(depth-1)).
        embedding_dim: size of the per-position embeddings f_i (the paper: 64).
        temperature: T of the pointer over L2-normalised embeddings (our choice, see the module).
    """

    def __init__(self, backbone: nn.Module, embedding_dim: int = 32, temperature: float = 0.05) -> None:
        super().__init__(backbone)
        if not hasattr(backbone, "feature_map"):
            raise TypeError(f"{type(backbone).__name__} has no feature_map(x); video colorization needs a spatial map "
                            "of positions (use backbones.ConvNet)")
        if temperature <= 0:
            raise ValueError(f"temperature must be positive, got {temperature}")
        # The pretext task reads the map, not the pooled h: the head above h stays the identity.
        self.embedding = nn.Conv2d(backbone.feature_dim, embedding_dim, 1)
        self.temperature = temperature

    def position_embeddings(self, x: Tensor) -> tuple[Tensor, tuple[int, int], Tensor]:
        """Return the L2-normalised embeddings of every position (B, h * w, D), the map's size
        (h, w), and the pooled h (B, feature_dim), for images ``x`` (B, 3 or 1, H, W)."""
        feature_map = self.backbone.feature_map(grey(x))
        f = F.normalize(self.embedding(feature_map).flatten(2).transpose(1, 2), dim=-1)  # (B, h*w, D)
        return f, tuple(feature_map.shape[2:]), feature_map.mean(dim=(2, 3))

    def training_step(self, batch: Batch) -> dict[str, Tensor]:
        if len(batch.views) != 2:
            raise ValueError(f"video colorization needs views = [reference, target] frames, got {len(batch.views)} "
                             "view(s) (data.video.FramePairLoader makes them)")
        reference, target = batch.views
        if reference.shape[1] != 3 or reference.shape != target.shape:
            raise ValueError(f"reference and target must be RGB frames of one shape (B, 3, H, W), got "
                             f"{tuple(reference.shape)} and {tuple(target.shape)}")
        b = len(reference)
        f, size, h = self.position_embeddings(torch.cat([reference, target]))  # one pass: shared BatchNorm statistics
        f_reference, f_target = f[:b], f[b:]
        colours_reference, colours_target = cell_values(reference, size), cell_values(target, size)  # (B, h*w, 3)
        pointer = colour_pointer(f_target, f_reference, self.temperature)
        loss = colour_propagation_loss(pointer, colours_reference, colours_target)
        with torch.no_grad():
            # The reference colour at the most attended position is right to within 0.1 per channel.
            pointed = torch.gather(colours_reference, 1, pointer.argmax(-1, keepdim=True).expand(-1, -1, 3))
            accuracy = ((pointed - colours_target).abs().amax(-1) < 0.1).float().mean()
            # What the "nothing moves" pointer (A = identity) would score: the loss to beat.
            static = F.mse_loss(colours_reference, colours_target)
        z = self.projection_head(h[:b])  # = embed(reference)
        return {"loss": loss, "pretext_accuracy": accuracy, "static_copy_loss": static,
                **self.collapse_diagnostics(z)}

    def encode(self, x: Tensor) -> Tensor:
        """Return the pooled encoder features h (B, feature_dim) of images ``x`` (B, 3 or 1, H, W)."""
        return self.backbone(grey(x))

    def embed(self, x: Tensor) -> Tensor:
        """Return z = projection_head(h) (the identity: the pretext task reads the map)."""
        return self.projection_head(self.encode(x))


def _as_float_frames(frames: Tensor) -> Tensor:
    return frames.float() / 255 if not frames.is_floating_point() else frames


@torch.no_grad()
def track_masks(method: VideoColorization, video_frames: Tensor, first_mask: Tensor, n_objects: int | None = None,
                references: str = "first_and_previous", temperature: float | None = None) -> Tensor:
    """Return the predicted instance masks of frames 1..T-1, (N, T-1, H, W) int64 (or (T-1, H, W)
    for one video), by propagating the first frame's one-hot mask with the pointer.

    For each frame t = 1..T-1, the pointer from frame t's positions to the reference positions
    copies their label distributions (``propagate``); the labels are then upsampled from the
    feature map to the pixels (bilinear) and the most probable one is kept. ``references``:
    "first_and_previous" (the paper's choice: the first frame's true mask and the previous
    frame's predicted label distribution, one softmax over both frames' positions), "first"
    (always from frame 0: no drift, but far motion), or "previous" (frame to frame: short
    motion, but errors accumulate). The method is put in eval mode.

    Args:
        method: a trained (or not) ``VideoColorization``.
        video_frames: (N, T, 3, H, W) or (T, 3, H, W) RGB frames, uint8 or float in [0, 1].
        first_mask: (N, H, W) or (H, W) int64 labels of frame 0 (0 background, 1..K objects).
        n_objects: K (default: the largest label in ``first_mask``).
        temperature: the pointer's T (default the method's).
    """
    single = video_frames.ndim == 4
    frames = video_frames.unsqueeze(0) if single else video_frames
    mask0 = first_mask.unsqueeze(0) if single else first_mask
    if frames.ndim != 5 or frames.shape[2] not in (1, 3):
        raise ValueError(f"video_frames must be (N, T, 3, H, W) or (T, 3, H, W), got shape {tuple(video_frames.shape)}")
    n, t_len, _, height, width = frames.shape
    if t_len < 2:
        raise ValueError(f"need at least 2 frames to track, got {t_len}")
    if mask0.shape != (n, height, width) or mask0.is_floating_point():
        raise ValueError(f"first_mask must be integer labels of shape {(n, height, width)}, got "
                         f"{tuple(first_mask.shape)} {first_mask.dtype}")
    if references not in TRACKING_REFERENCES:
        raise ValueError(f"unknown references {references!r}; valid: {', '.join(TRACKING_REFERENCES)}")
    k = int(mask0.max()) if n_objects is None else n_objects
    if mask0.min() < 0 or mask0.max() > k:
        raise ValueError(f"first_mask labels must be in 0..{k}, got {int(mask0.min())}..{int(mask0.max())}")
    temperature = method.temperature if temperature is None else temperature
    method.eval()
    device = next(method.parameters()).device
    x = _as_float_frames(frames).to(device).flatten(0, 1)  # (N*T, 3, H, W)
    f, size, _ = method.position_embeddings(x)
    f = f.view(n, t_len, *f.shape[1:])  # (N, T, M, D)
    one_hot = F.one_hot(mask0.to(device), k + 1).permute(0, 3, 1, 2)  # (N, K+1, H, W)
    first = cell_values(one_hot, size)  # (N, M, K+1): label fractions per cell
    previous, predictions = first, []
    for t in range(1, t_len):
        if references == "first":
            f_ref, v_ref = f[:, 0], first
        elif references == "previous":
            f_ref, v_ref = f[:, t - 1], previous
        else:
            f_ref, v_ref = torch.cat([f[:, 0], f[:, t - 1]], 1), torch.cat([first, previous], 1)
        previous = propagate(colour_pointer(f[:, t], f_ref, temperature), v_ref)  # (N, M, K+1)
        soft = previous.transpose(1, 2).reshape(n, k + 1, *size)
        soft = F.interpolate(soft, size=(height, width), mode="bilinear", align_corners=False)
        predictions.append(soft.argmax(1))
    out = torch.stack(predictions, 1).cpu()  # (N, T-1, H, W)
    return out[0] if single else out


def copy_first_mask(first_mask: Tensor, n_frames: int) -> Tensor:
    """Return the baseline prediction of frames 1..T-1: the first mask unchanged, (..., T-1, H, W)
    (what a tracker that assumes nothing moves predicts)."""
    return first_mask.unsqueeze(-3).expand(*first_mask.shape[:-2], n_frames - 1, *first_mask.shape[-2:]).clone()


def mask_iou(pred: Tensor, true: Tensor, n_objects: int | None = None) -> Tensor:
    """Return the mean intersection over union of the objects (labels 1..K; background
    excluded) over every frame, a scalar.

    .. math:: \\mathrm{IoU} = \\operatorname{mean}_{(k, f)} \\frac{|P_f = k \\wedge Y_f = k|}{|P_f = k \\vee Y_f = k|}

    averaged over the (object, frame) pairs where the object is in the prediction or the truth
    (an object absent from both, e.g. hidden, is not counted).

    Args:
        pred, true: integer labels of one shape (..., H, W); the leading dimensions are frames.
        n_objects: K (default: the largest label in either).
    """
    if pred.shape != true.shape or pred.ndim < 2:
        raise ValueError(f"pred and true must be label maps (..., H, W) of one shape, got {tuple(pred.shape)} and "
                         f"{tuple(true.shape)}")
    if pred.is_floating_point() or true.is_floating_point():
        raise ValueError(f"pred and true must be integer labels, got {pred.dtype} and {true.dtype}")
    k = int(max(pred.max(), true.max())) if n_objects is None else n_objects
    labels = torch.arange(1, k + 1, device=pred.device).view(k, 1, 1)
    p = pred.reshape(1, -1, pred.shape[-2] * pred.shape[-1]) == labels  # (K, F, H*W)
    y = true.reshape(1, -1, true.shape[-2] * true.shape[-1]) == labels
    inter, union = (p & y).sum(-1), (p | y).sum(-1)  # (K, F)
    valid = union > 0
    if not valid.any():
        raise ValueError("no object (label >= 1) in pred or true: the IoU over objects is undefined")
    return (inter[valid].float() / union[valid].float()).mean()


@torch.no_grad()
def tracking_iou(method: VideoColorization, videos: Tensor, masks: Tensor, references: str = "first_and_previous",
                 temperature: float | None = None) -> dict[str, float]:
    """Return the mask IoU over frames 1..T-1 of the method's tracking ("model") and of the
    copy-the-first-mask baseline ("copy_first_mask"), for videos (N, T, 3, H, W) with masks
    (N, T, H, W) (``data.video.VideoSet``)."""
    k = int(masks.max())
    predicted = track_masks(method, videos, masks[:, 0], k, references, temperature)
    baseline = copy_first_mask(masks[:, 0], masks.shape[1])
    return {"model": float(mask_iou(predicted, masks[:, 1:], k)),
            "copy_first_mask": float(mask_iou(baseline, masks[:, 1:], k))}


# Trains on pairs of frames of data.video.make_moving_shapes (FramePairLoader), not on image views;
# one backbone of grey (1-channel) frames.
SPEC = MethodSpec(name="video_colorization", method=VideoColorization, views=None, in_channels=(1,), inputs="video")
