"""Rotation prediction, RotNet (Gidaris, Singh & Komodakis 2018): classify by how many quarter
turns an image was rotated.

Course: :ref:`ch4-rotation`. Recognising that an object is
upside down needs to know what the object is, so a network that tells the four rotations apart
must learn object-level features; the task has no signal on data without a canonical
orientation (the course's shapes are drawn at uniformly random angles).
"""

from __future__ import annotations

from torch import Tensor, nn

from ..data import Batch
from ..heads import mlp
from ..pretext import rotations
from .base import CourseContext, Method, MethodSpec, classification_outputs, feature_dim, width
from .supervised import supervised_views


class RotationPrediction(Method):
    """Backbone + rotation classifier (the ``projection_head``, 4 logits); cross-entropy over
    all four rotations of every image of ``batch.views[0]`` (``pretext.rotations``: label k
    is k quarter turns counter-clockwise).

    Diagnostics are measured on z = the logits of the unrotated images (the first B rows of
    the rotated batch), i.e. ``embed(x)``.

    Args:
        backbone: encoder with ``feature_dim``; its output h is the representation.
        hidden_dim: width of the classifier's hidden layer (RotNet's non-linear classifiers
            are small MLPs / conv blocks; 0 gives a linear classifier).
    """

    def __init__(self, backbone: nn.Module, hidden_dim: int = 256) -> None:
        d = feature_dim(backbone)
        head = nn.Linear(d, 4) if hidden_dim == 0 else mlp(d, hidden_dim, 4)
        super().__init__(backbone, head)

    def training_step(self, batch: Batch) -> dict[str, Tensor]:
        x = batch.views[0]
        rotated, labels = rotations(x)
        logits = self.embed(rotated)  # one pass over the 4B images: batch norm sees all rotations
        return classification_outputs(logits, labels, "rotation_loss", logits[: len(x)], self)


def _course_settings(context: CourseContext) -> dict:
    return {"hidden_dim": width(context, 256)}  # the profile's head width; 256: the course's choice


SPEC = MethodSpec(name="rotation", method=RotationPrediction, settings=_course_settings, views=supervised_views)
