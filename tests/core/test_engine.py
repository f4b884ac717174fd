"""InferenceEngine: same numbers as the raw model and as onnxruntime, thread safety, weights handling and
statistics. Inputs are real FER2013 faces. The input transform itself is tested in test_transform.py."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest
import scipy.special
import torch

from core.engine import InferenceEngine, build_model
from core.models import WeightsError, create_model, save_weights


def _peaky(model: torch.nn.Module, spread: float = 4.0) -> torch.nn.Module:
    """Scale the classifier so that random-init logits spread by about ``spread`` across classes: probabilities far
    from uniform (a sharper comparison) yet not saturated, whatever the architecture's feature scale."""
    model.eval()
    spec = model.spec
    x = torch.randn(16, spec.in_chans, spec.input_size, spec.input_size, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        std = float(model(x).std(dim=1).mean())
        model.head.weight.mul_(spread / std)
        model.head.bias.mul_(spread / std)
    return model


@pytest.fixture(scope="module")
def onnx_dir(tmp_path_factory) -> Path:
    """One ONNX cache per module: exporting takes seconds, and the cache is what makes later engines cheap."""
    return tmp_path_factory.mktemp("onnx")


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(1)
    return _peaky(create_model("default"))


def test_engine_equals_raw_model(model, fer_faces):
    engine = InferenceEngine(model, device="cpu", backend="torch", max_batch=7)
    crops = list(fer_faces[:20])
    x = engine.prepare(crops)
    with torch.no_grad():
        logits = model(x)
    probs = torch.softmax(logits, 1).numpy()
    assert probs.max(1).mean() > 0.5, "the comparison needs non-uniform probabilities"
    np.testing.assert_allclose(engine.predict_logits(crops), logits.numpy(), atol=1e-5, rtol=0)
    np.testing.assert_allclose(engine.predict(crops), probs, atol=1e-5, rtol=0)
    np.testing.assert_allclose(engine.predict(x), probs, atol=1e-5, rtol=0)  # a prepared tensor works too
    assert engine.predict([]).shape == (0, 7)


def test_onnx_backend_matches_torch(model, fer_faces, onnx_dir):
    torch_engine = InferenceEngine(model, device="cpu", backend="torch")
    onnx_engine = InferenceEngine(model, backend="onnx", onnx_dir=onnx_dir)
    assert onnx_engine.backend == "onnx" and onnx_engine._session is not None
    for n in (1, 7, 40):  # the exported graph has a dynamic batch axis
        crops = list(fer_faces[:n])
        np.testing.assert_allclose(onnx_engine.predict(crops), torch_engine.predict(crops), atol=1e-3, rtol=0)
    exported = sorted(onnx_dir.glob("*.onnx"))
    assert len(exported) == 1
    stamp = exported[0].stat().st_mtime_ns
    InferenceEngine(model, backend="onnx", onnx_dir=onnx_dir)  # same weights: the cached export is reused
    assert [p.stat().st_mtime_ns for p in onnx_dir.glob("*.onnx")] == [stamp]


@pytest.mark.parametrize("backend", ["torch", "onnx"])
def test_eight_threads_get_their_own_results(model, fer_faces, backend, onnx_dir):
    engine = InferenceEngine(model, device="cpu", backend=backend, onnx_dir=onnx_dir, max_batch=4)
    # each thread owns different faces and a different batch size, so any mix-up changes the numbers
    jobs = [list(fer_faces[i : i + 1 + i % 5]) for i in range(8)]
    expected = [engine.predict(c) for c in jobs]
    assert all(not np.allclose(expected[0][0], e[0]) for e in expected[1:])
    barrier = threading.Barrier(8)
    results: dict[int, list[np.ndarray]] = {}
    errors: list[BaseException] = []

    def work(i: int) -> None:
        try:
            barrier.wait()
            results[i] = [engine.predict(jobs[i]) for _ in range(6)]
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors, errors
    for i in range(8):
        for got in results[i]:
            np.testing.assert_allclose(got, expected[i], atol=1e-6, rtol=0)
    assert engine.stats().calls >= 8 * 6


def test_missing_default_weights_raise_and_random_init_is_seeded():
    # fernet_s is default's architecture with no shipped weights: "default" names the fix instead of guessing
    with pytest.raises(WeightsError, match=r"no weights are shipped for model 'fernet_s'.*'none' for a random init"):
        InferenceEngine("fernet_s", device="cpu", backend="torch")
    a = InferenceEngine("fernet_s", weights=None, device="cpu", backend="torch")
    assert a.weights_status.startswith("random init") and not a.has_trained_weights
    b = InferenceEngine("fernet_s", weights="none", device="cpu", backend="torch")
    x = torch.randn(3, 1, 48, 48)
    np.testing.assert_array_equal(a.predict(x), b.predict(x))  # two sessions without weights agree


def test_weights_file_and_sidecar_rebuild_the_trained_model(tmp_path, fer_faces):
    torch.manual_seed(3)
    trained = _peaky(create_model("fernet_s", num_classes=8, widths=(16, 32, 64, 128)))
    path = tmp_path / "best.safetensors"
    meta = {"spec": trained.spec.to_dict(), "config": {"model_overrides": {"widths": [16, 32, 64, 128]}}}
    save_weights(trained, path, meta)
    engine = InferenceEngine("fernet_s", weights=path, device="cpu", backend="torch")
    assert engine.has_trained_weights and engine.weights_status.startswith("trained weights:")
    assert engine.class_names[-1] == "contempt"
    x = engine.prepare(list(fer_faces[:5]))
    with torch.no_grad():
        np.testing.assert_allclose(engine.predict(x), torch.softmax(trained(x), 1).numpy(), atol=1e-6)
    with pytest.raises(WeightsError, match="weights file not found"):
        build_model("default", tmp_path / "missing.safetensors")


def test_stats_count_calls_and_images(model, fer_faces):
    engine = InferenceEngine(model, device="cpu", backend="torch", max_batch=8)
    assert engine.stats().calls == 0 and engine.stats().latency_ms_mean is None
    for _ in range(3):
        engine.predict(list(fer_faces[:10]))  # 10 images = two model calls of 8 and 2
    s = engine.stats()
    assert (s.calls, s.images, s.window) == (6, 30, 6)
    assert 0 < s.latency_ms_p50 <= s.latency_ms_p95 and s.images_per_s > 0 and s.calls_per_s > 0
    assert set(s.to_dict()) >= {"latency_ms_mean", "images_per_s"}


def test_bad_arguments_say_what_is_allowed(model):
    with pytest.raises(ValueError, match=r"unknown backend 'tpu'; choose one of \['torch', 'onnx', 'auto'\]"):
        InferenceEngine(model, backend="tpu")
    with pytest.raises(ValueError, match="unknown model"):
        InferenceEngine("nope")
    engine = InferenceEngine(model, device="cpu", backend="torch")
    with pytest.raises(ValueError, match=r"takes \(N, 1, 48, 48\) input"):
        engine.predict(torch.zeros(2, 3, 48, 48))
    with pytest.raises(TypeError, match="uint8"):
        engine.predict([np.zeros((48, 48), np.float32)])
    with pytest.raises(ValueError, match="shape"):
        engine.predict([np.zeros((48, 48, 4), np.uint8)])


def _calibrated_engine(tmp_path: Path, model: torch.nn.Module, temperature: float, **kw) -> InferenceEngine:
    """An engine on ``model``'s weights saved with a sidecar that carries ``temperature`` (as training.calibrate
    writes it)."""
    path = tmp_path / "calibrated.safetensors"
    save_weights(model, path, {"spec": model.spec.to_dict(), "calibration": {"temperature": temperature}})
    return InferenceEngine("default", weights=path, device="cpu", backend="torch", **kw)


def test_sidecar_temperature_divides_the_logits(tmp_path, model, fer_faces):
    engine = _calibrated_engine(tmp_path, model, 2.5)
    assert engine.temperature == 2.5
    x = engine.prepare(list(fer_faces[:12]))
    with torch.no_grad():
        logits = model(x).numpy().astype(np.float64)
    np.testing.assert_allclose(engine.predict(x), scipy.special.softmax(logits / 2.5, axis=1), atol=1e-5, rtol=0)
    plain = _calibrated_engine(tmp_path, model, 2.5, calibration=False)
    assert plain.temperature == 1.0
    np.testing.assert_allclose(plain.predict(x), scipy.special.softmax(logits, axis=1), atol=1e-5, rtol=0)
    # the check above is not vacuous: T visibly softens the probabilities
    assert engine.predict(x).max(1).mean() < plain.predict(x).max(1).mean() - 0.05
    np.testing.assert_allclose(engine.predict_logits(x), logits, atol=1e-4)  # logits stay raw


def test_hflip_tta_is_the_mean_of_two_forward_passes_in_one_batch(tmp_path, model, fer_faces):
    engine = _calibrated_engine(tmp_path, model, 1.7, max_batch=64)
    crops = list(fer_faces[:10])
    x = engine.prepare(crops)
    with torch.no_grad():
        straight = torch.softmax(model(x) / 1.7, 1).numpy()
        mirror = torch.softmax(model(torch.flip(x, dims=[-1])) / 1.7, 1).numpy()
    assert not np.allclose(straight, mirror, atol=1e-3), "the comparison needs a model that is not symmetric"
    before = engine.stats()
    tta = engine.predict(crops, tta="hflip")
    after = engine.stats()
    np.testing.assert_allclose(tta, (straight + mirror) / 2, atol=1e-5, rtol=0)
    assert (after.calls - before.calls, after.images - before.images) == (1, 20)  # one model call for both views
    # mirroring the crops before the pipeline gives the same mirror view (the pipeline is flip-equivariant)
    np.testing.assert_allclose(engine.predict([c[:, ::-1] for c in crops]), mirror, atol=1e-5, rtol=0)
    assert engine.predict([], tta="hflip").shape == (0, 7)


def test_tta_and_temperature_values_are_checked(tmp_path, model):
    engine = InferenceEngine(model, device="cpu", backend="torch")
    with pytest.raises(ValueError, match=r"unknown tta 'vflip'; choose one of \[None, 'hflip'\]"):
        engine.predict(torch.zeros(1, 1, 48, 48), tta="vflip")
    with pytest.raises(ValueError, match="unknown tta True"):
        engine.predict(torch.zeros(1, 1, 48, 48), tta=True)
    for bad in (-1.0, 0, "warm"):
        with pytest.raises(ValueError, match="temperature must be a positive number"):
            _calibrated_engine(tmp_path, model, bad)
