"""One registry of model constructors, in the manner of timm's ``register_model`` / ``create_model``."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from core.models.base import FERModel
from core.registry import Registry

MODELS: Registry[Callable[..., FERModel]] = Registry("model")


def register_model(fn: Callable[..., FERModel]) -> Callable[..., FERModel]:
    """Decorator: register ``fn`` under its function name. ``fn(num_classes=..., **overrides)`` builds it."""
    return MODELS.register(fn)


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

    Args:
        name: one of :func:`list_models`.
        num_classes: 7 (FER2013 order) or 8 (with contempt); default: the weights' sidecar, else 7.
        weights: a ``.safetensors`` file (or a ``weights_only`` torch file) with this model's state dict;
            ``"default"`` the file shipped for ``name``; ``None`` (or ``"none"``) a random init. The file's JSON
            sidecar (written by the trainer) supplies ``num_classes`` and the run's ``model_overrides``, so a
            checkpoint alone rebuilds the trained model. A missing or unfitting file raises ``WeightsError``.
        **overrides: fields of the model's config dataclass (e.g. ``cbam=False``, ``depth=2``), over the
            sidecar's; an unknown field raises with the list of known ones. ``pretrained_backbone=PATH`` loads
            ImageNet weights of a timm backbone from a local file (never from the network).
    """
    factory = MODELS.get(name)  # an unknown name raises with the known ones
    from core.models.weights import load_weights, resolve_weights, sidecar_build_args

    path = resolve_weights(name, weights)
    side_classes, side_overrides = sidecar_build_args(path)
    model = factory(num_classes=num_classes or side_classes or 7, **{**side_overrides, **overrides})
    if path is not None:
        load_weights(model, path)
    return model
