"""The evaluation page and its helpers, on results JSONs of real FER2013 rows."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from dashboard import evaluation, explorer


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


def test_per_class_table_shows_the_file_intervals(results_pair) -> None:
    d = json.loads(results_pair[0].read_text())
    table = evaluation.per_class_table(d).set_index("class")
    assert list(table.index) == d["class_names"]
    for pc in d["per_class"]:
        for metric in ("precision", "recall", "f1"):
            row = table.loc[pc["name"]]
            assert (row[metric], row[f"{metric}_lo"], row[f"{metric}_hi"]) == (
                pc[metric],
                pc[f"{metric}_ci_low"],
                pc[f"{metric}_ci_high"],
            )
    assert evaluation.per_class_hint(d) is None


def _older_format(d: dict) -> dict:
    """``d`` as written before per-class intervals existed."""
    d["per_class"] = [{k: v for k, v in pc.items() if "_ci_" not in k} for pc in d["per_class"]]
    return d


def test_older_files_show_point_values_and_the_command_that_rewrites_them(results_pair) -> None:
    d = _older_format(json.loads(results_pair[0].read_text()))
    table = evaluation.per_class_table(d)
    assert list(table["f1"]) == [pc["f1"] for pc in d["per_class"]]
    assert table["f1_lo"].isna().all() and table["f1_hi"].isna().all()
    hint = evaluation.per_class_hint(d)  # the fixture's files come from Python (no command): rebuilt from meta
    assert "`.venv/bin/python -m training.evaluate --model default --weights none --data fer2013" in hint
    assert f"--split {d['meta']['data']['split']}" in hint and "--seed 0" in hint
    d["meta"]["command"] = "python -m training.evaluate --model default --split test --out 'my file.json'"
    assert evaluation.per_class_hint(d).endswith(
        "`.venv/bin/python -m training.evaluate --model default --split test --out 'my file.json'`"
    )


def test_page_hints_at_the_rewrite_for_an_older_file(results_pair, dashboard_env: Path, open_page) -> None:
    old = _older_format(json.loads(results_pair[0].read_text()))
    (dashboard_env / "old.json").write_text(json.dumps(old))
    at = open_page("evaluation")
    assert not at.exception and not at.error
    assert any("-m training.evaluate" in c.value and "older format" in c.value for c in at.caption)


def test_select_filters_a_confusion_cell_and_sorts(results_pair) -> None:
    d = json.loads(results_pair[0].read_text())
    df = evaluation.predictions_frame(d)
    true, pred = int(df["true"].iloc[0]), int(df["pred"].iloc[0])
    names = d["class_names"]
    view = explorer.View(true=names[true], pred=names[pred], errors=False, sort="margin")
    rows = explorer.select(df, view, {})
    assert len(rows) == d["confusion"]["counts"][true][pred]
    assert list(rows["margin"]) == sorted(rows["margin"], reverse=True)
    with pytest.raises(ValueError, match="unknown sort key"):
        explorer.select(df, explorer.View(sort="loss"), {})


def test_a_selected_cell_names_its_true_and_predicted_class() -> None:
    from dashboard import charts

    fig = charts.confusion_cells([[5, 1, 0], [2, 7, 3], [0, 0, 9]], ["angry", "disgust", "fear"])
    trace = fig.data[0]
    k = list(trace.customdata).index(next(c for c in trace.customdata if c[0] == 1 and c[1] == 2))
    assert (trace.y[k], trace.x[k], trace.text[k].split("<br>")[0]) == ("disgust", "fear", "3")
    event = {"selection": {"points": [{"point_index": k, "customdata": list(trace.customdata[k])}]}}
    assert charts.cell_of(event) == (1, 2)
    assert charts.cell_of({"selection": {"points": []}}) is None and charts.cell_of(None) is None
