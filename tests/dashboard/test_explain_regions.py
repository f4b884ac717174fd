"""The pages' explanations use the face-mesh AU regions and flag the 5-point fallback (dashboard.analysis)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from dashboard import analysis


@pytest.fixture(scope="module")
def engine():
    """A tiny FerNet behind the real engine (the regions do not depend on what it learnt)."""
    from core.engine import InferenceEngine
    from core.models import create_model
    from tests.training.conftest import TINY_MODEL

    return InferenceEngine(create_model("fernet_s", **TINY_MODEL), device="cpu")


@pytest.fixture(scope="module")
def detector(engine):
    from core.detector import Detector

    return Detector(engine=engine, tta=None)


@pytest.fixture(scope="module")
def photo(samples_dir: Path, detector):
    from core.io import load_image

    return analysis.analyze_rgb(detector, load_image(samples_dir / "single_face.jpg"))


def test_a_photo_face_is_explained_on_mesh_regions(photo, detector):
    ex = analysis.explain_face(detector, photo.rgb, photo.faces[0], "region_shap")
    assert not ex.regions_fallback and "face mesh" in ex.regions_note
    assert ex.mesh is not None and ex.mesh.ok
    overlay = analysis.photo_overlay(photo.rgb, photo.faces, [ex])
    assert overlay.shape == photo.rgb.shape and (overlay != photo.rgb).any()


def test_without_the_mesh_model_the_page_flags_the_five_point_fallback(photo, detector, monkeypatch):
    from core.faces import DetectorUnavailableError
    from core.faces import mesh as mesh_mod

    def missing():
        raise DetectorUnavailableError("face_landmark.tflite is missing")

    monkeypatch.setattr(mesh_mod, "mesh_model_path", missing)
    ex = analysis.explain_face(detector, photo.rgb, photo.faces[0], "gradcam")
    assert ex.regions_fallback and "five landmarks" in ex.regions_note and "unavailable" in ex.regions_note
    analysis.photo_overlay(photo.rgb, photo.faces, [ex])  # no error


def test_dataset_crops_get_their_own_regions_or_the_framing(fer_faces, engine):
    ex = analysis.explain_dataset_crop(engine, fer_faces[0], "gradcam", target=0)
    assert not ex.regions_fallback and "face mesh" in ex.regions_note
    blank = analysis.explain_dataset_crop(engine, np.zeros((48, 48), np.uint8), "gradcam", target=0)
    assert blank.regions_fallback and "typical five landmarks" in blank.regions_note
