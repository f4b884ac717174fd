"""Measure candidate architectures for the embedded default model on this CPU (why ``default`` is what it is).

For each candidate: parameters, GFLOPs at input size, batch-1 inference latency (median of repeats, eval mode,
no_grad) and training throughput (AdamW step, batch 64, random data). Writes JSON; docs/models.md quotes it.

    python bench/default_candidates.py --out bench/results/default_candidates.json [--quick]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import gflops, machine_info  # noqa: E402
from core.models import create_model  # noqa: E402

CANDIDATES: list[tuple[str, str, dict]] = [
    ("fernet_s@48", "fernet_s", {}),
    ("fernet_s@64", "fernet_s", {"input_size": 64}),
    ("fernet_s+cbam@48", "fernet_s", {"cbam": True}),
    ("fernet_m@48", "fernet_m", {}),
    ("fernet_r18width@48", "fernet_s", {"widths": (64, 128, 256, 512), "depths": (2, 2, 2, 2)}),
]


def latency_ms(model: torch.nn.Module, x: torch.Tensor, repeats: int) -> float:
    times = []
    with torch.inference_mode():
        for _ in range(3):
            model(x)
        for _ in range(repeats):
            t = time.perf_counter()
            model(x)
            times.append((time.perf_counter() - t) * 1e3)
    return statistics.median(times)


def train_img_s(model: torch.nn.Module, size: int, chans: int, steps: int, batch: int = 64) -> float:
    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    x = torch.randn(batch, chans, size, size)
    y = torch.randint(0, 7, (batch,))
    loss_fn = torch.nn.CrossEntropyLoss()
    for i in range(steps + 1):
        if i == 1:
            t = time.perf_counter()
        opt.zero_grad()
        loss_fn(model(x), y).backward()
        opt.step()
    return steps * batch / (time.perf_counter() - t)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--quick", action="store_true", help="fewer repeats (under a minute)")
    ap.add_argument("--threads", type=int, default=torch.get_num_threads())
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    repeats, steps = (10, 2) if args.quick else (50, 5)
    rows = []
    for label, name, kw in CANDIDATES:
        model = create_model(name, **kw).eval()
        s, c = model.spec.input_size, model.spec.in_chans
        x = torch.randn(1, c, s, s)
        rows.append(
            {
                "candidate": label,
                "model": name,
                "overrides": {k: list(v) if isinstance(v, tuple) else v for k, v in kw.items()},
                "params_m": round(sum(p.numel() for p in model.parameters()) / 1e6, 3),
                "gflops": round(gflops(model, x), 4),
                "latency_ms_b1": round(latency_ms(model, x, repeats), 2),
                "train_img_s_b64": round(train_img_s(model, s, c, steps), 1),
            }
        )
        print(json.dumps(rows[-1]), flush=True)
    out = {"machine": machine_info(), "threads": args.threads, "quick": args.quick, "candidates": rows}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
