"""Reading results JSONs (``training.evaluate``'s output) for the evaluation page and the error explorer.

Pure functions of the results dict (schema in ``docs/results-schema.md``), no Streamlit: discovery of results
files, one-line labels, metric and per-class tables (per-class intervals are bootstrapped here from the
per-image predictions, with the same resampling scheme as ``core.metrics``), and the rows of a confusion cell.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

log = logging.getLogger(__name__)

SCHEMA_PREFIX = "ferlens.results/"
HEADLINE = ("accuracy", "macro_f1", "weighted_f1", "roc_auc_macro", "ece")
_SCAN_LIMIT = 2000


def is_results_file(path: Path) -> bool:
    """Cheap check (first bytes only) that ``path`` is a results JSON: its ``schema`` key comes first."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(128).decode("utf-8", "replace")
    except OSError:
        return False
    return f'"schema":"{SCHEMA_PREFIX}' in head.replace(" ", "")


def find_results(roots: list[Path], limit: int = 200) -> list[Path]:
    """Results JSONs under ``roots`` (recursively), newest first, at most ``limit``."""
    found: list[Path] = []
    for root in roots:
        if not root.is_dir():
            continue
        for i, path in enumerate(root.rglob("*.json")):
            if i >= _SCAN_LIMIT:
                log.warning("stopped scanning %s for results after %d JSON files", root, _SCAN_LIMIT)
                break
            if is_results_file(path):
                found.append(path)
    found.sort(key=lambda p: p.stat().st_mtime, reverse=True)
    return found[:limit]


def load_results_bytes(data: bytes, name: str = "<upload>") -> dict:
    """Parse and validate an uploaded results JSON (``training.results.validate_results``)."""
    from training.results import ResultsSchemaError, validate_results

    try:
        d = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:  # RecursionError: [[[[... too deep
        raise ResultsSchemaError(f"{name}: not a JSON file ({exc})") from exc
    try:
        validate_results(d)
    except ResultsSchemaError as exc:
        raise ResultsSchemaError(f"{name}: {exc}") from exc
    return d


def describe(d: dict) -> str:
    """One line naming a result: model, then data, split, TTA and weights (``result_name``), size, accuracy."""
    from training.model_card import result_name

    m = d["meta"]
    extra = "".join(f" · {k} {m[k]}" for k in ("rung", "seed") if k in m)
    acc = d["metrics"]["accuracy"]["value"]
    return f"{m.get('model', '?')}: {result_name(d)} · n={m['data'].get('n', '?')}{extra} · acc {acc:.3f}"


def dataset_key(d: dict) -> str:
    """``"<dataset>:<split>"`` (e.g. ``fer2013:test``): how verdicts name an image's origin, machine-independent."""
    data = d["meta"]["data"]
    return f"{str(data['source']).split(':', 1)[0]}:{data['split']}"


def model_key(d: dict) -> str:
    m = d["meta"]
    return f"{m.get('model', '?')}@{(m.get('weights_sha256') or 'random')[:12]}"


def metrics_table(d: dict) -> pd.DataFrame:
    """Headline metrics with their 95 % CIs (as in the file), one row per metric."""
    rows = []
    for key, m in d["metrics"].items():
        rows.append({"metric": key, "value": m["value"], "ci_low": m["ci_low"], "ci_high": m["ci_high"]})
    return pd.DataFrame(rows)


def predictions_frame(d: dict) -> pd.DataFrame:
    """``predictions`` as a DataFrame with class names added (``true_name``, ``pred_name``)."""
    pr = dict(d["predictions"])
    probs = pr.pop("probs")
    df = pd.DataFrame(pr)
    names = d["class_names"]
    df["true_name"] = [names[i] for i in df["true"]]
    df["pred_name"] = [names[i] for i in df["pred"]]
    df["probs"] = probs
    return df


def _prf(cm: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-class precision, recall, F1 of confusion matrices ``(B, C, C)``; 0/0 = 0, absent classes NaN."""
    tp = np.diagonal(cm, axis1=1, axis2=2)
    true = cm.sum(axis=2)
    pred = cm.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        precision = np.where(pred > 0, tp / np.where(pred > 0, pred, 1), 0.0)
        recall = np.where(true > 0, tp / np.where(true > 0, true, 1), 0.0)
        denom = true + pred
        f1 = np.where(denom > 0, 2 * tp / np.where(denom > 0, denom, 1), 0.0)
    absent = (true == 0) & (pred == 0)
    for arr in (precision, recall, f1):
        arr[absent] = np.nan
    return precision, recall, f1


def per_class_table(d: dict, n_resamples: int = 1000, seed: int = 0, alpha: float = 0.05) -> pd.DataFrame:
    """Per-class precision, recall and F1 with percentile-bootstrap intervals over images.

    The results JSON carries per-class point values only; the intervals are computed here from the per-image
    predictions (resampling images with replacement, seeded, like the file's headline CIs). Point values are
    the file's own, so the table always agrees with it.
    """
    from core.metrics import bootstrap_weights

    names = list(d["class_names"])
    c = len(names)
    y = np.asarray(d["predictions"]["true"], dtype=np.int64)
    p = np.asarray(d["predictions"]["pred"], dtype=np.int64)
    onehot = np.zeros((y.size, c * c))
    onehot[np.arange(y.size), y * c + p] = 1.0
    rng = np.random.default_rng(seed)
    draws = [[], [], []]
    for start in range(0, n_resamples, 250):
        w = bootstrap_weights(y.size, min(250, n_resamples - start), rng)
        for k, arr in enumerate(_prf((w @ onehot).reshape(-1, c, c))):
            draws[k].append(arr)
    rows = []
    for i, pc in enumerate(d["per_class"]):
        row = {"class": names[i], "support": pc["support"], "predicted": pc["predicted"]}
        for k, metric in enumerate(("precision", "recall", "f1")):
            row[metric] = pc[metric]
            lo = hi = None
            if draws[k]:
                v = np.concatenate(draws[k])[:, i]
                v = v[~np.isnan(v)]
                if v.size:
                    lo, hi = (float(x) for x in np.percentile(v, [100 * alpha / 2, 100 * (1 - alpha / 2)]))
            row[f"{metric}_lo"], row[f"{metric}_hi"] = lo, hi
        row["roc_auc"] = pc.get("roc_auc")
        rows.append(row)
    return pd.DataFrame(rows)


@dataclass(frozen=True)
class CellFilter:
    """Which images the explorer shows: a confusion cell (None = any) of one results file."""

    true: int | None = None
    pred: int | None = None
    errors_only: bool = True
    min_confidence: float = 0.0
    max_confidence: float = 1.0
    max_margin: float = 1.0
    sort: str = "confidence"
    descending: bool = True


SORT_KEYS = ("confidence", "margin", "id")


def select(df: pd.DataFrame, f: CellFilter) -> pd.DataFrame:
    """Rows of :func:`predictions_frame` matching ``f``, sorted as asked (stable, so ties keep id order)."""
    if f.sort not in SORT_KEYS:
        raise ValueError(f"unknown sort key {f.sort!r}; choose one of {list(SORT_KEYS)}")
    mask = np.ones(len(df), dtype=bool)
    if f.true is not None:
        mask &= (df["true"] == f.true).to_numpy()
    if f.pred is not None:
        mask &= (df["pred"] == f.pred).to_numpy()
    if f.errors_only:
        mask &= (df["true"] != df["pred"]).to_numpy()
    mask &= ((df["confidence"] >= f.min_confidence) & (df["confidence"] <= f.max_confidence)).to_numpy()
    mask &= (df["margin"] <= f.max_margin).to_numpy()
    out = df[mask].sort_values([f.sort, "id"], ascending=[not f.descending, True], kind="stable")
    return out


def _round(value, spec: str):
    return value if value is None else format(value, spec)


def mcnemar_summary(comparison: dict, name_a: str, name_b: str) -> pd.DataFrame:
    """The comparison JSON of ``training.evaluate.compare_results`` as a small two-column table.

    ``name_a``/``name_b`` say what each side is (``training.model_card.result_name``: split, TTA, weights).
    """
    a, b, mc, diff = comparison["a"], comparison["b"], comparison["mcnemar"], comparison["accuracy_diff"]
    rows = [
        ("A", f"{a['model']}: {name_a}"),
        ("B", f"{b['model']}: {name_b}"),
        ("images compared", comparison["data"]["n_common"]),
        ("accuracy A", f"{a['accuracy']:.4f}"),
        ("accuracy B", f"{b['accuracy']:.4f}"),
        ("only A right (b)", mc["b"]),
        ("only B right (c)", mc["c"]),
        ("McNemar statistic", _round(mc.get("statistic"), ".3f")),
        ("McNemar p-value", _round(mc.get("p_value"), ".3g")),
        ("test", mc.get("method")),
    ]
    if diff:
        lo, hi = diff.get("ci_low"), diff.get("ci_high")
        ci = f" [{lo:+.4f}, {hi:+.4f}]" if lo is not None and hi is not None else ""
        rows.append(("accuracy A − B (95 % CI)", f"{diff.get('diff', diff.get('value', float('nan'))):+.4f}{ci}"))
    return pd.DataFrame(rows, columns=["", "value"]).astype({"value": str})
