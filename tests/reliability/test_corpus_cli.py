"""The bad-input corpus through the CLI, ``python -m core predict``.

The CLI takes many files in one call and reports each on its own stderr line, so one real subprocess over the
whole corpus checks the process-level promises (no traceback, only ``error:``/``note:``/log lines, one line per
bad file, rows for good ones); then ``main(argv)`` in-process, once per file, checks each file's exit status
without paying a Python start-up per file.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import torch

from core.__main__ import main
from tests.harness.corpus import Case

REPO = Path(__file__).resolve().parents[2]
LINE = re.compile(r"^(error|note|WARNING|INFO): ")
"""Every stderr line of the CLI: its own error/note lines, or a log line (``WARNING: random init ...``)."""


@pytest.fixture(scope="module", autouse=True)
def _restore_torch_threads():
    n = torch.get_num_threads()
    yield
    torch.set_num_threads(n)


def _files(corpus: list[Case]) -> list[Case]:
    return [c for c in corpus if c.path is not None]


def _own_lines(err: str) -> list[str]:
    """The CLI's own ``error:``/``note:`` lines (log lines dropped)."""
    return [ln for ln in err.splitlines() if ln.startswith(("error:", "note:"))]


def test_one_process_over_the_whole_corpus(corpus: list[Case], tmp_path: Path):
    files = _files(corpus)
    out = tmp_path / "corpus.csv"
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO),
        "OMP_NUM_THREADS": "1",
        "FERLENS_CACHE": str(tmp_path / "cache"),
    }
    args = [sys.executable, "-m", "core", "predict", *(str(c.path) for c in files), "--out", str(out)]
    proc = subprocess.run([*args, "--backend", "torch"], capture_output=True, text=True, env=env, cwd=REPO)
    err = proc.stderr
    assert "Traceback" not in err, err
    strays = [ln for ln in err.splitlines() if not LINE.match(ln)]
    assert not strays, f"stderr lines that are not the CLI's own: {strays}"
    bad = [c for c in files if c.expect == "error"]
    assert proc.returncode == 1
    assert err.rstrip().endswith(f"error: {len(bad)} of {len(files)} input(s) could not be read")
    rows = pd.read_csv(out)["input"].value_counts()
    problems = []
    for case in files:
        mine = [ln for ln in _own_lines(err) if ln.startswith((f"error: {case.path}:", f"note: {case.path}:"))]
        n = int(rows.get(str(case.path), 0))
        if case.expect == "error":
            if len(mine) != 1 or not mine[0].startswith("error:") or n:
                problems.append(f"{case.kind}: {mine}, {n} rows")
        elif any(ln.startswith("error:") for ln in mine):
            problems.append(f"{case.kind}: {mine}")
        elif case.expect == "faces" and n == 0:
            problems.append(f"{case.kind}: no row")
        elif case.expect == "no_face" and (n or mine != [f"note: {case.path}: no face found"]):
            problems.append(f"{case.kind}: {n} rows, {mine}")
    assert not problems, "\n".join(problems)


def test_each_file_alone_exits_with_its_own_status(corpus: list[Case], tmp_path: Path, capfd):
    """``main(["predict", FILE])``: 1 and exactly one error line (+ the count) for a bad file, 0 for a good one.

    ``capfd`` captures the file descriptors, so FFmpeg or Pillow writing to stderr on their own would show too.
    """
    problems = []
    for case in _files(corpus):
        out = tmp_path / f"{case.kind}.csv"
        rc = main(["predict", str(case.path), "--out", str(out), "--backend", "torch"])
        err = capfd.readouterr().err
        lines = err.splitlines()
        if "Traceback" in err or any(not LINE.match(ln) for ln in lines):
            problems.append(f"{case.kind}: stray stderr {err!r}")
            continue
        own = _own_lines(err)
        if case.expect == "error":
            ok = rc == 1 and len(own) == 2 and own[0].startswith(f"error: {case.path}: ")
            ok = ok and own[1] == "error: 1 of 1 input(s) could not be read" and len(own[0]) < 300
        else:
            note = [f"note: {case.path}: no face found"]
            ok = rc == 0 and (own == note if case.expect == "no_face" else not own or own == note)
            ok = ok and (case.expect != "faces" or len(pd.read_csv(out)) >= 1)
        if not ok:
            problems.append(f"{case.kind}: rc={rc}, stderr={own}")
    assert not problems, "\n".join(problems)
