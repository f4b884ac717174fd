"""One way to fail on a page: a plain ``st.error`` for the user and a full log line for the operator.

ferlens' own typed errors are shown as they are; anything else shows its type and first line while the log
gets the traceback. The page never shows a traceback.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

log = logging.getLogger("ferlens.dashboard")

_MAX_CHARS = 400

# Raised on purpose with a message meant for people (ValueError covers ImageLoadError, WeightsError,
# ResultsSchemaError, DatasetError, ConfigError; OSError covers missing files; DetectorUnavailableError is a
# RuntimeError whose message says what to install).
_PLAIN = (ValueError, OSError, KeyError, LookupError)


def plain_message(exc: BaseException, action: str = "") -> str:
    """A one-paragraph message for ``exc``: no traceback, no ``repr`` noise, at most a few hundred characters."""
    text = str(exc).strip()
    if isinstance(exc, KeyError) and exc.args:
        text = f"missing key {exc.args[0]!r}"
    first = text.splitlines()[0] if text else ""
    if len(first) > _MAX_CHARS:
        first = first[: _MAX_CHARS - 1] + "…"
    prefix = f"{action[:1].upper()}{action[1:]} failed" if action else "Something failed"
    if _is_plain(exc) and first:
        return f"{prefix}: {first}"
    detail = f" ({type(exc).__name__}: {first})" if first else f" ({type(exc).__name__})"
    return f"{prefix}{detail}. The server log has the details."


def _is_plain(exc: BaseException) -> bool:
    # DetectorUnavailableError, VerdictStoreError and friends: RuntimeErrors whose class says they are expected
    # conditions, with a message written for people.
    return isinstance(exc, _PLAIN) or type(exc).__name__.endswith(
        ("UnavailableError", "LoadError", "SchemaError", "StoreError")
    )


def show_error(exc: BaseException, action: str = "") -> str:
    """Log ``exc`` (with traceback for unexpected ones) and show it as a plain ``st.error``; returns the text."""
    import streamlit as st

    message = plain_message(exc, action)
    if _is_plain(exc):
        log.warning("%s: %s: %s", action or "dashboard", type(exc).__name__, exc)
    else:
        log.error("%s failed", action or "dashboard", exc_info=exc)
    st.error(message, icon=":material/error:")
    return message


@contextmanager
def guard(action: str, *, stop: bool = False) -> Iterator[None]:
    """Turn any exception in the block into :func:`show_error` (``action``, in words, starts the message); with
    ``stop``, stop the page there so the rest does not run on bad state. Streamlit's own control flow (``st.stop``,
    ``st.rerun``, ``st.switch_page``) raises ``BaseException`` subclasses, which pass through untouched.
    """
    try:
        yield
    except Exception as exc:  # noqa: BLE001 - this is the one place that catches everything, and it reports it
        show_error(exc, action)
        if stop:
            import streamlit as st

            st.stop()


def configure_logging(level: int = logging.INFO) -> None:
    """Send ``ferlens.*``, ``core.*``, ``training.*`` and ``dashboard.*`` log lines to stderr, once per process."""
    if logging.getLogger("ferlens").handlers:  # configured already (Streamlit runs the entry script on every rerun)
        return
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    for name in ("ferlens", "core", "training", "dashboard"):
        logger = logging.getLogger(name)
        logger.setLevel(level)
        logger.addHandler(handler)
        logger.propagate = False
