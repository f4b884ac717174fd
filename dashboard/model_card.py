"""The model card page's facts, gathered from files: nothing here is typed in by hand.

The model's spec, parameter count and weights sidecar; results JSONs of this model and these weights under
``runs/``; and the papers' claims (``paper_claims.json``, each with its source) beside what ferlens measured,
or "not measured yet".
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pandas as pd

from dashboard import REPO_ROOT, runnable
from dashboard.evaluation import data_name

log = logging.getLogger(__name__)

CLAIMS_FILE = Path(__file__).with_name("paper_claims.json")
MODEL_CARD_DOC = REPO_ROOT / "docs" / "model-card.md"
BENCH_DIR = REPO_ROOT / "bench" / "results"


def load_claims() -> list[dict]:
    return json.loads(CLAIMS_FILE.read_text())["claims"]


def parameter_count(model) -> int:
    return int(sum(p.numel() for p in model.parameters()))


def _fmt(value, unit: str) -> str:
    if value is None:
        return "—"
    if unit == "fraction":
        return f"{100 * value:.1f} %"
    if unit == "count":
        return f"{value / 1e6:.1f} M"
    return f"{value:g}"


def _results_measure(claim: dict, results: list[dict]) -> tuple[str, str]:
    m = claim["measure"]
    hits = [
        d
        for d in results
        if (data_name(d), d["meta"]["data"]["split"]) == (m["dataset"], m["split"])
        and ("rungs" not in m or d["meta"].get("rung") in m["rungs"])
        and ("models" not in m or d["meta"].get("model") in m["models"])
        and d["meta"].get("weights")  # a random-init evaluation measures nothing about a claim
    ]
    if not hits:
        return "not measured yet", ""
    best = max(hits, key=lambda d: d["meta"].get("date", ""))
    v = best["metrics"][m["metric"]]
    ci = f" [{_fmt(v['ci_low'], 'fraction')}, {_fmt(v['ci_high'], 'fraction')}]" if v["ci_low"] is not None else ""
    where = f"{best['meta']['model']} on {m['dataset']} {m['split']} (n={best['meta']['data']['n']})"
    return f"{_fmt(v['value'], 'fraction')}{ci}", f"{where}; {len(hits)} run(s) found, newest shown"


def _bench(name: str) -> dict | None:
    path = BENCH_DIR / name
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        log.warning("%s unreadable: %s", path, exc)
        return None


def _models_json_measure(claim: dict, results: list[dict]) -> tuple[str, str]:
    data = _bench("models.json")
    if not data:
        return "not measured yet", ""
    rows = {r["model"]: r for r in data.get("models", [])}
    parts = [
        f"{name}: {_fmt(rows[name][claim['measure']['field']], claim['unit'])}"
        for name in claim["measure"]["models"]
        if name in rows
    ]
    return ("; ".join(parts), "bench/results/models.json") if parts else ("not measured yet", "")


def _engine_json_measure(claim: dict, results: list[dict]) -> tuple[str, str]:
    data = _bench("engine.json")
    if not data:
        return "not measured yet", "run bench/engine.py"
    text = json.dumps(data)
    if not any(m in text for m in claim["measure"]["models"]):
        return "not measured yet", "bench/results/engine.json has no HAFEM row"
    return "see bench/results/engine.json", "different hardware: compare with care"


_MEASURES = {"results": _results_measure, "models_json": _models_json_measure, "engine_json": _engine_json_measure}
"""Claim ``measure.kind`` -> ``fn(claim, results) -> (measured, how)``."""


def claims_table(results: list[dict]) -> pd.DataFrame:
    """One row per claim: paper, what, claimed value, ferlens' measurement (or "not measured yet"), source."""
    rows = []
    for c in load_claims():
        kind = c["measure"]["kind"]
        if kind not in _MEASURES:
            raise ValueError(f"claim {c['id']}: unknown measure kind {kind!r}; choose one of {list(_MEASURES)}")
        measured, how = _MEASURES[kind](c, results)
        rows.append(
            {
                "paper": c["paper"],
                "claim": c["what"],
                "claimed": _fmt(c["claimed"], c["unit"]),
                "ferlens measured": measured,
                "how": how,
                "source": c["source"],
            }
        )
    return pd.DataFrame(rows)


def validation_table(val) -> pd.DataFrame:
    """The sidecar's validation scores (``{"val_acc": 0.68, ...}``) as a two-column table, rounded for reading;
    anything but a mapping of numbers gives no rows (a hand-edited sidecar must not break the page)."""
    val = val if isinstance(val, dict) else {}
    rows = [
        {"metric": k.removeprefix("val_").replace("_", " "), "value": round(float(v), 4)}
        for k, v in val.items()
        if isinstance(v, int | float)
    ]
    return pd.DataFrame(rows, columns=["metric", "value"])


def _score_row(score: str, n, metrics: dict, source: str, command) -> dict:
    """One row of :data:`SCORE_COLUMNS`: headline metrics with their CIs, where they come from, the command."""
    row = {"score": score, "n": n}
    for key in ("accuracy", "macro_f1", "ece"):
        v = metrics[key]
        ci = f" [{v['ci_low']:.3f}, {v['ci_high']:.3f}]" if v.get("ci_low") is not None else ""
        row[key] = "n/a" if v.get("value") is None else f"{v['value']:.3f}{ci}"
    return row | {"source": source, "command": runnable(command)}


def own_results(results: list[dict], model: str, weights_sha: str | None) -> pd.DataFrame:
    """Headline metrics (with CIs) of the results JSONs of this model and these weights, one named row each."""
    from training.model_card import result_name

    rows = []
    for d in results:
        m = d["meta"]
        if m.get("model") == model and (m.get("weights_sha256") or None) == weights_sha:
            source = f"results file of {m.get('date') or 'unknown date'}"
            rows.append(_score_row(result_name(d), m["data"]["n"], d["metrics"], source, m.get("command")))
    return pd.DataFrame(rows, columns=SCORE_COLUMNS)


SCORE_COLUMNS = ["score", "n", "accuracy", "macro_f1", "ece", "source", "command"]


def sidecar_scores(meta: dict) -> pd.DataFrame:
    """The test scores ``training.ship`` recorded beside shipped weights, in the same columns as :func:`own_results`.

    A fresh clone has no ``runs/``, so these are always on the card.
    """
    from core.models.weights import SHIPPED_DIR
    from training.model_card import score_name

    weights = str(SHIPPED_DIR / f"{meta.get('model', '?')}.safetensors")
    rows = []
    for t in (meta.get("test") or {}).values():
        classes = len(t.get("per_class_f1") or {}) or None
        name = score_name(t["data"], t["split"], bool(t.get("tta_hflip")), weights, meta.get("sha256"), classes)
        rows.append(_score_row(name, t["n"], t, "recorded by training.ship", t.get("command")))
    return pd.DataFrame(rows, columns=SCORE_COLUMNS)


def all_scores(meta: dict, results: list[dict], model: str, weights_sha: str | None) -> pd.DataFrame:
    """Every score of these weights: the ones recorded when they were shipped, then one row per results file.

    A results file that repeats a recorded score exactly (same name, n and metrics) adds no row; any other
    adds one, so evaluating again never hides what was recorded.
    """
    tables = [own_results(results, model, weights_sha)]
    if meta.get("sha256") in (None, weights_sha):  # a sidecar copied beside other weights says nothing of them
        tables.insert(0, sidecar_scores(meta))
    frames = [t for t in tables if not t.empty]
    table = pd.concat(frames, ignore_index=True) if frames else tables[0]
    return table.drop_duplicates(subset=["score", "n", "accuracy", "macro_f1", "ece"], keep="first")


LIMITATIONS = """
- **Data.** FER2013 and FERPlus are 48×48 grayscale web images, mostly frontal, young and adult faces; their
  labels are noisy (FERPlus' crowd majority disagrees with the FER2013 label on a large share of images, see
  docs/papers.md). Scores on them do not transfer to profile views, low light, children, occlusion (masks,
  glasses) or to video without calibration checks.
- **What is measured.** Seven (or eight) posed-expression categories, not emotions people feel: a smile is
  labelled "happy" whatever its cause. Do not use the output to infer feelings, honesty, intent or health.
- **Fairness.** FER2013 carries no demographic labels, so ferlens cannot report accuracy per age, gender or
  skin tone; expect differences across groups and evaluate on data representative of your users before use.
- **Calibration.** Confidence is a model score; read it together with the reliability diagram (Evaluation).
- **Explanations.** CAM and SHAP maps show what moves the score, not why a person looks the way they do;
  check them with the deletion/insertion curves in docs/explanations.md before relying on them.
"""
