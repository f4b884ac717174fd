"""Detector registry and backends on the real samples (photos, videos), plus the video tracker."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest
import torch
from face_samples import EXPECTED_FACES, NOT_FRONTAL, letterbox

from core.faces import (
    DetectorUnavailableError,
    Face,
    FaceDetector,
    FaceTracker,
    create_detector,
    detect_and_align,
    list_detectors,
)
from core.faces import retinaface as rf
from core.io import iter_video_frames


def test_registry_lists_backends_and_rejects_unknown_names():
    names = list_detectors()
    assert {"default", "blazeface", "mtcnn", "mtcnn_fast", "retinaface", "assume_cropped"} <= set(names)
    with pytest.raises(ValueError, match=r"unknown detector 'nope'; choose one of \[.*'default'"):
        create_detector("nope")
    with pytest.raises(ValueError, match="unknown BlazeFace option"):
        create_detector("default", min_face=3)
    with pytest.raises(ValueError, match="unknown MTCNN option"):
        create_detector("mtcnn_fast", min_face_px=3)
    with pytest.raises(ValueError, match="min_face"):
        create_detector("mtcnn_fast", min_face=5)


def test_default_is_blazeface_and_falls_back_to_mtcnn_with_a_warning(monkeypatch, caplog):
    from core.faces import blazeface as bf
    from core.faces import litert
    from core.faces.mtcnn import MTCNNDetector

    assert isinstance(create_detector("default"), bf.BlazeFaceDetector)
    real = litert.importlib.util.find_spec
    monkeypatch.setattr(litert.importlib.util, "find_spec", lambda n: None if n == "ai_edge_litert" else real(n))
    with caplog.at_level("WARNING", logger="core.faces.blazeface"):
        det = create_detector("default")
    assert isinstance(det, MTCNNDetector) and "BlazeFace unavailable" in caplog.text
    with pytest.raises(DetectorUnavailableError, match="ai-edge-litert"):
        create_detector("blazeface")


@pytest.mark.parametrize("name", ["default", "blazeface", "mtcnn_fast", "mtcnn", "assume_cropped"])
def test_every_offline_backend_speaks_the_protocol(name, sample_images):
    det = create_detector(name)
    assert isinstance(det, FaceDetector)
    faces = det.detect(sample_images["single_face.jpg"])
    assert len(faces) == 1
    face = faces[0]
    assert face.landmarks.shape == (5, 2) and face.landmarks.dtype == np.float32
    assert 0.0 <= face.score <= 1.0
    with pytest.raises(TypeError, match="uint8"):
        det.detect(sample_images["single_face.jpg"].astype(np.float32))
    with pytest.raises(ValueError, match=r"\(H, W, 3\)"):
        det.detect(np.zeros((10, 10), np.uint8))


@pytest.mark.parametrize("name", list(EXPECTED_FACES))
def test_default_detector_counts_faces_on_every_sample(name, sample_faces):
    assert len(sample_faces[name]) == EXPECTED_FACES[name]


def test_default_detector_faces_are_plausible(face_cases):
    for name, i, image, face in face_cases:
        x, y, w, h = face.box
        assert 0 <= x and 0 <= y and x + w <= image.shape[1] + 1 and y + h <= image.shape[0] + 1, (name, i)
        assert 0.8 < h / w < 1.8, (name, i, face.box)  # face boxes are a bit taller than wide
        lm = face.landmarks
        assert (lm[:, 0] >= x - 0.1 * w).all() and (lm[:, 0] <= x + 1.1 * w).all(), (name, i)
        assert (lm[:, 1] >= y).all() and (lm[:, 1] <= y + h).all(), (name, i)
        assert lm[:2, 1].max() < lm[2, 1] < lm[3:, 1].min(), (name, i)  # eyes above nose above mouth
        if name not in NOT_FRONTAL:
            assert lm[0, 0] < lm[1, 0] and lm[3, 0] < lm[4, 0], (name, i)  # viewer's left first


def test_multi_face_finds_the_sunglasses_face_with_distinct_boxes(sample_faces):
    faces = sample_faces["multi_face.jpg"]
    centers = np.array([f.center for f in faces])
    dists = np.linalg.norm(centers[:, None] - centers[None], axis=2) + np.eye(len(faces)) * 1e9
    assert dists.min() > 50  # five different people, not duplicates of one
    assert min(f.score for f in faces) > 0.9


WEBCAM_CASES = ["multi_face.jpg", "single_face.jpg", "45-m7-di-ph.jpg", "free-mountain-vector-01.jpg"]


@pytest.mark.parametrize("name", WEBCAM_CASES)
def test_default_detector_on_webcam_sized_frames(name, sample_images, detector):
    """The samples letterboxed into 640x480 (what the webcam path and the benchmark see)."""
    assert len(detector.detect(letterbox(sample_images[name]))) == EXPECTED_FACES[name]


@pytest.mark.slow
@pytest.mark.parametrize("name", ["mtcnn", "mtcnn_fast"])
def test_mtcnn_backends_agree_on_the_samples(name, sample_images):
    det = create_detector(name)
    for sample, expected in EXPECTED_FACES.items():
        assert len(det.detect(sample_images[sample])) == expected, (name, sample)


@pytest.mark.slow
def test_no_face_video_has_no_face_in_any_frame(samples_dir: Path, detector):
    counts = [len(detector.detect(rgb)) for _, rgb in iter_video_frames(samples_dir / "no_face.mp4")]
    assert len(counts) >= 90 and sum(counts) == 0


@pytest.mark.slow
def test_single_face_video_has_one_face_in_every_frame(samples_dir: Path, detector):
    counts = [len(detector.detect(rgb)) for _, rgb in iter_video_frames(samples_dir / "single_face.mp4")]
    assert len(counts) == 72 and all(c == 1 for c in counts), counts


def test_tracker_follows_the_face_with_few_full_detections(samples_dir: Path):
    tracker = FaceTracker(redetect_every=10)
    frames = list(iter_video_frames(samples_dir / "single_face.mp4", max_frames=40))
    counts = [len(tracker.update(rgb)) for _, rgb in frames]
    assert all(c == 1 for c in counts), counts
    assert tracker.full_detections == 4  # frames 0, 10, 20, 30; the 36 others were O-Net refinements
    det = create_detector("default")
    tracked, detected = tracker.update(frames[-1][1])[0], det.detect(frames[-1][1])[0]
    assert np.abs(tracked.landmarks - detected.landmarks).max() < 0.05 * detected.box[2]


def test_tracker_drops_a_face_that_left_and_redetects(sample_images):
    tracker = FaceTracker(redetect_every=100)
    assert len(tracker.update(sample_images["single_face.jpg"])) == 1
    assert tracker.update(sample_images["free-mountain-vector-01.jpg"]) == []
    assert tracker.full_detections == 2  # the refinement failed, so it fell back to a full detection


def test_detector_is_thread_safe_and_deterministic(sample_images):
    det = create_detector("default")
    img = letterbox(sample_images["multi_face.jpg"])
    ref = [f.box for f in det.detect(img)]
    results, errors = [], []

    def work():
        try:
            results.append([f.box for f in det.detect(img)])
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and len(results) == 4
    for boxes in results:
        np.testing.assert_allclose(boxes, ref, atol=1e-3)


def test_assume_cropped_returns_the_whole_image():
    img = np.full((48, 48, 3), 90, np.uint8)
    (face,) = create_detector("assume_cropped").detect(img)
    assert face.box == (0.0, 0.0, 48.0, 48.0) and face.score == 1.0
    assert face.landmarks[0, 0] < face.landmarks[1, 0] and face.landmarks[0, 1] < face.landmarks[3, 1]


def test_detect_and_align_gives_the_largest_face_or_none(sample_images):
    crop = detect_and_align(sample_images["multi_face.jpg"], 64)
    assert crop.shape == (64, 64, 3) and crop.dtype == np.uint8
    assert detect_and_align(sample_images["free-mountain-vector-01.jpg"], 64) is None


def test_face_validates_and_converts():
    face = Face((1, 2, 3, 4), 0.5, np.arange(10).reshape(5, 2))
    assert face.box == (1.0, 2.0, 3.0, 4.0) and face.xyxy == (1.0, 2.0, 4.0, 6.0)
    assert not face.landmarks.flags.writeable
    with pytest.raises(ValueError, match="w, h > 0"):
        Face((0, 0, 0, 4), 0.5, np.zeros((5, 2)))


# --------------------------------------------------------------------------------------------------------------
# RetinaFace: optional, local weights only


def test_retinaface_without_weights_names_the_file_and_where_to_put_it(monkeypatch, tmp_path):
    monkeypatch.delenv(rf.WEIGHTS_ENV, raising=False)
    monkeypatch.setenv("DEEPFACE_HOME", str(tmp_path))  # an empty cache, whatever this machine has
    with pytest.raises(DetectorUnavailableError) as err:
        create_detector("retinaface")
    msg = str(err.value)
    assert "retinaface.pth" in msg and rf.WEIGHTS_ENV in msg
    assert str(tmp_path / ".deepface" / "weights" / "retinaface.pth") in msg
    monkeypatch.setenv(rf.WEIGHTS_ENV, str(tmp_path / "missing.pth"))
    with pytest.raises(DetectorUnavailableError, match="missing.pth"):
        create_detector("retinaface")
    with pytest.raises(DetectorUnavailableError, match="not found"):
        create_detector("retinaface", weights=tmp_path / "nope.pth")


def _retinaface_package_available() -> bool:
    try:
        rf._network_class()
    except DetectorUnavailableError:
        return False
    return True


@pytest.mark.slow
def test_retinaface_runs_end_to_end_from_a_local_weights_file(tmp_path, sample_images):
    """Random weights (the real file is not available offline): loading through the safe loader, decoding back
    to photo pixels, score order and NMS, checked for what they guarantee whatever the weights."""
    if not _retinaface_package_available():
        pytest.skip("retina-face is optional and not installed (pip install --no-deps retina-face==0.0.19)")
    net = rf._network_class()()
    path = tmp_path / "retinaface.pth"
    torch.save(net.state_dict(), path)
    det = create_detector("retinaface", weights=path, threshold=0.3, target_size=160, max_size=160, nms_threshold=0.4)
    image = sample_images["single_face.jpg"]
    faces = det.detect(image)
    assert len(faces) > 1  # random weights score many anchors above 0.3; NMS leaves several, not one or none
    scores = [f.score for f in faces]
    assert scores == sorted(scores, reverse=True) and 0.3 <= scores[-1] and scores[0] <= 1.0
    h, w = image.shape[:2]
    for f in faces:  # boxes decoded at 160 px come back in the photo's pixels, clipped to it
        x, y, bw, bh = f.box
        assert f.landmarks.shape == (5, 2) and bw >= 1 and bh >= 1
        assert -1e-3 <= x and -1e-3 <= y and x + bw <= w + 1e-3 and y + bh <= h + 1e-3
    for i, a in enumerate(faces):  # NMS: no two kept boxes overlap more than the threshold (IoU by hand)
        for b in faces[i + 1 :]:
            ix = max(0.0, min(a.box[0] + a.box[2], b.box[0] + b.box[2]) - max(a.box[0], b.box[0]))
            iy = max(0.0, min(a.box[1] + a.box[3], b.box[1] + b.box[3]) - max(a.box[1], b.box[1]))
            union = a.box[2] * a.box[3] + b.box[2] * b.box[3] - ix * iy
            assert ix * iy / union <= 0.4 + 1e-6
    bad = tmp_path / "bad.pth"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="bad.pth"):
        create_detector("retinaface", weights=bad).detect(sample_images["single_face.jpg"])


@pytest.mark.parametrize("name,shape", [("pnet", (1, 3, 37, 53)), ("rnet", (7, 3, 24, 24)), ("onet", (5, 3, 48, 48))])
def test_hand_written_onnx_graphs_match_facenet_pytorchs_modules(name, shape):
    from facenet_pytorch.models import mtcnn as reference

    from core.faces.mtcnn_nets import load_state_dicts, sessions

    net = {"pnet": reference.PNet, "rnet": reference.RNet, "onet": reference.ONet}[name](pretrained=False)
    net.load_state_dict(load_state_dicts()[name])
    x = np.random.default_rng(0).uniform(-1, 1, shape).astype(np.float32)
    with torch.inference_mode():
        ref = [t.numpy() for t in net.eval()(torch.from_numpy(x))]
    got = sessions()[name].run(None, {"x": x})  # same output order as the modules: reg, [points,] prob
    assert len(got) == len(ref)
    for g, r in zip(got, ref, strict=True):
        np.testing.assert_allclose(g, r, atol=2e-5)


def test_detector_available_reports_missing_retinaface_weights_in_one_line(monkeypatch, tmp_path):
    from core.faces import detector_available

    monkeypatch.delenv(rf.WEIGHTS_ENV, raising=False)
    monkeypatch.setenv("DEEPFACE_HOME", str(tmp_path))
    ok, reason = detector_available("retinaface")
    assert not ok and "\n" not in reason
    assert rf.WEIGHTS_ENV in reason and str(tmp_path / ".deepface" / "weights" / "retinaface.pth") in reason
    for name in ("default", "blazeface", "mtcnn", "mtcnn_fast", "assume_cropped"):
        assert detector_available(name) == (True, "")
    with pytest.raises(ValueError, match="unknown detector"):
        detector_available("nope")


def test_detector_available_once_the_weights_file_is_there(monkeypatch, tmp_path):
    from core.faces import detector_available

    if not _retinaface_package_available():
        pytest.skip("the retina-face package is not installed")
    weights = tmp_path / "retinaface.pth"
    weights.write_bytes(b"not read by the availability check")
    monkeypatch.setenv(rf.WEIGHTS_ENV, str(weights))
    assert detector_available("retinaface") == (True, "")
