"""Frames the live page analyses per second, and their latency, with Chromium's fake camera -> JSON.

    python bench/webrtc.py --seconds 30 --out bench/results/webrtc.json

Starts the dashboard on 127.0.0.1, opens the live page in headless Chromium fed by a Y4M made from
``samples/single_face.mp4`` (looped by Chromium at the clip's 30 fps), presses START and, after a warm-up,
reads the page's own figures once a second: predictions per second (finished frames / s over the last 60),
mean and p95 latency from a frame's arrival at the server to its result, the camera's frame rate and the share
of frames skipped because a newer one arrived first. After one unrecorded warm-up session it alternates
sessions without and with the Grad-CAM overlay (``--repeats`` each) and reports per-session medians and their
median per configuration.
Everything runs on this machine: browser, WebRTC encode/decode, server and model share its cores, so the
numbers are a lower bound for a server with a remote browser.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.common import machine_info  # noqa: E402
from tests.harness import browser  # noqa: E402
from training.datasets import data_root  # noqa: E402

_NUM = r"([0-9.]+|…)"
PATTERNS = {
    "processed_fps": re.compile(rf"Predictions / s\n{_NUM}"),
    "latency_ms": re.compile(rf"Latency \(ms\)\n{_NUM}"),
    "camera_fps": re.compile(rf"Camera frames / s\n{_NUM}"),
    "skipped_pct": re.compile(r"Frames skipped\n([0-9]+)%"),
    "latency_p95_ms": re.compile(rf"latency p95 {_NUM} ms"),
}


def read_figures(text: str) -> dict:
    out = {}
    for key, pattern in PATTERNS.items():
        m = pattern.search(text)
        out[key] = float(m.group(1)) if m and m.group(1) != "…" else None
    return out


def run(url: str, y4m: Path, seconds: float, warmup: float, cam: bool) -> dict:
    from selenium.webdriver.common.by import By

    driver = browser.chrome(Path(tempfile.mkdtemp(prefix="ferlens-bench-")), fake_video=y4m)
    try:
        driver.get(f"{url}/live")
        browser.wait_for_text(driver, "ICE servers:", timeout_s=120)
        if cam:
            from selenium.webdriver.support.ui import WebDriverWait

            toggle = '[data-testid="stMain"] [data-testid="stCheckbox"] label'  # the Grad-CAM toggle
            WebDriverWait(driver, 60).until(lambda d: d.find_elements(By.CSS_SELECTOR, toggle))[0].click()
            browser.wait_idle(driver)
        browser.start_webrtc(driver)
        browser.wait_for_text(driver, "Predictions / s", timeout_s=120)
        time.sleep(warmup)
        samples = []
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            samples.append(read_figures(driver.find_element(By.TAG_NAME, "body").text))
            time.sleep(1.0)
    finally:
        driver.quit()

    def median(key):
        vals = [s[key] for s in samples if s[key] is not None]
        return round(statistics.median(vals), 2) if vals else None

    return {"cam_overlay": cam, "samples": len(samples), **{k: median(k) for k in PATTERNS}, "series": samples}


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
    clip = data_root() / "samples" / "single_face.mp4"
    with tempfile.TemporaryDirectory() as tmp:
        y4m = browser.write_y4m(clip, Path(tmp) / "camera.y4m", width=args.width)
        env = {"FERLENS_ICE_SERVERS": "[]", "FERLENS_RUNS": str(Path(tmp) / "runs")}
        with browser.running_app(env=env, log_path=Path(tmp) / "app.log") as url:
            # The first session in a fresh server pays one-time costs (imports, detector and model warm-up, the
            # first Grad-CAM): stream once unrecorded, then alternate the two configurations.
            run(url, y4m, args.warmup, args.warmup, True)
            runs = [run(url, y4m, args.seconds, args.warmup, cam) for _ in range(args.repeats) for cam in (False, True)]
    result = {
        "what": "live page with Chromium's fake camera, browser + server + model on this machine",
        "machine": machine_info(),
        "camera": {"clip": clip.name, "width": args.width or "native (640x360)", "fps": 30},
        "model": "default (sidebar defaults: embedded default detector, aligned, model's own preprocessing)",
        "seconds": args.seconds,
        "warmup_s": args.warmup,
        "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "command": " ".join(["python", "bench/webrtc.py", *(argv if argv is not None else sys.argv[1:])]),
        "summary": {
            ("with_cam" if cam else "without_cam"): {
                k: round(statistics.median(r[k] for r in runs if r["cam_overlay"] == cam and r[k] is not None), 2)
                for k in PATTERNS
                if any(r[k] is not None for r in runs if r["cam_overlay"] == cam)
            }
            for cam in (False, True)
        },
        "runs": runs,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    for name, r in result["summary"].items():
        print(
            f"{name}: {r.get('processed_fps')} predictions/s, latency {r.get('latency_ms')} ms "
            f"(p95 {r.get('latency_p95_ms')}), camera {r.get('camera_fps')} fps, skipped {r.get('skipped_pct')} %"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
