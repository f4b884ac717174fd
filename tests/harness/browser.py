"""Drive the running dashboard in headless Chromium: the end-to-end tests and ``bench/webrtc.py`` use this.

Streamlit renders in the browser after the page loads, so a bare ``chromium --screenshot`` catches a blank page;
Selenium with ``chromedriver`` and an explicit wait for text works. The live page is driven with Chromium's fake
camera, which loops a Y4M file (:func:`write_y4m` makes one from any video with OpenCV, no ffmpeg needed).
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np

from dashboard import REPO_ROOT

log = logging.getLogger(__name__)

CHROMIUM_FLAGS = (
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--use-fake-ui-for-media-stream",
)
"""Flags that work on a headless CI machine without a display, GPU or network."""


def chromium_paths() -> tuple[str, str] | None:
    """``(chromium, chromedriver)`` when both are installed (Debian ``chromium`` + ``chromium-driver``)."""
    browser = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
    driver = shutil.which("chromedriver") or (
        "/usr/bin/chromedriver" if Path("/usr/bin/chromedriver").is_file() else None
    )
    return (browser, driver) if browser and driver else None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def running_app(
    port: int | None = None, env: dict | None = None, timeout_s: float = 90.0, log_path: Path | None = None
) -> Iterator[str]:
    """Start ``streamlit run dashboard/app.py`` on 127.0.0.1 in a subprocess; yield its URL; stop it after.

    The server's output goes to ``log_path`` (a temp file by default) and is logged if it fails to start.
    """
    port = port or free_port()
    out = open(log_path or tempfile.mktemp(prefix="ferlens-app-", suffix=".log"), "w")  # noqa: SIM115
    cmd = [
        sys.executable, "-m", "streamlit", "run", str(REPO_ROOT / "dashboard" / "app.py"),
        "--server.port", str(port), "--server.address", "127.0.0.1", "--server.headless", "true",
        "--browser.gatherUsageStats", "false",
    ]  # fmt: skip
    proc = subprocess.Popen(cmd, cwd=REPO_ROOT, env={**os.environ, **(env or {})}, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout_s
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"the app exited with {proc.returncode}; log: {Path(out.name).read_text()[-2000:]}")
            try:
                with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(f"the app did not answer on {url} within {timeout_s:.0f} s")
            time.sleep(0.5)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=15)
        out.close()


def chrome(user_data_dir: Path, fake_video: Path | None = None, size: tuple[int, int] = (1400, 1800)):
    """A headless Chromium (Selenium) with a fresh profile; ``fake_video`` feeds its fake camera."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    paths = chromium_paths()
    if paths is None:
        raise RuntimeError("chromium and chromedriver are not installed (apt-get install chromium chromium-driver)")
    opts = webdriver.ChromeOptions()
    opts.binary_location = paths[0]
    for flag in CHROMIUM_FLAGS:
        opts.add_argument(flag)
    opts.add_argument(f"--user-data-dir={user_data_dir}")
    opts.add_argument(f"--window-size={size[0]},{size[1]}")
    if fake_video is not None:
        opts.add_argument("--use-fake-device-for-media-stream")
        opts.add_argument(f"--use-file-for-fake-video-capture={fake_video}")
    return webdriver.Chrome(service=Service(paths[1]), options=opts)


def wait_for_text(driver, text: str, timeout_s: float = 60.0) -> None:
    """Wait until ``text`` appears in the page's visible text (Streamlit renders after load)."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    WebDriverWait(driver, timeout_s, poll_frequency=0.25).until(
        lambda d: text in d.find_element(By.TAG_NAME, "body").text
    )


def wait_idle(driver, timeout_s: float = 60.0) -> None:
    """Wait until Streamlit says it is no longer running the script (the status widget disappears)."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    time.sleep(0.5)
    WebDriverWait(driver, timeout_s, poll_frequency=0.25).until(
        lambda d: not d.find_elements(By.CSS_SELECTOR, '[data-testid="stStatusWidget"]')
    )


def write_y4m(video: Path, out: Path, max_frames: int | None = None, width: int | None = None) -> Path:
    """Re-encode a video as raw Y4M (4:2:0) for Chromium's fake camera, with OpenCV only.

    ``width`` downscales (keeping the aspect ratio, even sizes as 4:2:0 requires).
    """
    from core.io import iter_video_frames, video_info

    info = video_info(video)
    fps = info.fps if info.fps and info.fps > 0 else 30.0
    header_done = False
    with open(out, "wb") as fh:
        for _, rgb in iter_video_frames(video, max_frames=max_frames):
            if width:
                h = round(rgb.shape[0] * width / rgb.shape[1])
                rgb = cv2.resize(rgb, (width, h), interpolation=cv2.INTER_AREA)
            h, w = (rgb.shape[0] // 2) * 2, (rgb.shape[1] // 2) * 2
            rgb = np.ascontiguousarray(rgb[:h, :w])
            if not header_done:
                fh.write(f"YUV4MPEG2 W{w} H{h} F{round(fps * 1000)}:1000 Ip A1:1 C420jpeg\n".encode())
                header_done = True
            fh.write(b"FRAME\n")
            fh.write(cv2.cvtColor(rgb, cv2.COLOR_RGB2YUV_I420).tobytes())
    if not header_done:
        raise ValueError(f"{video} yielded no frame")
    return out


def start_webrtc(driver, timeout_s: float = 60.0) -> None:
    """Press streamlit-webrtc's START button (it lives in the component's iframe)."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    frame = WebDriverWait(driver, timeout_s).until(lambda d: d.find_elements(By.TAG_NAME, "iframe"))[0]
    driver.switch_to.frame(frame)
    try:
        button = WebDriverWait(driver, timeout_s).until(
            lambda d: next((b for b in d.find_elements(By.TAG_NAME, "button") if b.text.strip() == "START"), None)
        )
        button.click()
    finally:
        driver.switch_to.default_content()


def wait_for_match(driver, pattern, timeout_s: float = 60.0):
    """Wait until the page text matches the compiled regex ``pattern``; return the match."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, timeout_s, poll_frequency=0.25).until(
        lambda d: pattern.search(d.find_element(By.TAG_NAME, "body").text)
    )


def wait_for_element(driver, css: str, timeout_s: float = 60.0):
    """The first element matching ``css`` once it exists (Streamlit may re-render the page meanwhile)."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, timeout_s, poll_frequency=0.25).until(
        lambda d: (d.find_elements(By.CSS_SELECTOR, css) or [None])[0]
    )
