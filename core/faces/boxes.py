"""Box utilities shared by the detectors and the video tracker: NMS and IoU.

Greedy NMS and IoU come from ``torchvision.ops`` (also what facenet-pytorch's MTCNN uses for its union NMS). Only
MTCNN's last-stage "min" NMS (overlap over the smaller box) is written here, because torchvision has none.
"""

from __future__ import annotations

import numpy as np
import torch
from torchvision.ops import box_convert, box_iou
from torchvision.ops import nms as _tv_nms

from core.faces.types import Face

__all__ = ["faces_from_xyxy", "iou_xywh", "nms", "nms_min"]


def nms(boxes: np.ndarray, scores: np.ndarray, threshold: float) -> np.ndarray:
    """Indices kept by greedy NMS over ``(n, 4)`` x1, y1, x2, y2 boxes, best score first."""
    if len(boxes) == 0:
        return np.zeros(0, np.int64)
    b = torch.as_tensor(np.asarray(boxes, np.float32))
    s = torch.as_tensor(np.asarray(scores, np.float32))
    return _tv_nms(b, s, float(threshold)).numpy()


def nms_min(boxes: np.ndarray, scores: np.ndarray, threshold: float) -> np.ndarray:
    """MTCNN's last-stage NMS: overlap is divided by the smaller box's area (pixel-inclusive, as the reference)."""
    if len(boxes) == 0:
        return np.zeros(0, np.int64)
    x1, y1, x2, y2 = boxes[:, 0], boxes[:, 1], boxes[:, 2], boxes[:, 3]
    area = (x2 - x1 + 1) * (y2 - y1 + 1)
    order = np.argsort(-scores, kind="stable")
    keep = []
    while order.size:
        i, rest = order[0], order[1:]
        keep.append(i)
        w = np.maximum(0.0, np.minimum(x2[i], x2[rest]) - np.maximum(x1[i], x1[rest]) + 1)
        h = np.maximum(0.0, np.minimum(y2[i], y2[rest]) - np.maximum(y1[i], y1[rest]) + 1)
        order = rest[w * h / np.minimum(area[i], area[rest]) <= threshold]
    return np.asarray(keep, np.int64)


def faces_from_xyxy(boxes: np.ndarray, scores: np.ndarray, landmarks: np.ndarray, keep: np.ndarray) -> list[Face]:
    """Faces for the rows ``keep`` of ``(n, 4)`` x1, y1, x2, y2 boxes, dropping those under a pixel wide or high."""
    faces = []
    for i in keep:
        x1, y1, x2, y2 = (float(v) for v in boxes[i])
        if x2 - x1 >= 1 and y2 - y1 >= 1:
            faces.append(Face((x1, y1, x2 - x1, y2 - y1), float(scores[i]), landmarks[i]))
    return faces


def iou_xywh(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU between every box of ``a`` ``(N, 4)`` and ``b`` ``(M, 4)``, boxes as ``(x, y, w, h)``; 0 for empty."""
    ta = box_convert(torch.as_tensor(np.asarray(a, np.float64).reshape(-1, 4)), "xywh", "xyxy")
    tb = box_convert(torch.as_tensor(np.asarray(b, np.float64).reshape(-1, 4)), "xywh", "xyxy")
    return torch.nan_to_num(box_iou(ta, tb), nan=0.0).numpy()
