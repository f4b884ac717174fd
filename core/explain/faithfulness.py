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

from core.explain._common import Forward, as_batch, make_baseline, model_device, predicted_classes, scorer

log = logging.getLogger(__name__)

__all__ = ["Curves", "perturbation_curves", "random_maps", "faithfulness", "MODES"]

MODES: tuple[str, ...] = ("deletion", "insertion")


@dataclass(frozen=True)
class Curves:
    """Deletion or insertion curves for N maps.

    Attributes:
        mode: ``"deletion"`` or ``"insertion"``.
        fractions: ``(steps + 1,)`` fraction of pixels removed (deletion) or inserted (insertion).
        scores: ``(N, steps + 1)`` model output for the target after each step.
        auc: ``(N,)`` trapezoidal area under each curve over ``fractions`` in [0, 1].
        targets: ``(N,)`` classes scored.
    """

    mode: str
    fractions: np.ndarray
    scores: np.ndarray
    auc: np.ndarray
    targets: np.ndarray


def _orders(maps: np.ndarray, seed: int) -> np.ndarray:
    """Pixel indices of each map, most important first; ties in a seeded random order."""
    n = maps.shape[0]
    flat = maps.reshape(n, -1)
    rng = np.random.default_rng(seed)
    tiebreak = rng.random(flat.shape)
    return np.stack([np.lexsort((tiebreak[i], -flat[i])) for i in range(n)])


def _fit_maps(maps: np.ndarray, h: int, w: int) -> np.ndarray:
    arr = np.asarray(maps, dtype=np.float32)
    if arr.ndim == 2:
        arr = arr[None]
    if arr.ndim != 3:
        raise ValueError(f"maps must be (H, W) or (N, H, W), got shape {arr.shape}")
    if arr.shape[1:] != (h, w):
        from core.explain.cam import resize_maps

        arr = resize_maps(arr, (h, w))
    return arr


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
    """Deletion or insertion curves of ``maps`` on inputs ``x``.

    Args:
        model: a classifier.
        x: ``(N, C, H, W)`` normalised inputs (or one ``(C, H, W)``).
        maps: ``(N, h, w)`` attribution maps (any scale; resized to ``H, W`` if needed; only the order counts).
        targets: class per input (or one for all); ``None`` = the predicted class.
        mode: ``"deletion"`` (lower AUC = more faithful) or ``"insertion"`` (higher = more faithful).
        steps: the curve has ``steps + 1`` points, pixels moved in equal-count chunks.
        baseline: value of removed pixels: ``"blur"`` (default), ``"mean"``, a constant or a tensor.
        output: ``"prob"`` or ``"logit"``.
        batch_size: perturbed images per forward pass.
        seed: tie-breaking order.
        forward: optional faster path to the same model's logits (e.g. ``engine.predict_logits``).
    """
    if mode not in MODES:
        raise ValueError(f"unknown mode {mode!r}; choose one of {list(MODES)}")
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    x = as_batch(x).detach().to(model_device(model)).float()
    n, c, h, w = x.shape
    m = _fit_maps(maps, h, w)
    if len(m) != n:
        raise ValueError(f"{len(m)} maps for {n} inputs")
    tgt = (
        predicted_classes(model, x, forward=forward)
        if targets is None
        else np.broadcast_to(np.asarray(targets, np.int64), (n,))
    )
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
    from core.explain.cam import resize_maps

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
    """Deletion and insertion AUCs of ``maps`` next to those of ``n_random`` random maps, same inputs.

    ``random_grid`` picks the random reference (see :func:`random_maps`): ``None`` = i.i.d. pixels, ``k`` =
    smooth random blobs from a ``k x k`` grid (a fairer reference for insertion).

    Returns a JSON-ready dict: per-image and mean AUCs for the maps and for the random reference (averaged
    over the random draws), and the mean differences (``deletion_gain = random - map``: positive = better
    than random; ``insertion_gain = map - random``).
    """
    x = as_batch(x)
    n, _, h, w = x.shape
    fwd = kwargs.get("forward")
    tgt = (
        predicted_classes(model, x, forward=fwd)
        if targets is None
        else np.broadcast_to(np.asarray(targets, np.int64), (n,))
    )
    out: dict[str, float | list[float]] = {}
    for mode in MODES:
        ours = perturbation_curves(model, x, maps, tgt, mode=mode, steps=steps, **kwargs).auc
        rand = np.mean(
            [
                perturbation_curves(
                    model, x, random_maps(n, h, w, seed=s, grid=random_grid), tgt, mode=mode, steps=steps, **kwargs
                ).auc
                for s in range(n_random)
            ],
            axis=0,
        )
        out[f"{mode}_auc"] = ours.tolist()
        out[f"{mode}_auc_random"] = rand.tolist()
        out[f"{mode}_auc_mean"] = float(ours.mean())
        out[f"{mode}_auc_random_mean"] = float(rand.mean())
    out["deletion_gain"] = out["deletion_auc_random_mean"] - out["deletion_auc_mean"]
    out["insertion_gain"] = out["insertion_auc_mean"] - out["insertion_auc_random_mean"]
    return out
