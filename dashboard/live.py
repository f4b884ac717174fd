"""The webcam pipeline between streamlit-webrtc and the engine: newest frame wins, nothing queues up.

The frame callback only drops the decoded frame into a one-slot mailbox and draws the latest finished result,
so the video keeps the camera's rate; a worker thread converts the newest frame to RGB, runs the face pipeline
on it (Grad-CAM at most every ``cam_every_s``) and publishes through a lock-protected snapshot and a one-slot
queue. Frames with nothing to draw go back to the encoder untouched. No Streamlit here.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import queue
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import numpy as np

from dashboard.drawing import BoxLabel, draw_faces

log = logging.getLogger(__name__)

ICE_ENV = "FERLENS_ICE_SERVERS"
TRACE_ENV = "FERLENS_LIVE_TRACE"

VIDEO_CONSTRAINTS = {"width": {"ideal": 640}, "height": {"ideal": 360}, "frameRate": {"ideal": 30}}
"""What the live page asks the camera for: 640x360 at 30 fps. VP8 pays for every pixel four times per frame while the
face detector looks at a 192 px copy anyway; "ideal" values never make a camera refuse (it gives its nearest mode).
"""


class IceConfigError(ValueError):
    """ICE/TURN servers given in a form WebRTC cannot use; the message says what is expected."""


def parse_ice_servers(value) -> list[dict]:
    """Validate ICE servers: a JSON string or a list of ``{"urls": str | [str], "username"?, "credential"?}``."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError as exc:
            raise IceConfigError(f"ICE servers are not valid JSON: {exc}") from exc
    if not isinstance(value, list):
        raise IceConfigError(f"ICE servers must be a list of {{'urls': ...}} objects, got {type(value).__name__}")
    out = []
    for i, server in enumerate(value):
        if not isinstance(server, Mapping) or "urls" not in server:
            raise IceConfigError(f"ICE server {i} needs a 'urls' entry (e.g. 'turn:turn.example.org:3478')")
        urls = server["urls"]
        if isinstance(urls, str):
            urls = [urls]
        if not urls or not all(
            isinstance(u, str) and u.split(":", 1)[0] in ("stun", "stuns", "turn", "turns") for u in urls
        ):
            raise IceConfigError(f"ICE server {i}: urls must start with stun:, stuns:, turn: or turns:, got {urls}")
        out.append({"urls": list(urls)} | {k: str(server[k]) for k in ("username", "credential") if k in server})
    return out


def ice_servers(secrets: Mapping | None = None) -> tuple[list[dict], str]:
    """ICE servers for WebRTC and where they came from.

    Order: ``$FERLENS_ICE_SERVERS`` (JSON), then ``ice_servers`` in ``.streamlit/secrets.toml`` (an array of
    tables), else none: on localhost and on one LAN, host candidates connect directly. Behind NAT (a phone on
    mobile data, a server in the cloud) a TURN server is needed; see docs/dashboard.md.
    """
    env = os.environ.get(ICE_ENV)
    if env:
        return parse_ice_servers(env), f"${ICE_ENV}"
    if secrets is not None and "ice_servers" in secrets:
        return parse_ice_servers([dict(s) for s in secrets["ice_servers"]]), ".streamlit/secrets.toml"
    return [], "none (direct connections only: localhost or the same network)"


@dataclass(frozen=True)
class LiveStats:
    """How the live loop is keeping up."""

    processed_fps: float | None
    """Frames the model finished per second (over the last few seconds)."""
    camera_fps: float | None
    """Frames the camera delivered per second."""
    latency_ms: float | None
    """Mean time from a frame's arrival to its result being published."""
    latency_p95_ms: float | None
    dropped: int
    """Frames overwritten in the mailbox before the worker took them (the price of never lagging)."""
    processed: int
    received: int
    latency_median_ms: float | None = None
    callback_cpu_ms: float | None = None
    """Mean CPU time of the frame callback (offer the frame, draw the result), per camera frame."""
    worker_cpu_ms: float | None = None
    """Mean CPU time of the worker's thread per analysed frame (RGB conversion, faces, model, tracking)."""


@dataclass(frozen=True, eq=False)
class CamLayer:
    """A CAM already coloured and warped onto the frame by the worker, so the callback only blends a patch.

    ``rgb`` and ``alpha`` cover rows ``y0:y1`` and columns ``x0:x1`` of the frame: the aligned crop's footprint
    clipped to the face box, so the heat never spills over hair, background or another face.
    """

    y0: int
    y1: int
    x0: int
    x1: int
    rgb: np.ndarray = field(repr=False)
    alpha: np.ndarray = field(repr=False)

    @classmethod
    def build(cls, cam: np.ndarray, aligned, shape: tuple[int, ...], box) -> CamLayer | None:
        """The layer for ``cam`` (any size) on a frame of ``shape``, clipped to the face's ``box`` ``(x, y, w, h)``."""
        import cv2

        from core.explain import colorize
        from core.faces import warp_to_image

        size = aligned.output_size
        m = cv2.resize(np.asarray(cam, np.float32), (size, size), interpolation=cv2.INTER_LINEAR)
        cover = warp_to_image(np.ones((size, size), np.float32), aligned, shape)
        x, y, w, h = (round(v) for v in box)
        inside = np.zeros(cover.shape[:2], bool)
        inside[max(0, y) : max(0, y + h), max(0, x) : max(0, x + w)] = True
        cover = np.where(inside, cover, 0.0)
        ys, xs = np.nonzero(cover > 0)
        if ys.size == 0:
            return None
        y0, y1, x0, x1 = int(ys.min()), int(ys.max()) + 1, int(xs.min()), int(xs.max()) + 1
        heat = warp_to_image(colorize(m), aligned, shape)[y0:y1, x0:x1]
        return cls(y0, y1, x0, x1, heat.astype(np.float32), (cover[y0:y1, x0:x1] * 0.4)[..., None])  # 40 % heat

    def blend(self, rgb: np.ndarray) -> np.ndarray:
        if rgb.shape[0] < self.y1 or rgb.shape[1] < self.x1:
            return rgb  # the camera changed resolution since this layer was made
        out = rgb.copy()
        patch = out[self.y0 : self.y1, self.x0 : self.x1].astype(np.float32)
        out[self.y0 : self.y1, self.x0 : self.x1] = (patch * (1 - self.alpha) + self.rgb * self.alpha + 0.5).astype(
            np.uint8
        )
        return out


@dataclass(frozen=True, eq=False)
class LiveResult:
    """The newest finished frame: its faces (``core.detector.FaceResult``), the loop's stats and optional CAM."""

    frame: int
    faces: list
    stats: LiveStats
    cam: np.ndarray | None = field(default=None, repr=False)
    cam_face: int | None = None
    layer: CamLayer | None = field(default=None, repr=False)

    def summary(self) -> list[str]:
        """One line per face for the page, e.g. ``"face 1 (track 3): happy 87%"``."""
        return [
            f"face {i + 1}" + (f" (track {f.track})" if f.track is not None else "") + f": {f.label} {f.score:.0%}"
            for i, f in enumerate(self.faces)
        ]


def _i420(frame) -> np.ndarray | None:
    """The ``(H * 3 / 2, W)`` I420 planes of a ``yuv420p`` frame with even sides (a copy), else None."""
    if frame.format.name != "yuv420p" or frame.width % 2 or frame.height % 2:
        return None
    return frame.to_ndarray()  # no format given: plain copies of the planes, no scaler involved


def _reformat(frame, format: str):
    """PyAV's conversion with a scaler of its own (``frame.reformat`` shares one per frame object)."""
    from av.video.reformatter import VideoReformatter

    return VideoReformatter().reformat(frame, format=format)


def to_rgb(image) -> np.ndarray:
    """``image`` (an array, returned as it is, or an ``av.VideoFrame``) as an ``(H, W, 3)`` uint8 RGB array.

    The callback and the worker may convert one frame at once, and PyAV's ``to_ndarray(format=)`` shares a scaler per
    frame without the GIL, so two conversions corrupt each other: I420 frames (aiortc's) are converted by OpenCV
    from a copy of their planes (BT.601, limited range, as FFmpeg), anything else with a scaler of its own.
    """
    import cv2

    if isinstance(image, np.ndarray):
        return image
    planes = _i420(image)
    if planes is not None:
        return cv2.cvtColor(planes, cv2.COLOR_YUV2RGB_I420)
    return _reformat(image, "rgb24").to_ndarray()


def rgb_to_video_frame(rgb: np.ndarray, like=None):
    """An ``av.VideoFrame`` of ``rgb`` in I420, which the VP8/H.264 encoders take (odd sizes, which I420 cannot
    hold, stay RGB): OpenCV's conversion costs less than the encoder's own reformat. ``like`` lends its timestamp.
    """
    import av
    import cv2

    h, w = rgb.shape[:2]
    if h % 2 or w % 2:
        out = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")
    else:
        out = av.VideoFrame.from_ndarray(cv2.cvtColor(rgb, cv2.COLOR_RGB2YUV_I420), format="yuv420p")
    if like is not None:
        out.pts = like.pts
        if like.time_base is not None:
            out.time_base = like.time_base
    return out


def luma_thumbnail(image, size: tuple[int, int] = (16, 9)) -> np.ndarray:
    """A tiny grey picture of a frame (RGB array or ``av.VideoFrame``), ``size`` = (width, height), uint8.

    For I420 frames it is the luma plane as it is (limited range): compare thumbnails after normalising them.
    """
    import cv2

    if isinstance(image, np.ndarray):
        gray = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
    else:
        planes = _i420(image)
        gray = planes[: image.height] if planes is not None else _reformat(image, "gray").to_ndarray()
    return cv2.resize(gray, size, interpolation=cv2.INTER_AREA)


class LiveTrace:
    """When each camera frame arrived and each result left, as JSON lines, for ``bench/webrtc.py``'s label lag.

    One line per camera frame, ``{"session", "in": n, "t", "thumb"}`` (a 16x9 grey thumbnail, so that a known
    clip can be lined up frame by frame), and one per published result, ``{"session", "out": n, "t", "labels"}``.
    ``t`` is ``time.monotonic()``, one clock for every process of the machine. It costs a thumbnail and a line of
    JSON per frame, so it is off unless ``$FERLENS_LIVE_TRACE`` names a file (:meth:`from_env`).
    """

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = os.fspath(path)
        self.session = uuid.uuid4().hex[:8]
        self._lock = threading.Lock()

    @classmethod
    def from_env(cls) -> LiveTrace | None:
        path = os.environ.get(TRACE_ENV)
        return cls(path) if path else None

    def frame_in(self, index: int, image) -> None:
        thumb = luma_thumbnail(image).reshape(-1).tolist()
        self._write({"session": self.session, "in": index, "t": time.monotonic(), "thumb": thumb})

    def result_out(self, index: int, labels: list[str]) -> None:
        self._write({"session": self.session, "out": index, "t": time.monotonic(), "labels": labels})

    def _write(self, record: dict) -> None:
        line = json.dumps(record) + "\n"
        with self._lock, open(self.path, "a") as fh:
            fh.write(line)


class LiveProcessor:
    """Newest-frame-wins worker. ``on_frame`` is what the WebRTC callback calls; it never waits for the model.

    Args:
        process: ``process(rgb, frame_index) -> FrameResult`` (``core.detector.FrameStream.process``).
        explain: optional ``explain(rgb, face_result) -> (S, S) map`` for the CAM overlay.
        cam_every_s: at most one CAM per this many seconds (0 disables it).
        idle_stop_s: the worker exits after this long without frames (it restarts on the next frame).
        window: how many recent frames the statistics cover.
        trace: a :class:`LiveTrace` recording every frame in and result out (None: no trace).
    """

    def __init__(
        self,
        process: Callable[[np.ndarray, int], object],
        explain: Callable[[np.ndarray, object], np.ndarray] | None = None,
        cam_every_s: float = 1.0,
        idle_stop_s: float = 30.0,
        window: int = 60,
        trace: LiveTrace | None = None,
    ) -> None:
        self._process = process
        self._explain = explain
        self.cam_every_s = cam_every_s
        self.idle_stop_s = idle_stop_s
        self._trace = trace
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._pending: tuple[int, object, float] | None = None
        self._result: LiveResult | None = None
        self._received = 0
        self._dropped = 0
        self._processed = 0
        self._arrivals: deque[float] = deque(maxlen=window)
        self._done: deque[tuple[float, float]] = deque(maxlen=window)  # (finish time, latency s)
        self._callback_cpu: deque[float] = deque(maxlen=window)
        self._worker_cpu: deque[float] = deque(maxlen=window)
        self._last_cam = 0.0
        self.error: str | None = None
        self.results: queue.Queue[LiveResult] = queue.Queue(maxsize=1)
        """The newest result for the page's UI loop (one slot: an unread result is replaced)."""

    # -- the callback side (streamlit-webrtc's thread): cheap, never waits for the model
    def offer(self, image) -> LiveResult | None:
        """Put ``image`` (RGB array or ``av.VideoFrame``) in the mailbox, replacing a waiting one; the last result.

        A video frame is converted to RGB by the worker, and only if the worker takes it before a newer one.
        """
        now = time.perf_counter()
        with self._lock:
            if self._pending is not None:
                self._dropped += 1
            index = self._received
            self._pending = (index, image, now)
            self._received += 1
            self._arrivals.append(now)
            result = self._result
            if self._thread is None or not self._thread.is_alive():  # first frame, or the idle worker stopped
                self._stop.clear()
                self._thread = threading.Thread(target=self._run, name="ferlens-live-worker", daemon=True)
                self._thread.start()
        if self._trace is not None:
            self._trace.frame_in(index, image)
        self._wake.set()
        return result

    def on_frame(self, image):
        """The frame callback: offer ``image`` (RGB array or ``av.VideoFrame``) and return it with the latest result
        drawn. With no face to draw, ``image`` itself goes back, so the encoder takes a video frame's I420 planes
        unconverted; a drawn video frame goes back in I420 (:func:`rgb_to_video_frame`).
        """
        cpu = time.thread_time()
        result = self.offer(image)
        out = image
        if result is not None and result.faces:
            rgb = to_rgb(image)
            out = result.layer.blend(rgb) if result.layer is not None else rgb
            out = draw_faces(out, [BoxLabel(f.face.box, i + 1, f.label, f.score) for i, f in enumerate(result.faces)])
            if not isinstance(image, np.ndarray):
                out = rgb_to_video_frame(out, like=image)
        with self._lock:
            self._callback_cpu.append(time.thread_time() - cpu)
        return out

    # -- the worker side
    def _run(self) -> None:
        idle_since = time.perf_counter()
        while not self._stop.is_set():
            if not self._wake.wait(timeout=0.5):
                if time.perf_counter() - idle_since > self.idle_stop_s:
                    log.info("live worker idle for %.0f s: stopping", self.idle_stop_s)
                    return
                continue
            self._wake.clear()
            with self._lock:
                item, self._pending = self._pending, None
            if item is None:
                continue
            idle_since = time.perf_counter()
            try:
                self._handle(*item)
            except Exception as exc:  # noqa: BLE001 - reported to the page through .error and the log
                log.exception("live frame %d failed", item[0])
                self.error = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"

    def _handle(self, index: int, image, arrived: float) -> None:
        cpu = time.thread_time()
        rgb = to_rgb(image)
        frame = self._process(rgb, index)
        faces = list(frame.faces)
        cam, cam_face = None, None
        now = time.perf_counter()
        if self._explain is not None and self.cam_every_s > 0 and faces and now - self._last_cam >= self.cam_every_s:
            cam_face = int(np.argmax([f.face.box[2] * f.face.box[3] for f in faces]))
            cam = self._explain(rgb, faces[cam_face])
            self._last_cam = time.perf_counter()
        elif self._result is not None and self._result.cam is not None and faces:
            cam, cam_face = self._result.cam, self._result.cam_face  # keep the last CAM between refreshes
            cam_face = cam_face if cam_face < len(faces) else None
        # colour and warp the CAM here, onto where the face is now, so the callback only blends a patch
        layer = (
            CamLayer.build(cam, faces[cam_face].aligned, rgb.shape, faces[cam_face].face.box)
            if cam is not None and cam_face is not None
            else None
        )
        done = time.perf_counter()
        latency = done - arrived
        with self._lock:
            self._processed += 1
            self._done.append((done, latency))
            self._worker_cpu.append(time.thread_time() - cpu)
            stats = self._stats_locked()
            self._result = LiveResult(index, faces, stats, cam, cam_face, layer)
            result = self._result
        with contextlib.suppress(queue.Empty):  # one slot: replace an unread result rather than queue it
            self.results.get_nowait()
        with contextlib.suppress(queue.Full):  # the UI thread raced us; the next result will get in
            self.results.put_nowait(result)
        if self._trace is not None:
            self._trace.result_out(index, [f.label for f in faces])

    def _stats_locked(self) -> LiveStats:
        def rate(times) -> float | None:
            return (len(times) - 1) / (times[-1] - times[0]) if len(times) >= 2 and times[-1] > times[0] else None

        def mean_ms(values) -> float | None:
            return float(np.mean(values)) * 1e3 if values else None

        lat = np.array([d[1] for d in self._done]) * 1e3 if self._done else None
        return LiveStats(
            processed_fps=rate([d[0] for d in self._done]),
            camera_fps=rate(list(self._arrivals)),
            latency_ms=float(lat.mean()) if lat is not None else None,
            latency_p95_ms=float(np.percentile(lat, 95)) if lat is not None else None,
            dropped=self._dropped,
            processed=self._processed,
            received=self._received,
            latency_median_ms=float(np.median(lat)) if lat is not None else None,
            callback_cpu_ms=mean_ms(self._callback_cpu),
            worker_cpu_ms=mean_ms(self._worker_cpu),
        )

    def stats(self) -> LiveStats:
        with self._lock:
            return self._stats_locked()

    def latest(self) -> LiveResult | None:
        with self._lock:
            return self._result

    def stop(self, timeout: float = 2.0) -> None:
        """Stop the worker thread (the stream ended or the session changed model)."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
