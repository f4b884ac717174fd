"""Model registry: every ferlens model is built by name with :func:`create_model`."""

from core.models import baselines, dcrnet, fernet, hafem  # noqa: F401  (registration side effects)
from core.models._registry import MODELS, create_model, list_models
from core.models.base import FERModel, ModelSpec, tokens_to_grid
from core.models.knockout import available_parts, knock_out
from core.models.weights import WeightsError, load_weights, save_weights

__all__ = [
    "MODELS",
    "FERModel",
    "ModelSpec",
    "WeightsError",
    "available_parts",
    "create_model",
    "knock_out",
    "list_models",
    "load_weights",
    "save_weights",
    "tokens_to_grid",
]
