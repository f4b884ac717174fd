"""Reviewer agreement against kappas worked out by hand (Cohen 1960's and Fleiss 1971's formulas)."""

from __future__ import annotations

from fractions import Fraction
from types import SimpleNamespace

import pytest

from training.agreement import COHEN, FLEISS, agreement, judgements, sharing_reviewers

L, M, A, N = "label wrong", "model wrong", "ambiguous", "not a face"


def _v(item: int, reviewer: str, verdict: str, t: int = 0, model: str = "default@abc", dataset: str = "fer2013:test"):
    return SimpleNamespace(dataset=dataset, item_id=item, reviewer=reviewer, verdict=verdict, model=model,
                           created_at=f"2025-01-01T00:00:{t:02d}.000+00:00", id=None)  # fmt: skip


def _pairs(ana: list[str], bo: list[str]) -> list:
    return [_v(i, "ana", a) for i, a in enumerate(ana)] + [_v(i, "bo", b) for i, b in enumerate(bo)]


def test_cohen_kappa_of_two_reviewers_by_hand() -> None:
    """10 images: both L on 5, both M on 3, ana L / bo M on one, ana M / bo L on one.

    p_o = 8/10; each says L on 6 and M on 4, so p_e = 0.6*0.6 + 0.4*0.4 = 0.52;
    kappa = (0.8 - 0.52) / (1 - 0.52) = 0.28 / 0.48 = 7/12.
    """
    ana = [L, L, L, L, L, L, M, M, M, M]
    bo = [L, L, L, L, L, M, L, M, M, M]
    a = agreement(judgements(_pairs(ana, bo)))
    assert (a.reviewers, a.method, a.n_images, a.reason) == (("ana", "bo"), COHEN, 10, "")
    assert a.kappa == pytest.approx(float(Fraction(7, 12)))
    assert a.disagreements.to_dict("records") == [
        {"dataset": "fer2013:test", "item_id": 5, "ana": L, "bo": M},
        {"dataset": "fer2013:test", "item_id": 6, "ana": M, "bo": L},
    ]


def test_fleiss_kappa_of_three_reviewers_by_hand() -> None:
    """6 images x 3 reviewers; per image the counts (L, M, A) and P_i = (sum n_ij^2 - 3) / 6:
    (3,0,0) 1; (2,1,0) 1/3; (0,3,0) 1; (1,1,1) 0; (1,2,0) 1/3; (1,0,2) 1/3  ->  mean P = 3/6 = 1/2.
    Category shares over 18 verdicts: L 8/18, M 7/18, A 3/18, so P_e = (64 + 49 + 9) / 324 = 61/162.
    kappa = (1/2 - 61/162) / (1 - 61/162) = 20/101.
    """
    rows = [(L, L, L), (L, L, M), (M, M, M), (L, M, A), (M, M, L), (A, A, L)]
    verdicts = [_v(i, who, row[k]) for i, row in enumerate(rows) for k, who in enumerate(("ana", "bo", "cy"))]
    verdicts.append(_v(7, "ana", N))  # judged by one reviewer only: neither in the kappa nor a disagreement
    a = agreement(judgements(verdicts))
    assert (a.reviewers, a.method, a.n_images) == (("ana", "bo", "cy"), FLEISS, 6)
    assert a.kappa == pytest.approx(float(Fraction(20, 101)))
    assert a.disagreements["item_id"].tolist() == [1, 3, 4, 5]


def test_the_newest_verdict_of_each_reviewer_counts_once() -> None:
    """ana first disagrees on image 5, then changes her mind: perfect agreement, nothing left to discuss."""
    ana = [L, L, M, M, A, L]
    older = _v(5, "ana", M)  # an older verdict of ana on image 5...
    older.created_at = "2024-12-31T23:59:59.000+00:00"
    verdicts = _pairs(ana, ana) + [older]
    assert judgements(verdicts).loc[("fer2013:test", 5), "ana"] == L
    a = agreement(judgements(verdicts))
    assert a.kappa == pytest.approx(1.0) and a.disagreements.empty
    verdicts.append(_v(5, "ana", M, t=30))  # ...and a newer one: now they disagree there
    a = agreement(judgements(verdicts))
    assert a.disagreements["item_id"].tolist() == [5] and a.kappa < 1


def test_kappa_is_measured_on_the_images_every_chosen_reviewer_judged() -> None:
    verdicts = _pairs([L, M, L, M], [L, M, M, M]) + [_v(0, "cy", L), _v(1, "cy", L), _v(9, "dee", A)]
    table = judgements(verdicts)
    assert sharing_reviewers(table) == ["ana", "bo", "cy"]  # dee shares no image
    three = agreement(table)
    assert (three.method, three.n_images) == (FLEISS, 2)
    assert three.disagreements["item_id"].tolist() == [1, 2]
    pair = agreement(table, ["ana", "bo"])
    assert (pair.method, pair.n_images) == (COHEN, 4)
    assert pair.disagreements["item_id"].tolist() == [2] and list(pair.disagreements.columns)[2:] == ["ana", "bo"]


def test_no_kappa_without_two_reviewers_shared_images_or_variation() -> None:
    assert agreement(judgements([])).reason == "choose at least two reviewers"
    one = agreement(judgements(_pairs([L], [M])))
    assert one.kappa is None and "1 image(s) in common" in one.reason and len(one.disagreements) == 1
    same = agreement(judgements(_pairs([A, A, A], [A, A, A])))
    assert same.kappa is None and "undefined" in same.reason
    with pytest.raises(ValueError, match="no verdict by"):
        agreement(judgements(_pairs([L], [M])), ["ana", "zed"])


def test_only_verdicts_on_the_same_model_are_compared() -> None:
    verdicts = _pairs([L, M], [L, M]) + [_v(0, "cy", M, model="other@def"), _v(1, "cy", L, model="other@def")]
    assert list(judgements(verdicts, model="default@abc").columns) == ["ana", "bo"]
    assert list(judgements(verdicts).columns) == ["ana", "bo", "cy"]
