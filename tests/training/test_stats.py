"""training.stats against hand-computed textbook values and oracles independent of the wrapped library calls."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats as sps

from training import stats as S

T975 = {2: 4.3027, 4: 2.7764}
"""Two-sided 95 % Student t quantiles from a printed table (df: t_0.975)."""


def _pairs(b: int, c: int, both: int = 40, neither: int = 17):
    """Correctness vectors with b rows only A gets right and c rows only B gets right."""
    a = np.r_[np.ones(both), np.ones(b), np.zeros(c), np.zeros(neither)].astype(bool)
    bb = np.r_[np.ones(both), np.zeros(b), np.ones(c), np.zeros(neither)].astype(bool)
    return a, bb


@pytest.mark.parametrize(("b", "c"), [(5, 12), (3, 3), (0, 9), (11, 13)])
def test_mcnemar_exact_for_small_discordant_counts_is_the_binomial_test(b, c):
    r = S.mcnemar(*_pairs(b, c))
    assert r.method == "exact" and (r.b, r.c, r.n) == (b, c, 40 + b + c + 17)
    assert r.statistic == min(b, c)
    assert r.p_value == pytest.approx(sps.binomtest(min(b, c), b + c, 0.5).pvalue)


def test_mcnemar_exact_hand_computed():
    # 0 of 9 discordant rows favour A: p = 2 * 0.5**9.
    assert S.mcnemar(*_pairs(0, 9)).p_value == pytest.approx(2 / 512)
    # b = c: the most likely outcome, p = 1.
    assert S.mcnemar(*_pairs(3, 3)).p_value == pytest.approx(1.0)


@pytest.mark.parametrize(("b", "c"), [(30, 12), (50, 61), (25, 0)])
def test_mcnemar_chi2_with_continuity_for_large_counts(b, c):
    a, bb = _pairs(b, c)
    r = S.mcnemar(a, bb)
    stat = (abs(b - c) - 1) ** 2 / (b + c)  # Edwards' continuity correction
    assert r.method == "chi2"
    assert r.statistic == pytest.approx(stat)
    assert r.p_value == pytest.approx(math.erfc(math.sqrt(stat / 2)))  # chi2(1) tail = 2 * normal tail of sqrt
    forced = S.mcnemar(a, bb, exact=True)
    assert forced.method == "exact" and forced.p_value == pytest.approx(sps.binomtest(min(b, c), b + c).pvalue)


def test_mcnemar_no_disagreement_and_misaligned_input():
    a, bb = _pairs(0, 0)
    assert S.mcnemar(a, bb).p_value == 1.0
    assert S.mcnemar(a, bb, exact=False).p_value == 1.0
    with pytest.raises(ValueError, match="aligned"):
        S.mcnemar([True, False], [True])


def test_paired_ttest_hand_computed_and_dz_relation():
    a = np.array([0.612, 0.634, 0.641, 0.598, 0.627])
    b = np.array([0.601, 0.615, 0.633, 0.600, 0.610])
    r = S.paired_ttest(a, b)
    d = a - b
    se = d.std(ddof=1) / math.sqrt(5)
    t = d.mean() / se
    assert r.mean_diff == pytest.approx(d.mean())
    assert r.statistic == pytest.approx(t)
    assert r.p_value == pytest.approx(2 * sps.t.sf(abs(t), 4))
    assert r.df == 4 and r.n == 5
    half = T975[4] * se  # the table's 4 decimals: exact to 1e-4 * se
    assert (r.ci_low, r.ci_high) == pytest.approx((d.mean() - half, d.mean() + half), abs=1e-4 * se)
    assert r.cohens_dz == pytest.approx(d.mean() / d.std(ddof=1))
    assert S.cohens_dz(a, b) == pytest.approx(r.statistic / math.sqrt(5))


def test_paired_ttest_degenerate_cases_are_quiet(recwarn):
    one = S.paired_ttest([0.5], [0.4])
    assert one.mean_diff == pytest.approx(0.1) and math.isnan(one.p_value) and one.n == 1
    const = S.paired_ttest([0.5, 0.6, 0.7], [0.4, 0.5, 0.6])
    assert const.statistic == math.inf and const.p_value == 0.0
    assert (const.ci_low, const.ci_high) == pytest.approx((0.1, 0.1)) and math.isnan(const.cohens_dz)
    same = S.paired_ttest([0.5, 0.6], [0.5, 0.6])
    assert math.isnan(same.statistic) and math.isnan(same.p_value)
    assert math.isnan(S.cohens_dz([0.5, 0.6], [0.4, 0.5]))
    assert not recwarn.list


def test_bonferroni_hand_computed():
    assert S.bonferroni([0.01, 0.04, 0.2, 0.5]) == pytest.approx([0.04, 0.16, 0.8, 1.0])
    out = S.bonferroni([0.01, float("nan")])  # the undefined test still counts in m
    assert out[0] == pytest.approx(0.02) and math.isnan(out[1])
    assert S.bonferroni([]) == []


def test_t_interval_hand_computed():
    v = [0.61, 0.63, 0.60]
    mean, sd, lo, hi = S.t_interval(v)
    m = sum(v) / 3
    s = math.sqrt(sum((x - m) ** 2 for x in v) / 2)
    assert (mean, sd) == pytest.approx((m, s))
    se = s / math.sqrt(3)
    assert (lo, hi) == pytest.approx((m - T975[2] * se, m + T975[2] * se), abs=1e-4 * se)
    assert all(math.isnan(x) for x in S.t_interval([0.6])[1:])
    assert S.t_interval([0.6, 0.6, 0.6]) == pytest.approx((0.6, 0.0, 0.6, 0.6))


def test_paired_bootstrap_accuracy_diff_matches_the_normal_approximation():
    rng = np.random.default_rng(0)
    truth_a = rng.random(2000) < 0.66
    flip = rng.random(2000) < 0.15  # B disagrees with A on 15 % of rows
    truth_b = np.where(flip, ~truth_a, truth_a)
    r = S.paired_bootstrap_accuracy_diff(truth_a, truth_b, n_resamples=4000, seed=1)
    n, b, c = 2000, int((truth_a & ~truth_b).sum()), int((~truth_a & truth_b).sum())
    diff = (b - c) / n
    assert r.diff == pytest.approx(diff)
    # Per-row differences are -1/0/1: variance (b + c)/n - diff^2; the percentile interval of a mean of 2,000
    # rows is close to normal, so it matches diff -/+ 1.96 se to Monte-Carlo error (~1e-3 here).
    se = math.sqrt(((b + c) / n - diff**2) / n)
    assert r.ci_low == pytest.approx(diff - 1.96 * se, abs=2e-3)
    assert r.ci_high == pytest.approx(diff + 1.96 * se, abs=2e-3)
    # The bootstrap p-value and McNemar tell the same story on this (clearly different or not) pair.
    assert (r.p_value < 0.05) == (S.mcnemar(truth_a, truth_b).p_value < 0.05)
    assert S.paired_bootstrap_accuracy_diff(truth_a, truth_b, n_resamples=4000, seed=1) == r
    assert S.paired_bootstrap_accuracy_diff(truth_a, truth_b, n_resamples=4000, seed=2) != r


def test_paired_bootstrap_and_mcnemar_agree_on_a_null_pair():
    a = np.r_[np.ones(600), np.zeros(400)].astype(bool)
    b = a.copy()
    b[:30] = False  # 30 rows only A gets right ...
    b[600:628] = True  # ... and 28 only B gets right: no real difference
    boot = S.paired_bootstrap_accuracy_diff(a, b, n_resamples=2000, seed=0)
    assert boot.ci_low < 0 < boot.ci_high and boot.p_value > 0.05
    assert S.mcnemar(a, b).p_value > 0.05
    with pytest.raises(ValueError, match="non-empty"):
        S.paired_bootstrap_accuracy_diff([], [])
