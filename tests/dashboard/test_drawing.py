"""Face tags on photos: never overlapping, numbered left to right; the model's own input shown as pixels."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest
import torch

from dashboard import drawing


def _disjoint(a, b) -> bool:
    """Independent of drawing._intersects: two half-open pixel rectangles share no pixel."""
    ax, ay, aw, ah = a
    bx, by, bw, bh = b
    pa = {(x, y) for x in range(ax, ax + aw) for y in range(ay, ay + ah)}
    return not any((x, y) in pa for x in range(bx, bx + bw) for y in range(by, by + bh))


@pytest.mark.parametrize("seed", range(6))
def test_tags_of_crowded_faces_never_intersect_and_stay_inside(seed) -> None:
    rng = np.random.default_rng(seed)
    h, w = 240, 320
    boxes = []  # faces shoulder to shoulder, some overlapping, like a group photo
    for _ in range(7):
        x, y = int(rng.integers(0, 260)), int(rng.integers(0, 180))
        boxes.append((x, y, int(rng.integers(20, 60)), int(rng.integers(20, 60))))
    sizes = [(int(rng.integers(40, 90)), 14) for _ in boxes]
    tags = drawing.place_labels(boxes, sizes, (h, w))
    assert [t[2:] for t in tags] == sizes
    for t in tags:
        assert 0 <= t[0] and t[0] + t[2] <= w and 0 <= t[1] and t[1] + t[3] <= h
    for a, b in itertools.combinations(tags, 2):
        assert _disjoint(a, b), (a, b)


def test_a_lone_face_gets_its_tag_just_above_or_inside_the_top() -> None:
    assert drawing.place_labels([(50, 40, 30, 30)], [(40, 12)], (200, 200)) == [(50, 28, 40, 12)]
    assert drawing.place_labels([(50, 0, 30, 30)], [(40, 12)], (200, 200)) == [(50, 0, 40, 12)]


def test_drawn_tags_of_two_faces_side_by_side_do_not_cover_each_other() -> None:
    """Two faces 10 px apart whose long tags would collide above them: both tags stay fully readable."""
    image = np.zeros((200, 300, 3), np.uint8)
    faces = [
        drawing.BoxLabel((40, 80, 40, 40), 1, "happy", 0.9),
        drawing.BoxLabel((90, 80, 40, 40), 2, "surprise", 0.8),
    ]
    out = drawing.draw_faces(image, faces)
    for k, face in enumerate(faces):
        color = np.array(drawing.rgb_of(face.label))
        alone = (drawing.draw_faces(image, [face]) == color).all(axis=2).sum()
        together = (out == color).all(axis=2).sum()
        assert together >= 0.97 * alone, f"tag {k + 1} lost {alone - together} of its {alone} pixels"


@pytest.mark.slow
def test_multi_face_photo_is_numbered_left_to_right_and_shows_the_model_input(samples_dir: Path) -> None:
    from core.detector import Detector
    from core.io import load_image
    from dashboard.analysis import analyze_rgb

    det = Detector(device="cpu", backend="torch")
    rgb = load_image(samples_dir / "multi_face.jpg")
    result = analyze_rgb(det, rgb, "multi_face.jpg")
    xs = [r.face.box[0] for r in result.faces]
    assert len(xs) == 5 and xs == sorted(xs)
    assert result.table["face"].tolist() == [1, 2, 3, 4, 5] and result.table["x"].tolist() == xs
    spec = det.engine.spec
    for r, shown in zip(result.faces, result.model_inputs, strict=True):
        assert shown.shape == (spec.input_size, spec.input_size) and shown.dtype == np.uint8
        fed = det.engine.prepare([r.aligned.image], det.steps)[0]  # what the network is given
        assert torch.allclose(spec.normalize(torch.from_numpy(shown)[None, None].float() / 255)[0], fed, atol=1e-5)
    assert (result.table["model"] == "default").all() and result.table["weights_sha256"].str.len().eq(64).all()


@pytest.mark.parametrize("label", ["neutral", "happy", "sad", ""])
def test_a_box_stays_visible_on_a_background_of_its_own_colour(label) -> None:
    """Every row of the box's left edge differs clearly from a background painted in the box's own colour."""
    color = drawing.rgb_of(label) if label else (255, 255, 255)
    image = np.empty((120, 160, 3), np.uint8)
    image[:] = color
    out = drawing.draw_faces(image, [drawing.BoxLabel((50, 40, 40, 50), 1, label, 0.5)])
    diff = np.abs(out.astype(int) - image.astype(int)).sum(axis=2)
    edge = diff[41:89, 47:54]  # rows inside the box, columns around its left side
    assert (edge.max(axis=1) > 150).all()
