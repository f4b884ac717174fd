"""Shared fixtures: where the real data lives, and a CPU-only, offline, deterministic test session."""

from __future__ import annotations

import gzip
import os
from pathlib import Path

import numpy as np
import pytest
import torch

REPO = Path(__file__).resolve().parents[1]

# Tests never touch the network: make any hub client fail fast instead of hanging for a minute.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


def datasets_dir() -> Path:
    """``$FERLENS_DATA`` or ``<repo>/../shared/datasets`` (read-only; never copied into the repo)."""
    return Path(os.environ.get("FERLENS_DATA", REPO.parent / "shared" / "datasets")).resolve()


@pytest.fixture(scope="session")
def shared_datasets() -> Path:
    root = datasets_dir()
    if not (root / "README.md").is_file():
        pytest.fail(f"shared datasets not found at {root}: clone next to ../shared or set FERLENS_DATA")
    return root


@pytest.fixture(scope="session")
def samples_dir(shared_datasets: Path) -> Path:
    return shared_datasets / "samples"


@pytest.fixture(autouse=True)
def _seeded() -> None:
    torch.manual_seed(0)


def pytest_configure(config: pytest.Config) -> None:
    torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if torch.cuda.is_available():
        return
    skip_gpu = pytest.mark.skip(reason="needs a CUDA device; none on this machine")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip_gpu)


@pytest.fixture(scope="session")
def softmax_by_hand():
    """Oracle for what a 48 px gray model with no preprocessing serves: ``softmax(model((x / 255 - mean) / std) / T)``,
    with ``tta`` the mean of that and the same for the mirrored crops (T: the engine's sidecar temperature)."""

    def run(engine, faces: list, tta: bool = False) -> np.ndarray:
        spec = engine.spec
        assert (spec.input_size, spec.in_chans, spec.preprocess) == (48, 1, ()), "the oracle covers only this spec"

        def probs(imgs) -> np.ndarray:
            x = (np.stack(imgs).astype(np.float32)[:, None] / 255.0 - spec.mean[0]) / spec.std[0]
            with torch.no_grad():
                return torch.softmax(engine.model(torch.from_numpy(x)) / engine.temperature, dim=1).numpy()

        return (probs(faces) + probs([f[:, ::-1].copy() for f in faces])) / 2 if tta else probs(faces)

    return run


@pytest.fixture(scope="session")
def fer_faces(shared_datasets: Path) -> np.ndarray:
    """The first 40 faces of fer2013.csv.gz as (40, 48, 48) uint8."""
    rows = []
    with gzip.open(shared_datasets / "fer2013" / "fer2013.csv.gz", "rt") as fh:
        next(fh)
        for line in fh:
            rows.append(np.array(line.split(",")[1].split(), dtype=np.uint8).reshape(48, 48))
            if len(rows) == 40:
                break
    return np.stack(rows)
