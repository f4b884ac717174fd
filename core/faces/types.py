"""What a face detector returns, and the one landmark convention every backend follows.

Five ``(x, y)`` points in image pixels, named from the viewer's side: ``left_eye``, ``right_eye``, ``nose``,
``mouth_left``, ``mouth_right`` (row 0 is the subject's right eye). MTCNN's O-Net, RetinaFace and the ArcFace
alignment template all use this order, so no backend reorders anything.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

import numpy as np

LANDMARK_NAMES: tuple[str, ...] = ("left_eye", "right_eye", "nose", "mouth_left", "mouth_right")
"""Row names of :attr:`Face.landmarks`, viewer's point of view (see the module docstring)."""


class DetectorUnavailableError(RuntimeError):
    """A detector backend cannot run here: a package or a weights file is missing. The message says what to get."""


@dataclass(frozen=True, eq=False)
class Face:
    """One detected face.

    Attributes:
        box: ``(x, y, w, h)`` in pixels of the input image, floats (x, y = top-left corner).
        score: detector confidence in [0, 1].
        landmarks: ``(5, 2)`` float32 array, rows in :data:`LANDMARK_NAMES` order.
    """

    box: tuple[float, float, float, float]
    score: float
    landmarks: np.ndarray = field(repr=False)

    def __post_init__(self) -> None:
        lm = np.asarray(self.landmarks, dtype=np.float32).reshape(5, 2).copy()
        lm.setflags(write=False)  # frozen means frozen: nobody edits a shared Face's points in place
        object.__setattr__(self, "landmarks", lm)
        object.__setattr__(self, "box", tuple(float(v) for v in self.box))
        object.__setattr__(self, "score", float(self.score))
        if len(self.box) != 4 or self.box[2] <= 0 or self.box[3] <= 0:
            raise ValueError(f"face box must be (x, y, w, h) with w, h > 0, got {self.box}")

    @property
    def xyxy(self) -> tuple[float, float, float, float]:
        x, y, w, h = self.box
        return x, y, x + w, y + h

    @property
    def center(self) -> tuple[float, float]:
        x, y, w, h = self.box
        return x + w / 2.0, y + h / 2.0


@runtime_checkable
class FaceDetector(Protocol):
    """What every backend implements. ``detect`` takes an ``(H, W, 3)`` uint8 RGB array (see ``core.io``)."""

    name: str

    def detect(self, image_rgb: np.ndarray) -> list[Face]:
        """Faces in the image, highest score first; an image without faces gives ``[]``, never an error."""
        ...


def check_rgb(image_rgb: np.ndarray) -> None:
    """Reject anything but an (H, W, 3) uint8 array early, with a plain message (detectors assume it)."""
    if not isinstance(image_rgb, np.ndarray) or image_rgb.dtype != np.uint8:
        got = type(image_rgb).__name__ if not isinstance(image_rgb, np.ndarray) else f"{image_rgb.dtype} array"
        raise TypeError(f"detectors take an (H, W, 3) uint8 RGB array (use core.io.load_image), got {got}")
    if image_rgb.ndim != 3 or image_rgb.shape[2] != 3 or min(image_rgb.shape[:2]) < 1:
        raise ValueError(f"detectors take an (H, W, 3) uint8 RGB array, got shape {image_rgb.shape}")
