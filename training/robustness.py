"""Accuracy under camera corruptions, with bootstrap CIs and retention (corrupted / clean accuracy).

    python -m training.robustness --model default --data ferplus --split PublicTest --out runs/robustness/x.json

The corruptions are the training augmentation's own families (``training.augment.CORRUPTIONS``: noise, blur, low
light, JPEG, low resolution, occlusion), applied to every image of the split at fixed severities on the model-size
face, seeded, so two weights files are compared on identical corrupted pixels.
"""

from __future__ import annotations

import argparse
import json
import logging
import shlex
import sys
from pathlib import Path

import numpy as np
import torch

from core.metrics import bootstrap_ci
from training.augment import CORRUPTIONS
from training.evaluate import build_model, load_faceset
from training.loader import prepare_tensor

log = logging.getLogger(__name__)

SEVERITIES = (0.5, 1.0)
"""Fractions of each family's mild-to-severe range (``training.augment.SEVERITY``)."""


@torch.no_grad()
def predict_corrupted(model, faceset, corruption: str | None, severity: float, seed: int = 0, batch_size: int = 256):
    """Top-1 predictions on ``faceset`` with every image corrupted by ``corruption`` (None: clean)."""
    images = prepare_tensor(faceset, model.spec)
    g = torch.Generator().manual_seed(seed)
    model.eval()
    preds = []
    for start in range(0, len(images), batch_size):
        x = images[start : start + batch_size].float() / 255.0
        if corruption is not None:
            x = CORRUPTIONS[corruption](x, torch.full((len(x),), float(severity)), g)
        preds.append(model(model.spec.normalize(x)).argmax(1).numpy())
    return np.concatenate(preds)


def robustness(model, faceset, severities=SEVERITIES, seed: int = 0, n_resamples: int = 1000) -> dict:
    """``{"clean": {...}, "conditions": [{corruption, severity, accuracy, ci_low, ci_high, retention}], ...}``."""
    y = np.asarray(faceset.labels)
    c = model.num_classes

    def score(pred: np.ndarray) -> dict:
        acc = bootstrap_ci(y, np.eye(c)[pred], n_resamples=n_resamples, seed=seed)["accuracy"]
        return {"accuracy": acc["value"], "ci_low": acc["ci_low"], "ci_high": acc["ci_high"]}

    clean = score(predict_corrupted(model, faceset, None, 0.0, seed))
    rows = []
    for name in CORRUPTIONS:
        for s in severities:
            r = score(predict_corrupted(model, faceset, name, s, seed))
            rows.append({"corruption": name, "severity": s, **r, "retention": r["accuracy"] / clean["accuracy"]})
            log.info("%s @ %.2f: accuracy %.4f (retention %.3f)", name, s, r["accuracy"], rows[-1]["retention"])
    return {"clean": clean, "conditions": rows, "mean_retention": float(np.mean([r["retention"] for r in rows]))}


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    ap = argparse.ArgumentParser(prog="python -m training.robustness", description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default="default")
    ap.add_argument("--weights", default="default", help="a .safetensors file (default: the shipped weights)")
    ap.add_argument("--data", default="fer2013", help="fer2013 | ferplus")
    ap.add_argument("--split", default="PublicTest")
    ap.add_argument("--set", action="append", default=[], help="data config override, e.g. data.num_classes=8")
    ap.add_argument("--severity", type=float, nargs="+", default=list(SEVERITIES))
    ap.add_argument("--limit", type=int)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", required=True)
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    model, path = build_model(args.model, args.weights, None, {})
    fs = load_faceset(args.data, args.split, args.limit, model.num_classes, None, args.set)
    res = robustness(model, fs, tuple(args.severity), args.seed)
    res["meta"] = {
        "model": args.model,
        "weights": str(path) if path else None,
        "data": args.data,
        "split": args.split,
        "n": len(fs),
        "seed": args.seed,
        "command": shlex.join(["python", "-m", "training.robustness", *argv]),
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(res, indent=2))
    print(f"clean {res['clean']['accuracy']:.4f}, mean retention {res['mean_retention']:.3f} over "
          f"{len(res['conditions'])} conditions -> {out}")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
