"""What the camera corruptions add to a training step of the default model.

    python bench/augment.py --out bench/results/augment.json [--threads 1] [--batch 64] [--repeats 20]

Per batch of real FER2013 faces: the augmentations of ``default_ferplus`` and ``default_ferplus_robust``, each
corruption family alone, and one optimiser step; interleaved medians, with the load average beside them.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import statistics
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.common import machine_info, timed, write_json  # noqa: E402
from core.models import create_model  # noqa: E402
from training.augment import CORRUPTIONS, BatchAugmenter  # noqa: E402
from training.config import get_preset  # noqa: E402
from training.datasets import load_split  # noqa: E402
from training.loader import prepare_tensor  # noqa: E402


def _median_ms(fn, repeats: int) -> float:
    return 1000 * statistics.median(timed(fn, min_runs=repeats, warmup=1))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "augment.json")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--repeats", type=int, default=20)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    plain_cfg, robust_cfg = get_preset("default_ferplus"), get_preset("default_ferplus_robust")
    model = create_model(robust_cfg.model, num_classes=robust_cfg.data.num_classes).to(
        memory_format=torch.channels_last
    )
    spec = model.spec
    faces = load_split(
        dataclasses.replace(plain_cfg.data, dataset="fer2013", num_classes=7, label_mode="hard", limit=args.batch),
        "train",
    )
    x = prepare_tensor(faces, spec)[: args.batch].float() / 255
    y = torch.softmax(torch.randn(x.shape[0], spec.num_classes), 1)
    g = torch.Generator().manual_seed(0)
    opt = torch.optim.AdamW(model.parameters())

    def step() -> None:
        loss = torch.nn.functional.cross_entropy(model(x.contiguous(memory_format=torch.channels_last)), y)
        opt.zero_grad()
        loss.backward()
        opt.step()

    augmenters = {
        "augment_plain": BatchAugmenter(plain_cfg.augment, spec.input_size, spec.num_classes),
        "augment_robust": BatchAugmenter(robust_cfg.augment, spec.input_size, spec.num_classes),
    }
    samples: dict[str, list[float]] = {k: [] for k in (*augmenters, "step")}
    for _ in range(args.repeats):  # interleaved, so load changes hit every measurement alike
        for name, aug in augmenters.items():
            samples[name].append(_median_ms(lambda aug=aug: aug(x, y, g), 1))
        samples["step"].append(_median_ms(step, 1))
    ms = {k: statistics.median(v) for k, v in samples.items()}
    t = torch.rand(x.shape[0], generator=g)
    per_family = {name: _median_ms(lambda fn=fn: fn(x, t, g), args.repeats) for name, fn in CORRUPTIONS.items()}
    extra = ms["augment_robust"] - ms["augment_plain"]
    result = {
        "machine": machine_info(),
        "threads": args.threads,
        "batch": x.shape[0],
        "input": list(x.shape[1:]),
        "corrupt": robust_cfg.augment.corrupt,
        "loadavg_start": os.getloadavg(),
        "augment_plain_ms": ms["augment_plain"],
        "augment_robust_ms": ms["augment_robust"],
        "model_step_ms": ms["step"],
        "corrupt_extra_ms": extra,
        "corrupt_overhead_of_step": extra / (ms["augment_plain"] + ms["step"]),
        "family_ms_whole_batch": per_family,
        "loadavg_end": os.getloadavg(),
    }
    print(json.dumps(result, indent=1), flush=True)
    write_json(args.out, result)


if __name__ == "__main__":
    main()
