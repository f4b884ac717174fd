"""Deletion / insertion curves: exact endpoints, a model with a known answer, and Grad-CAM on real faces."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from core.explain import crops_to_input, explain_cam, faithfulness, make_baseline, perturbation_curves, random_maps


class _QuadrantModel(nn.Module):
    """logit_0 = mean of the top-left quadrant, logit_1 = 0: only that quadrant matters."""

    num_classes = 2

    def __init__(self) -> None:
        super().__init__()
        self.dummy = nn.Parameter(torch.zeros(1), requires_grad=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        s = x[..., : h // 2, : w // 2].mean(dim=(1, 2, 3))
        return torch.stack([s, torch.zeros_like(s)], 1)


def test_a_map_of_the_relevant_pixels_beats_random_maps_on_a_known_model():
    torch.manual_seed(0)
    x = torch.rand(3, 1, 16, 16) + 1.0  # positive pixels: removing them lowers logit 0
    good = np.zeros((3, 16, 16), np.float32)
    good[:, :8, :8] = 1.0
    kw = {"targets": 0, "baseline": 0.0, "output": "logit", "steps": 16}
    model = _QuadrantModel()
    deletion = perturbation_curves(model, x, good, mode="deletion", **kw)
    insertion = perturbation_curves(model, x, good, mode="insertion", **kw)
    rnd = random_maps(3, 16, 16, seed=1)
    assert np.all(deletion.auc < perturbation_curves(model, x, rnd, mode="deletion", **kw).auc)
    assert np.all(insertion.auc > perturbation_curves(model, x, rnd, mode="insertion", **kw).auc)
    # the quadrant is a quarter of the image: after 4 of 16 steps it is gone entirely
    np.testing.assert_allclose(deletion.scores[:, 4:], 0.0, atol=1e-6)
    np.testing.assert_allclose(insertion.scores[:, 4:], np.repeat(insertion.scores[:, -1:], 13, axis=1), atol=1e-6)


def test_curve_endpoints_are_the_input_and_the_baseline(default_model, sample_fer_crops):
    x = crops_to_input(default_model, sample_fer_crops[:3])
    maps = explain_cam(default_model, x)
    dele = perturbation_curves(default_model, x, maps, mode="deletion", steps=5)
    ins = perturbation_curves(default_model, x, maps, mode="insertion", steps=5)
    with torch.inference_mode():
        p_x = torch.softmax(default_model(x), 1)
        p_b = torch.softmax(default_model(make_baseline(x, "blur")), 1)
    idx = torch.from_numpy(dele.targets)[:, None]
    np.testing.assert_allclose(dele.scores[:, 0], p_x.gather(1, idx)[:, 0], atol=1e-6)
    np.testing.assert_allclose(dele.scores[:, -1], p_b.gather(1, idx)[:, 0], atol=1e-6)
    np.testing.assert_allclose(ins.scores[:, 0], dele.scores[:, -1], atol=1e-6)
    np.testing.assert_allclose(ins.scores[:, -1], dele.scores[:, 0], atol=1e-6)
    np.testing.assert_allclose(dele.fractions, np.linspace(0, 1, 6), atol=1e-3)  # whole pixels per step
    assert dele.scores.shape == (3, 6) and dele.auc.shape == (3,)
    with pytest.raises(ValueError, match="unknown mode"):
        perturbation_curves(default_model, x, maps, mode="sideways")


@pytest.mark.slow
def test_gradcam_deletes_faster_than_random_maps_on_the_sample_faces(trained_model, sample_fer_crops):
    """The acceptance check, on a model that learned something (see ``trained_model`` in conftest.py: a narrow
    ``default`` trained here on 2,000 real FER2013 rows, since no trained default weights are shipped yet; a
    random-init model would make the comparison meaningless). Nine or more faces from five sample photos,
    FER2013-framed; each explained for its predicted class; random reference = mean of 3 uniform maps."""
    x = crops_to_input(trained_model, sample_fer_crops)
    n, _, h, w = x.shape
    maps = explain_cam(trained_model, x, method="gradcam")
    cam = perturbation_curves(trained_model, x, maps, mode="deletion", steps=16).auc
    rnd = np.mean(
        [
            perturbation_curves(trained_model, x, random_maps(n, h, w, s), mode="deletion", steps=16).auc
            for s in range(3)
        ],
        axis=0,
    )
    assert cam.mean() < rnd.mean(), (cam, rnd)
    wins = np.mean(cam < rnd)
    assert wins >= 0.7, f"Grad-CAM beat random deletion on only {wins:.0%} of the faces: {cam} vs {rnd}"


def test_faithfulness_report_is_json_ready(default_model, sample_fer_crops):
    import json

    x = crops_to_input(default_model, sample_fer_crops[:2])
    res = faithfulness(default_model, x, explain_cam(default_model, x), n_random=1, steps=4)
    json.dumps(res)
    assert len(res["deletion_auc"]) == 2 and len(res["insertion_auc_random"]) == 2
    assert res["deletion_gain"] == pytest.approx(res["deletion_auc_random_mean"] - res["deletion_auc_mean"])


def test_random_maps_iid_or_smooth():
    iid = random_maps(2, 48, 48, seed=0)
    smooth = random_maps(2, 48, 48, seed=0, grid=6)
    assert iid.shape == smooth.shape == (2, 48, 48)
    assert 0.0 <= smooth.min() and smooth.max() <= 1.0
    step = lambda m: np.abs(np.diff(m, axis=-1)).mean()  # noqa: E731
    assert step(smooth) < 0.2 * step(iid)
    np.testing.assert_array_equal(random_maps(2, 48, 48, seed=0), iid)
    with pytest.raises(ValueError, match="grid"):
        random_maps(1, 8, 8, grid=0)
