"""Uniform model soup: average the selected weights of runs that started from the same weights.

    python -m training.soup --runs runs/a runs/b runs/c --out runs/soup

Fine-tunes of one starting point stay in one loss basin, so their mean is a model that is usually at least as
good as the best of them, at no inference cost (Wortsman et al., "Model soups", ICML 2022). The output folder
looks like a run (``best.safetensors``, ``best.json``) so ``training.ship`` can ship it; ``best.json`` lists the
ingredients, and its ``val`` is measured on the validation split here.
"""

from __future__ import annotations

import argparse
import json
import logging
import shlex
import sys
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from training import evaluate as E

log = logging.getLogger(__name__)


class SoupError(ValueError):
    """The runs cannot be averaged (different models, shapes or starting weights)."""


def check_ingredients(metas: list[dict], runs: list[Path]) -> None:
    """Same model, classes, preprocessing and starting weights in every run, or :class:`SoupError`."""
    first = metas[0]
    for meta, run in zip(metas[1:], runs[1:], strict=True):
        for what, a, b in (
            ("model", first["config"]["model"], meta["config"]["model"]),
            ("spec", first["spec"], meta["spec"]),
            ("init_weights", first["config"].get("init_weights"), meta["config"].get("init_weights")),
        ):
            if a != b:
                raise SoupError(f"{run} differs from {runs[0]} in {what} ({b!r} vs {a!r}); a soup needs one start")
    if not first["config"].get("init_weights"):
        raise SoupError("runs trained from scratch sit in different basins; average fine-tunes of one start only")


def average(paths: list[Path]) -> dict[str, torch.Tensor]:
    """Element-wise mean of float tensors (in float64, stored in each tensor's dtype); other tensors (BatchNorm's
    step counters) are taken from the first file."""
    states = [load_file(p) for p in paths]
    keys = set(states[0])
    for p, s in zip(paths[1:], states[1:], strict=True):
        if set(s) != keys or any(s[k].shape != states[0][k].shape for k in keys):
            raise SoupError(f"{p} does not have the tensors of {paths[0]}")
    return {
        k: (sum(s[k].double() for s in states) / len(states)).to(v.dtype) if v.is_floating_point() else v
        for k, v in states[0].items()
    }


def soup(runs: list[Path], out: Path, command: str) -> dict:
    """Write ``out/best.safetensors`` and ``out/best.json`` (returned) for the mean of ``runs``' best weights."""
    if len(runs) < 2:
        raise SoupError("a soup needs at least two runs")
    metas = [json.loads((r / "best.json").read_text()) for r in runs]
    check_ingredients(metas, runs)
    out.mkdir(parents=True, exist_ok=True)
    save_file(average([r / "best.safetensors" for r in runs]), str(out / "best.safetensors"))
    config = {**metas[0]["config"], "out_dir": str(out)}
    data = config["data"]
    val_json = out / "val.json"
    argv = ["--model", config["model"], "--weights", str(out / "best.safetensors"), "--num-classes",
            str(metas[0]["spec"]["num_classes"]), "--data", data["dataset"], "--split", data["val_split"],
            "--set", f"data.num_classes={data['num_classes']}", "--set", f"data.ferplus_rule={data['ferplus_rule']}",
            "--no-calibration", "--bootstrap", "0", "--out", str(val_json)]  # fmt: skip
    if E.main(argv) != 0:
        raise RuntimeError(f"validation failed: python -m training.evaluate {shlex.join(argv)}")
    m = E.load_results(val_json)["metrics"]
    meta = {
        "command": command,
        "config": config,
        "spec": metas[0]["spec"],
        "epoch": None,
        "soup_of": [str(r) for r in runs],
        "val": {"val_acc": m["accuracy"]["value"], "val_macro_f1": m["macro_f1"]["value"]},
    }
    (out / "best.json").write_text(json.dumps(meta, indent=2, sort_keys=True))
    return meta


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m training.soup", description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", nargs="+", required=True, help="finished run folders that share init_weights")
    ap.add_argument("--out", required=True, help="folder for the soup's best.safetensors and best.json")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    command = "python -m training.soup " + shlex.join(["--runs", *args.runs, "--out", args.out])
    try:
        meta = soup([Path(r) for r in args.runs], Path(args.out), command)
    except (SoupError, FileNotFoundError, KeyError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"soup of {len(meta['soup_of'])} runs -> {args.out}: val accuracy {meta['val']['val_acc']:.4f}, "
          f"macro-F1 {meta['val']['val_macro_f1']:.4f}")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
