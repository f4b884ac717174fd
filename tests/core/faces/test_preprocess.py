"""CLAHE, adaptive gamma, grayscale: measured contrast gains, safety, dtype and shape."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from core.faces import align_face
from core.faces.preprocess import (
    AdaptiveGamma,
    Clahe,
    PreprocessConfig,
    ToGray,
    build_preprocess,
    create_preprocess,
    from_names,
    list_preprocess,
)


def _std_l(rgb: np.ndarray) -> float:
    rgb = rgb if rgb.ndim == 3 else np.repeat(rgb[..., None], 3, axis=2)
    return float(cv2.cvtColor(rgb, cv2.COLOR_RGB2LAB)[..., 0].std())


@pytest.fixture(scope="module")
def dark_crop(sample_images, sample_faces) -> np.ndarray:
    """A real aligned face, underexposed to a quarter of its brightness."""
    crop = align_face(sample_images["single_face.jpg"], sample_faces["single_face.jpg"][0], output_size=112).image
    return (crop.astype(np.float32) * 0.25).astype(np.uint8)


@pytest.mark.parametrize("transform", [Clahe(), AdaptiveGamma()], ids=["clahe", "gamma"])
def test_contrast_rises_on_a_dark_crop(transform, dark_crop):
    out = transform(dark_crop)
    before, after = _std_l(dark_crop), _std_l(out)
    print(f"{transform}: std of L {before:.1f} -> {after:.1f}")
    assert after > 1.3 * before
    assert out.dtype == np.uint8 and out.shape == dark_crop.shape
    gray = cv2.cvtColor(dark_crop, cv2.COLOR_RGB2GRAY)
    out_gray = transform(gray)
    assert out_gray.shape == gray.shape and _std_l(out_gray) > 1.3 * _std_l(gray)


@pytest.mark.parametrize("transform", [Clahe(), AdaptiveGamma(), ToGray(3)], ids=["clahe", "gamma", "gray"])
@pytest.mark.parametrize("value", [0, 1, 128, 254, 255])
@pytest.mark.parametrize("shape", [(48, 48), (48, 48, 1), (40, 56, 3)])
def test_uniform_images_stay_uniform_and_keep_dtype_and_shape(transform, value, shape):
    img = np.full(shape, value, np.uint8)
    out = transform(img)
    assert out.dtype == np.uint8
    assert out.shape == (shape if not isinstance(transform, ToGray) or len(shape) == 2 else shape[:2] + (3,))
    flat = out.reshape(-1, *out.shape[2:])
    assert (flat == flat[0]).all()  # spatially uniform in, uniform out: no structure invented
    assert abs(int(flat[0].max()) - int(flat[0].min())) <= 1  # and still grey (LAB round-off at most)


def test_gamma_formula():
    g = AdaptiveGamma()
    assert g.gamma_for(np.full((8, 8), 128, np.uint8)) == pytest.approx(np.log(0.5) / np.log(128 / 255), abs=1e-9)
    assert g.gamma_for(np.full((8, 8), 10, np.uint8)) == 0.6  # clipped
    assert g.gamma_for(np.full((8, 8), 250, np.uint8)) == 1.4
    bright = np.full((8, 8, 3), 220, np.uint8)
    assert g(bright).mean() < bright.mean()  # gamma > 1 darkens a bright image


def test_gray_and_registry():
    rgb = np.zeros((4, 4, 3), np.uint8)
    rgb[..., 1] = 255
    assert ToGray(1)(rgb).shape == (4, 4, 1) and int(ToGray(1)(rgb)[0, 0, 0]) == 150  # ITU-R 601: 0.587 * 255
    assert set(list_preprocess()) == {"clahe", "gamma", "grayscale"}
    assert from_names(("gamma", "clahe")).names == ("gamma", "clahe")
    assert len(from_names(())) == 0 and from_names(())(rgb) is rgb
    assert from_names(("clahe",))(rgb).shape == rgb.shape
    with pytest.raises(ValueError, match=r"unknown preprocessing 'sharpen'; choose one of \['clahe'"):
        create_preprocess("sharpen")
    with pytest.raises(TypeError, match="uint8"):
        Clahe()(rgb.astype(np.float32))


def test_config_switches_build_the_pipeline(dark_crop):
    assert len(build_preprocess(PreprocessConfig())) == 0
    pipe = build_preprocess(PreprocessConfig(clahe=True, gamma=True, grayscale=True))
    assert pipe.names == ("gamma", "clahe", "grayscale")
    out = pipe(dark_crop)
    assert out.shape == dark_crop.shape and (out[..., 0] == out[..., 2]).all()
    assert PreprocessConfig.from_names(("clahe",)) == PreprocessConfig(clahe=True)


@pytest.mark.slow
def test_every_registered_model_spec_names_registered_steps():
    """Loop over the model registry: each spec.preprocess must build (what the engine and trainer do)."""
    from core.models import create_model, list_models

    seen = set()
    for name in list_models():
        steps = tuple(create_model(name).spec.preprocess)
        assert from_names(steps).names == steps, name
        seen.update(steps)
    assert seen <= set(list_preprocess())
