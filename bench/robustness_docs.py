"""Regenerate the robustness and slices tables of docs/evaluation.md from their JSONs (no model is run).

    python bench/robustness_docs.py --robustness bench/results/robustness/default_ferplus-PrivateTest.json \\
        --results bench/results/slices/default_ferplus-PrivateTest.json.gz

The text between ``<!-- robustness:begin -->`` and ``<!-- robustness:end -->`` is replaced. The results JSON may
be gzipped (the committed one is, so the dashboard's scan of ``bench/results`` does not list it).
"""

from __future__ import annotations

import argparse
import gzip
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "evaluation.md"
BEGIN, END = "<!-- robustness:begin -->", "<!-- robustness:end -->"


def _read(path: Path) -> dict:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as fh:
        return json.load(fh)


def _ci(lo, hi) -> str:
    return "" if lo is None or hi is None else f" [{lo:.3f}, {hi:.3f}]"


def robustness_lines(r: dict) -> list[str]:
    m, c = r["meta"], r["clean"]
    subset = f", a stratified subset of {m['limit']} rows" if m.get("limit") else ""
    placed = (r.get("au_regions") or {}).get("placed") or {}
    lines = [
        f"`{m['command']}` ({m['model']}, `{m['weights']}`; {m['data']} {m['split']}, n = {m['n']}{subset}; "
        f"{m['bootstrap']} bootstrap resamples). Clean accuracy {c['accuracy']:.3f}{_ci(c['ci_low'], c['ci_high'])}.",
        "",
        "| condition | accuracy (95 % CI) | retention (95 % CI) |",
        "|---|---|---|",
    ]
    for row in r["conditions"]:
        what = f"occlude {row['region']}" if row.get("region") else f"{row['corruption']} @ {row['severity']:g}"
        lines.append(
            f"| {what} | {row['accuracy']:.3f}{_ci(row['ci_low'], row['ci_high'])} | {row['retention']:.3f}"
            f"{_ci(row.get('retention_ci_low'), row.get('retention_ci_high'))} |"
        )
    fams = " · ".join(f"{k} {v:.3f}" for k, v in r["family_retention"].items())
    goal = r["goal"]["mean_retention"]
    verdict = "meets" if r["goal"]["met"] else "is below"
    lines += [
        "",
        f"Mean retention per family: {fams}.",
        "",
        f"**Mean retention over the {len(r['family_retention'])} families: {r['mean_retention']:.3f}, which "
        f"{verdict} the goal of {goal:g}.** AU regions were placed by the face mesh on {placed.get('mesh', 0)} crops "
        f"and by the FER2013 framing's typical landmarks on {placed.get('framing', 0)}.",
    ]
    return lines


def slice_lines(d: dict) -> list[str]:
    s, m = d["slices"], d["meta"]
    acc = d["metrics"]["accuracy"]
    lines = [
        f"`{m['command']}` ({m['data']['source'].split(':', 1)[0]} {m['data']['split']}, n = {s['n']}; accuracy "
        f"{acc['value']:.3f}{_ci(acc['ci_low'], acc['ci_high'])}). Face mesh fitted on {s['mesh']['fitted']} of "
        f"{s['n']} crops ({s['mesh']['rate']:.1%}). {s['ci']}.",
        "",
        "| slice | bin | n | error rate (95 % CI) |",
        "|---|---|---:|---|",
    ]
    for name, entry in s["attributes"].items():
        if not entry["measurable"]:
            lines.append(f"| {name} | not measured: {entry['reason']} | | |")
            continue
        for b in entry["bins"]:
            rate = "n/a" if b["error_rate"] is None else f"{b['error_rate']:.3f}{_ci(b['ci_low'], b['ci_high'])}"
            lines.append(f"| {name} | {b['label']} | {b['n']} | {rate} |")
    return lines


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--robustness", type=Path, required=True)
    ap.add_argument("--results", type=Path, required=True, help="a results JSON written with --slices (.json[.gz])")
    ap.add_argument("--doc", type=Path, default=DOC)
    args = ap.parse_args(argv)
    text = args.doc.read_text(encoding="utf-8")
    if BEGIN not in text or END not in text:
        raise SystemExit(f"{args.doc}: the markers {BEGIN} / {END} are missing")
    body = ["#### Robustness", "", *robustness_lines(_read(args.robustness)), "", "#### Slices", ""]
    body += slice_lines(_read(args.results))
    before, rest = text.split(BEGIN, 1)
    after = rest.split(END, 1)[1]
    args.doc.write_text(before + BEGIN + "\n" + "\n".join(body) + "\n" + END + after, encoding="utf-8")
    print(f"wrote the robustness section of {args.doc}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
