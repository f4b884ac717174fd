"""The sidebar: which model, weights, face detector, preprocessing and explanation method every page uses.

:func:`build_sidebar` builds one frozen :class:`Settings` in the entry script on every run; pages read it with
:func:`current_settings` (defaults when a page runs alone, as under ``AppTest``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from dashboard import REPO_ROOT, display_ref
from dashboard.explain import available_methods

STATE_KEY = "ferlens.settings"

DEFAULT_WEIGHTS = "default"
"""Weights shipped for the model (``core/models/weights/<name>.safetensors``); offered only when there are some."""
RANDOM_WEIGHTS = "none"
"""Random initialisation on purpose (e.g. to see what an untrained model's explanations look like)."""

FALLBACK_EXPLAINERS = ("gradcam",)
"""Shown when ``core.explain`` cannot be imported (pages then say that explanations are unavailable)."""


@dataclass(frozen=True)
class Settings:
    """What the sidebar chose. Hashable, so it can key ``st.cache_resource``.

    Attributes:
        weights: ``"default"``, ``"none"`` (random init) or a weights file path.
        align: warp each face to the 5-point template before the model (off: the plain box crop).
        preprocess: photometric steps by name (``("clahe",)``...); None means the model's own
            ``ModelSpec.preprocess``, i.e. what it was trained with.
        tta: average each face with its mirror image (``core.detector.Detector(tta="hflip")``).
        device: ``"auto"`` (CUDA when present), ``"cpu"`` or ``"cuda"``.
    """

    model: str = "default"
    weights: str = DEFAULT_WEIGHTS
    face_detector: str = "default"
    align: bool = True
    preprocess: tuple[str, ...] | None = None
    explainer: str = "gradcam"
    tta: bool = True
    device: str = "auto"

    @property
    def weights_arg(self) -> str | None:
        """``weights`` as ``create_model``/the engine take it (None = random init)."""
        return None if self.weights == RANDOM_WEIGHTS else self.weights

    @property
    def tta_arg(self) -> str | None:
        """``tta`` as ``core.detector.Detector`` takes it."""
        return "hflip" if self.tta else None


def current_settings() -> Settings:
    """The settings of this session (defaults when the sidebar has not run, e.g. a page tested on its own)."""
    import streamlit as st

    value = st.session_state.get(STATE_KEY)
    return value if isinstance(value, Settings) else Settings()


def weights_candidates(model: str, roots: list[Path] | None = None, limit: int = 50) -> list[str]:
    """Weights files a user may pick: ``default`` when weights are shipped for ``model``, ``none`` (random init)
    and the checkpoints under ``runs/`` (``training.runs.list_runs``, newest first, capped) trained for ``model``.

    Checkpoints whose sidecar names another model are left out.
    """
    from core.models.weights import shipped_weights
    from training.runs import list_runs

    roots = roots if roots is not None else [runs_dir()]
    found = [c.path for root in roots for c in list_runs(root).checkpoints[:limit] if c.model in (None, "", model)]
    shipped = shipped_weights(model)
    head = [DEFAULT_WEIGHTS, display_ref(shipped), RANDOM_WEIGHTS] if shipped else [RANDOM_WEIGHTS]
    return head + [p for p in map(display_ref, found) if p not in head]


def runs_dir() -> Path:
    """Where training runs, results JSONs and the verdict DB live: ``$FERLENS_RUNS`` or ``<repo>/runs``."""
    return Path(os.environ.get("FERLENS_RUNS") or REPO_ROOT / "runs")


def split_available(detectors: list[str]) -> tuple[list[str], dict[str, str]]:
    """The detectors that can run here, and for the others the one line that says how to enable them.

    Only runnable detectors are offered, so none fails on every photo (``core.faces.detector_available``).
    """
    from core.faces.registry import detector_available

    status = {name: detector_available(name) for name in detectors}
    return [n for n, (ok, _) in status.items() if ok], {n: why for n, (ok, why) in status.items() if not ok}


def build_sidebar() -> Settings:
    """Draw the sidebar widgets, store the resulting :class:`Settings` in the session and return it."""
    import streamlit as st

    from core.faces.preprocess import list_preprocess
    from core.faces.registry import list_detectors
    from core.models import list_models

    sb = st.sidebar
    sb.header("Model")
    models = list_models()
    model = select_on(
        sb, "Model", models, "default", "sb_model", help="A registered ferlens model (core.models.list_models())."
    )
    weights = sb.selectbox(
        "Weights",
        weights_candidates(model),
        key="sb_weights",
        help="'default': the weights shipped for this model (offered when there are some); 'none': random init; "
        "or a .safetensors file written by the trainer under runs/.",
    )
    tta = sb.toggle(
        "Mirror TTA",
        value=True,
        key="sb_tta",
        help="Average each face's probabilities with those of its mirror image (one extra face per batch).",
    )
    sb.header("Faces")
    detectors, unavailable = split_available(list_detectors())
    detector = select_on(sb, "Face detector", detectors, "default", "sb_detector")
    for name, reason in unavailable.items():
        sb.caption(f":material/block: `{name}` unavailable here. {reason}")
    align = sb.toggle("Align faces (5-point template)", value=True, key="sb_align")
    own = sb.toggle(
        "Preprocessing as the model was trained",
        value=True,
        key="sb_own_pre",
        help="Off: pick CLAHE / adaptive gamma yourself (an ablation of the model's own preprocessing).",
    )
    preprocess = None
    if not own:
        steps = [s for s in list_preprocess() if s != "grayscale"]  # grayscale follows the model's in_chans
        preprocess = tuple(s for s in steps if sb.checkbox(_STEP_LABELS.get(s, s), key=f"sb_pre_{s}"))
    sb.header("Explanations")
    explainer = select_on(sb, "Method", available_methods() or list(FALLBACK_EXPLAINERS), "gradcam", "sb_explainer")
    settings = Settings(
        model=model,
        weights=weights,
        face_detector=detector,
        align=align,
        preprocess=preprocess,
        explainer=explainer,
        tta=tta,
    )
    st.session_state[STATE_KEY] = settings
    return settings


def select_on(where, label: str, options: list, preferred, key: str, **kwargs):
    """A selectbox in ``where`` (``st``, the sidebar) starting on ``preferred`` when offered, else on the first."""
    index = options.index(preferred) if preferred in options else 0
    return where.selectbox(label, options, index=index, key=key, **kwargs)


_STEP_LABELS = {"clahe": "CLAHE (HAFEM)", "gamma": "Adaptive gamma (DCRNet)"}
