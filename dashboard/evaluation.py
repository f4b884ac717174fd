"""Reading results JSONs (``training.evaluate``'s output) for the evaluation page and the error explorer.

Pure functions of the results dict (schema in ``docs/results-schema.md``), no Streamlit: discovery of results
files, one-line labels, and metric and per-class tables (intervals as ``training.evaluate`` wrote them).
"""

from __future__ import annotations

import shlex
from pathlib import Path

import pandas as pd

from core.metrics import PER_CLASS_CI
from dashboard import runnable

HEADLINE = ("accuracy", "macro_f1", "weighted_f1", "roc_auc_macro", "ece")


def find_results(roots: list[Path], limit: int = 200) -> list[Path]:
    """Results JSONs under ``roots`` (``training.runs.list_runs``), newest first, at most ``limit``."""
    from training.runs import list_runs

    found = [f for root in roots for f in list_runs(root).results]
    return [f.path for f in sorted(found, key=lambda f: f.mtime, reverse=True)[:limit]]


def describe(d: dict) -> str:
    """One line naming a result: model, then data, split, TTA and weights (``result_name``), size, accuracy."""
    from training.model_card import result_name

    m = d["meta"]
    extra = "".join(f" · {k} {m[k]}" for k in ("rung", "seed") if k in m)
    acc = d["metrics"]["accuracy"]["value"]
    return f"{m.get('model', '?')}: {result_name(d)} · n={m['data'].get('n', '?')}{extra} · acc {acc:.3f}"


def data_name(d: dict) -> str:
    """The dataset of results ``d`` (``fer2013``, ``folder``...): its ``meta.data.source`` without the file."""
    return str(d["meta"]["data"]["source"]).split(":", 1)[0]


def dataset_key(d: dict) -> str:
    """``"<dataset>:<split>"`` (e.g. ``fer2013:test``): how verdicts name an image's origin, machine-independent."""
    return f"{data_name(d)}:{d['meta']['data']['split']}"


def model_key(d: dict) -> str:
    m = d["meta"]
    return f"{m.get('model', '?')}@{(m.get('weights_sha256') or 'random')[:12]}"


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


def per_class_table(d: dict) -> pd.DataFrame:
    """Per-class precision, recall and F1 with the file's bootstrap intervals (``None`` where the file has
    none: written before per-class intervals existed, or with ``--bootstrap 0``)."""
    rows = []
    for pc in d["per_class"]:
        row = {"class": pc["name"], "support": pc["support"], "predicted": pc["predicted"]}
        for metric in PER_CLASS_CI:
            row |= {
                metric: pc[metric],
                f"{metric}_lo": pc.get(f"{metric}_ci_low"),
                f"{metric}_hi": pc.get(f"{metric}_ci_high"),
            }
        rows.append(row | {"roc_auc": pc.get("roc_auc")})
    return pd.DataFrame(rows)


def per_class_hint(d: dict) -> str | None:
    """For a file without per-class intervals (older format), one line with the command that rewrites it."""
    if all("f1_ci_low" in pc for pc in d["per_class"]):
        return None
    return f"No per-class intervals in this file (older format); rewrite it with `{evaluate_command(d)}`"


def evaluate_command(d: dict) -> str:
    """The ``training.evaluate`` command that (re)writes results ``d``, runnable from the repo root."""
    m, data = d["meta"], d["meta"]["data"]
    command = m.get("command") or ""
    if not command.startswith("python -m training.evaluate "):  # from Python or the ablation runner: rebuild it
        name = data_name(d)
        args = {
            "--model": m["model"],
            "--weights": m.get("weights") or "none",
            "--data": name if name in ("fer2013", "ferplus") else data["source"],
            "--split": data["split"],
            "--limit": data.get("limit"),
            "--seed": (m.get("bootstrap") or {}).get("seed"),
        }
        argv = [x for k, v in args.items() if v is not None for x in (k, str(v))]
        command = shlex.join(["python", "-m", "training.evaluate", *argv, *["--tta-hflip"] * bool(m.get("tta_hflip"))])
    return runnable(command)


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
        ("McNemar statistic", f"{mc['statistic']:.3f}"),
        ("McNemar p-value", f"{mc['p_value']:.3g}"),
        ("test", mc["method"]),
        ("accuracy A − B (95 % CI)", f"{diff['diff']:+.4f} [{diff['ci_low']:+.4f}, {diff['ci_high']:+.4f}]"),
    ]
    return pd.DataFrame(rows, columns=["", "value"]).astype({"value": str})
