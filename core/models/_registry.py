"""One registry of model constructors, in the manner of timm's ``register_model`` / ``create_model``."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from core.models.base import FERModel
from core.registry import Registry

MODELS: Registry[Callable[..., FERModel]] = Registry("model")
"""Model constructors ``fn(num_classes=..., **overrides)`` under their function names (``@MODELS.register``)."""


def list_models(pattern: str = "*") -> list[str]:
    """Registered model names matching a glob pattern, sorted."""
    return MODELS.names(pattern)


def create_model(
    name: str,
    num_classes: int | None = None,
    weights: str | Path | None = None,
    **overrides,
) -> FERModel:
    """Build a registered model by name, with its weights; the only public constructor.

    ``weights``: a ``.safetensors`` (or ``weights_only`` torch) file, ``"default"`` (the file shipped for ``name``)
    or ``None``/``"none"`` (random init); a missing or unfitting file raises ``WeightsError``. Its JSON sidecar
    supplies ``num_classes`` (else 7) and the run's ``model_overrides``, so a checkpoint alone rebuilds the model.
    ``overrides`` set fields of the model's config dataclass (e.g. ``cbam=False``) over the sidecar's;
    ``pretrained_backbone=PATH`` loads a timm trunk's ImageNet weights from a local file (never the network).
    """
    factory = MODELS.get(name)  # an unknown name raises with the known ones
    from core.models.weights import load_weights, resolve_weights, sidecar_build_args

    path = resolve_weights(name, weights)
    side_classes, side_overrides = sidecar_build_args(path)
    model = factory(num_classes=num_classes or side_classes or 7, **{**side_overrides, **overrides})
    if path is not None:
        load_weights(model, path)
    return model
