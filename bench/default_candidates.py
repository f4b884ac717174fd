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
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import gflops, machine_info, timed, train_step_s, write_json  # noqa: E402
from core.models import create_model  # noqa: E402

CANDIDATES: list[tuple[str, str, dict]] = [
    ("fernet_s@48", "fernet_s", {}),
    ("fernet_s@64", "fernet_s", {"input_size": 64}),
    ("fernet_s+cbam@48", "fernet_s", {"cbam": True}),
    ("fernet_m@48", "fernet_m", {}),
    ("fernet_r18width@48", "fernet_s", {"widths": (64, 128, 256, 512), "depths": (2, 2, 2, 2)}),
]


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
        with torch.inference_mode():
            latency = statistics.median(timed(lambda m=model, x=x: m(x), min_runs=repeats, warmup=3)) * 1e3
        rows.append(
            {
                "candidate": label,
                "model": name,
                "overrides": {k: list(v) if isinstance(v, tuple) else v for k, v in kw.items()},
                "params_m": round(sum(p.numel() for p in model.parameters()) / 1e6, 3),
                "gflops": round(gflops(model, x), 4),
                "latency_ms_b1": round(latency, 2),
                "train_img_s_b64": round(
                    64 / train_step_s(model, torch.randn(64, c, s, s), torch.randint(0, 7, (64,)), steps), 1
                ),
            }
        )
        print(json.dumps(rows[-1]), flush=True)
    out = {"machine": machine_info(), "threads": args.threads, "quick": args.quick, "candidates": rows}
    write_json(args.out, out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
