"""Detect every k-th frame, track in between: what makes the face step cheap enough for live video.

A full MTCNN pass scans an image pyramid; a tracking step only re-runs MTCNN's output net (O-Net) on each
previous box, grown a little, which re-scores the face, regresses its new box and gives fresh landmarks for
about a millisecond per face. A face that left the frame fails the O-Net score and is dropped; a new face is
picked up at the next full detection (every ``redetect_every`` frames, or as soon as no face is tracked).
Detectors without a ``refine`` method (RetinaFace, assume_cropped) simply detect on every frame.
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
