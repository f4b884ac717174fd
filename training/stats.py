"""Significance tests for comparing two models: on one split (McNemar, paired bootstrap) and over seeds
(paired t-test with Bonferroni correction, Cohen's d_z).

Why these: two models evaluated on the *same* images are paired data. McNemar looks only at the images on
which exactly one of them is right, which is the right test for "is A's accuracy different from B's on this
split" (Dietterich 1998). Seeds of the same recipe are paired too (same seed, same data order), so
differences between rungs of an ablation are tested with a paired t-test on per-seed scores, corrected for
the number of rungs compared (Bonferroni: conservative, but simple and valid under any dependence).

Every function returns plain floats (``nan`` where a quantity is undefined, e.g. a t-test on one seed),
never raises on degenerate but legal inputs, and says which variant it used.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np
from scipy import stats as sps

from core.metrics import bootstrap_weights

MCNEMAR_EXACT_BELOW = 25
"""Use the exact binomial McNemar test when the discordant count b + c is below this (the usual rule of
thumb, e.g. Rosner's; the chi-square approximation is poor for small b + c)."""


@dataclass(frozen=True)
class McNemarResult:
    """``b``: rows only A gets right; ``c``: rows only B gets right; ``method``: "exact" or "chi2"."""

    b: int
    c: int
    statistic: float
    p_value: float
    method: str
    n: int

    def to_dict(self) -> dict:
        return asdict(self)


def mcnemar(correct_a: Sequence[bool], correct_b: Sequence[bool], exact: bool | None = None) -> McNemarResult:
    """McNemar's test of equal accuracy for two classifiers on the same rows.

    Args:
        correct_a, correct_b: per-row correctness of A and B, aligned row by row.
        exact: force the exact binomial test (True) or chi-square with continuity correction (False);
            None picks exact when ``b + c < MCNEMAR_EXACT_BELOW``.

    The exact test is the two-sided binomial test of ``min(b, c)`` successes in ``b + c`` trials at 1/2
    (statistic = ``min(b, c)``, as in statsmodels); the asymptotic one is ``(|b - c| - 1)^2 / (b + c)``
    against chi-square with 1 degree of freedom (Edwards' continuity correction). With ``b + c = 0`` the
    classifiers never disagree: p = 1.
    """
    a = np.asarray(correct_a, dtype=bool)
    bb = np.asarray(correct_b, dtype=bool)
    if a.shape != bb.shape or a.ndim != 1:
        raise ValueError(f"correct_a {a.shape} and correct_b {bb.shape} must be 1-D and aligned")
    b = int((a & ~bb).sum())
    c = int((~a & bb).sum())
    n = b + c
    use_exact = n < MCNEMAR_EXACT_BELOW if exact is None else bool(exact)
    if use_exact:
        stat = float(min(b, c))
        p = 1.0 if n == 0 else min(1.0, 2.0 * float(sps.binom.cdf(min(b, c), n, 0.5)))
        return McNemarResult(b, c, stat, p, "exact", int(a.size))
    if n == 0:
        return McNemarResult(b, c, 0.0, 1.0, "chi2", int(a.size))
    stat = (abs(b - c) - 1.0) ** 2 / n
    return McNemarResult(b, c, float(stat), float(sps.chi2.sf(stat, 1)), "chi2", int(a.size))


@dataclass(frozen=True)
class TTestResult:
    """Paired t-test over seeds: ``mean_diff`` = mean(a - b); ``ci_low``/``ci_high`` its t-interval."""

    mean_diff: float
    statistic: float
    p_value: float
    df: int
    ci_low: float
    ci_high: float
    cohens_dz: float
    n: int

    def to_dict(self) -> dict:
        return asdict(self)


def cohens_dz(a: Sequence[float], b: Sequence[float]) -> float:
    """Cohen's d for paired samples, d_z = mean(a - b) / sd(a - b) (sd with ddof=1).

    d_z is the effect size that matches the paired t-test (t = d_z * sqrt(n)); it is larger than the
    "between groups" d when seeds are strongly correlated, which is the point of pairing. ``nan`` for fewer
    than two pairs or when all differences are equal (no spread to scale by), ``±inf`` never.
    """
    d = np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64)
    if d.size < 2:
        return float("nan")
    sd = float(d.std(ddof=1))
    return float(d.mean() / sd) if sd > 0 else float("nan")


def paired_ttest(a: Sequence[float], b: Sequence[float], alpha: float = 0.05) -> TTestResult:
    """Two-sided paired t-test of mean(a - b) = 0 (same numbers as ``scipy.stats.ttest_rel``).

    With one pair everything but ``mean_diff`` is ``nan``. When all differences are equal, the t statistic
    is ``±inf`` with p = 0 for a non-zero difference and ``nan`` for zero, as scipy does.
    """
    x = np.asarray(a, dtype=np.float64)
    y = np.asarray(b, dtype=np.float64)
    if x.shape != y.shape or x.ndim != 1:
        raise ValueError(f"a {x.shape} and b {y.shape} must be 1-D and paired")
    d = x - y
    n = int(d.size)
    nan = float("nan")
    if n == 0:
        return TTestResult(nan, nan, nan, 0, nan, nan, nan, 0)
    mean = float(d.mean())
    if n < 2:
        return TTestResult(mean, nan, nan, 0, nan, nan, nan, n)
    df = n - 1
    sd = float(d.std(ddof=1))
    if sd == 0:
        t = math.copysign(math.inf, mean) if mean != 0 else nan
        p = 0.0 if mean != 0 else nan
        return TTestResult(mean, t, p, df, mean, mean, nan, n)
    se = sd / math.sqrt(n)
    t = mean / se
    p = float(2 * sps.t.sf(abs(t), df))
    half = float(sps.t.ppf(1 - alpha / 2, df)) * se
    return TTestResult(mean, float(t), p, df, mean - half, mean + half, mean / sd, n)


def bonferroni(p_values: Sequence[float]) -> list[float]:
    """Bonferroni-adjusted p-values: ``min(1, p * m)`` with m = number of tests (``nan`` stays ``nan``).

    m counts every test in the family, including undefined ones, so adding comparisons can only make each
    adjusted p larger, never smaller.
    """
    p = np.asarray(p_values, dtype=np.float64)
    return [float(v) for v in np.minimum(1.0, p * p.size)]


def t_interval(values: Sequence[float], alpha: float = 0.05) -> tuple[float, float, float, float]:
    """Mean, sample std (ddof=1) and the t confidence interval of the mean of a few per-seed scores.

    Returns ``(mean, std, ci_low, ci_high)``; std and the interval are ``nan`` for a single value.
    """
    v = np.asarray(values, dtype=np.float64)
    if v.size == 0:
        return (float("nan"),) * 4
    mean = float(v.mean())
    if v.size < 2:
        return mean, float("nan"), float("nan"), float("nan")
    sd = float(v.std(ddof=1))
    half = float(sps.t.ppf(1 - alpha / 2, v.size - 1)) * sd / math.sqrt(v.size)
    return mean, sd, mean - half, mean + half


@dataclass(frozen=True)
class BootstrapDiff:
    """Paired bootstrap of accuracy(A) - accuracy(B) on the same rows (percentile CI)."""

    diff: float
    ci_low: float
    ci_high: float
    p_value: float
    n_resamples: int
    seed: int

    def to_dict(self) -> dict:
        return asdict(self)


def paired_bootstrap_accuracy_diff(
    correct_a: Sequence[bool],
    correct_b: Sequence[bool],
    n_resamples: int = 1000,
    seed: int = 0,
    alpha: float = 0.05,
) -> BootstrapDiff:
    """Resample rows (the same rows for both models) and take percentiles of the accuracy difference.

    The p-value is the usual bootstrap approximation ``2 * min(P(d* <= 0), P(d* >= 0))``, capped at 1: a
    rough two-sided figure that agrees with the CI (p < alpha iff the CI excludes 0, up to ties). Prefer
    McNemar for a test on one split; this gives the interval McNemar does not.
    """
    a = np.asarray(correct_a, dtype=np.float64)
    b = np.asarray(correct_b, dtype=np.float64)
    if a.shape != b.shape or a.ndim != 1 or a.size == 0:
        raise ValueError(f"correct_a {a.shape} and correct_b {b.shape} must be 1-D, aligned and non-empty")
    d = a - b
    rng = np.random.default_rng(seed)
    draws = []
    for start in range(0, n_resamples, 500):
        w = bootstrap_weights(d.size, min(500, n_resamples - start), rng)
        draws.append(w @ d / d.size)
    boot = np.concatenate(draws)
    lo, hi = np.percentile(boot, [100 * alpha / 2, 100 * (1 - alpha / 2)])
    p = min(1.0, 2.0 * min(float((boot <= 0).mean()), float((boot >= 0).mean())))
    return BootstrapDiff(float(d.mean()), float(lo), float(hi), p, int(n_resamples), int(seed))
