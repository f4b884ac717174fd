"""The results JSON written by ``python -m training.evaluate``: its schema check, reading and writing.

Free of torch, so the dashboard reads results without a model stack. The executable form of
``docs/results-schema.md``: change both together and bump :data:`SCHEMA` when a field changes meaning.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from core.metrics import BOOTSTRAP_METRICS, PER_CLASS_CI

SCHEMA = "ferlens.results/1"
"""Bumped whenever a field changes meaning or disappears (adding fields keeps the version)."""

TOP_KEYS = (
    "schema",
    "meta",
    "class_names",
    "metrics",
    "per_class",
    "confusion",
    "roc",
    "reliability",
    "predictions",
)
REQUIRED_METRICS = (*BOOTSTRAP_METRICS, "roc_auc_weighted", "nll", "brier")
PREDICTION_COLUMNS = ("id", "true", "pred", "confidence", "margin", "probs")


class ResultsSchemaError(ValueError):
    """A results JSON that does not follow ``docs/results-schema.md``; the message lists every problem."""


def _num(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def _num_or_none(x) -> bool:
    return x is None or _num(x)


def _str_or_none(v) -> bool:
    return v is None or isinstance(v, str)


_META_FIELDS = {
    "model": lambda v: isinstance(v, str) and bool(v),
    "spec": lambda v: isinstance(v, dict),
    "date": lambda v: isinstance(v, str),
    "tta_hflip": lambda v: isinstance(v, bool),
    "weights": _str_or_none,
    "weights_sha256": lambda v: v is None or (isinstance(v, str) and len(v) == 64),
    "git_commit": _str_or_none,
    "command": _str_or_none,
}


def _meta_problems(meta) -> tuple[list[str], int | None]:
    if not isinstance(meta, dict):
        return ["meta must be an object"], None
    p = [f"meta.{k} is missing" for k in _META_FIELDS if k not in meta]
    p += [
        f"meta.{k} has a wrong type or value: {meta[k]!r}"
        for k, ok in _META_FIELDS.items()
        if k in meta and not ok(meta[k])
    ]
    data = meta.get("data")
    if not isinstance(data, dict) or not all(k in data for k in ("source", "split", "n")):
        return p + ["meta.data must be an object with source, split and n"], None
    if not isinstance(data["n"], int) or isinstance(data["n"], bool) or data["n"] < 0:
        return p + [f"meta.data.n must be a non-negative integer, got {data['n']!r}"], None
    return p, data["n"]


def _metric_problems(metrics) -> list[str]:
    if not isinstance(metrics, dict):
        return ["metrics must be an object"]
    p = []
    for k in REQUIRED_METRICS:
        m = metrics.get(k)
        if not isinstance(m, dict) or any(f not in m for f in ("value", "ci_low", "ci_high")):
            p.append(f"metrics.{k} must be an object with value, ci_low, ci_high")
        elif not all(_num_or_none(m[f]) for f in ("value", "ci_low", "ci_high")):
            p.append(f"metrics.{k} fields must be finite numbers or null, got {m}")
        else:
            top = math.inf if k == "nll" else 2.0 if k == "brier" else 1.0
            if m["value"] is not None and not 0 <= m["value"] <= top:
                p.append(f"metrics.{k}.value {m['value']} is outside [0, {top}]")
            if m["ci_low"] is not None and m["ci_high"] is not None and m["ci_low"] > m["ci_high"]:
                p.append(f"metrics.{k}: ci_low {m['ci_low']} > ci_high {m['ci_high']}")
    return p


def _per_class_problems(pc, names: list[str]) -> list[str]:
    if not isinstance(pc, list) or len(pc) != len(names):
        return [f"per_class must list the {len(names)} classes"]
    p = []
    for k, row in enumerate(pc):
        if not isinstance(row, dict) or row.get("name") != names[k]:
            p.append(f"per_class[{k}] must be an object named {names[k]!r}")
        elif not isinstance(row.get("support"), int) or not all(
            _num_or_none(row.get(f)) for f in ("precision", "recall", "f1", "roc_auc")
        ):
            p.append(f"per_class[{k}] needs an integer support and numeric/null precision, recall, f1, roc_auc")
        else:  # the intervals are optional: files written before they existed lack them
            for m in PER_CLASS_CI:
                lo, hi = row.get(f"{m}_ci_low"), row.get(f"{m}_ci_high")
                if not (_num_or_none(lo) and _num_or_none(hi)) or (lo is not None and hi is not None and lo > hi):
                    p.append(f"per_class[{k}].{m}_ci_low/_ci_high must be numbers or null with low <= high")
    return p


def _matrix(m, c: int, cell) -> bool:
    return (
        isinstance(m, list)
        and len(m) == c
        and all(isinstance(r, list) and len(r) == c and all(map(cell, r)) for r in m)
    )


def _plot_problems(d: dict, c: int, n: int | None) -> list[str]:
    p = []
    conf = d["confusion"] if isinstance(d["confusion"], dict) else {}
    counts = conf.get("counts")
    if not _matrix(counts, c, lambda v: isinstance(v, int) and v >= 0):
        p.append(f"confusion.counts must be a {c}x{c} matrix of non-negative integers")
    elif n is not None and sum(map(sum, counts)) != n:
        p.append(f"confusion.counts sum to {sum(map(sum, counts))}, meta.data.n is {n}")
    if not _matrix(conf.get("normalized"), c, _num):
        p.append(f"confusion.normalized must be a {c}x{c} matrix of numbers")
    roc = d["roc"]
    if not isinstance(roc, list) or len(roc) != c:
        p.append(f"roc must hold one curve per class ({c})")
    else:
        for k, cur in enumerate(roc):
            if not isinstance(cur, dict) or not all(isinstance(cur.get(f), list) for f in ("fpr", "tpr")):
                p.append(f"roc[{k}] needs fpr and tpr lists")
            elif len(cur["fpr"]) != len(cur["tpr"]):
                p.append(f"roc[{k}]: fpr and tpr differ in length")
    rel = d["reliability"] if isinstance(d["reliability"], dict) else {}
    bins = rel.get("bins")
    if (
        not isinstance(bins, list)
        or not bins
        or not all(isinstance(b, dict) and isinstance(b.get("count"), int) for b in bins)
    ):
        p.append("reliability.bins must be a non-empty list of objects with an integer count")
    elif n is not None and sum(b["count"] for b in bins) != n:
        p.append(f"reliability bin counts sum to {sum(b['count'] for b in bins)}, meta.data.n is {n}")
    return p


def _prediction_problems(pr, c: int, n: int | None, accuracy) -> list[str]:
    if not isinstance(pr, dict):
        return ["predictions must be an object of equally long columns"]
    absent = [k for k in PREDICTION_COLUMNS if not isinstance(pr.get(k), list)]
    if absent:
        return [f"predictions lacks column(s) {absent}"]
    lengths = {k: len(v) for k, v in pr.items() if isinstance(v, list)}
    if len(set(lengths.values())) != 1:
        return [f"prediction columns differ in length: {lengths}"]
    rows = lengths["id"]
    p = []
    if n is not None and rows != n:
        p.append(f"predictions hold {rows} rows, meta.data.n is {n}")
    if len(set(pr["id"])) != rows:
        p.append("predictions.id values must be unique")
    for k in ("true", "pred"):
        if not all(isinstance(v, int) and 0 <= v < c for v in pr[k]):
            p.append(f"predictions.{k} must be class indices in 0..{c - 1}")
    try:
        probs = np.asarray(pr["probs"], dtype=np.float64).reshape(rows, c)
    except (ValueError, TypeError):
        return p + [f"predictions.probs must be {rows} rows of {c} numbers"]
    if rows and (not np.isfinite(probs).all() or probs.min() < 0 or np.abs(probs.sum(1) - 1).max() > 1e-3):
        p.append("predictions.probs rows must be probabilities summing to 1")
    elif rows and not np.allclose(np.asarray(pr["confidence"], dtype=np.float64), probs.max(1), atol=1e-5):
        p.append("predictions.confidence must equal each row's top probability")
    value = accuracy.get("value") if isinstance(accuracy, dict) else None
    if not p and rows and _num(value):
        actual = float(np.mean(np.asarray(pr["true"]) == np.asarray(pr["pred"])))
        if abs(value - actual) > 1e-9:
            p.append(f"metrics.accuracy.value {value} disagrees with the predictions ({actual})")
    return p


def results_problems(d) -> list[str]:
    """Every way ``d`` departs from the results schema, as plain sentences (empty: valid); the numbers are checked
    against each other too (counts sum to N, accuracy equals the predictions'), so a hand-edited file is caught."""
    if not isinstance(d, dict):
        return [f"results must be a JSON object, got {type(d).__name__}"]
    missing = [k for k in TOP_KEYS if k not in d]
    if missing:
        return [f"missing top-level key(s) {missing}"]
    p = [] if d["schema"] == SCHEMA else [f"schema is {d['schema']!r}, expected {SCHEMA!r}"]
    names = d["class_names"]
    if not (isinstance(names, list) and len(names) >= 2 and all(isinstance(x, str) for x in names)):
        return p + ["class_names must be a list of at least two strings"]
    meta_p, n = _meta_problems(d["meta"])
    p += meta_p + _metric_problems(d["metrics"]) + _per_class_problems(d["per_class"], names)
    p += _plot_problems(d, len(names), n)
    metrics = d["metrics"] if isinstance(d["metrics"], dict) else {}
    return p + _prediction_problems(d["predictions"], len(names), n, metrics.get("accuracy"))


def validate_results(d) -> None:
    """Raise :class:`ResultsSchemaError` listing every problem of a results JSON; return None if valid."""
    problems = results_problems(d)
    if problems:
        raise ResultsSchemaError(f"invalid results JSON ({len(problems)} problem(s)): " + "; ".join(problems))


def parse_results(data: bytes | str, name: str = "<upload>") -> dict:
    """Parse and validate a results JSON's UTF-8 text; every error starts with ``name`` (a file or an upload)."""
    try:
        d = json.loads(data.decode("utf-8") if isinstance(data, bytes) else data)
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as exc:  # RecursionError: nesting too deep
        raise ResultsSchemaError(f"{name}: not valid JSON: {exc}") from exc
    try:
        validate_results(d)
    except ResultsSchemaError as exc:
        raise ResultsSchemaError(f"{name}: {exc}") from exc
    return d


def format_ci(m: dict | None, spec: str = ".3f") -> str:
    """``value [ci_low, ci_high]`` of a ``{value, ci_low, ci_high}`` object in format ``spec``; ``n/a`` without a
    value, no brackets without an interval."""
    if not m or m.get("value") is None:
        return "n/a"
    ci = "" if m.get("ci_low") is None else f" [{m['ci_low']:{spec}}, {m['ci_high']:{spec}}]"
    return f"{m['value']:{spec}}{ci}"


def load_results(path: str | Path) -> dict:
    """Read and validate a results JSON file (the error names the file)."""
    return parse_results(Path(path).read_bytes(), str(path))


def write_results(d: dict, path: str | Path) -> Path:
    """Validate, then write atomically as strict JSON (no NaN), so a reader never sees half a file."""
    from core.models.weights import atomic_write

    validate_results(d)
    path = Path(path)
    text = json.dumps(d, allow_nan=False, separators=(",", ":"))
    atomic_write(path, lambda tmp: Path(tmp).write_text(text))
    return path
