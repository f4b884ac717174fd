"""Helpers of the video page: where an uploaded clip lives on disk, one frame by index, the timeline table, and
the clip with its faces drawn on (``core.io.rewrite_video``)."""

from __future__ import annotations

import hashlib
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pandas as pd

from dashboard.drawing import BoxLabel, draw_faces

VIDEO_TYPES = ["mp4", "mov", "avi", "mkv", "webm", "m4v"]
_DIR = Path(tempfile.gettempdir()) / "ferlens-videos"


def spool(data: bytes, name: str) -> Path:
    """Write an uploaded clip to a temp file named by its content hash (OpenCV reads files, not bytes), so the
    same clip uploaded twice, or by two sessions, is written once."""
    _DIR.mkdir(parents=True, exist_ok=True)
    suffix = Path(name).suffix.lower() if Path(name).suffix.lower().lstrip(".") in VIDEO_TYPES else ".mp4"
    path = _DIR / f"{hashlib.sha256(data).hexdigest()[:24]}{suffix}"
    if not path.is_file():
        tmp = path.with_suffix(path.suffix + ".part")
        tmp.write_bytes(data)
        tmp.replace(path)
    return path


@contextmanager
def named_as(path: Path, name: str) -> Iterator[None]:
    """Loader errors about the spooled file ``path`` name the upload ``name`` instead: the temp path means nothing
    to the user (and tells them where the server keeps files)."""
    from core.io import ImageLoadError

    try:
        yield
    except ImageLoadError as exc:
        raise type(exc)(str(exc).replace(str(path), name), name) from exc


def read_frame(path: Path, index: int) -> np.ndarray:
    """Frame ``index`` (0-based, counting every frame) as RGB: earlier frames are grabbed, not decoded."""
    from core.io import VideoLoadError, iter_video_frames

    if index < 0:
        raise ValueError(f"frame index must be >= 0, got {index}")
    frames = iter_video_frames(path, every=max(1, index), max_frames=2 if index else 1)
    for i, rgb in frames:
        if i == index:
            return rgb
    raise VideoLoadError(f"{Path(path).name} has no frame {index}")


def track_summary(table: pd.DataFrame, class_names) -> pd.DataFrame:
    """Per track: frames seen, first/last time, the most frequent label and the mean probability per class."""
    g = table.groupby("track")
    out = pd.DataFrame(
        {
            "frames": g.size(),
            "from_s": g["time_s"].min(),
            "to_s": g["time_s"].max(),
            "main_label": g["label"].agg(lambda s: s.value_counts().idxmax()),
        }
    )
    out = out.join(g[list(class_names)].mean())
    return out.reset_index()


def summary_columns(class_names) -> dict:
    """``st.dataframe`` column formats of :func:`track_summary`: seconds to 0.1 s, probabilities in percent."""
    import streamlit as st

    seconds = st.column_config.NumberColumn(format="%.1f s")
    return {
        "from_s": seconds,
        "to_s": seconds,
        **{c: st.column_config.NumberColumn(format="percent") for c in class_names},
    }


SHORT_CLIP = 0.9
"""An annotated video with fewer than this share of the frames its source declares means the source is damaged
(OpenCV stops at the first undecodable part without an error). Containers without a frame index estimate the count
from duration and rate, hence the slack."""


def annotate(src: Path, table: pd.DataFrame, dst: Path, hold: int = 1, progress=None):
    """Write ``src`` to the MP4 ``dst`` with every face of ``table`` (``Detector.detect_video``) boxed and labelled.

    An analysed frame's boxes stay on the next ``hold - 1`` frames (``skip_frames + 1`` analysis steps), so
    they do not blink where frames were skipped, and vanish where no face was found. Tags read
    ``#track label score``. Returns ``core.io.VideoInfo`` of the written file.

    Raises:
        core.io.VideoLoadError: ``src`` cannot be read, no MP4 codec can be written here, or the frames stop
            well short of the count ``src`` declares (damaged midway: OpenCV just stops); ``dst`` is then removed.
    """
    from core.io import VideoLoadError, rewrite_video, video_info

    boxes = {
        int(frame): [
            BoxLabel((r.x, r.y, r.w, r.h), int(r.track), str(r.label), float(r.score)) for r in rows.itertuples()
        ]
        for frame, rows in (table.groupby("frame") if not table.empty else [])
    }

    def draw(index: int, rgb: np.ndarray) -> np.ndarray:
        shown = next((boxes[f] for f in range(index, index - max(1, hold), -1) if f in boxes), None)
        return draw_faces(rgb, shown) if shown else rgb

    declared = video_info(src).frame_count
    try:
        info = rewrite_video(src, dst, draw, progress=progress)
        if declared and info.frame_count < SHORT_CLIP * declared:
            raise VideoLoadError(
                f"{src}: the video is damaged: its frames stop at {info.frame_count} of the {declared} "
                "it declares, so no annotated video was made",
                str(src),
            )
    except Exception:
        Path(dst).unlink(missing_ok=True)
        raise
    return info
