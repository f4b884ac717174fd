"""Deletion and insertion curves (Petsiuk et al., RISE, BMVC 2018): does removing what a map calls important
change the prediction?

A faithful map makes the target probability fall fast under deletion (small AUC) and rise fast under insertion
(large AUC); :func:`faithfulness` reports them beside :func:`random_maps`' on the same images. Removed pixels
take a blurred baseline, not black, which is out of distribution and flatters any map.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from core.explain._common import Forward, as_batch, make_baseline, model_device, scorer, targets_or_predicted
from core.explain.cam import resize_maps

log = logging.getLogger(__name__)

__all__ = ["Curves", "perturbation_curves", "random_maps", "faithfulness", "MODES"]

MODES: tuple[str, ...] = ("deletion", "insertion")


@dataclass(frozen=True)
class Curves:
    """Deletion or insertion curves for N maps: ``scores`` ``(N, steps + 1)`` is the target's output after moving
    ``fractions`` of the pixels; ``auc`` ``(N,)`` the trapezoidal area under each curve."""

    mode: str
    fractions: np.ndarray
    scores: np.ndarray
    auc: np.ndarray
    targets: np.ndarray


def _orders(maps: np.ndarray, seed: int) -> np.ndarray:
    """Pixel indices of each map, most important first; ties in a seeded random order."""
    flat = maps.reshape(len(maps), -1)
    return np.lexsort((np.random.default_rng(seed).random(flat.shape), -flat))  # row by row (axis=-1)


def perturbation_curves(
    model: nn.Module,
    x: torch.Tensor,
    maps: np.ndarray,
    targets: int | np.ndarray | None = None,
    *,
    mode: str = "deletion",
    steps: int = 20,
    baseline: str | float | torch.Tensor = "blur",
    blur_sigma: float | None = None,
    output: str = "prob",
    batch_size: int = 64,
    seed: int = 0,
    forward: Forward | None = None,
) -> Curves:
    """Deletion (lower AUC = more faithful) or insertion (higher = more faithful) curves of ``maps`` on ``x``.

    ``maps`` ``(N, h, w)`` may have any scale and size (only the pixel order counts); ``targets`` None = the
    predicted classes; pixels move in ``steps`` equal-count chunks, ties in ``seed``'s order; ``baseline`` is as
    :func:`~core.explain.make_baseline`'s; ``forward``: a faster path to the same logits (``engine.predict_logits``).
    """
    if mode not in MODES:
        raise ValueError(f"unknown mode {mode!r}; choose one of {list(MODES)}")
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    x = as_batch(x).detach().to(model_device(model)).float()
    n, c, h, w = x.shape
    m = resize_maps(maps, (h, w)).reshape(-1, h, w)
    if len(m) != n:
        raise ValueError(f"{len(m)} maps for {n} inputs")
    tgt = targets_or_predicted(model, x, targets, forward)
    base = make_baseline(x, baseline, blur_sigma)
    order = torch.from_numpy(_orders(m, seed))
    counts = np.round(np.linspace(0, h * w, steps + 1)).astype(np.int64)
    score = scorer(model, output=output, batch_size=batch_size, forward=forward)
    scores = np.empty((n, steps + 1))
    # rank of each pixel in the order: pixel p is "moved" at step k iff rank[p] < counts[k]
    ranks = torch.empty_like(order)
    ranks.scatter_(1, order, torch.arange(h * w).expand(n, -1).contiguous())
    thresholds = torch.from_numpy(counts).view(-1, 1, 1, 1)  # (S, 1, 1, 1)
    for i in range(n):
        moved = (ranks[i].view(1, 1, h, w) < thresholds).to(x.device)  # (S, 1, H, W)
        src, dst = (x[i : i + 1], base[i : i + 1]) if mode == "deletion" else (base[i : i + 1], x[i : i + 1])
        batch = torch.where(moved, dst, src)
        scores[i] = score(batch, int(tgt[i]))
    fractions = counts / float(h * w)
    auc = np.trapezoid(scores, fractions, axis=1)
    return Curves(mode, fractions, scores, auc, np.asarray(tgt, dtype=np.int64).copy())


def random_maps(n: int, h: int, w: int, seed: int = 0, grid: int | None = None) -> np.ndarray:
    """``(n, h, w)`` uniform random maps: the no-knowledge reference for deletion/insertion.

    ``grid=None``: i.i.d. per pixel. ``grid=k``: uniform noise on a ``k x k`` grid upsampled bilinearly, i.e.
    random *blobs* as smooth as a CAM from a ``k x k`` feature map. The distinction matters for insertion: adding
    i.i.d. random pixels to a blurred face restores its coarse appearance everywhere at once, which makes
    scattered random maps a strong (unfair) insertion reference for any spatially coherent map.
    """
    rng = np.random.default_rng(seed)
    if grid is None:
        return rng.random((n, h, w)).astype(np.float32)
    if grid < 1:
        raise ValueError(f"grid must be >= 1, got {grid}")
    return resize_maps(rng.random((n, grid, grid)).astype(np.float32), (h, w))


def faithfulness(
    model: nn.Module,
    x: torch.Tensor,
    maps: np.ndarray,
    targets: int | np.ndarray | None = None,
    *,
    n_random: int = 3,
    steps: int = 20,
    random_grid: int | None = None,
    **kwargs,
) -> dict[str, float | list[float]]:
    """Deletion and insertion AUCs of ``maps`` beside the mean over ``n_random`` random maps (``random_grid``: see
    :func:`random_maps`) on the same inputs, as a JSON-ready dict: per-image and mean AUCs, and the mean gains over
    random (``deletion_gain = random - map``, ``insertion_gain = map - random``: positive = better than random)."""
    x = as_batch(x)
    n, _, h, w = x.shape
    tgt = targets_or_predicted(model, x, targets, kwargs.get("forward"))

    def auc(m: np.ndarray, mode: str) -> np.ndarray:
        return perturbation_curves(model, x, m, tgt, mode=mode, steps=steps, **kwargs).auc

    out: dict[str, float | list[float]] = {}
    for mode in MODES:
        ours = auc(maps, mode)
        rand = np.mean([auc(random_maps(n, h, w, seed=s, grid=random_grid), mode) for s in range(n_random)], axis=0)
        out[f"{mode}_auc"] = ours.tolist()
        out[f"{mode}_auc_random"] = rand.tolist()
        out[f"{mode}_auc_mean"] = float(ours.mean())
        out[f"{mode}_auc_random_mean"] = float(rand.mean())
    out["deletion_gain"] = out["deletion_auc_random_mean"] - out["deletion_auc_mean"]
    out["insertion_gain"] = out["insertion_auc_mean"] - out["insertion_auc_random_mean"]
    return out
