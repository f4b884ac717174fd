"""The card's score rows: every recorded score stays, results files add named rows; comparisons say which is which."""

from __future__ import annotations

import copy

import pytest

from dashboard import evaluation, model_card
from training.model_card import result_name, score_name

SHA = "179e56306f48be6aab7c8ea8391176558f61269b1e5a34da7802c51da8e64b4c"


def _metric(v: float) -> dict:
    return {"value": v, "ci_low": v - 0.01, "ci_high": v + 0.01}


def _sidecar() -> dict:
    def entry(data, split, tta, acc, classes=7):
        return {
            "data": data,
            "split": split,
            "tta_hflip": tta,
            "n": 3573,
            "accuracy": _metric(acc),
            "macro_f1": _metric(acc - 0.02),
            "ece": _metric(0.03),
            "per_class_f1": {f"c{i}": 0.5 for i in range(classes)},
            "command": f"python -m training.evaluate --data {data}",
        }

    return {
        "model": "default",
        "sha256": SHA,
        "test": {
            "fer2013_private": entry("fer2013", "test", False, 0.6882),
            "fer2013_private_tta": entry("fer2013", "test", True, 0.7011),
            "ferplus_private_8": entry("ferplus", "test", False, 0.6384, classes=8),
            "zeroshot_samples": entry("folder", "all", False, 0.5714),
        },
    }


@pytest.fixture(scope="module")
def base_results() -> dict:
    """A small valid results JSON on random predictions (scores, not a model, are what these tests are about)."""
    import numpy as np

    from core import metrics
    from training.results import SCHEMA, validate_results

    rng = np.random.default_rng(0)
    names = ["angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"]
    y, p = rng.integers(0, 7, 60), rng.dirichlet(np.ones(7), 60)
    top2 = np.sort(p, axis=1)[:, -2:]
    meta = {
        "model": "default",
        "spec": {},
        "weights": None,
        "weights_sha256": None,
        "data": {"source": "fer2013:/data/fer2013.csv", "split": "test", "n": 60, "limit": None},
        "tta_hflip": False,
        "bootstrap": {"n_resamples": 50, "seed": 0, "alpha": 0.05},
        "git_commit": None,
        "date": "2026-01-01T00:00:00+00:00",
        "command": "python -m training.evaluate --model default --data fer2013 --split test",
    }
    predictions = {
        "id": list(range(60)),
        "true": y.tolist(),
        "pred": p.argmax(1).tolist(),
        "confidence": top2[:, 1].tolist(),
        "margin": (top2[:, 1] - top2[:, 0]).tolist(),
        "probs": p.tolist(),
    }
    d = {"schema": SCHEMA, "meta": meta, "class_names": names, **metrics.summarize(y, p, names, n_resamples=50)}
    d["predictions"] = predictions
    validate_results(d)
    return d


def _results(base: dict, tta: bool, acc: float | None, sha: str = SHA) -> dict:
    d = copy.deepcopy(base)
    d["meta"].update(
        model="default", weights="/x/core/models/weights/default.safetensors", weights_sha256=sha, tta_hflip=tta
    )
    if acc is not None:  # the card's rows only; compare_results checks the accuracy against the predictions
        d["metrics"]["accuracy"] = _metric(acc)
    return d


def test_names_say_split_tta_and_weights() -> None:
    weights = "/anywhere/core/models/weights/default.safetensors"
    name = score_name("fer2013", "test", True, weights, SHA)
    assert name == "FER2013 PrivateTest, hflip TTA, default sha256:179e5630"
    assert score_name("fer2013", "val", False, "runs/v2/best.safetensors", "ab" * 32) == (
        "FER2013 PublicTest, no TTA, v2/best sha256:abababab"
    )
    assert score_name("ferplus", "test", False, None, None, 8) == "FERPlus PrivateTest (8 classes), no TTA, random init"


def test_recorded_rows_all_stay_and_each_results_file_adds_a_named_row(base_results) -> None:
    meta = _sidecar()
    recorded = model_card.all_scores(meta, [], "default", SHA)
    assert len(recorded) == 4 and recorded["score"].is_unique
    plain = _results(base_results, False, 0.6900)
    tta = _results(base_results, True, 0.7100)
    other = _results(base_results, True, 0.5, sha="ff" * 32)  # other weights: not this card's
    table = model_card.all_scores(meta, [plain, tta, other], "default", SHA)
    assert len(table) == 6
    assert table.iloc[:4].equals(recorded)  # nothing recorded disappears, nothing is reordered
    added = table.iloc[4:]
    assert added["score"].tolist() == [result_name(plain), result_name(tta)]
    assert [s.split(", ")[1] for s in added["score"]] == ["no TTA", "hflip TTA"]
    assert added["accuracy"].str.startswith("0.690").tolist() == [True, False]
    assert all(c.startswith(".venv/bin/python -m training.evaluate") for c in recorded["command"])


def test_a_results_file_that_repeats_a_recorded_score_adds_no_row(base_results) -> None:
    meta = _sidecar()
    again = _results(base_results, True, 0.7011)
    again["meta"]["data"].update(source="fer2013:/data/fer2013.csv", split="test", n=3573)
    again["class_names"] = again["class_names"][:7]
    again["metrics"]["macro_f1"] = _metric(0.7011 - 0.02)
    again["metrics"]["ece"] = _metric(0.03)
    assert len(model_card.all_scores(meta, [again], "default", SHA)) == 4


def test_validation_scores_are_a_rounded_table() -> None:
    table = model_card.validation_table({"val_acc": 0.6828723107013133, "val_macro_f1": 0.66710515, "note": "x"})
    assert table.to_dict("records") == [
        {"metric": "acc", "value": 0.6829},
        {"metric": "macro f1", "value": 0.6671},
    ]


def test_compare_names_both_sides_the_same_way(base_results) -> None:
    from training.evaluate import compare_results

    a, b = _results(base_results, True, None), _results(base_results, False, None)
    table = evaluation.mcnemar_summary(compare_results(a, b, n_resamples=50), result_name(a), result_name(b))
    rows = dict(zip(table[""], table["value"], strict=True))
    assert rows["A"] == f"default: {result_name(a)}" and rows["B"] == f"default: {result_name(b)}"
    assert "hflip TTA" in rows["A"] and "no TTA" in rows["B"] and rows["A"] != rows["B"]
    p = rows["McNemar p-value"]
    assert p == "None" or len(p) <= 9


@pytest.mark.parametrize("split", ["test", "val"])
def test_describe_uses_the_same_name(base_results, split) -> None:
    d = _results(base_results, False, 0.69)
    d["meta"]["data"]["split"] = split
    assert result_name(d) in evaluation.describe(d)
