"""What a CPU epoch of FER2013 costs outside the model: decode, resize, batching + the seven augmentations.

    python bench/train_data.py --out bench/results/train_data.json [--sizes 48 64] [--threads 1]

On the real FER2013 Training split: parse, cached reload, resize, an epoch of batches with and without
augmentation, and a few optimiser steps, so the JSON says which share of an epoch the data path takes.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.common import machine_info, timed, train_step_s, write_json  # noqa: E402
from core.models import create_model  # noqa: E402
from training.augment import BatchAugmenter  # noqa: E402
from training.config import AugmentConfig, DataConfig  # noqa: E402
from training.datasets import FaceSet, fer2013_path, load_split, read_fer2013  # noqa: E402
from training.loader import BatchLoader, prepare_tensor  # noqa: E402


def _epoch(fs: FaceSet, spec, batch: int, augment: bool) -> tuple[float, int]:
    aug = BatchAugmenter(AugmentConfig(), spec.input_size, fs.num_classes) if augment else None
    loader = BatchLoader(fs, spec, batch, train=True, augmenter=aug, seed=0)
    t = time.perf_counter()
    n = sum(x.shape[0] for x, _, _ in loader)
    return time.perf_counter() - t, n


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "train_data.json")
    ap.add_argument("--sizes", type=int, nargs="+", default=[48, 64])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--model-steps", type=int, default=5)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    result = {"machine": machine_info(), "threads": args.threads, "batch": args.batch, "loadavg_start": os.getloadavg()}

    src = fer2013_path()
    with tempfile.TemporaryDirectory() as tmp:  # the first read decodes and caches, the second reloads
        result["decode_cold_s"], result["decode_cached_s"] = timed(lambda: read_fer2013(src, tmp), min_runs=2, warmup=0)
    fs = load_split(DataConfig(), "train")
    base = create_model("default").spec
    result["sizes"] = {}
    for size in args.sizes:
        spec = dataclasses.replace(base, input_size=size)
        fs.cache.clear()
        row = {"resize_once_s": timed(lambda s=spec: prepare_tensor(fs, s), min_runs=1, warmup=0)[0]}
        plain, n = _epoch(fs, spec, args.batch, augment=False)
        aug, _ = _epoch(fs, spec, args.batch, augment=True)
        model = create_model("default", input_size=size)
        x = torch.randn(args.batch, model.spec.in_chans, size, size)
        step = train_step_s(model, x, torch.randint(0, 7, (args.batch,)), args.model_steps)
        batches = n // args.batch
        row.update(
            images=n,
            epoch_batching_s=plain,
            epoch_batching_augment_s=aug,
            augment_ms_per_batch=1000 * (aug - plain) / batches,
            model_step_ms_per_batch=1000 * step,
            model_epoch_estimate_s=step * batches,
            data_share_of_epoch=aug / (aug + step * batches),
        )
        result["sizes"][str(size)] = row
        print(size, json.dumps(row, indent=1), flush=True)
    result["loadavg_end"] = os.getloadavg()
    write_json(args.out, result)


if __name__ == "__main__":
    main()
