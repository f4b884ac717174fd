"""Streamlit-free helpers of the error explorer: its view as URL parameters, paging, filters and verdict rows.

:func:`view_from_params` is tolerant: a URL value it cannot read falls back to the default.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path

import numpy as np
import pandas as pd

from dashboard import REPO_ROOT
from dashboard.sidebar import DEFAULT_WEIGHTS, RANDOM_WEIGHTS, Settings

log = logging.getLogger(__name__)

PER_PAGE = 24
ANY = "any"
REVIEW_ALL, REVIEW_UNREVIEWED = "all", "unreviewed"


def review_options(verdicts: Sequence[str]) -> list[str]:
    """The "reviewed" filter's choices: all, unreviewed only, or the images whose newest verdict is X."""
    return [REVIEW_ALL, REVIEW_UNREVIEWED, *verdicts]


@dataclass(frozen=True)
class View:
    """What the explorer shows; each field is one URL parameter (and the widget key ``xp_<field>``).

    Attributes:
        true, pred: class names of the confusion cell, or ``"any"``.
        review: ``"all"``, ``"unreviewed"`` or a verdict (the newest verdict on the image).
        disputed: only images whose FER2013 label the FERPlus majority disputes (``training.review``).
        duplicates: only images with an exact or near duplicate elsewhere in FER2013.
        brightness, blur: a bin label of the results' slices (``training.slices``), or ``"any"``.
        margin: the largest top-1 minus top-2 margin.
        item: the image id open in the dialog, or None.
    """

    true: str = ANY
    pred: str = ANY
    errors: bool = True
    review: str = REVIEW_ALL
    disputed: bool = False
    duplicates: bool = False
    brightness: str = ANY
    blur: str = ANY
    sort: str = "confidence"
    desc: bool = True
    conf_lo: float = 0.0
    conf_hi: float = 1.0
    margin: float = 1.0
    page: int = 1
    item: int | None = None


VIEW_FIELDS: tuple[str, ...] = tuple(f.name for f in fields(View))
_DEFAULT = View()


def _parse(name: str, text: str):
    default = getattr(_DEFAULT, name)
    if isinstance(default, bool):
        if text not in ("0", "1"):
            raise ValueError(f"expected 0 or 1, got {text!r}")
        return text == "1"
    if isinstance(default, float):
        return min(1.0, max(0.0, float(text)))
    if isinstance(default, int) or name == "item":
        return int(text)
    return text


def view_from_params(params: Mapping[str, str], class_names: Sequence[str], verdicts: Sequence[str]) -> View:
    """The view a URL asks for; unknown or unreadable values are logged and replaced by the default."""
    allowed = {
        "true": {ANY, *class_names},
        "pred": {ANY, *class_names},
        "review": set(review_options(verdicts)),
    }
    values = {}
    for name in VIEW_FIELDS:
        if name not in params:
            continue
        try:
            value = _parse(name, str(params[name]))
            if name in allowed and value not in allowed[name]:
                raise ValueError(f"choose one of {sorted(allowed[name])}")
            values[name] = value
        except ValueError as exc:
            log.info("ignoring URL parameter %s=%r: %s", name, params[name], exc)
    view = View(**values)
    return replace(view, page=max(1, view.page))


def view_to_params(view: View) -> dict[str, str]:
    """The URL parameters of ``view``: only fields that differ from the defaults, so links stay short."""

    def text(v) -> str:
        return str(int(v)) if isinstance(v, bool) else f"{v:g}" if isinstance(v, float) else str(v)

    return {name: text(v) for name, v in asdict(view).items() if v != getattr(_DEFAULT, name)}


def review_mask(ids: Sequence[int], latest: Mapping[int, object], review: str) -> np.ndarray:
    """Which ``ids`` pass the "reviewed" filter, given the newest verdict per image id (``latest_by_item``)."""
    ids = [int(i) for i in ids]
    if review == REVIEW_ALL:
        return np.ones(len(ids), dtype=bool)
    if review == REVIEW_UNREVIEWED:
        return np.array([i not in latest for i in ids], dtype=bool)
    return np.array([i in latest and getattr(latest[i], "verdict", None) == review for i in ids], dtype=bool)


SORT_KEYS = ("confidence", "margin", "id")


def select(df: pd.DataFrame, view: View, latest: Mapping[int, object], flags=None, bins=None) -> pd.DataFrame:
    """Rows of ``dashboard.evaluation.predictions_frame`` that pass every filter of ``view``, sorted as asked (stable,
    so ties keep id order). ``latest``: as for :func:`review_mask`; ``flags``/``bins``: None turns those filters off.
    """
    if view.sort not in SORT_KEYS:
        raise ValueError(f"unknown sort key {view.sort!r}; choose one of {list(SORT_KEYS)}")
    mask = df["confidence"].between(view.conf_lo, view.conf_hi) & (df["margin"] <= view.margin)
    if view.true != ANY:
        mask &= df["true_name"] == view.true
    if view.pred != ANY:
        mask &= df["pred_name"] == view.pred
    if view.errors:
        mask &= df["true"] != df["pred"]
    mask &= review_mask(df["id"], latest, view.review)
    for name, on in (("disputed", view.disputed), ("duplicate", view.duplicates)):
        if on and flags is not None:  # "label disputed", "has a duplicate"
            mask &= flags[name].reindex([int(i) for i in df["id"]]).fillna(False).to_numpy(bool)
    if bins is not None:
        mask &= slice_mask(df["id"], bins, view)
    return df[mask].sort_values([view.sort, "id"], ascending=[not view.desc, True], kind="stable")


SLICE_FILTERS = ("brightness", "blur")
"""The slices the explorer filters on (fields of :class:`View`)."""


def slice_mask(ids: Sequence[int], bins: pd.DataFrame, view: View) -> np.ndarray:
    """Which ``ids`` lie in the view's brightness and blur bins (``"any"`` passes every image)."""
    mask = np.ones(len(ids), dtype=bool)
    for name in SLICE_FILTERS:
        wanted = getattr(view, name)
        if wanted != ANY and name in bins:
            mask &= (bins[name].reindex([int(i) for i in ids]) == wanted).to_numpy(bool)
    return mask


def neighbours(ids: Sequence[int], item: int) -> tuple[int | None, int | None, int | None]:
    """``(previous, next, position)`` of image ``item`` in the filtered, sorted ``ids`` (None where none).

    An item no longer in the list (its verdict took it out of an "unreviewed" filter) has no position; its
    neighbours are then the first image of the list as next and none as previous.
    """
    ids = [int(i) for i in ids]
    if item not in ids:
        return None, (ids[0] if ids else None), None
    k = ids.index(item)
    return (ids[k - 1] if k > 0 else None), (ids[k + 1] if k + 1 < len(ids) else None), k


def weights_label(weights: str | os.PathLike, sha256: str | None = None) -> str:
    """How the explorer names a weights file: its path in the repo (else its file name, never a machine's
    absolute path) and the first 12 hex digits of its sha256 when known."""
    path = Path(weights)
    try:
        shown = str(path.relative_to(REPO_ROOT) if path.is_absolute() else path)
    except ValueError:
        shown = path.name
    return f"{shown}, sha256 {sha256[:12]}" if sha256 else shown


def engine_settings_for(d: dict, sidebar: Settings) -> tuple[Settings, str]:
    """The model that produced results ``d``, as :class:`Settings` for the engine, and a sentence saying so.

    Explanations must come from the evaluated model: its recorded weights when they exist here, else the
    sidebar's if it shows the same model, else random init; the sentence says which.
    """
    meta = d["meta"]
    model = str(meta.get("model") or sidebar.model)
    weights = meta.get("weights")
    if not weights:
        return replace(sidebar, model=model, weights=RANDOM_WEIGHTS), f"{model}, random init (as evaluated)"
    evaluated = weights_label(weights, meta.get("weights_sha256"))
    if Path(weights).is_file():
        return replace(sidebar, model=model, weights=str(weights)), f"{model} with the evaluated weights ({evaluated})"
    gone = f"the evaluated weights ({evaluated}) are not on this machine"
    if sidebar.model != model:
        return replace(sidebar, model=model, weights=RANDOM_WEIGHTS), f"{model}, random init: {gone}"
    ours = sidebar.weights if sidebar.weights in (DEFAULT_WEIGHTS, RANDOM_WEIGHTS) else weights_label(sidebar.weights)
    return sidebar, f"{model} with the sidebar's weights ({ours}): {gone}"


def page_count(n: int, per_page: int = PER_PAGE) -> int:
    return max(1, math.ceil(n / per_page))


def page_rows(rows: pd.DataFrame, page: int, per_page: int = PER_PAGE) -> pd.DataFrame:
    """Rows of gallery page ``page`` (1-based, clamped to the valid range)."""
    page = min(max(1, int(page)), page_count(len(rows), per_page))
    return rows.iloc[(page - 1) * per_page : page * per_page]


def verdict_rows(verdicts: list) -> pd.DataFrame:
    """Verdicts as a table for the page (newest first)."""
    cols = ["created_at", "reviewer", "verdict", "note", "true_label", "pred_label", "model"]
    return pd.DataFrame([{c: getattr(v, c) for c in cols} for v in reversed(verdicts)], columns=cols)
