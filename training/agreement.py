"""How far reviewers agree: Cohen's kappa for two, Fleiss' kappa for three or more, and the images they split on.

Each reviewer's newest verdict per image counts. A kappa needs the same reviewers on every image, so it uses
the images *every* chosen reviewer judged; disagreements cover every image at least two of them judged.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

COHEN = "Cohen's kappa"
FLEISS = "Fleiss' kappa"


def judgements(verdicts: Iterable, model: str | None = None) -> pd.DataFrame:
    """The newest verdict of each reviewer (a column, name order; None: not judged) on each ``(dataset, item_id)``.
    ``model`` (``"name@sha-prefix"``) keeps only verdicts on that model's predictions: "label wrong" and "model wrong"
    compare only between reviewers who saw the same prediction."""
    newest: dict[tuple[str, int, str], str] = {}
    for v in sorted(verdicts, key=lambda v: (v.created_at, v.id or 0)):
        if model is None or v.model == model:
            newest[(str(v.dataset), int(v.item_id), str(v.reviewer))] = str(v.verdict)
    if not newest:
        return pd.DataFrame(index=pd.MultiIndex.from_tuples([], names=["dataset", "item_id"]))
    s = pd.Series(newest)
    s.index.names = ["dataset", "item_id", "reviewer"]
    table = s.unstack("reviewer").sort_index()
    table = table.astype(object).where(table.notna(), None)
    return table[sorted(table.columns)]


def sharing_reviewers(table: pd.DataFrame) -> list[str]:
    """Reviewers who judged at least one image that another reviewer judged too."""
    shared = table[table.notna().sum(axis=1) >= 2]
    return [r for r in table.columns if shared[r].notna().any()]


@dataclass(frozen=True)
class Agreement:
    """The agreement of a group of reviewers.

    Attributes:
        method: :data:`COHEN` (two reviewers), :data:`FLEISS` (three or more), or None when no kappa applies.
        kappa: the statistic, None when it cannot be measured (then ``reason`` says why; else it is "").
        n_images: how many images every one of ``reviewers`` judged (the kappa's sample).
        disagreements: images at least two of them judged where their verdicts differ: ``dataset``,
            ``item_id`` and one column per reviewer (None where that reviewer gave no verdict).
    """

    reviewers: tuple[str, ...]
    method: str | None
    kappa: float | None
    n_images: int
    disagreements: pd.DataFrame
    reason: str = ""


def agreement(table: pd.DataFrame, reviewers: Sequence[str] | None = None) -> Agreement:
    """Kappa and disagreements of ``reviewers`` (default: :func:`sharing_reviewers`) on :func:`judgements`."""
    reviewers = tuple(sharing_reviewers(table) if reviewers is None else reviewers)
    unknown = [r for r in reviewers if r not in table.columns]
    if unknown:
        raise ValueError(f"no verdict by {unknown}; reviewers here: {list(table.columns)}")
    sub = table[list(reviewers)]
    judged = sub.notna().sum(axis=1)
    split = sub[(judged >= 2) & (sub.nunique(axis=1, dropna=True) > 1)]
    disagreements = split.reset_index()
    disagreements.columns.name = None
    complete = sub[judged == len(reviewers)] if reviewers else sub.iloc[:0]
    n = len(complete)
    method = COHEN if len(reviewers) == 2 else FLEISS if len(reviewers) >= 3 else None

    def result(kappa: float | None, reason: str = "") -> Agreement:
        return Agreement(reviewers, method, kappa, n, disagreements, reason)

    if method is None:
        return result(None, "choose at least two reviewers")
    if n < 2:
        return result(None, f"{'both' if len(reviewers) == 2 else 'all'} of them judged {n} image(s) in common")
    ratings = complete.to_numpy(dtype=object)
    if len(set(ratings.ravel())) == 1:
        return result(None, f"every verdict is {ratings[0, 0]!r}: kappa is undefined without any variation")
    if method == COHEN:
        from sklearn.metrics import cohen_kappa_score

        kappa = cohen_kappa_score(ratings[:, 0], ratings[:, 1])
    else:
        from statsmodels.stats.inter_rater import aggregate_raters, fleiss_kappa

        _, codes = np.unique(ratings.astype(str), return_inverse=True)
        counts, _ = aggregate_raters(codes.reshape(ratings.shape))
        kappa = fleiss_kappa(counts, method="fleiss")
    kappa = float(kappa)
    if not math.isfinite(kappa):  # chance agreement of 1: a reviewer who always says the same
        return result(None, "kappa is undefined: chance alone would give full agreement on these images")
    return result(kappa)
