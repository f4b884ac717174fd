"""Fixtures for the training tests: tiny configs on real FER2013 rows, and a tiny model override."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from core.losses import LossConfig
from training.config import AugmentConfig, DataConfig, OptimConfig, TrainConfig

TINY_MODEL = {"widths": [8, 16], "depths": [1, 1], "drop_rate": 0.1}
"""FerNet-S (the trunk of ``default``) shrunk to two narrow stages: a CPU step takes milliseconds."""


def tiny_config(out_dir: Path, **kw) -> TrainConfig:
    """Two epochs of the tiny FerNet on 64 real FER2013 rows per split, deterministic, every augmentation on."""
    base = dict(
        name="tiny",
        model="fernet_s",
        model_overrides=dict(TINY_MODEL),
        data=DataConfig(dataset="fer2013", num_classes=7, limit=64),
        augment=AugmentConfig(),
        loss=LossConfig(name="compound"),
        optim=OptimConfig(warmup_epochs=0.5),
        epochs=2,
        batch_size=16,
        eval_batch_size=64,
        seed=123,
        deterministic=True,
        patience=0,
        out_dir=str(out_dir),
        num_threads=1,
    )
    base.update(kw)
    return TrainConfig(**base)


@pytest.fixture
def tiny_cfg(tmp_path: Path, shared_datasets: Path) -> TrainConfig:
    cfg = tiny_config(tmp_path / "run")
    return dataclasses.replace(cfg, data=dataclasses.replace(cfg.data, root=str(shared_datasets)))
