"""The Evaluation page's robustness and slice sections, and the explorer's brightness / blur filters, read from
small JSONs (a hand-written robustness report; a results JSON of real FER2013 rows with measured slices)."""

from __future__ import annotations

import base64
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from dashboard import charts, explorer
from dashboard import robustness as rob

ROBUSTNESS = {
    "clean": {"accuracy": 0.8, "ci_low": 0.75, "ci_high": 0.85},
    "conditions": [
        {"corruption": "blur", "family": "blur", "region": None, "severity": 1.0, "accuracy": 0.6, "ci_low": 0.55,
         "ci_high": 0.66, "retention": 0.75, "retention_ci_low": 0.7, "retention_ci_high": 0.8},
        {"corruption": "rotation", "family": "rotation", "region": None, "severity": 1.0, "accuracy": 0.72,
         "ci_low": 0.66, "ci_high": 0.77, "retention": 0.9, "retention_ci_low": 0.86, "retention_ci_high": 0.94},
        {"corruption": "au_occlusion", "family": "au_occlusion", "region": "brows", "severity": 1.0, "accuracy": 0.76,
         "ci_low": 0.7, "ci_high": 0.81, "retention": 0.95, "retention_ci_low": 0.9, "retention_ci_high": 0.99},
        {"corruption": "au_occlusion", "family": "au_occlusion", "region": "lips", "severity": 1.0, "accuracy": 0.68,
         "ci_low": 0.62, "ci_high": 0.73, "retention": 0.85, "retention_ci_low": 0.8, "retention_ci_high": 0.9},
    ],
    "family_retention": {"blur": 0.75, "rotation": 0.9, "au_occlusion": 0.9},
    "mean_retention": 0.85,
    "goal": {"mean_retention": 0.85, "met": True},
    "au_regions": {"framing": "fer2013", "mesh_tried": True, "placed": {"mesh": 9, "framing": 1}},
    "meta": {"model": "default", "data": "fer2013", "split": "PrivateTest", "n": 10, "limit": None, "seed": 0,
             "command": "python -m training.robustness --model default --data fer2013 --split PrivateTest --out x"},
}  # fmt: skip


@pytest.fixture(scope="module")
def sliced(shared_datasets: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A results JSON (random-init default, 140 FER2013 PrivateTest rows) with measured slices."""
    from core.models import create_model
    from training.evaluate import evaluate_model, load_faceset
    from training.results import write_results

    fs = load_faceset("fer2013", "test", 140, 7, str(shared_datasets), [])
    torch.manual_seed(0)
    d = evaluate_model(create_model("default").eval(), fs, batch_size=64, bootstrap=50, slices=True)
    return write_results(d, tmp_path_factory.mktemp("sliced") / "sliced.json")


def _numbers(v) -> list[float]:
    """A plotly JSON array: a list, or a typed array ``{"dtype", "bdata"}`` (base64 of the raw values)."""
    if isinstance(v, dict):
        return np.frombuffer(base64.b64decode(v["bdata"]), dtype=np.dtype(v["dtype"])).tolist()
    return list(v)


def _figures(at) -> list[dict]:
    return [json.loads(el.proto.spec) for el in at.get("plotly_chart")]


def test_robustness_table_and_figure_carry_the_file_numbers() -> None:
    table = rob.robustness_table(ROBUSTNESS)
    assert list(table["condition"]) == ["blur @ 1", "rotation @ 1", "occlude brows", "occlude lips"]
    fig = charts.robustness_figure(table, "accuracy", ROBUSTNESS["clean"]["accuracy"])
    bars = {x: (y, up, down) for tr in fig.data for x, y, up, down in
            zip(tr.x, tr.y, tr.error_y.array, tr.error_y.arrayminus, strict=True)}  # fmt: skip
    for c in ROBUSTNESS["conditions"]:
        y, up, down = bars[rob.condition_label(c)]
        assert (y, y + up, y - down) == pytest.approx((c["accuracy"], c["ci_high"], c["ci_low"]))
    assert {tr.name for tr in fig.data} == {"blur", "rotation", "au_occlusion"}
    fam = rob.family_table(ROBUSTNESS).set_index("family")["mean retention"]
    assert fam.to_dict() == ROBUSTNESS["family_retention"]
    assert "meets the goal 0.85" in rob.summary(ROBUSTNESS)


def test_page_plots_robustness_and_lists_slices(sliced: Path, dashboard_env: Path, open_page) -> None:
    shutil.copy(sliced, dashboard_env / "sliced.json")
    (dashboard_env / "robustness").mkdir()
    (dashboard_env / "robustness" / "r.json").write_text(json.dumps(ROBUSTNESS))
    at = open_page("evaluation")
    assert not at.exception and not at.error, [e.value for e in at.error]
    fig = next(f for f in _figures(at) if "Accuracy per condition" in json.dumps(f["layout"].get("title")))
    ys = {x: y for tr in fig["data"] for x, y in zip(tr["x"], _numbers(tr["y"]), strict=True)}
    assert ys == {rob.condition_label(c): c["accuracy"] for c in ROBUSTNESS["conditions"]}
    d = json.loads(sliced.read_text())
    table = next(t.value for t in at.dataframe if "error_rate" in t.value.columns)
    expected = [(n, b["label"], b["n"], b["errors"]) for n, e in d["slices"]["attributes"].items() for b in e["bins"]]
    assert list(table[["slice", "bin", "n", "errors"]].itertuples(index=False, name=None)) == expected
    assert any("face size: not measured" in c.value for c in at.caption)


def test_page_without_robustness_or_slices_names_the_commands(results_pair, dashboard_env: Path, open_page) -> None:
    shutil.copy(results_pair[0], dashboard_env / "a.json")
    at = open_page("evaluation")
    assert not at.exception and not at.error
    hints = [i.value for i in at.info] + [c.value for c in at.caption]  # the repo's bench files may be listed
    assert any(".venv/bin/python -m training.robustness --model default --data fer2013 --split PrivateTest" in h
               for h in hints)  # fmt: skip
    assert any("training.evaluate" in h and h.rstrip("`").endswith("--slices") for h in hints)


def test_explorer_filters_by_brightness_bin(sliced: Path, dashboard_env: Path, open_page) -> None:
    shutil.copy(sliced, dashboard_env / "sliced.json")
    d = json.loads(sliced.read_text())
    entry = d["slices"]["attributes"]["brightness"]
    edges, label = entry["edges"], entry["bins"][1]["label"]
    v = np.asarray(d["predictions"]["brightness"])
    inside = (v >= edges[1]) & (v < edges[2])  # the second of five quintile bins, by its edges
    assert inside.sum() == entry["bins"][1]["n"]
    at = open_page("explorer", query_params={"brightness": label, "errors": "0"})
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert at.selectbox(key="xp_brightness").value == label
    assert at.number_input(key="xp_page").label.startswith(f"{int(inside.sum())} images")


def test_slice_mask_passes_any_and_selects_a_bin() -> None:
    import pandas as pd

    bins = pd.DataFrame({"brightness": ["a", "b", "a"], "blur": ["x", "x", "y"]}, index=[10, 11, 12])
    ids = [12, 10, 11]
    assert explorer.slice_mask(ids, bins, explorer.View()).all()
    assert explorer.slice_mask(ids, bins, explorer.View(brightness="a")).tolist() == [True, True, False]
    assert explorer.slice_mask(ids, bins, explorer.View(brightness="a", blur="y")).tolist() == [True, False, False]
