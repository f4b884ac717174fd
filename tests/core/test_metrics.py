"""core.metrics against scikit-learn on fixed random inputs, plus hand-computed calibration cases."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
from sklearn import metrics as skm
from sklearn.calibration import calibration_curve

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


def _mann_whitney(scores: np.ndarray, positive: np.ndarray) -> float:
    """P(score of a positive > score of a negative), ties counting 1/2: the AUC by brute force over all pairs."""
    sp, sn = scores[positive][:, None], scores[~positive][None, :]
    return float(((sp > sn) + 0.5 * (sp == sn)).mean())


def test_accuracy_prf_confusion_hand_computed():
    # 6 classes: 4 is predicted once but never true, 5 is neither true nor predicted.
    y = [0, 0, 0, 0, 1, 1, 2, 2, 2, 2, 3]
    pred = [0, 0, 1, 4, 1, 3, 2, 2, 0, 2, 3]
    cm = [
        [2, 1, 0, 0, 1, 0],
        [0, 1, 0, 1, 0, 0],
        [1, 0, 3, 0, 0, 0],
        [0, 0, 0, 1, 0, 0],
        [0] * 6,
        [0] * 6,
    ]
    np.testing.assert_array_equal(M.confusion_matrix(y, pred, 6), cm)
    r = M.precision_recall_f1(y, pred, 6)
    nan = np.nan
    np.testing.assert_allclose(r["precision"], [2 / 3, 1 / 2, 1, 1 / 2, 0, nan])
    np.testing.assert_allclose(r["recall"], [1 / 2, 1 / 2, 3 / 4, 1, 0, nan])
    f1 = [4 / 7, 1 / 2, 6 / 7, 2 / 3, 0, nan]
    np.testing.assert_allclose(r["f1"], f1)
    np.testing.assert_array_equal(r["support"], [4, 2, 4, 1, 0, 0])
    np.testing.assert_array_equal(r["predicted"], [3, 2, 3, 2, 1, 0])
    # macro: the 5 classes true or predicted at least once; weighted: by support (11 rows)
    assert r["macro_precision"] == pytest.approx(8 / 15)
    assert r["macro_recall"] == pytest.approx(11 / 20)
    assert r["macro_f1"] == pytest.approx(sum(f1[:5]) / 5)
    assert M.macro_f1(y, pred, 6) == pytest.approx(sum(f1[:5]) / 5)
    assert r["weighted_precision"] == pytest.approx((4 * 2 / 3 + 2 / 2 + 4 + 1 / 2) / 11)
    assert r["weighted_recall"] == pytest.approx(7 / 11)
    assert r["weighted_f1"] == pytest.approx((4 * 4 / 7 + 2 / 2 + 4 * 6 / 7 + 2 / 3) / 11)


@pytest.mark.parametrize("decimals", [None, 1])
def test_roc_auc_is_the_mann_whitney_probability_with_and_without_ties(decimals):
    y, p = _fake(800, seed=3, decimals=decimals)
    a = M.roc_auc_ovr(y, p)
    brute = [_mann_whitney(p[:, k], y == k) for k in range(7)]
    np.testing.assert_allclose(a["per_class"], brute)
    assert a["macro"] == pytest.approx(np.mean(brute))
    assert a["weighted"] == pytest.approx(np.average(brute, weights=np.bincount(y, minlength=7)))


@pytest.mark.parametrize("decimals", [None, 2])
def test_roc_curve_points_by_brute_force_thresholds(decimals):
    y, p = _fake(300, seed=4, decimals=decimals)
    s, pos = p[:, 2], y == 2
    pts = M.roc_curve_points(s, pos, max_points=10_000)
    thresholds = np.unique(s)[::-1]  # every distinct score, highest first: predict positive when s >= t
    np.testing.assert_allclose(pts["fpr"], [0, *[(s[~pos] >= t).mean() for t in thresholds]], atol=1e-6)
    np.testing.assert_allclose(pts["tpr"], [0, *[(s[pos] >= t).mean() for t in thresholds]], atol=1e-6)
    assert pts["thresholds"][0] is None and pts["thresholds"][1:] == pytest.approx(thresholds, abs=1e-6)
    small = M.roc_curve_points(s, pos, max_points=21)
    assert len(small["fpr"]) <= 21
    assert small["fpr"][0] == 0 and small["tpr"][0] == 0 and small["fpr"][-1] == 1 and small["tpr"][-1] == 1
    assert np.all(np.diff(small["fpr"]) >= 0) and np.all(np.diff(small["tpr"]) >= 0)


def test_absent_classes_give_nan_or_zero_without_warnings():
    y, p = _fake(400, seed=5)
    y[y == 1] = 0  # nobody is "disgust", but the model still predicts it sometimes
    pred = p.argmax(1)
    pred[pred == 2] = 3  # and nobody is predicted "fear"
    y[y == 2] = 3  # ... nor is anybody "fear": class 2 is neither true nor predicted
    assert (pred == 1).any() and not (y == 2).any() and not (pred == 2).any()
    p_no2 = p.copy()
    p_no2[:, 2] = 0  # so the summary never predicts class 2 either
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        r = M.precision_recall_f1(y, pred, 7)
        auc = M.roc_auc_ovr(y, p)
        summary = M.summarize(y, p_no2, [f"c{k}" for k in range(7)], n_resamples=50)
    for name in ("precision", "recall", "f1"):
        assert np.isnan(r[name][2])  # neither true nor predicted: nothing to score
        scored = np.delete(r[name], 2)  # the macro mean runs over the 6 classes true or predicted
        assert r[f"macro_{name}"] == pytest.approx(scored.mean())
        assert summary["per_class"][2][name] is None and summary["per_class"][2][f"{name}_ci_low"] is None
    assert r["recall"][1] == 0 and r["precision"][1] == 0 and r["support"][1] == 0 and r["predicted"][1] > 0
    assert np.isnan(auc["per_class"][1]) and np.isnan(auc["per_class"][2])
    present = np.unique(y)
    assert auc["macro"] == pytest.approx(np.mean([_mann_whitney(p[:, k], y == k) for k in present]))
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


def test_reliability_bins_match_sklearn_calibration_curve():
    y, p = _fake(600, seed=8)
    correct, conf = p.argmax(1) == y, p.max(1)
    acc, mean_conf = calibration_curve(correct, conf, n_bins=15, strategy="uniform")
    bins = [b for b in M.reliability_bins(y, p) if b["count"]]
    np.testing.assert_allclose([b["accuracy"] for b in bins], acc)
    np.testing.assert_allclose([b["confidence"] for b in bins], mean_conf)


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


def test_per_class_and_headline_intervals_equal_a_loop_of_sklearn_calls_on_the_same_resamples():
    """The kernel's intervals are those of resampling rows and calling sklearn per resample (its documented
    scheme: ``rng.integers(0, N, (B, N))`` with ``rng = default_rng(seed)``), a rare class included."""
    y, p = _fake(300, seed=9)
    y[:290][y[:290] == 1] = 0  # "disgust": 10 rows at most, absent from some resamples
    pred, n, b = p.argmax(1), 300, 200
    summary = M.summarize(y, p, [f"c{k}" for k in range(7)], n_resamples=b, seed=3)
    idx = np.random.default_rng(3).integers(0, n, size=(b, n))
    per, macro = np.full((3, b, 7), np.nan), np.empty(b)
    for i, rows in enumerate(idx):
        yr, pr = y[rows], pred[rows]
        scores = skm.precision_recall_fscore_support(yr, pr, labels=range(7), zero_division=0)
        scored = np.isin(np.arange(7), np.r_[yr, pr])
        per[:, i][:, scored] = np.asarray(scores[:3])[:, scored]
        macro[i] = skm.f1_score(yr, pr, average="macro", zero_division=0)
    for m, name in enumerate(("precision", "recall", "f1")):
        lo, hi = np.nanpercentile(per[m], [2.5, 97.5], axis=0)
        for k, row in enumerate(summary["per_class"]):
            assert (row[f"{name}_ci_low"], row[f"{name}_ci_high"]) == pytest.approx((lo[k], hi[k])), (name, k)
    ci = summary["metrics"]["macro_f1"]
    assert (ci["ci_low"], ci["ci_high"]) == pytest.approx(tuple(np.percentile(macro, [2.5, 97.5])))


def test_input_validation_messages():
    with pytest.raises(ValueError, match="outside"):
        M.confusion_matrix([0, 7], [0, 1], 7)
    with pytest.raises(ValueError, match=r"\(N, C\)"):
        M.roc_auc_ovr([0, 1], np.ones((3, 2)))
    with pytest.raises(ValueError, match="class names"):
        M.summarize([0, 1], np.eye(2), ["a"])
