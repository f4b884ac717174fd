"""Five-point alignment: the transform, the template, eye placement on real faces, and the way back."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from face_samples import NOT_FRONTAL

from core.faces import align_face, create_detector, template_points, warp_to_image
from core.faces.align import ARCFACE_TEMPLATE_112, similarity_transform, transform_points


def test_similarity_transform_recovers_a_known_transform_exactly():
    rng = np.random.default_rng(0)
    src = rng.uniform(0, 200, (5, 2))
    angle, scale, shift = 0.4, 1.7, np.array([13.0, -7.0])
    rot = scale * np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    dst = src @ rot.T + shift
    for weights in (None, np.array([1, 1, 0.5, 0.25, 0.25])):
        m = similarity_transform(src, dst, weights)
        np.testing.assert_allclose(m[:, :2], rot, atol=1e-9)
        np.testing.assert_allclose(m[:, 2], shift, atol=1e-9)


def test_similarity_transform_never_reflects_and_rejects_degenerate_points():
    src = ARCFACE_TEMPLATE_112
    mirrored = src * np.array([-1.0, 1.0])
    m = similarity_transform(src, mirrored)
    assert np.linalg.det(m[:, :2]) > 0
    with pytest.raises(ValueError, match="degenerate"):
        similarity_transform(np.ones((5, 2)), src)
    with pytest.raises(ValueError, match="finite"):
        similarity_transform(np.full((5, 2), np.nan), src)


def test_template_is_the_arcface_template_in_the_expanded_box():
    t = template_points(112, expand=1.0)
    np.testing.assert_allclose(t, ARCFACE_TEMPLATE_112 - 0.5)
    t13 = template_points(224, expand=1.3)
    center = np.array([111.5, 111.5])
    # expanding the box by 1.3 pulls every point 1.3x closer to the centre
    np.testing.assert_allclose(t13 - center, (template_points(224, 1.0) - center) / 1.3)
    with pytest.raises(ValueError):
        template_points(4)


@pytest.mark.parametrize("size", [224, 64, 48])
def test_eyes_land_within_3_percent_of_the_template_on_every_frontal_face(face_cases, size):
    worst = 0.0
    for name, i, image, face in face_cases:
        if name in NOT_FRONTAL:
            continue
        a = align_face(image, face, output_size=size)
        assert a.image.shape == (size, size, 3) and a.image.dtype == np.uint8
        err = float(np.linalg.norm(a.landmarks[:2] - a.template[:2], axis=1).max()) / size
        worst = max(worst, err)
        assert err < 0.03, (name, i, err)
        np.testing.assert_allclose(a.to_image(a.landmarks), face.landmarks, atol=1e-3)
        np.testing.assert_allclose(a.matrix @ np.append(a.inverse[:, 2], 1.0), [0, 0], atol=1e-6)
    print(f"worst eye offset at {size}px: {100 * worst:.2f}% of the crop width")


def test_inverse_warp_reproduces_the_original_face_region(face_cases):
    """Crop at 224, warp it back with the inverse affine, compare with the original inside the face box."""
    maes = []
    for name, i, image, face in face_cases:
        a = align_face(image, face, output_size=224)
        back = warp_to_image(a.image, a, image.shape)
        covered = warp_to_image(np.ones((224, 224), np.float32), a, image.shape) > 0.999
        x1, y1, x2, y2 = (int(round(v)) for v in face.xyxy)
        region = np.zeros(image.shape[:2], bool)
        region[y1:y2, x1:x2] = True
        region &= covered
        region = cv2.erode(region.astype(np.uint8), np.ones((5, 5), np.uint8)).astype(bool)  # skip edge pixels
        assert region.sum() > 0.5 * (x2 - x1) * (y2 - y1), (name, i)
        mae = float(np.abs(back.astype(np.float32) - image.astype(np.float32))[region].mean())
        maes.append(mae)
        assert mae < 6.0, (name, i, mae)
    print(f"inverse-warp MAE inside face boxes (0-255): mean {np.mean(maes):.2f}, max {np.max(maes):.2f}")


def test_a_low_resolution_heatmap_maps_back_onto_the_right_spot(sample_images, sample_faces):
    image = sample_images["single_face.jpg"]
    face = sample_faces["single_face.jpg"][0]
    a = align_face(image, face, output_size=224)
    cam = np.zeros((7, 7), np.float32)
    mouth = a.landmarks[3:].mean(axis=0)  # crop pixels
    cam[int(mouth[1] / 32), int(mouth[0] / 32)] = 1.0
    heat = warp_to_image(cam, a, image.shape)
    assert heat.shape == image.shape[:2] and heat.dtype == np.float32
    peak = np.array(np.unravel_index(np.argmax(heat), heat.shape))[::-1]
    cell_in_image = 32 / a.scale
    assert np.linalg.norm(peak - face.landmarks[3:].mean(axis=0)) < cell_in_image


def test_small_crops_are_area_averaged_not_aliased(sample_images, sample_faces):
    """A 48-pixel crop of a big face must match the 224 crop downscaled with area averaging."""
    image = sample_images["0-f1-su-ph.jpg"]
    face = sample_faces["0-f1-su-ph.jpg"][0]
    small = align_face(image, face, output_size=48).image.astype(np.float32)
    big = align_face(image, face, output_size=224).image
    ref = cv2.resize(big, (48, 48), interpolation=cv2.INTER_AREA).astype(np.float32)
    naive = cv2.warpAffine(
        image,
        align_face(image, face, output_size=48).matrix,
        (48, 48),
        flags=cv2.INTER_CUBIC,
    ).astype(np.float32)
    err, err_naive = np.abs(small - ref).mean(), np.abs(naive - ref).mean()
    assert err < 4.0 and err < err_naive, (err, err_naive)


def test_assume_cropped_alignment_is_the_identity_at_the_same_size(sample_images):
    img = np.ascontiguousarray(sample_images["single_face.jpg"][:256, :256])
    face = create_detector("assume_cropped").detect(img)[0]
    a = align_face(img, face, output_size=256)
    assert np.abs(a.image.astype(int) - img).max() <= 1
    np.testing.assert_allclose(transform_points(face.landmarks, a.matrix), a.template, atol=1e-3)
