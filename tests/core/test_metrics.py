"""core.metrics against scikit-learn on fixed random inputs, plus hand-computed calibration cases."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
from sklearn import metrics as skm

from core import metrics as M


def _fake(n: int, c: int = 7, seed: int = 0, signal: float = 1.0, decimals: int | None = None):
    """Labels and softmax probabilities where the true class gets a logit bonus (a ~40-60 % classifier)."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, c, n)
    logits = rng.normal(size=(n, c))
    logits[np.arange(n), y] += signal
    p = np.exp(logits)
    p /= p.sum(axis=1, keepdims=True)
    if decimals is not None:  # coarse probabilities create many ties for the ROC code paths
        p = np.round(p, decimals)
    return y, p


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_accuracy_prf_confusion_match_sklearn(seed):
    y, p = _fake(500, seed=seed)
    pred = p.argmax(1)
    assert M.accuracy(y, pred) == pytest.approx(skm.accuracy_score(y, pred))
    np.testing.assert_array_equal(M.confusion_matrix(y, pred, 7), skm.confusion_matrix(y, pred, labels=range(7)))
    r = M.precision_recall_f1(y, pred, 7)
    for avg in ("macro", "weighted"):
        sp, sr, sf, _ = skm.precision_recall_fscore_support(y, pred, average=avg, zero_division=0)
        assert r[f"{avg}_precision"] == pytest.approx(sp)
        assert r[f"{avg}_recall"] == pytest.approx(sr)
        assert r[f"{avg}_f1"] == pytest.approx(sf)
    sp, sr, sf, ss = skm.precision_recall_fscore_support(y, pred, labels=range(7), zero_division=0)
    np.testing.assert_allclose(r["precision"], sp)
    np.testing.assert_allclose(r["recall"], sr)
    np.testing.assert_allclose(r["f1"], sf)
    np.testing.assert_array_equal(r["support"], ss)


@pytest.mark.parametrize("decimals", [None, 1])
def test_roc_auc_matches_sklearn_with_and_without_ties(decimals):
    y, p = _fake(800, seed=3, decimals=decimals)
    a = M.roc_auc_ovr(y, p)
    for k in range(7):
        assert a["per_class"][k] == pytest.approx(skm.roc_auc_score(y == k, p[:, k]))
    assert a["macro"] == pytest.approx(np.mean([skm.roc_auc_score(y == k, p[:, k]) for k in range(7)]))
    support = np.bincount(y, minlength=7)
    expect_w = np.average([skm.roc_auc_score(y == k, p[:, k]) for k in range(7)], weights=support)
    assert a["weighted"] == pytest.approx(expect_w)


@pytest.mark.parametrize("decimals", [None, 2])
def test_roc_curve_points_match_sklearn(decimals):
    y, p = _fake(300, seed=4, decimals=decimals)
    pts = M.roc_curve_points(p[:, 2], y == 2, max_points=10_000)
    fpr, tpr, _ = skm.roc_curve(y == 2, p[:, 2], drop_intermediate=False)
    np.testing.assert_allclose(pts["fpr"], fpr, atol=1e-6)
    np.testing.assert_allclose(pts["tpr"], tpr, atol=1e-6)
    small = M.roc_curve_points(p[:, 2], y == 2, max_points=21)
    assert len(small["fpr"]) <= 21
    assert small["fpr"][0] == 0 and small["tpr"][0] == 0 and small["fpr"][-1] == 1 and small["tpr"][-1] == 1
    assert np.all(np.diff(small["fpr"]) >= 0) and np.all(np.diff(small["tpr"]) >= 0)


def test_absent_classes_follow_sklearn_defaults_without_warnings():
    y, p = _fake(400, seed=5)
    y[y == 1] = 0  # nobody is "disgust", but the model still predicts it sometimes
    pred = p.argmax(1)
    pred[pred == 2] = 3  # and nobody is predicted "fear"
    y[y == 2] = 3  # ... nor is anybody "fear": class 2 is neither true nor predicted
    assert (pred == 1).any() and not (y == 2).any() and not (pred == 2).any()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        r = M.precision_recall_f1(y, pred, 7)
        auc = M.roc_auc_ovr(y, p)
        summary = M.summarize(y, p, [f"c{k}" for k in range(7)], n_resamples=50)
    for name in ("precision", "recall", "f1"):
        # sklearn's default labels (classes in y_true or y_pred) with zero_division=0
        expect = getattr(skm, f"{name}_score" if name != "f1" else "f1_score")(
            y, pred, average="macro", zero_division=0
        )
        assert r[f"macro_{name}"] == pytest.approx(expect)
        assert np.isnan(r[name][2])  # neither true nor predicted: nothing to score
    assert M.macro_f1(y, pred, 7) == pytest.approx(skm.f1_score(y, pred, average="macro", zero_division=0))
    assert r["recall"][1] == 0 and r["precision"][1] == 0 and r["support"][1] == 0 and r["predicted"][1] > 0
    assert r["weighted_f1"] == pytest.approx(skm.f1_score(y, pred, average="weighted", zero_division=0))
    assert np.isnan(auc["per_class"][1]) and np.isnan(auc["per_class"][2])
    present = np.unique(y)
    assert auc["macro"] == pytest.approx(np.mean([skm.roc_auc_score(y == k, p[:, k]) for k in present]))
    assert summary["per_class"][1]["support"] == 0 and summary["per_class"][1]["recall"] == 0.0
    assert summary["confusion"]["normalized"][1] == [0.0] * 7
    assert summary["roc"][1]["fpr"] == []
    json.dumps(summary, allow_nan=False)  # no NaN leaks into the JSON


def test_ece_hand_computed():
    # 4 rows, 2 classes. Top-class confidences .9 .9 .6 .55 ; correct: yes no yes yes.
    probs = np.array([[0.9, 0.1], [0.9, 0.1], [0.4, 0.6], [0.45, 0.55]])
    y = np.array([0, 1, 1, 1])
    # With 15 bins of width 1/15: .9 -> bin 13 (.8667, .9333]; .6 -> bin 8 (.5333, .6]; .55 -> bin 8.
    # bin 13: acc 1/2, conf .9 -> |.5 - .9| * 2/4 = .2 ; bin 8: acc 1, conf .575 -> |1 - .575| * 2/4 = .2125
    assert M.expected_calibration_error(y, probs) == pytest.approx(0.4125)
    bins = M.reliability_bins(y, probs)
    assert len(bins) == 15 and sum(b["count"] for b in bins) == 4
    assert bins[13]["count"] == 2 and bins[13]["accuracy"] == 0.5 and bins[13]["confidence"] == pytest.approx(0.9)
    assert bins[8]["count"] == 2 and bins[8]["confidence"] == pytest.approx(0.575)
    assert bins[0]["accuracy"] is None
    # A perfectly calibrated toy case: confidence 1 and always right.
    assert M.expected_calibration_error([0, 1], np.array([[1.0, 0.0], [0.0, 1.0]])) == 0.0


def test_nll_and_brier_hand_computed():
    probs = np.array([[0.5, 0.5], [0.2, 0.8]])
    y = np.array([0, 1])
    assert M.negative_log_likelihood(y, probs) == pytest.approx(-(np.log(0.5) + np.log(0.8)) / 2)
    assert M.brier_score(y, probs) == pytest.approx(((0.25 + 0.25) + (0.04 + 0.04)) / 2)
    assert M.negative_log_likelihood(y, probs) == pytest.approx(skm.log_loss(y, probs))


def test_weighted_kernel_equals_metrics_on_repeated_rows():
    """A bootstrap resample is the data with rows repeated by their draw counts: check exactly that."""
    y, p = _fake(200, seed=6)
    rng = np.random.default_rng(0)
    w = M.bootstrap_weights(200, 3, rng)
    assert np.all(w.sum(axis=1) == 200)
    got = M._weighted_metrics(y, p, w)
    for b in range(3):
        yr, pr = np.repeat(y, w[b].astype(int)), np.repeat(p, w[b].astype(int), axis=0)
        predr = pr.argmax(1)
        assert got["accuracy"][b] == pytest.approx(skm.accuracy_score(yr, predr))
        assert got["macro_f1"][b] == pytest.approx(skm.f1_score(yr, predr, average="macro", zero_division=0))
        assert got["weighted_recall"][b] == pytest.approx(skm.recall_score(yr, predr, average="weighted"))
        assert got["roc_auc_macro"][b] == pytest.approx(skm.roc_auc_score(yr, pr, multi_class="ovr"))
        assert got["ece"][b] == pytest.approx(M.expected_calibration_error(yr, pr))


def test_bootstrap_ci_contains_point_estimate_is_seeded_and_narrows_with_n():
    y, p = _fake(3000, seed=7)
    ci = M.bootstrap_ci(y, p, n_resamples=400, seed=0)
    for k in ("accuracy", "macro_f1", "weighted_f1", "roc_auc_macro"):
        assert ci[k]["ci_low"] < ci[k]["value"] < ci[k]["ci_high"], k
    assert ci["accuracy"]["value"] == pytest.approx(skm.accuracy_score(y, p.argmax(1)))
    assert M.bootstrap_ci(y, p, n_resamples=400, seed=0) == ci
    assert M.bootstrap_ci(y, p, n_resamples=400, seed=1)["accuracy"] != ci["accuracy"]
    small = M.bootstrap_ci(y[:300], p[:300], n_resamples=400, seed=0)
    for k in ("accuracy", "macro_f1"):
        width_big = ci[k]["ci_high"] - ci[k]["ci_low"]
        width_small = small[k]["ci_high"] - small[k]["ci_low"]
        # the width scales like 1/sqrt(N): 10x the rows should give about a third of the width
        assert width_big < 0.5 * width_small, k
    none = M.bootstrap_ci(y, p, n_resamples=0)
    assert none["accuracy"]["ci_low"] is None and none["accuracy"]["value"] == ci["accuracy"]["value"]


def test_input_validation_messages():
    with pytest.raises(ValueError, match="outside"):
        M.confusion_matrix([0, 7], [0, 1], 7)
    with pytest.raises(ValueError, match=r"\(N, C\)"):
        M.roc_auc_ovr([0, 1], np.ones((3, 2)))
    with pytest.raises(ValueError, match="class names"):
        M.summarize([0, 1], np.eye(2), ["a"])
