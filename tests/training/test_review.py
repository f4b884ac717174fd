"""Review helpers on the real FER2013/FERPlus files, checked against the datasets README's own tables."""

from __future__ import annotations

import csv
import io
import logging
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from training import review
from training.datasets import fer2013_path, read_fer2013

# The datasets README: FERPlus majority per column (first column wins ties) on the joined PrivateTest rows.
README_PRIVATE_MAJORITY = {"neutral": 1261, "happy": 928, "surprise": 444, "sad": 444, "angry": 325,
                           "disgust": 23, "fear": 93, "contempt": 27, "unknown": 27, "not a face": 1}  # fmt: skip


@pytest.fixture(scope="module")
def fer(shared_datasets: Path) -> dict:
    return read_fer2013(fer2013_path(shared_datasets))


@pytest.fixture(scope="module")
def votes(shared_datasets: Path):
    return review.human_votes(shared_datasets)


@pytest.fixture(scope="module")
def hashes(shared_datasets: Path, fer) -> np.ndarray:
    return review.fer2013_phashes(fer2013_path(shared_datasets))


def test_majority_per_split_matches_the_readme_table(votes, fer) -> None:
    private = votes[fer["usage"] == 2]
    assert private["majority"].value_counts().to_dict() == README_PRIVATE_MAJORITY
    assert list(votes["fer2013"].head(3)) == ["angry", "angry", "fear"]  # fer2013.csv's first labels: 0, 0, 2


def test_disputed_rule_on_hand_made_votes(caplog: pytest.LogCaptureFixture) -> None:
    # file columns: neutral happiness surprise sadness anger disgust fear contempt unknown NF
    votes = np.array(
        [
            [0, 7, 0, 0, 0, 0, 0, 0, 3, 0],  # happy majority, FER2013 happy: agreed
            [4, 4, 0, 0, 0, 0, 0, 0, 2, 0],  # tie neutral/happiness: neutral (first column) wins, FER2013 happy
            [0, 0, 0, 0, 0, 0, 0, 0, 6, 4],  # unknown majority: disputed
            [0, 0, 0, 0, 0, 0, 0, 0, 0, 10],  # not a face: disputed
            [0, 0, 0, 0, 0, 0, 0, 0, 0, 0],  # no vote at all: no majority, not disputed
            [0, 0, 0, 0, 2, 0, 0, 8, 0, 0],  # contempt
        ]
    )
    with caplog.at_level(logging.WARNING, logger="training.review"):
        table = review.votes_table(np.array([3, 3, 0, 0, 6, 0]), votes)
    assert list(table["majority"]) == ["happy", "neutral", "unknown", "not a face", "", "contempt"]
    assert list(table["disputed"]) == [False, True, True, True, False, True]
    assert table.loc[5, ["angry", "contempt"]].tolist() == [2, 8]  # columns in ferlens order
    assert "1 FERPlus row(s) carry no vote" in caplog.text
    suggested = review.suggested_verdicts(
        table, [0, 1, 1, 2, 5, 99], ["happy", "neutral", "happy", "sad", "contempt", "sad"]
    )
    assert suggested == [None, "label wrong", None, None, "label wrong", None]


@pytest.mark.parametrize(
    ("emotion", "votes", "match"),
    [([0], np.zeros((1, 8)), r"votes must be \(N, 10\)"), ([0, 1], np.zeros((1, 10)), "do not match"),
     ([7], np.zeros((1, 10)), "labels must be 0..6"), ([0], -np.ones((1, 10)), "negative")],
)  # fmt: skip
def test_bad_votes_are_refused_with_a_reason(emotion, votes, match) -> None:
    with pytest.raises(review.ReviewDataError, match=match):
        review.votes_table(np.array(emotion), votes)


def test_duplicates_find_the_readme_exact_groups_and_a_near_pair(fer, hashes) -> None:
    usage = fer["usage"]
    private = np.flatnonzero(usage == 2)
    pairs = review.duplicates(private, fer["images"], hashes)
    exact = pairs[pairs["identical"]]
    # README: "288 PrivateTest rows have an identical image in Training"
    assert exact[usage[exact["other"]] == 0]["row"].nunique() == 288
    assert (exact["distance"] == 0).all()  # identical pixels, identical hash
    flat = fer["images"].reshape(len(usage), -1)
    for r, o in exact[["row", "other"]].head(20).itertuples(index=False):
        assert np.array_equal(flat[r], flat[o])
    near = pairs[(pairs["row"] == 32357) & (pairs["other"] == 32655)]
    assert len(near) == 1 and not near["identical"].iloc[0]  # issue 19's example: same photo, re-encoded


def test_duplicates_of_tiny_hashes() -> None:
    pairs = review.duplicates([0], np.zeros((4, 2, 2), np.uint8), np.array([0, 1, 0xFF, 0], dtype=np.uint64), 1)
    assert list(pairs["other"]) == [3, 1] and list(pairs["identical"]) == [True, True]
    assert review.duplicates([], np.zeros((4, 2, 2), np.uint8), np.zeros(4, np.uint64)).empty


def _v(item, verdict, pred, t, dataset="fer2013:test", model="default@abc123"):
    return SimpleNamespace(dataset=dataset, item_id=item, verdict=verdict, reviewer="ana", true_label="angry",
                           pred_label=pred, note="", confidence=0.5, created_at=t, model=model, id=None)  # fmt: skip


def test_corrected_csv_changes_only_the_corrected_labels(fer, shared_datasets: Path, tmp_path: Path) -> None:
    verdicts = [
        _v(0, "label wrong", "happy", "2026-01-01T00:00:01"),
        _v(1, "label wrong", "sad", "2026-01-01T00:00:02"),
        _v(1, "model wrong", "sad", "2026-01-01T00:00:03"),  # withdrawn by a later verdict
        _v(2, "label wrong", "surprise", "2026-01-01T00:00:04", dataset="folder:test"),  # not a FER2013 row
        _v(3, "ambiguous", "fear", "2026-01-01T00:00:05"),
    ]
    fixes = review.corrections(verdicts)
    assert fixes == {0: "happy"}
    head = {k: v[:40] for k, v in fer.items()}
    text = review.corrected_fer2013_csv(head, fixes)
    (tmp_path / "fer2013.csv").write_text(text)
    back = read_fer2013(tmp_path / "fer2013.csv", cache_dir=tmp_path / "cache")  # the loader's own parser
    expected = head["emotion"].copy()
    expected[0] = 3
    assert np.array_equal(back["emotion"], expected)
    assert np.array_equal(back["images"], head["images"]) and np.array_equal(back["usage"], head["usage"])
    with pytest.raises(review.ReviewDataError, match="outside FER2013"):
        review.corrected_fer2013_csv(head, {40: "happy"})


def test_verdict_log_carries_model_and_weights_hash() -> None:
    full = "ab" * 32
    verdicts = [_v(5, "label wrong", "happy", "t1", model="default@abababababab"), _v(6, "ambiguous", "sad", "t2")]
    rows = list(csv.DictReader(io.StringIO(review.verdict_log_csv(verdicts, {"default@abababababab": full}))))
    assert [r["weights_sha256"] for r in rows] == [full, "abc123"]
    assert [r["model"] for r in rows] == ["default", "default"]
    assert [r["corrected_label"] for r in rows] == ["happy", ""]
    assert rows[0]["item_id"] == "5" and rows[0]["reviewer"] == "ana"


def test_nearest_distance_histogram_command(shared_datasets: Path, hashes, capsys: pytest.CaptureFixture) -> None:
    import json

    assert review.main(["--split", "PrivateTest", "--root", str(shared_datasets), "--up-to", "4"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["images"] == 3573  # the README's PrivateTest total
    assert set(out["count"]) <= {"0", "2", "4"} and out["count"]["0"] >= 288  # README: 288 identical in Training
    assert out["median_pixel_difference"]["0"] == 0.0
