"""Pixel-level SHAP with shap's Partition explainer and ``shap.maskers.Image``: the slow, model-agnostic
cross-check of Grad-CAM (inputs and outputs only, no hooks or gradients).

Maskers: ``"blur"`` (a box matching the Gaussian the other perturbation methods use), ``"blur(kx,ky)"``,
``"inpaint_telea"`` / ``"inpaint_ns"``. Images go to shap in pixel units (inpainting needs uint8); the wrapped
model normalises them with the model's mean and std.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from core.explain._common import Forward, as_batch, scorer, targets_or_predicted

log = logging.getLogger(__name__)

__all__ = ["PixelShapResult", "pixel_shap", "PIXEL_MASKERS", "masker_value"]

PIXEL_MASKERS: tuple[str, ...] = ("blur", "blur(kx,ky)", "inpaint_telea", "inpaint_ns")


@dataclass(frozen=True)
class PixelShapResult:
    """Owen values of the pixels of one face for one class: ``values`` ``(H, W)`` float32 summed over channels,
    ``base_value`` and ``f_x`` the model's output on the fully masked and on the unmasked image."""

    values: np.ndarray
    base_value: float
    f_x: float
    target: int
    max_evals: int
    masker: str


def masker_value(masker: str, size: int) -> str:
    """shap's ``mask_value`` string for one of :data:`PIXEL_MASKERS` at image side ``size``."""
    if masker == "blur":
        k = max(3, int(round(0.43 * size)))
        return f"blur({k},{k})"
    if masker in ("inpaint_telea", "inpaint_ns"):
        return masker
    if masker.startswith("blur(") and masker.endswith(")"):
        parts = masker[5:-1].split(",")
        if len(parts) == 2 and all(p.strip().isdigit() and int(p) > 0 for p in parts):
            return masker
    raise ValueError(f"unknown pixel masker {masker!r}; choose one of {list(PIXEL_MASKERS)}")


def _norm_stats(model: nn.Module, channels: int) -> tuple[np.ndarray, np.ndarray]:
    spec = getattr(model, "spec", None)
    if spec is None:
        raise ValueError("pixel_shap needs a ferlens model (its spec gives the normalisation); got no .spec")
    mean = np.asarray(spec.mean, np.float32).reshape(-1)
    std = np.asarray(spec.std, np.float32).reshape(-1)
    if len(mean) == 3 and channels == 1:  # an RGB statistic for a gray model: its channel average
        mean, std = mean.mean(keepdims=True), std.mean(keepdims=True)
    return np.broadcast_to(mean, (channels,)).copy(), np.broadcast_to(std, (channels,)).copy()


def pixel_shap(
    model: nn.Module,
    x: torch.Tensor,
    target: int | None = None,
    *,
    masker: str = "blur",
    max_evals: int = 500,
    batch_size: int = 64,
    output: str = "prob",
    forward: Forward | None = None,
) -> PixelShapResult:
    """Pixel SHAP map of one normalised input ``x`` for ``target`` (None = the predicted class).

    ``model`` must be a ferlens model (its ``spec`` mean and std undo and redo the normalisation); ``max_evals``
    (>= 3) goes to shap's Partition explainer, the map gets finer with more. ``values.sum()`` is
    ``f_x - base_value`` (Owen values are efficient).
    """
    import shap  # heavy import (numba): only when pixel SHAP is asked for

    x = as_batch(x)
    if x.shape[0] != 1:
        raise ValueError(f"pixel_shap explains one face at a time, got a batch of {x.shape[0]}")
    if max_evals < 3:
        raise ValueError(f"max_evals must be >= 3, got {max_evals}")
    c, h, w = x.shape[1:]
    mean, std = _norm_stats(model, c)
    x = x.detach().float().cpu()
    pixels = np.rint((x[0].permute(1, 2, 0).numpy() * std + mean) * 255.0).clip(0, 255).astype(np.float32)
    tgt = int(targets_or_predicted(model, x, target, forward)[0])
    score = scorer(model, output=output, batch_size=batch_size, forward=forward)
    t_mean = torch.from_numpy(mean).view(1, c, 1, 1)
    t_std = torch.from_numpy(std).view(1, c, 1, 1)

    def f(images: np.ndarray) -> np.ndarray:
        batch = torch.from_numpy(np.ascontiguousarray(images, dtype=np.float32)).reshape(-1, h, w, c)
        batch = (batch.permute(0, 3, 1, 2) / 255.0 - t_mean) / t_std
        return score(batch, tgt)

    mask_value = masker_value(masker, min(h, w))
    explainer = shap.Explainer(f, shap.maskers.Image(mask_value, (h, w, c)), algorithm="partition")
    expl = explainer(pixels[None], max_evals=max_evals, batch_size=batch_size, silent=True)
    values = np.asarray(expl.values[0], dtype=np.float64).reshape(h, w, c).sum(axis=2)
    base = float(np.asarray(expl.base_values).reshape(-1)[0])
    f_x = float(f(pixels[None])[0])
    log.debug("pixel_shap: target %d, %s, %d evals, gap %.3g", tgt, mask_value, max_evals, values.sum() - f_x + base)
    return PixelShapResult(values.astype(np.float32), base, f_x, tgt, int(max_evals), mask_value)
