"""AU regions on every sample face, from the face mesh and from the five landmarks: inside the face box, in
anatomical order, rasterisable; the FACS table. (The mesh itself and the fallback: test_mesh.py.)"""

from __future__ import annotations

import numpy as np
import pytest

from core.faces import align_face
from core.faces.au_regions import (
    AU_REGION,
    EXPECTED_AUS,
    REGION_NAMES,
    UNILATERAL_AUS,
    au_regions,
    clip_polygon,
    draw_regions,
    region_masks,
    regions_for,
    regions_to_image,
)
from core.labels import EMOTIONS_8

ANATOMICAL_ORDER = ("brows", "eyes", "nose", "lips", "chin")  # their centroids go strictly down the face


@pytest.fixture(scope="module")
def aligned_cases(face_cases):
    return [(name, i, image, face, align_face(image, face, output_size=224)) for name, i, image, face in face_cases]


@pytest.mark.parametrize("mesh", [True, False], ids=["mesh", "five_point"])
def test_regions_lie_inside_the_face_box_on_every_sample_face(aligned_cases, mesh):
    for name, i, image, face, a in aligned_cases:
        regions = regions_to_image(regions_for(a, image, mesh=mesh), a)
        assert regions.source == ("mesh" if mesh else "five_point"), (name, i, regions.reason)
        assert set(regions) == set(REGION_NAMES)
        x1, y1, x2, y2 = face.xyxy
        for region in regions.values():
            pts = region.points
            tol = 0.5  # float round-off of clipping then mapping back
            assert (pts[:, 0] >= x1 - tol).all() and (pts[:, 0] <= x2 + tol).all(), (name, i, region.name)
            assert (pts[:, 1] >= y1 - tol).all() and (pts[:, 1] <= y2 + tol).all(), (name, i, region.name)


@pytest.mark.parametrize("mesh", [True, False], ids=["mesh", "five_point"])
def test_frontal_geometry_nearly_fits_the_box_even_unclipped(aligned_cases, mesh):
    """Clipping is a safety net for turned heads; on the frontal faces the raw geometry overshoots the box by
    at most 10% of its width (the outer brow tips of a slightly turned face)."""
    worst = 0.0
    for name, i, image, face, a in aligned_cases:
        if name == "45-m7-di-ph.jpg":
            continue
        x1, y1, x2, y2 = face.xyxy
        raw = regions_to_image(regions_for(a, image, mesh=mesh, clip_to_box=False), a)
        pts = np.concatenate([r.points for r in raw.values()])
        over = max(x1 - pts[:, 0].min(), pts[:, 0].max() - x2, y1 - pts[:, 1].min(), pts[:, 1].max() - y2, 0.0)
        worst = max(worst, over / (x2 - x1))
        assert over <= 0.10 * (x2 - x1), (name, i, over)
    print(f"worst unclipped overshoot on frontal faces: {100 * worst:.1f}% of the box width")


@pytest.mark.parametrize("mesh", [True, False], ids=["mesh", "five_point"])
def test_regions_keep_anatomical_order_on_every_sample_face(aligned_cases, mesh):
    for name, i, image, _face, a in aligned_cases:
        regions = regions_for(a, image, mesh=mesh)
        ys = [float(regions[n].centroid[1]) for n in ANATOMICAL_ORDER]
        assert all(a_ < b_ for a_, b_ in zip(ys, ys[1:], strict=False)), (
            name,
            i,
            dict(zip(ANATOMICAL_ORDER, ys, strict=True)),
        )
        # left/right pairs on their sides of the face (crop is upright after alignment)
        left, right = regions["eyes"].polygons
        assert left[:, 0].mean() < right[:, 0].mean()


def test_masks_rasterise_at_any_resolution(aligned_cases):
    _name, _i, _image, _face, a = aligned_cases[0]
    regions = regions_for(a)
    full = region_masks(regions, (224, 224))
    grid = region_masks(regions, (7, 7), from_size=224)
    for name in REGION_NAMES:
        assert full[name].dtype == bool and 0 < full[name].sum() < 224 * 224 / 4, name
        assert grid[name].shape == (7, 7)
    assert grid["lips"].any() and grid["brows"].any()
    # the mouth-region masks sit below the brow masks
    ys = np.arange(224)[:, None]
    assert (ys * full["lips"]).sum() / full["lips"].sum() > (ys * full["brows"]).sum() / full["brows"].sum()


def test_regions_follow_the_landmarks():
    lm = np.array([[30, 40], [70, 40], [50, 60], [35, 80], [65, 80]], np.float64)
    moved = au_regions(lm + [10, 5])
    base = au_regions(lm)
    for name in REGION_NAMES:
        np.testing.assert_allclose(moved[name].centroid, base[name].centroid + [10, 5], atol=1e-3)
    with pytest.raises(ValueError, match="coincide"):
        au_regions(np.zeros((5, 2)))
    with pytest.raises(ValueError, match="mouth is not below"):
        au_regions(lm * [1, -1])


def test_clip_polygon():
    square = np.array([[0, 0], [10, 0], [10, 10], [0, 10]], np.float32)
    tri = np.array([[-5, 5], [5, -5], [5, 15]], np.float32)
    out = clip_polygon(tri, square)
    assert out[:, 0].min() >= 0 and out[:, 1].min() >= 0 and out[:, 1].max() <= 10
    assert len(clip_polygon(tri + 100, square)) == 0
    np.testing.assert_allclose(clip_polygon(square * 0.5 + 2, square[::-1]), square * 0.5 + 2)


def test_facs_table():
    assert set(EXPECTED_AUS) == set(EMOTIONS_8)
    assert EXPECTED_AUS["happy"] == (6, 12) and EXPECTED_AUS["neutral"] == ()
    assert UNILATERAL_AUS["contempt"] == (12, 14)
    for emotion, aus in EXPECTED_AUS.items():
        for au in aus:
            assert AU_REGION[au] in REGION_NAMES, (emotion, au)


def test_draw_regions_outlines_and_labels(aligned_cases):
    _name, _i, image, _face, a = aligned_cases[0]
    crop_regions = regions_for(a)
    drawn = draw_regions(a.image, crop_regions)
    assert drawn.shape == a.image.shape and drawn.dtype == np.uint8 and (drawn != a.image).any()
    on_photo = draw_regions(image, regions_to_image(crop_regions, a), labels=False)
    assert on_photo.shape == image.shape and (on_photo != image).any()
    assert a.image is not drawn
