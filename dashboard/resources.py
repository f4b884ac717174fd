"""Heavy, shared objects (engines, analysers, datasets) built once per process and keyed by the sidebar choices.

Every browser session is a thread of one process sharing these objects (the engine is thread-safe); per-upload
results are cached with ``st.cache_data`` so a rerun does not detect again.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import streamlit as st

from dashboard.errors import show_error
from dashboard.sidebar import Settings

log = logging.getLogger(__name__)


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
    """One engine per model, served like ``core.detector.Detector()``'s default: on the CPU through onnxruntime
    (torch if the export fails) with one thread; the torch model stays for the explainers.

    A live frame costs less CPU with onnxruntime than with torch, and a second thread costs more than it gains when
    the video codecs and the browser want the same cores (docs/dashboard.md, "Where the time goes").
    """
    from core.engine import InferenceEngine, resolve_device

    threads = 1 if resolve_device(device).type == "cpu" else None
    return InferenceEngine(model=model, weights=weights, device=device, backend="auto", threads=threads)


def get_engine(settings: Settings) -> Any:
    """The :class:`core.engine.InferenceEngine` for the sidebar's model and weights (one per process)."""
    return _engine(settings.model, settings.weights_arg, settings.device)


@st.cache_resource(show_spinner="Loading the face detector…", max_entries=8)
def _analyzer(
    model: str, weights: str | None, device: str, face_detector: str, preprocess, framing: str, tta: str | None
) -> Any:
    from core.detector import Detector

    engine = _engine(model, weights, device)
    return Detector(engine=engine, face_detector=face_detector, preprocess=preprocess, framing=framing, tta=tta)


def get_analyzer(settings: Settings) -> Any:
    """The :class:`core.detector.Detector` for ``settings``, around the cached engine of :func:`get_engine` (a model
    loads once per process whatever the face detector, preprocessing or TTA). Alignment off is ``framing="box"``."""
    framing = "fer2013" if settings.align else "box"
    s = settings
    return _analyzer(s.model, s.weights_arg, s.device, s.face_detector, s.preprocess, framing, s.tta_arg)


def weights_banner(settings: Settings) -> None:
    """On every page: a warning when the chosen model runs on random weights, an error when it cannot load."""
    if missing_feature("core.engine"):
        return
    try:
        engine = get_engine(settings)
    except Exception as exc:  # noqa: BLE001 - shown to the user and logged by show_error
        show_error(exc, f"loading model {settings.model!r} with weights {settings.weights!r}")
        return
    if not engine.has_trained_weights:
        st.warning(
            f"Model {settings.model!r} runs on random weights: no trained weights are shipped for it yet, so its "
            "predictions and explanations are meaningless. Pick a trained weights file in the sidebar.",
            icon=":material/warning:",
        )


@st.cache_data(max_entries=32, show_spinner="Finding and classifying faces…")
def analyze_bytes(data: bytes, name: str, settings: Settings):
    """Load an uploaded image (``core.io``: typed errors for bad files) and analyse every face in it."""
    from core.io import load_image
    from dashboard.analysis import analyze_rgb

    return analyze_rgb(get_analyzer(settings), load_image(data, name=name), name)


@st.cache_data(max_entries=64, show_spinner="Explaining…")
def explain_bytes(data: bytes, name: str, settings: Settings, face: int):
    """The explanation of face ``face`` (0-based) of an uploaded image with the sidebar's method."""
    from dashboard.analysis import explain_face

    result = analyze_bytes(data, name, settings)
    return explain_face(get_analyzer(settings), result.rgb, result.faces[face], settings.explainer)


@st.cache_resource(max_entries=4, show_spinner="Building the ablated model…")
def _variant(model: str, weights: str | None, device: str, parts: tuple[str, ...], checkpoint: str | None):
    from core.engine import InferenceEngine
    from core.models import knock_out

    if checkpoint:
        return InferenceEngine(model, weights=checkpoint, device=device), f"retrained checkpoint {checkpoint}"
    net = knock_out(_engine(model, weights, device).model, *parts)
    return InferenceEngine(net, device=device), f"knock-out: {', '.join(parts)} bypassed, other weights unchanged"


@st.cache_resource(max_entries=8, show_spinner="Loading a ladder rung…")
def get_rung_engine(weights: str, parts: tuple[str, ...], device: str):
    """A committed ladder rung (``dashboard.ablation.ladder_weights``), optionally with ``parts`` knocked out."""
    from core.engine import InferenceEngine
    from core.models import knock_out
    from dashboard.ablation import rung_model

    engine = InferenceEngine(rung_model(Path(weights)), weights=weights, device=device)
    return InferenceEngine(knock_out(engine.model, *parts), device=device) if parts else engine


def get_variant_engine(settings: Settings, parts: tuple[str, ...], checkpoint=None):
    """An engine for the sidebar's model without ``parts``: a matching retrained checkpoint, else a knock-out.

    Returns ``(engine, note)``; the note says which of the two it is.
    """
    ckpt = str(checkpoint) if checkpoint else None
    return _variant(settings.model, settings.weights_arg, settings.device, tuple(parts), ckpt)


def analyzer_with(engine, settings: Settings, preprocess: tuple[str, ...] | None, align: bool):
    """A ``core.detector.Detector`` around ``engine`` sharing the cached face detector (cheap to build)."""
    from core.detector import Detector

    return Detector(
        engine=engine,
        face_detector=get_analyzer(settings).face_detector,
        preprocess=preprocess,
        framing="fer2013" if align else "box",
        tta=settings.tta_arg,
    )
