"""Classification metrics of one evaluation: scikit-learn point values plus seeded bootstrap intervals.

No torch, so the trainer, evaluation, ablation and benchmarks share the numbers. Point values are
``sklearn.metrics`` with ``zero_division=0``; undefined values are ``nan``. Our own part is the bootstrap kernel:
a resample is integer weights on the rows, so 1,000 resamples are a few matrix products, not 1,000 sklearn calls.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np
from sklearn import metrics as skm

ECE_BINS = 15
"""Equal-width confidence bins for the expected calibration error (Guo et al., ICML 2017, use 15)."""

BOOTSTRAP_METRICS: tuple[str, ...] = (
    "accuracy",
    "macro_precision",
    "macro_recall",
    "macro_f1",
    "weighted_precision",
    "weighted_recall",
    "weighted_f1",
    "roc_auc_macro",
    "ece",
)
"""The headline metrics that get a bootstrap CI in ``metrics`` (per-class P/R/F1 get theirs in ``per_class``)."""

PER_CLASS_CI: tuple[str, ...] = ("precision", "recall", "f1")
"""Per-class metrics whose interval :func:`summarize` writes as ``<metric>_ci_low`` / ``<metric>_ci_high``."""

_CHUNK = 250  # resamples per block, bounds memory at about _CHUNK * N * 8 bytes per temporary


def _check(y_true, probs=None, num_classes: int | None = None, y_pred=None):
    """Validated ``(y, probs, C)`` or, with ``y_pred``, ``(y, y_pred, C)``; labels must lie in ``0..C-1``."""
    y = np.asarray(y_true)
    if y.ndim != 1:
        raise ValueError(f"y_true must be 1-D (N,), got shape {y.shape}")
    if y.size and not np.issubdtype(y.dtype, np.integer) and not np.all(np.mod(y, 1) == 0):
        raise ValueError("y_true must hold integer class indices")
    y = y.astype(np.int64)
    p = None
    if probs is not None:
        p = np.asarray(probs, dtype=np.float64)
        if p.ndim != 2 or p.shape[0] != y.shape[0]:
            raise ValueError(f"probs must be (N, C) with N={y.shape[0]}, got shape {p.shape}")
        num_classes = p.shape[1] if num_classes is None else num_classes
    if num_classes is None:
        raise ValueError("num_classes is needed when no probs are given")
    for name, v in (("y_true", y), ("y_pred", y_pred)):
        if v is not None and np.size(v) and (np.min(v) < 0 or np.max(v) >= num_classes):
            raise ValueError(f"{name} holds labels outside 0..{num_classes - 1}")
    if y_pred is None:
        return y, p, int(num_classes)
    pred = np.asarray(y_pred, dtype=np.int64)
    if pred.shape != y.shape:
        raise ValueError(f"y_true {y.shape} and y_pred {pred.shape} differ in shape")
    return y, pred, int(num_classes)


# --------------------------------------------------------------------------------------------- point metrics
def confusion_matrix(y_true: Sequence[int], y_pred: Sequence[int], num_classes: int) -> np.ndarray:
    """Counts ``(C, C)``: row = true class, column = predicted class (scikit-learn's orientation)."""
    y, pred, c = _check(y_true, num_classes=num_classes, y_pred=y_pred)
    return skm.confusion_matrix(y, pred, labels=np.arange(c))


def precision_recall_f1(y_true: Sequence[int], y_pred: Sequence[int], num_classes: int) -> dict:
    """Per-class arrays ``precision``, ``recall``, ``f1``, ``support``, ``predicted`` plus macro and weighted
    averages (conventions in the module docstring)."""
    y, pred, c = _check(y_true, num_classes=num_classes, y_pred=y_pred)
    per = skm.precision_recall_fscore_support(y, pred, labels=np.arange(c), zero_division=0)
    out: dict = {"support": per[3], "predicted": np.bincount(pred, minlength=c)}
    absent = (out["support"] == 0) & (out["predicted"] == 0)
    for i, name in enumerate(PER_CLASS_CI):
        out[name] = np.where(absent, np.nan, per[i])
    for avg in ("macro", "weighted"):
        scores = skm.precision_recall_fscore_support(y, pred, average=avg, zero_division=0)
        out.update({f"{avg}_{name}": float(v) for name, v in zip(PER_CLASS_CI, scores, strict=False)})
    return out


def macro_f1(y_true: Sequence[int], y_pred: Sequence[int], num_classes: int) -> float:
    """Macro-F1 as ``sklearn.metrics.f1_score(average="macro", zero_division=0)``: the trainer's model selection
    and the evaluation report use this definition, so the two cannot disagree."""
    y, pred, _ = _check(y_true, num_classes=num_classes, y_pred=y_pred)
    return float(skm.f1_score(y, pred, average="macro", zero_division=0))


def roc_auc_ovr(y_true: Sequence[int], probs: np.ndarray) -> dict:
    """One-vs-rest ROC-AUC: ``per_class`` (``nan`` where a class is absent or is the only class present),
    ``macro`` (mean over defined classes) and ``weighted`` (by support)."""
    y, p, c = _check(y_true, probs)
    support = np.bincount(y, minlength=c).astype(np.float64)
    per = np.array([skm.roc_auc_score(y == k, p[:, k]) if 0 < support[k] < y.size else np.nan for k in range(c)])
    ok = ~np.isnan(per)
    if not ok.any():
        return {"per_class": per, "macro": float("nan"), "weighted": float("nan")}
    return {
        "per_class": per,
        "macro": float(per[ok].mean()),
        "weighted": float(np.average(per[ok], weights=support[ok])),
    }


def roc_curve_points(scores: np.ndarray, positive: np.ndarray, max_points: int = 101) -> dict[str, list]:
    """``sklearn.metrics.roc_curve`` of one binary problem (every distinct threshold, from (0, 0) at +inf to
    (1, 1)), downsampled to at most ``max_points`` evenly spaced points with both ends kept, for plotting."""
    positive = np.asarray(positive, dtype=bool)
    if positive.all() or not positive.any():
        return {"fpr": [], "tpr": [], "thresholds": []}
    fpr, tpr, thr = skm.roc_curve(positive, np.asarray(scores, dtype=np.float64), drop_intermediate=False)
    if fpr.size > max_points:
        keep = np.unique(np.linspace(0, fpr.size - 1, max_points).round().astype(int))
        fpr, tpr, thr = fpr[keep], tpr[keep], thr[keep]
    return {
        "fpr": [round(float(v), 6) for v in fpr],
        "tpr": [round(float(v), 6) for v in tpr],
        "thresholds": [round(float(t), 6) if np.isfinite(t) else None for t in thr],
    }


def _bin_index(conf: np.ndarray, n_bins: int) -> np.ndarray:
    """Bin ``i`` holds confidences in ``(i/n, (i+1)/n]``, as ``sklearn.calibration.calibration_curve``'s uniform
    bins; a confidence of exactly 0 goes to bin 0."""
    return np.clip(np.ceil(conf * n_bins).astype(np.int64) - 1, 0, n_bins - 1)


def _calibration_sums(y: np.ndarray, p: np.ndarray, n_bins: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per confidence bin: row count, number correct and sum of top-class confidences."""
    conf = p.max(axis=1)
    b = _bin_index(conf, n_bins)
    correct = (p.argmax(axis=1) == y).astype(np.float64)
    return (np.bincount(b, minlength=n_bins), np.bincount(b, correct, n_bins), np.bincount(b, conf, n_bins))


def reliability_bins(y_true: Sequence[int], probs: np.ndarray, n_bins: int = ECE_BINS) -> list[dict]:
    """The reliability diagram: per equal-width confidence bin, its edges, count, accuracy and mean
    confidence (``None`` for the last two in an empty bin). Confidence = the top class probability."""
    y, p, _ = _check(y_true, probs)
    count, hits, conf = _calibration_sums(y, p, n_bins)
    return [
        {
            "lo": round(i / n_bins, 6),
            "hi": round((i + 1) / n_bins, 6),
            "count": int(n),
            "accuracy": float(hits[i] / n) if n else None,
            "confidence": float(conf[i] / n) if n else None,
        }
        for i, n in enumerate(count)
    ]


def expected_calibration_error(y_true: Sequence[int], probs: np.ndarray, n_bins: int = ECE_BINS) -> float:
    """ECE = sum over bins of (bin share) * |bin accuracy - bin mean confidence| (Naeini et al. 2015)."""
    y, p, _ = _check(y_true, probs)
    _, hits, conf = _calibration_sums(y, p, n_bins)
    return float(np.abs(hits - conf).sum() / y.size) if y.size else float("nan")


# sklearn's log_loss / brier_score_loss warn on float32-softmax rows (sums off by ~1e-7): two numpy lines instead.
def negative_log_likelihood(y_true: Sequence[int], probs: np.ndarray, eps: float = 1e-12) -> float:
    """Mean cross-entropy of the true class (probabilities clipped at ``eps`` so a hard 0 stays finite)."""
    y, p, _ = _check(y_true, probs)
    return float(-np.log(np.clip(p[np.arange(y.size), y], eps, 1.0)).mean())


def brier_score(y_true: Sequence[int], probs: np.ndarray) -> float:
    """Mean over rows of the squared distance between ``probs`` and the one-hot label (multi-class Brier)."""
    y, p, c = _check(y_true, probs)
    return float(((p - np.eye(c)[y]) ** 2).sum(axis=1).mean())


# --------------------------------------------------------------------------------------------- bootstrap kernel
def _prf_from_confusion(cm: np.ndarray) -> dict[str, np.ndarray]:
    """Per-class P/R/F1 (``nan`` for a class neither true nor predicted) and their macro/weighted averages for a
    stack of weighted confusion matrices ``(B, C, C)``, with sklearn's conventions."""
    tp = np.diagonal(cm, axis1=-2, axis2=-1)
    support, predicted = cm.sum(axis=-1), cm.sum(axis=-2)
    scored = (support > 0) | (predicted > 0)
    precision = np.divide(tp, predicted, out=np.zeros_like(tp), where=predicted > 0)
    recall = np.divide(tp, support, out=np.zeros_like(tp), where=support > 0)
    denom = precision + recall
    f1 = np.divide(2 * precision * recall, denom, out=np.zeros_like(tp), where=denom > 0)
    out: dict[str, np.ndarray] = {}
    for name, v in zip(PER_CLASS_CI, (precision, recall, f1), strict=True):
        with np.errstate(invalid="ignore", divide="ignore"):
            out[f"macro_{name}"] = np.where(scored, v, 0.0).sum(axis=-1) / scored.sum(axis=-1)
            out[f"weighted_{name}"] = (v * support).sum(axis=-1) / support.sum(axis=-1)
        out[name] = np.where(scored, v, np.nan)
    return out


def _auc_weighted(scores: np.ndarray, positive: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Binary ROC-AUC for each row of ``weights`` ``(B, N)``: Mann-Whitney U with ties counted as 1/2.

    The negatives are sorted once; ``searchsorted`` gives, per positive, how many negatives score below (and
    tie). A resample only re-weights rows, so its AUC is a cumulative sum and one weighted dot product.
    """
    positive = np.asarray(positive, dtype=bool)
    neg_idx, pos_idx = np.flatnonzero(~positive), np.flatnonzero(positive)
    neg_idx = neg_idx[np.argsort(scores[neg_idx], kind="mergesort")]
    s_neg = scores[neg_idx]
    left = np.searchsorted(s_neg, scores[pos_idx], side="left")
    right = np.searchsorted(s_neg, scores[pos_idx], side="right")
    cum = np.zeros((weights.shape[0], neg_idx.size + 1))
    np.cumsum(weights[:, neg_idx], axis=1, out=cum[:, 1:])
    below = cum[:, left] + 0.5 * (cum[:, right] - cum[:, left])
    wp = weights[:, pos_idx]
    num, den = (wp * below).sum(axis=1), wp.sum(axis=1) * cum[:, -1]
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, num / np.where(den > 0, den, 1.0), np.nan)


def _weighted_metrics(y: np.ndarray, p: np.ndarray, weights: np.ndarray, n_bins: int = ECE_BINS) -> dict:
    """Every headline metric ``(B,)`` and per-class P/R/F1 ``(B, C)`` for each row of ``weights`` ``(B, N)``."""
    n, c = p.shape
    pred, conf = p.argmax(axis=1), p.max(axis=1)
    correct = (pred == y).astype(np.float64)
    total = weights.sum(axis=1)
    cell = np.zeros((n, c * c))
    cell[np.arange(n), y * c + pred] = 1.0
    out = _prf_from_confusion((weights @ cell).reshape(-1, c, c))
    onehot = np.zeros((n, n_bins))
    onehot[np.arange(n), _bin_index(conf, n_bins)] = 1.0
    gap = weights @ (onehot * (correct - conf)[:, None])  # per bin: sum(correct) - sum(confidence)
    per_auc = np.stack([_auc_weighted(p[:, k], y == k, weights) for k in range(c)], axis=1)
    ok = ~np.isnan(per_auc)  # a class absent from (or alone in) a resample has no AUC: average the rest
    with np.errstate(invalid="ignore", divide="ignore"):
        out["accuracy"] = weights @ correct / total
        out["ece"] = np.abs(gap).sum(axis=1) / total
        out["roc_auc_macro"] = np.where(ok, per_auc, 0.0).sum(axis=1) / ok.sum(axis=1)
    return out


def bootstrap_weights(n: int, n_resamples: int, rng: np.random.Generator) -> np.ndarray:
    """``(n_resamples, n)`` draw counts: row b says how often each row appears in resample b."""
    idx = rng.integers(0, n, size=(n_resamples, n))
    flat = idx + (np.arange(n_resamples) * n)[:, None]
    return np.bincount(flat.ravel(), minlength=n_resamples * n).reshape(n_resamples, n).astype(np.float64)


def _intervals(y, p, n_resamples: int, seed: int, alpha: float, n_bins: int) -> dict[str, np.ndarray] | None:
    """Percentile interval ``(2, ...)`` of every kernel output over seeded row resamples (``nan`` where the
    metric is undefined on every resample); ``None`` when there is nothing to resample."""
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be in (0, 1), got {alpha}")
    if n_resamples <= 0 or y.size == 0:
        return None
    rng = np.random.default_rng(seed)
    chunks = [
        _weighted_metrics(y, p, bootstrap_weights(y.size, min(_CHUNK, n_resamples - start), rng), n_bins)
        for start in range(0, n_resamples, _CHUNK)
    ]
    with warnings.catch_warnings():  # an all-nan column (a class absent from every resample) stays nan
        warnings.simplefilter("ignore", RuntimeWarning)
        q = [100 * alpha / 2, 100 * (1 - alpha / 2)]
        return {k: np.nanpercentile(np.concatenate([ch[k] for ch in chunks]), q, axis=0) for k in chunks[0]}


def _point(y: np.ndarray, p: np.ndarray, n_bins: int) -> tuple[dict[str, float], dict, dict]:
    """Headline point values, the precision/recall/F1 report and the ROC-AUC report."""
    if y.size == 0:
        raise ValueError("no rows to score")
    pred = p.argmax(axis=1)
    prf = precision_recall_f1(y, pred, p.shape[1])
    auc = roc_auc_ovr(y, p)
    head = {k: prf[k] for k in BOOTSTRAP_METRICS if k in prf}
    head |= {
        "accuracy": float(skm.accuracy_score(y, pred)),
        "roc_auc_macro": auc["macro"],
        "ece": expected_calibration_error(y, p, n_bins),
    }
    return head, prf, auc


def _entry(value, ci: dict | None, key: str, *index) -> dict[str, float | None]:
    lo, hi = (None, None) if ci is None else (_f(ci[key][(0, *index)]), _f(ci[key][(1, *index)]))
    return {"value": _f(value), "ci_low": lo, "ci_high": hi}


def bootstrap_ci(
    y_true: Sequence[int],
    probs: np.ndarray,
    n_resamples: int = 1000,
    seed: int = 0,
    alpha: float = 0.05,
    n_bins: int = ECE_BINS,
) -> dict[str, dict[str, float | None]]:
    """Point value and percentile bootstrap CI of every metric in :data:`BOOTSTRAP_METRICS`.

    Rows (images) are resampled with replacement, seeded, so the same inputs always give the same interval.
    Returns ``{metric: {"value", "ci_low", "ci_high"}}``; the CI fields are ``None`` when ``n_resamples`` is 0
    or the metric is undefined on every resample.
    """
    y, p, _ = _check(y_true, probs)
    head = _point(y, p, n_bins)[0]
    ci = _intervals(y, p, n_resamples, seed, alpha, n_bins)
    return {k: _entry(head[k], ci, k) for k in BOOTSTRAP_METRICS}


def _f(x) -> float | None:
    """A float for JSON: ``nan`` becomes ``None`` (JSON has no NaN)."""
    x = float(x)
    return None if np.isnan(x) else x


# --------------------------------------------------------------------------------------------- everything
def summarize(
    y_true: Sequence[int],
    probs: np.ndarray,
    class_names: Sequence[str],
    n_resamples: int = 1000,
    seed: int = 0,
    alpha: float = 0.05,
    n_bins: int = ECE_BINS,
    roc_points: int = 101,
) -> dict:
    """All metrics of one evaluation as JSON-ready plain types (the ``metrics`` .. ``reliability`` part of the
    results JSON, ``docs/results-schema.md``), per-class intervals included: one bootstrap serves them all."""
    y, p, c = _check(y_true, probs)
    if len(class_names) != c:
        raise ValueError(f"{len(class_names)} class names for {c} probability columns")
    head, prf, auc = _point(y, p, n_bins)
    ci = _intervals(y, p, n_resamples, seed, alpha, n_bins)
    metrics = {k: _entry(head[k], ci, k) for k in BOOTSTRAP_METRICS}
    metrics["nll"] = _entry(negative_log_likelihood(y, p), None, "nll")
    metrics["brier"] = _entry(brier_score(y, p), None, "brier")
    metrics["roc_auc_weighted"] = _entry(auc["weighted"], None, "roc_auc_weighted")
    per_class = []
    for k in range(c):
        row = {"name": str(class_names[k])}
        for m in PER_CLASS_CI:
            e = _entry(prf[m][k], ci, m, k)
            row |= {m: e["value"], f"{m}_ci_low": e["ci_low"], f"{m}_ci_high": e["ci_high"]}
        row |= {
            "support": int(prf["support"][k]),
            "predicted": int(prf["predicted"][k]),
            "roc_auc": _f(auc["per_class"][k]),
        }
        per_class.append(row)
    pred = p.argmax(axis=1)
    normalized = skm.confusion_matrix(y, pred, labels=np.arange(c), normalize="true")
    curves = [roc_curve_points(p[:, k], y == k, roc_points) for k in range(c)]  # one-vs-rest
    return {
        "metrics": metrics,
        "per_class": per_class,
        "confusion": {
            "counts": confusion_matrix(y, pred, c).astype(int).tolist(),
            "normalized": [[round(float(v), 6) for v in row] for row in normalized],
        },
        "roc": [{"name": str(class_names[k]), "auc": _f(auc["per_class"][k]), **curves[k]} for k in range(c)],
        "reliability": {"n_bins": n_bins, "bins": reliability_bins(y, p, n_bins)},
    }
