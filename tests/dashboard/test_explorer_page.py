"""The error explorer: gallery of a confusion cell, the review dialog, verdicts that persist, the view in the URL."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from dashboard import explorer
from dashboard.verdicts import VERDICTS, Verdict, VerdictStore
from training.datasets import fer2013_path, read_fer2013


def _open_first(at):
    buttons = [b for b in at.button if (b.key or "").startswith("xp_open_")]
    assert buttons, "the gallery shows no image"
    return buttons[0].click().run()


def _shown(at) -> str:
    """The dialog's headline ("**Labelled x, predicted y** · k of n in this filter")."""
    return next(m.value for m in at.markdown if m.value.startswith("**Labelled"))


def _biggest_error_cell(d: dict) -> tuple[int, int]:
    counts = d["confusion"]["counts"]
    c = len(counts)
    return max(((i, j) for i in range(c) for j in range(c) if i != j), key=lambda ij: counts[ij[0]][ij[1]])


def test_confusion_cell_opens_its_images_with_an_explanation(results_pair, dashboard_env: Path, open_page) -> None:
    shutil.copy(results_pair[0], dashboard_env / "r.json")
    d = json.loads(results_pair[0].read_text())
    names, counts = d["class_names"], d["confusion"]["counts"]
    true, pred = _biggest_error_cell(d)
    at = open_page("evaluation")
    at.selectbox(key="cm_true").set_value(names[true])
    at.selectbox(key="cm_pred").set_value(names[pred])
    at.button(key="cm_open").click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert [t.value for t in at.title] == ["Error explorer"]
    assert (at.query_params["true"], at.query_params["pred"]) == (names[true], names[pred])
    # AppTest keeps running the page it was pointed at, even after the script's st.switch_page: follow it.
    at = at.switch_page("../pages/explorer.py").run()
    assert (at.selectbox(key="xp_true").value, at.selectbox(key="xp_pred").value) == (names[true], names[pred])
    captions = [c.value for c in at.caption if c.value.startswith("#")]
    assert captions and all(f"{names[true]}→{names[pred]}" in c for c in captions)
    assert at.number_input(key="xp_page").label.startswith(f"{counts[true][pred]} images")
    at = _open_first(at)
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert _shown(at).endswith(f"1 of {counts[true][pred]} in this filter")
    captions = [c for img in at.image for c in img.captions]
    assert f"gradcam for '{names[pred]}'" in captions


def test_verdict_loop_keeps_name_and_note_and_moves_on(results_pair, dashboard_env: Path, open_page) -> None:
    shutil.copy(results_pair[0], dashboard_env / "r.json")
    d = json.loads(results_pair[0].read_text())
    db = VerdictStore(dashboard_env.parent / "verdicts.db")
    at = _open_first(open_page("explorer"))
    first = int(at.query_params["item"])
    at.text_input(key=f"xp_note_{first}").input("looks sad to me")
    at.button(key="xp_verdict_0").click().run()  # no reviewer name yet: refused, nothing lost
    assert not at.exception
    assert any("needs a reviewer name" in e.value for e in at.error)
    assert at.text_input(key=f"xp_note_{first}").value == "looks sad to me" and db.count() == 0
    at.text_input(key="xp_reviewer").input("ana")
    at.button(key="xp_verdict_0").click().run()
    saved = []
    for k in (1, 2):  # two more in a row: the name is still there, the dialog is on the next image
        assert at.text_input(key="xp_reviewer").value == "ana"
        item = int(at.query_params["item"])
        assert item != first and item not in saved
        saved.append(item)
        at.button(key=f"xp_verdict_{k}").click().run()
        assert not at.exception and not at.error, [e.value for e in at.error]
    stored = {v.item_id: v for v in db.all()}
    assert stored[first].verdict == VERDICTS[0] and stored[first].note == "looks sad to me"
    assert [stored[i].verdict for i in saved] == [VERDICTS[1], VERDICTS[2]]
    assert {v.reviewer for v in stored.values()} == {"ana"} and at.query_params["reviewer"] == "ana"
    assert all(v.dataset == "fer2013:test" for v in stored.values())

    at.selectbox(key="xp_review").set_value("unreviewed").run()
    n_errors = sum(t != p for t, p in zip(d["predictions"]["true"], d["predictions"]["pred"], strict=True))
    assert at.number_input(key="xp_page").label.startswith(f"{n_errors - 3} images")
    at.selectbox(key="xp_review").set_value(VERDICTS[1]).run()
    shown = [c.value for c in at.caption if c.value.startswith("#")]
    assert [int(c[1:].split()[0]) for c in shown] == [saved[0]] and VERDICTS[1] in shown[0].split(" · ")


def test_the_url_restores_filter_page_and_open_image(results_pair, dashboard_env: Path, open_page) -> None:
    shutil.copy(results_pair[0], dashboard_env / "r.json")
    d = json.loads(results_pair[0].read_text())
    names = d["class_names"]
    true, pred = _biggest_error_cell(d)
    ids = [
        i
        for i, t, p in zip(*(d["predictions"][k] for k in ("id", "true", "pred")), strict=True)
        if (t, p) == (true, pred)
    ]
    VerdictStore(dashboard_env.parent / "verdicts.db").add(Verdict("fer2013:test", ids[0], "ambiguous", "bo"))
    params = {"true": names[true], "pred": names[pred], "review": "unreviewed", "sort": "id", "desc": "0",
              "item": str(ids[2]), "reviewer": "cy"}  # fmt: skip
    at = open_page("explorer", query_params=params)
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert (at.selectbox(key="xp_true").value, at.selectbox(key="xp_pred").value) == (names[true], names[pred])
    assert at.selectbox(key="xp_review").value == "unreviewed" and at.toggle(key="xp_desc").value is False
    shown = [int(c.value[1:].split()[0]) for c in at.caption if c.value.startswith("#")]
    assert sorted(shown) == sorted(ids[1:])[: explorer.PER_PAGE]  # page 1 in id order, the reviewed image left out
    assert _shown(at).endswith(f"{sorted(ids[1:]).index(ids[2]) + 1} of {len(ids) - 1} in this filter")
    assert at.text_input(key="xp_reviewer").value == "cy"


def test_view_round_trips_through_url_parameters() -> None:
    names = ["angry", "happy"]
    view = explorer.View(true="angry", errors=False, review="model wrong", disputed=True, conf_lo=0.25, page=3, item=17)
    params = explorer.view_to_params(view)
    assert params == {"true": "angry", "errors": "0", "review": "model wrong", "disputed": "1", "conf_lo": "0.25",
                      "page": "3", "item": "17"}  # fmt: skip
    assert explorer.view_from_params(params, names, VERDICTS) == view
    assert explorer.view_to_params(explorer.View()) == {}


@pytest.mark.parametrize(
    "params", [{"true": "joy"}, {"errors": "yes"}, {"page": "two"}, {"review": "wrong"}, {"item": "x"}]
)
def test_unreadable_url_parameters_fall_back_to_the_default(params) -> None:
    assert explorer.view_from_params({**params, "pred": "happy"}, ["angry", "happy"], VERDICTS) == explorer.View(
        pred="happy"
    )


def test_review_filter_and_neighbours() -> None:
    latest = {3: Verdict("d", 3, "ambiguous", "a"), 5: Verdict("d", 5, "label wrong", "a")}
    ids = [5, 4, 3, 9]
    assert explorer.review_mask(ids, latest, "all").tolist() == [True] * 4
    assert explorer.review_mask(ids, latest, "unreviewed").tolist() == [False, True, False, True]
    assert explorer.review_mask(ids, latest, "label wrong").tolist() == [True, False, False, False]
    assert explorer.neighbours(ids, 5) == (None, 4, 0)
    assert explorer.neighbours(ids, 3) == (4, 9, 2)
    assert explorer.neighbours(ids, 9) == (3, None, 3)
    assert explorer.neighbours(ids, 7) == (None, 5, None)


def _ferplus_oracle(shared_datasets: Path, ids) -> tuple[dict, dict, dict, dict]:
    """FER2013 label, FERPlus votes (ferlens class order + unknown, NF), majority and disputed per id, by the
    datasets README's pandas recipe (argmax over the file's columns: the first column wins ties)."""
    import numpy as np
    import pandas as pd

    plus = pd.read_csv(shared_datasets / "ferplus" / "fer2013new.csv")
    plus = plus[plus["Image name"].notna() & ~plus["Image name"].duplicated(keep="last")].reset_index(drop=True)
    emotion = read_fer2013(fer2013_path(shared_datasets))["emotion"]
    columns = ["neutral", "happiness", "surprise", "sadness", "anger", "disgust", "fear", "contempt", "unknown", "NF"]
    fer_name = {"anger": "angry", "disgust": "disgust", "fear": "fear", "happiness": "happy", "sadness": "sad",
                "surprise": "surprise", "neutral": "neutral", "contempt": "contempt", "unknown": "unknown",
                "NF": "not a face"}  # fmt: skip
    ferlens_order = [
        "anger",
        "disgust",
        "fear",
        "happiness",
        "sadness",
        "surprise",
        "neutral",
        "contempt",
        "unknown",
        "NF",
    ]
    names7 = ["angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"]
    label, votes, majority, disputed = {}, {}, {}, {}
    for i in ids:
        row = plus.loc[i, columns].to_numpy(dtype=int)
        label[i] = names7[emotion[i]]
        votes[i] = [int(plus.loc[i, c]) for c in ferlens_order]
        majority[i] = fer_name[columns[int(np.argmax(row))]]
        disputed[i] = majority[i] != label[i]
    return label, votes, majority, disputed


def test_votes_panel_and_disputed_filter(results_pair, dashboard_env: Path, open_page, shared_datasets: Path) -> None:
    shutil.copy(results_pair[0], dashboard_env / "r.json")
    d = json.loads(results_pair[0].read_text())
    ids, preds = d["predictions"]["id"], [d["class_names"][p] for p in d["predictions"]["pred"]]
    label, votes, majority, disputed = _ferplus_oracle(shared_datasets, ids)
    expected = sorted(i for i in ids if disputed[i])
    assert 0 < len(expected) < len(ids)
    at = open_page("explorer", query_params={"disputed": "1", "errors": "0", "sort": "id", "desc": "0"})
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert at.toggle(key="xp_disputed").value is True
    assert at.number_input(key="xp_page").label.startswith(f"{len(expected)} images")
    shown = [c.value for c in at.caption if c.value.startswith("#")]
    assert sorted(int(c[1:].split()[0]) for c in shown) == expected[: explorer.PER_PAGE]
    assert all("· disputed" in c for c in shown)

    suggest = [i for i, p in zip(ids, preds, strict=True) if disputed[i] and majority[i] == p]
    item = suggest[0] if suggest else expected[0]
    at.session_state["xp_item"] = item
    at.run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["FER2013 label"] == label[item]
    (chart,) = [json.loads(el.proto.spec) for el in at.get("plotly_chart") if "FERPlus" in el.proto.spec]
    assert chart["data"][0]["x"] == votes[item]
    assert chart["data"][0]["y"][:8] == d["class_names"] + (["contempt"] if len(d["class_names"]) == 7 else [])
    tips = [i.value for i in at.info if i.value.startswith("Suggested verdict")]
    assert len(tips) == (1 if suggest else 0)
    assert VerdictStore(dashboard_env.parent / "verdicts.db").count() == 0  # a suggestion is never saved


def test_two_reviewers_agreement_and_their_disagreements(results_pair, dashboard_env: Path, open_page) -> None:
    """Two reviewers on the same 10 images: Cohen's kappa 7/12 (worked out in tests/training/test_agreement.py)
    and the two images they split on; a third reviewer on another model's predictions is not compared."""
    from dashboard.evaluation import model_key

    shutil.copy(results_pair[0], dashboard_env / "r.json")
    d = json.loads(results_pair[0].read_text())
    ids, model = d["predictions"]["id"][:10], model_key(d)
    L, M = "label wrong", "model wrong"
    ana, bo = [L, L, L, L, L, L, M, M, M, M], [L, L, L, L, L, M, L, M, M, M]
    db = VerdictStore(dashboard_env.parent / "verdicts.db")
    for who, said in (("ana", ana), ("bo", bo)):
        for i, v in zip(ids, said, strict=True):
            db.add(Verdict("fer2013:test", i, v, who, model=model))
    db.add(Verdict("fer2013:test", ids[0], M, "cy", model="other@0123456789ab"))
    at = open_page("explorer")
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert at.multiselect(key="xp_team").value == ["ana", "bo"]
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Cohen's kappa"] == f"{7 / 12:.3f}" and metrics["Images all of them judged"] == "10"
    assert metrics["Images they disagree on"] == "2"
    (table,) = [t.value for t in at.dataframe if "bo" in t.value.columns]
    assert table.to_dict("records") == [{"item_id": ids[5], "ana": L, "bo": M}, {"item_id": ids[6], "ana": M, "bo": L}]


def test_an_unreachable_verdict_database_is_one_plain_error(
    results_pair, dashboard_env: Path, open_page, monkeypatch
) -> None:
    shutil.copy(results_pair[0], dashboard_env / "r.json")
    monkeypatch.setenv("FERLENS_VERDICTS_URL", "postgresql://rev:s3cret@127.0.0.1:1/ferlens")
    at = open_page("explorer")
    assert not at.exception
    (error,) = [e.value for e in at.error]
    assert error.startswith("Opening the verdict store failed: verdict database postgresql+psycopg://rev:***@")
    assert "\n" not in error and "s3cret" not in error and "Traceback" not in error


def test_the_dialog_names_weights_by_repo_path_or_file_name_and_sha256(tmp_path: Path) -> None:
    from dashboard.sidebar import Settings

    weights = tmp_path / "deep" / "folder" / "best.safetensors"
    weights.parent.mkdir(parents=True)
    weights.write_bytes(b"not read here")
    sha = "ab" * 32
    d = {"meta": {"model": "default", "weights": str(weights), "weights_sha256": sha}}
    _, note = explorer.engine_settings_for(d, Settings())
    assert note == "default with the evaluated weights (best.safetensors, sha256 abababababab)"
    assert str(tmp_path) not in note
    gone = {"meta": {"model": "default", "weights": "/elsewhere/runs/x/best.safetensors", "weights_sha256": sha}}
    _, note = explorer.engine_settings_for(gone, Settings(weights="runs/y/last.safetensors"))
    assert "/elsewhere" not in note and "(best.safetensors, sha256 abababababab)" in note
    assert "sidebar's weights (runs/y/last.safetensors)" in note
    shipped = explorer.weights_label(explorer.REPO_ROOT / "core" / "models" / "weights" / "default.safetensors")
    assert shipped == "core/models/weights/default.safetensors"
