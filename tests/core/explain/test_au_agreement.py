"""AU agreement: exact values on hand-made regions, and the per-class table on real FER2013 rows."""

from __future__ import annotations

import numpy as np
import pytest

from core.explain import agreement, agreement_records, agreement_table, expected_regions, framing_masks
from core.faces.au_regions import REGION_NAMES


@pytest.fixture()
def bands() -> dict[str, np.ndarray]:
    """Four disjoint full-width bands of a 48x48 crop (10, 10, 10 and 8 rows; 10 rows in no region)."""
    rows = {"brows": (0, 10), "eyes": (10, 20), "lips": (30, 40), "jaw": (40, 48)}
    out = {}
    for name, (a, b) in rows.items():
        m = np.zeros((48, 48), bool)
        m[a:b] = True
        out[name] = m
    return out


def test_expected_regions_follow_facs():
    assert expected_regions("angry") == ("brows", "eyes", "lips")  # AU4, 5, 7, 23
    assert expected_regions("happy") == ("cheeks", "lip_corners")  # AU6, 12
    assert expected_regions("surprise") == ("brows", "eyes", "jaw")  # AU1, 2, 5, 26
    assert expected_regions("neutral") == ()
    with pytest.raises(ValueError, match="unknown class 'bored'"):
        expected_regions("bored")


def test_uniform_map_is_chance(bands):
    a = agreement(np.ones((48, 48)), bands, "angry")
    assert a.share["brows"] == pytest.approx(10 / 48)
    assert all(v == pytest.approx(1.0) for v in a.density.values())
    assert a.lift == pytest.approx(1.0) and a.rank_auc == pytest.approx(0.5)
    assert a.share_outside == pytest.approx(10 / 48)


def test_evidence_on_the_brows_agrees_with_anger_not_with_happiness(bands):
    m = np.zeros((48, 48))
    m[2:8, 5:40] = 1.0
    m[44:46, :] = -5.0  # negative evidence is ignored
    a = agreement(m, bands, "angry")
    assert a.share == {"brows": 1.0, "eyes": 0.0, "lips": 0.0, "jaw": 0.0}
    assert a.density["brows"] == pytest.approx(48 / 10)
    assert a.expected == ("brows", "eyes", "lips")
    assert a.expected_share == 1.0 and a.expected_area == pytest.approx(30 / 48)
    assert a.lift == pytest.approx(48 / 30)
    assert a.rank_auc == pytest.approx((1 + 0.5 + 0.5) / 3)  # brows > jaw; eyes, lips tie with jaw
    assert a.top_region == "brows"
    s = agreement(m, bands, "surprise")  # expects brows, eyes, jaw
    assert s.lift == pytest.approx(48 / 28)
    h = agreement(m, bands, "happy")  # cheeks and lip corners are not among these masks
    assert np.isnan(h.lift) and np.isnan(h.rank_auc)
    assert np.isnan(agreement(m, bands, "neutral").lift)


def test_a_map_without_positive_evidence_gives_nan(bands):
    a = agreement(-np.ones((48, 48)), bands, "angry")
    assert np.isnan(a.lift) and all(np.isnan(v) for v in a.share.values()) and a.top_region is None


def test_maps_at_another_resolution_are_resized(bands):
    small = np.zeros((6, 6))
    small[0, :] = 1.0  # the top sixth of the face
    a = agreement(small, bands, "angry")
    assert a.top_region == "brows" and a.share["brows"] > 0.9


def test_fer2013_framing_covers_every_region_at_48_px():
    masks = framing_masks(48, "fer2013")
    assert list(masks) == list(REGION_NAMES)
    # brows above eyes above nose above lips above chin, in FER2013's framing
    rows = {k: np.nonzero(m)[0].mean() for k, m in masks.items()}
    assert rows["brows"] < rows["eyes"] < rows["nose"] < rows["lips"] < rows["chin"]
    with pytest.raises(ValueError, match="unknown framing"):
        framing_masks(48, "passport")


def test_per_class_table_on_real_fer2013_rows(trained_model, fer_rows):
    test = np.flatnonzero(fer_rows["usage"] == 2)[:96]
    data = (fer_rows["images"][test], fer_rows["emotion"][test])
    rec = agreement_records(trained_model, data, "gradcam", batch_size=32)
    assert len(rec) == 96 and set(rec["label"]) <= set(trained_model.spec.class_names)
    assert (rec["explained"] == rec["predicted"]).all()
    table = agreement_table(rec, trained_model.spec.class_names)
    assert table["n"].sum() == 96
    assert {"lift", "lift_se", "rank_auc", "density_brows", "share_lips", "top_region"} <= set(table.columns)
    for cls, row in table.iterrows():
        assert row["lift"] == pytest.approx(rec.loc[rec["explained"] == cls, "lift"].mean(), nan_ok=True)
        if cls == "neutral":
            assert np.isnan(row["lift"])
        elif row["n"] > 0:
            assert np.isfinite(row["lift"]) and row["lift"] >= 0
    by_label = agreement_records(trained_model, data, "eigencam", explain="label", limit=32)
    assert (by_label["explained"] == by_label["label"]).all() and len(by_label) == 32
