"""Per-face tracks across video or webcam frames, with temporal smoothing of the class probabilities.

Hungarian matching on box IoU (centre distance as a fallback) keeps crossing faces' ids; the smoothing EMA
decays with the frames since a track was seen, so skipped frames do not make it stickier.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np

from core.faces.boxes import iou_xywh
from core.faces.types import Face

__all__ = ["TrackerConfig", "Track", "Tracker"]

Box = tuple[float, float, float, float]


@dataclass(frozen=True)
class TrackerConfig:
    """How tracks are matched, kept and smoothed.

    Attributes:
        iou_threshold: a face continues a track when their boxes overlap at least this much (IoU).
        max_center_distance: fallback when the overlap is smaller: the centres are closer than this many
            track-box sizes (``sqrt(w * h)``). 0 disables the fallback.
        max_missed: frames a track survives without a detection before it is dropped.
        smoothing: EMA weight ``a`` of the past per frame, in [0, 1); 0 turns smoothing off.
        box_smoothing: the same for the box (``Track.smooth_box``, for steadier overlays); 0 = off.
    """

    iou_threshold: float = 0.3
    max_center_distance: float = 0.6
    max_missed: int = 10
    smoothing: float = 0.6
    box_smoothing: float = 0.5

    def __post_init__(self) -> None:
        if not 0.0 < self.iou_threshold <= 1.0:
            raise ValueError(f"iou_threshold must be in (0, 1], got {self.iou_threshold}")
        if self.max_center_distance < 0:
            raise ValueError(f"max_center_distance must be >= 0, got {self.max_center_distance}")
        if self.max_missed < 0:
            raise ValueError(f"max_missed must be >= 0, got {self.max_missed}")
        for name in ("smoothing", "box_smoothing"):
            v = getattr(self, name)
            if not 0.0 <= v < 1.0:
                raise ValueError(f"{name} must be in [0, 1), got {v}")


@dataclass(frozen=True, eq=False)
class Track:
    """A snapshot of one track after an update (immutable: the tracker's own state is not exposed).

    ``id`` counts from 0 in order of first appearance; ``box`` is the latest detected ``(x, y, w, h)`` and
    ``smooth_box`` its exponential smoothing; ``probs`` are smoothed (``None`` when none were given) and
    ``raw_probs`` this frame's (``None`` when the track was not seen); ``frame`` is the last update that saw it,
    ``hits`` the frames it was seen in, ``missed`` the updates since; ``face`` the latest ``Face``, if given one.
    """

    id: int
    box: Box
    smooth_box: Box
    probs: np.ndarray | None
    raw_probs: np.ndarray | None
    frame: int
    hits: int
    missed: int
    face: Face | None = None


def _as_box(item: Face | Sequence[float]) -> Box:
    box = item.box if isinstance(item, Face) else tuple(float(v) for v in item)
    if len(box) != 4:
        raise ValueError(f"a box is (x, y, w, h), got {box}")
    return box  # type: ignore[return-value]


class Tracker:
    """IoU/centroid tracker with exponential smoothing of probabilities and boxes. See the module docstring."""

    def __init__(self, config: TrackerConfig | None = None) -> None:
        self.config = config or TrackerConfig()
        self._lock = threading.Lock()
        self._tracks: list[Track] = []  # live tracks, replaced (never mutated) on each update
        self._next_id = 0
        self._frame = -1

    def update(
        self,
        faces: Sequence[Face | Sequence[float]],
        probs: np.ndarray | None = None,
        frame: int | None = None,
    ) -> list[Track]:
        """Match this frame's faces (``Face`` objects or ``(x, y, w, h)`` boxes, with their ``(len(faces), C)``
        ``probs`` or ``None``) to tracks, smooth, and return one :class:`Track` per face, in input order.

        ``frame`` defaults to one more than the last update's; gaps (skipped frames) weaken the smoothing.
        """
        boxes = np.array([_as_box(f) for f in faces], np.float64).reshape(-1, 4)
        if probs is not None:
            probs = np.asarray(probs, np.float64)
            if probs.ndim != 2 or len(probs) != len(boxes):
                raise ValueError(f"probs must be ({len(boxes)}, C), got shape {probs.shape}")
        with self._lock:
            frame = self._frame + 1 if frame is None else int(frame)
            if frame <= self._frame:
                raise ValueError(f"frame numbers must increase: got {frame} after {self._frame}")
            assign = self._match(boxes)
            out: list[Track] = []
            matched: set[int] = set()
            for i, box in enumerate(boxes):
                p = None if probs is None else probs[i]
                face = faces[i] if isinstance(faces[i], Face) else None
                j = assign.get(i)
                if j is None:
                    p = None if p is None else p.copy()
                    t = Track(self._next_id, tuple(box), tuple(box), p, p, frame, 1, 0, face)
                    self._next_id += 1
                    self._tracks.append(t)
                else:
                    t = self._tracks[j] = self._advance(self._tracks[j], tuple(box), p, frame, face)
                matched.add(t.id)
                out.append(t)
            aged = [t if t.id in matched else replace(t, missed=t.missed + 1, raw_probs=None) for t in self._tracks]
            self._tracks = [t for t in aged if t.missed <= self.config.max_missed]
            self._frame = frame
            return out

    def _advance(self, t: Track, box: Box, p: np.ndarray | None, frame: int, face: Face | None) -> Track:
        gap = max(1, frame - t.frame)
        probs, raw = t.probs, t.raw_probs
        if p is not None:
            a = self.config.smoothing**gap
            probs = p.copy() if probs is None or len(probs) != len(p) else a * probs + (1 - a) * p
            raw = p.copy()
        b = self.config.box_smoothing**gap
        smooth_box = tuple(b * np.asarray(t.smooth_box) + (1 - b) * np.asarray(box))
        return Track(t.id, box, smooth_box, probs, raw, frame, t.hits + 1, 0, face)

    def _match(self, boxes: np.ndarray) -> dict[int, int]:
        """Optimal assignment {face index: track index} by IoU, with a centre-distance fallback."""
        if not len(boxes) or not self._tracks:
            return {}
        from scipy.optimize import linear_sum_assignment

        tboxes = np.array([t.box for t in self._tracks], np.float64)
        iou = iou_xywh(boxes, tboxes)
        affinity = np.where(iou >= self.config.iou_threshold, 1.0 + iou, 0.0)
        if self.config.max_center_distance > 0:
            centers = boxes[:, :2] + boxes[:, 2:] / 2
            tcenters = tboxes[:, :2] + tboxes[:, 2:] / 2
            dist = np.linalg.norm(centers[:, None] - tcenters[None], axis=2)
            size = np.sqrt(tboxes[:, 2] * tboxes[:, 3])[None]
            rel = dist / np.maximum(size, 1e-6)
            near = (affinity == 0) & (rel < self.config.max_center_distance)
            # always ranked below any IoU match (affinity in (0, 1) vs >= 1 + threshold)
            affinity = np.where(near, 1.0 - rel / self.config.max_center_distance * 0.999, affinity)
        rows, cols = linear_sum_assignment(-affinity)
        return {int(r): int(c) for r, c in zip(rows, cols, strict=True) if affinity[r, c] > 0}
