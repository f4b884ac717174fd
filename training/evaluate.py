"""Evaluate a model on one split and write the results JSON; compare two results with McNemar.

    python -m training.evaluate --model default --weights default --data fer2013 --split test --out r.json
    python -m training.evaluate compare a.json b.json

The results JSON (``docs/results-schema.md``) records what was evaluated (weights hash, data, git commit, command),
every metric with a 95 % bootstrap CI, the plots' points, and one row per image so the dashboard's error explorer
can open the very images the model got wrong.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import logging
import shlex
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch

from core import metrics as M
from core.engine import probabilities, sidecar_temperature
from core.models import FERModel, create_model
from core.models.weights import atomic_write, read_meta, resolve_weights
from training.results import SCHEMA, format_ci, load_results, validate_results, write_results

log = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parents[1]


# --------------------------------------------------------------------------------------------- inference
@torch.no_grad()
def over_batches(model: FERModel, faceset, batch_size: int, device, fn, corrupt=None, seed: int = 0) -> np.ndarray:
    """``fn(x)`` for every normalised batch of ``faceset`` as float64 ``(N, C)``, the inputs made as training makes
    them (``training.loader.prepare_tensor``, then ``ModelSpec.normalize``) so the two cannot drift apart.
    ``corrupt(x, rows, generator)`` changes each batch ``x`` in [0, 1] before normalisation (seeded)."""
    from training.loader import prepare_tensor

    device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    images = prepare_tensor(faceset, model.spec)
    g = torch.Generator().manual_seed(seed)
    was_training = model.training
    model.eval().to(device)
    out = []
    try:
        for start in range(0, len(images), batch_size):
            rows = slice(start, start + batch_size)
            x = images[rows].to(device).float() / 255.0
            x = x if corrupt is None else corrupt(x, rows, g)
            out.append(torch.as_tensor(fn(model.spec.normalize(x))).float().cpu().double().numpy())
    finally:
        model.train(was_training)
    return np.concatenate(out) if out else np.zeros((0, model.num_classes))


def predict_logits(
    model: FERModel, faceset, batch_size: int = 256, device: str | torch.device | None = None
) -> np.ndarray:
    """Raw logits ``(N, C)`` of ``model`` on a FaceSet (what ``training.calibrate`` fits its temperature on)."""
    return over_batches(model, faceset, batch_size, device, model)


def predict_probs(
    model: FERModel,
    faceset,
    batch_size: int = 256,
    tta_hflip: bool = False,
    device: str | torch.device | None = None,
    temperature: float = 1.0,
) -> np.ndarray:
    """``softmax(logits / temperature)`` ``(N, C)`` on a FaceSet exactly as the engine serves it
    (:func:`core.engine.probabilities`); ``tta_hflip`` averages with the mirror image's, the one test-time
    augmentation that never changes the label (faces are roughly symmetric)."""
    tta = "hflip" if tta_hflip else None
    return over_batches(model, faceset, batch_size, device, lambda x: probabilities(model, x, temperature, tta))


def _git_commit() -> str | None:
    try:
        r = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO_ROOT, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError) as exc:
        log.debug("no git commit recorded: %s", exc)
        return None
    return r.stdout.strip() or None if r.returncode == 0 else None


def sha256_file(path: str | Path) -> str:
    with open(path, "rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


def _jsonable(x):
    """Tuples -> lists and numpy scalars -> Python, for spec/config dicts."""
    return json.loads(json.dumps(x, default=lambda o: o.item() if hasattr(o, "item") else str(o)))


def evaluate_model(
    model: FERModel,
    faceset,
    batch_size: int = 256,
    tta_hflip: bool = False,
    bootstrap: int = 1000,
    seed: int = 0,
    alpha: float = 0.05,
    device: str | torch.device | None = None,
    meta: dict | None = None,
    temperature: float = 1.0,
    slices: bool = False,
) -> dict:
    """The results JSON, as a dict, of ``model`` on a :class:`training.datasets.FaceSet` whose hard ``labels``
    (FERPlus' majority) are the truth. ``bootstrap=0``: no CIs; ``meta`` is merged into ``meta``; ``slices`` adds
    :mod:`training.slices`' per-image conditions and error rates per bin."""
    c, names = model.num_classes, list(faceset.class_names)
    # a model whose classes are the set's leading ones (7 of FERPlus' 8) is scored as never predicting the rest,
    # not on a quietly smaller split
    pad = names[c:] if c < faceset.num_classes and list(model.spec.class_names) == names[:c] else []
    if c != faceset.num_classes and not pad:
        raise ValueError(
            f"model {model.spec.name!r} has {c} classes but the {faceset.source} {faceset.split} split has "
            f"{faceset.num_classes} ({names}); build the model with num_classes="
            f"{faceset.num_classes} or load the data with num_classes={c}"
        )
    t0 = time.perf_counter()
    probs = predict_probs(model, faceset, batch_size, tta_hflip, device, temperature)
    if pad:  # the model cannot say these classes: probability 0, so their rows count as errors
        probs = np.pad(probs, ((0, 0), (0, len(pad))))
        c = faceset.num_classes
    infer_s = time.perf_counter() - t0
    y = np.asarray(faceset.labels, dtype=np.int64)
    summary = M.summarize(y, probs, names, n_resamples=bootstrap, seed=seed, alpha=alpha)
    top2 = np.sort(probs, axis=1)[:, -2:] if c >= 2 else np.zeros((len(y), 2))
    predictions = {
        "id": [int(i) for i in faceset.ids],
        "true": y.tolist(),
        "pred": probs.argmax(axis=1).tolist(),
        "confidence": [round(float(v), 6) for v in top2[:, 1]],
        "margin": [round(float(v), 6) for v in top2[:, 1] - top2[:, 0]],
        "probs": np.round(probs, 6).tolist(),
    }
    if getattr(faceset, "paths", ()):
        predictions["path"] = [str(p) for p in faceset.paths]
    dev = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    info = {
        "model": model.spec.name,
        "spec": _jsonable(model.spec.to_dict()),
        "weights": None,
        "weights_sha256": None,
        "data": {"source": str(faceset.source), "split": str(faceset.split), "n": int(len(y)), "limit": None},
        "tta_hflip": bool(tta_hflip),
        "calibration": {"temperature": float(temperature), "from": None},
        "bootstrap": {"n_resamples": int(bootstrap), "seed": int(seed), "alpha": float(alpha)},
        "git_commit": _git_commit(),
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "command": None,
        "device": str(dev),
        "versions": {"torch": torch.__version__, "numpy": np.__version__},
        "inference_s": round(infer_s, 3),
        "elapsed_s": round(time.perf_counter() - t0, 3),
    }
    if pad:
        info["missing_classes"] = pad
    for k, v in (meta or {}).items():
        info[k] = {**info[k], **v} if isinstance(info.get(k), dict) and isinstance(v, dict) else v
    out = {"schema": SCHEMA, "meta": info, "class_names": names, **summary, "predictions": predictions}
    if slices:
        from training.slices import measure, prediction_columns, slice_report

        framing = "fer2013" if _dataset_key(str(faceset.source)) in ("fer2013", "ferplus") else "template"
        attrs = measure(faceset.images, framing)
        predictions.update(prediction_columns(attrs))
        out["slices"] = slice_report(attrs, probs.argmax(axis=1) == y, alpha, crop_side=faceset.images.shape[1])
    return out


# --------------------------------------------------------------------------------------------- comparison
def _dataset_key(source: str) -> str:
    """FER2013/FERPlus sources end in a machine-local file path: compare by name (the id and label checks
    prove the rows are the same images); a folder or CSV dataset is identified by its path."""
    name = source.split(":", 1)[0]
    return name if name in ("fer2013", "ferplus") else source


def pair_key(d: dict) -> tuple:
    """What two results must share for :func:`compare_results` to pair them: classes, dataset and split."""
    data = d["meta"]["data"]
    return tuple(d["class_names"]), _dataset_key(data["source"]), data["split"]


def compare_results(a: dict, b: dict, n_resamples: int = 1000, seed: int = 0) -> dict:
    """McNemar and a paired bootstrap of the accuracy difference of two results, matched by image id (runs with a
    different ``--limit`` compare on the images both saw). ValueError when they differ in classes, data or split,
    share no image, or disagree on an image's true label (then they are not the same split)."""
    from training.stats import mcnemar, paired_bootstrap_accuracy_diff

    for d in (a, b):
        validate_results(d)
    if a["class_names"] != b["class_names"]:
        raise ValueError(f"different classes: {a['class_names']} vs {b['class_names']}")
    da, db = a["meta"]["data"], b["meta"]["data"]
    if pair_key(a) != pair_key(b):
        raise ValueError(
            f"different data: {da['source']} {da['split']} vs {db['source']} {db['split']}; "
            "McNemar needs both models on the same images"
        )
    pa, pb = a["predictions"], b["predictions"]
    ids_a, ids_b = np.asarray(pa["id"]), np.asarray(pb["id"])
    common, ia, ib = np.intersect1d(ids_a, ids_b, assume_unique=True, return_indices=True)
    if common.size == 0:
        raise ValueError("the two results share no image id")
    ya, yb = np.asarray(pa["true"])[ia], np.asarray(pb["true"])[ib]
    if not np.array_equal(ya, yb):
        raise ValueError(f"{int((ya != yb).sum())} shared image ids carry different true labels")
    ca = np.asarray(pa["pred"])[ia] == ya
    cb = np.asarray(pb["pred"])[ib] == yb
    sizes = ids_a.size, ids_b.size
    if common.size < max(sizes):
        log.warning("comparing on the %d image ids both results share (%d and %d rows)", common.size, *sizes)

    def side(d: dict, correct: np.ndarray) -> dict:
        m = d["meta"]
        return {
            "model": m["model"],
            "weights": m["weights"],
            "weights_sha256": m["weights_sha256"],
            "tta_hflip": m["tta_hflip"],
            "temperature": (m.get("calibration") or {}).get("temperature", 1.0),
            "accuracy": float(correct.mean()),
        }

    return {
        "data": {"source": da["source"], "split": da["split"], "n_common": int(common.size)},
        "a": side(a, ca),
        "b": side(b, cb),
        "mcnemar": mcnemar(ca, cb).to_dict(),
        "accuracy_diff": paired_bootstrap_accuracy_diff(ca, cb, n_resamples=n_resamples, seed=seed).to_dict(),
    }


# --------------------------------------------------------------------------------------------- CLI
def build_model(name: str, weights: str | None, num_classes: int | None, overrides: dict) -> tuple:
    """The model to evaluate (``core.models.create_model``: the sidecar supplies ``num_classes`` and the run's
    ``model_overrides``; command-line values win). ``weights=None`` means ``"default"``, the shipped weights.
    Returns ``(model, weights_path_or_None)``."""
    from core.models import MODELS

    MODELS.get(name)  # an unknown model is named as such before its weights are looked for
    path = resolve_weights(name, "default" if weights is None else weights)
    return create_model(name, num_classes=num_classes, weights=path, **overrides), path


def _model_options(items: list[str]) -> dict:
    from training.config import parse_value

    bad = [item for item in items if "=" not in item]
    if bad:
        raise ValueError(f"--model-option {bad[0]!r} must look like KEY=VALUE")
    return {k.strip(): parse_value(v) for k, _, v in (item.partition("=") for item in items)}


def model_flags(data: str, split: str) -> argparse.ArgumentParser:
    """``parents=[...]`` of the CLIs that measure a model on one split (robustness, explain_eval): model, weights,
    data (default ``data``), split (default ``split``), bootstrap resamples and seed."""
    ap = argparse.ArgumentParser(add_help=False)
    ap.add_argument("--model", default="default")
    ap.add_argument("--weights", default="default", help="a .safetensors file (default: the shipped weights)")
    ap.add_argument("--data", default=data, help="fer2013 | ferplus")
    ap.add_argument("--split", default=split)
    ap.add_argument("--bootstrap", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=0)
    return ap


def _eval_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog="python -m training.evaluate",
        description="Evaluate a model on one split and write the results JSON (docs/results-schema.md). "
        "'python -m training.evaluate compare A.json B.json' compares two results with McNemar.",
    )
    ap.add_argument("--model", required=True, help="registered model name (core.models.list_models())")
    ap.add_argument(
        "--weights",
        help="a .safetensors file, 'default' (the default: the shipped weights, required to exist) or 'none' for "
        "a random init",
    )
    ap.add_argument("--num-classes", type=int, choices=(7, 8), help="default: the weights' sidecar, else 7")
    ap.add_argument(
        "--model-option",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="model config override (e.g. cbam=true); repeatable",
    )
    ap.add_argument("--data", default="fer2013", help="fer2013 | ferplus | folder:PATH | affectnet:PATH")
    ap.add_argument("--root", help="datasets folder (default: $FERLENS_DATA or ../shared/datasets)")
    ap.add_argument("--split", default="test", help="train | val | test (or Training/PublicTest/PrivateTest)")
    ap.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="data.KEY=VALUE",
        help="data config override, e.g. data.ferplus_rule=strict; repeatable",
    )
    ap.add_argument("--out", help="results JSON to write (default: runs/eval/MODEL-DATA-SPLIT.json)")
    ap.add_argument("--limit", type=int, help="evaluate a deterministic stratified slice of N rows")
    ap.add_argument("--tta-hflip", action="store_true", help="average with the mirrored image")
    ap.add_argument(
        "--no-calibration",
        action="store_true",
        help="ignore the temperature in the weights' sidecar (python -m training.calibrate); default: apply it",
    )
    ap.add_argument(
        "--slices",
        action="store_true",
        help="error rates by brightness, blur, head pose and mesh fit, with per-image values (training.slices)",
    )
    ap.add_argument("--batch-size", type=int, default=256)
    ap.add_argument("--bootstrap", type=int, default=1000, help="bootstrap resamples for the CIs (0: none)")
    ap.add_argument("--seed", type=int, default=0, help="bootstrap seed")
    ap.add_argument("--device", help="cpu | cuda | cuda:1 (default: cuda if available)")
    return ap


def _compare_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog="python -m training.evaluate compare",
        description="McNemar + paired bootstrap between two results on one split.",
    )
    ap.add_argument("a", help="results JSON of model A")
    ap.add_argument("b", help="results JSON of model B")
    ap.add_argument("--out", help="write the comparison as JSON here")
    ap.add_argument("--bootstrap", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=0)
    return ap


def load_faceset(data: str, split: str, limit: int | None, num_classes: int, root: str | None, sets: list[str]):
    """``training.datasets.load_split`` with a DataConfig built from CLI-style arguments."""
    from training.config import DataConfig, TrainConfig, apply_overrides
    from training.datasets import load_split

    cfg = TrainConfig(data=DataConfig(dataset=data, root=root, num_classes=num_classes, limit=limit))
    bad = [s for s in sets if not s.startswith("data.")]
    if bad:
        raise ValueError(f"--set only takes data.KEY=VALUE overrides, got {bad}")
    return load_split(apply_overrides(cfg, sets).data, split)


def default_out(
    model: str, data: str, split: str, tta: bool = False, limit: int | None = None, uncalibrated: bool = False
) -> Path:
    """``runs/eval/MODEL-DATA-SPLIT[-nLIMIT][-tta][-uncal].json`` under ``$FERLENS_RUNS`` (or ``<repo>/runs``),
    where the dashboard's evaluation page looks; ``folder:PATH`` data is named by the folder."""
    import os
    import re

    name = Path(data.split(":", 1)[1]).name if ":" in data else data
    tail = (f"-n{limit}" if limit else "") + ("-tta" if tta else "") + ("-uncal" if uncalibrated else "")
    stem = re.sub(r"[^A-Za-z0-9_.-]+", "_", f"{model}-{name}-{split}{tail}")
    return Path(os.environ.get("FERLENS_RUNS") or REPO_ROOT / "runs") / "eval" / f"{stem}.json"


def summary_line(d: dict) -> str:
    m, data = d["metrics"], d["meta"]["data"]
    acc, f1, ece = (format_ci(m[k], ".4f") for k in ("accuracy", "macro_f1", "ece"))
    line = f"{d['meta']['model']} on {data['source']} {data['split']} (n={data['n']}): "
    line += f"accuracy {acc}, macro-F1 {f1}, ECE {ece}"
    t = (d["meta"].get("calibration") or {}).get("temperature", 1.0)
    if t != 1.0:
        line += f" (temperature {t:.3f})"
    if d["meta"].get("tta_hflip"):
        line += " (hflip TTA)"
    missing = d["meta"].get("missing_classes")
    if missing:
        line += f"; the model has no output for {', '.join(missing)}, so those rows count as errors"
    return line


def _run_eval(args: argparse.Namespace, argv: list[str]) -> int:
    model, wpath = build_model(args.model, args.weights, args.num_classes, _model_options(args.model_option))
    fs = load_faceset(args.data, args.split, args.limit, model.num_classes, args.root, args.set)
    found = None if args.no_calibration or wpath is None else sidecar_temperature(read_meta(wpath))
    meta = {
        "weights": str(wpath) if wpath else None,
        "weights_sha256": sha256_file(wpath) if wpath else None,
        "data": {"limit": args.limit},
        "command": shlex.join(["python", "-m", "training.evaluate", *argv]),
        "calibration": {"from": str(wpath.with_suffix(".json")) if found else None},
    }
    if found:
        log.info("applying the sidecar's temperature %.4f (--no-calibration to skip)", found)
    d = evaluate_model(
        model,
        fs,
        args.batch_size,
        args.tta_hflip,
        args.bootstrap,
        args.seed,
        device=args.device,
        meta=meta,
        temperature=found or 1.0,
        slices=args.slices,
    )
    out = args.out or default_out(
        args.model, args.data, args.split, args.tta_hflip, args.limit, uncalibrated=args.no_calibration
    )
    write_results(d, out)
    print(summary_line(d))
    print(f"wrote {out}")
    return 0


def _run_compare(args: argparse.Namespace) -> int:
    r = compare_results(load_results(args.a), load_results(args.b), args.bootstrap, args.seed)
    mc, diff = r["mcnemar"], r["accuracy_diff"]

    def name(s: dict) -> str:  # both sides named alike: model, weights file and hash, TTA
        weights = f"{s['weights']} sha256:{(s['weights_sha256'] or '')[:8]}" if s["weights"] else "random init"
        return f"{s['model']} ({weights}{', hflip TTA' if s['tta_hflip'] else ''})"

    print(f"A {name(r['a'])}: accuracy {r['a']['accuracy']:.4f}")
    print(f"B {name(r['b'])}: accuracy {r['b']['accuracy']:.4f}   on {r['data']['n_common']} shared images")
    print(f"difference A-B {diff['diff']:+.4f} [{diff['ci_low']:+.4f}, {diff['ci_high']:+.4f}] (95 % paired bootstrap)")
    print(f"McNemar ({mc['method']}): only-A-right {mc['b']}, only-B-right {mc['c']}, p = {mc['p_value']:.3g}")
    if args.out:
        text = json.dumps(r, indent=2, allow_nan=False)
        atomic_write(Path(args.out), lambda tmp: Path(tmp).write_text(text))
        print(f"wrote {args.out}")
    return 0


def main(argv: list[str] | None = None) -> int:
    """CLI entry; returns the exit code. Usage errors (bad weights, data, names) give one line, code 2."""
    argv = list(sys.argv[1:] if argv is None else argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    compare = bool(argv) and argv[0] == "compare"
    args = _compare_parser().parse_args(argv[1:]) if compare else _eval_parser().parse_args(argv)
    try:
        return _run_compare(args) if compare else _run_eval(args, argv)
    except (FileNotFoundError, ValueError) as exc:  # WeightsError, DatasetError, ConfigError... are ValueErrors
        print(f"error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
