"""Heavy, shared objects (engines, analysers, datasets) built once per process and keyed by the sidebar choices.

Streamlit runs every browser session in its own thread of one process; ``st.cache_resource`` hands all of them
the same object. The engine is thread-safe by contract (``core.engine``); what is not (Grad-CAM hooks mutate the
model while they are registered) runs under :func:`model_lock`, one lock per cached model.

Nothing here imports torch or a model at import time: the first call does.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

import streamlit as st

from dashboard.sidebar import Settings

log = logging.getLogger(__name__)

_LOCKS: dict[tuple, threading.Lock] = {}
_LOCKS_GUARD = threading.Lock()


class FeatureUnavailable(RuntimeError):
    """A part of ferlens this page needs is not installed or not written yet; the message says which."""


def model_lock(settings: Settings) -> threading.Lock:
    """The lock that serialises hook-based work (explanations) on the model cached for ``settings``."""
    key = (settings.model, settings.weights, settings.device)
    with _LOCKS_GUARD:
        return _LOCKS.setdefault(key, threading.Lock())


def missing_feature(module: str) -> str | None:
    """None when ``module`` imports, else a plain sentence saying what is missing (for a page's guard)."""
    try:
        __import__(module)
    except ImportError as exc:
        log.info("%s unavailable: %s", module, exc)
        return f"`{module}` is not available in this installation ({exc})."
    return None


def require(*modules: str) -> None:
    """Page guard: if one of ``modules`` cannot be imported, say so with ``st.info`` and stop the page."""
    for module in modules:
        reason = missing_feature(module)
        if reason:
            st.info(f"This page needs {module}, which is not ready yet: {reason}", icon=":material/construction:")
            st.stop()


@st.cache_resource(show_spinner="Loading the model…", max_entries=4)
def _engine(model: str, weights: str | None, device: str) -> Any:
    from core.engine import InferenceEngine

    return InferenceEngine(model=model, weights=weights, device=device)


def get_engine(settings: Settings) -> Any:
    """The :class:`core.engine.InferenceEngine` for the sidebar's model and weights (one per process)."""
    return _engine(settings.model, settings.weights_arg, settings.device)


@st.cache_resource(show_spinner="Loading the face detector…", max_entries=4)
def _analyzer(model: str, weights: str | None, face_detector: str, align: bool, preprocess, device: str) -> Any:
    from core.detector import Detector

    kwargs: dict[str, Any] = {
        "model": model,
        "weights": weights,
        "face_detector": face_detector,
        "device": device,
    }
    if preprocess is not None:
        kwargs["preprocess"] = tuple(preprocess)
    if not align:
        kwargs["align"] = False
    return Detector(**kwargs)


def get_analyzer(settings: Settings) -> Any:
    """The :class:`core.detector.Detector` (faces -> aligned crops -> probabilities) for ``settings``."""
    return _analyzer(
        settings.model,
        settings.weights_arg,
        settings.face_detector,
        settings.align,
        settings.preprocess,
        settings.device,
    )


def weights_banner(settings: Settings) -> None:
    """On every page: a warning when the chosen model runs on random weights, an error when it cannot load."""
    if missing_feature("core.engine"):
        return
    try:
        engine = get_engine(settings)
    except Exception as exc:  # noqa: BLE001 - shown to the user and logged by show_error
        from dashboard.errors import show_error

        show_error(exc, f"loading model {settings.model!r} with weights {settings.weights!r}")
        return
    if is_random(engine):
        st.warning(
            f"No trained weights for {settings.model!r} ({engine.weights_status}): predictions and explanations "
            "are meaningless until you pick a trained weights file in the sidebar.",
            icon=":material/warning:",
        )


def is_random(engine: Any) -> bool:
    """Whether the engine's model runs on random initialisation (from ``engine.weights_status``)."""
    return str(getattr(engine, "weights_status", "")).lower().startswith("random")
