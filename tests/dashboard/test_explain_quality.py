"""What the dashboard says about trusting an explanation: the Evaluation page's section and the map legend."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from dashboard import explain_quality as Q
from training import explain_eval as X


@pytest.fixture(scope="module")
def small_json(fer_faces: np.ndarray, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An explanations JSON measured for real, small: a random-init model, six FER2013 faces, two CAMs."""
    from core.models import create_model

    torch.manual_seed(0)
    faces = SimpleNamespace(images=fer_faces[:6], labels=np.arange(6) % 3, ids=np.arange(6))
    d = X.evaluate_explanations(
        create_model("default").eval(), faces, methods=["gradcam", "layercam"], per_class=2, steps=2, n_resamples=50
    )
    d["meta"] = {
        "command": "python -m training.explain_eval --per-class 2", "git_commit": None, "date": "today",
        "model": "default", "weights_sha256": None, "data": "fer2013", "split": "first rows", "per_class": 2,
        "pixel_per_class": 1, "n_images": 6, "n_pixel_shap": 0,
    }  # fmt: skip
    path = tmp_path_factory.mktemp("xq") / "explanations.json"
    path.write_text(json.dumps(d))
    return path


def test_evaluation_page_shows_the_ranking_and_au_table_from_the_json(
    small_json: Path, dashboard_env: Path, open_page, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FERLENS_EXPLANATIONS", str(small_json))
    d = json.loads(small_json.read_text())
    at = open_page("evaluation")
    assert not at.exception and not at.error, [e.value for e in at.error]
    tables = [t.value for t in at.dataframe]
    faith = next(t for t in tables if "rank" in t.columns)
    by_score = sorted(d["methods"], key=lambda r: -r["ins_minus_del"]["value"])
    assert list(faith["method"]) == [r["method"] for r in by_score]
    for row, r in zip(faith.itertuples(index=False), by_score, strict=True):
        e = r["deletion_auc"]
        assert row[3] == f"{e['value']:.3f} [{e['ci_low']:.3f}, {e['ci_high']:.3f}]"
    au = next(t for t in tables if "lift (1 = chance)" in t.columns)
    assert list(au["class"]) == [row["class"] for row in d["au_agreement"][d["ranking"][0]]]


def test_evaluation_page_without_the_json_gives_the_command(
    tmp_path: Path, dashboard_env: Path, open_page, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FERLENS_EXPLANATIONS", str(tmp_path / "absent.json"))
    at = open_page("evaluation")
    assert not at.exception and not at.error
    assert any(".venv/bin/python -m training.explain_eval" in i.value for i in at.info)


def test_legend_bars_use_the_overlay_colours_low_to_high() -> None:
    signed = Q.legend_bar(True, width=101).astype(int)
    left, mid, right = signed[0, 0], signed[0, 50], signed[0, -1]
    assert left[2] > left[0] and right[0] > right[2]  # blue = against the class, red = for it
    assert (mid > 240).all()  # white = no effect
    cam = Q.legend_bar(False, width=101).astype(int)
    assert cam[0, 0][2] > cam[0, 0][0] and cam[0, -1][0] > cam[0, -1][2]  # JET: blue low, red high
    assert "toward 'happy'" in Q.legend_text("pixel_shap", "happy", True, np.array([-0.2, 0.1]))
    assert "±0.2" in Q.legend_text("pixel_shap", "happy", True, np.array([-0.2, 0.1]))
    assert "per face" in Q.legend_text("gradcam", "happy", False)


@pytest.mark.slow
def test_upload_panel_has_legend_faithfulness_and_side_by_side_methods(
    samples_dir: Path, dashboard_env: Path, open_page, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("FERLENS_EXPLANATIONS", str(tmp_path / "absent.json"))
    at = open_page("upload")
    data = (samples_dir / "single_face.jpg").read_bytes()
    at.file_uploader(key="up_files").set_value(("single_face.jpg", data, "image/jpeg")).run()
    at.toggle(key="up_explain").set_value(True).run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    captions = [c for img in at.image for c in img.captions]
    assert any(c.startswith("gradcam: blue = low, red = high evidence") for c in captions)
    assert any("Faithfulness of gradcam: not measured" in c.value for c in at.caption)
    at.toggle(key="up0_cmp0_on").set_value(True).run()
    at.multiselect(key="up0_cmp0_methods").set_value(["eigencam", "region_shap"]).run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    captions = [c for img in at.image for c in img.captions]
    assert any(c.startswith("eigencam for '") for c in captions)
    assert any(c.startswith("region_shap for '") for c in captions)
    assert any(c.startswith("Signed SHAP") and "pushes the prediction toward" in c for c in captions)
    assert any("Faithfulness of region_shap: not measured" in c.value for c in at.caption)
