"""DINO (Caron et al. 2021): self-distillation with no labels. A student matches the
centred, sharpened output distribution of an EMA teacher across crops of the same image.

Course: :ref:`ch6-distillation`, :ref:`ch6b-dino-collapses`.

Two mechanisms keep the teacher from collapsing, and each alone collapses in its own way
(the paper's fig. 7): *centering* subtracts a running mean of the teacher's logits, which
stops one dimension from dominating but pushes towards the uniform distribution;
*sharpening* (a teacher temperature below the student's) pushes towards one dimension.
``centering=False`` and ``sharpening=False`` are the two ablations.

Multi-crop: the first two views are the global crops (seen by teacher and student), any
further views are smaller local crops seen by the student only (``augment.dino_views``).
"""

from __future__ import annotations

import copy
from collections import defaultdict

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..data import Batch
from ..distributed import mean_across_ranks
from ..heads import mlp
from ..losses import dino_center, dino_loss
from ..schedules import cosine_momentum
from .base import CourseContext, Method, MethodSpec, ema_update, feature_dim, width


class DINOHead(nn.Module):
    """MLP (3 layers) -> L2-normalised bottleneck -> linear layer with unit-norm weight rows
    (the paper's weight-normalised last layer with its gain frozen at 1) -> K logits."""

    def __init__(self, in_dim: int, out_dim: int = 65536, hidden_dim: int = 2048, bottleneck_dim: int = 256,
                 batch_norm: bool = False) -> None:
        super().__init__()
        self.mlp = mlp(in_dim, hidden_dim, bottleneck_dim, n_layers=3, batch_norm=batch_norm)
        self.last = nn.Linear(bottleneck_dim, out_dim, bias=False)

    def forward(self, h: Tensor) -> Tensor:
        z = F.normalize(self.mlp(h), dim=-1)
        return F.linear(z, F.normalize(self.last.weight, dim=1))


class DINO(Method):
    """Student (backbone + DINO head) and EMA teacher; cross-entropy teacher -> student.

    Args:
        out_dim: K, the number of output dimensions (65,536 in the paper).
        hidden_dim, bottleneck_dim: head MLP 2048 -> 256 (the paper's).
        student_temperature: tau_s = 0.1 (the paper's).
        teacher_temperature: tau_t = 0.04 (the paper's default; 0.07 after warm-up for long runs).
        center_momentum: m = 0.9 for the center's running mean (the paper's).
        base_momentum: teacher EMA momentum 0.996 rising to 1 along a cosine (the paper's).
        centering: subtract the center from the teacher's logits (False: collapse to one dimension).
        sharpening: use tau_t; False sets tau_t = tau_s (collapse to the uniform distribution).
        head_batch_norm: BatchNorm in the head MLP (off in the paper; helps small ConvNets).
    """

    def __init__(self, backbone: nn.Module, out_dim: int = 65536, hidden_dim: int = 2048, bottleneck_dim: int = 256,
                 student_temperature: float = 0.1, teacher_temperature: float = 0.04, center_momentum: float = 0.9,
                 base_momentum: float = 0.996, centering: bool = True, sharpening: bool = True,
                 head_batch_norm: bool = False) -> None:
        head = DINOHead(feature_dim(backbone), out_dim, hidden_dim, bottleneck_dim, head_batch_norm)
        super().__init__(backbone, head)
        self.teacher_backbone = copy.deepcopy(backbone).requires_grad_(False)
        self.teacher_head = copy.deepcopy(self.projection_head).requires_grad_(False)
        self.student_temperature = student_temperature
        self.teacher_temperature = teacher_temperature if sharpening else student_temperature
        self.center_momentum, self.base_momentum, self.momentum = center_momentum, base_momentum, base_momentum
        self.centering = centering
        self.register_buffer("center", torch.zeros(out_dim))

    def _student(self, views: list[Tensor]) -> Tensor:
        """(S, N, K) student logits; crops of one size go through the network together."""
        by_size: dict[tuple[int, ...], list[int]] = defaultdict(list)
        for i, v in enumerate(views):
            by_size[tuple(v.shape[-2:])].append(i)
        out: list[Tensor | None] = [None] * len(views)
        for idx in by_size.values():
            logits = self.embed(torch.cat([views[i] for i in idx]))
            for i, chunk in zip(idx, logits.chunk(len(idx)), strict=True):
                out[i] = chunk
        return torch.stack(out)  # type: ignore[arg-type]

    def training_step(self, batch: Batch) -> dict[str, Tensor]:
        views = batch.views
        student = self._student(views)
        with torch.no_grad():
            h_teacher = self.teacher_backbone(torch.cat(views[:2]))
            teacher = self.teacher_head(h_teacher).view(2, len(views[0]), -1)
        center = self.center if self.centering else torch.zeros_like(self.center)
        loss = dino_loss(student, teacher, center, self.student_temperature, self.teacher_temperature)
        self.pending["teacher_logits"] = teacher.detach()  # for the center, after the optimizer step
        with torch.no_grad():  # the paper's fig. 7 diagnostics: teacher entropy; spread over the batch
            p_t = F.softmax((teacher.float() - center) / self.teacher_temperature, dim=-1)
            entropy = -torch.special.xlogy(p_t, p_t).sum(-1).mean()
        return {"loss": loss, "teacher_entropy": entropy, "teacher_std": p_t[0].std(0).mean(),
                **self.collapse_diagnostics(student[0])}

    @torch.no_grad()
    def on_after_step(self, step: int, total_steps: int) -> None:
        """Update the center from this step's teacher logits (``pending["teacher_logits"]``),
        then the teacher by EMA."""
        if "teacher_logits" in self.pending:
            teacher = self.pending.pop("teacher_logits")
            self.center.copy_(mean_across_ranks(dino_center(self.center, teacher, self.center_momentum)))
        self.momentum = cosine_momentum(step, total_steps, self.base_momentum)
        ema_update(self.teacher_backbone, self.backbone, self.momentum)
        ema_update(self.teacher_head, self.projection_head, self.momentum)


def _course_settings(context: CourseContext) -> dict:
    w = width(context, 2048)
    # 1,024 outputs instead of 65,536 for ten classes; BatchNorm in the head and a faster teacher
    # (momentum 0.95) for the short runs of the course (ch. 6 compares them with the paper's).
    return {"out_dim": 1024, "hidden_dim": w, "bottleneck_dim": min(256, w), "base_momentum": 0.95,
            "head_batch_norm": True}


SPEC = MethodSpec(name="dino", method=DINO, settings=_course_settings)
