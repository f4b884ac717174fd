"""Helpers of the error explorer page: which model explains a results file, gallery paging, verdict rows."""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path

import pandas as pd

from dashboard.sidebar import RANDOM_WEIGHTS, Settings

PER_PAGE = 24


def engine_settings_for(d: dict, sidebar: Settings) -> tuple[Settings, str]:
    """The model that produced results ``d``, as :class:`Settings` for the engine, and a sentence saying so.

    The explanations must come from the evaluated model: its registered name and, when the weights file
    recorded in ``meta.weights`` exists on this machine, those weights. Otherwise the sidebar's weights are
    used if the sidebar shows the same model, else random init, and the sentence says which.
    """
    meta = d["meta"]
    model = str(meta.get("model") or sidebar.model)
    weights = meta.get("weights")
    if weights and Path(weights).is_file():
        return replace(sidebar, model=model, weights=str(weights)), f"{model} with the evaluated weights {weights}"
    if not weights:
        return replace(sidebar, model=model, weights=RANDOM_WEIGHTS), f"{model}, random init (as evaluated)"
    if sidebar.model == model:
        return sidebar, f"{model} with the sidebar's weights ({sidebar.weights}): {weights} is not on this machine"
    return (
        replace(sidebar, model=model, weights=RANDOM_WEIGHTS),
        f"{model}, random init: the evaluated weights {weights} are not on this machine",
    )


def page_count(n: int, per_page: int = PER_PAGE) -> int:
    return max(1, math.ceil(n / per_page))


def page_rows(rows: pd.DataFrame, page: int, per_page: int = PER_PAGE) -> pd.DataFrame:
    """Rows of gallery page ``page`` (1-based, clamped to the valid range)."""
    page = min(max(1, int(page)), page_count(len(rows), per_page))
    return rows.iloc[(page - 1) * per_page : page * per_page]


def verdict_rows(verdicts: list) -> pd.DataFrame:
    """Verdicts as a table for the page (newest first)."""
    cols = ["created_at", "reviewer", "verdict", "note", "true_label", "pred_label", "model"]
    if not verdicts:
        return pd.DataFrame(columns=cols)
    return pd.DataFrame([{c: getattr(v, c) for c in cols} for v in verdicts]).iloc[::-1].reset_index(drop=True)
