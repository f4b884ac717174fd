"""The bad-input corpus through the Python API: ``core.io``, ``Detector`` and ``InferenceEngine``.

Each case must end in what its ``expect`` says: a typed ``ImageLoadError`` (``VideoLoadError`` for videos) with a
plain, one-line message that names the input, or a result. Failures are collected over the whole corpus, so one
run reports every kind that misbehaves, not just the first.
"""

from __future__ import annotations

import hashlib
import io
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from core.detector import Detector
from core.io import ImageLoadError, VideoLoadError, _composite_on_white, iter_video_frames, load_image
from tests.harness.corpus import EXPECTS, MEDIA, Case, PeakRss, build_corpus, peak_rss_supported

BOMBS = ("png_bomb", "huge_30000", "png_50mp", "png_100mp", "gif_bomb_screen", "gif_bomb_frame")
"""Cases whose decoded RGB pixels would take at least 150 MB (50 MP and up)."""


@pytest.fixture(scope="module")
def detector():
    """One CPU detector for the module (torch backend: no ONNX export needed); torch's thread count restored."""
    n = torch.get_num_threads()
    yield Detector(backend="torch")
    torch.set_num_threads(n)


def _digest(cases: list[Case]) -> dict[str, str]:
    out = {}
    for c in cases:
        data = c.path.read_bytes() if c.path is not None else c.array.tobytes()
        out[c.kind] = hashlib.sha256(data).hexdigest()
    return out


def plain_problem(case: Case, exc: BaseException) -> str | None:
    """Why ``exc`` is not a plain answer to ``case`` (None when it is): typed, one line, names the input."""
    family = VideoLoadError if case.media == "video" else ImageLoadError
    if not isinstance(exc, ImageLoadError):
        return f"untyped {type(exc).__name__}: {exc}"
    if case.media == "video" and not isinstance(exc, family):
        return f"{type(exc).__name__} for a video (expected VideoLoadError): {exc}"
    msg = str(exc)
    if not msg.strip() or "\n" in msg or "Traceback" in msg or " object at 0x" in msg:
        return f"message not plain: {msg!r}"
    if case.path is not None and case.path.name not in msg:
        return f"message does not name the file: {msg!r}"
    return None


def test_corpus_is_large_varied_and_deterministic(corpus: list[Case], samples_dir: Path, tmp_path: Path):
    kinds = [c.kind for c in corpus]
    assert len(kinds) == len(set(kinds)) >= 28
    assert {c.media for c in corpus} == set(MEDIA) and {c.expect for c in corpus} == set(EXPECTS)
    assert all(c.note and "\n" not in c.note for c in corpus)
    assert _digest(build_corpus(tmp_path, samples_dir)) == _digest(corpus)


def test_core_io_answers_every_case(corpus: list[Case]):
    """``load_image`` (path, bytes and array) and ``iter_video_frames``: typed error or an RGB array."""
    problems: list[str] = []
    for case in corpus:
        if case.media == "video":
            attempts = [lambda c=case: [f for _, f in iter_video_frames(c.path, max_frames=3)]]
        elif case.media == "array":
            attempts = [lambda c=case: [load_image(c.array)]]
        else:
            data = case.path.read_bytes()
            attempts = [lambda c=case: [load_image(c.path)], lambda d=data, c=case: [load_image(d, name=c.path.name)]]
        for attempt in attempts:
            try:
                frames = attempt()
            except Exception as exc:
                why = plain_problem(case, exc)
                if why or case.expect != "error":
                    problems.append(f"{case.kind}: {why or f'unexpected {type(exc).__name__}: {exc}'}")
                continue
            if case.expect == "error":
                problems.append(f"{case.kind}: loaded, but should have been refused")
            elif not frames or any(f.ndim != 3 or f.shape[2] != 3 or f.dtype != np.uint8 for f in frames):
                problems.append(f"{case.kind}: not (H, W, 3) uint8: {[(f.shape, f.dtype) for f in frames]}")
    assert not problems, "\n".join(problems)
    heic = next(c for c in corpus if c.kind == "heic_as_png")
    with pytest.raises(ImageLoadError, match=r"iphone\.png: this is a HEIC/HEIF photo .* convert it to JPEG"):
        load_image(heic.path)


def test_detector_answers_every_case(corpus: list[Case], detector: Detector):
    """``Detector.detect_image`` / ``detect_video``: typed error, or a table with the expected face count."""
    problems: list[str] = []
    for case in corpus:
        src = case.array if case.media == "array" else case.path
        try:
            df = detector.detect_video(src) if case.media == "video" else detector.detect_image(src)
        except Exception as exc:
            why = plain_problem(case, exc)
            if why or case.expect != "error":
                problems.append(f"{case.kind}: {why or f'unexpected {type(exc).__name__}: {exc}'}")
            continue
        if not isinstance(df, pd.DataFrame) or list(df.columns[: len(detector.columns)]) != detector.columns:
            problems.append(f"{case.kind}: not a result table")
        elif case.expect == "error":
            problems.append(f"{case.kind}: gave {len(df)} rows, but should have been refused")
        elif case.expect == "faces" and df.empty:
            problems.append(f"{case.kind}: no face found")
        elif case.expect == "no_face" and not df.empty:
            problems.append(f"{case.kind}: {len(df)} faces found where there is none")
        elif not df.empty and not np.allclose(df[list(detector.class_names)].sum(axis=1), 1.0, atol=1e-4):
            problems.append(f"{case.kind}: probabilities do not sum to 1")
    assert not problems, "\n".join(problems)


def test_engine_refuses_bad_arrays_plainly(corpus: list[Case], detector: Detector):
    """Arrays straight into ``InferenceEngine.predict``: a plain TypeError/ValueError, or probabilities.

    The engine takes uint8 face crops only; whatever else arrives (NaN floats, 5 channels, objects) must be
    refused by a check that says what it expected, not fail deep inside torch.
    """
    engine = detector.engine
    problems: list[str] = []
    for case in (c for c in corpus if c.media == "array"):
        try:
            probs = engine.predict(case.array)
        except (TypeError, ValueError) as exc:
            msg = str(exc)
            if not msg.strip() or "\n" in msg or "Traceback" in msg or "expected" not in msg:
                problems.append(f"{case.kind}: message not plain: {msg!r}")
            continue
        except Exception as exc:
            problems.append(f"{case.kind}: {type(exc).__name__} from inside the engine: {exc}")
            continue
        # only a uint8 crop (H, W[, 3]) or a batch of them may be classified, one row per crop
        crops = 1 if case.array.ndim == 2 or case.array.shape[-1] == 3 else len(case.array)
        if case.array.dtype != np.uint8 or case.array.shape[-1] not in (1, 3) or probs.shape[0] != crops:
            problems.append(f"{case.kind}: a {case.array.dtype} {case.array.shape} array gave {probs.shape} probs")
    assert not problems, "\n".join(problems)
    # RGBA is a valid image for load_image but not a crop: the engine says what to do with it
    rgba = next(c for c in corpus if c.kind == "array_face_rgba").array
    with pytest.raises(ValueError, match=r"got an array of shape \(562, 572, 4\) \(drop or composite the alpha"):
        engine.predict(rgba)


def test_exif_rotated_face_is_found_after_transpose(corpus: list[Case], detector: Detector, samples_dir: Path):
    case = next(c for c in corpus if c.kind == "exif_rotated")
    stored = Image.open(case.path)
    upright = load_image(samples_dir / "single_face.jpg")
    assert stored.size == (upright.shape[0], upright.shape[1])  # the pixels on disk lie on their side
    rgb = load_image(case.path)
    assert rgb.shape == upright.shape
    assert np.abs(rgb.astype(int) - upright.astype(int)).mean() < 6  # JPEG re-encoding, not a different picture
    df = detector.detect_image(case.path)
    ref = detector.detect_image(samples_dir / "single_face.jpg")
    assert len(df) == 1 and np.allclose(df[["x", "y", "w", "h"]], ref[["x", "y", "w", "h"]], atol=12)


@pytest.mark.skipif(not peak_rss_supported(), reason="needs Linux /proc/self/clear_refs to reset the peak RSS")
def test_bombs_are_refused_before_their_pixels_are_allocated(corpus: list[Case], monkeypatch: pytest.MonkeyPatch):
    """Every bomb is refused while the process's peak RSS grows by under 32 MiB (decoding needs >= 150 MB)."""
    probe, _, _ = PeakRss.measure(lambda: np.ones(96 * 2**20, np.uint8).sum())
    assert probe.growth >= 90 * 2**20  # the meter sees a 96 MiB allocation, so a decode could not hide
    for case in (c for c in corpus if c.kind in BOMBS):
        with monkeypatch.context() as m:  # read the claimed size past Pillow's own bomb check
            m.setattr(Image, "MAX_IMAGE_PIXELS", None)
            with Image.open(case.path) as im:
                w, h = im.size
        assert w * h * 3 >= 150e6, case.kind
        peak, _, exc = PeakRss.measure(lambda c=case: load_image(c.path))
        assert isinstance(exc, ImageLoadError) and "limit" in str(exc), (case.kind, exc)
        assert peak.growth < 32 * 2**20, f"{case.kind}: peak RSS grew {peak.growth / 2**20:.0f} MiB"


def test_integer_compositing_and_16_bit_rounding_equal_the_real_arithmetic():
    """The loader's uint16/uint32 arithmetic (chosen for memory) rounds exactly like real numbers, for every input."""
    value = np.repeat(np.arange(256, dtype=np.uint8), 256).reshape(256, 256)
    alpha = np.tile(np.arange(256, dtype=np.uint8), 256).reshape(256, 256)
    exact = np.floor(value * (alpha / 255.0) + 255.0 * (1 - alpha / 255.0) + 0.5)
    got = _composite_on_white(np.dstack([value] * 3), alpha)
    np.testing.assert_array_equal(got, np.dstack([exact] * 3).astype(np.uint8))
    deep = np.arange(65536, dtype=np.uint16).reshape(256, 256)
    rgb = load_image(deep)  # arrays and 16-bit PNGs agree
    png = io.BytesIO()
    Image.fromarray(deep).save(png, "PNG")
    np.testing.assert_array_equal(load_image(png.getvalue()), rgb)
    np.testing.assert_array_equal(rgb[..., 0], np.floor(deep / 257.0 + 0.5).astype(np.uint8))
