"""Accuracy under camera corruptions and under occlusion of each AU region, with bootstrap CIs and retention.

    python -m training.robustness --model default --data ferplus --split PrivateTest --set data.num_classes=8 \\
        --out bench/results/robustness/default_ferplus-PrivateTest.json

Families: ``training.augment.EVAL_CORRUPTIONS`` at fixed severities, and ``au_occlusion`` (each AU region filled
in turn with the image's mean gray). Corruptions are seeded and applied to the model-size face, so two weights files
see identical pixels. Retention is corrupted / clean accuracy (schema in docs/results-schema.md).
"""

from __future__ import annotations

import argparse
import json
import logging
import shlex
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import torch

from core.metrics import bootstrap_ci, bootstrap_weights
from training.augment import EVAL_CORRUPTIONS
from training.evaluate import REPO_ROOT, build_model, load_faceset, model_flags, over_batches, sha256_file

log = logging.getLogger(__name__)

SEVERITIES = (0.5, 1.0)
"""Fractions of each family's mild-to-severe range (``training.augment.SEVERITY``)."""

AU_OCCLUSION = "au_occlusion"
GOAL_MEAN_RETENTION = 0.85
"""The target for the mean retention over corruption families."""


def au_occlusion_masks(faceset, size: int, framing: str = "fer2013", mesh: bool = True):
    """``({region: bool (N, 1, size, size)}, Counter of placements)`` for pre-cropped faces: regions from the mesh
    fitted on each crop, else the framing's typical five landmarks (``core.faces.au_regions.regions_for_crop``)."""
    from core.faces.au_regions import REGION_NAMES, region_masks, regions_for_crop

    side = faceset.images.shape[1]
    masks = {r: np.zeros((len(faceset), 1, size, size), bool) for r in REGION_NAMES}
    placed: Counter[str] = Counter()
    for i, crop in enumerate(faceset.images):
        regions = regions_for_crop(np.ascontiguousarray(crop), framing, mesh=mesh)
        placed[regions.source] += 1
        for name, m in region_masks(regions, (size, size), from_size=side).items():
            masks[name][i, 0] = m
    return {r: torch.from_numpy(m) for r, m in masks.items()}, placed


def occlude(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Pixels under ``mask`` set to each image's mean over all its pixels (a flat occluder, no new edge colour).

    A masked fill is one ``torch.where``; torchvision's ``erase`` only takes rectangles.
    """
    return torch.where(mask, x.mean(dim=(1, 2, 3), keepdim=True), x)


def predict_corrupted(model, faceset, corruption: str | None, severity: float, seed: int = 0, batch_size: int = 256):
    """Top-1 predictions on the CPU with every image corrupted by ``corruption`` (None: clean)."""
    if corruption is not None and corruption not in EVAL_CORRUPTIONS:
        raise ValueError(f"unknown corruption {corruption!r}; choose one of {list(EVAL_CORRUPTIONS)}")
    fn = EVAL_CORRUPTIONS.get(corruption)
    corrupt = None if fn is None else lambda x, _, g: fn(x, torch.full((len(x),), float(severity)), g)
    return over_batches(model, faceset, batch_size, "cpu", model, corrupt, seed).argmax(1)


def predict_occluded(model, faceset, mask: torch.Tensor, batch_size: int = 256) -> np.ndarray:
    """Top-1 predictions on the CPU with each image's ``mask`` (``(N, 1, S, S)`` at the input size) occluded."""
    return over_batches(model, faceset, batch_size, "cpu", model, lambda x, rows, _: occlude(x, mask[rows])).argmax(1)


def retention_ci(correct: np.ndarray, clean: np.ndarray, n_resamples: int, seed: int, alpha: float = 0.05):
    """Percentile interval of ``mean(correct) / mean(clean)`` over paired image resamples (both on the same rows)."""
    if n_resamples <= 0 or clean.size == 0:
        return None, None
    w = bootstrap_weights(clean.size, n_resamples, np.random.default_rng(seed))
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = (w @ correct.astype(float)) / (w @ clean.astype(float))
    lo, hi = np.nanpercentile(ratio[np.isfinite(ratio)], [100 * alpha / 2, 100 * (1 - alpha / 2)])
    return float(lo), float(hi)


def robustness(
    model,
    faceset,
    severities=SEVERITIES,
    seed: int = 0,
    n_resamples: int = 1000,
    families=tuple(EVAL_CORRUPTIONS),
    au_regions: bool = True,
    mesh: bool = True,
    framing: str = "fer2013",
) -> dict:
    """The robustness report (``docs/results-schema.md``, "Robustness JSON") as a dict."""
    y = np.asarray(faceset.labels)
    c = model.num_classes

    def score(pred: np.ndarray) -> dict:
        acc = bootstrap_ci(y, np.eye(c)[pred], n_resamples=n_resamples, seed=seed)["accuracy"]
        return {"accuracy": acc["value"], "ci_low": acc["ci_low"], "ci_high": acc["ci_high"]}

    clean_pred = predict_corrupted(model, faceset, None, 0.0, seed)
    clean_ok = clean_pred == y
    clean = score(clean_pred)
    rows = []

    def add(family: str, region: str | None, severity: float, pred: np.ndarray) -> None:
        r = score(pred)
        lo, hi = retention_ci(pred == y, clean_ok, n_resamples, seed)
        rows.append(
            {"corruption": family, "family": family, "region": region, "severity": severity, **r,
             "retention": r["accuracy"] / clean["accuracy"], "retention_ci_low": lo, "retention_ci_high": hi}
        )  # fmt: skip
        log.info("%s%s @ %.2f: accuracy %.4f (retention %.3f)", family, f":{region}" if region else "", severity,
                 r["accuracy"], rows[-1]["retention"])  # fmt: skip

    for name in families:
        for s in severities:
            add(name, None, float(s), predict_corrupted(model, faceset, name, s, seed))
    placement = None
    if au_regions:
        masks, placed = au_occlusion_masks(faceset, model.spec.input_size, framing, mesh)
        counts = {k: int(placed[k]) for k in ("mesh", "framing")}
        placement = {"framing": framing, "mesh_tried": bool(mesh), "placed": counts}
        for region, mask in masks.items():
            add(AU_OCCLUSION, region, 1.0, predict_occluded(model, faceset, mask))
    families = dict.fromkeys(r["family"] for r in rows)  # in order of appearance
    family_retention = {f: float(np.mean([r["retention"] for r in rows if r["family"] == f])) for f in families}
    mean = float(np.mean(list(family_retention.values()))) if family_retention else None
    return {
        "clean": clean,
        "conditions": rows,
        "family_retention": family_retention,
        "mean_retention": mean,
        "goal": {"mean_retention": GOAL_MEAN_RETENTION, "met": mean is not None and mean >= GOAL_MEAN_RETENTION},
        "au_regions": placement,
    }


def _shown(path: Path | None) -> str | None:
    """A weights path relative to the repo when inside it (no machine's absolute path in committed JSON)."""
    if path is None:
        return None
    full = Path(path).resolve()
    return str(full.relative_to(REPO_ROOT) if full.is_relative_to(REPO_ROOT) else path)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    ap = argparse.ArgumentParser(
        prog="python -m training.robustness",
        description=__doc__.split("\n\n")[0],
        parents=[model_flags("fer2013", "PublicTest")],
    )
    ap.add_argument("--set", action="append", default=[], help="data config override, e.g. data.num_classes=8")
    ap.add_argument("--severity", type=float, nargs="+", default=list(SEVERITIES))
    ap.add_argument("--family", nargs="+", choices=list(EVAL_CORRUPTIONS), default=list(EVAL_CORRUPTIONS))
    ap.add_argument("--no-au-occlusion", action="store_true", help="skip occluding each AU region")
    ap.add_argument("--no-mesh", action="store_true", help="place AU regions from the framing's typical landmarks")
    ap.add_argument("--limit", type=int, help="a deterministic stratified subset of N rows")
    ap.add_argument("--out", required=True)
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    model, path = build_model(args.model, args.weights, None, {})
    fs = load_faceset(args.data, args.split, args.limit, model.num_classes, None, args.set)
    res = robustness(
        model, fs, tuple(args.severity), args.seed, args.bootstrap, tuple(args.family), not args.no_au_occlusion,
        not args.no_mesh,
    )  # fmt: skip
    res["meta"] = {
        "model": args.model,
        "weights": _shown(path),
        "weights_sha256": sha256_file(path) if path else None,
        "data": args.data,
        "split": args.split,
        "n": len(fs),
        "limit": args.limit,
        "seed": args.seed,
        "bootstrap": args.bootstrap,
        "command": shlex.join(["python", "-m", "training.robustness", *argv]),
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(res, indent=2, allow_nan=False))
    print(f"clean {res['clean']['accuracy']:.4f}, mean retention {res['mean_retention']:.3f} over "
          f"{len(res['family_retention'])} families (goal {GOAL_MEAN_RETENTION}) -> {out}")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
