"""Temperature scaling: the fit recovers a known temperature, the sidecar round trip, and the CLI on real rows
with the engine and training.evaluate applying what it wrote."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from scipy.special import softmax

from core.engine import InferenceEngine
from core.metrics import expected_calibration_error
from core.models import create_model, save_weights
from core.models.weights import read_meta, shipped_weights
from training import calibrate as C
from training import evaluate as E
from training.config import DataConfig
from training.datasets import load_split

TINY = {"widths": [8, 16, 32, 64]}


def _calibrated_sample(n: int, c: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Logits ``z`` and labels drawn from ``softmax(z)``: a perfectly calibrated model by construction."""
    rng = np.random.default_rng(seed)
    z = rng.normal(0.0, 1.5, size=(n, c))
    cum = softmax(z, axis=1).cumsum(axis=1)
    y = (rng.random((n, 1)) > cum).sum(axis=1)
    return z, np.minimum(y, c - 1)


@pytest.mark.parametrize("t_true", [2.5, 0.6])
def test_fit_recovers_the_temperature_of_over_and_under_confident_logits(t_true):
    z, y = _calibrated_sample(20_000, 7, seed=int(t_true * 10))
    logits = z * t_true  # over-confident (T > 1) or under-confident (T < 1) copies of a calibrated model
    t = C.fit_temperature(logits, y)
    assert t == pytest.approx(t_true, rel=0.05)
    assert C.nll(logits, y, t) <= C.nll(logits, y)
    # an independent NLL: the mean of -log p_y, with p from scipy's softmax
    p = softmax(logits / t, axis=1)
    assert C.nll(logits, y, t) == pytest.approx(float(-np.log(p[np.arange(len(y)), y]).mean()), rel=1e-9)
    report = C.calibration_report(logits, y, t)
    assert report["ece_after"] < report["ece_before"]
    assert report["ece_before"] == pytest.approx(expected_calibration_error(y, softmax(logits, axis=1)), abs=1e-6)


def test_fit_rejects_mismatched_inputs():
    with pytest.raises(ValueError, match="need"):
        C.fit_temperature(np.zeros((3, 7)), np.zeros(2, np.int64))


def test_sidecar_round_trip_keeps_the_other_keys_and_feeds_the_engine(tmp_path):
    torch.manual_seed(0)
    m = create_model("default", **TINY)
    path = tmp_path / "w.safetensors"
    meta = {"spec": m.spec.to_dict(), "config": {"model_overrides": TINY}, "note": "kept"}
    save_weights(m, path, meta)
    side = C.write_calibration(path, {"temperature": 1.75, "fitted_on": "fer2013 PublicTest"})
    assert side == tmp_path / "w.json"
    back = json.loads(side.read_text())
    assert back["note"] == "kept" and back["config"] == {"model_overrides": TINY}
    assert back["calibration"] == {"temperature": 1.75, "fitted_on": "fer2013 PublicTest"}
    assert not list(tmp_path.glob("*.tmp"))
    assert InferenceEngine("default", weights=path, device="cpu", backend="torch").temperature == 1.75


@pytest.fixture
def overconfident_weights(tmp_path):
    """The shipped FER2013 weights with logits tripled (an over-confident model with real signal), saved with the
    shipped sidecar's config into a temporary folder; the shipped files are not touched."""
    shipped = shipped_weights("default_fer2013")
    assert shipped is not None, "default_fer2013 weights are shipped with the repo"
    m = create_model("default_fer2013", weights=shipped)
    with torch.no_grad():
        m.head.weight.mul_(3.0)
        m.head.bias.mul_(3.0)
    path = tmp_path / "overconfident.safetensors"
    save_weights(m, path, {"spec": m.spec.to_dict(), "config": read_meta(shipped)["config"]})
    return m.eval(), path


def test_cli_fits_on_public_test_and_evaluate_applies_it(overconfident_weights, tmp_path, shared_datasets, capsys):
    m, path = overconfident_weights
    argv = ["--model", "default_fer2013", "--weights", str(path), "--root", str(shared_datasets), "--limit", "300"]
    assert C.main(argv) == 0, capsys.readouterr().err
    assert "temperature" in capsys.readouterr().out
    cal = read_meta(path)["calibration"]
    assert cal["fitted_on"] == "fer2013 PublicTest" and cal["n"] == 300 and "--limit 300" in cal["command"]
    assert cal["nll_after"] <= cal["nll_before"]
    # the stored T minimises the NLL of logits computed here, independently of the CLI, on the same 300 rows
    val = load_split(DataConfig(dataset="fer2013", root=str(shared_datasets), limit=300), "val")
    x = E.predict_logits(m, val)
    nll = lambda t: C.nll(x, val.labels, t)  # noqa: E731
    t = cal["temperature"]
    assert t > 1.5 and nll(t) <= min(nll(t * 0.95), nll(t * 1.05), nll(1.0))

    # training.evaluate applies it by default and records it; --no-calibration does not
    test = load_split(DataConfig(dataset="fer2013", root=str(shared_datasets), limit=100), "test")
    logits = E.predict_logits(m, test)
    base = ["--model", "default_fer2013", "--weights", str(path), "--root", str(shared_datasets)]
    base += ["--split", "test", "--limit", "100", "--bootstrap", "0"]
    for extra, temp in (([], t), (["--no-calibration"], 1.0)):
        out = tmp_path / f"r{len(extra)}.json"
        assert E.main([*base, "--out", str(out), *extra]) == 0
        d = E.load_results(out)
        assert d["meta"]["calibration"]["temperature"] == temp
        assert (d["meta"]["calibration"]["from"] is not None) == (temp != 1.0)
        np.testing.assert_allclose(d["predictions"]["probs"], softmax(logits / temp, axis=1), atol=2e-6)


def test_cli_without_a_dataset_in_the_sidecar_says_what_to_pass(tmp_path, shared_datasets, capsys):
    m = create_model("default", **TINY)
    path = tmp_path / "bare.safetensors"
    save_weights(m, path, {"spec": m.spec.to_dict(), "config": {"model_overrides": TINY}})
    assert C.main(["--model", "default", "--weights", str(path), "--root", str(shared_datasets)]) == 2
    err = capsys.readouterr().err
    assert "pass --data" in err and len(err.strip().splitlines()) == 1
