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
    x, y, w, h = result.faces[result.cam_face].face.box
    assert changed.size and changed[:, 0].min() >= result.layer.y0 and changed[:, 0].max() < result.layer.y1
    # the aligned crop extends past the box (framing), but the overlay stays near the face
    assert result.layer.x0 > x - w and result.layer.x1 < x + 2 * w
    proc.stop()
