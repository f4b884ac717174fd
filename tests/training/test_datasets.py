"""Loaders reproduce the counts of ../shared/datasets/README.md; folders and AffectNet CSVs load as documented."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest
import torch

from core.labels import EMOTIONS_7, EMOTIONS_8
from training import datasets as D
from training.config import DataConfig

# README: "Counts in this file (FER2013 labels)", columns Angry..Neutral
FER_COUNTS = {
    "Training": [3969, 435, 4078, 7186, 4797, 3161, 4932],
    "PublicTest": [466, 56, 496, 891, 652, 414, 604],
    "PrivateTest": [489, 55, 528, 876, 587, 414, 624],
}
# README: FERPlus majority table, file column order neutral, happiness, surprise, sadness, anger, disgust, fear,
# contempt (then unknown, NF, which the 8-class protocol drops)
FERPLUS_FILE_ORDER = ("neutral", "happy", "surprise", "sad", "angry", "disgust", "fear", "contempt")
FERPLUS_COUNTS = {
    "Training": [10308, 7528, 3562, 3514, 2466, 191, 652, 165],
    "PublicTest": [1335, 899, 456, 412, 319, 34, 74, 24],
    "PrivateTest": [1261, 928, 444, 444, 325, 23, 93, 27],
}
FERPLUS_STRICT_TOTALS = {"Training": 25057, "PublicTest": 3199, "PrivateTest": 3152}


@pytest.fixture(scope="module")
def data_cfg(shared_datasets: Path) -> DataConfig:
    return DataConfig(root=str(shared_datasets))


@pytest.mark.parametrize("split", ["Training", "PublicTest", "PrivateTest"])
def test_fer2013_counts_match_readme(data_cfg, split):
    fs = D.load_split(data_cfg, split)
    assert fs.class_counts().tolist() == FER_COUNTS[split]
    assert fs.images.shape == (sum(FER_COUNTS[split]), 48, 48) and fs.images.dtype == np.uint8
    assert fs.class_names == EMOTIONS_7 and fs.split == D.canonical_split(split)


def test_split_aliases_and_ids_point_back_to_the_file(data_cfg):
    val = D.load_split(data_cfg, "val")
    pub = D.load_split(data_cfg, "PublicTest")
    assert np.array_equal(val.ids, pub.ids) and np.array_equal(val.images, pub.images)
    raw = D.read_fer2013(D.fer2013_path(data_cfg.root), data_cfg.cache_dir)
    k = np.array([0, 17, len(val) - 1])
    assert np.array_equal(raw["images"][val.ids[k]], val.images[k])
    assert np.array_equal(raw["emotion"][val.ids[k]], val.labels[k])
    with pytest.raises(D.DatasetError, match="unknown split"):
        D.load_split(data_cfg, "holdout")


def _fake_fer_csv(path: Path, n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    pixels = rng.integers(0, 256, (n, 48 * 48), dtype=np.uint8)
    usage = np.array(["Training", "PublicTest", "PrivateTest"])[np.arange(n) % 3]
    text = [" ".join(map(str, p)) for p in pixels]
    frame = pd.DataFrame({"emotion": np.arange(n) % 7, "pixels": text, "Usage": usage})
    frame.to_csv(path, index=False, compression="gzip")
    return pixels.reshape(n, 48, 48)


def test_decoded_cache_is_keyed_by_file_and_reused(tmp_path, monkeypatch):
    """The parse is exact; the cache holds .npy files keyed by size+mtime; a second read skips the csv."""
    src = tmp_path / "fer2013.csv.gz"
    pixels = _fake_fer_csv(src, 30)
    cache = tmp_path / "cache"
    first = D.read_fer2013(src, cache)
    assert np.array_equal(first["images"], pixels) and first["usage"].tolist() == [0, 1, 2] * 10
    files = sorted(p.name for p in cache.iterdir())
    key = f"{src.stat().st_size}-{src.stat().st_mtime_ns}"
    assert files == [f"fer2013-{key}.{k}.npy" for k in ("emotion", "images", "usage")]
    with monkeypatch.context() as m:
        m.setattr(D.pd, "read_csv", lambda *a, **k: pytest.fail("csv parsed despite the cache"))
        second = D.read_fer2013(src, cache)
    assert all(np.array_equal(first[k], second[k]) for k in first)
    _fake_fer_csv(src, 12, seed=1)  # a new file version gets its own cache entry
    assert len(D.read_fer2013(src, cache)["images"]) == 12 and len(list(cache.iterdir())) == 6


def test_malformed_fer_csv_is_a_clear_error(tmp_path):
    src = tmp_path / "bad.csv"
    src.write_text("emotion,pixels,Usage\n0,1 2 3,Training\n")
    with pytest.raises(D.DatasetError, match="3 pixel values for 1 rows"):
        D.read_fer2013(src, tmp_path / "c")


@pytest.mark.parametrize("split", ["Training", "PublicTest", "PrivateTest"])
def test_ferplus_majority_counts_match_readme(shared_datasets, split):
    fs = D.load_split(DataConfig(dataset="ferplus", num_classes=8, root=str(shared_datasets)), split)
    counts = dict(zip(fs.class_names, fs.class_counts().tolist(), strict=True))
    assert [counts[n] for n in FERPLUS_FILE_ORDER] == FERPLUS_COUNTS[split]
    assert fs.class_names == EMOTIONS_8 and len(fs) == sum(FERPLUS_COUNTS[split])
    strict = D.load_split(
        DataConfig(dataset="ferplus", num_classes=8, ferplus_rule="strict", root=str(shared_datasets)), split
    )
    assert len(strict) == FERPLUS_STRICT_TOTALS[split]


def test_ferplus_seven_class_and_soft_targets(shared_datasets):
    root = str(shared_datasets)
    hard8 = D.load_split(DataConfig(dataset="ferplus", num_classes=8, root=root), "train")
    soft7 = D.load_split(DataConfig(dataset="ferplus", num_classes=7, label_mode="soft", root=root), "train")
    hard7 = D.load_split(DataConfig(dataset="ferplus", num_classes=7, root=root), "train")
    # 7 classes: exactly the contempt-majority rows are gone, same rows for soft and hard labels
    assert len(hard7) == len(hard8) - FERPLUS_COUNTS["Training"][7]
    assert np.array_equal(soft7.ids, hard7.ids) and np.array_equal(soft7.labels, hard7.labels)
    assert soft7.targets.shape == (len(soft7), 7) and soft7.targets.dtype == np.float32
    assert np.allclose(soft7.targets.sum(1), 1.0, atol=1e-6)
    rows = np.arange(len(soft7))
    assert np.allclose(soft7.targets[rows, soft7.labels], soft7.targets.max(1))  # the majority has the most mass
    # the join: FERPlus row k is FER2013 row k, so pixels are FER2013's
    fer_train = D.load_split(DataConfig(root=root), "train")
    common, a, b = np.intersect1d(hard8.ids, fer_train.ids, return_indices=True)
    assert len(common) == len(hard8) and np.array_equal(hard8.images[a], fer_train.images[b])


def test_limit_is_stratified_and_deterministic(data_cfg):
    full = D.load_split(data_cfg, "train")
    a = D.load_split(dataclasses.replace(data_cfg, limit=100), "train")
    b = D.load_split(dataclasses.replace(data_cfg, limit=100), "train")
    assert len(a) == 100 and np.array_equal(a.ids, b.ids)
    assert (a.class_counts() >= 1).all()  # disgust (1.5 %) still present
    share = full.class_counts() / len(full) * 100
    assert np.all(np.abs(a.class_counts() - share) <= 1.5)
    first = D.load_split(dataclasses.replace(data_cfg, limit=10, limit_mode="first"), "train")
    assert first.ids.tolist() == full.ids[:10].tolist()


def _write_faces(folder: Path, n: int, seed: int, size=(60, 50)) -> None:
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        cv2.imwrite(str(folder / f"img{i}.png"), rng.integers(0, 255, (*size, 3), dtype=np.uint8))


def test_image_folder_with_split_folders(tmp_path):
    root = tmp_path / "raf"
    for split, n in (("train", 3), ("test", 2)):
        _write_faces(root / split / "Happy", n, 1)
        _write_faces(root / split / "anger", n, 2)
        _write_faces(root / split / "SU", n, 3)  # KDEF code for surprise
        _write_faces(root / split / "unknown", 1, 4)  # not an emotion: ignored
    (root / "train" / "Happy" / "broken.jpg").write_bytes(b"not an image")  # skipped, with a warning
    cfg = DataConfig(dataset=f"folder:{root}", image_size=32, cache_dir=str(tmp_path / "cache"))
    train = D.load_split(cfg, "train")
    assert train.images.shape == (9, 32, 32, 3) and train.images.dtype == np.uint8
    counts = dict(zip(train.class_names, train.class_counts().tolist(), strict=True))
    assert (counts["happy"], counts["angry"], counts["surprise"], counts["neutral"]) == (3, 3, 3, 0)
    assert all(Path(p).is_file() for p in train.paths) and len(train.paths) == 9
    assert len(D.load_split(cfg, "PrivateTest")) == 6
    with pytest.raises(D.DatasetError, match="not 'val'"):
        D.load_split(cfg, "val")


def test_image_folder_without_split_folders_is_hashed_and_cached(tmp_path, monkeypatch):
    root = tmp_path / "jaffe"
    for name in ("HAP", "NEU", "sad"):
        _write_faces(root / name, 20, hash(name) % 100)
    cfg = DataConfig(dataset=f"folder:{root}", image_size=24, cache_dir=str(tmp_path / "cache"))
    parts = {s: D.load_split(cfg, s) for s in ("train", "val", "test")}
    assert sum(len(p) for p in parts.values()) == len(D.load_split(cfg, "all")) == 60
    assert len(parts["train"]) > len(parts["val"]) and len(parts["train"]) > len(parts["test"])
    assert not set(parts["train"].paths) & set(parts["test"].paths)
    monkeypatch.setattr(D, "_decode_folder", lambda *a, **k: pytest.fail("decoded again despite the cache"))
    again = D.load_split(cfg, "train")
    assert np.array_equal(again.images, parts["train"].images)


def test_affectnet_csv(tmp_path):
    root = tmp_path / "affectnet"
    img_dir = root / "Manually_Annotated_Images" / "1"
    img_dir.mkdir(parents=True)
    rows = []
    rng = np.random.default_rng(0)
    for i in range(440):
        cv2.imwrite(str(img_dir / f"{i}.jpg"), rng.integers(0, 255, (80, 80, 3), dtype=np.uint8))
        rows.append(
            {
                "subDirectory_filePath": f"1/{i}.jpg",
                "face_x": 10,
                "face_y": 10,
                "face_width": 60,
                "face_height": 60,
                "facial_landmarks": "",
                "expression": i % 11,
                "valence": 0,
                "arousal": 0,
            }
        )
    pd.DataFrame(rows).to_csv(root / "training.csv", index=False)
    pd.DataFrame(rows[:22]).to_csv(root / "validation.csv", index=False)
    cfg = DataConfig(dataset=f"affectnet:{root}", num_classes=8, image_size=16, cache_dir=str(tmp_path / "c"))
    test = D.load_split(cfg, "test")
    assert len(test) == 16  # 22 rows, codes 8, 9, 10 (rows 8, 9, 10, 19, 20, 21) dropped
    assert (
        test.labels.tolist()
        == [
            EMOTIONS_8.index(n) for n in ("neutral", "happy", "sad", "surprise", "fear", "disgust", "angry", "contempt")
        ]
        * 2
    )
    train, val = D.load_split(cfg, "train"), D.load_split(cfg, "val")
    assert len(train) + len(val) == 320  # 440 rows, 8 of every 11 codes are emotions
    assert 4 <= len(val) <= 40 and not set(train.ids) & set(val.ids)  # ~5 % held out for model selection
    seven = D.load_split(
        DataConfig(dataset=f"affectnet:{root}", num_classes=7, image_size=16, cache_dir=str(tmp_path / "c")), "test"
    )
    assert len(seven) == 14 and "contempt" not in seven.class_names


def test_unknown_dataset_lists_known_ones():
    with pytest.raises(D.DatasetError, match=r"unknown dataset 'lfw'; choose one of .*affectnet:PATH.*fer2013"):
        D.parse_dataset("lfw")


# --------------------------------------------------------------------------- model-sized tensors (training.loader)


def test_prepare_tensor_resizes_preprocesses_and_caches_on_disk(shared_datasets, tmp_path, monkeypatch):
    from core.models.base import ModelSpec
    from training import loader as L

    fs = D.load_split(DataConfig(root=str(shared_datasets), limit=40), "val")
    spec = ModelSpec(name="t", input_size=96, in_chans=3, preprocess=("clahe",))
    monkeypatch.setattr(L, "DISK_CACHE_MIN_PIXELS", 0)
    x = L.prepare_tensor(fs, spec, cache_dir=str(tmp_path))
    assert x.shape == (40, 1, 96, 96) and x.dtype == torch.uint8  # gray stays one channel until normalisation
    plain = L.prepare_tensor(fs, dataclasses.replace(spec, preprocess=()), cache_dir=str(tmp_path))
    clahe = cv2.createCLAHE(clipLimit=2.0, tileGridSize=(8, 8))  # OpenCV directly, at model size
    assert np.array_equal(x[3, 0].numpy(), clahe.apply(np.ascontiguousarray(plain[3, 0].numpy())))
    assert len(list(tmp_path.glob("tensor-*.npy"))) == 2
    fs.cache.clear()
    import core.models.base as B

    monkeypatch.setattr(B.F, "interpolate", lambda *a, **k: pytest.fail("resized again despite the disk cache"))
    assert torch.equal(L.prepare_tensor(fs, spec, cache_dir=str(tmp_path)), x)
    batch = spec.normalize(x[:2].float() / 255)
    assert batch.shape == (2, 3, 96, 96)  # expanded for the 3-channel model, (x - mean) / std per channel
    assert torch.allclose(batch[:, 1], (x[:2, 0].float() / 255 - spec.mean[1]) / spec.std[1])


def test_image_folder_of_photos_through_the_face_pipeline(samples_dir, tmp_path):
    """``faces=detect``: photos become aligned crops; a photo without a face is skipped, not mislabelled."""
    import shutil

    root = tmp_path / "photos"
    (root / "happy").mkdir(parents=True)
    (root / "neutral").mkdir()
    shutil.copy(samples_dir / "single_face.jpg", root / "happy")
    shutil.copy(samples_dir / "0-f15-hao-ph.jpg", root / "happy")
    shutil.copy(samples_dir / "free-mountain-vector-01.jpg", root / "neutral")
    cfg = DataConfig(dataset=f"folder:{root}", image_size=64, faces="detect", cache_dir=str(tmp_path / "c"))
    fs = D.load_split(cfg, "all")
    assert len(fs) == 2 and fs.images.shape == (2, 64, 64, 3)
    assert [Path(p).name for p in fs.paths] == ["0-f15-hao-ph.jpg", "single_face.jpg"]
    assert set(fs.labels.tolist()) == {EMOTIONS_7.index("happy")}
    cropped = D.load_split(dataclasses.replace(cfg, faces="cropped"), "all")
    assert len(cropped) == 3  # without detection every file is taken as a face
