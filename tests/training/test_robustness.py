"""training.robustness on real FER2013 rows with the shipped FER2013-label weights."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest
import torch

from core.faces.au_regions import REGION_NAMES, regions_for_crop
from core.models import create_model
from core.models.weights import shipped_weights
from training import robustness as R
from training.config import DataConfig
from training.datasets import load_split
from training.evaluate import predict_probs
from training.loader import prepare_tensor

pytestmark = pytest.mark.skipif(shipped_weights("default_fer2013") is None, reason="needs shipped weights")


@pytest.fixture(scope="module")
def setup(shared_datasets):
    fs = load_split(DataConfig(dataset="fer2013", root=str(shared_datasets), limit=100), "PublicTest")
    return create_model("default_fer2013", weights="default"), fs


def test_clean_predictions_are_the_evaluation_s(setup):
    model, fs = setup
    clean = R.predict_corrupted(model, fs, None, 0.0)
    assert (clean == predict_probs(model, fs, device="cpu").argmax(1)).all()


def test_report_accuracy_retention_and_family_means_follow_from_the_predictions(setup):
    model, fs = setup
    res = R.robustness(model, fs, severities=(0.5, 1.0), n_resamples=50, families=("low_res", "rotation"), mesh=False)
    clean_acc = float((R.predict_corrupted(model, fs, None, 0.0) == fs.labels).mean())
    assert res["clean"]["accuracy"] == pytest.approx(clean_acc)
    rows = pd.DataFrame(res["conditions"])
    assert len(rows) == 2 * 2 + len(REGION_NAMES)
    for row in res["conditions"]:
        if row["region"] is None:
            pred = R.predict_corrupted(model, fs, row["corruption"], row["severity"])
            assert row["accuracy"] == pytest.approx(float((pred == fs.labels).mean()))
        assert row["retention"] == pytest.approx(row["accuracy"] / clean_acc)
        assert row["ci_low"] <= row["accuracy"] <= row["ci_high"]
        assert row["retention_ci_low"] <= row["retention"] <= row["retention_ci_high"]
    by_family = rows.groupby("family")["retention"].mean()
    assert res["family_retention"] == pytest.approx(by_family.to_dict())
    assert res["mean_retention"] == pytest.approx(by_family.mean())
    assert res["goal"]["met"] == (res["mean_retention"] >= R.GOAL_MEAN_RETENTION)
    assert res["au_regions"]["placed"] == {"mesh": 0, "framing": len(fs)}
    # the severest low resolution (10 px faces) must cost a trained 48-px model accuracy
    low_res = rows[(rows["family"] == "low_res") & (rows["severity"] == 1.0)]
    assert float(low_res["accuracy"].iloc[0]) < clean_acc


def test_retention_interval_is_one_when_nothing_changes():
    correct = np.array([1, 0, 1, 1, 0, 1, 1, 1], bool)
    assert R.retention_ci(correct, correct, 200, 0) == (1.0, 1.0)


def test_occluding_a_region_changes_only_pixels_inside_its_polygon(setup):
    """The mask follows the region's polygon (OpenCV's point-in-polygon on pixel centres, within a pixel) and
    occlusion changes the model input there only, to the image's mean."""
    model, fs = setup
    idx = np.arange(0, 100, 12)
    sub = type(fs)(fs.images[idx], fs.targets[idx], fs.labels[idx], fs.ids[idx], fs.class_names, fs.split, fs.source)
    masks, placed = R.au_occlusion_masks(sub, 48)
    assert sum(placed.values()) == len(sub)
    x = prepare_tensor(sub, model.spec).float() / 255.0
    centres = np.stack(np.meshgrid(np.arange(48.0), np.arange(48.0), indexing="xy"), -1).reshape(-1, 2)
    for i in range(len(sub)):
        regions = regions_for_crop(np.ascontiguousarray(sub.images[i]), "fer2013")
        for name in REGION_NAMES:
            m = masks[name][i, 0].numpy()
            assert m.any(), (i, name)
            dist = np.max(
                [
                    [cv2.pointPolygonTest(poly.astype(np.float32), tuple(map(float, c)), True) for c in centres]
                    for poly in regions[name].polygons
                ],
                axis=0,
            ).reshape(48, 48)
            assert (dist[m] >= -1.0).all() and m[dist >= 1.0].all(), (i, name)
            out = R.occlude(x[i : i + 1], masks[name][i : i + 1])[0, 0]
            changed = (out != x[i, 0]).numpy()
            assert not changed[~m].any()
            assert torch.allclose(out[masks[name][i, 0]], x[i].mean())


def test_cli_writes_json_with_its_command(tmp_path, shared_datasets, monkeypatch):
    monkeypatch.setenv("FERLENS_DATA", str(shared_datasets))
    out = tmp_path / "r.json"
    argv = ["--model", "default_fer2013", "--data", "fer2013", "--limit", "60", "--severity", "0.5"]
    argv += ["--family", "blur", "high_brightness", "--no-au-occlusion", "--bootstrap", "50", "--out", str(out)]
    assert R.main(argv) == 0
    d = json.loads(out.read_text())
    assert d["meta"]["n"] == 60 and d["meta"]["command"].startswith("python -m training.robustness")
    shipped = Path(shipped_weights("default_fer2013")).read_bytes()
    assert d["meta"]["weights_sha256"] == hashlib.sha256(shipped).hexdigest()
    assert {(r["corruption"], r["severity"]) for r in d["conditions"]} == {("blur", 0.5), ("high_brightness", 0.5)}
    assert d["au_regions"] is None
