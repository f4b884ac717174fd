"""Every dashboard page against the bad-input corpus, through Streamlit's ``AppTest`` -> one outcome per kind x page.

    python tests/harness/reliability_dashboard.py --out bench/results/reliability_dashboard.json

The inputs travel the path a browser's take: ``AppTest``'s ``file_uploader(...).set_value((name, bytes, mime))``
hands the page an ``UploadedFile`` (``name``/``type``/``size``/``getvalue``) through Streamlit's own widget
deserialisation, ``camera_input`` does the same for the live page's snapshot, and results/weights files are
written into ``$FERLENS_RUNS``, where the pages and the sidebar look for them. Nothing is patched.

Pages and what they get:

* ``upload``, ``ablation`` (its photo), ``live`` (its snapshot fallback; the stream itself is
  ``tests/dashboard/test_browser.py``'s): every image kind of ``tests/harness/corpus.py``, and the array
  kinds a PNG can hold exactly (the others, NaN or 5 channels, cannot be a file). A name the uploader would not
  offer (``.gif`` on the ablation page) is uploaded under ``<name>.png``, as a user who renamed it would.
* ``video``: the video kinds (a JPEG named ``.mp4`` among them).
* ``evaluation`` (upload), ``explorer`` and ``model_card`` (``$FERLENS_RUNS``): :func:`results_cases`, a bad-results
  corpus (0 bytes, truncated, not JSON, another tool's JSON, wrong schema version, wrong types, NaN, nesting
  deeper than Python's recursion limit, 20 MB, images missing, a pickle, UTF-16); the ``ablation`` page gets the
  same defects in an ``ablation.json``.
* ``model_card`` (through the sidebar's weights menu): :func:`weights_cases`, broken weights and sidecars.

Each (kind, page) ends in one verdict (:data:`VERDICTS`). ``exception`` (a traceback or ``st.exception``) and
``untyped`` (the page's guard caught an exception ferlens did not raise on purpose, so the user read "The server
log has the details") are failures whatever the input; the rest are judged against the case's ``expect``.
The JSON is ``{"meta": ..., "cases": {kind: {"outcome": one cell, "pages": {page: verdict}, "messages": ...}}}``
(``bench/reliability.py`` merges ``outcome`` into ``docs/reliability.md``'s table).
"""

from __future__ import annotations

import argparse
import io
import json
import math
import os
import pickle
import re
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

APP = ROOT / "dashboard" / "app.py"

VERDICTS = ("exception", "untyped", "error", "warning", "faces", "no_face", "ok", "ignored", "n/a")
"""``ignored``: the file was never offered (not listed as results, not in the weights menu), and the page said
nothing was there; ``n/a``: the input cannot reach that page (an array no file format holds)."""

FAILED = ("exception", "untyped")

ACCEPTS: dict[str, tuple[str, ...]] = {
    "error": ("error",),
    "faces": ("faces",),
    "no_face": ("no_face",),
    "ok": ("faces", "no_face", "ok"),
}
"""Verdicts that satisfy a corpus case's ``expect`` (``tests/harness/corpus.py``)."""

_RANDOM_BANNER = re.compile(r"^Model '.*' runs on random weights")
_FACES = re.compile(r"^(?P<name>.*): (?P<n>\d+) faces?$")
_CLIP = re.compile(r"^(?P<name>.*): (?P<frames>\d+) frames with faces, (?P<tracks>\d+) track\(s\)$")
_UNTYPED = "The server log has the details."
_MAX_MESSAGE = 600


@dataclass(frozen=True)
class Outcome:
    """What one page did with one input."""

    kind: str
    page: str
    verdict: str
    message: str
    accepted: tuple[str, ...]
    seconds: float

    @property
    def passed(self) -> bool:
        return self.verdict not in FAILED and self.verdict in self.accepted

    def line(self) -> str:
        mark = "ok  " if self.passed else "FAIL"
        want = "/".join(self.accepted)
        return f"{mark} {self.kind:28s} {self.page:11s} {self.verdict:8s} (want {want}) {self.message}"


# --------------------------------------------------------------------------------------------------------------
# The app under test


@dataclass(frozen=True)
class DashboardEnv:
    """An isolated runs folder, verdict DB and data folder (the variables every page reads)."""

    runs: Path
    db: Path
    data: Path

    def variables(self) -> dict[str, str]:
        return {"FERLENS_RUNS": str(self.runs), "FERLENS_DB": str(self.db), "FERLENS_DATA": str(self.data)}

    def clear_runs(self) -> None:
        """Empty the runs folder (one results or weights case at a time); only ever a temporary one."""
        if not self.runs.resolve().is_relative_to(Path(tempfile.gettempdir()).resolve()):
            raise ValueError(f"{self.runs} is not under {tempfile.gettempdir()}: refusing to empty it")
        shutil.rmtree(self.runs, ignore_errors=True)
        self.runs.mkdir(parents=True)


def open_page(page: str, timeout: float = 300):
    """The app run once through its entry script (sidebar, banner, page guard), then switched to ``page``."""
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(APP), default_timeout=timeout)
    at.run()
    return at.switch_page(f"../pages/{page}.py").run()


def _texts(elements) -> list[str]:
    return [str(e.value) for e in elements]


def _noise(page: str, text: str) -> bool:
    """Messages every run of a page shows whatever the input (so they say nothing about it)."""
    if _RANDOM_BANNER.match(text):  # no weights are shipped yet: every page warns, rightly
        return True
    return page == "live" and text.startswith("Starting the WebRTC stream failed")  # AppTest has no server session


def _plain(text: str) -> bool:
    return "Traceback" not in text and '  File "' not in text and len(text) <= _MAX_MESSAGE


def classify(at, page: str, success: Callable[[object], tuple[str, str] | None]) -> tuple[str, str]:
    """``(verdict, message)`` of a finished run: exceptions first, then errors, warnings, then ``success(at)``."""
    if at.exception:
        return "exception", _texts(at.exception)[0].splitlines()[0][:200]
    errors = [t for t in _texts(at.error) if not _noise(page, t)]
    warnings = [t for t in _texts(at.warning) if not _noise(page, t)]
    for text in errors + warnings:
        if not _plain(text):
            return "exception", f"not a plain message: {text[:200]}"
    untyped = [t for t in errors if t.endswith(_UNTYPED)]
    if untyped:
        return "untyped", untyped[0]
    if errors:
        return "error", errors[0]
    if warnings:
        return "warning", warnings[0]
    found = success(at)
    if found is not None:
        return found
    infos = _texts(at.info)
    return "ignored", infos[0] if infos else "nothing shown"


def _timed_run(at, page: str, success) -> tuple[str, str, float]:
    t0 = time.perf_counter()
    at.run()
    verdict, message = classify(at, page, success)
    return verdict, message, time.perf_counter() - t0


# --------------------------------------------------------------------------------------------------------------
# What success looks like on each page


def _photo_success(at) -> tuple[str, str] | None:
    for text in _texts(at.subheader):
        m = _FACES.match(text)
        if m:
            n = int(m["n"])
            return ("faces" if n else "no_face"), text
    return None


def _ablation_success(at) -> tuple[str, str] | None:
    captions = [c for img in at.image for c in img.captions]
    if not any(c.startswith("full: ") for c in captions):
        return None
    tables = [e.value for e in at.dataframe if "variant" in getattr(e.value, "columns", ())]
    n = int((tables[0]["variant"] == "full").sum()) if tables else 0  # no face: an empty table, no columns
    return ("faces" if n else "no_face"), f"full and ablated model shown: {n} face(s)"


def _video_success(at) -> tuple[str, str] | None:
    for text in _texts(at.subheader):
        m = _CLIP.match(text)
        if m:
            return ("faces" if int(m["tracks"]) else "no_face"), text
    return None


def _evaluation_success(at) -> tuple[str, str] | None:
    acc = [m for m in at.metric if m.label == "accuracy"]
    return ("ok", f"accuracy {acc[0].value} shown") if acc else None


def _explorer_success(at) -> tuple[str, str] | None:
    shown = [c.value for c in at.caption if str(c.value).startswith("#")]
    return ("ok", f"{len(shown)} images in the gallery") if shown else None


def _model_card_success(at) -> tuple[str, str] | None:
    params = [m for m in at.metric if m.label == "Parameters"]
    return ("ok", f"card drawn ({params[0].value} parameters)") if params else None


def _report_success(at) -> tuple[str, str] | None:
    tables = [m.value for m in at.markdown if str(m.value).startswith("# Ablation")]
    return ("ok", "ablation table drawn") if tables else None


# --------------------------------------------------------------------------------------------------------------
# Corpus files as uploads


@dataclass(frozen=True)
class Upload:
    """One corpus case as a browser would send it."""

    kind: str
    name: str
    data: bytes
    mime: str
    expect: str


_MIME = {
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".png": "image/png",
    ".gif": "image/gif",
    ".webp": "image/webp",
    ".bmp": "image/bmp",
    ".tif": "image/tiff",
    ".tiff": "image/tiff",
    ".mp4": "video/mp4",
    ".avi": "video/x-msvideo",
    ".mov": "video/quicktime",
    ".json": "application/json",
}


def png_exactly(arr: np.ndarray) -> bytes | None:
    """``arr`` as a PNG when the PNG decodes back to the very same array, else None (it cannot be a file)."""
    from PIL import Image

    try:
        im = Image.fromarray(arr)
        buf = io.BytesIO()
        im.save(buf, "PNG")
        back = np.asarray(Image.open(io.BytesIO(buf.getvalue())))
    except (TypeError, ValueError, OSError, KeyError):
        return None
    if back.shape != arr.shape or back.dtype != arr.dtype or not np.array_equal(back, arr):
        return None
    return buf.getvalue()


def as_upload(case, allowed: tuple[str, ...]) -> Upload | None:
    """A corpus case as ``(name, bytes, mime)`` for an uploader taking ``allowed`` extensions (None: impossible)."""
    if case.array is not None:
        data = png_exactly(case.array)
        name = f"{case.kind}.png"
    else:
        data, name = case.path.read_bytes(), case.path.name
    if data is None:
        return None
    suffix = Path(name).suffix.lower()
    if suffix.lstrip(".") not in allowed:  # the browser would not offer it: the user renames it
        name, suffix = f"{name}.{allowed[0]}", f".{allowed[0]}"
    return Upload(case.kind, name, data, _MIME.get(suffix, "application/octet-stream"), case.expect)


def image_cases(corpus) -> list:
    return [c for c in corpus if c.media in ("image", "array")]


def video_cases(corpus) -> list:
    return [c for c in corpus if c.media == "video"]


# --------------------------------------------------------------------------------------------------------------
# Image and video pages


UPLOAD_TYPES = ("jpg", "jpeg", "png", "webp", "bmp", "tif", "tiff", "gif")
ABLATION_TYPES = ("png", "jpg", "jpeg", "webp", "bmp")
VIDEO_TYPES = ("mp4", "mov", "avi", "mkv", "webm", "m4v")


def _uploader(key: str) -> Callable:
    return lambda at, up: at.file_uploader(key=key).set_value((up.name, up.data, up.mime))


PHOTO_PAGES: dict[str, tuple[tuple[str, ...], Callable, Callable]] = {
    "upload": (UPLOAD_TYPES, _uploader("up_files"), _photo_success),
    # the live page's snapshot fallback: ``camera_input`` always sends ``*.jpg``/``image/jpeg``, any bytes
    "live": (
        UPLOAD_TYPES,
        lambda at, up: at.camera_input(key="live_snapshot").set_value(("shot.jpg", up.data, "image/jpeg")),
        _photo_success,
    ),
    "ablation": (ABLATION_TYPES, _uploader("abl_file"), _ablation_success),  # full and ablated model on the photo
}
"""Page -> (file types it takes, how a photo is given to it, what success looks like)."""


def run_photo_page(corpus, page: str) -> Iterator[Outcome]:
    """One page of :data:`PHOTO_PAGES`, one AppTest, one photo at a time."""
    types, give, success = PHOTO_PAGES[page]
    at = open_page(page)
    for case in image_cases(corpus):
        up = as_upload(case, types)
        if up is None:
            yield Outcome(case.kind, page, "n/a", "no file format holds this array exactly", ("n/a",), 0.0)
            continue
        give(at, up)
        verdict, message, s = _timed_run(at, page, success)
        yield Outcome(case.kind, page, verdict, message, ACCEPTS[case.expect], s)


def run_video_page(corpus, skip: int = 5) -> Iterator[Outcome]:
    """The video page, one AppTest, one clip at a time (every ``skip + 1``-th frame analysed)."""
    at = open_page("video")
    at.number_input(key="vid_skip").set_value(skip)
    for case in video_cases(corpus):
        up = as_upload(case, VIDEO_TYPES)
        at.file_uploader(key="vid_file").set_value((up.name, up.data, up.mime))
        verdict, message, s = _timed_run(at, "video", _video_success)
        yield Outcome(case.kind, "video", verdict, message, ACCEPTS[case.expect], s)


# --------------------------------------------------------------------------------------------------------------
# Results and ablation reports


@dataclass(frozen=True)
class FileCase:
    """A results JSON, ablation report or weights file a page reads; ``bad`` means it must be refused."""

    kind: str
    data: bytes | None
    bad: bool
    note: str
    images_missing: bool = False
    sidecar: bytes | None = None


def synthetic_results(n: int = 60, seed: int = 0, source: str | None = None, ids=None, paths=None) -> dict:
    """A valid results JSON (``training.results`` schema) of made-up predictions on FER2013 test rows.

    The numbers come from ``core.metrics.summarize`` like ``training.evaluate``'s, without running a model.
    """
    from core.labels import EMOTIONS_7
    from core.metrics import summarize
    from training.results import SCHEMA, validate_results

    rng = np.random.default_rng(seed)
    y = np.arange(n) % len(EMOTIONS_7)
    logits = rng.normal(size=(n, len(EMOTIONS_7)))
    logits[np.arange(n), y] += 1.5
    probs = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    probs = np.round(probs, 6)
    top2 = np.sort(probs, axis=1)[:, -2:]
    predictions = {
        "id": [int(i) for i in (ids if ids is not None else 32298 + np.arange(n))],  # PrivateTest rows
        "true": y.tolist(),
        "pred": probs.argmax(1).tolist(),
        "confidence": top2[:, 1].tolist(),
        "margin": (top2[:, 1] - top2[:, 0]).round(6).tolist(),
        "probs": probs.tolist(),
    }
    if paths is not None:
        predictions["path"] = list(paths)
    meta = {
        "model": "default",
        "spec": {},
        "weights": None,
        "weights_sha256": None,
        "data": {"source": source or "fer2013:fer2013.csv.gz", "split": "test", "n": n, "limit": None},
        "tta_hflip": False,
        "git_commit": None,
        "date": "2026-01-01T00:00:00+00:00",
        "command": None,
    }
    d = {"schema": SCHEMA, "meta": meta, "class_names": list(EMOTIONS_7)}
    d.update(summarize(y, probs, EMOTIONS_7, n_resamples=50, seed=seed))
    d["predictions"] = predictions
    validate_results(d)
    return d


def synthetic_report() -> dict:
    """A valid ``ablation.json`` (``training.ablate``'s report) with one rung."""
    cell = {"mean": 0.5, "std": None, "ci_low": None, "ci_high": None, "values": [0.5]}
    metrics = ("accuracy", "macro_f1", "weighted_f1", "roc_auc_macro", "ece")
    meta = {"seeds": [0], "limit": 64, "eval_limit": None, "epochs": 1, "overrides": [], "command": "x"}
    meta.update(git_commit=None, date="2026-01-01", splits=["test"])
    summary = [{"rung": "default", "seeds": [0], "splits": {"test": dict.fromkeys(metrics, cell)}}]
    return {"meta": meta, "summary": summary, "comparisons": []}


def _deep(prefix: str) -> bytes:
    depth = 100_000  # far past Python's recursion limit: json.loads raises RecursionError, not a JSONDecodeError
    return (prefix + "[" * depth + "]" * depth + "}").encode()


def _huge(d: dict) -> bytes:
    return json.dumps({**d, "padding": "x" * 20_000_000}).encode()  # 20 MB: under the 25 MB upload limit


def results_cases() -> list[FileCase]:
    """Results JSONs that the evaluation page, the explorer and the model card must refuse (or show) plainly."""
    good = synthetic_results()
    text = json.dumps(good).encode()
    wrong_types = json.loads(text)
    wrong_types["class_names"] = ",".join(good["class_names"])
    wrong_types["meta"]["data"]["n"] = "60"
    nan = json.loads(text)
    nan["metrics"]["accuracy"]["value"] = math.nan
    version = {**json.loads(text), "schema": "ferlens.results/2"}
    far = synthetic_results(ids=10_000_000 + np.arange(60))
    paths = [f"/nonexistent/ferlens-faces/{i}.png" for i in range(60)]
    folder = synthetic_results(source="folder:/nonexistent/ferlens-faces", paths=paths)
    return [
        FileCase("results_valid", text, False, "a valid results JSON (control)"),
        FileCase("results_zero_byte", b"", True, "0-byte .json"),
        FileCase("results_truncated", text[: len(text) // 2], True, "a results JSON cut at half"),
        FileCase("results_not_json", b"name,age\nalice,31\n" * 20, True, "CSV text named .json"),
        FileCase("results_foreign_json", b'{"accuracy": 0.9, "rows": [1, 2]}', True, "another tool's JSON"),
        FileCase("results_schema_version", json.dumps(version).encode(), True, "schema ferlens.results/2"),
        FileCase("results_wrong_types", json.dumps(wrong_types).encode(), True, "class_names a string, n a string"),
        FileCase("results_nan", json.dumps(nan).encode(), True, "accuracy NaN (Python's json writes it)"),
        FileCase("results_deep_nesting", _deep('{"schema":"ferlens.results/1","meta":'), True, "100k nested ["),
        FileCase("results_huge", _huge(good), False, "valid, plus 20 MB of padding"),
        FileCase("results_missing_images_fer", json.dumps(far).encode(), False, "ids past FER2013's rows", True),
        FileCase("results_missing_images_folder", json.dumps(folder).encode(), False, "paths that do not exist", True),
        FileCase("results_pickle", pickle.dumps(good), True, "a pickle named .json"),
        FileCase("results_utf16", json.dumps(good).encode("utf-16"), True, "valid JSON in UTF-16"),
    ]


def report_cases() -> list[FileCase]:
    """The same defects in an ``ablation.json`` (the ablation page's training table)."""
    good = synthetic_report()
    text = json.dumps(good).encode()
    wrong_types = {"meta": ["seeds"], "summary": "none", "comparisons": 5}
    nan = json.loads(text)
    nan["summary"][0]["splits"]["test"]["accuracy"]["mean"] = math.nan
    return [
        FileCase("results_valid", text, False, "a valid ablation report (control)"),
        FileCase("results_zero_byte", b"", True, "0-byte ablation.json"),
        FileCase("results_truncated", text[: len(text) // 2], True, "cut at half"),
        FileCase("results_not_json", b"name,age\nalice,31\n" * 20, True, "CSV text"),
        FileCase("results_foreign_json", b'{"accuracy": 0.9, "rows": [1, 2]}', True, "another tool's JSON"),
        FileCase("results_schema_version", json.dumps(synthetic_results()).encode(), True, "a results JSON instead"),
        FileCase("results_wrong_types", json.dumps(wrong_types).encode(), True, "meta a list, summary a string"),
        FileCase("results_nan", json.dumps(nan).encode(), False, "a NaN mean (shown as nan)"),
        FileCase("results_deep_nesting", _deep('{"meta":'), True, "100k nested ["),
        FileCase("results_huge", _huge(good), False, "valid, plus 20 MB of padding"),
        FileCase("results_pickle", pickle.dumps(good), True, "a pickle named ablation.json"),
        FileCase("results_utf16", json.dumps(good).encode("utf-16"), True, "valid JSON in UTF-16"),
    ]


def _listed(path: Path) -> bool:
    from training.runs import is_results_file

    return is_results_file(path)


def _results_accepts(case: FileCase, page: str, listed: bool) -> tuple[str, ...]:
    if page == "evaluation":  # uploaded: always parsed
        return ("error",) if case.bad else ("ok",)
    if case.bad:
        return ("error",) if listed else ("ignored",)
    if case.images_missing and page == "explorer":
        return ("error",)  # the gallery stays, each missing image says why
    return ("ok",)


def run_evaluation_uploads(cases: list[FileCase]) -> Iterator[Outcome]:
    """The evaluation page's "open results JSONs" uploader, one file per run, in a clean upload list."""
    from dashboard.widgets import OPENED_KEY

    at = open_page("evaluation")
    for case in cases:
        at.session_state[OPENED_KEY] = {}  # what this session opened before does not count
        at.file_uploader(key="results_upload").set_value((f"{case.kind}.json", case.data, "application/json"))
        verdict, message, s = _timed_run(at, "evaluation", _evaluation_success)
        yield Outcome(case.kind, "evaluation", verdict, message, _results_accepts(case, "evaluation", True), s)


def run_runs_folder(env: DashboardEnv, page: str, cases: list[FileCase], success) -> Iterator[Outcome]:
    """``page`` reading one results file at a time from ``$FERLENS_RUNS`` (the explorer, the model card)."""
    env.clear_runs()
    at = open_page(page)
    for case in cases:
        env.clear_runs()
        path = env.runs / case.kind / "results.json"
        path.parent.mkdir(parents=True)
        path.write_bytes(case.data)
        verdict, message, s = _timed_run(at, page, success)
        listed = _listed(path)
        if verdict == "ok" and not listed:  # the page works and the file was never offered (the model card)
            verdict, message = "ignored", f"not listed as a results file; {message}"
        yield Outcome(case.kind, page, verdict, message, _results_accepts(case, page, listed), s)
    env.clear_runs()


def run_ablation_reports(env: DashboardEnv, cases: list[FileCase]) -> Iterator[Outcome]:
    """The ablation page's training table, one ``ablation.json`` at a time under ``$FERLENS_RUNS``."""
    env.clear_runs()
    at = open_page("ablation")
    # the page also runs both models on a photo every time; a blank 8x8 one makes that instant
    at.file_uploader(key="abl_file").set_value(
        ("blank.png", png_exactly(np.full((8, 8, 3), 128, np.uint8)), "image/png")
    )
    for case in cases:
        env.clear_runs()
        path = env.runs / case.kind / "ablation.json"
        path.parent.mkdir(parents=True)
        path.write_bytes(case.data)
        verdict, message, s = _timed_run(at, "ablation", _report_success)
        yield Outcome(case.kind, "ablation", verdict, message, ("error",) if case.bad else ("ok",), s)
    env.clear_runs()


# --------------------------------------------------------------------------------------------------------------
# Weights files (the sidebar's menu, read by every page; the model card reads the sidecar)


def weights_cases() -> list[FileCase]:
    """Weights files and sidecars under ``$FERLENS_RUNS`` that the sidebar may offer and the model card reads."""
    import torch
    from safetensors.torch import save as save_tensors

    from core.models import create_model

    torch.manual_seed(0)
    state = {k: v.contiguous() for k, v in create_model("default").state_dict().items()}
    valid = save_tensors(state)
    default = json.dumps({"model": "default"}).encode()
    odd = {"command": 12, "val": "high", "epoch": [1], "spec": 5, "config": "x"}
    return [
        FileCase("weights_valid", valid, False, "weights of the default model, no sidecar (control)"),
        FileCase("weights_zero_byte", b"", True, "0-byte .safetensors", sidecar=default),
        FileCase("weights_garbage", np.random.default_rng(0).bytes(4096), True, "random bytes", sidecar=default),
        FileCase(
            "weights_mismatch", save_tensors({"x": torch.zeros(3)}), True, "another net's tensors", sidecar=default
        ),
        FileCase(
            "weights_pickle", pickle.dumps(state), True, "a torch-style pickle named .safetensors", sidecar=default
        ),
        FileCase("sidecar_invalid_json", valid, False, "valid weights, sidecar not JSON", sidecar=b"{oops"),
        FileCase("sidecar_not_object", valid, False, "valid weights, sidecar a JSON list", sidecar=b"[1, 2]"),
        FileCase(
            "sidecar_wrong_types",
            valid,
            False,
            "valid weights, sidecar fields of odd types",
            sidecar=json.dumps(odd).encode(),
        ),  # fmt: skip
    ]


def _weights_accepts(case: FileCase, offered: bool) -> tuple[str, ...]:
    if case.bad:
        return ("error",)
    if not offered:
        return ("ignored",)  # a sidecar the sidebar cannot read keeps the file out of the menu
    return ("ok",)


def run_weights(env: DashboardEnv, cases: list[FileCase]) -> Iterator[Outcome]:
    """The model card with each weights file chosen in the sidebar (when the sidebar offers it)."""
    env.clear_runs()
    at = open_page("model_card")
    for case in cases:
        env.clear_runs()
        path = env.runs / case.kind / "best.safetensors"
        path.parent.mkdir(parents=True)
        path.write_bytes(case.data)
        if case.sidecar is not None:
            path.with_suffix(".json").write_bytes(case.sidecar)
        t0 = time.perf_counter()
        at.run()  # the sidebar lists the weights now under runs/
        menus = [s for s in at.selectbox if s.key == "sb_weights"]  # absent when the sidebar itself failed
        offered = bool(menus) and str(path) in menus[0].options
        if offered:
            menus[0].set_value(str(path))
        verdict, message, _ = _timed_run(at, "model_card", _model_card_success)
        if verdict == "ok" and not offered:
            verdict, message = "ignored", f"not offered in the weights menu; {message}"
        seconds = time.perf_counter() - t0
        yield Outcome(case.kind, "model_card", verdict, message, _weights_accepts(case, offered), seconds)
        if offered:
            at.selectbox(key="sb_weights").set_value("default").run()
    env.clear_runs()


# --------------------------------------------------------------------------------------------------------------
# All of it


@contextmanager
def dashboard_env(root: Path, data: Path) -> Iterator[DashboardEnv]:
    """Point the process at a fresh runs folder and DB under ``root`` for the duration (restores os.environ)."""
    env = DashboardEnv(root / "runs", root / "verdicts.db", data)
    env.clear_runs()
    saved = {k: os.environ.get(k) for k in env.variables()}
    os.environ.update(env.variables())
    try:
        yield env
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def run_all(corpus, env: DashboardEnv) -> list[Outcome]:
    """Every page over its share of the corpus (image, video, results, reports, weights)."""
    results = results_cases()
    out: list[Outcome] = []
    for page in PHOTO_PAGES:
        out += run_photo_page(corpus, page)
    out += run_video_page(corpus)
    out += run_evaluation_uploads(results)
    out += run_runs_folder(env, "explorer", results, _explorer_success)
    out += run_runs_folder(env, "model_card", results, _model_card_success)
    out += run_ablation_reports(env, report_cases())
    out += run_weights(env, weights_cases())
    return out


def summary(outcomes: list[Outcome]) -> str:
    """One table cell for a kind: pages grouped by verdict (``error: upload, live, ablation``), failures marked."""
    groups: dict[str, list[str]] = {}
    for o in outcomes:
        label = o.verdict if o.passed else f"{o.verdict} (NOT AS EXPECTED)"
        groups.setdefault(label, []).append(o.page)
    return "; ".join(f"{label}: {', '.join(pages)}" for label, pages in groups.items())


def table(outcomes: list[Outcome]) -> dict[str, dict]:
    """``{kind: {"outcome": summary, "pages": {page: verdict}, "messages": {page: message}}}``, in run order."""
    by_kind: dict[str, list[Outcome]] = {}
    for o in outcomes:
        by_kind.setdefault(o.kind, []).append(o)
    return {
        kind: {
            "outcome": summary(rows),
            "passed": all(o.passed for o in rows),
            "pages": {o.page: o.verdict for o in rows},
            "messages": {o.page: o.message for o in rows if o.verdict != "n/a"},
        }
        for kind, rows in by_kind.items()
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args(argv)
    from tests.harness.corpus import build_corpus

    data = Path(os.environ.get("FERLENS_DATA") or ROOT.parent / "shared" / "datasets").resolve()
    with tempfile.TemporaryDirectory(prefix="ferlens-rel-dash-") as tmp:
        corpus = build_corpus(Path(tmp) / "corpus", data / "samples")
        t0 = time.perf_counter()
        with dashboard_env(Path(tmp), data) as env:
            outcomes = run_all(corpus, env)
        total = time.perf_counter() - t0
    for o in outcomes:
        print(o.line())
    failed = [o for o in outcomes if not o.passed]
    print(f"{len(outcomes)} page runs in {total:.0f} s; {len(failed)} not as expected")
    import streamlit

    from bench.common import machine_info

    meta = {
        "command": "python tests/harness/reliability_dashboard.py "
        + " ".join(argv if argv is not None else sys.argv[1:]),
        "page_runs": len(outcomes),
        "not_as_expected": len(failed),
        "seconds": round(total, 1),
        "streamlit": streamlit.__version__,
        "machine": machine_info(),
        "load_avg_1m": os.getloadavg()[0],
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"meta": meta, "cases": table(outcomes)}, indent=1) + "\n")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
