"""The evaluation-only corruptions (high brightness, low contrast, rotation) against direct numpy / OpenCV
computations, and the training families left untouched by them."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from training.augment import (
    CORRUPTIONS,
    EVAL_CORRUPTIONS,
    SEVERITY,
    corrupt_high_brightness,
    corrupt_low_contrast,
    corrupt_rotation,
)


def _images(n: int, c: int = 1, size: int = 48, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    ramp = torch.linspace(0.2, 0.8, size).view(1, 1, 1, size)
    return (0.5 * ramp + 0.4 * torch.rand(n, c, size, size, generator=g)).clamp(0.1, 0.9)


T = torch.tensor([0.0, 0.5, 1.0, 1.0])


def test_training_draws_only_its_own_families():
    """Adding evaluation families must not change what ``augment.corrupt`` draws during training."""
    assert list(CORRUPTIONS) == ["noise", "blur", "low_light", "jpeg", "low_res", "occlusion"]
    assert list(EVAL_CORRUPTIONS)[: len(CORRUPTIONS)] == list(CORRUPTIONS)
    assert {"high_brightness", "low_contrast", "rotation"} <= set(EVAL_CORRUPTIONS)


def test_high_brightness_is_a_clipped_gain():
    x = _images(4)
    out = corrupt_high_brightness(x, T, torch.Generator().manual_seed(0)).numpy()
    lo, hi = SEVERITY["high_brightness"]
    for i, t in enumerate(T.tolist()):
        expected = np.clip(x[i].numpy() * (lo + t * (hi - lo)), 0, 1)
        np.testing.assert_allclose(out[i], expected, atol=1e-6)


@pytest.mark.parametrize("channels", [1, 3])
def test_low_contrast_blends_towards_the_mean_gray(channels):
    x = _images(4, channels)
    out = corrupt_low_contrast(x, T, torch.Generator().manual_seed(0)).numpy()
    lo, hi = SEVERITY["low_contrast"]
    for i, t in enumerate(T.tolist()):
        img = x[i].numpy()
        gray = img[0] if channels == 1 else cv2.cvtColor(np.moveaxis(img, 0, -1), cv2.COLOR_RGB2GRAY)
        f = lo + t * (hi - lo)
        expected = np.clip(f * img + (1 - f) * gray.mean(), 0, 1)
        np.testing.assert_allclose(out[i], expected, atol=2e-3)  # ITU-R 601 weights rounded differently
        assert out[i].std() < img.std()


def test_rotation_matches_opencv_at_the_severity_angle():
    """Each image equals OpenCV's bilinear rotation about the centre by +angle or -angle (sign drawn)."""
    x = _images(16, size=49)
    t = torch.linspace(0, 1, 16)
    out = corrupt_rotation(x, t, torch.Generator().manual_seed(3)).numpy()
    lo, hi = SEVERITY["rotation"]
    inner = (slice(8, -8), slice(8, -8))  # away from the zero-filled corners and the border convention
    signs = set()
    for i, ti in enumerate(t.tolist()):
        img = x[i, 0].numpy()
        angle = lo + ti * (hi - lo)
        errs = {}
        for sign in (1, -1):
            m = cv2.getRotationMatrix2D((24.0, 24.0), sign * angle, 1.0)
            ref = cv2.warpAffine(img, m, (49, 49), flags=cv2.INTER_LINEAR, borderValue=0)
            errs[sign] = float(np.abs(out[i, 0][inner] - ref[inner]).mean())
        best = min(errs, key=errs.get)
        assert errs[best] < 0.01 < errs[-best], errs
        signs.add(best)
    assert signs == {1, -1}  # both directions drawn (all one sign: chance 2**-15)


def test_each_evaluation_corruption_is_seeded():
    x = _images(5, 3)
    for name, fn in EVAL_CORRUPTIONS.items():
        a = fn(x, torch.full((5,), 0.7), torch.Generator().manual_seed(1))
        b = fn(x, torch.full((5,), 0.7), torch.Generator().manual_seed(1))
        assert torch.equal(a, b), name
        assert a.shape == x.shape and a.min() >= 0 and a.max() <= 1, name
