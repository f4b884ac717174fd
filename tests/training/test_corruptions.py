"""Camera corruptions: each one checked against an independent implementation or property, seeded, and off at 0.

Oracles: scipy's Gaussian filter (blur), Pillow's JPEG codec (JPEG), numpy's ``gain * x**gamma`` (low light),
matrix rank (low resolution: bilinear upsampling of a k-px image has rank <= k), a measured residual std (noise).
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import math

import numpy as np
import pytest
import torch
from PIL import Image
from scipy import ndimage

from training.augment import (
    CORRUPTIONS,
    SEVERITY,
    BatchAugmenter,
    corrupt_blur,
    corrupt_jpeg,
    corrupt_low_light,
    corrupt_low_res,
    corrupt_noise,
    corrupt_occlusion,
    resolve,
)
from training.config import AugmentConfig, ConfigError, get_preset, validate_config

SEVERITIES = torch.tensor([0.0, 0.25, 0.5, 0.75, 1.0])


def _images(n: int, c: int, size: int, seed: int = 0, width: int | None = None) -> torch.Tensor:
    """Textured images away from 0 and 1, so clipping does not hide a change."""
    g = torch.Generator().manual_seed(seed)
    width = width or size
    ramp = torch.linspace(0.2, 0.8, width).view(1, 1, 1, width)
    return (0.5 * ramp + 0.4 * torch.rand(n, c, size, width, generator=g)).clamp(0.1, 0.9)


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _high_freq_energy(x: torch.Tensor) -> torch.Tensor:
    """Per-image spectral energy above a quarter of the Nyquist radius (DC and low frequencies excluded)."""
    spec = torch.fft.fftshift(torch.fft.fft2(x - x.mean(dim=(-2, -1), keepdim=True)), dim=(-2, -1)).abs() ** 2
    h, w = x.shape[-2:]
    fy = torch.arange(h) - h // 2
    fx = torch.arange(w) - w // 2
    radius = torch.sqrt(fy[:, None] ** 2 / (h / 2) ** 2 + fx[None, :] ** 2 / (w / 2) ** 2)
    return (spec * (radius > 0.25)).flatten(1).sum(1)


@pytest.mark.parametrize("name", list(CORRUPTIONS))
@pytest.mark.parametrize("shape", [(5, 1, 48, 48), (5, 3, 40, 56), (5, 1, 8, 8)])
def test_every_corruption_keeps_shape_dtype_range_and_changes_the_image(name, shape):
    x = _images(*shape[:3], width=shape[3])
    out = CORRUPTIONS[name](x, SEVERITIES, _gen())
    assert out.shape == x.shape and out.dtype == torch.float32
    assert out.min() >= 0 and out.max() <= 1
    changed = (out - x).abs().flatten(1).amax(1) > 1e-3
    if not (name == "blur" and shape[2] == 8):  # sigma is a fraction of the side: ~0.1 px at 8 px barely blurs
        assert changed.all(), (name, changed)


def test_noise_has_the_severity_std():
    x = torch.full((5, 1, 96, 96), 0.5)
    out = corrupt_noise(x, SEVERITIES, _gen())
    std = (out - x).flatten(1).std(1)
    lo, hi = SEVERITY["noise"]
    expected = lo + SEVERITIES * (hi - lo)
    assert torch.allclose(std, expected, rtol=0.05)
    assert (out - x).flatten(1).mean(1).abs().max() < 0.01


def test_blur_is_scipys_gaussian_filter_and_lowers_high_frequencies():
    x = _images(5, 1, 48)
    out = corrupt_blur(x, SEVERITIES, _gen())
    lo, hi = SEVERITY["blur"]
    for i, t in enumerate(SEVERITIES.tolist()):
        sigma = (lo + t * (hi - lo)) * 48
        ref = ndimage.gaussian_filter(x[i, 0].double().numpy(), sigma, mode="mirror", radius=math.ceil(3 * sigma))
        np.testing.assert_allclose(out[i, 0].numpy(), ref, atol=1e-5)
    hf_in, hf_out = _high_freq_energy(x), _high_freq_energy(out)
    assert (hf_out < 0.5 * hf_in).all()
    assert (hf_out[1:] < hf_out[:-1]).all()  # more severe, less detail


def test_low_light_is_gain_times_gamma_and_darker_with_severity():
    x = _images(5, 3, 32)
    out = corrupt_low_light(x, SEVERITIES, _gen())
    gain = np.linspace(*SEVERITY["low_light"], 5)
    gamma = np.linspace(1.2, 2.2, 5)
    ref = gain[:, None, None, None] * x.double().numpy() ** gamma[:, None, None, None]
    np.testing.assert_allclose(out.numpy(), ref, atol=1e-5)
    means = out.mean(dim=(1, 2, 3))
    assert (means < x.mean(dim=(1, 2, 3))).all() and (means[1:] < means[:-1]).all()


def test_jpeg_matches_pillows_codec_at_the_drawn_quality():
    x = _images(5, 1, 48)
    out = corrupt_jpeg(x, SEVERITIES, _gen())
    lo, hi = SEVERITY["jpeg"]
    errors = []
    for i, t in enumerate(SEVERITIES.tolist()):
        buf = io.BytesIO()
        Image.fromarray((x[i, 0] * 255).round().byte().numpy()).save(buf, "JPEG", quality=round(lo + t * (hi - lo)))
        ref = np.asarray(Image.open(buf), dtype=np.float32) / 255
        np.testing.assert_allclose(out[i, 0].numpy(), ref, atol=1.5 / 255)
        errors.append(float((out[i] - x[i]).abs().mean()))
    assert (np.diff(errors) > 0).all()  # lower quality, larger error
    assert out.min() >= 0 and out.max() <= 1


def test_jpeg_on_colour_stays_in_range_and_differs():
    x = _images(3, 3, 48)
    out = corrupt_jpeg(x, torch.tensor([0.0, 0.5, 1.0]), _gen())
    assert out.min() >= 0 and out.max() <= 1 and (out - x).abs().flatten(1).mean(1).min() > 0.01


def test_low_res_has_the_rank_of_the_small_image():
    x = _images(5, 1, 48)
    out = corrupt_low_res(x, SEVERITIES, _gen())
    lo, hi = SEVERITY["low_res"]
    for i, t in enumerate(SEVERITIES.tolist()):
        small = round((lo + t * (hi - lo)) * 48)
        assert torch.linalg.matrix_rank(x[i, 0].double()) == 48
        # upsampling is linear in rows and columns: out = U @ small_image @ V.T, so rank <= small side
        assert torch.linalg.matrix_rank(out[i, 0].double(), atol=1e-4) <= small
    assert (_high_freq_energy(out) < 0.3 * _high_freq_energy(x)).all()


def test_occlusion_sets_one_rectangle_to_one_gray_level():
    x = _images(5, 3, 48)
    out = corrupt_occlusion(x, SEVERITIES, _gen())
    lo, hi = SEVERITY["occlusion"]
    fills = set()
    for i, t in enumerate(SEVERITIES.tolist()):
        changed = (out[i] != x[i]).any(0)
        rows, cols = changed.any(1).nonzero().squeeze(1), changed.any(0).nonzero().squeeze(1)
        top, bottom, left, right = int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1
        box = out[i, :, top:bottom, left:right]
        assert torch.equal(out[i][:, ~changed], x[i][:, ~changed])
        assert (box == box.flatten()[0]).all()  # the whole bounding box is the fill: one contiguous patch
        area = (bottom - top) * (right - left) / 48**2
        target = lo + t * (hi - lo)
        assert abs(area - target) < 0.35 * target + 2 * 48 / 48**2
        fills.add(round(float(box.flatten()[0]), 4))
    assert len(fills) > 1  # the gray level is drawn, not a constant


@pytest.mark.parametrize("channels", [1, 3])
def test_augmenter_applies_one_corruption_per_selected_sample_uniformly(channels):
    cfg = AugmentConfig(**{op: 0.0 for op in ("hflip", "crop", "rotate", "jitter", "noise", "cutout", "mixup")})
    aug = BatchAugmenter(dataclasses.replace(cfg, corrupt=0.5), 32, 7)
    g = _gen(1)
    fired = total = 0
    counts = torch.zeros(len(CORRUPTIONS))
    for b in range(12):
        x = _images(64, channels, 32, seed=b)
        out, _ = aug(x, torch.zeros(64, dtype=torch.long), g)
        mask, family = aug.last_applied["corrupt"], aug.last_corruption
        assert torch.equal(mask, family >= 0)
        assert torch.equal(out[~mask], x[~mask])
        fired += int(mask.sum())
        total += 64
        counts += torch.bincount(family[mask], minlength=len(CORRUPTIONS))
    assert abs(fired / total - 0.5) <= 4.5 * math.sqrt(0.25 / total)
    share = counts / counts.sum()
    assert (share - 1 / len(CORRUPTIONS)).abs().max() <= 4.5 * math.sqrt((1 / 6) * (5 / 6) / counts.sum())


def test_corruption_is_determined_by_the_seed():
    aug = BatchAugmenter(get_preset("default_ferplus_robust").augment, 48, 8)
    x, y = _images(32, 1, 48), torch.zeros(32, dtype=torch.long)
    a, _ = aug(x, y, _gen(7))
    b, _ = aug(x, y, _gen(7))
    c, _ = aug(x, y, _gen(8))
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_strength_scales_probability_and_caps_severity():
    cfg = AugmentConfig(corrupt=0.5)
    assert resolve(cfg, 48).p["corrupt"] == 0.5 and resolve(cfg, 48).max_severity == 1.0
    half = resolve(dataclasses.replace(cfg, strength=0.5), 48)
    assert half.p["corrupt"] == 0.25 and half.max_severity == 0.5
    assert resolve(dataclasses.replace(cfg, strength=3.0), 48).p["corrupt"] == 1.0


# sha256 of three augmented batches per preset and shape, computed with the augmenter as it was before
# corruptions existed (commit 2ea3636), seed 123: corrupt=0 must reproduce them bit for bit.
BEFORE = {
    ("default", 1, 48): "d945aea73827c1a2a275765a2058cb520f0b8429bda543a658a96466b980f981",
    ("default", 3, 64): "c5aae08940c65d4bcb35400e79c88b8715fbb144bf1a3a4e4402e4c92726998b",
    ("hafem_paper", 1, 48): "efe8a7122d438f02502b727718409f6e8fbcb1626bb06220531ef3f6b17aebe4",
    ("hafem_paper", 3, 64): "102d064f6dd26a36cea11257b7a53a91504da63432ebcac8576b57952d1af9a5",
}


@pytest.mark.parametrize("key", list(BEFORE))
def test_corrupt_zero_gives_the_batches_of_before(key):
    preset, channels, size = key
    cfg = get_preset(preset).augment
    assert cfg.corrupt == 0.0
    aug = BatchAugmenter(cfg, size, 7)
    g = _gen(123)
    h = hashlib.sha256()
    for b in range(3):
        x = torch.rand(32, channels, size, size, generator=torch.Generator().manual_seed(b))
        out, targets = aug(x, torch.arange(32) % 7, g)
        h.update(out.numpy().tobytes())
        h.update(targets.float().numpy().tobytes())
    assert h.hexdigest() == BEFORE[key]


def test_robust_preset_is_default_ferplus_plus_corruptions():
    plain, robust = get_preset("default_ferplus"), get_preset("default_ferplus_robust")
    assert robust.augment == dataclasses.replace(plain.augment, corrupt=0.5)
    assert (robust.name, robust.out_dir) == ("default_ferplus_robust", "runs/default_ferplus_robust")
    same = dataclasses.replace(robust, name=plain.name, out_dir=plain.out_dir, augment=plain.augment)
    assert same == plain


def test_corrupt_probability_is_validated():
    bad = dataclasses.replace(get_preset("default"), augment=AugmentConfig(corrupt=1.5))
    with pytest.raises(ConfigError, match="augment.corrupt"):
        validate_config(bad)
