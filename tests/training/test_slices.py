"""training.slices: per-image measures against scipy, bins that partition the set, Wilson intervals against
scipy's, and ``training.evaluate --slices`` writing a valid results JSON whose bins agree with its rows."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import ndimage, stats

from training import slices as S


@pytest.fixture(scope="module")
def rows(shared_datasets):
    from training.evaluate import load_faceset

    return load_faceset("ferplus", "test", 60, 8, str(shared_datasets), [])


@pytest.fixture(scope="module")
def attrs(rows):
    return S.measure(rows.images)


def test_brightness_and_blur_match_numpy_and_scipy(rows, attrs):
    imgs = rows.images.astype(np.float64)
    np.testing.assert_allclose(attrs["brightness"], imgs.mean(axis=(1, 2)))
    # OpenCV's 3x3 Laplacian with reflect-101 borders is scipy's ``laplace`` with mode "mirror"
    lap_var = [ndimage.laplace(im, mode="mirror").var() for im in imgs]
    np.testing.assert_allclose(attrs["blur"], lap_var, rtol=1e-9)


def test_pose_is_present_exactly_where_the_mesh_fits(attrs):
    fits = attrs["mesh_fit"].to_numpy(bool)
    assert fits.mean() > 0.5  # the mesh fits most FER crops (the JSON reports the measured rate)
    assert np.isfinite(attrs.loc[fits, ["yaw_deg", "pitch_deg"]].to_numpy()).all()
    assert attrs.loc[~fits, ["yaw_deg", "pitch_deg"]].isna().all().all()


def _synthetic(n: int = 300, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    yaw = rng.normal(0, 15, n)
    fits = rng.random(n) > 0.1
    attrs = pd.DataFrame(
        {
            "brightness": rng.uniform(20, 230, n),
            "blur": rng.lognormal(7, 1, n),
            "yaw_deg": np.where(fits, yaw, np.nan),
            "pitch_deg": np.where(fits, rng.normal(-8, 10, n), np.nan),
            "mesh_fit": fits,
        }
    )
    return attrs, rng.random(n) > 0.3


def test_bins_partition_the_set_and_count_its_errors():
    attrs, correct = _synthetic()
    rep = S.slice_report(attrs, correct, crop_side=48)
    assert rep["mesh"]["fitted"] == int(attrs["mesh_fit"].sum())
    for name, entry in rep["attributes"].items():
        if not entry["measurable"]:
            assert name == "face_size" and entry["bins"] == [] and "48x48" in entry["reason"]
            continue
        labels = S.assign(name, attrs[S.COLUMNS[name]].tolist(), entry["edges"])
        assert sum(b["n"] for b in entry["bins"]) == len(attrs)
        assert sorted({*labels}) == sorted(b["label"] for b in entry["bins"])  # each row in exactly one listed bin
        for b in entry["bins"]:
            sel = np.array(labels) == b["label"]
            assert b["n"] == sel.sum() and b["errors"] == (~correct[sel]).sum()
    yaw = rep["attributes"]["yaw"]
    no_mesh = next(b for b in yaw["bins"] if b["label"] == S.NO_MESH)
    assert no_mesh["n"] == int((~attrs["mesh_fit"]).sum())


def test_quintile_bins_hold_a_fifth_each():
    attrs, correct = _synthetic(500)
    bins = S.slice_report(attrs, correct)["attributes"]["brightness"]["bins"]
    assert [b["n"] for b in bins] == [100] * 5


def test_error_rate_intervals_are_scipy_s_wilson():
    attrs, correct = _synthetic()
    for entry in S.slice_report(attrs, correct)["attributes"].values():
        for b in entry["bins"]:
            ci = stats.binomtest(b["errors"], b["n"]).proportion_ci(0.95, method="wilson")
            assert (b["ci_low"], b["ci_high"]) == pytest.approx((ci.low, ci.high), abs=1e-9)
            assert b["error_rate"] == pytest.approx(b["errors"] / b["n"])


def test_evaluate_with_slices_writes_a_valid_file_whose_rows_rebuild_the_bins(rows):
    import torch

    from core.models import create_model
    from training.evaluate import evaluate_model
    from training.results import validate_results

    torch.manual_seed(0)
    d = evaluate_model(create_model("default", num_classes=8).eval(), rows, bootstrap=20, slices=True)
    validate_results(d)
    pr = d["predictions"]
    wrong = np.asarray(pr["true"]) != np.asarray(pr["pred"])
    bins = S.row_bins(d)
    assert list(bins.index) == pr["id"]
    for name, entry in d["slices"]["attributes"].items():
        if not entry["measurable"]:
            continue
        for b in entry["bins"]:
            sel = (bins[name] == b["label"]).to_numpy()
            assert (b["n"], b["errors"]) == (sel.sum(), wrong[sel].sum()), (name, b)
    assert S.row_bins({k: v for k, v in d.items() if k != "slices"}) is None
