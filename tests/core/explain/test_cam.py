"""Grad-CAM family on a real face: maps, class specificity, hooks, inference mode, transformers, threads."""

from __future__ import annotations

import threading

import numpy as np
import pytest
import torch

from core.explain import compute_cam, crops_to_input, explain_cam, list_cam_methods, resize_maps
from core.explain.cam import get_cam_method
from core.models import create_model, tokens_to_grid

GRADIENT_METHODS = [m for m in list_cam_methods() if get_cam_method(m).class_specific]


@pytest.fixture(scope="module")
def x_face(default_model, sample_face):
    return crops_to_input(default_model, [sample_face.image])


def test_registry_lists_the_five_methods_and_rejects_unknown_names():
    assert list_cam_methods() == ["gradcam", "gradcam++", "hirescam", "eigencam", "layercam"]
    with pytest.raises(ValueError, match=r"unknown CAM method 'scorecam'; choose one of \[.*'gradcam'"):
        explain_cam(None, torch.zeros(1, 1, 48, 48), method="scorecam")


@pytest.mark.parametrize("method", list_cam_methods())
def test_maps_are_crop_sized_in_unit_range_and_not_constant(default_model, x_face, method):
    res = compute_cam(default_model, x_face, method=method)
    size = default_model.spec.input_size
    assert res.maps.shape == (1, size, size) and res.maps.dtype == np.float32
    assert res.maps.min() >= 0.0 and res.maps.max() <= 1.0
    assert res.maps.max() - res.maps.min() > 0.5, "min-max scaled map of the predicted class should span [0, 1]"
    assert res.maps.std() > 0.05
    with torch.inference_mode():
        probs = torch.softmax(default_model(x_face), 1).numpy()
    assert res.targets.tolist() == [int(probs.argmax())]
    np.testing.assert_allclose(res.probs, probs, atol=1e-5)


@pytest.mark.parametrize("method", GRADIENT_METHODS)
def test_maps_differ_between_target_classes(default_model, x_face, method):
    n = default_model.num_classes
    maps = explain_cam(default_model, x_face.repeat(n, 1, 1, 1), np.arange(n), method)
    informative = [m for m in maps if m.max() - m.min() > 0]
    assert len(informative) >= 2, "at least two classes should have positive evidence somewhere"
    diffs = [np.abs(a - b).mean() for i, a in enumerate(informative) for b in informative[i + 1 :]]
    assert min(diffs) > 0.01, f"{method}: two classes gave (nearly) the same map"


def test_eigencam_is_class_agnostic(default_model, x_face):
    maps = explain_cam(default_model, x_face.repeat(3, 1, 1, 1), [0, 3, 5], "eigencam")
    np.testing.assert_allclose(maps[0], maps[1], atol=1e-6)
    np.testing.assert_allclose(maps[0], maps[2], atol=1e-6)


def test_batched_equals_one_by_one(default_model, sample_fer_crops):
    x = crops_to_input(default_model, sample_fer_crops[:5])
    batched = explain_cam(default_model, x, [0, 1, 2, 3, 4])
    single = np.concatenate([explain_cam(default_model, x[i : i + 1], i) for i in range(5)])
    np.testing.assert_allclose(batched, single, atol=1e-4)
    chunked = explain_cam(default_model, x, [0, 1, 2, 3, 4], batch_size=2)
    np.testing.assert_allclose(batched, chunked, atol=1e-4)


def test_inference_mode_still_gives_gradient_maps(default_model, sample_face):
    """An engine serves under inference_mode: a naive CAM there has no graph. Ours leaves the mode."""
    with torch.inference_mode():
        x = crops_to_input(default_model, [sample_face.image])  # an inference tensor
        assert x.is_inference()
        inside = explain_cam(default_model, x, 3, "gradcam")
    with torch.no_grad():
        under_no_grad = explain_cam(default_model, x, 3, "gradcam")
    outside = explain_cam(default_model, x.clone(), 3, "gradcam")
    assert inside.max() > 0.5 and inside.std() > 0.05
    np.testing.assert_allclose(inside, outside, atol=1e-6)
    np.testing.assert_allclose(under_no_grad, outside, atol=1e-6)


def test_no_hooks_grads_or_mode_changes_remain(default_model, x_face, hook_count):
    model = default_model
    before = hook_count(model)
    for method in list_cam_methods():
        explain_cam(model, x_face, None, method)
    with pytest.raises(ValueError, match="target class indices"):
        explain_cam(model, x_face, 99)
    assert hook_count(model) == before == 0
    assert all(p.grad is None for p in model.parameters())
    assert all(p.requires_grad for p in model.parameters())
    assert not model.training
    model.train()
    try:
        explain_cam(model, x_face)
        assert model.training, "the caller's train mode must be restored"
    finally:
        model.eval()
    assert hook_count(model) == 0


def test_a_failing_call_releases_its_hooks(default_model, x_face, hook_count):
    """The hooks go even when the forward pass raises half-way (a wrong input size here)."""
    with pytest.raises(RuntimeError):
        explain_cam(default_model, torch.zeros(1, 3, 48, 48))  # 3 channels into a 1-channel stem
    assert hook_count(default_model) == 0
    assert all(p.requires_grad for p in default_model.parameters())


def test_concurrent_predict_calls_do_not_disturb_cams(default_model, sample_fer_crops, hook_count):
    """Dashboard sessions share one model: CAMs in some threads, plain predictions in others."""
    x = crops_to_input(default_model, sample_fer_crops[:4])
    expected = [explain_cam(default_model, x[i : i + 1], i) for i in range(4)]
    with torch.inference_mode():
        expected_logits = default_model(x)
    errors: list[BaseException] = []
    results: dict[int, np.ndarray] = {}

    def cam_worker(i: int) -> None:
        try:
            for _ in range(3):
                results[i] = explain_cam(default_model, x[i : i + 1], i)
        except BaseException as exc:  # noqa: BLE001 - re-raised in the main thread
            errors.append(exc)

    def predict_worker() -> None:
        try:
            for _ in range(10):
                with torch.inference_mode():
                    torch.testing.assert_close(default_model(x), expected_logits)
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=cam_worker, args=(i,)) for i in range(4)]
    threads += [threading.Thread(target=predict_worker) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors[0]
    for i in range(4):
        np.testing.assert_allclose(results[i], expected[i], atol=1e-5)
    assert hook_count(default_model) == 0


def test_resize_to_the_aligned_crop_keeps_the_range(default_model, x_face, sample_face):
    m = explain_cam(default_model, x_face)[0]
    big = resize_maps(m, sample_face.output_size)
    assert big.shape == (224, 224) and big.dtype == np.float32
    assert big.min() >= m.min() and big.max() <= m.max()
    assert resize_maps(m[None], (30, 40)).shape == (1, 30, 40)


@pytest.mark.slow
def test_cam_on_the_transformer_variant_needs_no_hand_written_reshape(sample_face, hook_count):
    """hafem_compact's CAM layer emits (N, 49, 2048) tokens; the grid comes from the model's own reshape."""
    torch.manual_seed(0)
    model = create_model("hafem_compact").eval()
    assert model.cam_reshape_transform is tokens_to_grid
    seen: list[tuple[int, ...]] = []
    probe = model.cam_target_layers()[0].register_forward_hook(lambda m, i, o: seen.append(tuple(o.shape)))
    try:
        x = crops_to_input(model, [sample_face.image])
        with torch.inference_mode():
            res = compute_cam(model, x, method="gradcam")
    finally:
        probe.remove()
    assert seen and seen[0] == (1, 49, 2048), seen
    assert res.maps.shape == (1, 224, 224)
    assert 0.0 <= res.maps.min() and res.maps.max() <= 1.0
    assert res.maps.std() > 0.05, "the predicted class's Grad-CAM should not be blank"
    assert hook_count(model) == 0
    assert all(p.grad is None for p in model.parameters())


def test_cam_on_hafem_lite_maps_its_6x6_tokens_to_the_48px_crop(sample_face, hook_count):
    """hafem_lite's CAM layer is the encoder's final norm: (N, 36, 256) tokens, reshaped by the model's own rule."""
    from core.models.weights import SHIPPED_DIR, warm_start

    torch.manual_seed(0)
    model = create_model("hafem_lite")
    warm_start(model, SHIPPED_DIR / "fernet_s_fer2013.safetensors")
    model.eval()
    seen: list[tuple[int, ...]] = []
    probe = model.cam_target_layers()[0].register_forward_hook(lambda m, i, o: seen.append(tuple(o.shape)))
    try:
        res = compute_cam(model, crops_to_input(model, [sample_face.image]), method="gradcam")
    finally:
        probe.remove()
    assert seen[0] == (1, 36, 256)
    assert res.maps.shape == (1, 48, 48)
    assert res.maps.std() > 0.05, "the predicted class's Grad-CAM should not be blank"
    assert hook_count(model) == 0
