"""training.search: the search space, the study's resume logic and its outputs (stand-in trainer; the real
trainer runs in tests/training/test_pipeline_e2e.py)."""

from __future__ import annotations

import json
import math
from types import SimpleNamespace

import optuna
import pytest

from training import search as S
from training.config import apply_overrides, get_preset

TINY = "model_overrides.widths=[8,16,32,64]"


def test_search_space_follows_loss_and_model():
    compound = apply_overrides(get_preset("default"), [TINY, "loss.name=compound"])
    keys = [d.key for d in S.search_space(compound)]
    assert keys == [
        "optim.lr",
        "optim.weight_decay",
        "loss.w_center",
        "loss.w_dls",
        "model_overrides.drop_rate",
        "augment.strength",
    ]
    center = next(d for d in S.search_space(compound) if d.key == "loss.w_center")
    assert center.log and center.low == pytest.approx(1e-3) and center.high == pytest.approx(0.5)  # lambda, log scale
    ce = apply_overrides(get_preset("default"), [TINY, "loss.name=ce"])
    assert "loss.label_smoothing" in [d.key for d in S.search_space(ce)]
    wce = apply_overrides(get_preset("default"), [TINY, "loss.name=weighted_ce"])
    assert not [d for d in S.search_space(wce) if d.key.startswith("loss.")]
    only = S.search_space(get_preset("default"), ("lr", "augment"))
    assert [d.key for d in only] == ["optim.lr", "augment.strength"]
    with pytest.raises(ValueError, match="unknown parameter group"):
        S.search_space(get_preset("default"), ("lr", "momentum"))


def test_suggested_overrides_apply_and_compound_weights_sum_to_one():
    dims = S.search_space(apply_overrides(get_preset("default"), [TINY, "loss.name=compound"]))
    params = {"optim.lr": 1e-3, "optim.weight_decay": 1e-4, "loss.w_center": 0.3, "loss.w_dls": 0.1}
    params |= {"model_overrides.drop_rate": 0.2, "augment.strength": 0.5}
    overrides = S.suggest_overrides(optuna.trial.FixedTrial(params), dims)
    cfg = apply_overrides(get_preset("default"), ["loss.name=compound", *overrides])
    assert cfg.optim.lr == 1e-3 and cfg.model_overrides["drop_rate"] == 0.2 and cfg.augment.strength == 0.5
    assert cfg.loss.w_ce + cfg.loss.w_center + cfg.loss.w_dls == pytest.approx(1.0)


def test_lambda_center_search_parses_at_both_ends_of_its_log_range():
    base = apply_overrides(get_preset("lite_compound"), ["data.limit=64"])
    dims = S.search_space(base, ("loss",))
    for w_center in (1e-3, 0.5):
        trial = optuna.trial.FixedTrial({"loss.w_center": w_center, "loss.w_dls": 0.3})
        cfg = apply_overrides(base, S.suggest_overrides(trial, dims))
        assert cfg.loss.w_center == pytest.approx(w_center) and cfg.loss.w_ce >= 0.2 - 1e-12
        assert cfg.loss.center_ramp_steps == base.loss.center_ramp_steps  # the preset's ramp is kept


def test_storage_url_password_is_redacted():
    assert "secret" not in S._redact("postgresql://user:secret@db.example/optuna")


def _score(cfg) -> float:
    return 0.5 - (math.log10(cfg.optim.lr) + 3) ** 2 / 10  # peaks at lr = 1e-3


def _fake_fit(calls: list, diverge_first: bool = False):
    """Stand-in for training.trainer.fit with its contract; optionally its first run diverges."""

    def fit(cfg, resume=False, callbacks=(), command=None, train_set=None, val_set=None):
        calls.append(cfg)
        assert len(train_set) == 64 and len(val_set) == 64  # the splits are loaded once, with the limit
        if diverge_first and len(calls) == 1:
            raise FloatingPointError("loss became nan at epoch 1")
        for epoch in (1, 2):
            for cb in callbacks:
                cb({"epoch": epoch, "val_macro_f1": _score(cfg) * epoch / 2})
        return SimpleNamespace(best_val_macro_f1=_score(cfg), best_epoch=2)

    return fit


def test_run_search_writes_study_resumes_and_survives_divergence(tmp_path, shared_datasets):
    calls: list = []
    kw = dict(overrides=[TINY, f"data.root={shared_datasets}"], limit=64, epochs=1, groups=("lr", "wd"))
    s = S.run_search("default", 4, tmp_path, fit_fn=_fake_fit(calls, diverge_first=True), **kw)
    assert (tmp_path / "study.db").is_file() and (tmp_path / "trials.csv").is_file()
    # a diverging trial is recorded as failed and the search goes on
    assert len(calls) == 4 and (s["n_complete"], s["n_failed"]) == (3, 1)
    saved = json.loads((tmp_path / "best_params.json").read_text())
    assert saved == {**s, "date": saved["date"]}
    assert saved["best"]["value"] == pytest.approx(max(_score(c) for c in calls[1:]))
    best_cfg = apply_overrides(get_preset("default"), saved["best"]["overrides"])
    assert best_cfg.optim.lr == saved["best"]["params"]["optim.lr"]
    assert all(c.data.limit == 64 and c.epochs == 1 for c in calls)
    assert len({c.out_dir for c in calls}) == 4  # one folder per trial
    # Same command again: one trial is missing to reach 4 finished ones, so exactly one runs.
    S.run_search("default", 4, tmp_path, fit_fn=_fake_fit(calls), **kw)
    assert len(calls) == 5
    S.run_search("default", 4, tmp_path, fit_fn=_fake_fit(calls), **kw)
    assert len(calls) == 5
    s2 = S.run_search("default", 6, tmp_path, fit_fn=_fake_fit(calls), **kw)
    assert len(calls) == 7 and s2["n_complete"] + s2["n_pruned"] == 6


def test_cli_help_and_bad_preset(tmp_path, capsys):
    with pytest.raises(SystemExit) as info:
        S.main(["--help"])
    assert info.value.code == 0
    assert "--storage" in capsys.readouterr().out
    assert S.main(["--preset", "nope", "--out", str(tmp_path)]) == 2
    assert "unknown preset 'nope'" in capsys.readouterr().err
