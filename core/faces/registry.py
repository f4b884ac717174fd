"""The face-detector registry: a backend is one function decorated with :func:`register_detector`.

Its name is the function's name, its keyword arguments are the backend's options. The backends register
themselves when :mod:`core.faces` imports them; this module imports none of them. Constructors must be cheap:
weights load on the first ``detect`` (or are shared from a per-process cache).
"""

from __future__ import annotations

from collections.abc import Callable

from core.faces.types import DetectorUnavailableError, FaceDetector
from core.registry import Registry

DETECTORS: Registry[Callable[..., FaceDetector]] = Registry("detector")


def register_detector(fn: Callable[..., FaceDetector]) -> Callable[..., FaceDetector]:
    """Decorator: register ``fn`` under its function name."""
    return DETECTORS.register(fn)


def list_detectors(pattern: str = "*") -> list[str]:
    """Registered detector names matching a glob pattern, sorted."""
    return DETECTORS.names(pattern)


def create_detector(name: str = "default", **kwargs) -> FaceDetector:
    """Build a registered detector by name.

    Args:
        name: one of :func:`list_detectors` (``"default"`` is the embedded BlazeFace + O-Net).
        **kwargs: the backend's options (e.g. ``min_face=40`` for MTCNN, ``weights=PATH`` for RetinaFace).

    Raises:
        ValueError: unknown name (the message lists the known ones) or an unknown option.
        DetectorUnavailableError: the backend needs a package or weights file that is not here.
    """
    return DETECTORS.get(name)(**kwargs)


def detector_available(name: str) -> tuple[bool, str]:
    """``(True, "")`` when ``name`` can run here, else ``(False, one line saying how to enable it)``.

    Builds the detector with its defaults: constructors are cheap and check for their package and weights file
    (raising :class:`DetectorUnavailableError`), the same check a first ``detect`` would fail on, made before any
    photo is sent to it. An unknown name raises ``ValueError`` as in :func:`create_detector`.
    """
    try:
        create_detector(name)
    except DetectorUnavailableError as exc:
        return False, " ".join(str(exc).split())
    return True, ""
