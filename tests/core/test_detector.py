"""Detector (images, videos, streams) on the real samples, and the tracker on synthetic box sequences."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from core.detector import BASE_COLUMNS, LANDMARK_COLUMNS, Detector, box_crop
from core.engine import InferenceEngine
from core.faces import Face, transform_points
from core.faces.align import FER2013_FRAMING_48, framing_points
from core.io import CorruptImageError, VideoLoadError, load_image
from core.tracking import Tracker, TrackerConfig


@pytest.fixture(scope="module", autouse=True)
def _restore_torch_threads():
    """Detector(threads="auto") sets one torch thread process-wide on the CPU; give other tests theirs back."""
    n = torch.get_num_threads()
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="module")
def detector() -> Detector:
    return Detector(device="cpu", backend="torch")


def test_multi_face_photo_gives_one_row_per_face(detector, samples_dir):
    df = detector.detect_image(samples_dir / "multi_face.jpg")
    assert len(df) == 5
    assert list(df.columns[: len(BASE_COLUMNS)]) == list(BASE_COLUMNS)
    assert set(detector.class_names) | set(LANDMARK_COLUMNS) | {"face_score", "detect_ms"} <= set(df.columns)
    probs = df[list(detector.class_names)].to_numpy()
    np.testing.assert_allclose(probs.sum(1), 1.0, atol=1e-5)
    assert (df["label"] == df[list(detector.class_names)].idxmax(axis=1)).all()
    np.testing.assert_allclose(df["score"], probs.max(1), atol=1e-7)
    assert df["face"].tolist() == [0, 1, 2, 3, 4] and (df["frame"] == 0).all()
    h, w = load_image(samples_dir / "multi_face.jpg").shape[:2]
    assert (df.x >= 0).all() and (df.y >= 0).all() and (df.x + df.w <= w + 1).all() and (df.y + df.h <= h + 1).all()
    # each face's landmarks lie inside its box
    for _, r in df.iterrows():
        xs, ys = r[[f"lm{i}_x" for i in range(5)]], r[[f"lm{i}_y" for i in range(5)]]
        assert ((xs >= r.x) & (xs <= r.x + r.w)).all() and ((ys >= r.y) & (ys <= r.y + r.h)).all()


def test_several_inputs_faceless_and_corrupt(detector, samples_dir, tmp_path):
    df = detector.detect_image([samples_dir / "single_face.jpg", samples_dir / "free-mountain-vector-01.jpg"])
    assert df["input"].tolist() == [str(samples_dir / "single_face.jpg")]
    empty = detector.detect_image(samples_dir / "free-mountain-vector-01.jpg")
    assert empty.empty and list(empty.columns) == detector.columns
    broken = tmp_path / "broken.jpg"
    broken.write_bytes((samples_dir / "single_face.jpg").read_bytes()[:2000])
    with pytest.raises(CorruptImageError, match="broken.jpg"):
        detector.detect_image(broken)


def test_aligned_crop_uses_the_fer2013_framing(detector, samples_dir):
    (res,) = detector.analyze_faces(samples_dir / "single_face.jpg")
    size = detector.engine.spec.input_size
    assert res.aligned.image.shape == (size, size, 3)
    target = framing_points(size, "fer2013")
    # the eyes carry the largest fit weights: they land within 1.5 px of FER2013's average eye positions
    assert np.abs(res.aligned.landmarks[:2] - target[:2]).max() < 1.5
    # and the inverse affine takes the crop's landmarks back onto the photo
    np.testing.assert_allclose(res.aligned.to_image(res.aligned.landmarks), res.face.landmarks, atol=1e-3)
    eye_dist = np.linalg.norm(FER2013_FRAMING_48[1] - FER2013_FRAMING_48[0])
    assert 16 < eye_dist < 20  # FER2013 is framed tight (the ArcFace template at expand 1.3: 11.6 px)
    template = Detector(engine=detector.engine, framing="template").analyze_faces(samples_dir / "single_face.jpg")
    crop_eye_dist = np.linalg.norm(template[0].aligned.landmarks[1] - template[0].aligned.landmarks[0])
    assert crop_eye_dist < 0.8 * np.linalg.norm(res.aligned.landmarks[1] - res.aligned.landmarks[0])


def test_assume_cropped_classifies_crops_exactly_like_the_evaluation(detector, fer_faces, softmax_by_hand):
    faces = list(fer_faces[:6])
    cropped = Detector(engine=detector.engine, face_detector="assume_cropped")
    df = cropped.detect_image(faces)
    assert len(df) == 6 and (df["face"] == 0).all()
    assert (df[["x", "y", "w", "h"]].to_numpy() == [0, 0, 48, 48]).all()
    # the evaluation's input, written out by hand (gray 48 px crops, (x / 255 - mean) / std, no resize), with the
    # Detector's default mirror TTA; and without it
    engine = detector.engine
    mean = softmax_by_hand(engine, faces, tta=True)
    np.testing.assert_allclose(df[list(cropped.class_names)].to_numpy(), mean, atol=1e-5)
    single = Detector(engine=engine, face_detector="assume_cropped", tta=None).detect_image(faces)
    np.testing.assert_allclose(single[list(cropped.class_names)].to_numpy(), softmax_by_hand(engine, faces), atol=1e-5)
    assert not np.allclose(mean, softmax_by_hand(engine, faces), atol=1e-4)  # the two checks tell TTA on from off


def test_tta_must_be_an_allowed_value(detector):
    with pytest.raises(ValueError, match=r"unknown tta 'bogus'; choose one of \[None, 'hflip'\]"):
        Detector(engine=detector.engine, tta="bogus")
    assert Detector(engine=detector.engine).tta == "hflip"


def test_box_framing_is_the_square_face_box_without_alignment(detector, samples_dir):
    rgb = load_image(samples_dir / "single_face.jpg")
    boxed = Detector(engine=detector.engine, face_detector=detector.face_detector, framing="box")
    (res,) = boxed.analyze_faces(rgb)
    size = detector.engine.spec.input_size
    (cx, cy), side = res.face.center, max(res.face.box[2:])
    # the crop's outer corners are the box made square about its centre, and landmarks only scale and shift
    corners = res.aligned.to_image(np.array([[-0.5, -0.5], [size - 0.5, size - 0.5]]))
    np.testing.assert_allclose(corners, [[cx - side / 2, cy - side / 2], [cx + side / 2, cy + side / 2]], atol=1e-6)
    k = size / side
    expected = (res.face.landmarks - [cx - side / 2, cy - side / 2]) * k - 0.5
    np.testing.assert_allclose(res.aligned.landmarks, expected, atol=1e-4)
    np.testing.assert_allclose(res.probs, detector.engine.predict([res.aligned.image], tta=boxed.tta)[0], atol=1e-6)
    # a box given by hand: the same square, whatever the detector
    face = Face((200.0, 100.0, 120.0, 160.0), 0.99, np.zeros((5, 2)))
    crop = box_crop(rgb, face, 48)
    assert crop.image.shape == (48, 48, 3)
    corners = transform_points(np.array([[-0.5, -0.5], [47.5, 47.5]]), crop.inverse)
    np.testing.assert_allclose(corners, [[180, 100], [340, 260]], atol=1e-6)


def test_preprocess_override_changes_the_input(detector, samples_dir):
    base = detector.analyze_faces(samples_dir / "single_face.jpg")[0]
    gamma = Detector(engine=detector.engine, preprocess={"gamma": True, "clahe": True})
    other = gamma.analyze_faces(samples_dir / "single_face.jpg")[0]
    x0 = detector.engine.prepare([base.aligned.image])
    x1 = detector.engine.prepare([other.aligned.image], gamma.steps)
    assert float((x0 - x1).abs().max()) > 0.1
    with pytest.raises(ValueError, match="unknown framing"):
        Detector(engine=detector.engine, framing="loose")


@pytest.mark.slow
def test_video_gives_one_face_per_frame_with_increasing_frames(detector, samples_dir):
    calls = []
    df = detector.detect_video(samples_dir / "single_face.mp4", progress=lambda d, n: calls.append((d, n)))
    assert len(df) == 72 and df["frame"].tolist() == list(range(72))
    assert df.groupby("frame").size().eq(1).all()
    assert df["track"].nunique() == 1 and (df["face"] == 0).all()
    assert df["time_s"].is_monotonic_increasing and df["time_s"].iloc[-1] == pytest.approx(71 / 30)
    assert calls[-1] == (72, 72) and [c[0] for c in calls] == list(range(1, 73))
    # the smoothed probabilities stay probabilities
    np.testing.assert_allclose(df[list(detector.class_names)].sum(axis=1), 1.0, atol=1e-5)

    skipped = detector.detect_video(samples_dir / "single_face.mp4", skip_frames=4)
    assert skipped["frame"].tolist() == list(range(0, 72, 5))
    # boxes of the same frames agree with the every-frame run (refine vs full detection: a few pixels)
    same = df.set_index("frame").loc[skipped["frame"], ["x", "y", "w", "h"]].to_numpy()
    assert np.abs(same - skipped[["x", "y", "w", "h"]].to_numpy()).max() < 0.15 * df["w"].median()


def test_video_errors_are_typed(detector, tmp_path):
    bad = tmp_path / "clip.mp4"
    bad.write_bytes(b"not a video at all" * 100)
    with pytest.raises(VideoLoadError):
        detector.detect_video(bad)
    with pytest.raises(ValueError, match="skip_frames"):
        detector.detect_video(bad, skip_frames=-1)


def test_stream_keeps_track_ids_on_a_moving_face(samples_dir):
    engine = InferenceEngine("default", device="cpu", backend="torch")
    det = Detector(engine=engine, redetect_every=3)
    photo = load_image(samples_dir / "single_face.jpg")
    canvas = np.full((photo.shape[0] + 80, photo.shape[1] + 120, 3), 127, np.uint8)
    stream = det.stream()
    ids = []
    for k in range(8):  # the photo slides 15 px right and 10 px down per frame
        frame = canvas.copy()
        frame[10 * k : 10 * k + photo.shape[0], 15 * k : 15 * k + photo.shape[1]] = photo
        result = stream.process(frame)
        assert result.frame == k and len(result.faces) == 1
        ids.append(result.faces[0].track)
    assert ids == [0] * 8


# ------------------------------------------------------------------------------------------------ tracker


def _moving(start: tuple[float, float], step: tuple[float, float], k: int, size: float = 60.0):
    return (start[0] + step[0] * k, start[1] + step[1] * k, size, size)


def test_tracker_keeps_ids_on_moving_boxes():
    tracker = Tracker(TrackerConfig(max_missed=2))
    for k in range(20):
        a = _moving((10, 10), (12, 3), k)  # moves right
        b = _moving((400, 200), (-12, 2), k)  # moves left; the two never overlap
        faces = [a, b] if k % 2 == 0 else [b, a]  # detection order changes between frames
        tracks = tracker.update(faces)
        ids = [t.id for t in tracks]
        assert ids == ([0, 1] if k % 2 == 0 else [1, 0])
    # a fast small face that no longer overlaps its last box is still followed (centre-distance fallback)
    fast = Tracker()
    assert [fast.update([_moving((0, 0), (22, 0), k, size=40)])[0].id for k in range(5)] == [0] * 5


def test_tracker_drops_tracks_after_max_missed_and_starts_new_ids():
    tracker = Tracker(TrackerConfig(max_missed=2))
    assert tracker.update([(0, 0, 50, 50)])[0].id == 0
    tracker.update([])
    tracker.update([])
    assert tracker.update([(2, 0, 50, 50)])[0].id == 0  # missed twice: still alive
    for _ in range(3):
        tracker.update([])
    assert tracker.update([(2, 0, 50, 50)])[0].id == 1  # missed three times: gone, a new id
    with pytest.raises(ValueError, match="increase"):
        tracker.update([], frame=3)


def test_smoothing_reduces_frame_to_frame_jitter():
    rng = np.random.default_rng(0)
    truth = np.array([0.05, 0.05, 0.05, 0.6, 0.1, 0.05, 0.1])
    raw = rng.dirichlet(truth * 20, size=60)  # noisy per-frame probabilities around a steady expression
    tracker = Tracker(TrackerConfig(smoothing=0.7))
    smooth = np.stack([tracker.update([_moving((50, 50), (1, 0), k)], raw[k : k + 1])[0].probs for k in range(60)])
    jitter = lambda p: np.abs(np.diff(p, axis=0)).sum(1).mean()  # noqa: E731
    assert jitter(smooth) < 0.5 * jitter(raw)
    np.testing.assert_allclose(smooth.sum(1), 1.0, atol=1e-9)
    assert np.abs(smooth[20:].mean(0) - truth).sum() < np.abs(raw[20:] - truth).sum(1).mean()
    # gaps weaken the memory: after a 10-frame gap the new frame dominates
    t2 = Tracker(TrackerConfig(smoothing=0.7))
    t2.update([(0, 0, 50, 50)], np.array([[1.0, 0, 0, 0, 0, 0, 0]]), frame=0)
    p = t2.update([(0, 0, 50, 50)], np.array([[0, 1.0, 0, 0, 0, 0, 0]]), frame=10)[0].probs
    assert p[1] > 0.97


def test_detector_tables_are_dataframes(detector, samples_dir):
    rgb = load_image(samples_dir / "single_face.jpg")
    df = detector.detect_image(rgb)
    assert isinstance(df, pd.DataFrame) and df["input"].iloc[0].startswith("<ndarray")
    assert df["frame"].dtype == np.int64 and len(df) == 1 and list(df.columns[:9]) == list(BASE_COLUMNS)
    probs = df[list(detector.class_names)].to_numpy()
    np.testing.assert_allclose(probs.sum(1), 1.0, atol=1e-5)  # one probability column per class
    row = df.iloc[0]  # label and score are the argmax column and its value; the box lies in the photo
    assert row["label"] == detector.class_names[int(probs[0].argmax())] and row["score"] == pytest.approx(probs.max())
    assert 0 <= row["x"] and row["x"] + row["w"] <= rgb.shape[1] + 1 and row["y"] + row["h"] <= rgb.shape[0] + 1
    assert df["frame"].dtype == np.int64


def test_every_row_names_the_model_and_the_sha256_of_its_weights(detector, samples_dir):
    import hashlib

    from core.detector import PROVENANCE_COLUMNS

    expected = hashlib.sha256(detector.engine.weights_path.read_bytes()).hexdigest()
    photo = detector.detect_image(samples_dir / "single_face.jpg")
    video = detector.detect_video(samples_dir / "single_face.mp4", skip_frames=9, max_frames=3)
    for df in (photo, video):
        assert set(PROVENANCE_COLUMNS) <= set(df.columns)
        assert (df["model"] == "default").all() and (df["weights_sha256"] == expected).all()
    np.testing.assert_allclose(video["time_s"], video["frame"] / 30.0, rtol=1e-3)  # seconds, not frames
    random = Detector(engine=InferenceEngine("default", weights=None, device="cpu"))
    assert random.provenance == {"model": "default", "weights_sha256": ""}
