"""Dashboard limits: explanations bounded per session, and a slow explanation never stalls the live page.

Nothing here measures speed: every check counts events (jobs admitted, frames returned, predictions made)
while a deliberately blocked explanation is in flight, and waits on events with generous timeouts only so a
regression fails instead of hanging.
"""

from __future__ import annotations

import threading
import time
from contextlib import ExitStack
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

import core.explain as E
from dashboard import explain as X
from dashboard.live import LiveProcessor

WAIT_S = 120.0
"""Upper bound on waits for an event (the CPU is shared; this is a hang guard, not a speed requirement)."""


def _wait(cond, timeout: float = WAIT_S) -> bool:
    end = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > end:
            return False
        time.sleep(0.01)
    return True


@pytest.fixture(scope="module")
def engine():
    """A tiny FerNet behind the real engine (its lock, its prepare, its predict_logits)."""
    from core.engine import InferenceEngine
    from core.models import create_model
    from tests.training.conftest import TINY_MODEL

    return InferenceEngine(create_model("fernet_s", **TINY_MODEL), device="cpu")


def _crop() -> np.ndarray:
    return (np.arange(48 * 48 * 3) % 251).astype(np.uint8).reshape(48, 48, 3)


class SlowShap:
    """A stand-in for ``core.explain.region_shap`` that keeps scoring batches until the test releases it."""

    def __init__(self) -> None:
        self.started = threading.Event()
        self.release = threading.Event()
        self.batches = 0
        self.threads: set[str] = set()

    def __call__(self, model, x, regions, target=None, *, forward=None, **kw):
        self.threads.add(threading.current_thread().name)
        self.started.set()
        batch = x.expand(16, -1, -1, -1)
        while not self.release.wait(0.001):
            if forward is not None:
                forward(batch)  # as the real method does: many forward passes, one batch at a time
                self.batches += 1
        size = x.shape[-1]
        return SimpleNamespace(
            names=tuple(regions),
            values=np.zeros(len(regions)),
            target=0,
            pixel_map=lambda per_area: np.zeros((size,) * 2),
        )


def _masks(size: int = 48) -> dict[str, np.ndarray]:
    m = np.zeros((size, size), bool)
    m[10:20, 10:20] = True
    return {"brows": m}


# ------------------------------------------------------------------------------------------ the bound itself


def test_job_bound_admits_n_per_session_and_refuses_the_next_at_once() -> None:
    bound = X.JobBound(2)
    with ExitStack() as held:
        held.enter_context(bound.slot("a"))
        held.enter_context(bound.slot("a"))
        with pytest.raises(X.ExplanationUnavailableError, match="wait for the running explanation"):
            with bound.slot("a"):
                pytest.fail("a third job of session a was admitted")
        assert bound.active("a") == 2
        with bound.slot("b"):  # other sessions are not affected
            assert bound.active() == 3 and bound.sessions() == 2
        with bound.slot(None):  # no browser session (CLI, live worker): not counted
            assert bound.active() == 2
    assert bound.active() == 0 and bound.sessions() == 0  # nothing kept once the jobs end
    with pytest.raises(RuntimeError, match="boom"):
        with bound.slot("a"):
            raise RuntimeError("boom")
    assert bound.active("a") == 0  # a failing job gives its slot back
    with pytest.raises(ValueError, match="limit"):
        X.JobBound(0)


def test_concurrent_jobs_of_one_session_never_exceed_the_bound() -> None:
    bound = X.JobBound(2)
    gate = threading.Event()
    inside, peak, admitted, refused = [0], [0], [0], [0]
    lock = threading.Lock()

    def job() -> None:
        try:
            with bound.slot("s"):
                with lock:
                    inside[0] += 1
                    admitted[0] += 1
                    peak[0] = max(peak[0], inside[0])
                gate.wait(WAIT_S)
                with lock:
                    inside[0] -= 1
        except X.ExplanationUnavailableError:
            with lock:
                refused[0] += 1

    threads = [threading.Thread(target=job) for _ in range(12)]
    for t in threads:
        t.start()
    assert _wait(lambda: admitted[0] + refused[0] == 12)
    gate.set()
    for t in threads:
        t.join(WAIT_S)
    assert (admitted[0], refused[0], peak[0]) == (2, 10, 2)
    assert bound.sessions() == 0


def test_explain_crop_refuses_without_queueing_on_the_model(engine, monkeypatch: pytest.MonkeyPatch) -> None:
    """The third request of a session returns at once, even while the model's lock is held elsewhere."""
    called = []
    monkeypatch.setattr(X, "current_session", lambda: "session-1")
    monkeypatch.setattr(E, "compute_cam", lambda *a, **k: called.append(1))
    with ExitStack() as held:
        held.enter_context(X.JOBS.slot("session-1"))
        held.enter_context(X.JOBS.slot("session-1"))
        with engine.lock:  # another caller is inside the model; a queued job would block right here
            done = threading.Event()
            errors: list[BaseException] = []

            def third() -> None:
                try:
                    X.explain_crop(engine, _crop(), "gradcam", target=0)
                except BaseException as exc:  # collected and asserted below
                    errors.append(exc)
                done.set()

            threading.Thread(target=third, daemon=True).start()
            assert done.wait(WAIT_S), "the refused request waited for the model instead of returning"
    assert len(errors) == 1 and isinstance(errors[0], X.ExplanationUnavailableError)
    assert "wait for the running explanation" in str(errors[0]) and called == []
    from dashboard.errors import plain_message

    message = plain_message(errors[0], "explaining face 1")
    assert "wait for the running explanation" in message and "server log" not in message  # shown as plain text


def test_sessions_get_their_slot_back_after_an_explanation(engine, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(X, "current_session", lambda: "session-2")
    for _ in range(3):  # more than the bound, one after another: all fine
        ex = X.explain_crop(engine, _crop(), "gradcam", target=0)
        assert ex.heat.shape == (48, 48) and np.isfinite(ex.heat).all()
    assert X.JOBS.active("session-2") == 0


# ------------------------------------------------------------------------------------------ the live page


def test_slow_shap_of_another_session_does_not_stall_live_predictions(engine, monkeypatch: pytest.MonkeyPatch) -> None:
    """While a SHAP job scores batches through the shared engine, the live worker keeps predicting frames."""
    slow = SlowShap()
    monkeypatch.setattr(E, "region_shap", slow)
    monkeypatch.setattr(X, "current_session", lambda: "upload-session")
    job_error: list[BaseException] = []

    def upload_session() -> None:
        try:
            X.explain_crop(engine, _crop(), "region_shap", target=0, masks=_masks())
        except BaseException as exc:  # collected and asserted below
            job_error.append(exc)

    job = threading.Thread(target=upload_session, name="upload-session", daemon=True)
    job.start()
    assert slow.started.wait(WAIT_S)

    empty = SimpleNamespace(faces=[])
    proc = LiveProcessor(lambda rgb, i: (engine.predict([rgb]), empty)[1])
    returned, stop = [0], threading.Event()

    def camera() -> None:  # streamlit-webrtc's callback thread, at a camera-like cadence
        frame = _crop()
        while not stop.is_set():
            assert proc.on_frame(frame) is frame
            returned[0] += 1
            time.sleep(0.01)

    cam = threading.Thread(target=camera, daemon=True)
    cam.start()
    try:
        progressed = _wait(lambda: proc.stats().processed >= 5 and slow.batches >= 5)
        during = proc.stats().processed
        still_running = not slow.release.is_set() and job.is_alive()
    finally:
        stop.set()
        slow.release.set()
        cam.join(WAIT_S)
        job.join(WAIT_S)
        proc.stop()
    print(f"during the SHAP job: {during} live predictions, {returned[0]} frames returned, {slow.batches} SHAP batches")
    assert progressed and still_running, (during, slow.batches)
    assert during >= 5 and returned[0] >= during
    assert job_error == [] and slow.threads == {"upload-session"}


def test_slow_live_cam_never_blocks_the_frame_callback() -> None:
    """The live CAM runs in the worker; the callback returns every frame while it is stuck."""
    entered, release = threading.Event(), threading.Event()
    explain_threads: list[str] = []
    face = SimpleNamespace(face=SimpleNamespace(box=(4, 4, 20, 20)), label="happy", score=0.9, track=None)

    def slow_cam(rgb, f):
        explain_threads.append(threading.current_thread().name)
        entered.set()
        release.wait(WAIT_S)
        return None

    proc = LiveProcessor(lambda rgb, i: SimpleNamespace(faces=[face]), slow_cam, cam_every_s=0.001)
    frames = [np.full((32, 32, 3), i, np.uint8) for i in range(21)]
    assert proc.on_frame(frames[0]) is frames[0]
    assert entered.wait(WAIT_S)
    fed = threading.Event()
    returned: list[bool] = []

    def callback_thread() -> None:
        for f in frames[1:]:
            returned.append(proc.on_frame(f) is f)
        fed.set()

    threading.Thread(target=callback_thread, daemon=True).start()
    try:
        assert fed.wait(WAIT_S), "the frame callback waited for the explanation"
        assert not release.is_set() and returned == [True] * 20
        stats = proc.stats()
        assert (stats.received, stats.processed) == (21, 0)  # every frame back while the CAM was still running
    finally:
        release.set()
    assert _wait(lambda: proc.stats().processed >= 1)
    assert explain_threads and set(explain_threads) == {"ferlens-live-worker"}
    proc.stop()


# ------------------------------------------------------------------------------------------ the page


@pytest.mark.slow
def test_upload_page_says_wait_when_the_session_is_busy(
    samples_dir: Path, dashboard_env, open_page, monkeypatch: pytest.MonkeyPatch
) -> None:
    from dashboard import resources

    resources.explain_bytes.clear()  # a cached explanation would never reach the bound
    monkeypatch.setattr(X, "current_session", lambda: "apptest")
    at = open_page("upload")
    data = (samples_dir / "single_face.jpg").read_bytes()
    at.file_uploader(key="up_files").set_value(("single_face.jpg", data, "image/jpeg")).run()
    assert not at.exception and not at.error
    with ExitStack() as held:  # two explanations of this session still running elsewhere
        held.enter_context(X.JOBS.slot("apptest"))
        held.enter_context(X.JOBS.slot("apptest"))
        at.toggle(key="up_explain").set_value(True).run()
    assert not at.exception
    errors = [e.value for e in at.error]
    assert len(errors) == 1 and "wait for the running explanation" in errors[0], errors
    assert "Traceback" not in errors[0]
    at.run()  # the slots are free again: the same request now explains the face
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert any(c.endswith("AU regions outlined") for img in at.image for c in img.captions)
    assert X.JOBS.active("apptest") == 0
