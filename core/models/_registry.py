"""One registry of model constructors, in the manner of timm's ``register_model`` / ``create_model``."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

from core.models.base import FERModel
from core.registry import Registry

log = logging.getLogger(__name__)

MODELS: Registry[Callable[..., FERModel]] = Registry("model")


def register_model(fn: Callable[..., FERModel]) -> Callable[..., FERModel]:
    """Decorator: register ``fn`` under its function name. ``fn(num_classes=..., **overrides)`` builds it."""
    return MODELS.register(fn)


def list_models(pattern: str = "*") -> list[str]:
    """Registered model names matching a glob pattern, sorted."""
    return MODELS.names(pattern)


def create_model(
    name: str,
    num_classes: int = 7,
    weights: str | Path | None = None,
    **overrides,
) -> FERModel:
    """Build a registered model by name; the only public constructor.

    Args:
        name: one of :func:`list_models`.
        num_classes: 7 (FER2013 order) or 8 (with contempt).
        weights: a ``.safetensors`` file (or a ``weights_only`` torch file) with this model's state dict.
            ``"default"`` asks for the weights shipped for this name, if any (see ``core.models.weights``).
        **overrides: fields of the model's config dataclass (e.g. ``cbam=False``, ``depth=2``); an unknown
            field raises with the list of known ones. ``pretrained_backbone=PATH`` loads ImageNet weights of a
            timm backbone from a local file (never from the network).
    """
    model = MODELS.get(name)(num_classes=num_classes, **overrides)
    if weights is not None:
        from core.models.weights import load_weights, shipped_weights

        path = shipped_weights(name) if str(weights) == "default" else Path(weights)
        if path is None:
            raise FileNotFoundError(f"no weights are shipped for model {name!r}")
        load_weights(model, path)
    return model
