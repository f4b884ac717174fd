"""Shared constants and helpers of the face tests (a plain module, so test files can import it)."""

from __future__ import annotations

import cv2
import numpy as np

# expected face counts per sample photo (../shared/datasets/README.md describes each file)
EXPECTED_FACES = {
    "multi_face.jpg": 5,
    "single_face.jpg": 1,
    "0-f1-su-ph.jpg": 1,
    "0-f15-hao-ph.jpg": 1,
    "15-f13-anc-ph.jpg": 1,
    "45-m7-di-ph.jpg": 1,
    "free-mountain-vector-01.jpg": 0,
}
NOT_FRONTAL = {"45-m7-di-ph.jpg"}  # head turned ~45 degrees: excluded from the frontal-alignment checks


def letterbox(image: np.ndarray, width: int = 640, height: int = 480) -> np.ndarray:
    """Fit the image into width x height (keeping its aspect), black borders: a webcam-sized frame."""
    h, w = image.shape[:2]
    s = min(width / w, height / h)
    small = cv2.resize(image, (round(w * s), round(h * s)), interpolation=cv2.INTER_AREA)
    out = np.zeros((height, width, 3), np.uint8)
    y, x = (height - small.shape[0]) // 2, (width - small.shape[1]) // 2
    out[y : y + small.shape[0], x : x + small.shape[1]] = small
    return out
