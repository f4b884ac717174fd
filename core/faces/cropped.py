"""``assume_cropped``: for inputs that already are face crops (FER2013, CK+ crops, a user's cropped photo).

It "detects" one face covering the whole image, with landmarks placed so that alignment is a plain resize:
a pre-cropped dataset reaches the model exactly as it was cropped.
"""

from __future__ import annotations

import numpy as np

from core.faces.align import template_points
from core.faces.registry import register_detector
from core.faces.types import Face, check_rgb


class AssumeCroppedDetector:
    """One face = the whole image, landmarks at the template positions scaled to the image."""

    name = "assume_cropped"

    def __init__(self, expand: float = 1.3) -> None:
        self.expand = expand
        self._unit = (template_points(1000, expand) + 0.5) / 1000.0  # in [0, 1] units of the crop; validates

    def detect(self, image_rgb: np.ndarray) -> list[Face]:
        check_rgb(image_rgb)
        h, w = image_rgb.shape[:2]
        # map pixel-centre coordinates: unit square [0, 1] spans [-0.5, w - 0.5] like the aligner's crop
        landmarks = self._unit * np.array([w, h], np.float64) - 0.5
        return [Face((0.0, 0.0, float(w), float(h)), 1.0, landmarks)]


@register_detector
def assume_cropped(expand: float = 1.3) -> AssumeCroppedDetector:
    """The input is already a face crop: one face, the whole image."""
    return AssumeCroppedDetector(expand)
