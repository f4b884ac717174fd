"""One call from the pages to ``core.explain``: explain a face crop with the sidebar's method.

The pages get a heat map at the model's input size, in ``[0, 1]`` for CAMs and signed for SHAP. Hook-based
methods hold :meth:`core.engine.InferenceEngine.exclusive`; SHAP methods only call ``predict_logits``, one batch
per lock. At most :data:`MAX_JOBS_PER_SESSION` explanations per browser session run or wait at once.
"""

from __future__ import annotations

import logging
import threading
from collections import Counter
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np

log = logging.getLogger(__name__)

REGION_METHODS = ("region_shap",)
PIXEL_METHODS = ("pixel_shap",)
CAM_FALLBACK = "gradcam"
"""What the live page uses when the sidebar's method is a (too slow for video) SHAP method."""


MAX_JOBS_PER_SESSION = 2
"""Explanations one browser session may have queued or running at once (the one it waits for + one stale run)."""

BUSY_MESSAGE = (
    "this session already has {n} explanations queued or running; wait for the running explanation to finish, "
    "then ask again"
)


def is_cam(method: str) -> bool:
    return method not in REGION_METHODS + PIXEL_METHODS


class ExplanationUnavailableError(RuntimeError):
    """The session has :data:`MAX_JOBS_PER_SESSION` explanations in flight; the message asks the user to wait."""


class JobBound:
    """At most ``limit`` jobs in flight per session (Streamlit sessions are threads of one process); one more is
    refused at once, never queued. Only sessions with work in flight are kept."""

    def __init__(self, limit: int = MAX_JOBS_PER_SESSION) -> None:
        if limit < 1:
            raise ValueError(f"limit must be >= 1, got {limit}")
        self.limit = limit
        self._lock = threading.Lock()
        self._active: Counter[str] = Counter()  # sessions with nothing in flight are dropped (see slot)

    def active(self, session: str | None = None) -> int:
        """Jobs in flight for ``session`` (all sessions when None)."""
        with self._lock:
            return self._active.total() if session is None else self._active[session]

    def sessions(self) -> int:
        """Sessions with at least one job in flight."""
        with self._lock:
            return len(self._active)

    @contextmanager
    def slot(self, session: str | None) -> Iterator[None]:
        """Hold one of ``session``'s slots for the block (else raise :class:`ExplanationUnavailableError`);
        ``None`` (no browser session: CLI, live worker) is free."""
        if session is None:
            yield
            return
        with self._lock:
            n = self._active[session]
            if n >= self.limit:
                raise ExplanationUnavailableError(BUSY_MESSAGE.format(n=n))
            self._active[session] += 1
        try:
            yield
        finally:
            with self._lock:
                self._active -= Counter({session: 1})  # keeps positive counts only


JOBS = JobBound()
"""The process-wide bound every page's explanations go through (:func:`explain_crop`)."""


def current_session() -> str | None:
    """The Streamlit session id of the calling script thread, or None outside one (CLI, tests, live worker)."""
    from streamlit.runtime.scriptrunner import get_script_run_ctx

    ctx = get_script_run_ctx(suppress_warning=True)
    return None if ctx is None else ctx.session_id


@dataclass(frozen=True)
class Explanation:
    """What a page draws for one face: ``heat`` ``(S, S)`` float32 at the model's input size (resize it to draw),
    in [0, 1] for CAMs, ``signed`` (evidence for / against class ``target``: a diverging colour scale) for SHAP."""

    method: str
    target: int
    heat: np.ndarray
    signed: bool = False


def available_methods() -> list[str]:
    """CAM methods registered in ``core.explain`` plus its perturbation methods (region and pixel SHAP)."""
    try:
        from core.explain import list_cam_methods
    except ImportError as exc:
        log.info("explanations unavailable: %s", exc)
        return []
    return [*list_cam_methods(), *REGION_METHODS, *PIXEL_METHODS]


def explain_crop(
    engine,
    crop: np.ndarray,
    method: str,
    target: int | None = None,
    masks: Mapping[str, np.ndarray] | None = None,
    steps=None,
) -> Explanation:
    """Explain one face crop (uint8 RGB or gray, any size, before the model's resizing) with ``engine``'s model.

    ``target`` None = the predicted class. ``masks``: AU-region masks at the model's input size (region methods need
    them). ``steps``: the photometric preprocessing the prediction used (None: the model's own), so the explanation
    explains the same input. Raises :class:`ExplanationUnavailableError` when this browser session already has
    :data:`MAX_JOBS_PER_SESSION` explanations in flight.
    """
    import core.explain as E

    with JOBS.slot(current_session()):  # refused at once when this session already has its share in flight
        x = engine.prepare([crop], steps)
        model = engine.model
        if method in REGION_METHODS:  # outputs only: the engine's lock is held per batch, not for the whole run
            res = E.region_shap(model, x, masks, target, max_evals=256, forward=engine.predict_logits)
            return Explanation(method, int(res.target), res.pixel_map(per_area=True), True)
        if method in PIXEL_METHODS:
            res = E.pixel_shap(model, x, target, max_evals=256, forward=engine.predict_logits)
            return Explanation(method, int(res.target), np.asarray(res.values, np.float32), True)
        with engine.exclusive() as model:  # hooks: keep other callers' forwards out of them meanwhile
            res = E.compute_cam(model, x, target, method)
        return Explanation(method, int(res.targets[0]), res.maps[0].astype(np.float32))
