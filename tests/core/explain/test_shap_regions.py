"""AU-region SHAP: efficiency on a real face, exactness on games with known values, sampling, errors."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch
from torch import nn

from core.explain import crops_to_input, make_baseline, region_masks_for, region_shap, region_value_map
from core.explain.shap_regions import REST, shapley_exact


@pytest.fixture(scope="module")
def face_input(trained_model, sample_face):
    x = crops_to_input(trained_model, [sample_face.image])
    masks = region_masks_for(sample_face, trained_model.spec.input_size)
    return x, masks


def test_exact_values_add_up_to_f_x_minus_f_baseline_on_a_real_face(trained_model, face_input):
    x, masks = face_input
    assert list(masks) == ["brows", "eyes", "cheeks", "nose", "nasolabial", "lip_corners", "lips", "jaw", "chin"]
    res = region_shap(trained_model, x, masks, baseline="blur")
    # overlapping regions: coalitions hiding the same pixels are one input, scored once
    assert res.exact and 256 < res.n_evals < 2 ** len(masks)
    assert res.names == tuple(masks)
    assert abs(res.values.sum() - (res.f_x - res.f_baseline)) < 1e-9
    # f(x) and f(baseline) are what the model says on the face and on the face with every region blurred
    with torch.inference_mode():
        probs = torch.softmax(trained_model(x), 1)[0]
        assert res.target == int(probs.argmax())
        assert res.f_x == pytest.approx(float(probs[res.target]), abs=1e-6)
        union = torch.from_numpy(np.any(list(masks.values()), axis=0))
        hidden = torch.where(union, make_baseline(x, "blur"), x)
        assert res.f_baseline == pytest.approx(float(torch.softmax(trained_model(hidden), 1)[0, res.target]), abs=1e-6)
    assert np.abs(res.values).max() > 1e-4, "a trained model should care about some region"


def test_rest_player_makes_the_baseline_the_fully_masked_crop(trained_model, face_input):
    x, masks = face_input
    res = region_shap(trained_model, x, masks, target=3, baseline="mean", rest=True, max_evals=1024, output="logit")
    assert res.names[-1] == REST and res.exact
    assert abs(res.values.sum() - (res.f_x - res.f_baseline)) < 1e-6
    with torch.inference_mode():
        assert res.f_baseline == pytest.approx(float(trained_model(make_baseline(x, "mean"))[0, 3]), abs=1e-4)


def test_sampled_values_keep_efficiency_within_the_budget(trained_model, face_input):
    x, masks = face_input
    res = region_shap(trained_model, x, masks, max_evals=100, seed=1)
    assert not res.exact and res.n_evals <= 100
    assert abs(res.values.sum() - (res.f_x - res.f_baseline)) < 1e-9
    assert np.all(np.isfinite(res.stderr)) and np.all(res.stderr >= 0)
    again = region_shap(trained_model, x, masks, max_evals=100, seed=1)
    np.testing.assert_array_equal(res.values, again.values)


def _brute_force_shapley(v, n: int) -> np.ndarray:
    """Average marginal contribution over all n! orders."""
    phi = np.zeros(n)
    for order in itertools.permutations(range(n)):
        code = 0
        for i in order:
            phi[i] += v(code | (1 << i)) - v(code)
            code |= 1 << i
    return phi / math.factorial(n)


def test_exact_formula_matches_brute_force_on_a_non_additive_game():
    rng = np.random.default_rng(0)
    n = 5
    w = rng.normal(size=n)

    def v(code: int) -> float:
        s = sum(w[i] for i in range(n) if code >> i & 1)
        return s**2 + (1.0 if code & 0b11 == 0b11 else 0.0)  # squares and a pair interaction

    table = np.array([v(c) for c in range(1 << n)])
    np.testing.assert_allclose(shapley_exact(table, n), _brute_force_shapley(v, n), atol=1e-12)


class _LinearLogit(nn.Module):
    """logit_0 = sum(W * x), logit_1 = 0: an additive model whose region Shapley values are known exactly."""

    num_classes = 2

    def __init__(self, weight: torch.Tensor) -> None:
        super().__init__()
        self.weight = nn.Parameter(weight, requires_grad=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = (x * self.weight).flatten(1).sum(1)
        return torch.stack([s, torch.zeros_like(s)], 1)


def test_exact_and_sampled_recover_known_values_of_an_additive_model():
    torch.manual_seed(0)
    h = w = 12
    model = _LinearLogit(torch.randn(1, 1, h, w))
    x = torch.randn(1, 1, h, w)
    masks = {f"r{k}": np.zeros((h, w), bool) for k in range(6)}
    for k, m in enumerate(masks.values()):
        m[2 * k : 2 * k + 2, :] = True  # six disjoint bands; rows 0-11 all covered
    base = make_baseline(x, 0.0)
    truth = np.array([float((model.weight * (x - base))[0, 0][m].sum()) for m in map(torch.from_numpy, masks.values())])
    exact = region_shap(model, x, masks, target=0, baseline=0.0, output="logit")
    sampled = region_shap(model, x, masks, target=0, baseline=0.0, output="logit", max_evals=20)
    assert exact.exact and not sampled.exact
    assert exact.n_evals == 2**6, "disjoint regions: every coalition is a different input"
    np.testing.assert_allclose(exact.values, truth, atol=1e-5)
    np.testing.assert_allclose(sampled.values, truth, atol=1e-5)  # additive game: every permutation is exact


def test_pixel_map_density_integrates_to_the_values(trained_model, face_input):
    x, masks = face_input
    res = region_shap(trained_model, x, masks, max_evals=64)
    dens = res.pixel_map(per_area=True)
    assert dens.shape == x.shape[-2:] and dens.dtype == np.float32
    assert dens.sum() == pytest.approx(res.values.sum(), abs=1e-5)
    paint = res.pixel_map(per_area=False)
    only = ~np.any([m for k, m in masks.items() if k != "chin"], axis=0) & masks["chin"]
    assert np.allclose(paint[only], res.as_dict()["chin"], atol=1e-6)
    assert np.all(paint[~np.any(list(masks.values()), axis=0)] == 0)
    with pytest.raises(ValueError):
        region_value_map(np.zeros(2), np.zeros((3, 4, 4), bool))


def test_bad_inputs_are_refused_with_a_reason(trained_model, face_input):
    x, masks = face_input
    with pytest.raises(ValueError, match="one face at a time"):
        region_shap(trained_model, x.repeat(2, 1, 1, 1), masks)
    with pytest.raises(ValueError, match="resize the masks"):
        region_shap(trained_model, x, {"brows": np.ones((10, 10), bool)})
    with pytest.raises(ValueError, match="empty"):
        region_shap(trained_model, x, {"brows": np.zeros(x.shape[-2:], bool)})
    with pytest.raises(ValueError, match="target class indices"):
        region_shap(trained_model, x, masks, target=trained_model.num_classes)
    with pytest.raises(ValueError, match="unknown baseline"):
        region_shap(trained_model, x, masks, baseline="zeros")


def test_a_forward_function_gives_the_same_values_and_counts_every_evaluation(trained_model, face_input):
    """``forward`` (e.g. the engine's ONNX path) replaces the model's forward; n_evals is what was spent."""
    x, masks = face_input
    fed: list[int] = []

    def forward(batch: torch.Tensor) -> np.ndarray:
        fed.append(batch.shape[0])
        with torch.inference_mode():
            return trained_model(batch).numpy()

    for budget in (512, 100):
        fed.clear()
        via_fn = region_shap(trained_model, x, masks, target=2, max_evals=budget, forward=forward)
        direct = region_shap(trained_model, x, masks, target=2, max_evals=budget)
        np.testing.assert_allclose(via_fn.values, direct.values, atol=1e-7)
        assert sum(fed) == via_fn.n_evals <= budget
