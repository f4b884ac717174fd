"""Fixtures for the face-pipeline tests: the real samples, decoded once, and the default detector's faces."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from face_samples import EXPECTED_FACES

from core.faces import create_detector
from core.io import load_image


@pytest.fixture(scope="session")
def sample_images(samples_dir: Path) -> dict[str, np.ndarray]:
    return {name: load_image(samples_dir / name) for name in EXPECTED_FACES}


@pytest.fixture(scope="session")
def detector():
    return create_detector("default")


@pytest.fixture(scope="session")
def sample_faces(sample_images, detector) -> dict[str, list]:
    """The default detector's faces on every sample photo (computed once per session)."""
    return {name: detector.detect(img) for name, img in sample_images.items()}


@pytest.fixture(scope="session")
def face_cases(sample_images, sample_faces) -> list[tuple[str, int, np.ndarray, object]]:
    """(file, index, image, face) for every detected sample face."""
    return [(n, i, sample_images[n], f) for n, faces in sample_faces.items() for i, f in enumerate(faces)]
