"""Each augmentation fires at its probability and does what it says; oversampling balances classes."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import torch

from core.models.base import ModelSpec
from training.augment import OPS, BatchAugmenter, color_jitter, cutout, resolve
from training.config import AugmentConfig
from training.datasets import FaceSet
from training.loader import BatchLoader

PAPER = AugmentConfig()
PER_SAMPLE = ("hflip", "crop", "rotate", "jitter", "noise", "cutout")


def only(op: str, **kw) -> AugmentConfig:
    """The paper's config with every other op switched off."""
    off = {o: 0.0 for o in OPS if o != op}
    return dataclasses.replace(PAPER, **off, **kw)


def within(rate: float, p: float, n: int) -> bool:
    """|rate - p| under 4.5 binomial standard errors: a false alarm about once in 150,000 runs."""
    return abs(rate - p) <= 4.5 * math.sqrt(p * (1 - p) / n) + 1e-12


def _images(n: int, c: int, size: int, seed: int = 0) -> torch.Tensor:
    """Asymmetric, non-constant images away from 0 and 1, so every op visibly changes them."""
    g = torch.Generator().manual_seed(seed)
    ramp = torch.linspace(0.15, 0.85, size).view(1, 1, 1, size)
    return (0.5 * ramp + 0.3 * torch.rand(n, c, size, size, generator=g)).clamp(0.1, 0.9)


@pytest.mark.parametrize("op", PER_SAMPLE)
@pytest.mark.parametrize("channels", [1, 3])
def test_op_fires_at_its_probability_and_only_there(op, channels):
    size, n_batches, batch = 64, 10, 128
    aug = BatchAugmenter(only(op), size, 7)
    p = getattr(PAPER, op)
    g = torch.Generator().manual_seed(1)
    fired = changed_outside = unchanged_inside = total = 0
    for b in range(n_batches):
        x = _images(batch, channels, size, seed=b)
        y = torch.randint(0, 7, (batch,), generator=g)
        out, out_y = aug(x, y, g)
        mask = aug.last_applied[op]
        diff = (out - x).abs().flatten(1).amax(1) > 1e-6
        fired += int(mask.sum())
        changed_outside += int((diff & ~mask).sum())
        unchanged_inside += int((~diff & mask).sum())
        total += batch
        assert out.shape == x.shape and torch.equal(out_y, y)  # no mixup: hard targets untouched
        assert out.min() >= 0 and out.max() <= 1
    assert within(fired / total, p, total), (op, fired / total, p)
    assert changed_outside == 0
    # a crop at offset (pad, pad) is the identity: probability 1/(2*pad+1)^2 per fired sample
    allowed = 0 if op != "crop" else 6 * fired / (2 * resolve(PAPER, size).crop_padding + 1) ** 2 + 3
    if op == "jitter" and channels == 1:
        allowed = 0.02 * fired  # brightness/contrast factors can both land on ~1
    assert unchanged_inside <= allowed, (op, unchanged_inside)


def test_mixup_fires_per_batch_and_gives_soft_targets():
    aug = BatchAugmenter(only("mixup"), 32, 7)
    g = torch.Generator().manual_seed(2)
    x = _images(8, 1, 32)
    y = torch.arange(8) % 7
    fires = 0
    n = 400
    for _ in range(n):
        out, t = aug(x, y, g)
        if bool(aug.last_applied["mixup"]):
            fires += 1
            assert t.shape == (8, 7) and torch.allclose(t.sum(1), torch.ones(8))
            assert not torch.equal(out, x)
        else:
            assert torch.equal(t, y) and torch.equal(out, x)
    assert within(fires / n, 0.4, n)


def test_sizes_scale_with_input_and_strength():
    r224, r48 = resolve(PAPER, 224), resolve(PAPER, 48)
    assert (r224.cutout_size, r224.crop_padding) == (32, 10)
    assert (r48.cutout_size, r48.crop_padding) == (7, 2)  # round(32 * 48/224), round(10 * 48/224)
    strong = resolve(dataclasses.replace(PAPER, strength=2.0), 224)
    assert strong.p["hflip"] == 1.0 and strong.p["rotate"] == pytest.approx(0.6) and strong.degrees == 30
    off = BatchAugmenter(dataclasses.replace(PAPER, strength=0.0), 48, 7)
    x, y = _images(32, 1, 48), torch.zeros(32, dtype=torch.long)
    out, t = off(x, y, torch.Generator().manual_seed(0))
    assert torch.equal(out, x) and torch.equal(t, y)


def test_cutout_hides_a_scaled_square():
    x = torch.ones(4, 1, 48, 48)
    out = cutout(x, 7, torch.Generator().manual_seed(0))
    zeros = (out == 0).flatten(1).sum(1)
    assert (zeros <= 49).all() and (zeros >= 1).all()


def test_hue_and_saturation_act_on_colour_only():
    g = torch.Generator().manual_seed(0)
    gray = torch.full((2, 3, 8, 8), 0.5)
    out = color_jitter(gray, 0.0, 0.0, 0.5, 0.4, g)
    assert torch.allclose(out, gray, atol=1e-5)  # a gray image has no saturation or hue to change
    colour = torch.rand(2, 3, 8, 8, generator=g)
    assert not torch.allclose(color_jitter(colour, 0.0, 0.0, 0.0, 0.4, g), colour, atol=1e-3)


def test_same_seed_same_batch():
    aug = BatchAugmenter(PAPER, 48, 7)
    x, y = _images(32, 1, 48), torch.arange(32) % 7
    a = aug(x, y, torch.Generator().manual_seed(5))
    b = aug(x, y, torch.Generator().manual_seed(5))
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])


def _toy_set(counts: list[int]) -> FaceSet:
    labels = np.repeat(np.arange(len(counts)), counts)
    return FaceSet(
        images=np.zeros((len(labels), 8, 8), np.uint8),
        targets=labels.copy(),
        labels=labels,
        ids=np.arange(len(labels)),
        class_names=("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"),
        split="train",
        source="toy",
    )


def test_balanced_sampler_oversamples_rare_classes():
    fs = _toy_set([400, 20, 100, 800, 50, 30, 100])
    spec = ModelSpec(name="toy", input_size=8, in_chans=1, mean=(0.5,), std=(0.25,))
    seen = np.zeros(7)
    for epoch in range(4):
        loader = BatchLoader(fs, spec, 50, train=True, sampler="balanced", seed=0)
        loader.set_epoch(epoch)
        seen += np.bincount(fs.labels[loader.indices().numpy()], minlength=7)
    share = seen / seen.sum()
    assert np.all(np.abs(share - 1 / 7) < 0.03), share  # DCRNet: every class equally often
    plain = BatchLoader(fs, spec, 50, train=True, sampler="random", seed=0)
    assert sorted(plain.indices().tolist()) == list(range(len(fs)))  # a permutation: each image once


def test_ddp_shards_cover_the_epoch_once():
    fs = _toy_set([7, 3, 5, 9, 2, 4, 1])
    spec = ModelSpec(name="toy", input_size=8, in_chans=1, mean=(0.5,), std=(0.25,))
    shards = [BatchLoader(fs, spec, 2, train=True, seed=3, rank=r, world_size=3).indices() for r in range(3)]
    assert len({len(s) for s in shards}) == 1
    assert set(torch.cat(shards).tolist()) == set(range(len(fs)))
