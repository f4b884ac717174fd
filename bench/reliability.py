"""The bad-input corpus through every entry point, with the peak memory of each case.

    python bench/reliability.py --out bench/results/reliability.json --write-docs
    python bench/reliability.py --docs-only     # after the dashboard's JSON changed: merge it, rewrite the table

Each case of ``tests/harness/corpus.py`` goes through ``core.io``, the Detector, the engine and the CLI; then the
largest inputs the limits let through, whose peak memory is the measured side of the bound in
``docs/reliability.md``. ``bench/results/reliability_dashboard.json`` adds a dashboard column when present.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import re
import resource
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

from bench.common import machine_info, replace_section, write_json  # noqa: E402
from core.io import MAX_BYTES, MAX_PIXELS, ImageLoadError, iter_video_frames, load_image  # noqa: E402
from tests.harness.corpus import Case, PeakRss, build_corpus  # noqa: E402

START, END = "<!-- corpus-table:start -->", "<!-- corpus-table:end -->"
DASHBOARD_JSON = REPO / "bench" / "results" / "reliability_dashboard.json"
CLI_LINE = re.compile(r"^(error|note|WARNING|INFO): ")
MiB = 2**20
ENTRY_POINTS = ("io", "detector", "engine", "cli")


@dataclass
class Outcome:
    """What one entry point did with one case."""

    status: str  # "error" | "faces" | "no_face" | "loaded" | "crash" | "n/a"
    faces: int | None = None
    error: str | None = None  # the exception class
    message: str | None = None
    as_expected: bool | None = None
    rc: int | None = None  # CLI exit status
    peak_mib: float | None = None  # peak RSS growth of the call

    def cell(self) -> str:
        if self.status == "n/a":
            return "–"
        text = {
            "error": "`error:` line" if self.rc is not None else (self.error or "error"),
            "faces": f"{self.faces} face" + ("s" if self.faces != 1 else ""),
            "no_face": "no face",
            "loaded": "loaded",
        }.get(self.status, f"CRASH {self.error}")
        if self.rc is not None:
            text += f" (rc {self.rc})"
        return text if self.as_expected in (True, None) else f"⚠ {text}"


def _judge(case: Case, out: Outcome) -> Outcome:
    if out.status == "crash":
        out.as_expected = False
    elif case.expect == "error":
        out.as_expected = out.status == "error"
    elif out.status == "loaded":  # core.io loads; it does not look for faces
        out.as_expected = True
    elif case.expect in ("faces", "no_face"):
        out.as_expected = out.status == case.expect
    else:
        out.as_expected = out.status in ("faces", "no_face", "loaded")
    return out


def _error(exc: BaseException, typed: tuple[type, ...]) -> Outcome:
    msg = " ".join(str(exc).split())
    plain = bool(msg) and "Traceback" not in msg and " object at 0x" not in msg
    if isinstance(exc, typed) and plain:
        return Outcome("error", error=type(exc).__name__, message=msg)
    return Outcome("crash", error=type(exc).__name__, message=msg)


def run_io(case: Case) -> Outcome:
    try:
        if case.media == "video":
            n = sum(1 for _ in iter_video_frames(case.path, max_frames=3))
            return _judge(case, Outcome("loaded", message=f"{n} frame(s)"))
        rgb = load_image(case.array if case.media == "array" else case.path)
        return _judge(case, Outcome("loaded", message=f"{rgb.shape[1]}x{rgb.shape[0]} RGB"))
    except Exception as exc:
        return _judge(case, _error(exc, (ImageLoadError,)))


def run_detector(case: Case, det) -> Outcome:
    src = case.array if case.media == "array" else case.path
    fn = (lambda: det.detect_video(src)) if case.media == "video" else (lambda: det.detect_image(src))
    peak, df, exc = PeakRss.measure(fn)
    if exc is not None:
        out = _error(exc, (ImageLoadError,))
    else:
        out = Outcome("faces" if len(df) else "no_face", faces=len(df))
    out.peak_mib = round(peak.growth / MiB, 1)
    return _judge(case, out)


def run_engine(case: Case, engine) -> Outcome:
    if case.media != "array":
        return Outcome("n/a")
    try:
        probs = engine.predict(case.array)
        # the engine classifies crops: it has no face count; a uint8 crop it accepts is "loaded"
        out = Outcome("loaded", message=f"{probs.shape[0]} crop(s) classified")
        out.as_expected = case.array.dtype == np.uint8 and case.array.shape[-1] in (1, 3)
        return out
    except Exception as exc:
        out = _error(exc, (TypeError, ValueError))
    # the engine refuses what is not a uint8 (H, W[, 3]) crop, including valid RGBA images: that is its contract
    out.as_expected = out.status == "error"
    return out


def run_cli_each(case: Case, tmp: Path) -> Outcome:
    """``main(["predict", FILE])`` in-process: exit status, own stderr lines, rows."""
    import pandas as pd

    from core.__main__ import main

    if case.path is None:
        return Outcome("n/a")
    out_csv = tmp / f"cli_{case.kind}.csv"
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        try:
            rc = main(["predict", str(case.path), "--out", str(out_csv), "--backend", "torch"])
        except BaseException as exc:  # noqa: BLE001 - a crash is what is being looked for
            return Outcome("crash", error=type(exc).__name__, message=str(exc), as_expected=False)
    lines = [ln for ln in err.getvalue().splitlines() if ln.startswith(("error:", "note:"))]
    if rc == 1 and lines and lines[0].startswith(f"error: {case.path}: "):
        message = lines[0].removeprefix(f"error: {case.path}: ")
        out = Outcome("error", error="error line", message=message, rc=rc)
    elif rc == 0:
        n = len(pd.read_csv(out_csv))
        out = Outcome("faces" if n else "no_face", faces=n, rc=rc)
    else:
        out = Outcome("crash", error=f"exit {rc}", message=" | ".join(lines), rc=rc)
    return _judge(case, out)


def run_cli_process(cases: list[Case], tmp: Path) -> dict[str, Any]:
    """One real ``python -m core predict`` over every file: stray stderr lines, tracebacks, peak RSS."""
    files = [c for c in cases if c.path is not None]
    out = tmp / "cli_all.csv"
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "core", "predict", *(str(c.path) for c in files), "--out", str(out)]
    t0 = time.perf_counter()
    proc = subprocess.run([*cmd, "--backend", "torch"], capture_output=True, text=True, env=env, cwd=REPO)
    wall = time.perf_counter() - t0
    peak_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    stray = [ln for ln in proc.stderr.splitlines() if not CLI_LINE.match(ln)]
    return {
        "files": len(files),
        "returncode": proc.returncode,
        "traceback": "Traceback" in proc.stderr,
        "stray_stderr_lines": stray,
        "error_lines": sum(ln.startswith("error: ") for ln in proc.stderr.splitlines()),
        "peak_rss_mib": round(peak_kib / 1024, 1),
        "wall_s": round(wall, 1),
    }


# --------------------------------------------------------------------------------------------------------------
# The largest inputs the limits allow


def limit_probes(dest: Path) -> list[tuple[str, str, Path]]:
    """Files just inside MAX_PIXELS (or MAX_BYTES) in the costliest decoding paths: (name, what, path)."""
    side = int(MAX_PIXELS**0.5) - 1  # 6323 x 6323 = 39.98 MP
    yy, xx = np.mgrid[0:side, 0:side]
    grad = ((xx + yy) % 256).astype(np.uint8)
    del yy, xx
    probes = []

    def save(name: str, what: str, im: Image.Image, fmt: str, **kw) -> None:
        path = dest / name
        im.save(path, fmt, **kw)
        probes.append((path.stem, what, path))

    rgb = Image.fromarray(np.dstack([grad, grad[::-1], grad[:, ::-1]]))
    exif = Image.Exif()
    exif[0x0112] = 6
    save("limit_rgb_jpeg_exif", f"{side}x{side} RGB JPEG, EXIF orientation 6", rgb, "JPEG", quality=80, exif=exif)
    rgba = Image.fromarray(np.dstack([grad, grad[::-1], grad[:, ::-1], grad.T]), "RGBA")
    what = f"{side}x{side} RGBA PNG, EXIF orientation 6 (rotated, then alpha composited: the costliest path)"
    save("limit_rgba_png_exif", what, rgba, "PNG", compress_level=1, exif=exif)
    del rgba
    save("limit_cmyk_jpeg", f"{side}x{side} CMYK JPEG", rgb.convert("CMYK"), "JPEG", quality=80)
    del rgb
    gray16 = Image.fromarray(grad.astype(np.uint16) * 257)
    save("limit_gray16_png", f"{side}x{side} 16-bit gray PNG", gray16, "PNG", compress_level=1)
    del gray16, grad
    noise = np.random.default_rng(0).integers(0, 256, (4000, 4000, 3), dtype=np.uint8)
    save("limit_bytes_png", "4000x4000 RGB noise PNG (48 MB, near MAX_BYTES)", Image.fromarray(noise), "PNG",
         compress_level=1)  # fmt: skip
    return probes


def measure_limits(det, tmp: Path) -> list[dict[str, Any]]:
    rows = []
    for name, what, path in limit_probes(tmp):
        size = path.stat().st_size
        io_peak, rgb, io_exc = PeakRss.measure(lambda p=path: load_image(p))
        shape = None if rgb is None else list(rgb.shape)
        del rgb
        det_peak, df, det_exc = PeakRss.measure(lambda p=path: det.detect_image(p))
        rows.append(
            {
                "name": name,
                "what": what,
                "file_mib": round(size / MiB, 1),
                "decoded_shape": shape,
                "load_image_peak_mib": round(io_peak.growth / MiB, 1),
                "detector_peak_mib": round(det_peak.growth / MiB, 1),
                "faces": None if df is None else len(df),
                "error": None if io_exc is None and det_exc is None else repr(io_exc or det_exc),
            }
        )
        path.unlink()
    return rows


# --------------------------------------------------------------------------------------------------------------
# Report


def dashboard_column() -> dict[str, str] | None:
    """``{kind: cell}`` from ``tests/harness/reliability_dashboard.py``'s JSON, when it has been written."""
    if not DASHBOARD_JSON.is_file():
        return None
    cases = json.loads(DASHBOARD_JSON.read_text())["cases"]
    return {kind: ("⚠ " if v["passed"] is False else "") + v["outcome"] for kind, v in cases.items()}


def markdown_table(report: dict[str, Any]) -> str:
    dash = report.get("dashboard")
    head = ["kind", "what it is", "expect", "core.io", "Detector", "engine", "CLI", "peak MiB"]
    if dash is not None:
        head.insert(7, "dashboard")
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for row in report["cases"]:
        cells = [f"`{row['kind']}`", row["note"], row["expect"]]
        cells += [Outcome(**row[k]).cell() for k in ENTRY_POINTS]
        if dash is not None:
            cells.append(dash.get(row["kind"], "–"))
        peak = row["detector"].get("peak_mib")
        cells.append("–" if peak is None else f"{peak:.0f}")
        lines.append("| " + " | ".join(cells) + " |")
    s, c = report["summary"], report["cli_process"]
    lines += [
        "",
        f"{s['cases']} kinds, {s['cells']} answers; crashes: **{s['crashes']}**, answers other than expected: "
        f"**{s['unexpected']}**. Peak RSS growth of one Detector call over the corpus: {s['max_peak_mib']:.0f} MiB "
        f"(`{s['max_peak_kind']}`). One CLI process over all {c['files']} files: exit {c['returncode']}, "
        f"{c['error_lines']} `error:` lines, {len(c['stray_stderr_lines'])} stray stderr lines, traceback: "
        f"{'yes' if c['traceback'] else 'no'}, peak RSS {c['peak_rss_mib']:.0f} MiB.",
        "",
        "Messages (from `core.io`; the CLI prints the same after `error: PATH: `, the engine its own):",
        "",
        "| kind | message |",
        "|---|---|",
    ]
    for row in report["cases"]:
        msg = next(
            (row[k]["message"] for k in ("io", "engine") if row[k]["status"] == "error" and row[k]["message"]), None
        )
        if msg:
            lines.append(f"| `{row['kind']}` | {msg.replace('|', '/')} |")
    lines += ["", "Largest inputs the limits let through (peak RSS growth of one call):", ""]
    lines += ["| input | file MiB | `load_image` MiB | Detector MiB |", "|---|---|---|---|"]
    for p in report["limit_probes"]:
        lines.append(
            f"| {p['what']} | {p['file_mib']} | {p['load_image_peak_mib']:.0f} | {p['detector_peak_mib']:.0f} |"
        )
    return "\n".join(lines)


def write_docs(report: dict[str, Any], doc: Path) -> None:
    text = doc.read_text() if doc.is_file() else "# Reliability\n\n## Bad-input corpus\n\n" + START + "\n" + END + "\n"
    if START not in text or END not in text:
        raise SystemExit(f"{doc}: the markers {START} / {END} are missing; add them under '## Bad-input corpus'")
    doc.write_text(replace_section(text, markdown_table(report), START, END))


def save(report: dict[str, Any], out: Path, docs: Path | None) -> None:
    """Merge the dashboard column when its JSON exists, write ``out`` and, given ``docs``, the docs table."""
    dash = dashboard_column()
    if dash is not None:
        report["dashboard"] = dash
    write_json(out, report, indent=1)
    if docs is not None:
        write_docs(report, docs)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "reliability.json")
    ap.add_argument("--write-docs", action="store_true", help="regenerate the table in docs/reliability.md")
    ap.add_argument("--docs", type=Path, default=REPO / "docs" / "reliability.md")
    ap.add_argument("--samples", type=Path, default=REPO.parent / "shared" / "datasets" / "samples")
    ap.add_argument("--skip-limits", action="store_true", help="skip the 40 MP probes (about a minute)")
    ap.add_argument(
        "--docs-only",
        action="store_true",
        help="measure nothing: re-read --out, merge the dashboard JSON into it and rewrite the docs table",
    )
    args = ap.parse_args(argv)
    if args.docs_only:
        save(json.loads(args.out.read_text()), args.out, args.docs)
        return 0

    import torch

    from core.detector import Detector

    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="ferlens-reliability-") as tmpdir:
        tmp = Path(tmpdir)
        os.environ.setdefault("FERLENS_CACHE", str(tmp / "cache"))
        t0 = time.perf_counter()
        cases = build_corpus(tmp / "corpus", args.samples)
        build_s = time.perf_counter() - t0
        det = Detector(backend="torch")
        det.detect_image(args.samples / "single_face.jpg")  # warm: lazy model and detector set-up is not a case
        rows = []
        for case in cases:
            row = {"kind": case.kind, "media": case.media, "expect": case.expect, "note": case.note}
            for key, out in (
                ("io", run_io(case)),
                ("detector", run_detector(case, det)),
                ("engine", run_engine(case, det.engine)),
                ("cli", run_cli_each(case, tmp)),
            ):
                if out.message:
                    out.message = out.message.replace(str(tmp / "corpus") + "/", "")
                row[key] = asdict(out)
            rows.append(row)
            print(f"{case.kind:24s} " + " | ".join(Outcome(**row[k]).cell() for k in ENTRY_POINTS))
        cli_process = run_cli_process(cases, tmp)
        limits = [] if args.skip_limits else measure_limits(det, tmp)
    answers = [r[k] for r in rows for k in ENTRY_POINTS if r[k]["status"] != "n/a"]
    peaks = [(r["detector"]["peak_mib"] or 0.0, r["kind"]) for r in rows]
    report: dict[str, Any] = {
        "machine": machine_info(),
        "torch_threads": torch.get_num_threads(),
        "load_avg_before": load_before,
        "load_avg_after": os.getloadavg(),
        "corpus_build_s": round(build_s, 2),
        "loader_limits": {"max_bytes": MAX_BYTES, "max_pixels": MAX_PIXELS},
        "summary": {
            "cases": len(rows),
            "cells": len(answers),
            "crashes": sum(a["status"] == "crash" for a in answers)
            + int(cli_process["traceback"])
            + len(cli_process["stray_stderr_lines"]),
            "unexpected": sum(a["as_expected"] is False for a in answers),
            "max_peak_mib": max(peaks)[0],
            "max_peak_kind": max(peaks)[1],
        },
        "cli_process": cli_process,
        "cases": rows,
        "limit_probes": limits,
    }
    save(report, args.out, args.docs if args.write_docs else None)
    print(json.dumps(report["summary"]), json.dumps(cli_process), sep="\n")
    for p in limits:
        print(p)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
