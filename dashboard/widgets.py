"""Streamlit widgets shared by several pages (results picker, image/file intake, downloads).

Each is a small function around one helper from ``dashboard``/``core``; the logic sits in those helpers.
"""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from dashboard import REPO_ROOT, display_ref, evaluation, navigation, resources
from dashboard.errors import guard
from dashboard.explain import CAM_FALLBACK, explain_crop, is_cam
from dashboard.explorer import ANY, View, view_to_params
from dashboard.sidebar import runs_dir, select_on

OPENED_KEY = "results.uploaded"
CURRENT_KEY = "results.current"
REVIEWER_KEY = "reviewer"
"""The reviewer's name: outside any widget, so it survives saves, dialogs, reloads and page switches."""


def results_roots() -> list[Path]:
    """Where results JSONs are looked for: the runs folder and the benchmark results."""
    return [runs_dir(), REPO_ROOT / "bench" / "results"]


@st.cache_resource(max_entries=16, show_spinner="Reading the results…")
def _load_path(path: str, mtime: float) -> dict:
    from training.results import load_results

    return load_results(path)


def load_results_ref(ref: str) -> dict:
    """A results dict by reference: a file path, or the name of a JSON uploaded in this session."""
    uploaded = st.session_state.get(OPENED_KEY, {})
    if ref in uploaded:
        return uploaded[ref]
    path = Path(ref)
    return _load_path(str(path), path.stat().st_mtime)


def results_picker(label: str = "Results JSON", key: str = "results", upload: bool = True) -> str | None:
    """Choose a results JSON found under ``runs/`` (or ``$FERLENS_RUNS``) or uploaded; returns its reference.

    The choice is shared by the evaluation page and the explorer (``results.current`` in the session).
    """
    from training.results import parse_results

    opened: dict[str, dict] = st.session_state.setdefault(OPENED_KEY, {})
    if upload:
        files = st.file_uploader(
            "Or open results JSONs from elsewhere",
            type=["json"],
            accept_multiple_files=True,
            key=f"{key}_upload",
        )
        for f in files or []:
            if f.name not in opened:
                with guard(f"reading {f.name}"):
                    opened[f.name] = parse_results(f.getvalue(), f.name)
    options = results_options()
    if not options:
        return None
    current = st.session_state.get(CURRENT_KEY)
    ref = select_on(st, label, options, current, f"{key}_select", format_func=display_ref)
    st.session_state[CURRENT_KEY] = ref
    return ref


def results_options() -> list[str]:
    """References of every results JSON on offer: uploaded in this session first, then files, newest first."""
    opened = st.session_state.get(OPENED_KEY, {})
    return list(opened) + [str(p) for p in evaluation.find_results(results_roots())]


@st.cache_data(max_entries=512, show_spinner=False)
def _pair_key(path: str, mtime: float) -> tuple | None:
    """What pairing two results needs (``training.evaluate.pair_key``), cached small per file; None if unreadable."""
    from training.evaluate import pair_key
    from training.results import load_results

    try:
        return pair_key(load_results(path))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def comparable_results(ref: str, d: dict) -> list[str]:
    """The other results on offer that can be paired with ``d``: same classes, data and split."""
    from training.evaluate import pair_key

    opened = st.session_state.get(OPENED_KEY, {})
    want = pair_key(d)
    return [
        o
        for o in results_options()
        if o != ref and (pair_key(opened[o]) if o in opened else _pair_key(o, Path(o).stat().st_mtime)) == want
    ]


def open_in_explorer(ref: str, true: int | None, pred: int | None) -> None:
    """Switch to the error explorer on a confusion cell, with the cell in the URL (so the view can be shared)."""
    names = load_results_ref(ref)["class_names"]
    view = View(
        true=ANY if true is None else names[true],
        pred=ANY if pred is None else names[pred],
        errors=true is None or true != pred,
    )
    st.session_state[CURRENT_KEY] = ref
    st.switch_page(navigation.page("explorer"), query_params=explorer_params(view, ref))


def explorer_params(view, ref: str) -> dict[str, str]:
    """The explorer's URL: ``view`` (``dashboard.explorer.View``), the results file and this session's reviewer."""
    params = {**view_to_params(view), "results": display_ref(ref)}
    if st.session_state.get(REVIEWER_KEY):
        params[REVIEWER_KEY] = st.session_state[REVIEWER_KEY]
    return params


def secrets_or_none():
    """``st.secrets`` when a ``secrets.toml`` exists (a malformed one raises with its parse error), else None."""
    return st.secrets if st.secrets.load_if_toml_exists() else None


LIVE_KEY = "live.processor"


def live_processor(settings, cam: bool):
    """This session's :class:`dashboard.live.LiveProcessor` for ``settings`` (rebuilt when they change).

    Per session, because it holds the stream's tracking state; the engine inside is the shared cached one.
    """
    from dashboard.live import LiveProcessor, LiveTrace

    key = (settings, cam)
    held = st.session_state.get(LIVE_KEY)
    if held is not None and held[0] == key:
        return held[1]
    if held is not None:
        held[1].stop()
    analyzer = resources.get_analyzer(settings)
    method = settings.explainer if is_cam(settings.explainer) else CAM_FALLBACK

    def explain(rgb, face):
        target = int(face.probs.argmax())
        return explain_crop(analyzer.engine, face.aligned.image, method, target=target, steps=analyzer.steps).heat

    proc = LiveProcessor(analyzer.stream().process, explain if cam else None, trace=LiveTrace.from_env())
    st.session_state[LIVE_KEY] = (key, proc)
    return proc


def sample_file(name: str):
    """``samples/<name>`` of the local datasets folder when present, else None."""
    from training.datasets import data_root

    path = data_root() / "samples" / name
    return path if path.is_file() else None


def try_example(name: str, label: str, key: str) -> tuple[str, bytes] | None:
    """A "Try an example" button for the shared sample ``name``; once clicked, ``(name, bytes)`` on every rerun.

    None when it was not clicked or the samples folder is not here (then no button is drawn).
    """
    path = sample_file(name)
    if path is None:
        return None
    if st.button(label, icon=":material/science:", key=key):
        st.session_state[f"{key}.on"] = True
    return (path.name, path.read_bytes()) if st.session_state.get(f"{key}.on") else None
