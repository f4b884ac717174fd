"""The error explorer: gallery of a confusion cell, explanation of an opened image, persisted verdicts."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from dashboard.verdicts import VerdictStore


def _open_first(at):
    buttons = [b for b in at.button if (b.key or "").startswith("xp_open_")]
    assert buttons, "the gallery shows no image"
    return buttons[0].click().run()


def test_verdict_saved_in_one_session_is_read_back_by_a_fresh_one(results_pair, dashboard_env: Path, open_page) -> None:
    shutil.copy(results_pair[0], dashboard_env / "r.json")
    at = _open_first(open_page("explorer"))
    assert not at.exception and not at.error, [e.value for e in at.error]
    (title,) = at.subheader
    at.radio(key="xp_v").set_value("label wrong")
    at.text_input(key="xp_reviewer").input("ana")
    at.text_area(key="xp_note").input("looks sad to me")
    next(b for b in at.button if b.label == "Save verdict").click().run()
    assert not at.exception and not at.error
    assert [s.value for s in at.success] == ["Saved: label wrong by ana"]

    fresh = _open_first(open_page("explorer"))  # a new session (a restart, or another reviewer)
    assert [s.value for s in fresh.subheader] == [title.value]
    history = fresh.dataframe[-1].value
    assert list(history["reviewer"]) == ["ana"]
    assert list(history["verdict"]) == ["label wrong"] and list(history["note"]) == ["looks sad to me"]
    item = int(title.value.split("#")[1].split(":")[0])
    (stored,) = VerdictStore(Path(dashboard_env.parent / "verdicts.db")).all()
    assert (stored.item_id, stored.dataset) == (item, "fer2013:test")


def test_confusion_cell_opens_its_images_with_an_explanation(results_pair, dashboard_env: Path, open_page) -> None:
    shutil.copy(results_pair[0], dashboard_env / "r.json")
    d = json.loads(results_pair[0].read_text())
    names, counts = d["class_names"], d["confusion"]["counts"]
    true, pred = max(((i, j) for i in range(7) for j in range(7) if i != j), key=lambda ij: counts[ij[0]][ij[1]])
    at = open_page("evaluation")
    at.selectbox(key="cm_true").set_value(names[true])
    at.selectbox(key="cm_pred").set_value(names[pred])
    at.button(key="cm_open").click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert [t.value for t in at.title] == ["Error explorer"]
    assert (at.selectbox(key="xp_true").value, at.selectbox(key="xp_pred").value) == (names[true], names[pred])
    captions = [c.value for c in at.caption if c.value.startswith("#")]
    assert captions and all(f"{names[true]}→{names[pred]}" in c for c in captions)
    assert at.number_input(key="xp_page").label.startswith(f"{counts[true][pred]} images")
    # AppTest keeps running the page it was pointed at, even after the script's st.switch_page: follow it.
    at = _open_first(at.switch_page("../pages/explorer.py"))
    assert not at.exception and not at.error, [e.value for e in at.error]
    captions = [c for img in at.image for c in img.captions]
    assert f"gradcam for '{names[pred]}'" in captions
