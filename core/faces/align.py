"""Five-point face alignment: a similarity transform onto a canonical template, and its inverse.

Both matrices are kept, so maps on the crop can be drawn back on the photo. The fit is weighted (eyes 1, nose
0.5, mouth corners 0.25) because mouth corners move with the expression and eyes barely do.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from core.faces.types import Face, check_rgb

__all__ = [
    "ARCFACE_TEMPLATE_112",
    "DEFAULT_WEIGHTS",
    "FER2013_FRAMING_48",
    "FRAMINGS",
    "framing_points",
    "AlignedFace",
    "template_points",
    "similarity_transform",
    "invert_affine",
    "transform_points",
    "align_face",
    "warp_to_image",
]

ARCFACE_TEMPLATE_112 = np.array(
    [
        [38.2946, 51.6963],  # left_eye (viewer's left)
        [73.5318, 51.5014],  # right_eye
        [56.0252, 71.7366],  # nose
        [41.5493, 92.3655],  # mouth_left
        [70.7299, 92.2041],  # mouth_right
    ],
    dtype=np.float64,
)
"""InsightFace's ``arcface_dst``: the five points inside a 112x112 face box (Deng et al., ArcFace, CVPR 2019)."""

DEFAULT_WEIGHTS = np.array([1.0, 1.0, 0.5, 0.25, 0.25])
"""Per-landmark weights of the fit (eyes, nose, mouth corners); see the module docstring for why."""


def template_points(output_size: int, expand: float = 1.3) -> np.ndarray:
    """The five template points in crop pixels for a square crop of ``output_size`` and box expansion ``expand``.

    The 112x112 template box is the face box; expanding it ``expand`` times about its centre and scaling the
    result to ``output_size`` gives ``p = ((t / 112 - 0.5) / expand + 0.5) * output_size - 0.5`` (the -0.5:
    OpenCV puts pixel centres at integer coordinates, so the crop spans [-0.5, output_size - 0.5]).
    """
    if output_size < 8:
        raise ValueError(f"output_size must be >= 8 pixels, got {output_size}")
    if not 0.5 <= expand <= 4.0:
        raise ValueError(f"expand must be in [0.5, 4], got {expand}")
    unit = ARCFACE_TEMPLATE_112 / 112.0
    return ((unit - 0.5) / expand + 0.5) * float(output_size) - 0.5


FER2013_FRAMING_48 = np.array(
    [[14.65, 18.3], [32.35, 18.3], [23.5, 28.2], [16.05, 36.7], [30.95, 36.7]], dtype=np.float64
)
"""Where the face pipeline's landmarks fall on FER2013's 48x48 faces (pixel centres; per-point medians measured by
``python bench/engine.py --measure-framing``), so a live face is cropped the way the training faces were. The
ArcFace template at ``expand=1.3`` would show a FER2013-trained model faces about 1.5x smaller than it learnt."""

FRAMINGS: tuple[str, ...] = ("fer2013", "template")
"""Where an aligned crop puts the face: like FER2013's 48x48 faces (what every model trained on FER2013/FERPlus
saw), or the ArcFace template with box expansion ``expand`` (the papers' RetinaFace protocol)."""


def framing_points(output_size: int, framing: str = "fer2013", expand: float = 1.3) -> np.ndarray:
    """The five destination points (crop pixels) of the alignment for a square crop in ``framing``."""
    if framing == "fer2013":
        if output_size < 8:
            raise ValueError(f"output_size must be >= 8 pixels, got {output_size}")
        return (FER2013_FRAMING_48 + 0.5) * (output_size / 48.0) - 0.5
    if framing == "template":
        return template_points(output_size, expand)
    raise ValueError(f"unknown framing {framing!r}; choose one of {list(FRAMINGS)}")


def similarity_transform(src: np.ndarray, dst: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
    """Least-squares similarity (rotation, uniform scale, translation) mapping ``src`` onto ``dst``; 2x3.

    Weighted Umeyama (1991) in closed form: deterministic, no RANSAC, exact for exact correspondences.
    """
    src = np.asarray(src, np.float64).reshape(-1, 2)
    dst = np.asarray(dst, np.float64).reshape(-1, 2)
    w = np.ones(len(src)) if weights is None else np.asarray(weights, np.float64).reshape(-1)
    if len(src) != len(dst) or len(w) != len(src) or len(src) < 2:
        raise ValueError("similarity_transform needs matching point lists (>= 2 points) and weights")
    if not (np.isfinite(src).all() and np.isfinite(dst).all()):
        raise ValueError("landmarks must be finite")
    w = w / w.sum()
    mu_s, mu_d = w @ src, w @ dst
    xs, xd = src - mu_s, dst - mu_d
    var_s = float(w @ (xs**2).sum(axis=1))
    if var_s < 1e-12:
        raise ValueError("landmarks are degenerate (all points coincide)")
    cov = (xd * w[:, None]).T @ xs
    u, d, vt = np.linalg.svd(cov)
    sign = np.ones(2)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:
        sign[-1] = -1.0  # no reflections: a face seen in a mirror is not the same face
    rot = u @ np.diag(sign) @ vt
    scale = float((d * sign).sum() / var_s)
    m = np.zeros((2, 3))
    m[:, :2] = scale * rot
    m[:, 2] = mu_d - scale * rot @ mu_s
    return m


def invert_affine(matrix: np.ndarray) -> np.ndarray:
    """Inverse of a 2x3 affine matrix."""
    return cv2.invertAffineTransform(np.asarray(matrix, np.float64))


def transform_points(points: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """Apply a 2x3 affine matrix to ``(..., 2)`` points."""
    pts = np.asarray(points, np.float64)
    m = np.asarray(matrix, np.float64)
    return pts @ m[:, :2].T + m[:, 2]


@dataclass(frozen=True, eq=False)
class AlignedFace:
    """An aligned crop and everything needed to go back to the original image.

    Attributes:
        image: ``(output_size, output_size, 3)`` uint8 RGB crop.
        matrix: 2x3 forward affine, original-image pixels -> crop pixels.
        inverse: 2x3 inverse affine, crop pixels -> original-image pixels.
        landmarks: the face's five landmarks in crop pixels (where they actually landed).
        face: the detected face this crop came from (original-image coordinates).
        template: the five template points in crop pixels (where they were asked to land).
    """

    image: np.ndarray
    matrix: np.ndarray
    inverse: np.ndarray
    landmarks: np.ndarray
    face: Face
    template: np.ndarray

    @property
    def output_size(self) -> int:
        return int(self.image.shape[0])

    @property
    def scale(self) -> float:
        """Crop pixels per original pixel."""
        return math.sqrt(abs(float(np.linalg.det(self.matrix[:, :2]))))

    def to_image(self, points: np.ndarray) -> np.ndarray:
        """Crop-pixel points -> original-image pixels."""
        return transform_points(points, self.inverse)


def _warp(image: np.ndarray, matrix: np.ndarray, size: int, flags: int, border_value) -> np.ndarray:
    """``cv2.warpAffine`` that first area-averages when the warp shrinks a lot (a 400 px face into 48 px).

    ``warpAffine`` samples without low-pass filtering, so a strong shrink aliases (jagged edges, flicker on
    video). When the scale is below 0.5 the region that lands in the crop is first resized with INTER_AREA to
    about the target scale, and the warp then only rotates and fine-scales it.
    """
    scale = math.sqrt(abs(float(np.linalg.det(matrix[:, :2]))))
    if scale < 0.5:
        inv = invert_affine(matrix)
        corners = transform_points(np.array([[0, 0], [size, 0], [0, size], [size, size]], np.float64), inv)
        h, w = image.shape[:2]
        x0, y0 = (max(0, int(math.floor(v)) - 2) for v in corners.min(axis=0))
        x1, y1 = min(w, int(math.ceil(corners[:, 0].max())) + 2), min(h, int(math.ceil(corners[:, 1].max())) + 2)
        if x1 - x0 >= 4 and y1 - y0 >= 4:
            roi = image[y0:y1, x0:x1]
            nw, nh = max(2, round((x1 - x0) * scale)), max(2, round((y1 - y0) * scale))
            small = cv2.resize(roi, (nw, nh), interpolation=cv2.INTER_AREA)
            kx, ky = nw / (x1 - x0), nh / (y1 - y0)
            # cv2.resize aligns pixel centres: roi = (small + 0.5) / k - 0.5
            to_roi = np.array([[1 / kx, 0.0, 0.5 / kx - 0.5 + x0], [0.0, 1 / ky, 0.5 / ky - 0.5 + y0], [0, 0, 1.0]])
            m = np.asarray(matrix, np.float64) @ to_roi
            return cv2.warpAffine(small, m, (size, size), flags=flags, borderValue=border_value)
    return cv2.warpAffine(image, np.asarray(matrix, np.float64), (size, size), flags=flags, borderValue=border_value)


def align_face(
    image_rgb: np.ndarray,
    face: Face,
    output_size: int = 224,
    expand: float = 1.3,
    weights: np.ndarray | None = DEFAULT_WEIGHTS,
    border_value: int | tuple[int, int, int] = 0,
    framing: str = "template",
) -> AlignedFace:
    """Warp one face to a square ``output_size`` crop (bicubic) in one of :data:`FRAMINGS`.

    ``expand`` (how much larger than the template face box the crop is) applies to ``"template"`` only;
    ``weights=None`` fits unweighted; ``border_value`` fills crop pixels that fall outside the image.
    """
    check_rgb(image_rgb)
    dst = framing_points(output_size, framing, expand)
    matrix = similarity_transform(face.landmarks, dst, weights)
    crop = _warp(image_rgb, matrix, output_size, cv2.INTER_CUBIC, border_value)
    inverse = invert_affine(matrix)
    landmarks = transform_points(face.landmarks, matrix).astype(np.float32)
    return AlignedFace(crop, matrix, inverse, landmarks, face, dst.astype(np.float32))


def warp_to_image(
    map_2d: np.ndarray,
    aligned: AlignedFace,
    image_shape: tuple[int, ...],
    interpolation: int = cv2.INTER_LINEAR,
    fill: float = 0.0,
) -> np.ndarray:
    """Map a crop-space map (a Grad-CAM heatmap, a region mask, a crop-sized image) back onto the original.

    The map may have any resolution (e.g. a 7x7 CAM): it is taken to cover the whole crop. Pixels of the
    original image that the crop does not cover get ``fill``. Returns ``image_shape[:2]`` (plus the map's
    channels, if any), dtype of the map (float maps stay float).
    """
    arr = np.asarray(map_2d)
    if arr.ndim not in (2, 3) or min(arr.shape[:2]) < 1:
        raise ValueError(f"map_2d must be (h, w) or (h, w, c), got shape {arr.shape}")
    if arr.dtype == np.float64 or arr.dtype == np.bool_:
        arr = arr.astype(np.float32)
    size = aligned.output_size
    # map pixel (u, v) covers crop pixel (u * size / mw, v * size / mh): compose that scale into the inverse
    mh, mw = arr.shape[:2]
    to_crop = np.array([[size / mw, 0.0, 0.5 * size / mw - 0.5], [0.0, size / mh, 0.5 * size / mh - 0.5], [0, 0, 1]])
    m = np.vstack([aligned.inverse, [0.0, 0.0, 1.0]]) @ to_crop
    h, w = int(image_shape[0]), int(image_shape[1])
    return cv2.warpAffine(arr, m[:2], (w, h), flags=interpolation, borderMode=cv2.BORDER_CONSTANT, borderValue=fill)
