"""Ship a trained run as a model's embedded weights: copy, evaluate once on the test splits, write the card.

    python -m training.ship --run runs/default_v2 --model default

The run's ``best.safetensors`` becomes ``core/models/weights/NAME.safetensors``; every score in its sidecar
``NAME.json`` and in ``docs/model-card.md`` is measured from those bytes. Test splits are touched only here.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import shlex
import shutil
import sys
from pathlib import Path

import torch

from core.models import create_model
from core.models.weights import atomic_write
from training import evaluate as E
from training.model_card import CARD_PATH, render_card

log = logging.getLogger(__name__)

SLICE_LIMIT = 500
"""Size of the fixed PrivateTest slice whose accuracy is recorded beside the weights (an export check)."""


def _metric(d: dict, key: str) -> dict:
    m = d["metrics"][key]
    return {"value": m["value"], "ci_low": m["ci_low"], "ci_high": m["ci_high"]}


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


def hardware() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{cpu}, {os.cpu_count()} cores, no GPU" if not torch.cuda.is_available() else torch.cuda.get_device_name()


def run_summary(run: Path) -> dict:
    """Epochs, wall time and throughput of a training run, from its ``metrics.jsonl``."""
    epochs = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines() if '"epoch"' in line]
    epochs = [e for e in epochs if e.get("kind") == "epoch"]
    return {
        "epochs_run": len(epochs),
        "wall_s": round(sum(e["time_s"] for e in epochs), 1),
        "img_per_s_median": round(sorted(e["img_per_s"] for e in epochs)[len(epochs) // 2], 1) if epochs else None,
        "history": [{k: round(e[k], 4) for k in ("epoch", "train_acc", "val_acc", "val_macro_f1")} for e in epochs],
    }


def train_command(recorded: str | None, config: dict, run: Path) -> str:
    """The training command as a user types it.

    The trainer records ``sys.argv``, whose first item is the path of ``train.py`` on the machine that trained;
    the card shows ``python -m training.train`` with the recorded arguments instead. A run started some other way
    (``training.trainer.fit`` from Python, under pytest or a notebook) recorded no CLI arguments, so the card falls
    back to the preset and run folder.
    """
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
    return chain[::-1]


def _evaluate(argv: list[str]) -> dict:
    if E.main(argv) != 0:
        raise RuntimeError(f"evaluation failed: python -m training.evaluate {' '.join(argv)}")
    if "--out" in argv:
        return E.load_results(argv[argv.index("--out") + 1])
    get = dict(zip(argv[::2], argv[1::2], strict=False)).get
    limit = get("--limit")
    return E.load_results(
        E.default_out(
            get("--model"), get("--data"), get("--split"), "--tta-hflip" in argv, int(limit) if limit else None
        )
    )


def ship(
    run: Path, model: str, eval_dir: Path | None = None, card: Path | None = CARD_PATH, zeroshot: bool = True
) -> dict:
    """Copy ``run``'s best weights into the repo, evaluate them, write the sidecar (returned) and the card.

    The destination is ``core.models.weights.SHIPPED_DIR``, read at call time (tests point it elsewhere). Results
    JSONs go where ``training.evaluate`` puts them by default (``runs/eval/``) unless ``eval_dir`` is given.
    """
    from core.models import weights as W

    best = run / "best.safetensors"
    if not best.is_file():
        raise FileNotFoundError(f"{best} not found: is {run} a finished training run?")
    best_meta = json.loads((run / "best.json").read_text())
    W.SHIPPED_DIR.mkdir(parents=True, exist_ok=True)
    dest = W.SHIPPED_DIR / f"{model}.safetensors"
    atomic_write(dest, lambda tmp: shutil.copyfile(best, tmp))
    # the sidecar first holds what evaluation needs to rebuild the model (classes, overrides); scores come after
    first = {"spec": best_meta["spec"], "config": best_meta["config"]}
    atomic_write(dest.with_suffix(".json"), lambda tmp: Path(tmp).write_text(json.dumps(first, indent=2)))
    overrides = best_meta["config"].get("model_overrides") or {}
    net = create_model(model, num_classes=best_meta["spec"]["num_classes"], weights=dest, **overrides)  # or raises

    def run_eval(*extra: str) -> dict:
        argv = ["--model", model, "--data", *extra]
        if eval_dir is not None:
            argv += ["--out", str(eval_dir / E.default_out(model, extra[0], "PrivateTest").name)]
        return _evaluate([*argv[:4], "--split", "PrivateTest", *argv[4:]])

    # the acceptance commands of issue #6, verbatim: `--weights` defaults to the shipped file
    results = {
        "fer2013_private": run_eval("fer2013"),
        "fer2013_private_tta": run_eval("fer2013", "--tta-hflip"),
        "ferplus_private_8": run_eval("ferplus", "--set", "data.num_classes=8"),
    }
    sl = run_eval("fer2013", "--limit", str(SLICE_LIMIT), "--bootstrap", "0")
    if zeroshot:
        sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
        from zeroshot_samples import main as zeroshot_main

        out = (eval_dir or E.default_out(model, "x", "x").parent) / f"{model}-samples-zeroshot.json"
        if zeroshot_main(["--model", model, "--out", str(out)]) != 0:
            raise RuntimeError("zero-shot evaluation failed")
        zs = E.load_results(out)
        shown = os.path.relpath(out) if Path(out).resolve().is_relative_to(Path.cwd()) else out
        zs["meta"]["command"] = f"python bench/zeroshot_samples.py --model {model} --out {shown}"
        results["zeroshot_samples"] = zs

    chain = stages(run)
    meta = {
        "model": model,
        "spec": best_meta["spec"],
        "config": best_meta["config"],
        "params": sum(p.numel() for p in net.parameters()),
        "command": chain[-1]["command"],
        "recorded_command": best_meta.get("command"),
        "epoch": best_meta["epoch"],
        "val": best_meta["val"],
        "run": {**run_summary(run), "hardware": hardware(), "torch": torch.__version__},
        "stages": chain,
        "ship_command": f"python -m training.ship --run {run} --model {model}",
        "sha256": E.sha256_file(dest),
        "test": {k: summarize(d) for k, d in results.items()},
        "slice": {
            "split": "PrivateTest",
            "limit": SLICE_LIMIT,
            "limit_mode": "stratified",
            "accuracy": sl["metrics"]["accuracy"]["value"],
            "correct": int(round(sl["metrics"]["accuracy"]["value"] * sl["meta"]["data"]["n"])),
        },
    }
    text = json.dumps(meta, indent=2, sort_keys=True)
    atomic_write(dest.with_suffix(".json"), lambda tmp: Path(tmp).write_text(text))
    if card is not None:
        atomic_write(card, lambda tmp: Path(tmp).write_text(render_card(meta)))
    return meta


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m training.ship", description=__doc__.split("\n\n")[0])
    ap.add_argument("--run", required=True, help="a finished training run folder (holds best.safetensors)")
    ap.add_argument("--model", default="default", help="the registered model name the weights belong to")
    ap.add_argument("--eval-dir", help="where the results JSONs go (default: training.evaluate's, runs/eval/)")
    ap.add_argument("--no-card", action="store_true", help="do not rewrite docs/model-card.md")
    ap.add_argument("--no-zeroshot", action="store_true", help="skip the sample-photo zero-shot evaluation")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    eval_dir = Path(args.eval_dir) if args.eval_dir else None
    meta = ship(Path(args.run), args.model, eval_dir, None if args.no_card else CARD_PATH,
                not args.no_zeroshot)  # fmt: skip
    t = meta["test"]["fer2013_private"]
    print(f"shipped {args.model}: FER2013 PrivateTest accuracy {t['accuracy']['value']:.4f} "
          f"[{t['accuracy']['ci_low']:.4f}, {t['accuracy']['ci_high']:.4f}]")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
