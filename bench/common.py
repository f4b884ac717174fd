"""Helpers shared by the benchmarks: machine description and FLOP counting."""

from __future__ import annotations

import os
import platform

import torch
from torch.utils.flop_counter import FlopCounterMode


def machine_info() -> dict:
    """Where a number was measured: CPU model, cores, torch version, CUDA device if any."""
    cpu = platform.processor() or ""
    try:
        with open("/proc/cpuinfo") as fh:
            cpu = next((ln.split(":", 1)[1].strip() for ln in fh if ln.startswith("model name")), cpu)
    except OSError:
        pass
    info = {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
    }
    return info


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
