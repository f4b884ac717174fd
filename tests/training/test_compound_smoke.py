"""The compound loss trains: FerNet-S warm-started from the shipped FER2013 weights, 300 real rows, 2 epochs."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from core.models import create_model
from core.models.weights import SHIPPED_DIR
from training.config import apply_overrides, get_preset
from training.datasets import load_split
from training.evaluate import predict_probs
from training.trainer import fit


@pytest.mark.slow
def test_compound_loss_from_the_shipped_trunk_does_not_collapse(tmp_path, shared_datasets):
    weights = SHIPPED_DIR / "fernet_s_fer2013.safetensors"
    assert weights.is_file(), "fernet_s_fer2013 weights are shipped with the repo"
    cfg = apply_overrides(
        get_preset("default"),
        [
            "loss.name=compound",  # the literal 0.60 / 0.25 / 0.15
            "loss.center_ramp_steps=5",
            f"init_weights={weights}",
            f"data.root={shared_datasets}",
            "data.limit=300",
            "epochs=2",
            "batch_size=32",
            "optim.lr=5e-4",
            "num_threads=1",
            f"out_dir={tmp_path / 'run'}",
        ],
    )
    result = fit(cfg, command="test")
    terms = [r["train_center"] for r in result.history]
    assert all(np.isfinite(terms)) and result.history[-1]["train_center_ramp"] == 1.0
    model = create_model("fernet_s", weights=result.best_weights).eval()
    val = load_split(dataclasses.replace(cfg.data, limit=300), "val")
    pred = predict_probs(model, val, batch_size=128).argmax(1)
    assert len(np.unique(pred)) >= 3, np.bincount(pred, minlength=7)  # not collapsed onto one or two classes
    assert (pred == val.labels).mean() > np.bincount(val.labels).max() / len(val.labels)  # beats the majority class
