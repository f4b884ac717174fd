"""What the perturbation explainers share: baselines ("what a hidden pixel becomes") and batched scoring.

One implementation for region SHAP, pixel SHAP and deletion/insertion, so that a deletion curve and a SHAP value
computed with the same baseline measure the same thing. Baselines live in the model's normalised input space: blur
and the image mean are linear, so blurring the normalised tensor equals normalising the blurred pixels.
"""

from __future__ import annotations

import contextlib
import logging
import math
from collections.abc import Callable, Iterator, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

log = logging.getLogger(__name__)

BASELINES: tuple[str, ...] = ("blur", "mean")
"""Named baselines: ``blur`` (Gaussian, sigma = size / 8: expression detail gone, coarse shading kept) and
``mean`` (each channel's mean over the image: all structure gone)."""

OUTPUTS: tuple[str, ...] = ("prob", "logit")


def gaussian_blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur of ``(N, C, H, W)`` with replicate padding (any sigma, any image size)."""
    if sigma <= 0:
        return x.clone()
    radius = max(1, int(math.ceil(3.0 * sigma)))
    t = torch.arange(-radius, radius + 1, dtype=x.dtype, device=x.device)
    k = torch.exp(-0.5 * (t / sigma) ** 2)
    k = k / k.sum()
    c = x.shape[1]
    kx = k.view(1, 1, 1, -1).repeat(c, 1, 1, 1)
    ky = k.view(1, 1, -1, 1).repeat(c, 1, 1, 1)
    y = F.pad(x, (radius, radius, 0, 0), mode="replicate")
    y = F.conv2d(y, kx, groups=c)
    y = F.pad(y, (0, 0, radius, radius), mode="replicate")
    return F.conv2d(y, ky, groups=c)


def make_baseline(x: torch.Tensor, kind: str | float | torch.Tensor = "blur", sigma: float | None = None):
    """The "removed" version of each normalised input, like ``x``. ``kind``: ``"blur"`` (``sigma`` in pixels,
    default ``H / 8``), ``"mean"``, a constant in normalised units (0 = the training mean) or a tensor broadcastable
    to ``x``."""
    if isinstance(kind, torch.Tensor):
        return kind.to(x).expand_as(x).clone()
    if isinstance(kind, int | float):
        return torch.full_like(x, float(kind))
    if kind == "blur":
        return gaussian_blur(x, sigma if sigma is not None else x.shape[-2] / 8.0)
    if kind == "mean":
        return x.mean(dim=(2, 3), keepdim=True).expand_as(x).clone()
    raise ValueError(f"unknown baseline {kind!r}; choose one of {list(BASELINES)}, a number or a tensor")


@contextlib.contextmanager
def eval_mode(model: nn.Module) -> Iterator[None]:
    """Eval mode for the duration, the caller's mode restored afterwards."""
    was = model.training
    model.eval()
    try:
        yield
    finally:
        model.train(was)


def model_device(model: nn.Module) -> torch.device:
    return next(model.parameters()).device


Forward = Callable[[torch.Tensor], "torch.Tensor | np.ndarray"]
"""A batch of normalised inputs -> logits, e.g. ``InferenceEngine.predict_logits`` (which runs ONNX Runtime
when that backend is on). Perturbation explainers only need outputs, so they can use the fastest path."""


def logits_fn(model: nn.Module, forward: Forward | None = None, batch_size: int = 64):
    """``f(xs) -> (M, C)`` float32 CPU logits, ``batch_size`` inputs per call, through ``forward`` if given,
    else through ``model`` under ``inference_mode`` in eval mode (the caller's mode restored)."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")

    def run(xs: torch.Tensor) -> torch.Tensor:
        chunks = []
        if forward is not None:
            for s in range(0, xs.shape[0], batch_size):
                out = forward(xs[s : s + batch_size])
                chunks.append(torch.as_tensor(np.asarray(out) if not isinstance(out, torch.Tensor) else out))
            return torch.cat(chunks).float().cpu()
        param = next(model.parameters())  # inputs take its dtype: fp16/bf16 when the engine converted the model
        with torch.inference_mode(), eval_mode(model):
            for s in range(0, xs.shape[0], batch_size):
                chunks.append(model(xs[s : s + batch_size].to(param)).float().cpu())
        return torch.cat(chunks)

    return run


def scorer(
    model: nn.Module, output: str = "prob", batch_size: int = 64, forward: Forward | None = None
) -> Callable[[torch.Tensor, np.ndarray | int], np.ndarray]:
    """``score(xs, targets)`` -> ``(M,)`` float64 output for class ``targets`` on each input: the softmax
    probability (``"prob"``: bounded, what the dashboard shows) or the raw logit (additive, unbounded)."""
    if output not in OUTPUTS:
        raise ValueError(f"unknown output {output!r}; choose one of {list(OUTPUTS)}")
    run = logits_fn(model, forward, batch_size)

    def score(xs: torch.Tensor, targets: np.ndarray | int) -> np.ndarray:
        tgt = torch.from_numpy(np.broadcast_to(np.asarray(targets, dtype=np.int64), (xs.shape[0],)).copy())
        logits = run(xs)
        vals = torch.softmax(logits, dim=1) if output == "prob" else logits
        return vals.gather(1, tgt[:, None])[:, 0].double().numpy()

    return score


def as_targets(targets: int | Sequence[int] | np.ndarray | torch.Tensor | None, n: int, model: nn.Module):
    """``targets`` as an ``(n,)`` int array (one per input, or one for all), or ``None`` (= each input's predicted
    class); indices are checked against ``model.num_classes`` when the model has one."""
    if targets is None:
        return None
    num_classes = int(getattr(model, "num_classes", 0) or 0) or np.iinfo(np.int64).max
    arr = np.asarray(targets.detach().cpu() if isinstance(targets, torch.Tensor) else targets).astype(np.int64)
    arr = np.full(n, int(arr), dtype=np.int64) if arr.ndim == 0 else arr.reshape(-1)
    if len(arr) != n:
        raise ValueError(f"got {len(arr)} targets for {n} inputs; give one class index per input (or one for all)")
    if arr.size and (arr.min() < 0 or arr.max() >= num_classes):
        raise ValueError(f"target class indices must be in [0, {num_classes}), got {sorted(set(arr.tolist()))}")
    return arr


def targets_or_predicted(model: nn.Module, x: torch.Tensor, targets, forward: Forward | None = None) -> np.ndarray:
    """``(N,)`` int64 classes: ``targets`` (see :func:`as_targets`), or each input's argmax when None."""
    if targets is None:
        return logits_fn(model, forward)(x).argmax(1).numpy().astype(np.int64)
    return as_targets(targets, x.shape[0], model)


def as_batch(x: torch.Tensor) -> torch.Tensor:
    """``(C, H, W)`` -> ``(1, C, H, W)``; a 4-D tensor passes; anything else is an error."""
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"expected a torch.Tensor model input, got {type(x).__name__}")
    if x.ndim == 3:
        return x[None]
    if x.ndim != 4:
        raise ValueError(f"expected (C, H, W) or (N, C, H, W), got shape {tuple(x.shape)}")
    return x


def crops_to_input(model: nn.Module, crops) -> torch.Tensor:
    """uint8 face crops -> the model's normalised input (``model.spec.transform``, as the engine and training do),
    for where no engine is at hand (dataset-level AU agreement, tests)."""
    return model.spec.transform(crops)
