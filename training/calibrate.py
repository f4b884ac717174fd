"""Temperature scaling (Guo et al. 2017): fit one temperature on the validation split, store it beside the weights.

    python -m training.calibrate --model default_fer2013          # the shipped weights' sidecar gets "calibration"
    python -m training.calibrate --model default --weights runs/x/best.safetensors

The validation split is that of the dataset the weights were trained on (the sidecar's ``config.data``). ``T``
never changes the top class; the engine and ``training.evaluate`` apply it by default.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import json
import logging
import shlex
import sys
from pathlib import Path

import numpy as np
from scipy.optimize import minimize_scalar
from scipy.special import log_softmax, softmax

from core import metrics as M
from core.models.weights import atomic_write, read_meta
from training.config import DataConfig
from training.datasets import FER_USAGE, load_split

log = logging.getLogger(__name__)

TEMPERATURE_BOUNDS = (0.05, 20.0)
"""The search interval for T; a fit at an edge means the logits are degenerate (it is logged)."""


def nll(logits: np.ndarray, labels: np.ndarray, temperature: float = 1.0) -> float:
    """Mean negative log-likelihood of ``labels`` under ``softmax(logits / temperature)``."""
    logp = log_softmax(np.asarray(logits, np.float64) / temperature, axis=1)
    return float(-logp[np.arange(len(labels)), np.asarray(labels)].mean())


def fit_temperature(logits: np.ndarray, labels: np.ndarray, bounds: tuple[float, float] = TEMPERATURE_BOUNDS) -> float:
    """The ``T`` in ``bounds`` minimising :func:`nll`, searched on ``log T`` (a scale parameter, and NLL is smoother
    there) with scipy's bounded Brent method."""
    logits, labels = np.asarray(logits, np.float64), np.asarray(labels, np.int64)
    if logits.ndim != 2 or len(logits) != len(labels) or len(labels) == 0:
        raise ValueError(f"need (N, C) logits and N labels with N > 0, got {logits.shape} and {labels.shape}")
    lo, hi = np.log(bounds[0]), np.log(bounds[1])
    res = minimize_scalar(
        lambda s: nll(logits, labels, np.exp(s)), bounds=(lo, hi), method="bounded", options={"xatol": 1e-5}
    )
    if not res.success:
        raise RuntimeError(f"temperature fit did not converge: {res.message}")
    t = float(np.exp(res.x))
    if min(abs(res.x - lo), abs(res.x - hi)) < 1e-3:
        log.warning("fitted temperature %.4f is at the edge of %s: the logits look degenerate", t, bounds)
    return t


def calibration_report(logits: np.ndarray, labels: np.ndarray, temperature: float) -> dict:
    """NLL and ECE (``core.metrics``) before and after dividing by ``temperature``."""
    before, after = softmax(logits, axis=1), softmax(logits / temperature, axis=1)
    return {
        "nll_before": round(nll(logits, labels), 6),
        "nll_after": round(nll(logits, labels, temperature), 6),
        "ece_before": round(M.expected_calibration_error(labels, before), 6),
        "ece_after": round(M.expected_calibration_error(labels, after), 6),
    }


def write_calibration(weights: str | Path, block: dict) -> Path:
    """Set ``calibration`` in the sidecar of ``weights`` (atomically, other keys kept) and return its path."""
    side = Path(weights).with_suffix(".json")
    meta = read_meta(weights)
    meta["calibration"] = block
    text = json.dumps(meta, indent=2, sort_keys=True, default=str)
    atomic_write(side, lambda tmp: Path(tmp).write_text(text))
    return side


def _data_config(meta: dict, data: str | None, num_classes: int, root: str | None, limit: int | None):
    """The sidecar's data config (same dataset and label rule as training), with this machine's root."""
    saved = (meta.get("config") or {}).get("data") or {}
    known = {f.name for f in dataclasses.fields(DataConfig)}
    cfg = DataConfig(**{k: v for k, v in saved.items() if k in known})
    if data is None and not saved.get("dataset"):
        raise ValueError("the weights' sidecar names no dataset (config.data.dataset): pass --data fer2013|ferplus")
    return dataclasses.replace(
        cfg, dataset=data or cfg.dataset, num_classes=num_classes, root=root, limit=limit, cache_dir=None
    )


def _describe(cfg, split: str) -> str:
    """``fer2013 PublicTest`` / ``ferplus PublicTest (majority, argmax rule)``: what the fit saw."""
    if cfg.dataset not in ("fer2013", "ferplus"):
        return f"{cfg.dataset} {split}"
    name = f"{cfg.dataset} {FER_USAGE.get(split, split)}"
    return name + (f" (majority, {cfg.ferplus_rule} rule)" if cfg.dataset == "ferplus" else "")


def calibrate(
    model: str,
    weights: str | Path | None = None,
    data: str | None = None,
    split: str = "val",
    root: str | None = None,
    limit: int | None = None,
    batch_size: int = 256,
    device: str | None = None,
    command: str | None = None,
) -> tuple[dict, Path]:
    """Fit T for ``model``'s weights (default: the shipped ones) and write it into their sidecar; the keywords are
    the CLI's flags. Returns ``(calibration block, sidecar path)``.
    """
    from training.evaluate import build_model, predict_logits

    net, path = build_model(model, weights or "default", None, {})
    if path is None:
        raise ValueError("calibration needs trained weights, not a random init")
    meta = read_meta(path)
    cfg = _data_config(meta, data, net.num_classes, root, limit)
    fs = load_split(cfg, split)
    if fs.num_classes != net.num_classes:
        raise ValueError(f"{model} has {net.num_classes} classes but {cfg.dataset} gives {fs.num_classes}")
    logits = predict_logits(net, fs, batch_size, device)
    labels = np.asarray(fs.labels, np.int64)
    t = fit_temperature(logits, labels)
    block = {
        "temperature": round(t, 6),
        "fitted_on": _describe(cfg, fs.split),
        "n": int(len(labels)),
        "limit": limit,
        "ece_bins": M.ECE_BINS,
        **calibration_report(logits, labels, t),
        "command": command,
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }
    return block, write_calibration(path, block)


def main(argv: list[str] | None = None) -> int:
    """CLI entry; usage errors (bad weights, data, names) give one line and exit code 2."""
    argv = list(sys.argv[1:] if argv is None else argv)
    ap = argparse.ArgumentParser(
        prog="python -m training.calibrate",
        description="Fit a softmax temperature on the validation split and store it in the weights' sidecar.",
    )
    ap.add_argument("--model", required=True, help="registered model name (core.models.list_models())")
    ap.add_argument("--weights", help="a .safetensors file with a JSON sidecar (default: the model's shipped weights)")
    ap.add_argument("--data", help="fer2013 | ferplus (default: the dataset in the sidecar's config.data)")
    ap.add_argument("--split", default="val", help="the split to fit on (default: val = PublicTest)")
    ap.add_argument("--root", help="datasets folder (default: $FERLENS_DATA or ../shared/datasets)")
    ap.add_argument("--limit", type=int, help="fit on a deterministic stratified slice of N rows (tests only)")
    ap.add_argument("--batch-size", type=int, default=256)
    ap.add_argument("--device", help="cpu | cuda (default: cuda if available)")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    command = shlex.join(["python", "-m", "training.calibrate", *argv])
    try:
        block, side = calibrate(**vars(args), command=command)
    except (FileNotFoundError, ValueError, RuntimeError) as exc:  # WeightsError, DatasetError... are ValueErrors
        print(f"error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 2
    print(
        f"temperature {block['temperature']:.4f} on {block['fitted_on']} (n={block['n']}): "
        f"NLL {block['nll_before']:.4f} -> {block['nll_after']:.4f}, "
        f"ECE {block['ece_before']:.4f} -> {block['ece_after']:.4f}"
    )
    print(f"wrote {side}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
