"""Fixtures for the explanation tests: real sample faces through the real face pipeline, and models.

Models:

* ``default_model`` -- the registry's ``default`` architecture, random init (seeded). Enough for the
  *mechanics* (shapes, ranges, hooks, inference mode, efficiency), which hold for any weights.
* ``trained_model`` -- for tests whose claim is only meaningful for a model that learned something (deletion
  vs random maps, AU agreement tables). No weights are shipped for ``default`` yet, so when
  ``shipped_weights("default")`` is None this fixture trains a *narrow* ``default`` (same FerNet topology,
  widths 8-16-32-64 instead of 32-64-128-256) for 300 AdamW steps (batch 64, one-cycle LR, horizontal flips)
  on the first 2,000 Training rows of ``fer2013.csv.gz``, on one CPU thread (about half a minute on an idle
  core). It reaches ~34 % on the first 1,000 PublicTest rows (chance 14 %, majority class 25 %): enough for its
  Grad-CAM to be tested against random maps, not a model to draw conclusions about faces from. When trained
  ``default`` weights are shipped, they are used instead.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from core.explain import crops_to_input
from core.faces import AlignedFace, align_face, create_detector
from core.faces.align import DEFAULT_WEIGHTS, framing_points, similarity_transform
from core.io import load_image
from core.models import create_model
from core.models.weights import shipped_weights

SAMPLE_PHOTOS = ("single_face.jpg", "multi_face.jpg", "0-f1-su-ph.jpg", "0-f15-hao-ph.jpg", "15-f13-anc-ph.jpg")


@pytest.fixture(scope="session")
def detector():
    return create_detector("default")


@pytest.fixture(scope="session")
def single_face_photo(samples_dir: Path) -> np.ndarray:
    return load_image(samples_dir / "single_face.jpg")


@pytest.fixture(scope="session")
def sample_face(single_face_photo: np.ndarray, detector) -> AlignedFace:
    """The face of ``single_face.jpg``, detected and aligned by the face pipeline at 224 px (display size)."""
    faces = detector.detect(single_face_photo)
    assert len(faces) == 1, f"expected one face in single_face.jpg, the detector found {len(faces)}"
    return align_face(single_face_photo, faces[0], output_size=224)


def fer_framed_crop(image: np.ndarray, landmarks: np.ndarray, size: int = 48) -> np.ndarray:
    """A crop framed like FER2013 (what a model trained on FER2013 rows expects), from five landmarks."""
    matrix = similarity_transform(landmarks, framing_points(size, "fer2013"), DEFAULT_WEIGHTS)
    return cv2.warpAffine(image, matrix, (size, size), flags=cv2.INTER_AREA, borderMode=cv2.BORDER_REPLICATE)


@pytest.fixture(scope="session")
def sample_fer_crops(samples_dir: Path, detector) -> list[np.ndarray]:
    """Every face the pipeline finds in the sample photos, FER2013-framed at 48 px (9 faces)."""
    crops = []
    for name in SAMPLE_PHOTOS:
        img = load_image(samples_dir / name)
        crops += [fer_framed_crop(img, f.landmarks) for f in detector.detect(img)]
    assert len(crops) >= 9, f"expected >= 9 faces in {SAMPLE_PHOTOS}, found {len(crops)}"
    return crops


@pytest.fixture(scope="module")
def default_model():
    torch.manual_seed(0)
    return create_model("default").eval()


@pytest.fixture(scope="session")
def fer_rows(shared_datasets: Path) -> dict[str, np.ndarray]:
    from training.datasets import read_fer2013

    return read_fer2013(shared_datasets / "fer2013" / "fer2013.csv.gz")


@pytest.fixture(scope="session")
def trained_model(fer_rows):
    """Shipped ``default`` weights if any, else a narrow ``default`` trained here (see the module docstring)."""
    path = shipped_weights("default")
    if path is not None:
        return create_model("default", weights=path).eval()
    torch.manual_seed(0)
    model = create_model("default", widths=(8, 16, 32, 64))
    rows = np.flatnonzero(fer_rows["usage"] == 0)[:2000]
    x = crops_to_input(model, fer_rows["images"][rows])
    y = torch.from_numpy(fer_rows["emotion"][rows])
    steps, lr = 300, 5e-3
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps)
    gen = torch.Generator().manual_seed(0)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # 8-channel convs gain nothing from a second thread and lose a lot on a busy CPU
    model.train()
    try:
        for _ in range(steps):
            idx = torch.randint(0, len(x), (64,), generator=gen)
            flip = torch.rand(64, generator=gen) < 0.5
            xb = torch.where(flip[:, None, None, None], x[idx].flip(-1), x[idx])
            loss = torch.nn.functional.cross_entropy(model(xb), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
    finally:
        torch.set_num_threads(threads)
    return model.eval()


def _hook_count(model: torch.nn.Module) -> int:
    return sum(
        len(m._forward_hooks) + len(m._forward_pre_hooks) + len(m._backward_hooks) + len(m._backward_pre_hooks)
        for m in model.modules()
    )


@pytest.fixture(scope="session")
def hook_count():
    """``hook_count(model)``: forward/backward (pre-)hooks registered on any module of ``model``."""
    return _hook_count
