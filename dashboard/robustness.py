"""Reading robustness JSONs (``training.robustness``) and a results JSON's ``slices`` for the Evaluation page.

Pure functions, no Streamlit: find and check robustness files, pick the one that matches a results file, turn both
into tables, and say the exact command that writes what is missing. Nothing is computed here that the JSON
does not hold, except sorting and labels.
"""

from __future__ import annotations

import json
import logging
import shlex
from pathlib import Path

import pandas as pd

from dashboard import PYTHON
from dashboard.evaluation import data_name, evaluate_command

log = logging.getLogger(__name__)

SPLIT_NAMES = {"train": "Training", "val": "PublicTest", "test": "PrivateTest"}
"""Canonical split (results JSON) -> FER2013 usage (the robustness CLI's ``--split``)."""


class RobustnessFileError(ValueError):
    """A file that is not a robustness JSON (docs/results-schema.md, "Robustness JSON")."""


def load_robustness(path: str | Path) -> dict:
    """Read a robustness JSON; raises :class:`RobustnessFileError` naming the file when it is not one."""
    try:
        r = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise RobustnessFileError(f"{path}: not readable as JSON ({exc})") from exc
    ok = isinstance(r, dict) and isinstance(r.get("clean"), dict) and isinstance(r.get("conditions"), list)
    if not ok or "accuracy" not in r["clean"] or not all("retention" in c for c in r["conditions"]):
        raise RobustnessFileError(f"{path}: not a robustness JSON (needs clean.accuracy and conditions with retention)")
    return r


def find_robustness(roots: list[Path]) -> list[Path]:
    """Robustness JSONs in a ``robustness`` folder under any of ``roots``, newest first; other JSONs skipped."""
    found = []
    for root in roots:
        for path in Path(root).glob("**/robustness/*.json"):
            try:
                load_robustness(path)
            except RobustnessFileError as exc:
                log.info("skipping %s", exc)
                continue
            found.append(path)
    return sorted(set(found), key=lambda p: p.stat().st_mtime, reverse=True)


def matching(d: dict, files: list[Path]) -> Path | None:
    """The first (newest) robustness file of the same model, dataset and split as results ``d``, else None."""
    split = d["meta"]["data"]["split"]
    want = (d["meta"].get("model"), data_name(d), SPLIT_NAMES.get(split, split))
    for path in files:
        m = load_robustness(path).get("meta") or {}
        if (m.get("model"), m.get("data"), SPLIT_NAMES.get(m.get("split"), m.get("split"))) == want:
            return path
    return None


def robustness_command(d: dict) -> str:
    """The command that writes a robustness JSON for the model, data and split of results ``d``."""
    m, data = d["meta"], data_name(d)
    split = SPLIT_NAMES.get(m["data"]["split"], m["data"]["split"])
    argv = ["--model", m["model"], "--data", data, "--split", split]
    if len(d["class_names"]) == 8:
        argv += ["--set", "data.num_classes=8"]
    argv += ["--out", f"runs/robustness/{m['model']}_{data}-{split}.json"]
    return f"{PYTHON} -m training.robustness {shlex.join(argv)}"


def condition_label(row: dict) -> str:
    """``"blur @ 0.5"`` or ``"occlude brows"`` (AU-region occlusion has one level)."""
    if row.get("region"):
        return f"occlude {row['region']}"
    return f"{row['corruption']} @ {row['severity']:g}"


def robustness_table(r: dict) -> pd.DataFrame:
    """One row per condition: label, family, accuracy with its CI, retention with its CI (null in older files)."""
    rows = [
        {"condition": condition_label(c), "family": c.get("family", c["corruption"])}
        | {k: c[k] for k in ("accuracy", "ci_low", "ci_high", "retention")}
        | {k: c.get(k) for k in ("retention_ci_low", "retention_ci_high")}
        for c in r["conditions"]
    ]
    return pd.DataFrame(rows)


def family_table(r: dict) -> pd.DataFrame:
    """Mean retention per family (the file's ``family_retention``; older files: the mean of their rows)."""
    fams = r.get("family_retention")
    if not fams:
        fams = robustness_table(r).groupby("family", sort=False)["retention"].mean().to_dict()
    return pd.DataFrame({"family": list(fams), "mean retention": list(fams.values())})


def summary(r: dict) -> str:
    """One line: clean accuracy with CI, mean retention against the goal, where it was measured."""
    c, m = r["clean"], r.get("meta") or {}
    goal = (r.get("goal") or {}).get("mean_retention")
    mean = r.get("mean_retention")
    verdict = "" if goal is None or mean is None else f" ({'meets' if mean >= goal else 'below'} the goal {goal:g})"
    subset = f", stratified subset of {m['limit']}" if m.get("limit") else ""
    return (
        f"{m.get('model', '?')} on {m.get('data', '?')} {m.get('split', '?')} (n={m.get('n', '?')}{subset}): clean "
        f"accuracy {c['accuracy']:.3f} [{c['ci_low']:.3f}, {c['ci_high']:.3f}], mean retention over families "
        f"{mean:.3f}{verdict}"
    )


def placement_note(r: dict) -> str | None:
    """Where the AU regions were placed for the occlusion conditions (None when the file has none)."""
    p = r.get("au_regions")
    if not p:
        return None
    placed = p.get("placed") or {}
    return (
        f"AU regions from the face mesh fitted on each crop for {placed.get('mesh', 0)} images, from the "
        f"{p.get('framing')} framing's typical landmarks for {placed.get('framing', 0)}; occluded with the image's "
        "mean gray."
    )


def slice_table(d: dict) -> pd.DataFrame | None:
    """One row per (slice, bin) of ``d["slices"]``: n, errors, error rate and its CI (None: no slices)."""
    sl = d.get("slices")
    if not sl:
        return None
    rows = [
        {"slice": name, "bin": b["label"], "n": b["n"], "errors": b["errors"], "error_rate": b["error_rate"],
         "ci_low": b["ci_low"], "ci_high": b["ci_high"]}
        for name, entry in sl["attributes"].items()
        for b in entry.get("bins", [])
    ]  # fmt: skip
    return pd.DataFrame(rows, columns=["slice", "bin", "n", "errors", "error_rate", "ci_low", "ci_high"])


def slice_notes(d: dict) -> list[str]:
    """The slices that could not be measured, with why, and how often the face mesh fitted."""
    sl = d["slices"]
    notes = [f"{name.replace('_', ' ')}: not measured, {e['reason']}" for name, e in sl["attributes"].items()
             if not e.get("measurable")]  # fmt: skip
    mesh = sl.get("mesh") or {}
    if mesh.get("rate") is not None:
        notes.append(f"face mesh fitted on {mesh['fitted']} of {sl['n']} crops ({mesh['rate']:.0%}); {sl['ci']}")
    return notes


def slices_command(d: dict) -> str:
    """The command that rewrites results ``d`` with slices: its own command plus ``--slices``."""
    command = evaluate_command(d)
    return command if " --slices" in command else f"{command} --slices"
