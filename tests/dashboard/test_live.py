"""The webcam pipeline: newest frame wins, nothing queues, results leave through one slot; ICE config; the page."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np
import pytest

from dashboard.live import IceConfigError, LiveProcessor, ice_servers, parse_ice_servers


class _Gate:
    """A stand-in for FrameStream.process that blocks until released and records which frames it got."""

    def __init__(self, real=None) -> None:
        self.seen: list[int] = []
        self.entered = threading.Event()
        self.release = threading.Event()
        self.real = real

    def __call__(self, rgb: np.ndarray, index: int):
        self.seen.append(index)
        self.entered.set()
        assert self.release.wait(30), "test never released the worker"
        if self.real is not None:
            return self.real(rgb, index)
        return type("Frame", (), {"faces": []})()


def _wait(cond, timeout: float = 30.0) -> None:
    end = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < end, "condition not reached"
        time.sleep(0.01)


def test_newest_frame_wins_and_nothing_queues() -> None:
    gate = _Gate()
    proc = LiveProcessor(gate)
    frames = [np.full((4, 4, 3), i, np.uint8) for i in range(12)]
    out = proc.on_frame(frames[0])
    assert out is frames[0]  # no result yet: the frame goes back untouched, without waiting for the model
    assert gate.entered.wait(30)  # the worker holds frame 0 inside the (blocked) model
    for f in frames[1:]:
        assert proc.on_frame(f) is f  # the callback returns while the model is still busy
    stats = proc.stats()
    assert (stats.received, stats.processed, stats.dropped) == (12, 0, 10)  # frames 1..10 overwritten, 11 waits
    gate.release.set()
    _wait(lambda: proc.stats().processed == 2)
    assert gate.seen == [0, 11]  # after frame 0 the worker took the newest frame, not the next one
    assert proc.results.qsize() == 1 and proc.results.get_nowait().frame == 11
    proc.stop()


def test_real_frames_get_boxes_and_labels(samples_dir: Path) -> None:
    from core.detector import Detector
    from core.io import iter_video_frames

    stream = Detector(weights=None, backend="torch").stream()
    gate = _Gate(real=lambda rgb, i: stream.process(rgb, frame=i))
    gate.release.set()
    proc = LiveProcessor(gate)
    frames = [rgb for _, rgb in iter_video_frames(samples_dir / "single_face.mp4", max_frames=3)]
    proc.on_frame(frames[0])
    _wait(lambda: proc.latest() is not None)
    result = proc.latest()
    assert len(result.faces) == 1 and result.summary()[0].startswith("face 1 (track 0): ")
    drawn = proc.on_frame(frames[1])
    assert drawn.shape == frames[1].shape and (drawn != frames[1]).any()  # the box and tag are drawn
    assert result.stats.latency_ms is not None and result.stats.latency_ms > 0
    proc.stop()


def test_worker_errors_reach_the_page() -> None:
    def boom(rgb, index):
        raise RuntimeError("model exploded")

    proc = LiveProcessor(boom)
    proc.on_frame(np.zeros((4, 4, 3), np.uint8))
    _wait(lambda: proc.error is not None)
    assert proc.error == "RuntimeError: model exploded"
    proc.stop()


def test_ice_servers_from_env_secrets_or_none(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FERLENS_ICE_SERVERS", raising=False)
    assert ice_servers(None)[0] == []
    secrets = {"ice_servers": [{"urls": ["turn:turn.example.org:3478"], "username": "u", "credential": "p"}]}
    servers, source = ice_servers(secrets)
    assert servers == secrets["ice_servers"] and source == ".streamlit/secrets.toml"
    monkeypatch.setenv("FERLENS_ICE_SERVERS", '[{"urls": "stun:stun.example.org:3478"}]')
    assert ice_servers(secrets) == ([{"urls": ["stun:stun.example.org:3478"]}], "$FERLENS_ICE_SERVERS")


@pytest.mark.parametrize(
    "bad", ["not json", '{"urls": "turn:x"}', '[{"url": "turn:x"}]', '[{"urls": "http://x"}]', "[{}]"]
)
def test_bad_ice_servers_are_refused_with_a_reason(bad: str) -> None:
    with pytest.raises(IceConfigError):
        parse_ice_servers(bad)


def test_live_page_falls_back_to_snapshots_and_reports_bad_ice_config(
    samples_dir: Path, dashboard_env, open_page, monkeypatch
) -> None:
    """AppTest has no server session, so streamlit-webrtc cannot start in it: the page must say so plainly and
    offer the snapshot fallback (the streaming path itself is tested in headless Chromium, test_browser.py)."""
    at = open_page("live")
    assert not at.exception
    assert [e.value.split(" failed")[0] for e in at.error] == ["Starting the WebRTC stream"]
    assert any(c.value.startswith("ICE servers: none") for c in at.caption)
    assert at.get("camera_input")  # the snapshot fallback is there and works
    photo = (samples_dir / "single_face.jpg").read_bytes()
    at.camera_input(key="live_snapshot").set_value(("shot.jpg", photo, "image/jpeg")).run()
    assert [s.value for s in at.subheader] == ["snapshot.jpg: 1 face"]
    monkeypatch.setenv("FERLENS_ICE_SERVERS", "[{oops")
    at = open_page("live")
    assert not at.exception
    assert [e.value.split(":")[0] for e in at.error] == ["Reading the ICE/TURN configuration failed"]


def test_the_secrets_example_is_a_valid_ice_config(monkeypatch: pytest.MonkeyPatch) -> None:
    import tomllib

    monkeypatch.delenv("FERLENS_ICE_SERVERS", raising=False)
    example = Path(__file__).resolve().parents[2] / ".streamlit" / "secrets.toml.example"
    servers, source = ice_servers(tomllib.loads(example.read_text()))
    assert source == ".streamlit/secrets.toml"
    assert [s["urls"][0].split(":")[0] for s in servers] == ["stun", "turn"] and servers[1]["username"] == "ferlens"


def test_cam_overlay_is_blended_only_over_the_face(samples_dir: Path) -> None:
    from core.detector import Detector
    from core.io import iter_video_frames

    stream = Detector(weights=None, backend="torch").stream()
    maps = []

    def explain(rgb, face):
        maps.append(face)
        return np.full((48, 48), 0.9, np.float32)

    proc = LiveProcessor(lambda rgb, i: stream.process(rgb, frame=i), explain, cam_every_s=0.001)
    (frame,) = [rgb for _, rgb in iter_video_frames(samples_dir / "single_face.mp4", max_frames=1)]
    proc.on_frame(frame)
    _wait(lambda: proc.latest() is not None)
    result = proc.latest()
    assert maps and result.layer is not None
    blended = result.layer.blend(frame)
    changed = np.argwhere((blended != frame).any(axis=2))
    x, y, w, h = (round(v) for v in result.faces[result.cam_face].face.box)
    assert changed.size and changed[:, 0].min() >= result.layer.y0 and changed[:, 0].max() < result.layer.y1
    # the aligned crop extends past the box (framing), but the overlay is clipped to the face box
    assert changed[:, 0].min() >= y and changed[:, 0].max() < y + h
    assert changed[:, 1].min() >= x and changed[:, 1].max() < x + w
    assert result.layer.y0 >= y and result.layer.x0 >= x and result.layer.y1 <= y + h and result.layer.x1 <= x + w
    proc.stop()


def _video_frame(rgb: np.ndarray, pts: int = 7):
    """A decoded frame as aiortc hands it over: I420, with a timestamp in 1/90000 s."""
    from fractions import Fraction

    import av

    frame = av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(format="yuv420p")
    frame.pts, frame.time_base = pts, Fraction(1, 90000)
    return frame


def test_video_frames_are_converted_by_the_worker_and_go_back_untouched_without_faces() -> None:
    seen = []

    def process(rgb, index):
        seen.append((index, type(rgb), rgb.shape, rgb.dtype))
        return type("Frame", (), {"faces": []})()

    proc = LiveProcessor(process)
    frame = _video_frame(np.full((36, 64, 3), 90, np.uint8))
    assert proc.on_frame(frame) is frame  # nothing to draw: the decoded frame itself goes back
    _wait(lambda: proc.latest() is not None)
    assert seen == [(0, np.ndarray, (36, 64, 3), np.dtype(np.uint8))]  # the worker got RGB, not the av frame
    assert proc.on_frame(frame) is frame  # a result without faces draws nothing either
    stats = proc.stats()
    assert stats.callback_cpu_ms is not None and stats.worker_cpu_ms is not None
    assert stats.latency_median_ms is not None
    proc.stop()


def test_video_frames_with_faces_come_back_drawn_in_i420(samples_dir: Path) -> None:
    from fractions import Fraction

    from core.detector import Detector
    from core.io import iter_video_frames

    stream = Detector(weights=None, backend="torch").stream()
    proc = LiveProcessor(lambda rgb, i: stream.process(rgb, frame=i))
    frames = [_video_frame(rgb, pts=i) for i, rgb in iter_video_frames(samples_dir / "single_face.mp4", max_frames=2)]
    proc.on_frame(frames[0])
    _wait(lambda: proc.latest() is not None)
    assert len(proc.latest().faces) == 1
    out = proc.on_frame(frames[1])
    assert out is not frames[1] and out.format.name == "yuv420p"  # what the VP8 encoder takes without a reformat
    assert (out.width, out.height, out.pts, out.time_base) == (640, 360, 1, Fraction(1, 90000))
    before, after = frames[1].to_ndarray(format="rgb24"), out.to_ndarray(format="rgb24")
    x, y, w, h = (round(v) for v in proc.latest().faces[0].face.box)
    changed = np.abs(after.astype(int) - before.astype(int)).max(axis=2) > 40
    assert changed[max(0, y - 40) : y + h + 40, max(0, x - 10) : x + w + 10].sum() > 0.9 * changed.sum()  # box + tag
    proc.stop()


@pytest.mark.parametrize("color", [(0, 0, 0), (255, 255, 255), (200, 30, 40), (20, 180, 60), (30, 60, 220)])
def test_rgb_to_video_frame_matches_ffmpegs_own_conversion(color) -> None:
    import av

    from dashboard.live import rgb_to_video_frame

    rgb = np.zeros((32, 48, 3), np.uint8)
    rgb[:, :24] = color
    rgb[:, 24:] = (128, 128, 128)
    ours = rgb_to_video_frame(rgb).to_ndarray()
    ffmpeg = av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(format="yuv420p").to_ndarray()
    assert ours.shape == ffmpeg.shape == (48, 48)
    assert np.abs(ours.astype(int) - ffmpeg.astype(int)).max() <= 2


def test_odd_sized_frames_stay_rgb() -> None:
    from dashboard.live import rgb_to_video_frame

    rgb = np.random.default_rng(0).integers(0, 255, (35, 63, 3), dtype=np.uint8)
    out = rgb_to_video_frame(rgb)
    assert out.format.name == "rgb24" and (out.to_ndarray() == rgb).all()


def test_trace_records_every_frame_in_and_every_result_out(tmp_path: Path, monkeypatch) -> None:
    import json

    from dashboard.live import TRACE_ENV, LiveTrace, luma_thumbnail

    monkeypatch.delenv(TRACE_ENV, raising=False)
    assert LiveTrace.from_env() is None
    monkeypatch.setenv(TRACE_ENV, str(tmp_path / "trace.jsonl"))
    trace = LiveTrace.from_env()
    gate = _Gate()
    gate.release.set()
    proc = LiveProcessor(gate, trace=trace)
    rgb = np.zeros((36, 64, 3), np.uint8)
    rgb[:, 32:] = 200  # dark left half, bright right half
    proc.on_frame(rgb)
    _wait(lambda: proc.stats().processed == 1)
    proc.on_frame(_video_frame(rgb))
    _wait(lambda: proc.stats().processed == 2)
    proc.stop()
    records = [json.loads(line) for line in (tmp_path / "trace.jsonl").read_text().splitlines()]
    assert {r["session"] for r in records} == {trace.session}
    assert sorted((("in", r["in"]) if "in" in r else ("out", r["out"])) for r in records) == [
        ("in", 0),
        ("in", 1),
        ("out", 0),
        ("out", 1),
    ]
    thumbs = [np.array(r["thumb"]).reshape(9, 16) for r in records if "in" in r]
    assert (thumbs[0] == luma_thumbnail(rgb)).all()
    for t in thumbs:  # the array and the video frame give the same picture, bright on the right
        assert t[:, :7].mean() < 40 and t[:, 9:].mean() > 150
    assert [r["labels"] for r in records if "out" in r] == [[], []]


def test_video_frames_convert_to_rgb_like_ffmpeg_even_from_two_threads_at_once(samples_dir: Path) -> None:
    """The callback and the worker convert the same frame at the same moment; PyAV's own ``to_ndarray(format=)``
    shares one scaler per frame and corrupts both results then. ``to_rgb`` must not."""
    from concurrent.futures import ThreadPoolExecutor

    from core.io import iter_video_frames
    from dashboard.live import to_rgb

    ((_, rgb),) = list(iter_video_frames(samples_dir / "single_face.mp4", max_frames=1))
    frame = _video_frame(rgb)
    ffmpeg = frame.reformat(format="rgb24").to_ndarray()  # the oracle, made before any thread runs
    assert np.abs(to_rgb(frame).astype(int) - ffmpeg.astype(int)).max() <= 3
    with ThreadPoolExecutor(2) as pool:
        outs = list(pool.map(lambda _: to_rgb(frame), range(200)))
    assert all((o == outs[0]).all() for o in outs)
