"""``ModelSpec.transform``: training, evaluation, serving and explaining feed a model the same tensor.

Every path is run as its users run it (the training ``BatchLoader``, ``training.evaluate.predict_probs``, a
``Detector`` with ``assume_cropped`` on PNG files as the CLI's ``--assume-cropped`` does, ``core.explain``), and
what reaches the model is recorded. Oracles are computed here with cv2/numpy/torch directly, and the shipped
models' pixels are pinned to hashes of what the code produced before the transform was unified.
"""

from __future__ import annotations

import functools
import hashlib
import math
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from core.detector import Detector
from core.engine import InferenceEngine
from core.explain import crops_to_input
from core.io import load_image
from core.models import FERModel, ModelSpec, create_model, list_models
from training.datasets import FaceSet
from training.evaluate import predict_probs
from training.loader import BatchLoader


class _Recorder(FERModel):
    """Stands in for a model with ``spec``: records its inputs (the input pipeline depends on the spec alone)."""

    def __init__(self, spec: ModelSpec) -> None:
        super().__init__()
        self.spec, self.embed_dim = spec, 1
        self.head = nn.Linear(1, spec.num_classes)
        self.seen: list[torch.Tensor] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.seen.append(x.detach().clone())
        return torch.zeros(len(x), self.spec.num_classes)

    def take(self) -> torch.Tensor:
        out, self.seen = torch.cat(self.seen), []
        return out


def _faceset(images: np.ndarray) -> FaceSet:
    n = len(images)
    zeros = np.zeros(n, np.int64)
    return FaceSet(images, zeros, zeros, np.arange(n), ("c",) * 7, "test", "test")


def fed(spec: ModelSpec, images: np.ndarray, files: list[Path] | None = None) -> dict[str, torch.Tensor]:
    """What each path feeds a model with ``spec`` for ``images`` (the engine reads ``files`` when given)."""
    fs = _faceset(images)
    rec = _Recorder(spec)
    out = {"loader": torch.cat([x for x, _, _ in BatchLoader(fs, spec, batch_size=4, train=False)])}
    predict_probs(rec, fs, batch_size=4, device="cpu")
    out["evaluate"] = rec.take()
    det = Detector(engine=InferenceEngine(rec, device="cpu", backend="torch"), face_detector="assume_cropped", tta=None)
    det.detect_image(files if files is not None else list(images))
    out["engine"] = rec.take()
    out["explain"] = crops_to_input(rec, list(images))
    return out


@pytest.fixture(scope="module")
def fer6(fer_faces) -> np.ndarray:
    """The first 6 FER2013 faces, (6, 48, 48) uint8 gray: what training reads."""
    return fer_faces[:6]


@pytest.fixture(scope="module")
def fer_files(fer6, tmp_path_factory) -> list[Path]:
    """The same faces as PNG files (gray), as a user would hand them to ``python -m core predict --assume-cropped``."""
    root = tmp_path_factory.mktemp("fer_png")
    paths = [root / f"{i}.png" for i in range(len(fer6))]
    for p, img in zip(paths, fer6, strict=True):
        assert cv2.imwrite(str(p), img)
    return paths


@pytest.fixture(scope="module")
def colour_crops(samples_dir: Path) -> np.ndarray:
    """Four 100 px colour crops of a real photo: an RGB dataset (AffectNet-like) at a size no model uses."""
    rgb = load_image(samples_dir / "single_face.jpg")
    h, w = rgb.shape[:2]
    cy, cx = h // 2, w // 2
    crops = [
        rgb[cy - 50 + dy : cy + 50 + dy, cx - 50 + dx : cx + 50 + dx] for dy, dx in ((0, 0), (9, -7), (-5, 3), (2, 11))
    ]
    return np.ascontiguousarray(np.stack(crops))


@functools.cache
def _spec_of(name: str) -> ModelSpec:
    with torch.device("meta"):  # the spec without allocating (hafem_paper has 230M parameters)
        return create_model(name).spec


PREPROCESSED = [n for n in list_models() if _spec_of(n).preprocess]


def _pixel_groups() -> dict[str, ModelSpec]:
    """Models with preprocessing grouped by the spec fields the transform reads (one case proves the group)."""
    groups: dict[tuple, list[str]] = {}
    for n in PREPROCESSED:
        s = _spec_of(n)
        groups.setdefault((s.input_size, s.in_chans, s.mean, s.std, s.preprocess), []).append(n)
    return {"+".join(names): _spec_of(names[0]) for names in groups.values()}


def _assert_all_equal(paths: dict[str, torch.Tensor], atol: float) -> torch.Tensor:
    ref = paths["loader"]
    for name, x in paths.items():
        assert x.shape == ref.shape, name
        torch.testing.assert_close(x, ref, atol=atol, rtol=0, msg=lambda m, n=name: f"{n} vs loader: {m}")
    return ref


# ------------------------------------------------------------------------------------- models with preprocessing


def test_every_model_with_preprocessing_is_covered():
    assert {"hafem_compact", "dcrnet"} <= set(PREPROCESSED)
    assert sorted(n for group in _pixel_groups() for n in group.split("+")) == sorted(PREPROCESSED)
    assert {s.preprocess for s in _pixel_groups().values()} >= {("clahe",), ("gamma",)}


@pytest.mark.slow
@pytest.mark.parametrize(("names", "spec"), list(_pixel_groups().items()))
def test_train_eval_serve_explain_feed_the_same_tensor(names, spec, fer6, fer_files, colour_crops):
    gray = _assert_all_equal(fed(spec, fer6, fer_files), atol=1e-5)
    assert gray.shape == (len(fer6), spec.in_chans, spec.input_size, spec.input_size)
    colour = _assert_all_equal(fed(spec, colour_crops), atol=1e-5)
    assert not torch.equal(colour[:, 0], colour[:, 1])  # colour stayed colour


def _oracle(spec: ModelSpec, gray48: np.ndarray) -> torch.Tensor:
    """FER2013 gray crops as training feeds them, written out by hand: resize to the model size, then the step."""
    s = spec.input_size
    big = F.interpolate(torch.from_numpy(gray48)[:, None].float(), size=(s, s), mode="bilinear", antialias=True)
    big = big.round().clamp(0, 255).to(torch.uint8)[:, 0].numpy()
    out = []
    for img in big:
        if spec.preprocess == ("clahe",):
            img = cv2.createCLAHE(clipLimit=2.0, tileGridSize=(8, 8)).apply(img)
        elif spec.preprocess == ("gamma",):
            mu = min(max(img.mean() / 255.0, 1e-3), 1 - 1e-3)
            g = float(np.clip(math.log(0.5) / math.log(mu), 0.6, 1.4))
            img = np.clip(255.0 * (np.arange(256) / 255.0) ** g + 0.5, 0, 255).astype(np.uint8)[img]
        out.append(img)
    x = torch.from_numpy(np.stack(out))[:, None].float() / 255.0
    mean, std = torch.tensor(spec.mean).view(1, -1, 1, 1), torch.tensor(spec.std).view(1, -1, 1, 1)
    return (x.expand(-1, 3, -1, -1) - mean) / std


@pytest.mark.parametrize("name", ["hafem_compact", "dcrnet"])
def test_preprocessing_runs_at_model_size_as_in_training(name, fer6):
    """CLAHE's 8x8 tiles are 28 px of the 224 px input, not 6 px of a 48 px crop; gamma is measured at 224 px."""
    spec = _spec_of(name)
    torch.testing.assert_close(spec.transform(fer6), _oracle(spec, fer6), atol=1e-5, rtol=0)
    at_crop_size = replace(spec, preprocess=())
    stepped = np.stack([cv2.createCLAHE(2.0, (8, 8)).apply(f) for f in fer6])
    if spec.preprocess == ("clahe",):  # the order the engine used to take differs visibly
        assert (spec.transform(fer6) - at_crop_size.transform(stepped)).abs().max() > 0.5


# ------------------------------------------------------------------------------------- the shipped FerNet models

# uint8 pixels that engine.crops_to_pixels and training.loader.prepare_tensor (then identical) produced at commit
# 2ea3636, before the transform was unified, for the crops of _odd_sizes(): the shipped models must not see a change.
FROZEN_SHA256 = {
    "rgb": "e7a79f023d7bc922a865d6b2e2786ba8b4f2ad8b19cd451190ab059e70154d48",
    "gray": "c7c8ca9ef922d5664ed399782c6da92ef2dffd3225ce0319b1ae4f5cd0bcabcb",
}


def _odd_sizes() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(17)
    rgb = rng.integers(0, 256, (3, 37, 53, 3), dtype=np.uint8)
    return {"rgb": rgb, "gray": rng.integers(0, 256, (3, 96, 96), dtype=np.uint8)}


def _to_uint8(x: torch.Tensor, spec: ModelSpec) -> np.ndarray:
    return ((x * spec.std[0] + spec.mean[0]) * 255.0).round().to(torch.uint8).numpy()


@pytest.mark.parametrize("name", ["default", "default_fer2013", "fernet_s_fer2013"])
def test_shipped_models_see_unchanged_pixels(name, fer6, fer_files, colour_crops):
    spec = create_model(name, weights="default").spec
    assert (spec.input_size, spec.in_chans, spec.preprocess) == (48, 1, ())
    mean, std = np.float32(spec.mean[0]), np.float32(spec.std[0])

    def norm(gray: np.ndarray) -> torch.Tensor:
        return torch.from_numpy((gray.astype(np.float32) / np.float32(255.0) - mean) / std)[:, None]

    # FER2013 as trained on: the pixels themselves, normalised
    _assert_all_equal({**fed(spec, fer6, fer_files), "oracle": norm(fer6)}, atol=1e-6)
    # colour crops at the model size (what the aligner gives the engine): ITU-R 601 luma, normalised
    rgb48 = np.ascontiguousarray(colour_crops[:, :48, :48])
    luma = np.stack([cv2.cvtColor(c, cv2.COLOR_RGB2GRAY) for c in rgb48])
    _assert_all_equal({**fed(spec, rgb48), "oracle": norm(luma)}, atol=1e-6)
    # other sizes (resized): the exact uint8 pixels of the code before the unification
    for kind, images in _odd_sizes().items():
        for path, x in fed(spec, images).items():
            digest = hashlib.sha256(_to_uint8(x, spec).tobytes()).hexdigest()
            assert digest == FROZEN_SHA256[kind], f"{kind} crops through {path}"


# ------------------------------------------------------------------------------------- the transform's contract


def test_a_crop_gives_the_same_tensor_alone_or_in_any_batch(fer6, colour_crops):
    spec = _spec_of("hafem_compact")
    mixed = [fer6[0], colour_crops[1], fer6[2][:40, :44], colour_crops[3][10:90]]
    together = spec.transform(mixed)
    alone = torch.cat([spec.transform([c]) for c in mixed])
    torch.testing.assert_close(together, alone, atol=0, rtol=0)
    stacked = spec.transform(colour_crops)  # an (N, H, W, 3) array is a batch
    torch.testing.assert_close(stacked, spec.transform(list(colour_crops)), atol=0, rtol=0)
    tiny = np.zeros((5, 3, 3), np.uint8)  # so is (N, H, W), however small the crops
    assert spec.pixels(tiny).shape == (5, 1, 224, 224)
    engine = InferenceEngine(_Recorder(spec), device="cpu", backend="torch")
    one = engine.prepare(colour_crops[0])  # the engine takes one (H, W, 3) array as one crop
    assert one.shape == (1, 3, 224, 224)
    torch.testing.assert_close(one, stacked[:1], atol=0, rtol=0)
    with pytest.raises(ValueError, match="alpha channel"):
        engine.prepare(np.zeros((48, 48, 4), np.uint8))


def test_gray_stored_as_rgb_is_gray(fer6):
    """A gray PNG decodes to R = G = B; CLAHE must then act on the gray values, as on the CSV's faces."""
    spec = _spec_of("hafem_compact")
    as_rgb = np.repeat(fer6[..., None], 3, axis=3)
    assert spec.pixels(as_rgb).shape[1] == 1
    torch.testing.assert_close(spec.transform(as_rgb), spec.transform(fer6), atol=0, rtol=0)


def test_steps_replace_the_model_preprocessing(fer6):
    spec = _spec_of("hafem_compact")
    plain = spec.transform(fer6, steps=lambda img: img)
    torch.testing.assert_close(plain, replace(spec, preprocess=()).transform(fer6), atol=0, rtol=0)
    assert not torch.equal(plain, spec.transform(fer6))


@pytest.mark.parametrize(
    ("bad", "error", "match"),
    [
        ([np.zeros((48, 48), np.float32)], TypeError, "crop 0: expected a uint8"),
        ([np.zeros((48, 48), np.uint8), np.zeros((48, 48, 2), np.uint8)], ValueError, "crop 1: expected"),
        (np.zeros((48, 48), np.uint8), ValueError, "give a single crop as a list of one"),
    ],
)
def test_bad_crops_raise_typed_errors(bad, error, match):
    with pytest.raises(error, match=match):
        _spec_of("default").transform(bad)


def test_channel_mismatch_is_refused():
    with pytest.raises(ValueError, match="takes 1-channel input, got 3 channels"):
        _spec_of("default").normalize(torch.zeros(1, 3, 48, 48))
