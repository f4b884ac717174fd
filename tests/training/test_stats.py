"""training.stats against scipy / statsmodels on fixed inputs."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats as sps
from statsmodels.stats.contingency_tables import mcnemar as sm_mcnemar
from statsmodels.stats.multitest import multipletests

from training import stats as S


def _pairs(b: int, c: int, both: int = 40, neither: int = 17):
    """Correctness vectors with b rows only A gets right and c rows only B gets right."""
    a = np.r_[np.ones(both), np.ones(b), np.zeros(c), np.zeros(neither)].astype(bool)
    bb = np.r_[np.ones(both), np.zeros(b), np.ones(c), np.zeros(neither)].astype(bool)
    return a, bb


@pytest.mark.parametrize(("b", "c"), [(5, 12), (3, 3), (0, 9), (11, 13)])
def test_mcnemar_exact_for_small_discordant_counts_matches_statsmodels(b, c):
    a, bb = _pairs(b, c)
    r = S.mcnemar(a, bb)
    ref = sm_mcnemar([[40, b], [c, 17]], exact=True)
    assert r.method == "exact" and (r.b, r.c) == (b, c)
    assert r.statistic == pytest.approx(ref.statistic)
    assert r.p_value == pytest.approx(ref.pvalue)


@pytest.mark.parametrize(("b", "c"), [(30, 12), (50, 61), (25, 0)])
def test_mcnemar_chi2_with_continuity_for_large_counts_matches_statsmodels(b, c):
    a, bb = _pairs(b, c)
    r = S.mcnemar(a, bb)
    ref = sm_mcnemar([[40, b], [c, 17]], exact=False, correction=True)
    assert r.method == "chi2"
    assert r.statistic == pytest.approx(ref.statistic)
    assert r.p_value == pytest.approx(ref.pvalue)
    forced = S.mcnemar(a, bb, exact=True)
    assert forced.p_value == pytest.approx(sm_mcnemar([[40, b], [c, 17]], exact=True).pvalue)


def test_mcnemar_no_disagreement_and_misaligned_input():
    a, bb = _pairs(0, 0)
    assert S.mcnemar(a, bb).p_value == 1.0
    assert S.mcnemar(a, bb, exact=False).p_value == 1.0
    with pytest.raises(ValueError, match="aligned"):
        S.mcnemar([True, False], [True])


def test_paired_ttest_matches_scipy_and_dz_relation():
    a = np.array([0.612, 0.634, 0.641, 0.598, 0.627])
    b = np.array([0.601, 0.615, 0.633, 0.600, 0.610])
    r = S.paired_ttest(a, b)
    ref = sps.ttest_rel(a, b)
    assert r.statistic == pytest.approx(ref.statistic)
    assert r.p_value == pytest.approx(ref.pvalue)
    assert r.df == 4 and r.n == 5
    ci = ref.confidence_interval()
    assert (r.ci_low, r.ci_high) == pytest.approx((ci.low, ci.high))
    d = a - b
    assert r.cohens_dz == pytest.approx(d.mean() / d.std(ddof=1))
    assert S.cohens_dz(a, b) == pytest.approx(r.statistic / math.sqrt(5))


def test_paired_ttest_degenerate_cases_follow_scipy():
    one = S.paired_ttest([0.5], [0.4])
    assert one.mean_diff == pytest.approx(0.1) and math.isnan(one.p_value)
    const = S.paired_ttest([0.5, 0.6, 0.7], [0.4, 0.5, 0.6])
    assert const.statistic == math.inf and const.p_value == 0.0
    same = S.paired_ttest([0.5, 0.6], [0.5, 0.6])
    assert math.isnan(same.statistic) and math.isnan(same.p_value)
    assert math.isnan(S.cohens_dz([0.5, 0.6], [0.4, 0.5]))


def test_bonferroni_matches_statsmodels():
    p = [0.01, 0.04, 0.2, 0.5]
    assert S.bonferroni(p) == pytest.approx(list(multipletests(p, method="bonferroni")[1]))
    out = S.bonferroni([0.01, float("nan")])
    assert out[0] == pytest.approx(0.02) and math.isnan(out[1])


def test_t_interval_matches_scipy():
    v = [0.61, 0.63, 0.60]
    mean, sd, lo, hi = S.t_interval(v)
    ref = sps.t.interval(0.95, 2, loc=np.mean(v), scale=sps.sem(v))
    assert (lo, hi) == pytest.approx(ref)
    assert sd == pytest.approx(np.std(v, ddof=1))
    assert all(math.isnan(x) for x in S.t_interval([0.6])[1:])


def test_paired_bootstrap_accuracy_diff_agrees_with_scipy_bootstrap():
    rng = np.random.default_rng(0)
    truth_a = rng.random(2000) < 0.66
    flip = rng.random(2000) < 0.15  # B disagrees with A on 15 % of rows
    truth_b = np.where(flip, ~truth_a, truth_a)
    r = S.paired_bootstrap_accuracy_diff(truth_a, truth_b, n_resamples=4000, seed=1)
    assert r.diff == pytest.approx(truth_a.mean() - truth_b.mean())
    ref = sps.bootstrap(
        (truth_a.astype(float), truth_b.astype(float)),
        lambda x, y, axis: x.mean(axis=axis) - y.mean(axis=axis),
        paired=True,
        vectorized=True,
        n_resamples=4000,
        method="percentile",
        random_state=2,
    )
    # Different random draws: the two percentile intervals agree to Monte-Carlo error (~1e-3 here).
    assert r.ci_low == pytest.approx(ref.confidence_interval.low, abs=3e-3)
    assert r.ci_high == pytest.approx(ref.confidence_interval.high, abs=3e-3)
    assert r.ci_low < r.diff < r.ci_high
    # The bootstrap p-value and McNemar tell the same story on this (clearly different or not) pair.
    assert (r.p_value < 0.05) == (S.mcnemar(truth_a, truth_b).p_value < 0.05)
    assert S.paired_bootstrap_accuracy_diff(truth_a, truth_b, n_resamples=4000, seed=1) == r


def test_paired_bootstrap_and_mcnemar_agree_on_a_null_pair():
    a = np.r_[np.ones(600), np.zeros(400)].astype(bool)
    b = a.copy()
    b[:30] = False  # 30 rows only A gets right ...
    b[600:628] = True  # ... and 28 only B gets right: no real difference
    boot = S.paired_bootstrap_accuracy_diff(a, b, n_resamples=2000, seed=0)
    assert boot.ci_low < 0 < boot.ci_high and boot.p_value > 0.05
    assert S.mcnemar(a, b).p_value > 0.05
