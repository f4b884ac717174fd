"""Class-activation maps (Grad-CAM family) through pytorch-grad-cam, made safe to call from a serving engine.

pytorch-grad-cam does the maths. Here each call re-enables autograd inside ``inference_mode``, takes the target
layers and token reshape from the model, releases its hooks in a ``finally``, records only the calling
thread's passes, and holds a per-model lock while it freezes parameters. Methods live in :data:`CAM_METHODS`.
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import logging
import threading
import weakref
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import cv2
import numpy as np
import torch
from torch import nn

from core.explain._common import as_targets, eval_mode
from core.models.base import tokens_to_grid
from core.registry import Registry

log = logging.getLogger(__name__)

__all__ = [
    "CAM_METHODS",
    "CamMethod",
    "CamResult",
    "list_cam_methods",
    "get_cam_method",
    "compute_cam",
    "explain_cam",
    "resize_maps",
    "grad_enabled",
]


@dataclass(frozen=True)
class CamMethod:
    """One registered CAM method: the pytorch-grad-cam class that computes it, imported on first use (it pulls in
    torchvision, scipy and scikit-learn, which a CLI run without ``--explain`` should not pay), and the ``paper``
    that introduced it. ``class_specific`` is False when the map ignores the target (EigenCAM)."""

    name: str
    cam_class_name: str
    class_specific: bool = True
    uses_gradients: bool = True
    paper: str = ""


CAM_METHODS: Registry[CamMethod] = Registry("CAM method")

for _method in (  # a new pytorch-grad-cam class is one line here
    CamMethod("gradcam", "GradCAM", paper="Selvaraju et al., Grad-CAM, ICCV 2017"),
    CamMethod("gradcam++", "GradCAMPlusPlus", paper="Chattopadhay et al., Grad-CAM++, WACV 2018"),
    CamMethod("hirescam", "HiResCAM", paper="Draelos & Carin, HiResCAM, arXiv:2011.08891"),
    CamMethod("eigencam", "EigenCAM", class_specific=False, uses_gradients=False, paper="Muhammad & Yeasin, 2020"),
    CamMethod("layercam", "LayerCAM", paper="Jiang et al., LayerCAM, IEEE TIP 2021"),
):
    CAM_METHODS.register(_method, name=_method.name)


def list_cam_methods() -> list[str]:
    """Registered CAM method names, in registration order."""
    return list(CAM_METHODS)


def get_cam_method(name: str) -> CamMethod:
    """The registered method ``name``; an unknown name raises with the list of known ones."""
    return CAM_METHODS.get(name)


@dataclass(frozen=True)
class CamResult:
    """``(N, H, W)`` float32 maps in [0, 1] at the input's size, the ``(N,)`` classes they explain and the
    ``(N, C)`` softmax of the explained forward pass."""

    maps: np.ndarray
    targets: np.ndarray
    probs: np.ndarray
    method: str


@contextlib.contextmanager
def grad_enabled() -> Iterator[None]:
    """Leave ``inference_mode``/``no_grad`` for the duration: what every gradient explainer must run under."""
    with torch.inference_mode(False), torch.enable_grad():
        yield


def _infer_grid(x: torch.Tensor) -> torch.Tensor:
    """Reshape used when a model names none: feature maps pass through, ``(N, L, D)`` tokens become a grid."""
    return tokens_to_grid(x) if x.ndim == 3 else x


@functools.cache
def _caller_thread_hooks() -> type:
    """pytorch-grad-cam's hook holder, recording only forward passes made by the thread that built it."""
    from pytorch_grad_cam.activations_and_gradients import ActivationsAndGradients

    class CallerThreadHooks(ActivationsAndGradients):
        def __init__(self, model, target_layers, reshape_transform, detach: bool = True) -> None:
            self._owner = threading.get_ident()
            super().__init__(model, target_layers, reshape_transform, detach)

        def save_activation(self, module, input, output) -> None:  # noqa: A002 - pytorch's hook signature
            if threading.get_ident() == self._owner:
                super().save_activation(module, input, output)

        def save_gradient(self, module, input, output) -> None:  # noqa: A002
            if threading.get_ident() == self._owner:
                super().save_gradient(module, input, output)

    return CallerThreadHooks


_MODEL_LOCKS: weakref.WeakKeyDictionary[nn.Module, threading.RLock] = weakref.WeakKeyDictionary()
_LOCKS_GUARD = threading.Lock()


def _model_lock(model: nn.Module) -> threading.RLock:
    """One lock per model: CAM calls on the same model run one at a time (they toggle its grad flags and
    mode), while plain ``predict`` calls from other threads are never blocked."""
    with _LOCKS_GUARD:
        return _MODEL_LOCKS.setdefault(model, threading.RLock())


@contextlib.contextmanager
def _frozen_parameters(model: nn.Module) -> Iterator[None]:
    """Parameters stop requiring grad (and keep no ``.grad``) for the duration."""
    trainable = [p for p in model.parameters() if p.requires_grad]
    for p in trainable:
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p in trainable:
            p.requires_grad_(True)


def resize_maps(maps: np.ndarray, size: int | tuple[int, int]) -> np.ndarray:
    """Resize ``(H, W)`` or ``(N, H, W)`` maps to ``size`` (side or ``(h, w)``), bilinear, range preserved.

    A CAM is computed at the model's input size (48 px for the default model); the dashboard shows the aligned
    crop at its own size (e.g. 224 px), so the map is upsampled before blending.
    """
    h, w = (size, size) if isinstance(size, int) else size
    arr = np.asarray(maps, dtype=np.float32)
    single = arr.ndim == 2
    batch = arr[None] if single else arr
    if batch.ndim != 3:
        raise ValueError(f"maps must be (H, W) or (N, H, W), got shape {arr.shape}")
    lo, hi = float(batch.min(initial=0.0)), float(batch.max(initial=0.0))
    out = np.stack([cv2.resize(m, (w, h), interpolation=cv2.INTER_LINEAR) for m in batch]).astype(np.float32)
    out = np.clip(out, lo, hi)  # bilinear never overshoots, but keep the guarantee explicit
    return out[0] if single else out


def compute_cam(
    model: nn.Module,
    x: torch.Tensor,
    targets: int | Sequence[int] | np.ndarray | torch.Tensor | None = None,
    method: str = "gradcam",
    *,
    target_layers: list[nn.Module] | None = None,
    reshape_transform: Callable[[torch.Tensor], torch.Tensor] | None = None,
    batch_size: int = 32,
    aug_smooth: bool = False,
    eigen_smooth: bool = False,
) -> CamResult:
    """CAMs for normalised inputs ``x`` (``(N, C, H, W)``, possibly made under ``inference_mode``), for class
    ``targets`` (one per input, one for all, or None = each input's predicted class).

    ``target_layers`` and ``reshape_transform`` override a ferlens model's ``cam_target_layers()`` and
    ``cam_reshape_transform`` (required for other classifiers); ``batch_size`` bounds memory; ``aug_smooth`` and
    ``eigen_smooth`` are pytorch-grad-cam's.
    """
    spec = get_cam_method(method)
    if not isinstance(x, torch.Tensor) or x.ndim != 4:
        raise ValueError(f"x must be an (N, C, H, W) tensor, got {getattr(x, 'shape', type(x).__name__)}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    layers = list(target_layers) if target_layers is not None else list(model.cam_target_layers())
    if not layers:
        raise ValueError("the model names no CAM target layer")
    reshape = reshape_transform or getattr(model, "cam_reshape_transform", None) or _infer_grid
    n = x.shape[0]
    wanted = as_targets(targets, n, model)
    param = next(model.parameters())
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    cam_class = getattr(importlib.import_module("pytorch_grad_cam"), spec.cam_class_name)
    maps, used, probs = [], [], []
    with _model_lock(model), grad_enabled(), eval_mode(model), _frozen_parameters(model):
        for start in range(0, n, batch_size):
            # clone: an inference-mode tensor cannot enter autograd even after the mode is left
            xb = x[start : start + batch_size].detach().clone().to(param)
            tw = None if wanted is None else wanted[start : start + len(xb)]
            if spec.uses_gradients:
                xb.requires_grad_(True)  # parameters are frozen: the input is the graph's leaf
            cam = cam_class(model, target_layers=layers, reshape_transform=reshape)
            cam.activations_and_grads.release()  # replaced by hooks that ignore other threads' passes
            cam.activations_and_grads = _caller_thread_hooks()(model, layers, reshape, cam.detach)
            try:
                tb = None if tw is None else [ClassifierOutputTarget(int(t)) for t in tw]
                grayscale = cam(input_tensor=xb, targets=tb, aug_smooth=aug_smooth, eigen_smooth=eigen_smooth)
                logits = cam.outputs.detach().float()
            finally:
                cam.activations_and_grads.release()
                cam.outputs = None
                model.zero_grad(set_to_none=True)
            p = torch.softmax(logits, dim=1).cpu().numpy()
            maps.append(np.asarray(grayscale, dtype=np.float32))
            probs.append(p)
            used.append(p.argmax(1) if tw is None else tw)
    out = np.clip(np.concatenate(maps), 0.0, 1.0).astype(np.float32, copy=False)
    flat = [i for i, m in enumerate(out) if float(m.max() - m.min()) == 0.0]
    if flat:
        log.debug("%s: %d of %d maps are constant (no positive evidence for the target)", method, len(flat), n)
    return CamResult(out, np.concatenate(used).astype(np.int64), np.concatenate(probs).astype(np.float32), method)


def explain_cam(
    model: nn.Module,
    x: torch.Tensor,
    targets: int | Sequence[int] | np.ndarray | torch.Tensor | None = None,
    method: str = "gradcam",
    **kwargs,
) -> np.ndarray:
    """``(N, H, W)`` float32 CAMs in [0, 1] for inputs ``x`` (see :func:`compute_cam` for the arguments)."""
    return compute_cam(model, x, targets, method, **kwargs).maps
