"""Helpers shared by the benchmarks: machine description, timing loops, FLOP counting, JSON and docs writing."""

from __future__ import annotations

import json
import os
import platform
import shlex
import sys
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from torch.utils.flop_counter import FlopCounterMode

ROOT = Path(__file__).resolve().parents[1]


def machine_info() -> dict:
    """Where a number was measured: CPU model, cores, torch version, CUDA device if any."""
    cpu = platform.processor() or ""
    try:
        with open("/proc/cpuinfo") as fh:
            cpu = next((ln.split(":", 1)[1].strip() for ln in fh if ln.startswith("model name")), cpu)
    except OSError:
        pass
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
    }


def samples_dir() -> Path:
    from training.datasets import data_root

    return data_root() / "samples"


def fer2013_faces(rows: int, training_only: bool = False) -> np.ndarray:
    """The first ``rows`` faces of FER2013 (48x48 uint8); with ``training_only``, those of its Training split."""
    from training.datasets import fer2013_path, read_fer2013

    d = read_fer2013(fer2013_path())
    return d["images"][:rows][d["usage"][:rows] == 0] if training_only else d["images"][:rows]  # 0: Training


def framed_landmarks(det, face: np.ndarray) -> np.ndarray | None:
    """The detector's five points on a 48x48 face, in 48-px pixel centres; None when it finds no face.

    The face is upscaled 4x and centred on a canvas twice its size filled with its mean grey: detectors expect
    some context around a face.
    """
    import cv2

    canvas = np.full((384, 384), int(face.mean()), np.uint8)
    canvas[96:288, 96:288] = cv2.resize(face, (192, 192), interpolation=cv2.INTER_CUBIC)
    faces = det.detect(np.repeat(canvas[..., None], 3, axis=2))
    return (faces[0].landmarks - 96 + 0.5) / 4 - 0.5 if faces else None


def loadavg() -> list[float]:
    return [round(v, 2) for v in os.getloadavg()]


def command_line(script: str, argv: list[str] | None) -> str:
    """The command that reproduces this run, for the JSON."""
    argv = sys.argv[1:] if argv is None else argv
    return shlex.join(["python", Path(script).resolve().relative_to(ROOT).as_posix(), *argv])


def write_json(path: Path, data: dict, indent: int = 2) -> str:
    """Write ``data`` to ``path`` atomically (folders made); returns the JSON text."""
    from core.models.weights import atomic_write

    text = json.dumps(data, indent=indent)
    atomic_write(path, lambda tmp: Path(tmp).write_text(text + "\n"))
    return text


def replace_section(text: str, body: str, begin: str, end: str) -> str:
    """``text`` with everything between the ``begin`` and ``end`` markers replaced by ``body``."""
    if text.count(begin) != 1 or text.count(end) != 1 or text.index(begin) > text.index(end):
        raise ValueError(f"expected one {begin!r} followed by one {end!r}")
    head, rest = text.split(begin, 1)
    return f"{head}{begin}\n{body}\n{end}{rest.split(end, 1)[1]}"


def timed(fn: Callable[[], object], budget_s: float = 0.0, min_runs: int = 3, warmup: int = 2) -> list[float]:
    """Seconds per call of ``fn``: at least ``min_runs`` calls, more until ``budget_s`` is spent."""
    for _ in range(warmup):
        fn()
    times: list[float] = []
    start = time.perf_counter()
    while len(times) < min_runs or time.perf_counter() - start < budget_s:
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return times


class Steps:
    """Process-CPU (every thread) and wall seconds per named step, one entry per call."""

    def __init__(self) -> None:
        self.cpu: dict[str, list[float]] = defaultdict(list)
        self.wall: dict[str, list[float]] = defaultdict(list)

    def time(self, name: str, fn: Callable, *args):
        c0, w0 = time.process_time(), time.perf_counter()
        out = fn(*args)
        self.cpu[name].append(time.process_time() - c0)
        self.wall[name].append(time.perf_counter() - w0)
        return out


def median_ms(times: list[float]) -> float:
    return round(float(np.median(times)) * 1e3, 3)


def train_step_s(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, steps: int) -> float:
    """Seconds per AdamW step (cross-entropy) on one batch, after one untimed step."""
    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)

    def step() -> None:
        loss = torch.nn.functional.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()

    return float(np.mean(timed(step, min_runs=steps, warmup=1)))


def gflops(model: torch.nn.Module, x: torch.Tensor) -> float:
    """Forward GFLOPs for input ``x`` (multiply-add counted as 2 FLOPs, torch's FlopCounterMode convention)."""
    model.eval()
    counter = FlopCounterMode(display=False)
    # The fused inference path of nn.TransformerEncoderLayer is invisible to the counter: count the plain ops.
    fastpath = torch.backends.mha.get_fastpath_enabled()
    torch.backends.mha.set_fastpath_enabled(False)
    try:
        with torch.no_grad(), counter:
            model(x)
    finally:
        torch.backends.mha.set_fastpath_enabled(fastpath)
    return counter.get_total_flops() / 1e9
