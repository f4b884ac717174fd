"""Frames the live page analyses per second, their latency and the label lag, with Chromium's fake camera -> JSON.

    python bench/webrtc.py --seconds 30 --out bench/results/webrtc.json

Runs the dashboard and headless Chromium fed a Y4M of ``samples/single_face.mp4`` (looped at 30 fps), and after one
unrecorded warm-up alternates sessions without and with the Grad-CAM overlay, reading the page's own figures once a
second. The label lag (a new expression reaching the server -> the first result showing it, smoothing included)
comes from the server's trace (``dashboard.live.LiveTrace``); the CPU per camera frame of the server and of Chromium
from ``/proc``. Browser, WebRTC, server and model share this machine: run it idle; the figures are a lower bound.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.common import command_line, machine_info, samples_dir, write_json  # noqa: E402
from tests.harness import browser  # noqa: E402

_NUM = r"([0-9.]+|…)"
PATTERNS = {
    "processed_fps": re.compile(rf"Predictions / s\n{_NUM}"),
    "latency_ms": re.compile(rf"Latency \(ms\)\n{_NUM}"),
    "camera_fps": re.compile(rf"Camera frames / s\n{_NUM}"),
    "skipped_pct": re.compile(r"Frames skipped\n([0-9]+)%"),
    "latency_p95_ms": re.compile(rf"latency p95 {_NUM} ms"),
    "latency_median_ms": re.compile(rf"latency median {_NUM} ms"),
    "callback_cpu_ms": re.compile(rf"CPU callback {_NUM} ms"),
    "worker_cpu_ms": re.compile(rf"worker {_NUM} ms per analysed frame"),
}
MIN_RUN = 3
"""Reference label runs shorter than this many clip frames are flicker, not a change of expression."""


def read_figures(text: str) -> dict:
    out = {}
    for key, pattern in PATTERNS.items():
        m = pattern.search(text)
        out[key] = float(m.group(1)) if m and m.group(1) != "…" else None
    return out


def read_loadavg(path: Path = Path("/proc/loadavg")) -> dict:
    """The machine's load averages (1, 5, 15 min) and runnable/total tasks, as ``/proc/loadavg`` has them now."""
    one, five, fifteen, tasks = path.read_text().split()[:4]
    return {
        "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "1min": float(one),
        "5min": float(five),
        "15min": float(fifteen),
        "tasks": tasks,
    }


# -- CPU of processes, from /proc (Linux)
def _stat(pid: int) -> list[str] | None:
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return raw[raw.rindex(")") + 2 :].split()  # fields from the 3rd on (the name may hold spaces)


def process_tree(root: int) -> list[int]:
    """``root`` and every process below it."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").glob("[0-9]*"):
        if (fields := _stat(int(entry.name))) is not None:
            children.setdefault(int(fields[1]), []).append(int(entry.name))
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo.extend(children.get(pid, []))
    return out


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU seconds the processes have used so far (those that exited are left out)."""
    ticks = sum(int(f[11]) + int(f[12]) for f in map(_stat, pids) if f is not None)  # utime + stime
    return ticks / os.sysconf("SC_CLK_TCK")


def server_pid(url: str) -> int | None:
    """The ``streamlit run`` process serving ``url`` (found by its ``--server.port``)."""
    port = url.rsplit(":", 1)[1]
    for entry in Path("/proc").glob("[0-9]*"):
        try:
            args = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"streamlit" in b" ".join(args) and b"--server.port" in args:
            if args[args.index(b"--server.port") + 1].decode() == port:
                return int(entry.name)
    return None


# -- label lag from the server's trace
def change_points(labels: list[str | None], min_run: int = MIN_RUN) -> list[tuple[int, str | None]]:
    """``(first clip frame, label)`` of each run of the looping clip's reference labels, flickers merged.

    A run shorter than ``min_run`` frames takes the label before it, so the result lists the settled changes of
    expression; one entry (or none, for an empty clip) when the label never changes.
    """
    lab = list(labels)
    n = len(lab)
    if n == 0:
        return []
    for _ in range(n):  # merge short runs into the run before them until none is left
        starts = [i for i in range(n) if lab[i] != lab[i - 1]]
        if not starts:
            return [(0, lab[0])]
        runs = [(s, (starts[(j + 1) % len(starts)] - s) % n or n) for j, s in enumerate(starts)]
        short = [(s, length) for s, length in runs if length < min_run]
        if not short:
            return [(s, lab[s]) for s, _ in runs]
        s, length = min(short, key=lambda r: r[1])
        for k in range(s, s + length):
            lab[k % n] = lab[(s - 1) % n]
    return [(0, lab[0])]


def clip_positions(thumbs: np.ndarray, clip_thumbs: np.ndarray) -> np.ndarray:
    """For each thumbnail, the clip frame it looks most like (rows z-scored, so brightness/range do not matter)."""

    def z(a: np.ndarray) -> np.ndarray:
        a = np.asarray(a, np.float32).reshape(len(a), -1)
        return (a - a.mean(1, keepdims=True)) / (a.std(1, keepdims=True) + 1e-6)

    a, b = z(thumbs), z(clip_thumbs)
    d = (a * a).sum(1)[:, None] - 2 * a @ b.T + (b * b).sum(1)[None, :]
    return d.argmin(1)


def label_lags(
    arrivals: list[tuple[int, float]],
    positions: list[int],
    results: dict[int, tuple[float, str | None]],
    changes: list[tuple[int, str | None]],
) -> dict:
    """Lag from each change of expression reaching the server to the first result showing the new label.

    ``arrivals`` are one session's ``(frame number, arrival time)``, ``positions`` the clip frame each shows and
    ``results`` frame number -> ``(publication time, first face's label or None)``. A change starts at the first
    arrival from the next run of the clip (a single stray frame does not count), and is shown by the first result
    for a frame of that run whose label is the run's. Changes to "no face", and changes the page was already
    showing, are not timed; changes never shown before the next one are counted as ``missed``.
    """
    empty = {"events": 0, "lags_ms": [], "missed": 0, "already_shown": 0, "median_ms": None}
    if len(changes) < 2 or not arrivals:
        return empty
    starts = np.array([c[0] for c in changes])
    seg = [int(np.searchsorted(starts, p, side="right") - 1) % len(changes) for p in positions]
    events, current = [], seg[0]  # arrival indices where a new run starts; the run the camera is in
    for i in range(1, len(seg)):
        if seg[i] != current and (i + 1 == len(seg) or seg[i + 1] == seg[i]):
            events.append(i)
            current = seg[i]
    published = sorted((t, label) for t, label in results.values())
    out = dict(empty)
    lags = []
    for e, i in enumerate(events):
        label = changes[seg[i]][1]
        if label is None:  # the face left the picture: nothing to show
            continue
        out["events"] += 1
        n0, t0 = arrivals[i]
        n_end = arrivals[events[e + 1]][0] if e + 1 < len(events) else float("inf")
        before = [lab for t, lab in published if t < t0]
        if before and before[-1] == label:
            out["already_shown"] += 1
            continue
        shown = [t for n, (t, lab) in results.items() if n0 <= n < n_end and lab == label and t >= t0]
        if shown:
            lags.append(round((min(shown) - t0) * 1e3, 1))
        else:
            out["missed"] += 1
    out["lags_ms"] = lags
    out["median_ms"] = round(statistics.median(lags), 1) if lags else None
    return out


def read_trace(path: Path) -> dict[str, dict]:
    """The trace's records per session: ``{"in": [(n, t, thumb)], "out": {n: (t, label)}}``."""
    sessions: dict[str, dict] = {}
    if not path.is_file():
        return sessions
    for line in path.read_text().splitlines():
        try:
            rec = json.loads(line)
        except json.JSONDecodeError:  # a line cut short when the server stopped
            continue
        s = sessions.setdefault(rec["session"], {"in": [], "out": {}})
        if "in" in rec:
            s["in"].append((rec["in"], rec["t"], rec["thumb"]))
        else:
            s["out"][rec["out"]] = (rec["t"], rec["labels"][0] if rec["labels"] else None)
    return sessions


def page_detector(**kw):
    """A ``core.detector.Detector`` with the live page's defaults (``dashboard.sidebar.Settings()``)."""
    from core.detector import Detector
    from dashboard.sidebar import Settings

    s = Settings()
    return Detector(model=s.model, weights=s.weights_arg, face_detector=s.face_detector, tta=s.tta_arg, **kw)


def model_record(detector) -> dict:
    """Which model and weights the page ran, so a figure can be traced to them (random init is said so)."""
    engine = detector.engine
    return {
        **detector.provenance,
        "weights": engine.weights_status,
        "trained": bool(engine.has_trained_weights),
        "backend": engine.backend,
        "tta": detector.tta,
    }


def reference(clip: Path, width: int | None, detector) -> tuple[np.ndarray, list[str | None]]:
    """The clip's frames as the fake camera sends them: their thumbnails and ``detector``'s labels."""
    import cv2

    from core.io import iter_video_frames
    from dashboard.live import luma_thumbnail

    stream = detector.stream()
    thumbs, labels = [], []
    for i, rgb in iter_video_frames(clip):
        if width:
            rgb = cv2.resize(rgb, (width, round(rgb.shape[0] * width / rgb.shape[1])), interpolation=cv2.INTER_AREA)
        thumbs.append(luma_thumbnail(rgb).reshape(-1))
        faces = stream.process(rgb, frame=i).faces
        labels.append(faces[0].label if faces else None)
    return np.array(thumbs), labels


def _median(values) -> float | None:
    """The median of the values that are not None, to 2 decimals; None when every one is."""
    vals = [v for v in values if v is not None]
    return round(statistics.median(vals), 2) if vals else None


def run(url: str, y4m: Path, seconds: float, warmup: float, cam: bool) -> dict:
    from selenium.webdriver.common.by import By

    driver = browser.chrome(Path(tempfile.mkdtemp(prefix="ferlens-bench-")), fake_video=y4m)
    server = server_pid(url)
    try:
        driver.get(f"{url}/live")
        # generous: the first visit imports torch and streamlit-webrtc and loads the model, minutes on a busy machine
        browser.wait_for_text(driver, "ICE servers:", timeout_s=600)
        if cam:
            from selenium.webdriver.support.ui import WebDriverWait

            toggle = '[data-testid="stMain"] [data-testid="stCheckbox"] label'  # the Grad-CAM toggle
            WebDriverWait(driver, 60).until(lambda d: d.find_elements(By.CSS_SELECTOR, toggle))[0].click()
            browser.wait_idle(driver)
        browser.start_webrtc(driver)
        browser.wait_for_text(driver, "Predictions / s", timeout_s=600)
        time.sleep(warmup)
        chrome_pids = process_tree(driver.service.process.pid)[1:]  # chromedriver itself left out
        load0, t0 = os.getloadavg()[0], time.monotonic()
        cpu0 = (cpu_seconds([server]) if server else None, cpu_seconds(chrome_pids))
        samples = []
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            samples.append(read_figures(driver.find_element(By.TAG_NAME, "body").text))
            time.sleep(1.0)
        cpu1 = (cpu_seconds([server]) if server else None, cpu_seconds(chrome_pids))
        t1, load1 = time.monotonic(), os.getloadavg()[0]
    finally:
        driver.quit()

    return {
        "cam_overlay": cam,
        "samples": len(samples),
        **{k: _median(s[k] for s in samples) for k in PATTERNS},
        "window": [t0, t1],
        "loadavg_1min": [round(load0, 2), round(load1, 2)],
        "server_cpu_s": round(cpu1[0] - cpu0[0], 2) if server else None,
        "browser_cpu_s": round(cpu1[1] - cpu0[1], 2),
        "series": samples,
    }


def add_trace_figures(r: dict, sessions: dict[str, dict], clip_thumbs: np.ndarray, changes) -> None:
    """Frames in and out of the measured window from the trace, CPU per frame, and the label lag, into ``r``."""
    t0, t1 = r["window"]
    inside = [s for s in sessions.values() if any(t0 <= f[1] <= t1 for f in s["in"])]
    frames = sum(sum(t0 <= f[1] <= t1 for f in s["in"]) for s in inside)
    results = sum(sum(t0 <= t <= t1 for t, _ in s["out"].values()) for s in inside)
    r["frames_in"], r["results_out"] = frames, results
    for who in ("server", "browser"):
        cpu = r.get(f"{who}_cpu_s")
        r[f"{who}_cpu_ms_per_frame"] = round(cpu / frames * 1e3, 1) if cpu is not None and frames else None
    lag = None
    if len(inside) == 1:  # the label lag of that session's frames inside the window
        seen = sorted(f for f in inside[0]["in"] if t0 <= f[1] <= t1)
        positions = clip_positions(np.array([f[2] for f in seen]), clip_thumbs).tolist()
        lag = label_lags([(n, t) for n, t, _ in seen], positions, inside[0]["out"], changes)
    r["label_lag"] = lag
    r["label_lag_median_ms"] = lag["median_ms"] if lag else None
    del r["window"]  # monotonic clock readings, meaningless outside this run


SUMMARY_KEYS = (*PATTERNS, "label_lag_median_ms", "server_cpu_ms_per_frame", "browser_cpu_ms_per_frame")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=30.0, help="measuring time per run")
    ap.add_argument("--warmup", type=float, default=10.0, help="seconds streamed before measuring")
    ap.add_argument("--width", type=int, default=None, help="downscale the fake camera to this width")
    ap.add_argument("--repeats", type=int, default=2, help="measured sessions per configuration")
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "webrtc.json")
    args = ap.parse_args(argv)
    if browser.chromium_paths() is None:
        print("chromium and chromedriver are needed: apt-get install chromium chromium-driver", file=sys.stderr)
        return 2
    clip = samples_dir() / "single_face.mp4"
    loads = {"start": read_loadavg()}
    with tempfile.TemporaryDirectory() as tmp:
        y4m = browser.write_y4m(clip, Path(tmp) / "camera.y4m", width=args.width)
        trace = Path(tmp) / "trace.jsonl"
        env = {"FERLENS_ICE_SERVERS": "[]", "FERLENS_RUNS": str(Path(tmp) / "runs"), "FERLENS_LIVE_TRACE": str(trace)}
        with browser.running_app(env=env, log_path=Path(tmp) / "app.log", timeout_s=600) as url:
            # The first session in a fresh server pays one-time costs (imports, detector and model warm-up, the
            # first Grad-CAM): stream once unrecorded, then alternate the two configurations.
            run(url, y4m, args.warmup, args.warmup, True)
            plan = [cam for _ in range(args.repeats) for cam in (False, True)]
            runs = []
            for k, cam in enumerate(plan):
                if k == len(plan) // 2:
                    loads["middle"] = read_loadavg()
                runs.append(run(url, y4m, args.seconds, args.warmup, cam))
        loads["end"] = read_loadavg()
        # after the server is gone: no CPU taken from it; the page's model, unsmoothed
        from core.tracking import TrackerConfig

        detector = page_detector(tracker=TrackerConfig(smoothing=0.0, box_smoothing=0.0))
        clip_thumbs, ref_labels = reference(clip, args.width, detector)
        changes = change_points(ref_labels)
        sessions = read_trace(trace)
        for r in runs:
            add_trace_figures(r, sessions, clip_thumbs, changes)
    result = {
        "what": "live page with Chromium's fake camera, browser + server + model on this machine",
        "machine": machine_info(),
        "camera": {"clip": clip.name, "width": args.width or "native (640x360)", "fps": 30},
        "model": model_record(detector),
        "settings": "the sidebar's defaults (dashboard.sidebar.Settings()): face detector, aligned, own preprocessing",
        "seconds": args.seconds,
        "warmup_s": args.warmup,
        "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "command": command_line(__file__, argv),
        "loadavg": loads,
        "niceness": os.nice(0),
        "reference_changes": [{"clip_frame": c, "label": lab} for c, lab in changes],
        "summary": {
            ("with_cam" if cam else "without_cam"): {
                k: m for k in SUMMARY_KEYS if (m := _median(r[k] for r in runs if r["cam_overlay"] == cam)) is not None
            }
            for cam in (False, True)
        },
        "runs": runs,
    }
    write_json(args.out, result)
    for name, r in result["summary"].items():
        print(
            f"{name}: {r.get('processed_fps')} predictions/s, latency {r.get('latency_ms')} ms "
            f"(median {r.get('latency_median_ms')}, p95 {r.get('latency_p95_ms')}), label lag median "
            f"{r.get('label_lag_median_ms')} ms, camera {r.get('camera_fps')} fps, skipped {r.get('skipped_pct')} %, "
            f"CPU ms per camera frame: server {r.get('server_cpu_ms_per_frame')}, "
            f"browser {r.get('browser_cpu_ms_per_frame')} (1-min load at start/end "
            f"{loads['start']['1min']}/{loads['end']['1min']})"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
