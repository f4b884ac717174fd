"""Hyper-parameter search with Optuna's TPE sampler; the objective is the best validation macro-F1 of ``fit()``.

    python -m training.search --preset default --trials 30 --out runs/search

The study lives in an RDB (``sqlite:///<out>/study.db`` or any SQLAlchemy URL, for several machines); rerunning
resumes it, and trials whose worker died are retried once. The search space is listed in docs/training.md.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import shlex
import sys
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

PARAM_GROUPS = ("lr", "wd", "loss", "dropout", "augment")
CENTER_LOW = 1e-3
"""Smallest lambda_center searched: a log scale cannot reach 0, and below this the term is numerically off."""


@dataclass(frozen=True)
class Dim:
    """One searched dimension: the config key it overrides, its range and whether it is log-scaled."""

    key: str
    low: float
    high: float
    log: bool = False


def search_space(cfg, groups: tuple[str, ...] = PARAM_GROUPS) -> list[Dim]:
    """The dimensions searched for ``cfg`` (a TrainConfig): depends on its loss and on its model's dropouts."""
    unknown = sorted(set(groups) - set(PARAM_GROUPS))
    if unknown:
        raise ValueError(f"unknown parameter group(s) {unknown}; choose from {list(PARAM_GROUPS)}")
    dims: list[Dim] = []
    if "lr" in groups:
        dims.append(Dim("optim.lr", 1e-4, 3e-3, log=True))
    if "wd" in groups:
        dims.append(Dim("optim.weight_decay", 1e-6, 1e-2, log=True))
    if "loss" in groups:
        dims += {
            "compound": [Dim("loss.w_center", CENTER_LOW, 0.5, log=True), Dim("loss.w_dls", 0.0, 0.3)],
            "ce": [Dim("loss.label_smoothing", 0.0, 0.2)],
            "dls": [Dim("loss.smoothing", 0.0, 0.3)],
        }.get(cfg.loss.name, [])
    if "dropout" in groups:
        from core.models import create_model

        model_cfg = create_model(cfg.model, num_classes=cfg.data.num_classes, **cfg.model_overrides).spec.config
        for key, value in sorted(model_cfg.items()):
            if "drop" in key and isinstance(value, float):
                dims.append(Dim(f"model_overrides.{key}", 0.0, 0.5))
    if "augment" in groups:
        dims.append(Dim("augment.strength", 0.0, 1.5))
    return dims


def suggest_overrides(trial, dims: list[Dim]) -> list[str]:
    """Ask the trial for every dimension and turn the answers into ``key=value`` overrides."""
    params = {d.key: trial.suggest_float(d.key, d.low, d.high, log=d.log) for d in dims}
    out = [f"{k}={v!r}" for k, v in params.items()]
    if "loss.w_center" in params:  # the compound weights sum to 1: CE takes what the other two leave
        out.append(f"loss.w_ce={1.0 - params['loss.w_center'] - params.get('loss.w_dls', 0.0)!r}")
    return out


def _redact(url: str) -> str:
    """The storage URL without its password, for files and logs."""
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


def make_storage(url: str):
    """An RDB storage with heartbeats, so a trial whose worker died is marked failed and retried once."""
    import optuna
    from optuna.storages import RDBStorage, RetryHeartbeatStaleTrialCallback

    if url.startswith("sqlite:///"):
        Path(url[len("sqlite:///") :]).parent.mkdir(parents=True, exist_ok=True)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    with warnings.catch_warnings():  # heartbeats are flagged "experimental" since Optuna 2.8; we rely on them
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return RDBStorage(
            url,
            heartbeat_interval=60,
            grace_period=180,
            heartbeat_stale_trial_callback=RetryHeartbeatStaleTrialCallback(max_retry=1),
        )


def run_search(
    preset: str,
    trials: int,
    out: str | Path,
    overrides: list[str] = (),
    limit: int | None = None,
    epochs: int | None = None,
    storage: str | None = None,
    study_name: str | None = None,
    groups: tuple[str, ...] = PARAM_GROUPS,
    seed: int = 0,
    pruner: str = "median",
    timeout: float | None = None,
    fit_fn: Callable | None = None,
    command: str | None = None,
) -> dict:
    """Run (or resume) the study until it holds ``trials`` finished trials; write and return the best params."""
    import optuna

    from training.config import apply_overrides, get_preset
    from training.datasets import load_split

    if fit_fn is None:
        from training.trainer import fit as fit_fn
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    extra = [f"data.limit={limit}"] if limit else []
    extra += [f"epochs={epochs}"] if epochs else []
    base = apply_overrides(get_preset(preset), [*overrides, *extra])
    dims = search_space(base, tuple(groups))
    if not dims:
        raise ValueError(f"nothing to search for preset {preset!r} with parameter groups {list(groups)}")
    url = storage or f"sqlite:///{(out / 'study.db').resolve()}"
    name = study_name or f"ferlens-{preset}"
    pruners = {
        "median": lambda: optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=1),
        "none": optuna.pruners.NopPruner,
    }
    if pruner not in pruners:
        raise ValueError(f"unknown pruner {pruner!r}; choose one of {sorted(pruners)}")
    study = optuna.create_study(
        study_name=name,
        storage=make_storage(url),
        sampler=optuna.samplers.TPESampler(seed=seed),
        pruner=pruners[pruner](),
        direction="maximize",
        load_if_exists=True,
    )
    train_set = load_split(base.data, base.data.train_split)
    val_set = load_split(base.data, base.data.val_split)
    finished = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)

    def objective(trial: optuna.Trial) -> float:
        trial_overrides = suggest_overrides(trial, dims)
        run_dir = out / f"trial_{trial.number:04d}"
        cfg = apply_overrides(base, [*trial_overrides, f"out_dir={run_dir}"])
        trial.set_user_attr("overrides", trial_overrides)
        trial.set_user_attr("out_dir", str(run_dir))

        def report(record: dict) -> None:
            trial.report(record["val_macro_f1"], record["epoch"])
            if trial.should_prune():
                raise optuna.TrialPruned(f"pruned at epoch {record['epoch']}")

        result = fit_fn(cfg, callbacks=[report], command=command, train_set=train_set, val_set=val_set)
        trial.set_user_attr("best_epoch", int(result.best_epoch))
        return float(result.best_val_macro_f1)

    done = sum(t.state in finished for t in study.trials)
    todo = max(0, trials - done)
    log.info("study %s in %s: %d finished trial(s), running %d more", name, _redact(url), done, todo)
    if todo:
        # FloatingPointError = the trainer's "loss became nan": a legitimate bad region of the space, recorded
        # as a FAILED trial by Optuna (with its message), not a reason to stop the search.
        study.optimize(
            objective,
            n_trials=todo,
            timeout=timeout,
            catch=(FloatingPointError,),
            callbacks=[optuna.study.MaxTrialsCallback(trials, states=finished)],
        )
    return write_summary(study, out, preset, list(overrides) + extra, _redact(url), command)


def write_summary(study, out: Path, preset: str, overrides: list[str], url: str, command: str | None) -> dict:
    """``best_params.json`` (best trial, its overrides, counts) and ``trials.csv`` (every trial)."""
    import optuna

    states = [t.state for t in study.trials]
    complete = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    best = max(complete, key=lambda t: t.value) if complete else None
    summary = {
        "study_name": study.study_name,
        "storage": url,
        "preset": preset,
        "base_overrides": overrides,
        "objective": "best validation macro-F1 of training.trainer.fit (maximised)",
        "n_trials": len(states),
        "n_complete": len(complete),
        "n_pruned": states.count(optuna.trial.TrialState.PRUNED),
        "n_failed": states.count(optuna.trial.TrialState.FAIL),
        "best": None
        if best is None
        else {
            "number": best.number,
            "value": best.value,
            "params": best.params,
            "overrides": best.user_attrs.get("overrides", []),
            "out_dir": best.user_attrs.get("out_dir"),
            "best_epoch": best.user_attrs.get("best_epoch"),
        },
        "command": command,
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }
    (out / "best_params.json").write_text(json.dumps(summary, indent=2))
    study.trials_dataframe().to_csv(out / "trials.csv", index=False)
    return summary


def main(argv: list[str] | None = None) -> int:
    from training.config import ConfigError
    from training.datasets import DatasetError

    argv = list(sys.argv[1:] if argv is None else argv)
    ap = argparse.ArgumentParser(
        prog="python -m training.search",
        description="Optuna TPE search over lr, weight decay, loss weights, dropout and augmentation strength; "
        "objective: best validation macro-F1. Re-running the same command resumes the study.",
    )
    ap.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="config overrides for every trial")
    ap.add_argument("--preset", default="default", help="training preset to tune (training.config.list_presets())")
    ap.add_argument("--trials", type=int, default=20, help="finished trials the study should hold in the end")
    ap.add_argument("--out", default="runs/search")
    ap.add_argument("--storage", help="SQLAlchemy URL (default: sqlite:///<out>/study.db)")
    ap.add_argument("--study-name", help="default: ferlens-<preset>")
    ap.add_argument("--params", dest="groups", nargs="+", default=list(PARAM_GROUPS), choices=PARAM_GROUPS)
    ap.add_argument("--limit", type=int, help="rows per split (tiny mode)")
    ap.add_argument("--epochs", type=int, help="epochs per trial")
    ap.add_argument("--seed", type=int, default=0, help="TPE sampler seed")
    ap.add_argument("--pruner", default="median", choices=("median", "none"))
    ap.add_argument("--timeout", type=float, help="stop starting new trials after this many seconds")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    command = shlex.join(["python", "-m", "training.search", *argv])
    try:
        s = run_search(**vars(args), command=command)
    except (ConfigError, DatasetError, ValueError, FileExistsError) as exc:
        print(f"error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 2
    best = s["best"]
    print(f"{s['n_complete']} complete, {s['n_pruned']} pruned, {s['n_failed']} failed trial(s) in {s['storage']}")
    if best:
        print(f"best: trial {best['number']}, val macro-F1 {best['value']:.4f}: {' '.join(best['overrides'])}")
    print(f"wrote {Path(args.out) / 'best_params.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
