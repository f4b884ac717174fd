"""The dashboard's menus read training.runs: weights that fit the model, results files, retrained ablations."""

from __future__ import annotations

import json
from pathlib import Path

from core.models.weights import shipped_weights
from dashboard import ablation, evaluation, sidebar


def test_weights_menu_offers_fitting_checkpoints_and_default_only_when_shipped(tmp_path: Path):
    for run, model in (("a", "default"), ("b", "fernet_s")):
        (tmp_path / run).mkdir()
        (tmp_path / run / "best.safetensors").write_bytes(b"w")
        (tmp_path / run / "best.json").write_text(json.dumps({"config": {"model": model}}))
    assert shipped_weights("default") is not None and shipped_weights("fernet_s") is None
    shown = sidebar.weights_candidates("default", [tmp_path])
    assert shown[0] == sidebar.DEFAULT_WEIGHTS and sidebar.RANDOM_WEIGHTS in shown
    assert str(tmp_path / "a" / "best.safetensors") in shown and str(tmp_path / "b" / "best.safetensors") not in shown
    assert sidebar.weights_candidates("fernet_s", [tmp_path]) == [
        sidebar.RANDOM_WEIGHTS,
        str(tmp_path / "b" / "best.safetensors"),
    ]


def test_results_and_reports_come_from_every_root(tmp_path: Path):
    (tmp_path / "x").mkdir()
    (tmp_path / "y").mkdir()
    (tmp_path / "x" / "r.json").write_text('{"schema": "ferlens.results/1"}')
    (tmp_path / "y" / "r.json").write_text('{"schema": "ferlens.results/1"}')
    (tmp_path / "y" / "ablation.json").write_text("{}")
    assert set(evaluation.find_results([tmp_path / "x", tmp_path / "y"])) == {
        tmp_path / "x" / "r.json",
        tmp_path / "y" / "r.json",
    }
    assert ablation.ablation_reports(tmp_path) == [tmp_path / "y" / "ablation.json"]
