"""Run an ablation ladder over seeds and report it with the statistics it needs.

    python -m training.ablate --seeds 0 1 2 --out runs/ablation                 # the five ladder_* presets

Each rung is a preset plus optional ``+KEY=VALUE`` overrides; finished (rung, seed) results are skipped, so
rerunning resumes. The report gives mean ± std with t-intervals per rung and, against the previous rung, a
paired t-test (Bonferroni), Cohen's d_z and McNemar on the pooled predictions.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import re
import shlex
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from training import stats as S
from training.results import ResultsSchemaError, load_results, write_results

log = logging.getLogger(__name__)

DEFAULT_RUNGS = ("ladder_resnet50", "ladder_effnet_b5", "ladder_cbam", "ladder_transformer", "ladder_full")
"""The papers' ladder: ResNet-50 -> EfficientNet-B5 -> +CBAM -> +Transformer -> +compound loss."""

REPORT_METRICS = ("accuracy", "macro_f1", "weighted_f1", "roc_auc_macro", "ece")
TEST_METRICS = ("accuracy", "macro_f1")
"""Metrics tested rung against rung; Bonferroni corrects within each (metric, split) family."""


def rung_dir_name(rung: str) -> str:
    """A folder name for a rung spec: the spec with characters unsafe in paths replaced by ``_``."""
    return re.sub(r"[^A-Za-z0-9._+=-]+", "_", rung).strip("_") or "rung"


def rung_config(rung: str, seed: int, out: Path, overrides: list[str], limit: int | None, epochs: int | None):
    """The TrainConfig of one (rung, seed): preset, global overrides, the rung's own, seed/limit/epochs."""
    from training.config import apply_overrides, get_preset

    preset, *own = rung.split("+")
    cfg = get_preset(preset)
    extra = [f"seed={seed}", f"out_dir={out / rung_dir_name(rung) / f'seed{seed}'}"]
    extra += [f"data.limit={limit}"] if limit else []
    extra += [f"epochs={epochs}"] if epochs else []
    return apply_overrides(cfg, [*overrides, *own, *extra])


def run_one(
    rung: str,
    seed: int,
    cfg,
    splits: tuple[str, ...],
    eval_limit: int | None,
    bootstrap: int,
    command: str,
    fit_fn=None,
    data_cache=None,
) -> dict:
    """Train one (rung, seed) unless done, then evaluate it on ``splits`` unless done; returns its record.

    Resuming is by files: ``ablation_run.json`` is written once training has finished (with the config it
    trained), the results JSONs once evaluated. A finished run is reused only if its config is the very same;
    a run killed mid-training resumes from its last checkpoint. ``fit_fn`` defaults to
    :func:`training.trainer.fit` (tests pass a stand-in); ``data_cache(data_cfg, split)`` returns a FaceSet
    shared across runs, so FER2013 is sliced and resized once per ladder rather than once per run.
    """
    from core.models import create_model
    from training.config import config_to_dict
    from training.datasets import load_split
    from training.evaluate import evaluate_model, sha256_file

    run_dir = Path(cfg.out_dir)
    record_path = run_dir / "ablation_run.json"
    load = data_cache or load_split
    record = json.loads(record_path.read_text()) if record_path.is_file() else None
    if record is not None and record.get("config") != config_to_dict(cfg):
        raise ValueError(
            f"{run_dir} holds a run of a different config (changed overrides, --limit or --epochs?); "
            "use another --out or delete that folder"
        )
    if record is None or not Path(record["best_weights"]).is_file():
        if fit_fn is None:
            from training.trainer import fit as fit_fn
        resume = (run_dir / "last_state.pt").is_file()
        t0 = time.perf_counter()
        train_set, val_set = load(cfg.data, cfg.data.train_split), load(cfg.data, cfg.data.val_split)
        result = fit_fn(cfg, resume=resume, command=command, train_set=train_set, val_set=val_set)
        record = {
            "rung": rung,
            "seed": seed,
            "model": cfg.model,
            "dir": str(run_dir),
            "best_weights": str(result.best_weights),
            "best_epoch": int(result.best_epoch),
            "best_val_macro_f1": float(result.best_val_macro_f1),
            "fit_s": round(time.perf_counter() - t0, 1),
            "resumed": resume,
            "config": config_to_dict(cfg),
        }
        record_path.write_text(json.dumps(record, indent=2))
    else:
        log.info("%s seed %d: trained already (%s)", rung, seed, record_path)
    model = None
    for split in splits:
        path = run_dir / f"{split}.json"
        if path.is_file():
            try:
                load_results(path)
                continue
            except ResultsSchemaError as exc:
                log.warning("re-evaluating %s: %s", path, exc)
        if model is None:
            weights = Path(record["best_weights"])
            model = create_model(cfg.model, num_classes=cfg.data.num_classes, weights=weights, **cfg.model_overrides)
            meta = {
                "weights": str(weights),
                "weights_sha256": sha256_file(weights),
                "command": command,
                "rung": rung,
                "seed": seed,
                "data": {"limit": eval_limit},
            }
        fs = load(replace(cfg.data, limit=eval_limit), split)
        d = evaluate_model(model, fs, batch_size=cfg.eval_batch_size, bootstrap=bootstrap, seed=seed, meta=meta)
        write_results(d, path)
    return record


# --------------------------------------------------------------------------------------------- report
def _correct_by_id(d: dict) -> dict[int, bool]:
    pr = d["predictions"]
    return {i: t == p for i, t, p in zip(pr["id"], pr["true"], pr["pred"], strict=True)}


def _nan_to_none(x):
    if isinstance(x, float) and not np.isfinite(x):
        return None
    if isinstance(x, dict):
        return {k: _nan_to_none(v) for k, v in x.items()}
    if isinstance(x, list):
        return [_nan_to_none(v) for v in x]
    return x


def aggregate(results: dict[str, dict[int, dict[str, dict]]], rungs: list[str], splits: tuple[str, ...]) -> dict:
    """Summary statistics and rung-vs-previous tests from ``results[rung][seed][split]`` (results JSONs)."""
    summary = []
    for rung in rungs:
        per_seed = results.get(rung, {})
        row = {"rung": rung, "seeds": sorted(per_seed), "splits": {}}
        for split in splits:
            cell = {}
            for metric in REPORT_METRICS:
                vals = [per_seed[s][split]["metrics"][metric]["value"] for s in sorted(per_seed)]
                vals = [v for v in vals if v is not None]
                mean, sd, lo, hi = S.t_interval(vals)
                cell[metric] = {"mean": mean, "std": sd, "ci_low": lo, "ci_high": hi, "values": vals}
            row["splits"][split] = cell
        summary.append(row)
    comparisons = []
    for split in splits:
        for metric in TEST_METRICS:
            family = []
            for prev, cur in zip(rungs, rungs[1:], strict=False):
                seeds = sorted(set(results.get(prev, {})) & set(results.get(cur, {})))
                a = [results[cur][s][split]["metrics"][metric]["value"] for s in seeds]
                b = [results[prev][s][split]["metrics"][metric]["value"] for s in seeds]
                ok = [i for i, (x, y) in enumerate(zip(a, b, strict=True)) if x is not None and y is not None]
                t = S.paired_ttest([a[i] for i in ok], [b[i] for i in ok])
                entry = {
                    "rung": cur,
                    "vs": prev,
                    "split": split,
                    "metric": metric,
                    "seeds": seeds,
                    **t.to_dict(),
                }
                if metric == "accuracy":
                    ca, cb = [], []
                    for s in seeds:  # pool per-image correctness over seeds, images matched by id
                        ra, rb = (
                            _correct_by_id(results[cur][s][split]),
                            _correct_by_id(results[prev][s][split]),
                        )
                        common = sorted(set(ra) & set(rb))
                        ca += [ra[i] for i in common]
                        cb += [rb[i] for i in common]
                    entry["mcnemar_pooled"] = S.mcnemar(ca, cb).to_dict() if ca else None
                family.append(entry)
            for entry, p_adj in zip(family, S.bonferroni([e["p_value"] for e in family]), strict=True):
                entry["p_bonferroni"] = p_adj
            comparisons += family
    return _nan_to_none({"summary": summary, "comparisons": comparisons})


def _pm(cell: dict) -> str:
    if cell["mean"] is None:
        return "n/a"
    if cell["std"] is None:
        return f"{100 * cell['mean']:.2f}"
    return (
        f"{100 * cell['mean']:.2f} ± {100 * cell['std']:.2f} [{100 * cell['ci_low']:.2f}, {100 * cell['ci_high']:.2f}]"
    )


def _p(x) -> str:
    return "n/a" if x is None else f"{x:.3g}"


def _compare_cells(f1: dict | None, acc: dict | None) -> str:
    if not f1 or not acc or f1["mean_diff"] is None:
        return "— | — | — | — | — | —"
    mc = acc.get("mcnemar_pooled") or {}
    return (
        f"{100 * f1['mean_diff']:+.2f} | {_p(f1['p_bonferroni'])} | {_p(f1['cohens_dz'])} | "
        f"{100 * acc['mean_diff']:+.2f} | {_p(acc['p_bonferroni'])} | "
        f"{_p(mc.get('p_value'))} {mc.get('method', '')}"
    )


def markdown(report: dict) -> str:
    """The ablation table as markdown: one table per split, metrics in percent."""
    meta = report["meta"]
    lines = [
        "# Ablation",
        "",
        f"Seeds {meta['seeds']}; training limit {meta['limit']}; evaluation limit {meta['eval_limit']}; "
        f"epochs {meta['epochs']}; overrides {meta['overrides']}.",
        f"Command: `{meta['command']}`  ",
        f"Code: {meta['git_commit']}; date {meta['date']}.",
        "",
        "Cells: mean ± std over seeds [95 % t-interval], in percent. Δ, p_adj and d_z compare each rung "
        "with the one above it on the same seeds: paired t-test over seeds, Bonferroni-corrected over the "
        "ladder's comparisons; d_z = mean difference / std of the differences. McNemar: per-image "
        "correctness pooled over seeds.",
    ]
    comp = {(c["rung"], c["split"], c["metric"]): c for c in report["comparisons"]}
    head = "| rung | accuracy | macro-F1 | ECE | Δ F1 | p_adj F1 | d_z F1 | Δ acc | p_adj acc | McNemar p |"
    for split in meta["splits"]:
        lines += ["", f"## {split}", "", head, "|---" * 10 + "|"]
        for row in report["summary"]:
            cell = row["splits"][split]
            key = (row["rung"], split)
            scores = f"{_pm(cell['accuracy'])} | {_pm(cell['macro_f1'])} | {_pm(cell['ece'])}"
            tests = _compare_cells(comp.get((*key, "macro_f1")), comp.get((*key, "accuracy")))
            lines.append(f"| `{row['rung']}` | {scores} | {tests} |")
    runs = report.get("runs", [])
    if runs:
        lines += [
            "",
            "## Runs",
            "",
            "| rung | seed | best epoch | best val macro-F1 | fit s |",
            "|---" * 5 + "|",
        ]
        for r in runs:
            f1 = 100 * r["best_val_macro_f1"]
            lines.append(f"| `{r['rung']}` | {r['seed']} | {r['best_epoch']} | {f1:.2f} | {r['fit_s']} |")
    return "\n".join(lines) + "\n"


def _git_commit() -> str | None:
    from training.evaluate import _git_commit as git

    return git()


def run_ablation(
    rungs: list[str],
    seeds: list[int],
    out: str | Path,
    overrides: list[str] = (),
    limit: int | None = None,
    epochs: int | None = None,
    eval_limit: int | None = None,
    splits: tuple[str, ...] = ("val", "test"),
    bootstrap: int = 1000,
    command: str | None = None,
    fit_fn=None,
) -> dict:
    """Train and evaluate every (rung, seed), then write ``ablation.json`` and ``ablation.md`` under ``out``.

    ``limit`` slices the training data (``data.limit``); ``eval_limit`` the evaluated splits (default: the
    same as ``limit``, so a tiny run stays tiny). Returns the report dict.
    """
    if len(set(rungs)) != len(rungs):
        raise ValueError(f"rungs must be distinct, got {rungs}")
    if len(rungs) < 1 or len(seeds) < 1:
        raise ValueError("need at least one rung and one seed")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    eval_limit = limit if eval_limit is None else eval_limit
    # Validate every config before training anything: a typo in rung 5 should not cost rungs 1-4.
    cfgs = {(r, s): rung_config(r, s, out, list(overrides), limit, epochs) for r in rungs for s in seeds}
    from training.datasets import load_split

    facesets: dict = {}

    def data_cache(data, split):
        if (data, split) not in facesets:
            facesets[data, split] = load_split(data, split)
        return facesets[data, split]

    runs, results = [], {}
    for rung in rungs:
        for seed in seeds:
            log.info("ablation: %s seed %d", rung, seed)
            cfg = cfgs[rung, seed]
            runs.append(run_one(rung, seed, cfg, splits, eval_limit, bootstrap, command or "", fit_fn, data_cache))
            run_dir = Path(cfg.out_dir)
            results.setdefault(rung, {})[seed] = {s: load_results(run_dir / f"{s}.json") for s in splits}
    report = {
        "meta": {
            "rungs": list(rungs),
            "seeds": list(seeds),
            "splits": list(splits),
            "overrides": list(overrides),
            "limit": limit,
            "eval_limit": eval_limit,
            "epochs": epochs,
            "bootstrap": bootstrap,
            "command": command,
            "git_commit": _git_commit(),
            "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        },
        "runs": runs,
        **aggregate(results, list(rungs), tuple(splits)),
    }
    (out / "ablation.json").write_text(json.dumps(report, indent=2, allow_nan=False))
    (out / "ablation.md").write_text(markdown(report))
    return report


def main(argv: list[str] | None = None) -> int:
    from core.models import WeightsError
    from training.config import ConfigError
    from training.datasets import DatasetError

    argv = list(sys.argv[1:] if argv is None else argv)
    ap = argparse.ArgumentParser(
        prog="python -m training.ablate",
        description="Train and evaluate an ablation ladder over seeds; write ablation.json and ablation.md. "
        "Re-running the same command skips finished runs.",
    )
    ap.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="config overrides for every rung")
    ap.add_argument(
        "--rungs",
        nargs="+",
        default=list(DEFAULT_RUNGS),
        help="presets in ladder order, each optionally PRESET+KEY=VALUE+... (default: the ladder_* presets)",
    )
    ap.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    ap.add_argument("--out", default="runs/ablation")
    ap.add_argument("--limit", type=int, help="training rows per split (tiny mode)")
    ap.add_argument("--eval-limit", type=int, help="evaluated rows per split (default: --limit)")
    ap.add_argument("--epochs", type=int, help="override every rung's epochs")
    ap.add_argument("--splits", nargs="+", default=["val", "test"])
    ap.add_argument("--bootstrap", type=int, default=1000)
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    command = " ".join(shlex.quote(a) for a in ["python", "-m", "training.ablate", *argv])
    try:
        report = run_ablation(
            args.rungs,
            args.seeds,
            args.out,
            args.overrides,
            args.limit,
            args.epochs,
            args.eval_limit,
            tuple(args.splits),
            args.bootstrap,
            command,
        )
    except (ConfigError, DatasetError, WeightsError, ValueError, FileNotFoundError) as exc:
        print(f"error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 2
    print(markdown(report))
    print(f"wrote {Path(args.out) / 'ablation.json'} and {Path(args.out) / 'ablation.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
