"""The end-to-end API, in the manner of py-feat's ``Detector``: pixels in, a DataFrame with one row per face out.

Load (``core.io``) -> detect and align (``core.faces``) -> classify (:class:`~core.engine.InferenceEngine`),
the path every entry point takes; video and streams add tracking and smoothing (:mod:`core.tracking`).
"""

from __future__ import annotations

import collections
import functools
import hashlib
import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pandas as pd
import torch

from core.engine import InferenceEngine, check_tta, resolve_device
from core.faces import (
    AlignedFace,
    Face,
    FaceDetector,
    FaceTracker,
    PreprocessConfig,
    build_preprocess,
    create_detector,
    from_names,
    transform_points,
)
from core.faces.align import FRAMINGS, align_face, invert_affine
from core.io import iter_video_frames, load_image, video_info
from core.models.base import Steps, resize_uint8
from core.tracking import Tracker, TrackerConfig

log = logging.getLogger(__name__)

__all__ = [
    "BASE_COLUMNS",
    "DETECTOR_FRAMINGS",
    "LANDMARK_COLUMNS",
    "PROVENANCE_COLUMNS",
    "Detector",
    "FaceResult",
    "FrameResult",
    "FrameStream",
    "box_crop",
    "whole_image",
]

DETECTOR_FRAMINGS: tuple[str, ...] = (*FRAMINGS, "box")
"""How a detected face becomes the model's crop: aligned to a framing (:data:`FRAMINGS`) or its plain box."""

BASE_COLUMNS: tuple[str, ...] = ("input", "frame", "face", "x", "y", "w", "h", "label", "score")
"""The columns every result table starts with; ``score`` is the probability of ``label``."""

LANDMARK_COLUMNS: tuple[str, ...] = tuple(f"lm{i}_{a}" for i in range(5) for a in ("x", "y"))
"""Five landmarks (see ``core.faces.types.LANDMARK_NAMES`` for the order), image pixels."""

TIMING_COLUMNS: tuple[str, ...] = ("detect_ms", "align_ms", "classify_ms")
"""Per-frame timings (the same for every face of a frame)."""

VIDEO_COLUMNS: tuple[str, ...] = ("time_s", "track", "label_raw", "score_raw")
"""Extra columns of video tables: the frame's time, the track id, and the unsmoothed label and score."""

PROVENANCE_COLUMNS: tuple[str, ...] = ("model", "weights_sha256")
"""The last columns of every table: the model's name and the sha256 of its weights file (empty for random
init), so that an exported row can be traced to the model that made it."""


def whole_image(image_rgb: np.ndarray, face: Face, size: int) -> AlignedFace:
    """An already-cropped image as an :class:`AlignedFace`: the whole image resized to ``size`` x ``size``.

    The resize is the engine's (bilinear with antialiasing, like ``training.loader``), and the matrix maps
    pixel centres, so maps computed on the crop go back onto the image with ``warp_to_image`` as usual.
    """
    h, w = image_rgb.shape[:2]
    t = resize_uint8(torch.from_numpy(np.ascontiguousarray(image_rgb)).permute(2, 0, 1)[None], size)
    crop = np.ascontiguousarray(t[0].permute(1, 2, 0).numpy())
    sx, sy = size / w, size / h
    return _as_aligned(crop, np.array([[sx, 0.0, 0.5 * sx - 0.5], [0.0, sy, 0.5 * sy - 0.5]]), face)


def box_crop(image_rgb: np.ndarray, face: Face, size: int, expand: float = 1.0) -> AlignedFace:
    """The face's box made square (``expand`` x its longer side) and resized to ``size``, no rotation: the
    ablation of alignment. An ``AlignedFace``, so maps computed on the crop go back onto the photo as usual."""
    cx, cy = face.center
    side = max(face.box[2], face.box[3]) * expand
    k = size / side
    # pixel centres at integers: the crop's outer edge (u = -0.5, size - 0.5) lands on the box's edges
    x0, y0 = cx - side / 2, cy - side / 2
    matrix = np.array([[k, 0.0, -k * x0 - 0.5], [0.0, k, -k * y0 - 0.5]])
    crop = cv2.warpAffine(image_rgb, matrix, (size, size), flags=cv2.INTER_AREA if k < 1 else cv2.INTER_CUBIC)
    return _as_aligned(crop, matrix, face)


def _as_aligned(crop: np.ndarray, matrix: np.ndarray, face: Face) -> AlignedFace:
    """A crop made without the template fit: the landmarks land where ``matrix`` puts them."""
    landmarks = transform_points(face.landmarks, matrix).astype(np.float32)
    return AlignedFace(crop, matrix, invert_affine(matrix), landmarks, face, landmarks.copy())


@dataclass(frozen=True, eq=False)
class FaceResult:
    """One face of one frame, with everything needed to explain or draw it without recomputing.

    ``probs`` are smoothed over time when the face is tracked (``track``: its id in a video or stream, ``None``
    for still images); ``raw_probs`` are this frame's own (equal to ``probs`` for still images).
    """

    face: Face
    aligned: AlignedFace
    probs: np.ndarray
    class_names: tuple[str, ...]
    raw_probs: np.ndarray
    track: int | None = None

    @property
    def label(self) -> str:
        return self.class_names[int(np.argmax(self.probs))]

    @property
    def score(self) -> float:
        return float(np.max(self.probs))

    @property
    def raw_label(self) -> str:
        return self.class_names[int(np.argmax(self.raw_probs))]


@dataclass(frozen=True, eq=False)
class FrameResult:
    """The faces of one frame plus how long each step took (milliseconds)."""

    frame: int
    faces: list[FaceResult]
    detect_ms: float
    align_ms: float
    classify_ms: float


FrameHook = Callable[[str, np.ndarray, FrameResult], None]
"""``on_frame(input_name, rgb, frame_result)``: a callback of detect_image/detect_video per processed frame."""


def _resolve_preprocess(preprocess: Any, model_names: tuple[str, ...]) -> Steps | None:
    """None -> the model's own steps; a PreprocessConfig, a dict of its fields, names or a callable -> those."""
    if preprocess is None:
        return None
    if isinstance(preprocess, PreprocessConfig):
        return build_preprocess(preprocess)
    if isinstance(preprocess, dict):
        return build_preprocess(replace(PreprocessConfig.from_names(model_names), **preprocess))
    if isinstance(preprocess, (str, list, tuple)):
        return from_names(preprocess)
    if callable(preprocess):
        return preprocess
    raise TypeError(
        f"preprocess must be None, a PreprocessConfig, a dict of its fields, step names or a callable; "
        f"got {type(preprocess).__name__}"
    )


class Detector:
    """Face detection + alignment + expression classification -> pandas DataFrames.

    Args:
        model: a registered model name (or pass ``engine``).
        weights: ``"default"``, ``None`` or a weights path (see :class:`~core.engine.InferenceEngine`).
        face_detector: a registered detector name (``core.faces.list_detectors()``: ``"default"`` is BlazeFace +
            O-Net, ``"assume_cropped"`` treats each image as one face crop) or a detector object;
            ``face_detector_options`` are a named one's options (e.g. ``{"detect_size": 480}``).
        preprocess: ``None`` uses the model's own photometric steps; a ``PreprocessConfig``, a dict of its
            fields (overrides of the model's steps, e.g. ``{"clahe": False}``), a tuple of step names or a
            callable replaces them (the dashboard's ablation switches).
        device, backend, threads: passed to the engine (``backend="auto"``: onnxruntime on the CPU, torch on a
            GPU). ``threads="auto"`` means one CPU thread on the CPU, because many small ops per frame stall at
            thread barriers on a busy machine; ``None`` leaves torch as it is.
        engine: share an existing engine (the app keeps one per model) instead of building one.
        redetect_every: in video and streams, run a full face detection at least every this many processed
            frames and follow faces with the detector's cheap refine step in between (1 = detect every frame).
        tracker: :class:`~core.tracking.TrackerConfig` for identities and temporal smoothing in videos/streams.
        framing: ``"fer2013"`` (default: like the faces every shipped model trained on), ``"template"``
            (ArcFace template, expand 1.3) or ``"box"`` (the box made square, no alignment: :func:`box_crop`).
            Ignored with ``assume_cropped``.
        tta: one of :data:`~core.engine.TTA_MODES`: ``"hflip"`` (default) averages each face with its mirror
            image in the same batch; ``None`` classifies each face once.
    """

    def __init__(
        self,
        model: str = "default",
        weights: str | Path | None = "default",
        face_detector: str | FaceDetector = "default",
        preprocess: Any = None,
        device: str = "auto",
        backend: str = "auto",
        threads: int | str | None = "auto",
        engine: InferenceEngine | None = None,
        redetect_every: int = 5,
        tracker: TrackerConfig | None = None,
        face_detector_options: dict | None = None,
        framing: str = "fer2013",
        tta: str | None = "hflip",
    ) -> None:
        self.tta = check_tta(tta)
        if framing not in DETECTOR_FRAMINGS:
            raise ValueError(f"unknown framing {framing!r}; choose one of {list(DETECTOR_FRAMINGS)}")
        if redetect_every < 1:
            raise ValueError(f"redetect_every must be >= 1, got {redetect_every}")
        if threads == "auto":
            threads = 1 if resolve_device(device).type == "cpu" else None
        elif isinstance(threads, str):
            raise ValueError(f"threads must be 'auto', None or a positive int, got {threads!r}")
        self.engine = engine or InferenceEngine(model, weights, device=device, backend=backend, threads=threads)
        if isinstance(face_detector, str):
            self.face_detector = create_detector(face_detector, **(face_detector_options or {}))
        elif hasattr(face_detector, "detect"):
            self.face_detector = face_detector
        else:
            raise TypeError(f"face_detector must be a name or have .detect(rgb), got {type(face_detector).__name__}")
        self.steps = _resolve_preprocess(preprocess, tuple(self.engine.spec.preprocess))
        self.framing = framing
        self.assume_cropped = getattr(self.face_detector, "name", "") == "assume_cropped"
        self.redetect_every = redetect_every
        self.tracker_config = tracker or TrackerConfig()

    def __repr__(self) -> str:
        return (
            f"Detector(model={self.engine.spec.name!r}, face_detector={getattr(self.face_detector, 'name', '?')!r}, "
            f"tta={self.tta!r}, engine={self.engine!r})"
        )

    @property
    def class_names(self) -> tuple[str, ...]:
        return self.engine.class_names

    @property
    def columns(self) -> list[str]:
        """Columns of an image table, in order (video tables add :data:`VIDEO_COLUMNS`)."""
        return [*BASE_COLUMNS, *self.class_names, "face_score", *LANDMARK_COLUMNS, *TIMING_COLUMNS, *PROVENANCE_COLUMNS]

    @property
    def provenance(self) -> dict[str, str]:
        """``{"model": name, "weights_sha256": hex digest or ""}`` (hashed once per weights file and mtime)."""
        path = self.engine.weights_path
        return {"model": self.engine.spec.name, "weights_sha256": _sha256(str(path)) if path else ""}

    # -- one frame
    def analyze_faces(self, image: Any, faces: Sequence[Face] | None = None) -> list[FaceResult]:
        """Detect (unless ``faces`` are given), align and classify every face of one image."""
        return self._analyze(load_image(image), faces=faces).faces

    def _analyze(
        self,
        rgb: np.ndarray,
        faces: Sequence[Face] | None = None,
        find: Callable[[np.ndarray], list[Face]] | None = None,
        frame: int = 0,
    ) -> FrameResult:
        t0 = time.perf_counter()
        if faces is None:
            faces = (find or self.face_detector.detect)(rgb)
        t1 = time.perf_counter()
        size = self.engine.spec.input_size
        if self.assume_cropped:
            aligned = [whole_image(rgb, f, size) for f in faces]
        elif self.framing == "box":
            aligned = [box_crop(rgb, f, size) for f in faces]
        else:
            aligned = [align_face(rgb, f, output_size=size, framing=self.framing) for f in faces]
        # an assumed crop is classified whole, exactly as training.loader feeds dataset crops
        inputs = [rgb] * len(faces) if self.assume_cropped else [a.image for a in aligned]
        t2 = time.perf_counter()
        probs = self.engine.predict(inputs, self.steps, tta=self.tta)
        t3 = time.perf_counter()
        names = self.class_names
        results = [FaceResult(f, a, p, names, p) for f, a, p in zip(faces, aligned, probs, strict=True)]
        return FrameResult(frame, results, (t1 - t0) * 1e3, (t2 - t1) * 1e3, (t3 - t2) * 1e3)

    # -- tables
    def detect_image(self, inputs: Any, on_frame: FrameHook | None = None) -> pd.DataFrame:
        """One row per face for one input or a list of inputs (paths, bytes, PIL images, numpy RGB arrays).

        An image without faces contributes no row; a bad input raises ``core.io.ImageLoadError``.
        ``on_frame(name, rgb, frame_result)`` sees every image, to explain or draw without a second pass.
        """
        if isinstance(inputs, (str, Path, bytes, np.ndarray)) or not isinstance(inputs, Iterable):
            inputs = [inputs]
        rows: list[dict] = []
        for i, src in enumerate(inputs):
            name = str(src) if isinstance(src, (str, Path)) else f"<{type(src).__name__} {i}>"
            rgb = load_image(src, name=name if isinstance(src, (str, Path)) else None)
            result = self._analyze(rgb)
            if on_frame is not None:
                on_frame(name, rgb, result)
            rows.extend(self._rows(name, result))
        return self._frame(rows, video=False)

    def detect_video(
        self,
        path: str | Path,
        skip_frames: int = 0,
        progress: Callable[[int, int], None] | None = None,
        max_frames: int | None = None,
        on_frame: FrameHook | None = None,
    ) -> pd.DataFrame:
        """One row per face per processed frame, with track ids and smoothed probabilities.

        ``skip_frames`` frames are skipped after each processed one (2: frames 0, 3, 6, ...; ``frame`` still counts
        every frame of the file); ``max_frames`` stops after that many processed frames;
        ``progress(frames_done, frames_expected)`` is called after each processed frame and ``on_frame`` as in
        :meth:`detect_image`. An unreadable file raises ``core.io.VideoLoadError``.
        """
        if skip_frames < 0:
            raise ValueError(f"skip_frames must be >= 0, got {skip_frames}")
        info = video_info(path)
        every = skip_frames + 1
        expected = -(-info.frame_count // every) if info.frame_count else 0
        if max_frames is not None:
            expected = min(expected, max_frames) if expected else max_frames
        stream = self.stream(redetect_every=max(1, self.redetect_every // every))
        rows: list[dict] = []
        done = 0
        for index, rgb in _prefetch(iter_video_frames(path, every=every, max_frames=max_frames)):
            result = stream.process(rgb, frame=index)
            if on_frame is not None:
                on_frame(str(path), rgb, result)
            t = index / info.fps if info.fps > 0 else float("nan")
            rows.extend(self._rows(str(path), result, time_s=t))
            done += 1
            if progress is not None:
                progress(done, max(expected, done))
        return self._frame(rows, video=True)

    def stream(self, redetect_every: int | None = None) -> FrameStream:
        """A per-stream pipeline (face tracking + identities + smoothing), e.g. for a webcam."""
        return FrameStream(self, redetect_every or self.redetect_every)

    def _rows(self, name: str, result: FrameResult, time_s: float | None = None) -> list[dict]:
        rows = []
        for k, r in enumerate(result.faces):
            row = dict(zip(BASE_COLUMNS, (name, result.frame, k, *r.face.box, r.label, r.score), strict=True))
            row.update({c: float(p) for c, p in zip(self.class_names, r.probs, strict=True)})
            row["face_score"] = r.face.score
            row.update(zip(LANDMARK_COLUMNS, (float(v) for v in r.face.landmarks.reshape(-1)), strict=True))
            row.update(detect_ms=result.detect_ms, align_ms=result.align_ms, classify_ms=result.classify_ms)
            if time_s is not None:
                row.update(time_s=time_s, track=r.track, label_raw=r.raw_label, score_raw=float(np.max(r.raw_probs)))
            rows.append(row)
        return rows

    def _frame(self, rows: list[dict], video: bool) -> pd.DataFrame:
        cols = self.columns + (list(VIDEO_COLUMNS) if video else [])
        df = pd.DataFrame(rows, columns=cols)
        if not df.empty:
            df = df.assign(**self.provenance)
        return df.astype(dict.fromkeys(["frame", "face", "track"] if video else ["frame", "face"], "int64"))


@functools.lru_cache(maxsize=16)
def _sha256_cached(path: str, mtime_ns: int, size: int) -> str:
    with open(path, "rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


def _sha256(path: str) -> str:
    st = Path(path).stat()
    return _sha256_cached(path, st.st_mtime_ns, st.st_size)


class FrameStream:
    """Per-stream state for video/webcam: which faces are where (``FaceTracker``) and who is who (``Tracker``).

    ``process(rgb)`` is serialised by a lock; use one stream per camera or file. The engine stays shared.
    """

    def __init__(self, detector: Detector, redetect_every: int) -> None:
        self.detector = detector
        self.faces = FaceTracker(detector.face_detector, redetect_every=redetect_every)
        self.tracker = Tracker(detector.tracker_config)
        self._lock = threading.Lock()
        self._frame = -1

    def process(self, image_rgb: np.ndarray, frame: int | None = None) -> FrameResult:
        """Find, align, classify and track the faces of the next frame (an ``(H, W, 3)`` uint8 RGB array)."""
        with self._lock:
            frame = self._frame + 1 if frame is None else int(frame)
            result = self.detector._analyze(image_rgb, find=self.faces.update, frame=frame)
            probs = np.stack([r.raw_probs for r in result.faces]) if result.faces else None
            tracks = self.tracker.update([r.face for r in result.faces], probs, frame=frame)
            faces = [
                replace(r, probs=t.probs.astype(np.float32), track=t.id)
                for r, t in zip(result.faces, tracks, strict=True)
            ]
            self._frame = frame
            return replace(result, faces=faces)


def _prefetch(frames: Iterator[tuple[int, np.ndarray]], depth: int = 4) -> Iterator[tuple[int, np.ndarray]]:
    """Decode up to ``depth`` frames ahead in a background thread (OpenCV releases the GIL); its errors re-raise
    here, and closing this generator early stops the decoding and closes ``frames``, so no thread leaks. For files:
    closing waits for the frame being decoded, which a blocking source (a camera) could hold up."""
    end = object()
    pool = ThreadPoolExecutor(1, thread_name_prefix="ferlens-video-decode")
    try:
        ahead = collections.deque(pool.submit(next, frames, end) for _ in range(depth))
        while (item := ahead.popleft().result()) is not end:
            ahead.append(pool.submit(next, frames, end))
            yield item
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
        if hasattr(frames, "close"):
            frames.close()
