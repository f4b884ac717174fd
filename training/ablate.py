"""Run an ablation ladder over seeds and report it with the statistics it needs.

    python -m training.ablate --ladder hafem_lite --seeds 0 1 2 --out runs/ablation_lite   # train, select on val
    python -m training.ablate --ladder hafem_lite --seeds 0 1 2 --out runs/ablation_lite --private-test  # once
    python -m training.ablate --rungs default default+model_overrides.cbam=true \\
        --seeds 0 1 --limit 256 --epochs 2 --out /tmp/abl model_overrides.widths=[8,16,32,64]

A rung is a preset plus optional ``+KEY=VALUE`` overrides; trailing ``KEY=VALUE`` apply to every rung. Finished
runs are skipped, so rerunning the command resumes. Checkpoints are selected on ``val``; ``--private-test``
evaluates ``test`` once, training nothing. The report compares each rung with the previous one and the first
(paired t over seeds with Bonferroni, Cohen's d_z, McNemar per seed); ``--render`` writes it to docs/ablation.md.
"""

from __future__ import annotations

import argparse
import datetime as dt
import functools
import json
import logging
import os
import re
import shlex
import sys
import time
from dataclasses import replace
from pathlib import Path

from core.models import WeightsError, create_model
from core.models.weights import SHIPPED_DIR
from training import stats as S
from training.config import LADDERS, ConfigError, apply_overrides, config_to_dict, get_preset
from training.results import ResultsSchemaError, load_results, write_results

log = logging.getLogger(__name__)

DEFAULT_LADDER = "papers"
"""The papers' ladder: ResNet-50 -> EfficientNet-B5 -> +CBAM -> +Transformer -> +compound loss."""
HIGHLIGHT_CLASSES = ("disgust", "fear")
"""The minority classes the papers say their label smoothing helps; the report shows their F1 first."""


SHIPPED_LADDER = SHIPPED_DIR / "ladder"
"""Where ``--export`` puts one seed's rung weights (fp16) and the ladder's ``ablation.json`` for the dashboard."""
LADDER_SCHEDULE = "--epochs 2 num_threads=1 loss.center_ramp_steps=449"
"""The committed ladder's schedule: 2 epochs per rung (the presets' 6 are the full one), the center weight ramped
over the first epoch, one thread per run so that two runs share the 2-core machine."""
LADDER_COMMANDS = (
    f"python -m training.ablate --ladder hafem_lite --seeds 0 1 2 --out runs/ablation_lite {LADDER_SCHEDULE}",
    f"python -m training.ablate --ladder hafem_lite --seeds 0 1 2 --out runs/ablation_lite {LADDER_SCHEDULE} "
    "--private-test",
    "python -m training.ablate --render runs/ablation_lite/ablation.json --docs docs/ablation.md",
    "python -m training.ablate --export runs/ablation_lite --to core/models/weights/ladder",
)
"""The commands that produce the committed ladder: train and evaluate it, then export its rungs."""


class MissingCheckpointError(FileNotFoundError):
    """A rung that should be trained already has no checkpoint; the message names the command that trains it."""


REPORT_METRICS = ("accuracy", "macro_f1", "weighted_f1", "roc_auc_macro", "ece")
TEST_METRICS = ("accuracy", "macro_f1")
"""Metrics tested rung against rung; Bonferroni corrects within each (metric, split) family."""


def rung_dir_name(rung: str) -> str:
    """A folder name for a rung spec: the spec with characters unsafe in paths replaced by ``_``."""
    return re.sub(r"[^A-Za-z0-9._+=-]+", "_", rung).strip("_") or "rung"


def rung_run(rung: str, seed: int, out: Path, overrides: list[str], limit: int | None, epochs: int | None):
    """The TrainConfig of one (rung, seed), trained under ``out/<rung>/seed<seed>``, and the ``python -m
    training.train`` command that trains it alone, exactly as the ladder does. Overrides apply in order: the
    global ones, the rung's own (``PRESET+KEY=VALUE``), then seed, limit and epochs."""
    preset, *own = rung.split("+")
    args = [*overrides, *own, f"seed={seed}"]
    args += [f"data.limit={limit}"] if limit else []
    args += [f"epochs={epochs}"] if epochs else []
    out_dir = str(out / rung_dir_name(rung) / f"seed{seed}")
    cfg = apply_overrides(get_preset(preset), [*args, f"out_dir={out_dir}"])
    return cfg, shlex.join(["python", "-m", "training.train", "--preset", preset, *args, "--out", out_dir])


def check_models(cfgs) -> None:
    """Build each distinct (model, overrides) once, so an unknown switch fails before any rung trains."""
    seen = set()
    for cfg in cfgs:
        key = (cfg.model, json.dumps(cfg.model_overrides, sort_keys=True), cfg.data.num_classes)
        if key in seen:
            continue
        seen.add(key)
        try:
            create_model(cfg.model, num_classes=cfg.data.num_classes, **cfg.model_overrides)
        except (TypeError, ValueError) as exc:
            raise ConfigError(
                f"rung {cfg.name!r}: {exc}; fix or drop the model_overrides.KEY=VALUE that sets it"
            ) from None


def run_one(
    rung: str,
    seed: int,
    cfg,
    splits: tuple[str, ...],
    eval_limit: int | None,
    bootstrap: int,
    command: str,
    fit_fn,
    data_cache,
    train: bool,
    train_cmd: str,
) -> dict:
    """Train one (rung, seed) unless done, then evaluate it on ``splits`` unless done; returns its record.

    Resuming is by files: ``ablation_run.json`` (with the trained config) marks finished training, the results
    JSONs finished evaluation; a finished run is reused only if its config is the same. ``data_cache(data_cfg,
    split)`` shares FaceSets across runs, so FER2013 is sliced and resized once per ladder.
    """
    from training.evaluate import evaluate_model, sha256_file

    run_dir = Path(cfg.out_dir)
    record_path = run_dir / "ablation_run.json"
    record = json.loads(record_path.read_text()) if record_path.is_file() else None
    if record is not None and record.get("config") != config_to_dict(cfg):
        raise ValueError(
            f"{run_dir} holds a run of a different config (changed overrides, --limit or --epochs?); "
            "use another --out or delete that folder"
        )
    if record is None or not Path(record["best_weights"]).is_file():
        if not train:
            raise MissingCheckpointError(
                f"rung {rung!r} seed {seed} has no trained checkpoint in {run_dir}: train the ladder first "
                f"(the same command without --private-test), or this run alone with: {train_cmd}"
            )
        if fit_fn is None:
            from training.trainer import fit as fit_fn
        resume = (run_dir / "last_state.pt").is_file()
        t0 = time.perf_counter()
        train_set, val_set = data_cache(cfg.data, cfg.data.train_split), data_cache(cfg.data, cfg.data.val_split)
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
            "command": train_cmd,
            "config": config_to_dict(cfg),
        }
        record_path.write_text(json.dumps(record, indent=2))
    else:
        log.info("%s seed %d: trained already (%s)", rung, seed, record_path)
    record["train_hours"] = train_hours(run_dir)
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
        fs = data_cache(replace(cfg.data, limit=eval_limit), split)
        d = evaluate_model(model, fs, batch_size=cfg.eval_batch_size, bootstrap=bootstrap, seed=seed, meta=meta)
        write_results(d, path)
    return record


def train_hours(run_dir: Path) -> float | None:
    """Wall-clock hours the run's epochs took (every resumed piece counted once)."""
    from training.trainer import epoch_records

    epochs = epoch_records(run_dir)
    return None if epochs is None else round(sum(float(e.get("time_s") or 0.0) for e in epochs) / 3600, 4)


# --------------------------------------------------------------------------------------------- report
def _correct_by_id(d: dict) -> dict[int, bool]:
    pr = d["predictions"]
    return {i: t == p for i, t, p in zip(pr["id"], pr["true"], pr["pred"], strict=True)}


def comparison_pairs(rungs: list[str]) -> list[tuple[str, str]]:
    """``(baseline, rung)`` pairs tested: each rung against the one before it, and against the first (the trunk)."""
    pairs = list(zip(rungs, rungs[1:], strict=False))
    return pairs + [(rungs[0], r) for r in rungs[2:]]


def _per_class_f1(per_seed: dict, split: str) -> dict:
    """Per-class F1 over seeds: ``{class: {mean, std, values}}`` from the results JSONs' ``per_class``."""
    by_class: dict[str, list[float]] = {}
    for s in sorted(per_seed):
        for c in per_seed[s][split].get("per_class", []):
            if c.get("f1") is not None:
                by_class.setdefault(c["name"], []).append(c["f1"])
    out = {}
    for name, vals in by_class.items():
        mean, sd, _, _ = S.t_interval(vals)
        out[name] = {"mean": mean, "std": sd, "values": vals}
    return out


def aggregate(results: dict[str, dict[int, dict[str, dict]]], rungs: list[str], splits: tuple[str, ...]) -> dict:
    """Summary statistics and rung-vs-baseline tests from ``results[rung][seed][split]`` (results JSONs)."""
    summary = []
    for rung in rungs:
        per_seed = results.get(rung, {})
        row = {"rung": rung, "seeds": sorted(per_seed), "splits": {}, "per_class_f1": {}}
        for split in splits:
            cell = {}
            for metric in REPORT_METRICS:
                ms = [per_seed[s][split]["metrics"][metric] for s in sorted(per_seed)]
                vals = [m["value"] for m in ms if m["value"] is not None]
                mean, sd, lo, hi = S.t_interval(vals)
                boot = [[m.get("ci_low"), m.get("ci_high")] for m in ms]
                cell[metric] = {"mean": mean, "std": sd, "ci_low": lo, "ci_high": hi, "values": vals, "bootstrap": boot}
            row["splits"][split] = cell
            row["per_class_f1"][split] = _per_class_f1(per_seed, split)
        summary.append(row)
    comparisons = []
    for split in splits:
        for metric in TEST_METRICS:
            family = []
            for prev, cur in comparison_pairs(list(rungs)):
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
                    ca, cb, per_seed = [], [], []
                    for s in seeds:  # per-image correctness, images matched by id
                        ra, rb = _correct_by_id(results[cur][s][split]), _correct_by_id(results[prev][s][split])
                        common = sorted(set(ra) & set(rb))
                        sa, sb = [ra[i] for i in common], [rb[i] for i in common]
                        per_seed.append({"seed": s, **S.mcnemar(sa, sb).to_dict()} if common else None)
                        ca += sa
                        cb += sb
                    entry["mcnemar_per_seed"] = per_seed
                    entry["mcnemar_pooled"] = S.mcnemar(ca, cb).to_dict() if ca else None
                family.append(entry)
            for entry, p_adj in zip(family, S.bonferroni([e["p_value"] for e in family]), strict=True):
                entry["p_bonferroni"] = p_adj
            comparisons += family
    # NaN and infinities (undefined statistics, e.g. a t-test on one seed) become None
    return json.loads(json.dumps({"summary": summary, "comparisons": comparisons}), parse_constant=lambda _: None)


def _pm(cell: dict) -> str:
    if cell["mean"] is None or cell["std"] is None:
        return _pct(cell["mean"])
    return f"{_pct(cell['mean'])} ± {_pct(cell['std'])} [{_pct(cell['ci_low'])}, {_pct(cell['ci_high'])}]"


def _p(x) -> str:
    return "n/a" if x is None else f"{x:.3g}"


def _compare_cells(comp: dict, rung: str, vs: str | None, split: str) -> str:
    f1, acc = comp.get((rung, vs, split, "macro_f1")), comp.get((rung, vs, split, "accuracy"))
    if not f1 or not acc or f1["mean_diff"] is None:
        return "— | — | — | — | — | —"
    return (
        f"{100 * f1['mean_diff']:+.2f} | {_p(f1['p_bonferroni'])} | {_p(f1['cohens_dz'])} | "
        f"{100 * acc['mean_diff']:+.2f} | {_p(acc['p_bonferroni'])} | {_mcnemar_cell(acc)}"
    )


def _pct(x, digits: int = 2) -> str:
    return "n/a" if x is None else f"{100 * x:.{digits}f}"


def _mcnemar_cell(acc: dict) -> str:
    per_seed = [m for m in acc.get("mcnemar_per_seed") or [] if m]
    if per_seed:
        return ", ".join(_p(m["p_value"]) for m in per_seed)
    return _p((acc.get("mcnemar_pooled") or {}).get("p_value")) + " (pooled)"


def markdown(report: dict) -> str:
    """The ablation report as markdown: scores per split, tests, per-class F1, per-seed CIs, runs and cost."""
    meta = report["meta"]
    lines = [
        "# Ablation",
        "",
        f"Generated from `ablation.json` by `python -m training.ablate --render`; do not edit by hand. Seeds "
        f"{meta['seeds']}; training limit {meta['limit']}; evaluation limit {meta['eval_limit']}; epochs "
        f"{meta['epochs']}; overrides {meta['overrides']}.",
        f"Command: `{meta['command']}`  ",
        f"Code: {meta['git_commit']}; date {meta['date']}.",
        "",
        "Cells: mean ± std over seeds [95 % t-interval], in percent. Δ, p_adj and d_z compare each rung "
        "with the one above it on the same seeds: paired t-test over seeds, Bonferroni-corrected over the "
        "ladder's comparisons; d_z = mean difference / std of the differences. McNemar: one p per seed (the "
        "images of one split are independent; pooling seeds would count each image several times).",
    ]
    comp = {(c["rung"], c["vs"], c["split"], c["metric"]): c for c in report["comparisons"]}
    prev = {r["rung"]: p["rung"] for p, r in zip(report["summary"], report["summary"][1:], strict=False)}
    head = "| rung | accuracy | macro-F1 | ECE | Δ F1 | p_adj F1 | d_z F1 | Δ acc | p_adj acc | McNemar p |"
    for split in meta["splits"]:
        lines += ["", f"## {split}", "", head, "|---" * 10 + "|"]
        for row in report["summary"]:
            cell = row["splits"][split]
            scores = f"{_pm(cell['accuracy'])} | {_pm(cell['macro_f1'])} | {_pm(cell['ece'])}"
            tests = _compare_cells(comp, row["rung"], prev.get(row["rung"]), split)
            lines.append(f"| `{row['rung']}` | {scores} | {tests} |")
        first = report["summary"][0]["rung"] if report["summary"] else None
        vs_first = [r["rung"] for r in report["summary"][2:] if (r["rung"], first, split, "macro_f1") in comp]
        if vs_first:
            lines += ["", f"Against the first rung (`{first}`), same tests and corrections:", "", head]
            lines.append("|---" * 10 + "|")
            for rung in vs_first:
                lines.append(f"| `{rung}` | | | | {_compare_cells(comp, rung, first, split)} |")
        per_class = {r["rung"]: (r.get("per_class_f1") or {}).get(split) or {} for r in report["summary"]}
        names = list(next((pc for pc in per_class.values() if pc), {}))
        if names:
            ordered = [n for n in HIGHLIGHT_CLASSES if n in names] + [n for n in names if n not in HIGHLIGHT_CLASSES]
            lines += [
                "",
                f"Per-class F1 on {split} (mean ± std over seeds, percent; **disgust** and **fear** first: the "
                "minority classes the papers' label smoothing is said to help):",
                "",
                "| rung | " + " | ".join(f"**{n}**" if n in HIGHLIGHT_CLASSES else n for n in ordered) + " |",
                "|---" * (len(ordered) + 1) + "|",
            ]
            for rung, pc in per_class.items():
                cells = [
                    "n/a" if n not in pc else f"{_pct(pc[n]['mean'], 1)} ± {_pct(pc[n]['std'], 1)}" for n in ordered
                ]
                lines.append(f"| `{rung}` | " + " | ".join(cells) + " |")
        boot_rows = []
        for row in report["summary"]:
            acc, f1 = row["splits"][split]["accuracy"], row["splits"][split]["macro_f1"]
            cols = (row["seeds"], acc["values"], acc.get("bootstrap") or [], f1["values"], f1.get("bootstrap") or [])
            for s, a, ab, f, fb in zip(*cols, strict=False):  # values has no more entries than seeds
                boot_rows.append(
                    f"| `{row['rung']}` | {s} | {_pct(a)} [{_pct(ab[0])}, {_pct(ab[1])}] | "
                    f"{_pct(f)} [{_pct(fb[0])}, {_pct(fb[1])}] |"
                )
        if boot_rows:
            lines += [
                "",
                f"Each seed on {split} with its 95 % bootstrap CI over images:",
                "",
                "| rung | seed | accuracy [CI] | macro-F1 [CI] |",
                "|---" * 4 + "|",
                *boot_rows,
            ]
    runs = report.get("runs", [])
    if runs:
        hours = [r.get("train_hours") for r in runs]
        total = sum(h for h in hours if h)
        lines += [
            "",
            "## Runs",
            "",
            f"Training time: {total:.2f} wall-clock hours in all on {meta.get('cpu_count', '?')} CPU cores "
            "(sum of the epochs' times in each run's metrics.jsonl). Each command trains that run alone.",
            "",
            "| rung | seed | best epoch | best val macro-F1 | train hours | command |",
            "|---" * 6 + "|",
        ]
        for r in runs:
            f1 = 100 * r["best_val_macro_f1"]
            h = r.get("train_hours")
            lines.append(
                f"| `{r['rung']}` | {r['seed']} | {r['best_epoch']} | {f1:.2f} | {'n/a' if h is None else h} | "
                f"`{r.get('command', '')}` |"
            )
    return "\n".join(lines) + "\n"


def render(report_path: str | Path, docs: str | Path) -> Path:
    """Write the markdown of an ``ablation.json`` to ``docs`` (e.g. docs/ablation.md)."""
    report = json.loads(Path(report_path).read_text(encoding="utf-8"))
    docs = Path(docs)
    docs.parent.mkdir(parents=True, exist_ok=True)
    docs.write_text(markdown(report))
    return docs


def export_rungs(out: str | Path, dest: str | Path = SHIPPED_LADDER, seed: int | None = None) -> list[Path]:
    """Copy one seed's best weights of every rung (as fp16, ``<rung>.safetensors`` + sidecar) and the report.

    For the dashboard's "retrained rungs"; fp16 halves their size and the engine casts back to fp32 on load.
    ``seed`` defaults to the report's first seed.
    """
    import torch
    from safetensors.torch import save_file

    from core.models.weights import atomic_write, read_meta, read_state_dict

    out, dest = Path(out), Path(dest)
    report_path = out / "ablation.json"
    if not report_path.is_file():
        raise FileNotFoundError(f"no ablation.json in {out}: run the ladder first ({LADDER_COMMANDS[0]})")
    report = json.loads(report_path.read_text())
    seed = report["meta"]["seeds"][0] if seed is None else seed
    runs = [r for r in report["runs"] if r["seed"] == seed]
    if not runs:
        raise ValueError(f"seed {seed} is not in {report_path}; it has seeds {report['meta']['seeds']}")
    dest.mkdir(parents=True, exist_ok=True)
    written = []
    for run in runs:
        weights = Path(run["best_weights"])
        if not weights.is_file():
            raise MissingCheckpointError(
                f"rung {run['rung']!r} seed {seed}: {weights} is missing; train it with: {run.get('command')}"
            )
        state = {
            k: (v.half() if v.is_floating_point() else v).contiguous() for k, v in read_state_dict(weights).items()
        }
        target = dest / f"{rung_dir_name(run['rung'])}.safetensors"
        atomic_write(target, lambda tmp, st=state: save_file(st, tmp))
        meta = {**read_meta(weights), "ablation": {"rung": run["rung"], "seed": seed, "dtype": str(torch.float16)}}
        text = json.dumps(meta, indent=2, sort_keys=True, default=str)
        atomic_write(target.with_suffix(".json"), lambda tmp, t=text: Path(tmp).write_text(t))
        written.append(target)
    (dest / "ablation.json").write_text(report_path.read_text())
    return written


def run_ablation(
    rungs: list[str],
    seeds: list[int],
    out: str | Path,
    overrides: list[str] = (),
    limit: int | None = None,
    epochs: int | None = None,
    eval_limit: int | None = None,
    splits: tuple[str, ...] = ("val",),
    bootstrap: int = 1000,
    command: str | None = None,
    fit_fn=None,
    train: bool = True,
) -> dict:
    """Train and evaluate every (rung, seed), then write ``ablation.json`` and ``ablation.md`` under ``out``.

    ``limit`` slices the training data (``data.limit``); ``eval_limit`` the evaluated splits (default: the
    same as ``limit``, so a tiny run stays tiny). ``train=False`` only evaluates (the PrivateTest pass) and raises
    :class:`MissingCheckpointError` for a run that has no checkpoint. Returns the report dict.
    """
    if len(set(rungs)) != len(rungs):
        raise ValueError(f"rungs must be distinct, got {rungs}")
    if len(rungs) < 1 or len(seeds) < 1:
        raise ValueError("need at least one rung and one seed")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    eval_limit = limit if eval_limit is None else eval_limit
    # Validate every config before training anything: a typo in rung 5 should not cost rungs 1-4.
    planned = {(r, s): rung_run(r, s, out, list(overrides), limit, epochs) for r in rungs for s in seeds}
    check_models(cfg for cfg, _ in planned.values())
    from training.datasets import load_split
    from training.evaluate import _git_commit

    data_cache = functools.cache(load_split)  # each (data config, split) is loaded once per ladder

    runs, results = [], {}
    for rung in rungs:
        for seed in seeds:
            log.info("ablation: %s seed %d", rung, seed)
            cfg, cmd = planned[rung, seed]
            runs.append(
                run_one(rung, seed, cfg, splits, eval_limit, bootstrap, command or "", fit_fn, data_cache, train, cmd)
            )
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
            "cpu_count": os.cpu_count(),
        },
        "runs": runs,
        **aggregate(results, list(rungs), tuple(splits)),
    }
    (out / "ablation.json").write_text(json.dumps(report, indent=2, allow_nan=False))
    (out / "ablation.md").write_text(markdown(report))
    return report


def main(argv: list[str] | None = None) -> int:
    from training.datasets import DatasetError

    argv = list(sys.argv[1:] if argv is None else argv)
    ap = argparse.ArgumentParser(
        prog="python -m training.ablate",
        description="Train and evaluate an ablation ladder over seeds; write ablation.json and ablation.md. "
        "Re-running the same command skips finished runs and resumes a half-trained one.",
    )
    ap.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="config overrides for every rung")
    which = ap.add_mutually_exclusive_group()
    which.add_argument("--ladder", help=f"a named ladder: {', '.join(LADDERS)} (default: {DEFAULT_LADDER})")
    which.add_argument("--rungs", nargs="+", help="presets in ladder order, each optionally PRESET+KEY=VALUE+...")
    which.add_argument("--render", metavar="ABLATION_JSON", help="only write the markdown of this report to --docs")
    which.add_argument("--export", metavar="OUT", help="copy one seed's rung weights (fp16) and the report to --to")
    ap.add_argument("--docs", help="with --render: the markdown file to write (e.g. docs/ablation.md)")
    ap.add_argument("--to", default=str(SHIPPED_LADDER), help="with --export: destination folder")
    ap.add_argument("--export-seed", type=int, help="with --export: the seed to export (default: the first)")
    ap.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    ap.add_argument("--out", default="runs/ablation")
    ap.add_argument("--limit", type=int, help="training rows per split (tiny mode)")
    ap.add_argument("--eval-limit", type=int, help="evaluated rows per split (default: --limit)")
    ap.add_argument("--epochs", type=int, help="override every rung's epochs")
    ap.add_argument(
        "--private-test",
        action="store_true",
        help="also evaluate the test split (FER2013 PrivateTest), once, at the end; trains nothing",
    )
    ap.add_argument("--bootstrap", type=int, default=1000)
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    if args.render:
        if not args.docs:
            ap.error("--render needs --docs FILE.md")
        try:
            path = render(args.render, args.docs)
        except (OSError, json.JSONDecodeError, KeyError, TypeError) as exc:
            print(f"error: {args.render} is not an ablation.json of training.ablate ({exc})", file=sys.stderr)
            return 2
        print(f"wrote {path}")
        return 0
    if args.export:
        try:
            paths = export_rungs(args.export, args.to, args.export_seed)
        except (OSError, ValueError, KeyError) as exc:
            print(f"error: {type(exc).__name__}: {exc}", file=sys.stderr)
            return 2
        print(f"wrote {len(paths)} rung weights and ablation.json to {args.to}")
        return 0
    ladder = args.ladder or (None if args.rungs else DEFAULT_LADDER)
    if ladder is not None and ladder not in LADDERS:
        print(f"error: unknown ladder {ladder!r}; choose one of {sorted(LADDERS)}", file=sys.stderr)
        return 2
    rungs = list(LADDERS[ladder]) if ladder else args.rungs
    command = shlex.join(["python", "-m", "training.ablate", *argv])
    splits = ("val", "test") if args.private_test else ("val",)
    try:
        report = run_ablation(
            rungs,
            args.seeds,
            args.out,
            args.overrides,
            args.limit,
            args.epochs,
            args.eval_limit,
            splits,
            args.bootstrap,
            command,
            train=not args.private_test,
        )
    except (ConfigError, DatasetError, WeightsError, ValueError, FileNotFoundError) as exc:
        print(f"error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 2
    print(markdown(report))
    print(f"wrote {Path(args.out) / 'ablation.json'} and {Path(args.out) / 'ablation.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
