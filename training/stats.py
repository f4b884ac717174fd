"""Significance tests for two models: on one split (McNemar, paired bootstrap) and over seeds (paired t-test
with Bonferroni correction, Cohen's d_z), as thin typed wrappers around statsmodels and scipy.

Every function returns plain floats, ``nan`` where a quantity is undefined (e.g. a t-test on one seed), and
never raises or warns on degenerate but legal inputs.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np
from scipy import stats as sps
from statsmodels.stats.contingency_tables import mcnemar as sm_mcnemar
from statsmodels.stats.multitest import multipletests

MCNEMAR_EXACT_BELOW = 25
"""Use the exact binomial McNemar test when the discordant count b + c is below this (the usual rule of
thumb, e.g. Rosner's; the chi-square approximation is poor for small b + c)."""


class _Result:
    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class McNemarResult(_Result):
    """``b``: rows only A gets right; ``c``: rows only B gets right; ``method``: "exact" or "chi2"."""

    b: int
    c: int
    statistic: float
    p_value: float
    method: str
    n: int


def mcnemar(correct_a: Sequence[bool], correct_b: Sequence[bool], exact: bool | None = None) -> McNemarResult:
    """McNemar's test of equal accuracy of two classifiers from their aligned per-row correctness (statsmodels).

    ``exact`` forces the binomial test (True) or chi-square with continuity correction (False); None picks exact
    when ``b + c < MCNEMAR_EXACT_BELOW``. With ``b + c = 0`` they never disagree: statistic 0, p = 1.
    """
    a = np.asarray(correct_a, dtype=bool)
    bb = np.asarray(correct_b, dtype=bool)
    if a.shape != bb.shape or a.ndim != 1:
        raise ValueError(f"correct_a {a.shape} and correct_b {bb.shape} must be 1-D and aligned")
    table = [[int((a & bb).sum()), int((a & ~bb).sum())], [int((~a & bb).sum()), int((~a & ~bb).sum())]]
    b, c = table[0][1], table[1][0]
    use_exact = b + c < MCNEMAR_EXACT_BELOW if exact is None else bool(exact)
    method = "exact" if use_exact else "chi2"
    if b + c == 0:
        return McNemarResult(b, c, 0.0, 1.0, method, int(a.size))
    r = sm_mcnemar(table, exact=use_exact, correction=True)
    return McNemarResult(b, c, float(r.statistic), float(r.pvalue), method, int(a.size))


@dataclass(frozen=True)
class TTestResult(_Result):
    """Paired t-test over seeds: ``mean_diff`` = mean(a - b); ``ci_low``/``ci_high`` its t-interval."""

    mean_diff: float
    statistic: float
    p_value: float
    df: int
    ci_low: float
    ci_high: float
    cohens_dz: float
    n: int


def cohens_dz(a: Sequence[float], b: Sequence[float]) -> float:
    """Cohen's d for paired samples, d_z = mean(a - b) / sd(a - b) (sd with ddof=1).

    The effect size that matches the paired t-test (t = d_z * sqrt(n)). ``nan`` for fewer than two pairs or when
    all differences are equal, never ``±inf``.
    """
    d = np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64)
    sd = float(d.std(ddof=1)) if d.size >= 2 else 0.0
    return float(d.mean() / sd) if sd > 0 else float("nan")


def paired_ttest(a: Sequence[float], b: Sequence[float], alpha: float = 0.05) -> TTestResult:
    """Two-sided paired t-test of mean(a - b) = 0 (``scipy.stats.ttest_rel``) with its ``1 - alpha`` interval.

    With fewer than two pairs everything but ``mean_diff`` is ``nan``. When all differences are equal, scipy's
    t is ``±inf`` with p = 0 for a non-zero difference and ``nan`` for zero.
    """
    x = np.asarray(a, dtype=np.float64)
    y = np.asarray(b, dtype=np.float64)
    if x.shape != y.shape or x.ndim != 1:
        raise ValueError(f"a {x.shape} and b {y.shape} must be 1-D and paired")
    n, nan = int(x.size), float("nan")
    mean = float((x - y).mean()) if n else nan
    if n < 2:
        return TTestResult(mean, nan, nan, 0, nan, nan, nan, n)
    with warnings.catch_warnings():  # scipy warns on identical differences; the inf/nan result is documented
        warnings.simplefilter("ignore", RuntimeWarning)
        r = sps.ttest_rel(x, y)
        ci = r.confidence_interval(1 - alpha)
    return TTestResult(
        mean, float(r.statistic), float(r.pvalue), n - 1, float(ci.low), float(ci.high), cohens_dz(x, y), n
    )


def bonferroni(p_values: Sequence[float]) -> list[float]:
    """Bonferroni-adjusted p-values (statsmodels' ``multipletests``): ``min(1, p * m)``, ``nan`` stays ``nan``.

    m counts every test in the family, including undefined ones, so adding comparisons can only make each
    adjusted p larger, never smaller.
    """
    p = np.asarray(p_values, dtype=np.float64)
    return [float(v) for v in multipletests(p, method="bonferroni")[1]] if p.size else []


def t_interval(values: Sequence[float], alpha: float = 0.05) -> tuple[float, float, float, float]:
    """Mean, sample std (ddof=1) and the ``1 - alpha`` t-interval of the mean of a few per-seed scores
    (``scipy.stats.t.interval``). Returns ``(mean, std, ci_low, ci_high)``; std and the interval are ``nan``
    for a single value, and the interval is the point when all values are equal."""
    v = np.asarray(values, dtype=np.float64)
    if v.size < 2:
        return (float(v.mean()) if v.size else float("nan"),) + (float("nan"),) * 3
    mean, sd = float(v.mean()), float(v.std(ddof=1))
    if sd == 0:
        return mean, sd, mean, mean
    lo, hi = sps.t.interval(1 - alpha, v.size - 1, loc=mean, scale=sps.sem(v))
    return mean, sd, float(lo), float(hi)


@dataclass(frozen=True)
class BootstrapDiff(_Result):
    """Paired bootstrap of accuracy(A) - accuracy(B) on the same rows (percentile CI)."""

    diff: float
    ci_low: float
    ci_high: float
    p_value: float
    n_resamples: int
    seed: int


def paired_bootstrap_accuracy_diff(
    correct_a: Sequence[bool],
    correct_b: Sequence[bool],
    n_resamples: int = 1000,
    seed: int = 0,
    alpha: float = 0.05,
) -> BootstrapDiff:
    """Percentile interval of the accuracy difference over seeded row resamples (``scipy.stats.bootstrap`` of
    the per-row difference, which resamples the same rows for both models).

    The p-value ``2 * min(P(d* <= 0), P(d* >= 0))`` is rough; prefer McNemar for a test, this for the interval.
    """
    a = np.asarray(correct_a, dtype=np.float64)
    b = np.asarray(correct_b, dtype=np.float64)
    if a.shape != b.shape or a.ndim != 1 or a.size == 0:
        raise ValueError(f"correct_a {a.shape} and correct_b {b.shape} must be 1-D, aligned and non-empty")
    d = a - b
    r = sps.bootstrap(
        (d,),
        np.mean,
        n_resamples=n_resamples,
        confidence_level=1 - alpha,
        method="percentile",
        batch=500,
        rng=np.random.default_rng(seed),
    )
    boot = r.bootstrap_distribution
    p = min(1.0, 2.0 * min(float((boot <= 0).mean()), float((boot >= 0).mean())))
    ci = r.confidence_interval
    return BootstrapDiff(float(d.mean()), float(ci.low), float(ci.high), p, int(n_resamples), int(seed))
