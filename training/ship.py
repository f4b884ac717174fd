"""Ship a trained run as a model's embedded weights: copy, evaluate once on the test splits, write the card.

    python -m training.ship --run runs/default_v2 --model default

The run's ``best.safetensors`` becomes ``core/models/weights/NAME.safetensors``; a temperature is fitted on
PublicTest, then every score in its sidecar ``NAME.json`` and in ``docs/model-card.md`` (both benchmarks, plain and
hflip TTA, and uncalibrated on its own) is measured from those bytes. Test splits are touched only here.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shlex
import shutil
import sys
from pathlib import Path

import torch

from core.models import create_model
from core.models import weights as W
from training import evaluate as E
from training.calibrate import main as calibrate_main
from training.model_card import CARD_PATH, render_shipped_card
from training.trainer import epoch_records, hardware

log = logging.getLogger(__name__)

SLICE_LIMIT = 500
"""Size of the fixed PrivateTest slice whose accuracy is recorded beside the weights (an export check)."""

BENCHMARKS: dict[str, list[str]] = {
    "ferplus_private_8": ["ferplus", "--set", "data.num_classes=8"],
    "ferplus_private_8_tta": ["ferplus", "--set", "data.num_classes=8", "--tta-hflip"],
    "fer2013_private": ["fer2013"],
    "fer2013_private_tta": ["fer2013", "--tta-hflip"],
}
"""Every shipped model is scored on both benchmarks, plain and with hflip TTA (``training.evaluate`` arguments after
``--data``): a 7-class model counts FERPlus' contempt as an error, an 8-class one its contempt answers on FER2013."""

PRIMARY = {"ferplus": "ferplus_private_8", "fer2013": "fer2013_private"}
"""The benchmark of the labels a model was trained on: its headline, its export-check slice, its ECE before/after."""


def _metric(d: dict, key: str) -> dict:
    return {f: d["metrics"][key][f] for f in ("value", "ci_low", "ci_high")}


def summarize(d: dict) -> dict:
    """The few numbers of a results JSON a card shows, plus how to get the rest again."""
    return {
        "data": d["meta"]["data"]["source"].split(":", 1)[0],
        "split": d["meta"]["data"]["split"],
        "n": d["meta"]["data"]["n"],
        "accuracy": _metric(d, "accuracy"),
        "macro_f1": _metric(d, "macro_f1"),
        "ece": _metric(d, "ece"),
        "per_class_f1": {pc["name"]: pc["f1"] for pc in d["per_class"]},
        "missing_classes": d["meta"].get("missing_classes", []),
        "tta_hflip": d["meta"]["tta_hflip"],
        "command": d["meta"]["command"],
    }


def run_summary(run: Path) -> dict:
    """Epochs, wall time, throughput and hardware of a training run, from its ``metrics.jsonl`` and ``best.json``
    (a soup has no epochs of its own; runs from before the trainer recorded hardware were trained here)."""
    epochs = epoch_records(run) or []
    best = json.loads((run / "best.json").read_text()) if (run / "best.json").is_file() else {}
    return {
        "epochs_run": len(epochs),
        "wall_s": round(sum(e["time_s"] for e in epochs), 1),
        "img_per_s_median": round(sorted(e["img_per_s"] for e in epochs)[len(epochs) // 2], 1) if epochs else None,
        "history": [{k: round(e[k], 4) for k in ("epoch", "train_acc", "val_acc", "val_macro_f1")} for e in epochs],
        "hardware": best.get("hardware") or hardware(),
        "torch": best.get("torch") or torch.__version__,
    }


def train_command(recorded: str | None, config: dict, run: Path) -> str:
    """The training command as a user types it: ``python -m training.train`` with the recorded ``sys.argv``'s
    arguments (its first item is a machine's path to ``train.py``). A run not started by that CLI (``fit`` from
    Python, pytest) recorded no CLI arguments: the preset and run folder stand in."""
    parts = shlex.split(recorded) if recorded else []
    args = parts[1:] if parts and parts[0].endswith("train.py") else []
    if not args:
        args = ["--preset", config["name"], "--out", str(run)]
    return "python -m training.train " + shlex.join(args)


def stages(run: Path) -> list[dict]:
    """The training runs behind ``run``, oldest first: a run started from another run's weights (``init_weights``
    pointing into a run folder) continues it, so reproducing the shipped file means running each stage in order.

    Each stage has its folder, command, the weights it started from and its :func:`run_summary`.
    """
    meta = json.loads((run / "best.json").read_text())
    if soup_of := meta.get("soup_of"):
        # a soup (training.soup): its ingredients share every stage before their own, then it averages them
        chains = [stages(Path(r)) for r in soup_of]
        last = {"run": str(run), "command": meta["command"], "init_weights": None, "soup_of": soup_of}
        return chains[0][:-1] + [{**c[-1], "ingredient": True} for c in chains] + [{**last, **run_summary(run)}]
    chain: list[dict] = []
    seen: set[Path] = set()
    current: Path | None = run
    while current is not None:
        if current.resolve() in seen:
            raise ValueError(f"init_weights of the runs behind {run} form a cycle at {current}")
        seen.add(current.resolve())
        best_meta = json.loads((current / "best.json").read_text())
        init = best_meta["config"].get("init_weights")
        chain.append({
            "run": str(current),
            "command": train_command(best_meta.get("command"), best_meta["config"], current),
            "init_weights": init,
            **run_summary(current),
        })  # fmt: skip
        parent = Path(init).parent if init else None
        is_run = parent is not None and (parent / "best.json").is_file() and (parent / "metrics.jsonl").is_file()
        current = parent if is_run else None
        if init and not is_run and Path(init).with_suffix(".json").is_file():
            # a shipped file (core/models/weights/X.safetensors): its sidecar holds the stages behind it, and the
            # ship command that turned its last stage into that file
            shipped = json.loads(Path(init).with_suffix(".json").read_text())
            earlier = [dict(st) for st in shipped.get("stages", [])]
            ours = {Path(st["run"]).resolve() for st in chain}
            cut = next((i for i, st in enumerate(earlier) if Path(st["run"]).resolve() in ours), None)
            if cut is not None:
                # a stage of this chain was shipped over the file it started from: the sidecar now describes that
                # stage, so keep only what came before it (each of those already carries its own ship command)
                earlier = earlier[:cut]
            elif earlier:
                earlier[-1]["then"] = shipped.get("ship_command")
            return earlier + chain[::-1]
    return chain[::-1]


def measure(model: str, eval_dir: Path | None = None, zeroshot: bool = True) -> dict:
    """Calibrate the shipped ``model`` on PublicTest, then score it once on the test splits.

    Returns the sidecar fields these produce (``calibration``, ``primary``, ``test``, ``slice``, ``sha256``).
    """
    dest = W.SHIPPED_DIR / f"{model}.safetensors"
    # the temperature is fitted on the validation split first, so the test scores below are the calibrated ones
    if calibrate_main(["--model", model]) != 0:
        raise RuntimeError(f"calibration failed: python -m training.calibrate --model {model}")
    calibration = W.read_meta(dest)["calibration"]
    out_dir = eval_dir or E.default_out(model, "x", "x").parent

    def run_eval(key: str, data: str, *extra: str) -> dict:
        out = out_dir / f"{model}-{key}.json"
        shown = os.path.relpath(out) if out.resolve().is_relative_to(Path.cwd()) else str(out)
        argv = ["--model", model, "--data", data, "--split", "PrivateTest", *extra, "--out", shown]
        if E.main(argv) != 0:
            raise RuntimeError(f"evaluation failed: python -m training.evaluate {' '.join(argv)}")
        return E.load_results(shown)

    # the acceptance commands, verbatim: `--weights` defaults to the shipped file
    primary = PRIMARY[W.read_meta(dest)["config"]["data"]["dataset"]]
    results = {key: run_eval(key, *args) for key, args in BENCHMARKS.items()}
    results[f"{primary}_uncalibrated"] = run_eval(f"{primary}_uncalibrated", *BENCHMARKS[primary], "--no-calibration")
    sl = run_eval("slice", *BENCHMARKS[primary], "--limit", str(SLICE_LIMIT), "--bootstrap", "0")
    if zeroshot:
        sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
        from zeroshot_samples import main as zeroshot_main

        out = out_dir / f"{model}-samples-zeroshot.json"
        if zeroshot_main(["--model", model, "--out", str(out)]) != 0:
            raise RuntimeError("zero-shot evaluation failed")
        zs = E.load_results(out)
        shown = os.path.relpath(out) if Path(out).resolve().is_relative_to(Path.cwd()) else out
        zs["meta"]["command"] = f"python bench/zeroshot_samples.py --model {model} --out {shown}"
        results["zeroshot_samples"] = zs
    return {
        "sha256": E.sha256_file(dest),
        "calibration": calibration,
        "primary": primary,
        "test": {k: summarize(d) for k, d in results.items()},
        "slice": {
            "data": BENCHMARKS[primary],
            "split": "PrivateTest",
            "limit": SLICE_LIMIT,
            "limit_mode": "stratified",
            "accuracy": sl["metrics"]["accuracy"]["value"],
            "correct": int(round(sl["metrics"]["accuracy"]["value"] * sl["meta"]["data"]["n"])),
        },
    }


def _write_meta(model: str, meta: dict, card: Path | None) -> None:
    text = json.dumps(meta, indent=2, sort_keys=True)
    W.atomic_write(W.SHIPPED_DIR / f"{model}.json", lambda tmp: Path(tmp).write_text(text))
    if card is not None:
        W.atomic_write(card, lambda tmp: Path(tmp).write_text(render_shipped_card()))


def ship(
    run: Path, model: str, eval_dir: Path | None = None, card: Path | None = CARD_PATH, zeroshot: bool = True
) -> dict:
    """Copy ``run``'s best weights into the repo, evaluate them, write the sidecar (returned) and the card.

    The destination is ``core.models.weights.SHIPPED_DIR``, read at call time (tests point it elsewhere). Results
    JSONs go where ``training.evaluate`` puts them by default (``runs/eval/``) unless ``eval_dir`` is given.
    """
    best = run / "best.safetensors"
    if not best.is_file():
        raise FileNotFoundError(f"{best} not found: is {run} a finished training run?")
    best_meta = json.loads((run / "best.json").read_text())
    chain = stages(run)  # before the copy: the run may have started from the very file it replaces
    W.SHIPPED_DIR.mkdir(parents=True, exist_ok=True)
    dest = W.SHIPPED_DIR / f"{model}.safetensors"
    W.atomic_write(dest, lambda tmp: shutil.copyfile(best, tmp))
    # the sidecar first holds what evaluation needs to rebuild the model (classes, overrides); scores come after
    first = {"spec": best_meta["spec"], "config": best_meta["config"]}
    W.atomic_write(dest.with_suffix(".json"), lambda tmp: Path(tmp).write_text(json.dumps(first, indent=2)))
    overrides = best_meta["config"].get("model_overrides") or {}
    net = create_model(model, num_classes=best_meta["spec"]["num_classes"], weights=dest, **overrides)  # or raises
    scores = measure(model, eval_dir, zeroshot)
    meta = {
        "model": model,
        "spec": best_meta["spec"],
        "config": best_meta["config"],
        "params": sum(p.numel() for p in net.parameters()),
        "command": chain[-1]["command"],
        "recorded_command": best_meta.get("command"),
        "epoch": best_meta["epoch"],
        "val": best_meta["val"],
        "run": run_summary(run),
        "stages": chain,
        "ship_command": f"python -m training.ship --run {run} --model {model}",
        **scores,
    }
    _write_meta(model, meta, card)
    return meta


def remeasure(model: str, eval_dir: Path | None = None, card: Path | None = CARD_PATH, zeroshot: bool = True) -> dict:
    """Re-score an already shipped file (e.g. after adding calibration) without its run folder: the sidecar keeps
    how it was trained and gets this command's calibration and test scores."""
    old = W.read_meta(W.SHIPPED_DIR / f"{model}.safetensors")
    if not old.get("stages"):
        raise FileNotFoundError(f"{model} has no shipped sidecar with its training stages to keep")
    meta = {**old, "model": model, **measure(model, eval_dir, zeroshot)}
    # the file is the last stage's selected weights whatever name it was first shipped under
    meta["ship_command"] = f"python -m training.ship --run {old['stages'][-1]['run']} --model {model}"
    meta["remeasure_command"] = f"python -m training.ship --remeasure --model {model}"
    _write_meta(model, meta, card)
    return meta


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m training.ship", description=__doc__.split("\n\n")[0])
    what = ap.add_mutually_exclusive_group(required=True)
    what.add_argument("--run", help="a finished training run folder (holds best.safetensors)")
    what.add_argument("--remeasure", action="store_true", help="re-calibrate and re-score the shipped file only")
    ap.add_argument("--model", default="default", help="the registered model name the weights belong to")
    ap.add_argument("--eval-dir", help="where the results JSONs go (default: training.evaluate's, runs/eval/)")
    ap.add_argument("--no-card", action="store_true", help="do not rewrite docs/model-card.md")
    ap.add_argument("--no-zeroshot", action="store_true", help="skip the sample-photo zero-shot evaluation")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    eval_dir = Path(args.eval_dir) if args.eval_dir else None
    card = None if args.no_card else CARD_PATH
    if args.remeasure:
        meta = remeasure(args.model, eval_dir, card, not args.no_zeroshot)
    else:
        meta = ship(Path(args.run), args.model, eval_dir, card, not args.no_zeroshot)
    t = meta["test"][meta["primary"]]
    print(f"shipped {args.model}: {meta['primary']} accuracy {t['accuracy']['value']:.4f} "
          f"[{t['accuracy']['ci_low']:.4f}, {t['accuracy']['ci_high']:.4f}]")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
