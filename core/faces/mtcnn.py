"""MTCNN face detection (Zhang et al. 2016) with the weights inside the ``facenet-pytorch`` wheel.

The ``mtcnn`` and ``mtcnn_fast`` backends and the default detector's landmark O-Net. P-Net and R-Net scan a
downscaled copy; O-Net reads full-resolution crops, so boxes and landmarks keep full precision. The nets run as
ONNX Runtime sessions (:mod:`core.faces.mtcnn_nets`).
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field

import cv2
import numpy as np

from core.faces.boxes import faces_from_xyxy, nms, nms_min
from core.faces.mtcnn_nets import sessions
from core.faces.registry import register_detector, with_options
from core.faces.types import Face, check_rgb

log = logging.getLogger(__name__)

__all__ = ["MTCNNConfig", "MTCNNDetector"]


# --------------------------------------------------------------------------------------------------------------
# Box helpers (numpy; boxes are float (n, 4) arrays x1, y1, x2, y2)


def _square(boxes: np.ndarray) -> np.ndarray:
    """Grow each box to a square around its centre (MTCNN's ``rerec``)."""
    w, h = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
    side = np.maximum(w, h)
    x1, y1 = boxes[:, 0] + w * 0.5 - side * 0.5, boxes[:, 1] + h * 0.5 - side * 0.5
    return np.stack([x1, y1, x1 + side, y1 + side], axis=1)


def _regress(boxes: np.ndarray, reg: np.ndarray) -> np.ndarray:
    """Apply the nets' box offsets (fractions of the box size)."""
    w = (boxes[:, 2] - boxes[:, 0] + 1)[:, None]
    h = (boxes[:, 3] - boxes[:, 1] + 1)[:, None]
    return boxes + reg * np.concatenate([w, h, w, h], axis=1)


def _crops(image: np.ndarray, boxes: np.ndarray, size: int) -> np.ndarray:
    """Cut ``boxes`` out of ``image`` (zero padding outside it), resize to ``size``, normalise to [-1, 1]."""
    height, width = image.shape[:2]
    out = np.zeros((len(boxes), size, size, 3), np.float32)
    for i, (x1, y1, x2, y2) in enumerate(np.floor(boxes).astype(np.int64)):
        bw, bh = x2 - x1 + 1, y2 - y1 + 1
        sx1, sy1, sx2, sy2 = max(x1, 0), max(y1, 0), min(x2 + 1, width), min(y2 + 1, height)
        if bw < 2 or bh < 2 or sx2 <= sx1 or sy2 <= sy1:
            continue
        if sx1 == x1 and sy1 == y1 and sx2 == x2 + 1 and sy2 == y2 + 1:
            crop = image[y1 : y2 + 1, x1 : x2 + 1]
        else:
            crop = np.zeros((bh, bw, 3), np.uint8)
            crop[sy1 - y1 : sy2 - y1, sx1 - x1 : sx2 - x1] = image[sy1:sy2, sx1:sx2]
        interp = cv2.INTER_AREA if bw > size else cv2.INTER_LINEAR
        out[i] = cv2.resize(crop, (size, size), interpolation=interp)
    out -= 127.5
    out *= 1.0 / 128.0
    return np.ascontiguousarray(out.transpose(0, 3, 1, 2))


# --------------------------------------------------------------------------------------------------------------
# The detector


@dataclass(frozen=True)
class MTCNNConfig:
    """MTCNN options; the defaults are the fast embedded configuration of docs/faces.md.

    Attributes:
        detect_size: longest side of the copy P-Net and R-Net scan (never upscaled); ``None``: full resolution.
        min_face: smallest face searched for, in pixels **of the scanned copy** (>= 12): with the defaults, 3/40
            of the image's longest side.
        thresholds: P-, R- and O-Net score cuts (stricter than the paper's 0.6/0.7/0.7: fewer false faces).
        factor: ratio between two pyramid levels (the paper's 1/sqrt(2)).
        max_proposals: at most this many P-Net boxes go to R-Net, which bounds the time on cluttered images.
        max_faces: keep at most this many faces (highest scores); ``None`` keeps all.
        weights_dir: a folder with ``pnet.pt``/``rnet.pt``/``onet.pt`` (default: inside facenet-pytorch).
        num_threads: ONNX Runtime threads per net (1: never competes with the expression model).
    """

    detect_size: int | None = 320
    min_face: int = 24
    thresholds: tuple[float, float, float] = (0.7, 0.7, 0.95)
    factor: float = 0.709
    max_proposals: int = 64
    max_faces: int | None = None
    weights_dir: str | None = None
    num_threads: int = 1

    def __post_init__(self) -> None:
        object.__setattr__(self, "thresholds", tuple(self.thresholds))  # a list from a config file is fine too
        if self.detect_size is not None and self.detect_size < 48:
            raise ValueError(f"detect_size must be >= 48 pixels or None, got {self.detect_size}")
        if self.min_face < 12:
            raise ValueError(f"min_face must be >= 12 (P-Net's receptive field), got {self.min_face}")
        if self.num_threads < 1:
            raise ValueError(f"num_threads must be >= 1, got {self.num_threads}")
        if self.max_proposals < 1:
            raise ValueError(f"max_proposals must be >= 1, got {self.max_proposals}")
        if not 0.3 <= self.factor < 0.95:
            raise ValueError(f"factor must be in [0.3, 0.95), got {self.factor}")
        if len(self.thresholds) != 3 or not all(0.0 <= t < 1.0 for t in self.thresholds):
            raise ValueError(f"thresholds must be three scores in [0, 1), got {self.thresholds}")


@dataclass(frozen=True, eq=False)
class MTCNNDetector:
    """Three-stage cascade; see the module docstring for what makes it fast. Thread-safe (no mutable state)."""

    config: MTCNNConfig = field(default_factory=MTCNNConfig)
    name: str = "mtcnn"

    def _nets(self) -> dict:
        return sessions(self.config.weights_dir, self.config.num_threads)

    def detect(self, image_rgb: np.ndarray) -> list[Face]:
        check_rgb(image_rgb)
        nets = self._nets()
        cfg = self.config
        height, width = image_rgb.shape[:2]
        s0 = 1.0
        small = image_rgb
        if cfg.detect_size is not None and max(height, width) > cfg.detect_size:
            s0 = cfg.detect_size / max(height, width)
            size = (max(1, round(width * s0)), max(1, round(height * s0)))
            small = cv2.resize(image_rgb, size, interpolation=cv2.INTER_AREA)
        boxes = self._propose(small, nets["pnet"])
        if len(boxes):
            boxes = self._refine(small, boxes, nets["rnet"])
        if not len(boxes):
            return []
        scale = np.array([small.shape[1] / width, small.shape[0] / height] * 2, np.float32)
        boxes[:, :4] = boxes[:, :4] / scale
        return self._output(image_rgb, boxes, nets["onet"])

    def refine(self, image_rgb: np.ndarray, faces: list[Face], grow: float = 1.1) -> list[Face]:
        """Re-run only O-Net on boxes from a previous frame (the tracker's cheap step), each squared and grown by
        ``grow`` so that a face that moved a little is still inside it; a face that left fails the score."""
        check_rgb(image_rgb)
        if not faces:
            return []
        centers = np.array([f.center for f in faces])
        half = np.array([max(f.box[2], f.box[3]) for f in faces])[:, None] * grow / 2.0
        boxes = np.concatenate([centers - half, centers + half], axis=1).astype(np.float32)
        return self._output(image_rgb, boxes, self._nets()["onet"])

    # -- stage 1: P-Net over an image pyramid of the small copy
    def _propose(self, small: np.ndarray, pnet) -> np.ndarray:
        cfg = self.config
        h, w = small.shape[:2]
        scale = 12.0 / cfg.min_face
        scales = []
        while min(h, w) * scale >= 12:
            scales.append(scale)
            scale *= cfg.factor
        found = []
        for s in scales:
            hs, ws = math.ceil(h * s), math.ceil(w * s)
            level = cv2.resize(small, (ws, hs), interpolation=cv2.INTER_AREA)
            x = ((level.astype(np.float32) - 127.5) * (1.0 / 128.0)).transpose(2, 0, 1)[None]
            reg, prob = pnet.run(None, {"x": np.ascontiguousarray(x)})
            prob = prob[0, 1]
            ys, xs = np.nonzero(prob >= cfg.thresholds[0])
            if not len(ys):
                continue
            score = prob[ys, xs]
            offsets = reg[0][:, ys, xs].T
            cells = np.stack([xs, ys], axis=1).astype(np.float32)
            q1 = np.floor((2 * cells + 1) / s)
            q2 = np.floor((2 * cells + 12) / s)
            cand = np.concatenate([q1, q2, score[:, None], offsets], axis=1)
            found.append(cand[nms(cand[:, :4], cand[:, 4], 0.5)])
        if not found:
            return np.zeros((0, 5), np.float32)
        cand = np.concatenate(found)
        cand = cand[nms(cand[:, :4], cand[:, 4], 0.7)[: cfg.max_proposals]]
        boxes = _square(_regress(cand[:, :4], cand[:, 5:9]))
        return np.concatenate([boxes, cand[:, 4:5]], axis=1)

    # -- stage 2: R-Net on 24x24 crops of the small copy
    def _refine(self, small: np.ndarray, boxes: np.ndarray, rnet) -> np.ndarray:
        reg, prob = rnet.run(None, {"x": _crops(small, boxes[:, :4], 24)})
        score = prob[:, 1]
        ok = score > self.config.thresholds[1]
        boxes, score, reg = boxes[ok, :4], score[ok], reg[ok]
        keep = nms(boxes, score, 0.7)
        boxes = _square(_regress(boxes[keep], reg[keep]))
        return np.concatenate([boxes, score[keep, None]], axis=1)

    # -- stage 3: O-Net on 48x48 crops of the full-resolution image: final score, box and landmarks
    def _output(self, image: np.ndarray, boxes: np.ndarray, onet) -> list[Face]:
        reg, points, prob = onet.run(None, {"x": _crops(image, boxes[:, :4], 48)})
        score = prob[:, 1]
        ok = score > self.config.thresholds[2]
        if not ok.any():
            return []
        boxes, score, reg, points = boxes[ok, :4], score[ok], reg[ok], points[ok]
        bw = (boxes[:, 2] - boxes[:, 0] + 1)[:, None]
        bh = (boxes[:, 3] - boxes[:, 1] + 1)[:, None]
        lx = boxes[:, 0:1] + bw * points[:, 0:5] - 1
        ly = boxes[:, 1:2] + bh * points[:, 5:10] - 1
        landmarks = np.stack([lx, ly], axis=2)
        boxes = _regress(boxes, reg)
        keep = nms_min(boxes, score, 0.7)
        if self.config.max_faces is not None:
            keep = keep[: self.config.max_faces]
        height, width = image.shape[:2]
        return faces_from_xyxy(np.clip(boxes, 0.0, [width, height, width, height]), score, landmarks, keep)


@register_detector
def mtcnn_fast(**overrides) -> MTCNNDetector:
    """MTCNN scanning a 320-pixel copy (faces >= 3/40 of the longest side); the default's fallback."""
    return MTCNNDetector(with_options(MTCNNConfig(), overrides), name="mtcnn_fast")


@register_detector
def mtcnn(**overrides) -> MTCNNDetector:
    """MTCNN at full resolution, faces >= 20 px: slower, for group photos with small faces."""
    return MTCNNDetector(with_options(MTCNNConfig(detect_size=None, min_face=20), overrides), name="mtcnn")
