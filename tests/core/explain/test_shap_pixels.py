"""Pixel SHAP (shap's Partition explainer + maskers.Image) on a real face, with OpenCV 5's maskers."""

from __future__ import annotations

import numpy as np
import pytest

from core.explain import crops_to_input, pixel_shap
from core.explain.shap_pixels import masker_value


@pytest.fixture(scope="module")
def x_face(trained_model, sample_face):
    return crops_to_input(trained_model, [sample_face.image])


@pytest.mark.slow
@pytest.mark.parametrize("masker", ["blur", "inpaint_telea"])
def test_map_is_crop_sized_non_constant_and_efficient(trained_model, x_face, masker):
    res = pixel_shap(trained_model, x_face, masker=masker, max_evals=300)
    size = trained_model.spec.input_size
    assert res.values.shape == (size, size) and res.values.dtype == np.float32
    assert np.isfinite(res.values).all() and res.values.std() > 0
    assert len(np.unique(res.values)) >= 8, "300 evaluations should resolve more than a handful of blocks"
    # Owen values are efficient: they add up to f(x) - f(everything masked)
    assert res.values.sum() == pytest.approx(res.f_x - res.base_value, abs=1e-5)
    assert 0.0 <= res.f_x <= 1.0 and 0.0 <= res.base_value <= 1.0


@pytest.mark.slow  # the first pixel_shap call of a process pays shap's import and numba compilation
def test_explains_the_requested_class(trained_model, x_face):
    a = pixel_shap(trained_model, x_face, target=0, max_evals=60)
    b = pixel_shap(trained_model, x_face, target=3, max_evals=60)
    assert (a.target, b.target) == (0, 3)
    assert not np.allclose(a.values, b.values)


def test_masker_names():
    assert masker_value("blur", 48) == "blur(21,21)"
    assert masker_value("blur(5,7)", 48) == "blur(5,7)"
    assert masker_value("inpaint_ns", 48) == "inpaint_ns"
    with pytest.raises(ValueError, match="unknown pixel masker 'zeros'"):
        masker_value("zeros", 48)
    with pytest.raises(ValueError, match="unknown pixel masker"):
        masker_value("blur(0,3)", 48)
