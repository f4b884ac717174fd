"""training.robustness on real FER2013 rows with the shipped FER2013-label weights."""

from __future__ import annotations

import json

import numpy as np
import pytest

from core.models import create_model
from core.models.weights import shipped_weights
from training import robustness as R
from training.config import DataConfig
from training.datasets import load_split
from training.evaluate import predict_probs

pytestmark = pytest.mark.skipif(shipped_weights("default_fer2013") is None, reason="needs shipped weights")


@pytest.fixture(scope="module")
def setup(shared_datasets):
    fs = load_split(DataConfig(dataset="fer2013", root=str(shared_datasets), limit=200), "PublicTest")
    return create_model("default_fer2013", weights="default"), fs


def test_clean_predictions_are_the_evaluation_s(setup):
    model, fs = setup
    clean = R.predict_corrupted(model, fs, None, 0.0)
    assert (clean == predict_probs(model, fs, device="cpu").argmax(1)).all()


def test_report_accuracy_and_retention_follow_from_the_predictions(setup):
    model, fs = setup
    res = R.robustness(model, fs, severities=(1.0,), n_resamples=50)
    clean_acc = float((R.predict_corrupted(model, fs, None, 0.0) == fs.labels).mean())
    assert res["clean"]["accuracy"] == pytest.approx(clean_acc)
    assert len(res["conditions"]) == len(R.CORRUPTIONS)
    for row in res["conditions"]:
        pred = R.predict_corrupted(model, fs, row["corruption"], 1.0)
        assert row["accuracy"] == pytest.approx(float((pred == fs.labels).mean()))
        assert row["retention"] == pytest.approx(row["accuracy"] / clean_acc)
        assert row["ci_low"] <= row["accuracy"] <= row["ci_high"]
    # the severest low resolution (10 px faces) must cost a trained 48-px model accuracy
    low_res = next(r for r in res["conditions"] if r["corruption"] == "low_res")
    assert low_res["accuracy"] < clean_acc
    assert res["mean_retention"] == pytest.approx(np.mean([r["retention"] for r in res["conditions"]]))


def test_cli_writes_json_with_its_command(tmp_path, shared_datasets, monkeypatch):
    monkeypatch.setenv("FERLENS_DATA", str(shared_datasets))
    out = tmp_path / "r.json"
    argv = ["--model", "default_fer2013", "--data", "fer2013", "--limit", "60", "--severity", "0.5", "--out", str(out)]
    assert R.main(argv) == 0
    d = json.loads(out.read_text())
    assert d["meta"]["n"] == 60 and d["meta"]["command"].startswith("python -m training.robustness")
    assert {r["severity"] for r in d["conditions"]} == {0.5}
