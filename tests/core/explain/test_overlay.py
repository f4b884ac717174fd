"""Overlays on the aligned crop and back on the original photo."""

from __future__ import annotations

import numpy as np
import pytest

from core.explain import colorize, crops_to_input, explain_cam, heatmap_overlay, overlay_on_image
from core.explain.overlay import diverging_colors
from core.faces import regions_for


@pytest.fixture(scope="module")
def cam48(default_model, sample_face) -> np.ndarray:
    return explain_cam(default_model, crops_to_input(default_model, [sample_face.image]))[0]


def test_overlay_on_the_crop(sample_face, cam48):
    crop = sample_face.image
    out = heatmap_overlay(crop, cam48, alpha=0.5)
    assert out.shape == crop.shape and out.dtype == np.uint8
    assert np.abs(out.astype(int) - crop).mean() > 5
    np.testing.assert_array_equal(heatmap_overlay(crop, cam48, alpha=0.0), crop)
    with_regions = heatmap_overlay(crop, cam48, regions=regions_for(sample_face), labels=True)
    assert (with_regions != out).any(axis=2).sum() > 200, "region outlines should be drawn"
    with pytest.raises(ValueError, match="alpha"):
        heatmap_overlay(crop, cam48, alpha=1.5)


def test_overlay_goes_back_onto_the_photo_only_where_the_crop_was(single_face_photo, sample_face, cam48):
    photo = single_face_photo
    out = overlay_on_image(photo, cam48, sample_face, alpha=0.6, regions=regions_for(sample_face))
    assert out.shape == photo.shape and out.dtype == np.uint8
    x, y, w, h = (int(v) for v in sample_face.face.box)
    changed = (out != photo).any(axis=2)
    assert changed[y : y + h, x : x + w].mean() > 0.9, "the face area is covered by the heatmap"
    assert not changed[:20, :20].any() and not changed[-20:, -20:].any(), "far corners untouched"


def test_colours():
    np.testing.assert_array_equal(diverging_colors(np.array([[0.0]])), [[[255, 255, 255]]])
    rgb = diverging_colors(np.array([[-2.0, 2.0]]))
    assert tuple(rgb[0, 0]) == (0, 0, 255) and tuple(rgb[0, 1]) == (255, 0, 0)
    jet = colorize(np.array([[0.0, 1.0]]))
    assert jet.shape == (1, 2, 3) and jet[0, 0, 2] > jet[0, 0, 0] and jet[0, 1, 0] > jet[0, 1, 2]  # blue -> red
