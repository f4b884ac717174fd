"""The shipped weights (`default` on FERPlus; `default_fer2013` and the trunk `fernet_s_fer2013` on FER2013
labels): they load offline, reproduce the accuracy recorded beside them on a fixed PrivateTest slice (an export
check), and the model card states their sidecars' figures."""

from __future__ import annotations

import numpy as np
import pytest

from core.models import create_model
from core.models.weights import read_meta, shipped_weights
from tests.harness.model_card import check_card
from training.config import DataConfig
from training.datasets import load_split
from training.evaluate import predict_probs, sha256_file
from training.model_card import CARD_PATH

SHIPPED = ["default", "default_fer2013", "fernet_s_fer2013"]  # a missing file fails every test here, never skips


@pytest.fixture(scope="module", params=SHIPPED)
def shipped(request) -> tuple[str, dict]:
    return request.param, read_meta(shipped_weights(request.param))


def test_the_shipped_file_is_the_one_its_sidecar_describes_and_fits_the_size_rule(shipped):
    name, meta = shipped
    path = shipped_weights(name)
    assert sha256_file(path) == meta["sha256"]
    assert path.suffix == ".safetensors" and path.stat().st_size < 25 * 1024 * 1024
    model = create_model(name, weights="default")
    assert sum(p.numel() for p in model.parameters()) == meta["params"]
    assert model.num_classes == meta["spec"]["num_classes"] == len(meta["spec"]["class_names"])


def test_shipped_weights_reproduce_the_recorded_slice_accuracy(shipped, shared_datasets):
    name, meta = shipped
    sl = meta["slice"]
    dataset = sl.get("data", ["fer2013"])[0]
    cfg = DataConfig(
        dataset=dataset,
        root=str(shared_datasets),
        num_classes=meta["spec"]["num_classes"],
        limit=sl["limit"],
        limit_mode=sl["limit_mode"],
    )
    fs = load_split(cfg, sl["split"])
    assert len(fs) == sl["limit"]
    probs = predict_probs(create_model(name, weights="default"), fs, batch_size=250, device="cpu")
    correct = int((probs.argmax(1) == fs.labels).sum())
    # a broken export (wrong file, wrong normalisation, transposed weights) moves this by tens of faces; float
    # summation order on another CPU may flip a single borderline face
    assert abs(correct - sl["correct"]) <= 1, (correct, sl["correct"])
    assert np.isfinite(probs).all()


def test_the_engine_and_detector_start_on_the_shipped_weights(caplog):
    from core.engine import InferenceEngine

    with caplog.at_level("WARNING", logger="core.engine"):
        engine = InferenceEngine("default", device="cpu", backend="torch")
    assert engine.has_trained_weights and engine.weights_path == shipped_weights("default")
    assert not [r for r in caplog.records if "meaningless" in r.getMessage()]


def test_the_model_card_states_every_recorded_score_of_the_default():
    """Read back from the card's text, not re-rendered; a failure means docs/model-card.md is stale (rerun
    python -m training.ship) or the renderer prints a wrong figure."""
    meta = read_meta(shipped_weights("default"))
    card = CARD_PATH.read_text()
    check_card(card, meta)
    assert f"T = {meta['calibration']['temperature']:.3f}" in card
