"""One registry of face-detector constructors (timm's ``register_model`` / ``create_model`` pattern).

A backend is one function decorated with :func:`register_detector`; its name is the function's name, its
keyword arguments are the backend's options. :func:`create_detector` is the only public constructor.
Constructors must be cheap: weights load on the first ``detect`` (or are shared from a per-process cache).
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable

from core.faces.types import DetectorUnavailableError, FaceDetector

_DETECTORS: dict[str, Callable[..., FaceDetector]] = {}


def register_detector(fn: Callable[..., FaceDetector]) -> Callable[..., FaceDetector]:
    """Decorator: register ``fn`` under its function name."""
    name = fn.__name__
    if name in _DETECTORS:
        raise ValueError(f"detector {name!r} is registered twice")
    _DETECTORS[name] = fn
    return fn


def list_detectors(pattern: str = "*") -> list[str]:
    """Registered detector names matching a glob pattern, sorted."""
    _import_backends()
    return sorted(n for n in _DETECTORS if fnmatch.fnmatch(n, pattern))


def is_detector(name: str) -> bool:
    _import_backends()
    return name in _DETECTORS


def create_detector(name: str = "default", **kwargs) -> FaceDetector:
    """Build a registered detector by name.

    Args:
        name: one of :func:`list_detectors` (``"default"`` is the embedded BlazeFace + O-Net).
        **kwargs: the backend's options (e.g. ``min_face=40`` for MTCNN, ``weights=PATH`` for RetinaFace).

    Raises:
        ValueError: unknown name (the message lists the known ones) or an unknown option.
        DetectorUnavailableError: the backend needs a package or weights file that is not here.
    """
    _import_backends()
    if name not in _DETECTORS:
        raise ValueError(f"unknown detector {name!r}; choose one of {sorted(_DETECTORS)}")
    return _DETECTORS[name](**kwargs)


def detector_available(name: str) -> tuple[bool, str]:
    """``(True, "")`` when ``name`` can run here, else ``(False, one line saying how to enable it)``.

    Builds the detector with its defaults: constructors are cheap and check for their package and weights file
    (raising :class:`DetectorUnavailableError`), so this is the same check a first ``detect`` would fail on,
    made before any photo is sent to it. An unknown name raises ``ValueError`` as in :func:`create_detector`.
    """
    try:
        create_detector(name)
    except DetectorUnavailableError as exc:
        return False, " ".join(str(exc).split())
    return True, ""


def _import_backends() -> None:
    """Import the backend modules so that their decorators run (cheap: no weights are loaded)."""
    from core.faces import blazeface, cropped, mtcnn, retinaface  # noqa: F401
