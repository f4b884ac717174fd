"""The face-detector registry: a backend is one function decorated with :func:`register_detector`.

Its name is the function's name, its keyword arguments the backend's options. Constructors must be cheap:
weights load on the first ``detect`` (or come from a per-process cache).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import fields, replace
from typing import Any, TypeVar

from core.faces.types import DetectorUnavailableError, FaceDetector
from core.registry import Registry

DETECTORS: Registry[Callable[..., FaceDetector]] = Registry("detector")
C = TypeVar("C")


def register_detector(fn: Callable[..., FaceDetector]) -> Callable[..., FaceDetector]:
    """Decorator: register ``fn`` under its function name."""
    return DETECTORS.register(fn)


def list_detectors(pattern: str = "*") -> list[str]:
    """Registered detector names matching a glob pattern, sorted."""
    return DETECTORS.names(pattern)


def create_detector(name: str = "default", **kwargs) -> FaceDetector:
    """Build a registered detector by name with the backend's options (e.g. ``min_face=40`` for MTCNN).

    Raises ``ValueError`` for an unknown name or option (listing the known ones) and
    :class:`DetectorUnavailableError` when the backend's package or weights file is not here.
    """
    return DETECTORS.get(name)(**kwargs)


def with_options(base: C, options: dict[str, Any]) -> C:
    """``base`` (a backend's config dataclass) with keyword options; an unknown one raises listing the known ones."""
    known = sorted(f.name for f in fields(base))
    unknown = sorted(set(options) - set(known))
    if unknown:
        what = type(base).__name__.removesuffix("Config")
        raise ValueError(f"unknown {what} option(s) {unknown}; choose from {known}")
    return replace(base, **options)


def detector_available(name: str) -> tuple[bool, str]:
    """``(True, "")`` when ``name`` can run here, else ``(False, one line saying how to enable it)``.

    Builds the detector with its defaults: cheap constructors check for their package and weights file, so the
    failure shows before any photo is sent. An unknown name raises ``ValueError``.
    """
    try:
        create_detector(name)
    except DetectorUnavailableError as exc:
        return False, " ".join(str(exc).split())
    return True, ""
