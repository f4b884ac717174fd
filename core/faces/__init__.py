"""The face pipeline: detect -> align -> preprocess, plus the face mesh and AU regions the explanations use.

Importing this package registers every detector backend (:func:`create_detector` builds one by name).
Landmark order everywhere: left eye, right eye, nose, mouth left, mouth right, from the viewer's side.
"""

from __future__ import annotations

import functools

import numpy as np

from core.faces import blazeface, cropped, mtcnn, retinaface  # noqa: F401  (registration side effects)
from core.faces.align import (
    AlignedFace,
    align_face,
    template_points,
    transform_points,
    warp_to_image,
)
from core.faces.au_regions import (
    REGION_NAMES,
    AURegion,
    FaceRegions,
    au_regions,
    regions_for,
    regions_for_crop,
    regions_to_image,
)
from core.faces.mesh import MeshFit, fit_mesh
from core.faces.preprocess import (
    PreprocessConfig,
    build_preprocess,
    from_names,
)
from core.faces.registry import (
    DETECTORS,
    create_detector,
    detector_available,
    list_detectors,
)
from core.faces.tracking import FaceTracker
from core.faces.types import DetectorUnavailableError, Face, FaceDetector

__all__ = [
    "DETECTORS",
    "REGION_NAMES",
    "AURegion",
    "AlignedFace",
    "DetectorUnavailableError",
    "Face",
    "FaceDetector",
    "FaceRegions",
    "FaceTracker",
    "MeshFit",
    "PreprocessConfig",
    "align_face",
    "au_regions",
    "build_preprocess",
    "create_detector",
    "detect_and_align",
    "detector_available",
    "fit_mesh",
    "from_names",
    "list_detectors",
    "regions_for",
    "regions_for_crop",
    "regions_to_image",
    "template_points",
    "transform_points",
    "warp_to_image",
]


def detect_and_align(
    image_rgb: np.ndarray, size: int, detector: FaceDetector | None = None, framing: str = "fer2013"
) -> np.ndarray | None:
    """The aligned crop of the largest face, or ``None`` if there is none (for building datasets from photos),
    framed like ``core.detector.Detector``'s so photos added to training are cropped the way the app crops faces."""
    det = detector if detector is not None else _default_detector()
    faces = det.detect(image_rgb)
    if not faces:
        return None
    face = max(faces, key=lambda f: f.box[2] * f.box[3])
    return align_face(image_rgb, face, output_size=size, framing=framing).image


@functools.cache
def _default_detector() -> FaceDetector:
    return create_detector("default")
