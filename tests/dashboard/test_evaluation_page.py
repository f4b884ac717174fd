"""The evaluation page and its helpers, on results JSONs of real FER2013 rows."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from dashboard import evaluation


def _figures(at: AppTest) -> list[dict]:
    return [json.loads(el.proto.spec) for el in at.get("plotly_chart")]


def test_page_draws_the_confusion_matrix_of_a_results_file(results_pair, dashboard_env: Path, open_page) -> None:
    a, b = results_pair
    shutil.copy(a, dashboard_env / "a.json")
    d = json.loads(a.read_text())
    at = open_page("evaluation")
    assert not at.exception and not at.error, [e.value for e in at.error]
    cells = [f for f in _figures(at) if f["data"][0].get("marker", {}).get("symbol") == "square"]
    assert len(cells) == 1
    trace, names = cells[0]["data"][0], d["class_names"]
    counts = np.zeros((len(names), len(names)), dtype=int)
    for x, y, text, (t, p, *_) in zip(trace["x"], trace["y"], trace["text"], trace["customdata"], strict=True):
        assert (names.index(y), names.index(x)) == (t, p)  # customdata names the cell the point is drawn at
        counts[int(t), int(p)] = int(text.split("<br>")[0])
    assert counts.tolist() == d["confusion"]["counts"]
    assert np.allclose(trace["marker"]["color"], np.ravel(d["confusion"]["normalized"]), atol=1e-9)
    acc = next(m for m in at.metric if m.label == "accuracy")
    assert acc.value == f"{d['metrics']['accuracy']['value']:.3f}"


def test_compare_tab_runs_mcnemar_on_two_results(results_pair, dashboard_env: Path, open_page) -> None:
    for p in results_pair:
        shutil.copy(p, dashboard_env / p.name)
    at = open_page("evaluation")
    assert not at.exception and not at.error
    tables = [t.value for t in at.dataframe]
    mc = next(t for t in tables if "McNemar p-value" in set(t.iloc[:, 0]))
    assert mc.set_index(mc.columns[0]).loc["images compared", "value"] == "140"


def test_page_without_results_says_how_to_make_one(dashboard_env: Path, open_page) -> None:
    at = open_page("evaluation")
    assert not at.exception and not at.error
    assert any("training.evaluate" in i.value for i in at.info)


def test_a_broken_upload_is_a_plain_error(dashboard_env: Path, open_page) -> None:
    at = open_page("evaluation")
    at.file_uploader[0].set_value(("bad.json", b'{"schema": "ferlens.results/1"}', "application/json")).run()
    assert not at.exception
    assert any("bad.json" in e.value and "invalid results JSON" in e.value for e in at.error)


def test_per_class_intervals_contain_the_file_values(results_pair) -> None:
    d = json.loads(results_pair[0].read_text())
    table = evaluation.per_class_table(d, n_resamples=200)
    assert list(table["class"]) == d["class_names"]
    for metric in ("precision", "recall", "f1"):
        for value, lo, hi in zip(table[metric], table[f"{metric}_lo"], table[f"{metric}_hi"], strict=True):
            if value is not None and lo is not None:
                assert lo - 1e-9 <= value <= hi + 1e-9


def test_select_filters_a_confusion_cell_and_sorts(results_pair) -> None:
    d = json.loads(results_pair[0].read_text())
    df = evaluation.predictions_frame(d)
    true, pred = int(df["true"].iloc[0]), int(df["pred"].iloc[0])
    rows = evaluation.select(df, evaluation.CellFilter(true=true, pred=pred, errors_only=False, sort="margin"))
    assert len(rows) == d["confusion"]["counts"][true][pred]
    assert list(rows["margin"]) == sorted(rows["margin"], reverse=True)
    with pytest.raises(ValueError, match="unknown sort key"):
        evaluation.select(df, evaluation.CellFilter(sort="loss"))


def test_a_selected_cell_names_its_true_and_predicted_class() -> None:
    from dashboard import charts

    fig = charts.confusion_cells([[5, 1, 0], [2, 7, 3], [0, 0, 9]], ["angry", "disgust", "fear"])
    trace = fig.data[0]
    k = list(trace.customdata).index(next(c for c in trace.customdata if c[0] == 1 and c[1] == 2))
    assert (trace.y[k], trace.x[k], trace.text[k].split("<br>")[0]) == ("disgust", "fear", "3")
    event = {"selection": {"points": [{"point_index": k, "customdata": list(trace.customdata[k])}]}}
    assert charts.cell_of(event) == (1, 2)
    assert charts.cell_of({"selection": {"points": []}}) is None and charts.cell_of(None) is None
