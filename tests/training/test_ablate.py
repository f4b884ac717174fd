"""training.ablate: statistics of the report and the resume logic (with a stand-in for the trainer; the
real trainer runs in tests/training/test_pipeline_e2e.py)."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from scipy import stats as sps
from statsmodels.stats.contingency_tables import mcnemar as sm_mcnemar

from core.models import create_model, save_weights
from training import ablate as A

TINY = "model_overrides.widths=[8,16,32,64]"


def _fake_results(acc_by_seed: dict[int, float], f1_by_seed: dict[int, float], correct: dict[int, np.ndarray]):
    """Just the parts of a results JSON that ``aggregate`` reads."""
    out = {}
    for s in acc_by_seed:
        m = {k: {"value": 0.5} for k in A.REPORT_METRICS}
        m["accuracy"] = {"value": acc_by_seed[s]}
        m["macro_f1"] = {"value": f1_by_seed[s]}
        n = correct[s].size
        pred = np.where(correct[s], 0, 1).tolist()
        preds = {"id": list(range(n)), "true": [0] * n, "pred": pred}
        out[s] = {"test": {"metrics": m, "predictions": preds}}
    return out


def test_aggregate_matches_scipy_and_statsmodels():
    rng = np.random.default_rng(0)
    seeds = [0, 1, 2]
    rungs = ["r0", "r1", "r2"]
    acc = {r: {s: 0.6 + 0.02 * i + 0.01 * rng.random() for s in seeds} for i, r in enumerate(rungs)}
    f1 = {r: {s: 0.5 + 0.03 * i + 0.01 * rng.random() for s in seeds} for i, r in enumerate(rungs)}
    correct = {r: {s: rng.random(50) < 0.6 + 0.1 * i for s in seeds} for i, r in enumerate(rungs)}
    results = {r: _fake_results(acc[r], f1[r], correct[r]) for r in rungs}
    rep = A.aggregate(results, rungs, ("test",))
    row = rep["summary"][1]["splits"]["test"]["macro_f1"]
    vals = [f1["r1"][s] for s in seeds]
    assert row["mean"] == pytest.approx(np.mean(vals)) and row["std"] == pytest.approx(np.std(vals, ddof=1))
    lo, hi = sps.t.interval(0.95, 2, loc=np.mean(vals), scale=sps.sem(vals))
    assert (row["ci_low"], row["ci_high"]) == pytest.approx((lo, hi))
    comps = {(c["rung"], c["metric"]): c for c in rep["comparisons"]}
    comps = {(c["rung"], c["vs"], c["metric"]): c for c in rep["comparisons"]}
    pairs = {("r1", "r0"), ("r2", "r1"), ("r2", "r0")}  # each against the previous rung and against the first
    assert set(comps) == {(*p, m) for p in pairs for m in ("accuracy", "macro_f1")}
    c = comps["r2", "r1", "macro_f1"]
    ref = sps.ttest_rel([f1["r2"][s] for s in seeds], [f1["r1"][s] for s in seeds])
    assert c["p_value"] == pytest.approx(ref.pvalue)
    assert c["p_bonferroni"] == pytest.approx(min(1.0, 3 * ref.pvalue))  # three comparisons in the family
    vs_first = comps["r2", "r0", "macro_f1"]
    ref0 = sps.ttest_rel([f1["r2"][s] for s in seeds], [f1["r0"][s] for s in seeds])
    assert vs_first["p_value"] == pytest.approx(ref0.pvalue)
    a = np.concatenate([correct["r2"][s] for s in seeds])
    b = np.concatenate([correct["r1"][s] for s in seeds])
    table = [[int((a & b).sum()), int((a & ~b).sum())], [int((~a & b).sum()), int((~a & ~b).sum())]]
    mc = comps["r2", "r1", "accuracy"]["mcnemar_pooled"]
    exact = mc["method"] == "exact"
    assert mc["p_value"] == pytest.approx(sm_mcnemar(table, exact=exact, correction=True).pvalue)
    for seed_mc, s in zip(comps["r2", "r1", "accuracy"]["mcnemar_per_seed"], seeds, strict=True):
        a, b = correct["r2"][s], correct["r1"][s]
        t = [[int((a & b).sum()), int((a & ~b).sum())], [int((~a & b).sum()), int((~a & ~b).sum())]]
        ref = sm_mcnemar(t, exact=seed_mc["method"] == "exact", correction=True).pvalue
        assert seed_mc["seed"] == s and seed_mc["p_value"] == pytest.approx(ref)
    json.dumps(rep, allow_nan=False)


def _fake_fit(calls: list):
    """A stand-in for training.trainer.fit with its contract: writes best.safetensors, returns a FitResult."""

    def fit(cfg, resume=False, command=None, train_set=None, val_set=None):
        calls.append((cfg.name, cfg.seed, resume, len(train_set), len(val_set)))
        torch.manual_seed(cfg.seed * 10 + int(bool(cfg.model_overrides.get("cbam"))))
        model = create_model(cfg.model, num_classes=cfg.data.num_classes, **cfg.model_overrides)
        out = Path(cfg.out_dir)
        save_weights(model, out / "best.safetensors")
        return SimpleNamespace(out_dir=out, best_weights=out / "best.safetensors", best_epoch=1, best_val_macro_f1=0.1)

    return fit


def test_run_ablation_writes_reports_and_resumes(tmp_path, shared_datasets):
    calls: list = []
    rungs = ["default", "default+model_overrides.cbam=true"]
    kw = dict(
        overrides=[TINY, f"data.root={shared_datasets}"], limit=96, epochs=1, bootstrap=50, splits=("val", "test")
    )
    rep = A.run_ablation(rungs, [0, 1], tmp_path, fit_fn=_fake_fit(calls), **kw)
    assert len(calls) == 4 and all(c[3] == 96 for c in calls)  # limit reaches the training data
    for rung in rungs:
        for seed in (0, 1):
            d = json.loads((tmp_path / A.rung_dir_name(rung) / f"seed{seed}" / "test.json").read_text())
            assert d["meta"]["rung"] == rung and d["meta"]["seed"] == seed and d["meta"]["data"]["n"] == 96
    md = (tmp_path / "ablation.md").read_text()
    assert "## val" in md and "## test" in md and "`default+model_overrides.cbam=true`" in md
    saved = json.loads((tmp_path / "ablation.json").read_text())
    assert saved["summary"] == rep["summary"] and len(saved["comparisons"]) == 4  # 1 pair x 2 metrics x 2 splits
    # Running the same command again trains nothing; a lost results file is re-evaluated, not re-trained.
    (tmp_path / "default" / "seed1" / "test.json").unlink()
    A.run_ablation(rungs, [0, 1], tmp_path, fit_fn=_fake_fit(calls), **kw)
    assert len(calls) == 4 and (tmp_path / "default" / "seed1" / "test.json").is_file()
    # A different recipe in the same folder is refused instead of silently mixed in.
    with pytest.raises(ValueError, match="different config"):
        A.run_ablation(rungs, [0, 1], tmp_path, fit_fn=_fake_fit(calls), **{**kw, "epochs": 2})


def test_bad_rungs_fail_before_any_training(tmp_path):
    calls: list = []
    with pytest.raises(ValueError, match="unknown preset 'nope'"):
        A.run_ablation(["default", "nope"], [0], tmp_path, fit_fn=_fake_fit(calls))
    with pytest.raises(ValueError, match="distinct"):
        A.run_ablation(["default", "default"], [0], tmp_path, fit_fn=_fake_fit(calls))
    assert calls == []
    assert A.main(["--rungs", "default", "nope", "--out", str(tmp_path)]) == 2


def test_cli_help_lists_the_options(capsys):
    with pytest.raises(SystemExit) as info:
        A.main(["--help"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    for opt in ("--rungs", "--seeds", "--limit", "--epochs", "KEY=VALUE"):
        assert opt in out


LITE_TINY = ["model_overrides.widths=[8,16,32,64]", "model_overrides.d_model=32", "model_overrides.d_ff=64"]


def test_ladder_report_has_every_statistic_and_renders(tmp_path, shared_datasets, capsys):
    from training.config import LADDERS

    calls: list = []
    rungs = list(LADDERS["hafem_lite"])
    kw = dict(overrides=[*LITE_TINY, f"data.root={shared_datasets}"], limit=120, epochs=1, bootstrap=20)
    rep = A.run_ablation(rungs, [0, 1], tmp_path, fit_fn=_fake_fit(calls), **kw)
    assert len(calls) == 8 and rep["meta"]["splits"] == ["val"]  # selection split only, until --private-test
    assert not (tmp_path / "lite_trunk" / "seed0" / "test.json").exists()
    row = {r["rung"]: r for r in rep["summary"]}["lite_cbam"]
    d0 = json.loads((tmp_path / "lite_cbam" / "seed0" / "val.json").read_text())
    assert row["splits"]["val"]["accuracy"]["bootstrap"][0] == [
        d0["metrics"]["accuracy"]["ci_low"],
        d0["metrics"]["accuracy"]["ci_high"],
    ]
    f1s = [json.loads((tmp_path / "lite_cbam" / f"seed{s}" / "val.json").read_text())["per_class"] for s in (0, 1)]
    disgust = [next(c["f1"] for c in pc if c["name"] == "disgust") for pc in f1s]
    assert row["per_class_f1"]["val"]["disgust"]["values"] == disgust
    vs = {(c["rung"], c["vs"]) for c in rep["comparisons"]}
    assert vs == {
        ("lite_cbam", "lite_trunk"),
        ("lite_transformer", "lite_cbam"),
        ("lite_compound", "lite_transformer"),
        ("lite_transformer", "lite_trunk"),
        ("lite_compound", "lite_trunk"),
    }
    run = next(r for r in rep["runs"] if r["rung"] == "lite_compound" and r["seed"] == 1)
    assert run["command"].startswith("python -m training.train --preset lite_compound ")
    assert "seed=1" in run["command"] and f"--out {tmp_path / 'lite_compound' / 'seed1'}" in run["command"]

    docs = tmp_path / "docs" / "ablation.md"
    assert A.main(["--render", str(tmp_path / "ablation.json"), "--docs", str(docs)]) == 0
    md = docs.read_text()
    assert "| **disgust** | **fear** |" in md  # the minority classes first
    assert "Against the first rung (`lite_trunk`)" in md
    assert md.count("| `lite_") >= 4 + 2 + 4 + 8 + 8  # main table, vs-trunk, per-class, per-seed CIs, runs
    assert "python -m training.train --preset lite_transformer" in md
    assert "wall-clock hours" in md


def test_bad_ladder_configs_fail_in_one_line_naming_the_fix(tmp_path, capsys, shared_datasets):
    root = f"data.root={shared_datasets}"
    assert A.main(["--ladder", "hafem_lite", "model_overrides.cbam_x=true", root, "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "cbam_x" in err and "fix or drop the model_overrides" in err
    assert not any(tmp_path.iterdir())  # nothing trained
    assert A.main(["--ladder", "nope", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "unknown ladder 'nope'" in err and "hafem_lite" in err
    args = ["--ladder", "hafem_lite", *LITE_TINY, root, "--limit", "64", "--out", str(tmp_path), "--private-test"]
    assert A.main(args) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "MissingCheckpointError" in err
    assert "rung 'lite_trunk' seed 0 has no trained checkpoint" in err and "without --private-test" in err
    assert "python -m training.train --preset lite_trunk" in err
