"""Detect every k-th frame, track in between: what makes the face step cheap enough for live video.

A tracking step re-runs only the detector's ``refine`` (MTCNN's O-Net on each previous box, grown a little):
about a millisecond per face, with a fresh score, box and landmarks. A face that left fails the score and is
dropped; new faces appear at the next full detection. Detectors without ``refine`` detect on every frame.
"""

from __future__ import annotations

import threading

import numpy as np

from core.faces.types import Face, FaceDetector


class FaceTracker:
    """Stateful per video stream (one tracker per stream); ``update`` is serialised by a lock.

    Args:
        detector: the detector for full passes (default: ``create_detector("default")``).
        redetect_every: run a full detection at least every this many frames (1 = every frame).
    """

    def __init__(self, detector: FaceDetector | None = None, redetect_every: int = 10) -> None:
        if redetect_every < 1:
            raise ValueError(f"redetect_every must be >= 1, got {redetect_every}")
        if detector is None:
            from core.faces.registry import create_detector

            detector = create_detector("default")
        self.detector = detector
        self.redetect_every = redetect_every
        self._faces: list[Face] = []
        self._since_detect = 0
        self._lock = threading.Lock()
        self.full_detections = 0

    def reset(self) -> None:
        with self._lock:
            self._faces, self._since_detect = [], 0

    def update(self, frame_rgb: np.ndarray) -> list[Face]:
        """Faces in this frame (tracked from the last frame or freshly detected)."""
        with self._lock:
            refine = getattr(self.detector, "refine", None)
            due = self._since_detect + 1 >= self.redetect_every
            if refine is not None and self._faces and not due:
                faces = refine(frame_rgb, self._faces)
                if len(faces) == len(self._faces):
                    self._faces = faces
                    self._since_detect += 1
                    return faces
            self._faces = self.detector.detect(frame_rgb)
            self._since_detect = 0
            self.full_detections += 1
            return self._faces
