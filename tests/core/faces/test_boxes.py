"""Box utilities against hand-computed overlaps and a brute-force greedy NMS."""

from __future__ import annotations

import numpy as np

from core.faces.boxes import iou_xywh, nms, nms_min


def test_iou_xywh_by_hand():
    iou = iou_xywh(np.array([[0, 0, 10, 10], [100, 100, 5, 5]]), np.array([[5, 0, 10, 10], [0, 0, 10, 10]]))
    np.testing.assert_allclose(iou, [[50 / 150, 1.0], [0.0, 0.0]])
    assert iou_xywh(np.array([[0, 0, 0, 0]]), np.array([[0, 0, 0, 0]]))[0, 0] == 0.0  # empty boxes: 0, not NaN


def _greedy(boxes, scores, thr, overlap):
    order, keep = list(np.argsort(-scores, kind="stable")), []
    while order:
        i = order.pop(0)
        keep.append(i)
        order = [j for j in order if overlap(boxes[i], boxes[j]) <= thr]
    return keep


def _iou(a, b):
    w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = w * h
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


def _min_overlap(a, b):
    w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]) + 1)
    h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]) + 1)
    return w * h / min((a[2] - a[0] + 1) * (a[3] - a[1] + 1), (b[2] - b[0] + 1) * (b[3] - b[1] + 1))


def test_nms_matches_a_brute_force_greedy_suppression():
    rng = np.random.default_rng(0)
    xy = rng.uniform(0, 200, (60, 2))
    boxes = np.concatenate([xy, xy + rng.uniform(10, 60, (60, 2))], 1).astype(np.float32)
    scores = rng.permutation(60).astype(np.float32) / 60  # distinct, so the order is unambiguous
    for thr in (0.3, 0.5, 0.7):
        assert nms(boxes, scores, thr).tolist() == _greedy(boxes, scores, thr, _iou)
        assert nms_min(boxes, scores, thr).tolist() == _greedy(boxes, scores, thr, _min_overlap)
    assert nms(np.zeros((0, 4), np.float32), np.zeros(0, np.float32), 0.5).shape == (0,)


def test_min_mode_suppresses_a_box_inside_a_bigger_one():
    boxes = np.array([[0, 0, 99, 99], [10, 10, 29, 29]], np.float32)  # IoU 0.04, but fully contained
    scores = np.array([0.9, 0.8], np.float32)
    assert nms(boxes, scores, 0.7).tolist() == [0, 1]
    assert nms_min(boxes, scores, 0.7).tolist() == [0]
