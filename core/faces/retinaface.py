"""RetinaFace (Deng et al., CVPR 2020; ResNet-50) through the ``retina-face`` package: the papers' detector.

Optional and offline: it needs the package (``pip install --no-deps retina-face==0.0.19``) and a local
``retinaface.pth``; it never downloads, and a missing file raises :class:`DetectorUnavailableError` naming it.
"""

from __future__ import annotations

import importlib
import logging
import os
import sys
import threading
import types
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch

from core.faces.boxes import faces_from_xyxy, nms
from core.faces.registry import register_detector
from core.faces.types import DetectorUnavailableError, Face, check_rgb

log = logging.getLogger(__name__)

WEIGHTS_ENV = "FERLENS_RETINAFACE_WEIGHTS"
WEIGHTS_NAME = "retinaface.pth"
WEIGHTS_SOURCE = "the v1.0 release of the serengil/deepface_models repository on GitHub"

_NETS: dict[str, torch.nn.Module] = {}
_LOCK = threading.Lock()

# RetinaFace's anchors per feature stride (from retina-face / RetinaFace-tf2)
_STRIDES = (32, 16, 8)
_ANCHORS = {
    32: np.array([[-248.0, -248.0, 263.0, 263.0], [-120.0, -120.0, 135.0, 135.0]], np.float32),
    16: np.array([[-56.0, -56.0, 71.0, 71.0], [-24.0, -24.0, 39.0, 39.0]], np.float32),
    8: np.array([[-8.0, -8.0, 23.0, 23.0], [0.0, 0.0, 15.0, 15.0]], np.float32),
}


def find_weights(weights: str | os.PathLike | None = None) -> Path:
    """The weights file to use (argument, then env var, then retina-face's cache), or a clear error."""
    if weights is not None:
        path = Path(weights).expanduser()
        if not path.is_file():
            raise DetectorUnavailableError(f"RetinaFace weights file not found: {path}")
        return path
    env = os.environ.get(WEIGHTS_ENV)
    if env:
        path = Path(env).expanduser()
        if not path.is_file():
            raise DetectorUnavailableError(f"{WEIGHTS_ENV} points to {path}, which is not a file")
        return path
    home = Path(os.environ.get("DEEPFACE_HOME") or Path.home())
    cached = home / ".deepface" / "weights" / WEIGHTS_NAME  # where retina-face keeps its weights
    if cached.is_file():
        return cached
    raise DetectorUnavailableError(
        f"the 'retinaface' detector needs the weights file {WEIGHTS_NAME} (from {WEIGHTS_SOURCE}), which ferlens "
        f"never downloads. Fetch it once and either put it at {cached}, set {WEIGHTS_ENV}=/path/to/{WEIGHTS_NAME}, "
        f"or pass create_detector('retinaface', weights=PATH). The embedded 'default' detector needs no download."
    )


def _network_class() -> type[torch.nn.Module]:
    """retina-face's PyTorch RetinaFace class, imported without letting it download anything."""
    name = "retinaface.model.retinaface_pth_model"
    try:
        return importlib.import_module(name).RetinaFace
    except ModuleNotFoundError as exc:
        if exc.name != "gdown":
            raise DetectorUnavailableError(
                "the 'retinaface' detector needs the retina-face package: "
                "`pip install --no-deps retina-face==0.0.19` (--no-deps: its metadata asks for a second OpenCV)"
            ) from exc
    # gdown is only used by retina-face's downloader, which ferlens never calls: a refusing stand-in
    stub = types.ModuleType("gdown")

    def _refuse(*_args, **_kwargs):
        raise DetectorUnavailableError("ferlens does not download weights; see core.faces.retinaface.find_weights")

    stub.download = _refuse  # type: ignore[attr-defined]
    sys.modules.setdefault("gdown", stub)
    return importlib.import_module(name).RetinaFace


def _load_net(path: Path) -> torch.nn.Module:
    from core.models.weights import read_state_dict

    key = str(path.resolve())
    with _LOCK:
        if key not in _NETS:
            net = _network_class()()
            net.load_state_dict(read_state_dict(path))
            _NETS[key] = net.eval().requires_grad_(False)
            log.info("loaded RetinaFace weights from %s", path)
        return _NETS[key]


@dataclass(eq=False)
class RetinaFaceDetector:
    """RetinaFace-ResNet50. Slow on CPU (hundreds of ms per photo) but the papers' choice and robust to pose.

    Args:
        weights: path to ``retinaface.pth``; see :func:`find_weights` for the fallbacks.
        threshold: face score threshold (retina-face's default 0.9).
        target_size, max_size: the image is scaled so its short side is ``target_size`` but its long side at
            most ``max_size`` (retina-face's 1024 / 1980); ``allow_upscaling=False`` never enlarges it.
    """

    weights: str | os.PathLike | None = None
    threshold: float = 0.9
    target_size: int = 1024
    max_size: int = 1980
    allow_upscaling: bool = False
    nms_threshold: float = 0.4
    name = "retinaface"

    def __post_init__(self) -> None:
        self.weights = find_weights(self.weights)
        _network_class()  # fail now, with the install hint, rather than on the first image

    def detect(self, image_rgb: np.ndarray) -> list[Face]:
        from retinaface.commons import postprocess as pp

        check_rgb(image_rgb)
        net = _load_net(self.weights)
        h, w = image_rgb.shape[:2]
        scale = self.target_size / float(min(h, w))
        if not self.allow_upscaling:
            scale = min(1.0, scale)
        if round(scale * max(h, w)) > self.max_size:
            scale = self.max_size / float(max(h, w))
        img = image_rgb
        if scale != 1.0:
            img = cv2.resize(image_rgb, None, fx=scale, fy=scale, interpolation=cv2.INTER_LINEAR)
        with torch.inference_mode():
            outs = [o.numpy() for o in net(torch.from_numpy(img.astype(np.float32))[None])]
        boxes_all, scores_all, lms_all = [], [], []
        for k, stride in enumerate(_STRIDES):
            scores, deltas, lm_deltas = outs[3 * k], outs[3 * k + 1], outs[3 * k + 2]
            n_anchors = _ANCHORS[stride].shape[0]
            fh, fw = deltas.shape[1], deltas.shape[2]
            anchors = pp.anchors_plane(fh, fw, stride, _ANCHORS[stride]).reshape(-1, 4)
            sc = scores[..., n_anchors:].reshape(-1)
            keep = np.nonzero(sc >= self.threshold)[0]
            if not len(keep):
                continue
            boxes = pp.bbox_pred(anchors, deltas.reshape(-1, 4).astype(np.float64))[keep]
            boxes = pp.clip_boxes(boxes, img.shape[:2])
            lms = pp.landmark_pred(anchors, lm_deltas.reshape(-1, 5, 2).astype(np.float64))[keep]
            boxes_all.append(boxes[:, :4] / scale)
            scores_all.append(sc[keep])
            lms_all.append(lms / scale)
        if not boxes_all:
            return []
        boxes, scores, lms = np.concatenate(boxes_all), np.concatenate(scores_all), np.concatenate(lms_all)
        # retina-face names row 0 "right_eye" (the subject's), which is the viewer's left: same order as ours
        return faces_from_xyxy(boxes, scores, lms, nms(boxes, scores, self.nms_threshold))


@register_detector
def retinaface(**kwargs) -> RetinaFaceDetector:
    """RetinaFace-ResNet50 from local weights only (see the module docstring)."""
    return RetinaFaceDetector(**kwargs)
