"""Every dashboard page against the bad-input corpus, through Streamlit's AppTest: a plain message or results, never
a traceback.

The driving code is ``tests/harness/reliability_dashboard.py`` (which also writes the kind x page table): uploads go
through ``AppTest``'s ``file_uploader``/``camera_input`` (the ``UploadedFile`` a browser's upload becomes),
results and weights files through ``$FERLENS_RUNS``. One AppTest per page, re-run with each input.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.harness import reliability_dashboard as rd


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, shared_datasets: Path) -> rd.DashboardEnv:
    """An empty runs folder and verdict DB for one test."""
    env = rd.DashboardEnv(tmp_path / "runs", tmp_path / "verdicts.db", shared_datasets)
    env.clear_runs()
    for key, value in env.variables().items():
        monkeypatch.setenv(key, value)
    return env


def _check(outcomes: list[rd.Outcome], kinds: list[str]) -> dict[str, str]:
    """Every kind was run and answered as expected; returns ``{kind: verdict}`` for further checks."""
    assert [o.kind for o in outcomes] == kinds
    wrong = [o.line() for o in outcomes if not o.passed]
    assert not wrong, "\n".join(wrong)
    return {o.kind: o.verdict for o in outcomes}


def _image_kinds(corpus) -> list[str]:
    return [c.kind for c in rd.image_cases(corpus)]


@pytest.mark.slow
def test_upload_page_answers_every_image_kind(corpus, env) -> None:
    outcomes = list(rd.run_photo_page(corpus, "upload"))
    verdicts = _check(outcomes, _image_kinds(corpus))
    assert {"error", "faces", "no_face"} <= set(verdicts.values())
    for o in outcomes:
        if o.verdict == "error":  # the file's own name, then what was wrong with it
            assert o.message.startswith("Analysing ") and " failed: " in o.message, o.message


@pytest.mark.slow
def test_live_snapshot_answers_every_image_kind(corpus, env) -> None:
    verdicts = _check(list(rd.run_photo_page(corpus, "live")), _image_kinds(corpus))
    assert {"error", "faces", "no_face"} <= set(verdicts.values())


@pytest.mark.slow
def test_ablation_photo_answers_every_image_kind(corpus, env) -> None:
    verdicts = _check(list(rd.run_photo_page(corpus, "ablation")), _image_kinds(corpus))
    assert {"error", "faces", "no_face"} <= set(verdicts.values())


def test_video_page_answers_every_video_kind(corpus, env) -> None:
    outcomes = list(rd.run_video_page(corpus))
    verdicts = _check(outcomes, [c.kind for c in rd.video_cases(corpus)])
    assert {"error", "faces"} <= set(verdicts.values())
    for o in outcomes:  # the upload's name, never the server's temp copy
        assert "ferlens-videos" not in o.message, o.message


def test_evaluation_upload_refuses_bad_results_plainly(env) -> None:
    cases = rd.results_cases()
    outcomes = list(rd.run_evaluation_uploads(cases))
    verdicts = _check(outcomes, [c.kind for c in cases])
    assert verdicts["results_valid"] == "ok" and verdicts["results_pickle"] == "error"
    for o in outcomes:
        if o.verdict == "error":
            assert o.message.startswith(f"Reading {o.kind}.json failed: {o.kind}.json: "), o.message


@pytest.mark.parametrize("page", ["explorer", "model_card"])
def test_pages_reading_the_runs_folder_survive_bad_results(env, page: str) -> None:
    cases = rd.results_cases()
    success = {"explorer": rd._explorer_success, "model_card": rd._model_card_success}[page]
    verdicts = _check(list(rd.run_runs_folder(env, page, cases, success)), [c.kind for c in cases])
    # files that start like a results JSON are read and refused; anything else is never offered
    assert verdicts["results_truncated"] == verdicts["results_deep_nesting"] == "error"
    assert verdicts["results_pickle"] == verdicts["results_zero_byte"] == "ignored"


def test_ablation_page_refuses_bad_reports_plainly(env) -> None:
    cases = rd.report_cases()
    verdicts = _check(list(rd.run_ablation_reports(env, cases)), [c.kind for c in cases])
    assert verdicts["results_valid"] == "ok" and verdicts["results_wrong_types"] == "error"


def test_weights_menu_and_model_card_survive_bad_weights(env) -> None:
    cases = rd.weights_cases()
    verdicts = _check(list(rd.run_weights(env, cases)), [c.kind for c in cases])
    assert verdicts["weights_valid"] == verdicts["sidecar_wrong_types"] == "ok"
    assert verdicts["sidecar_not_object"] == "ignored"


def test_displayable_pads_only_what_streamlit_would_shrink_to_nothing() -> None:
    from dashboard.drawing import STREAMLIT_MAX_WIDTH, displayable

    strip = np.arange(5000 * 3, dtype=np.uint8).reshape(1, 5000, 3)
    shown = displayable(strip)
    assert shown.shape == (4, 5000, 3) and (shown[:1] == strip).all()
    assert int(shown.shape[0] * STREAMLIT_MAX_WIDTH / 5000) >= 1  # what st.image computes before resizing
    photo = np.zeros((480, 640, 3), np.uint8)
    assert displayable(photo) is photo
