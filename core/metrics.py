"""Classification metrics with bootstrap confidence intervals, as pure numpy functions of labels and probabilities.

Conventions follow scikit-learn's defaults (``zero_division=0``; macro averages over present or predicted
classes), so each number is reproducible with one sklearn call; a class neither present nor predicted is NaN.
The bootstrap treats a resample as integer row weights, so every metric is a weighted metric computed by matrix
products, and all-ones weights give the point estimate from the same kernels.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

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
"""The headline metrics that get a bootstrap CI (the per-class numbers do not: their CIs would be noise)."""

_CHUNK = 250  # resamples per block, bounds memory at about _CHUNK * N * 8 bytes per temporary


def _check(y_true: np.ndarray, probs: np.ndarray | None = None, num_classes: int | None = None):
    y = np.asarray(y_true)
    if y.ndim != 1:
        raise ValueError(f"y_true must be 1-D (N,), got shape {y.shape}")
    if y.size and not np.issubdtype(y.dtype, np.integer):
        if not np.all(np.mod(y, 1) == 0):
            raise ValueError("y_true must hold integer class indices")
    y = y.astype(np.int64)
    if probs is not None:
        p = np.asarray(probs, dtype=np.float64)
        if p.ndim != 2 or p.shape[0] != y.shape[0]:
            raise ValueError(f"probs must be (N, C) with N={y.shape[0]}, got shape {p.shape}")
        num_classes = p.shape[1] if num_classes is None else num_classes
    else:
        p = None
    if num_classes is None:
        raise ValueError("num_classes is needed when no probs are given")
    if y.size and (y.min() < 0 or y.max() >= num_classes):
        raise ValueError(f"y_true holds labels outside 0..{num_classes - 1}")
    return y, p, int(num_classes)


# --------------------------------------------------------------------------------------------- point metrics
def accuracy(y_true: Sequence[int], y_pred: Sequence[int]) -> float:
    """Fraction of rows where the prediction equals the label (``nan`` for an empty input)."""
    y, p = np.asarray(y_true), np.asarray(y_pred)
    if y.shape != p.shape:
        raise ValueError(f"y_true {y.shape} and y_pred {p.shape} differ in shape")
    return float(np.mean(y == p)) if y.size else float("nan")


def confusion_matrix(y_true: Sequence[int], y_pred: Sequence[int], num_classes: int) -> np.ndarray:
    """Counts ``(C, C)``: row = true class, column = predicted class (scikit-learn's orientation)."""
    y, _, c = _check(y_true, num_classes=num_classes)
    p = np.asarray(y_pred, dtype=np.int64)
    if p.shape != y.shape:
        raise ValueError(f"y_true {y.shape} and y_pred {p.shape} differ in shape")
    if p.size and (p.min() < 0 or p.max() >= c):
        raise ValueError(f"y_pred holds labels outside 0..{c - 1}")
    return np.bincount(y * c + p, minlength=c * c).reshape(c, c)


def row_normalize(cm: np.ndarray) -> np.ndarray:
    """Each row divided by its total (recall on the diagonal); rows of absent classes stay all zero."""
    cm = np.asarray(cm, dtype=np.float64)
    tot = cm.sum(axis=-1, keepdims=True)
    return np.divide(cm, tot, out=np.zeros_like(cm), where=tot > 0)


def _prf_from_confusion(cm: np.ndarray) -> dict[str, np.ndarray]:
    """Per-class precision/recall/F1/support and their averages from counts ``(..., C, C)``.

    Works on one matrix or a stack of (weighted) matrices, which is what the bootstrap needs.
    """
    cm = np.asarray(cm, dtype=np.float64)
    tp = np.diagonal(cm, axis1=-2, axis2=-1)
    support = cm.sum(axis=-1)
    predicted = cm.sum(axis=-2)
    scored = (support > 0) | (predicted > 0)  # sklearn's default labels: in y_true or in y_pred
    precision = np.divide(tp, predicted, out=np.zeros_like(tp), where=predicted > 0)
    recall = np.divide(tp, support, out=np.zeros_like(tp), where=support > 0)
    denom = precision + recall
    f1 = np.divide(2 * precision * recall, denom, out=np.zeros_like(tp), where=denom > 0)
    n_scored = scored.sum(axis=-1)
    total = support.sum(axis=-1)
    out: dict[str, np.ndarray] = {"support": support, "predicted": predicted}
    for name, v in (("precision", precision), ("recall", recall), ("f1", f1)):
        with np.errstate(invalid="ignore", divide="ignore"):
            out[f"macro_{name}"] = np.where(scored, v, 0.0).sum(axis=-1) / n_scored
            out[f"weighted_{name}"] = (v * support).sum(axis=-1) / total
        out[name] = np.where(scored, v, np.nan)
    return out


def precision_recall_f1(y_true: Sequence[int], y_pred: Sequence[int], num_classes: int) -> dict:
    """Per-class arrays ``precision``, ``recall``, ``f1``, ``support``, ``predicted`` plus macro and weighted
    averages (conventions in the module docstring)."""
    out = _prf_from_confusion(confusion_matrix(y_true, y_pred, num_classes))
    return {k: (float(v) if np.ndim(v) == 0 else v) for k, v in out.items()}


def macro_f1(y_true: Sequence[int], y_pred: Sequence[int], num_classes: int) -> float:
    """Macro-F1 as ``sklearn.metrics.f1_score(y_true, y_pred, average="macro", zero_division=0)``.

    The trainer's model selection and the evaluation report use this one function, so "best validation
    macro-F1" and the evaluated macro-F1 cannot disagree by definition.
    """
    return float(precision_recall_f1(y_true, y_pred, num_classes)["macro_f1"])


def _auc_weighted(scores: np.ndarray, positive: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Binary ROC-AUC for each row of ``weights`` ``(B, N)``: Mann-Whitney U with ties counted as 1/2.

    The negatives are sorted once; for each positive, ``searchsorted`` gives how many negatives score below
    it (and how many tie). A resample only re-weights rows, so its AUC is a cumulative sum over the sorted
    negatives and one weighted dot product: 1,000 resamples cost a few array passes instead of 1,000 sorts.
    """
    positive = np.asarray(positive, dtype=bool)
    neg_idx = np.flatnonzero(~positive)
    pos_idx = np.flatnonzero(positive)
    neg_idx = neg_idx[np.argsort(scores[neg_idx], kind="mergesort")]
    s_neg = scores[neg_idx]
    left = np.searchsorted(s_neg, scores[pos_idx], side="left")
    right = np.searchsorted(s_neg, scores[pos_idx], side="right")
    cum = np.zeros((weights.shape[0], neg_idx.size + 1))
    np.cumsum(weights[:, neg_idx], axis=1, out=cum[:, 1:])
    below = cum[:, left] + 0.5 * (cum[:, right] - cum[:, left])
    wp = weights[:, pos_idx]
    num = (wp * below).sum(axis=1)
    den = wp.sum(axis=1) * cum[:, -1]
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, num / np.where(den > 0, den, 1.0), np.nan)


def roc_auc_ovr(y_true: Sequence[int], probs: np.ndarray) -> dict:
    """One-vs-rest ROC-AUC: ``per_class`` (``nan`` where a class is absent or is the only class present),
    ``macro`` (mean over defined classes) and ``weighted`` (by support)."""
    y, p, c = _check(y_true, probs)
    ones = np.ones((1, y.size))
    per = np.array([_auc_weighted(p[:, k], y == k, ones)[0] for k in range(c)])
    support = np.bincount(y, minlength=c).astype(np.float64)
    ok = ~np.isnan(per)
    macro = float(per[ok].mean()) if ok.any() else float("nan")
    weighted = float((per[ok] * support[ok]).sum() / support[ok].sum()) if ok.any() else float("nan")
    return {"per_class": per, "macro": macro, "weighted": weighted}


def roc_curve_points(scores: np.ndarray, positive: np.ndarray, max_points: int = 101) -> dict[str, list]:
    """ROC curve of one binary problem, downsampled to at most ``max_points`` points for plotting.

    Points are the (fpr, tpr) after each distinct threshold, from (0, 0) to (1, 1); downsampling keeps both
    ends and evenly spaced points between, which preserves the curve's shape at plotting resolution.
    """
    scores = np.asarray(scores, dtype=np.float64)
    positive = np.asarray(positive, dtype=bool)
    n_pos, n_neg = int(positive.sum()), int((~positive).sum())
    if n_pos == 0 or n_neg == 0:
        return {"fpr": [], "tpr": [], "thresholds": []}
    order = np.argsort(-scores, kind="mergesort")
    s, pos = scores[order], positive[order]
    last = np.r_[np.flatnonzero(s[1:] != s[:-1]), s.size - 1]  # last row of each tie group
    tps = np.cumsum(pos)[last]
    fps = (last + 1) - tps
    fpr = np.r_[0.0, fps / n_neg]
    tpr = np.r_[0.0, tps / n_pos]
    thr = np.r_[np.inf, s[last]]
    if fpr.size > max_points:
        keep = np.unique(np.linspace(0, fpr.size - 1, max_points).round().astype(int))
        fpr, tpr, thr = fpr[keep], tpr[keep], thr[keep]
    thr_list = [None if not np.isfinite(t) else round(float(t), 6) for t in thr]
    return {
        "fpr": [round(float(v), 6) for v in fpr],
        "tpr": [round(float(v), 6) for v in tpr],
        "thresholds": thr_list,
    }


def roc_curves(y_true: Sequence[int], probs: np.ndarray, max_points: int = 101) -> list[dict[str, list]]:
    """One-vs-rest ROC points per class (empty lists for a class without positives or negatives)."""
    y, p, c = _check(y_true, probs)
    return [roc_curve_points(p[:, k], y == k, max_points) for k in range(c)]


def _bin_index(conf: np.ndarray, n_bins: int) -> np.ndarray:
    """Bin ``i`` holds confidences in ``(i/n, (i+1)/n]``; a confidence of exactly 0 goes to bin 0."""
    return np.clip(np.ceil(conf * n_bins).astype(np.int64) - 1, 0, n_bins - 1)


def reliability_bins(y_true: Sequence[int], probs: np.ndarray, n_bins: int = ECE_BINS) -> list[dict]:
    """The reliability diagram: per equal-width confidence bin, its edges, count, accuracy and mean
    confidence (``None`` for the last two in an empty bin). Confidence = the top class probability."""
    y, p, _ = _check(y_true, probs)
    conf = p.max(axis=1)
    correct = (p.argmax(axis=1) == y).astype(np.float64)
    b = _bin_index(conf, n_bins)
    count = np.bincount(b, minlength=n_bins)
    acc = np.bincount(b, weights=correct, minlength=n_bins)
    cf = np.bincount(b, weights=conf, minlength=n_bins)
    out = []
    for i in range(n_bins):
        n = int(count[i])
        out.append(
            {
                "lo": round(i / n_bins, 6),
                "hi": round((i + 1) / n_bins, 6),
                "count": n,
                "accuracy": float(acc[i] / n) if n else None,
                "confidence": float(cf[i] / n) if n else None,
            }
        )
    return out


def expected_calibration_error(y_true: Sequence[int], probs: np.ndarray, n_bins: int = ECE_BINS) -> float:
    """ECE = sum over bins of (bin share) * |bin accuracy - bin mean confidence| (Naeini et al. 2015)."""
    y, p, _ = _check(y_true, probs)
    return float(_weighted_metrics(y, p, np.ones((1, y.size)), n_bins, with_auc=False)["ece"][0])


def negative_log_likelihood(y_true: Sequence[int], probs: np.ndarray, eps: float = 1e-12) -> float:
    """Mean cross-entropy of the true class (probabilities clipped at ``eps`` so a hard 0 stays finite)."""
    y, p, _ = _check(y_true, probs)
    return float(-np.log(np.clip(p[np.arange(y.size), y], eps, 1.0)).mean())


def brier_score(y_true: Sequence[int], probs: np.ndarray) -> float:
    """Mean over rows of the squared distance between ``probs`` and the one-hot label (multi-class Brier)."""
    y, p, c = _check(y_true, probs)
    onehot = np.eye(c)[y]
    return float(((p - onehot) ** 2).sum(axis=1).mean())


# --------------------------------------------------------------------------------------------- bootstrap
def _weighted_metrics(
    y: np.ndarray, p: np.ndarray, weights: np.ndarray, n_bins: int = ECE_BINS, with_auc: bool = True
) -> dict[str, np.ndarray]:
    """Every headline metric for each row of ``weights`` ``(B, N)`` at once (B=1: the point estimate)."""
    n, c = p.shape
    pred = p.argmax(axis=1)
    conf = p.max(axis=1)
    correct = (pred == y).astype(np.float64)
    total = weights.sum(axis=1)
    out: dict[str, np.ndarray] = {}
    with np.errstate(invalid="ignore", divide="ignore"):
        out["accuracy"] = weights @ correct / total
    cell = np.zeros((n, c * c))
    cell[np.arange(n), y * c + pred] = 1.0
    cm = (weights @ cell).reshape(-1, c, c)
    prf = _prf_from_confusion(cm)
    for avg in ("macro", "weighted"):
        for k in ("precision", "recall", "f1"):
            out[f"{avg}_{k}"] = prf[f"{avg}_{k}"]
    b = _bin_index(conf, n_bins)
    onehot = np.zeros((n, n_bins))
    onehot[np.arange(n), b] = 1.0
    gap = weights @ (onehot * (correct - conf)[:, None])  # per bin: sum(correct) - sum(confidence)
    with np.errstate(invalid="ignore", divide="ignore"):
        out["ece"] = np.abs(gap).sum(axis=1) / total
    if with_auc:
        per = np.stack([_auc_weighted(p[:, k], y == k, weights) for k in range(c)], axis=1)
        ok = ~np.isnan(per)  # a class absent from (or alone in) a resample has no AUC: average the rest
        with np.errstate(invalid="ignore", divide="ignore"):
            out["roc_auc_macro"] = np.where(ok, per, 0.0).sum(axis=1) / ok.sum(axis=1)
    return out


def bootstrap_weights(n: int, n_resamples: int, rng: np.random.Generator) -> np.ndarray:
    """``(n_resamples, n)`` draw counts: row b says how often each row appears in resample b."""
    idx = rng.integers(0, n, size=(n_resamples, n))
    flat = idx + (np.arange(n_resamples) * n)[:, None]
    return np.bincount(flat.ravel(), minlength=n_resamples * n).reshape(n_resamples, n).astype(np.float64)


def bootstrap_ci(
    y_true: Sequence[int],
    probs: np.ndarray,
    n_resamples: int = 1000,
    seed: int = 0,
    alpha: float = 0.05,
    n_bins: int = ECE_BINS,
) -> dict[str, dict[str, float | None]]:
    """Point estimate and percentile bootstrap CI of every metric in :data:`BOOTSTRAP_METRICS`.

    Resampling is of rows (images), with replacement, seeded, so the same inputs always give the same
    interval. Returns ``{metric: {"value", "ci_low", "ci_high"}}``; the CI fields are ``None`` when
    ``n_resamples`` is 0 or the metric is undefined on every resample.
    """
    y, p, _ = _check(y_true, probs)
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be in (0, 1), got {alpha}")
    point = _weighted_metrics(y, p, np.ones((1, y.size)), n_bins)
    out = {k: {"value": _f(point[k][0]), "ci_low": None, "ci_high": None} for k in BOOTSTRAP_METRICS}
    if n_resamples <= 0 or y.size == 0:
        return out
    rng = np.random.default_rng(seed)
    draws: dict[str, list[np.ndarray]] = {k: [] for k in BOOTSTRAP_METRICS}
    for start in range(0, n_resamples, _CHUNK):
        w = bootstrap_weights(y.size, min(_CHUNK, n_resamples - start), rng)
        for k, v in _weighted_metrics(y, p, w, n_bins).items():
            draws[k].append(v)
    for k in BOOTSTRAP_METRICS:
        v = np.concatenate(draws[k])
        v = v[~np.isnan(v)]
        if v.size:
            lo, hi = np.percentile(v, [100 * alpha / 2, 100 * (1 - alpha / 2)])
            out[k]["ci_low"], out[k]["ci_high"] = float(lo), float(hi)
    return out


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
    """All metrics of one evaluation as JSON-ready plain types (the ``metrics`` .. ``reliability`` part of
    the results JSON; see ``docs/results-schema.md``)."""
    y, p, c = _check(y_true, probs)
    if len(class_names) != c:
        raise ValueError(f"{len(class_names)} class names for {c} probability columns")
    pred = p.argmax(axis=1)
    metrics = bootstrap_ci(y, p, n_resamples=n_resamples, seed=seed, alpha=alpha, n_bins=n_bins)
    metrics["nll"] = {"value": _f(negative_log_likelihood(y, p)), "ci_low": None, "ci_high": None}
    metrics["brier"] = {"value": _f(brier_score(y, p)), "ci_low": None, "ci_high": None}
    cm = confusion_matrix(y, pred, c)
    prf = _prf_from_confusion(cm)
    auc = roc_auc_ovr(y, p)
    metrics["roc_auc_weighted"] = {"value": _f(auc["weighted"]), "ci_low": None, "ci_high": None}
    per_class = [
        {
            "name": str(class_names[k]),
            "precision": _f(prf["precision"][k]),
            "recall": _f(prf["recall"][k]),
            "f1": _f(prf["f1"][k]),
            "support": int(prf["support"][k]),
            "predicted": int(cm[:, k].sum()),
            "roc_auc": _f(auc["per_class"][k]),
        }
        for k in range(c)
    ]
    curves = roc_curves(y, p, roc_points)
    return {
        "metrics": metrics,
        "per_class": per_class,
        "confusion": {
            "counts": cm.astype(int).tolist(),
            "normalized": [[round(float(v), 6) for v in row] for row in row_normalize(cm)],
        },
        "roc": [{"name": str(class_names[k]), "auc": _f(auc["per_class"][k]), **curves[k]} for k in range(c)],
        "reliability": {"n_bins": n_bins, "bins": reliability_bins(y, p, n_bins)},
    }
