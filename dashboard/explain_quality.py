"""What the pages say about an explanation's trustworthiness: the measured figures and the colour legend.

The figures are read from ``python -m training.explain_eval``'s JSON (never computed here); the legend says what
a map's colours mean. Pure functions, no Streamlit, so the Evaluation page and the explanation panel share them.
"""

from __future__ import annotations

import logging
import os

import numpy as np

from dashboard import PYTHON, REPO_ROOT

log = logging.getLogger(__name__)

COMMAND = f"{PYTHON} -m training.explain_eval"
"""The command that writes the JSON (defaults: the shipped model on a stratified FERPlus PrivateTest subset)."""


def load_explanations() -> dict | None:
    """``$FERLENS_EXPLANATIONS`` or the committed ``bench/results/explanations.json``; None when it has not been
    written or is unreadable (logged: the panels then say "not measured" rather than fail the page)."""
    from training.explain_eval import load

    try:
        return load(os.environ.get("FERLENS_EXPLANATIONS") or REPO_ROOT / "bench" / "results" / "explanations.json")
    except (OSError, ValueError) as exc:
        log.warning("explanations JSON unreadable, shown as not measured: %s", exc)
        return None


def faithfulness_line(d: dict | None, method: str) -> str:
    """The method's measured deletion/insertion AUC, or "not measured" with the command that measures it."""
    from training.explain_eval import method_faithfulness

    line = method_faithfulness(d, method)
    return line or f"Faithfulness of {method}: not measured (`{COMMAND} --methods {method}`)."


def legend_bar(signed: bool, width: int = 192, height: int = 12) -> np.ndarray:
    """An RGB colour bar drawn with the overlay's own colours (``core.explain.colorize``), low left, high right."""
    from core.explain import colorize

    ramp = np.linspace(-1.0 if signed else 0.0, 1.0, width, dtype=np.float32)
    return colorize(np.repeat(ramp[None], height, axis=0), signed=signed)


def legend_text(method: str, target: str, signed: bool, heat: np.ndarray | None = None) -> str:
    """What the colours of ``method``'s map mean, in words, with the sign convention for SHAP."""
    if signed:
        lim = float(np.abs(heat).max()) if heat is not None and np.size(heat) else float("nan")
        scale = f" (ends at ±{lim:.2g})" if np.isfinite(lim) and lim > 0 else ""
        return (
            f"Signed SHAP{scale}: red = pushes the prediction toward '{target}', blue = pushes it away, "
            "white = no effect. Values add up to the probability change from the blurred face."
        )
    return (
        f"{method}: blue = low, red = high evidence for '{target}', scaled to [0, 1] per face (compare "
        "regions within a face, not colours across faces). Unsigned: it shows no evidence against the class."
    )
