"""Parameters and GFLOPs of every registered model at its input size -> JSON and the table in docs/models.md.

    python bench/models.py --out bench/results/models.json --write-docs
    python bench/models.py --out bench/results/models.json --write-docs --only hafem_lite   # one new model

The table between the ``<!-- models:begin -->`` / ``<!-- models:end -->`` markers of docs/models.md is generated
here; a test checks every built model's parameter count against it.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.common import gflops, machine_info, replace_section, write_json  # noqa: E402
from core.models import create_model, list_models  # noqa: E402

DOC = ROOT / "docs" / "models.md"
BEGIN, END = "<!-- models:begin -->", "<!-- models:end -->"


def measure(name: str) -> dict:
    model = create_model(name).eval()
    s, c = model.spec.input_size, model.spec.in_chans
    return {
        "model": name,
        "params": sum(p.numel() for p in model.parameters()),
        "input": f"{c}x{s}x{s}",
        "gflops": round(gflops(model, torch.zeros(1, c, s, s)), 3),
        "embed_dim": model.embed_dim,
        "cam_layer": type(model.cam_target_layers()[0]).__name__,
        "token_grid": model.cam_reshape_transform is not None,
    }


def table(rows: list[dict]) -> str:
    lines = [
        "| model | parameters | input (C x H x W) | GFLOPs | embedding | CAM layer | tokens |",
        "|---|---:|---|---:|---:|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| `{r['model']}` | {r['params']:,} | {r['input']} | {r['gflops']} | {r['embed_dim']} "
            f"| {r['cam_layer']} | {'yes' if r['token_grid'] else 'no'} |"
        )
    return "\n".join(lines)


def parse_table(text: str) -> dict[str, int]:
    """``{model: parameter count}`` from the generated table (used by the tests)."""
    block = text.split(BEGIN, 1)[1].split(END, 1)[0]
    return {m: int(p.replace(",", "")) for m, p in re.findall(r"^\| `([\w]+)` \| ([\d,]+) \|", block, re.M)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--write-docs", action="store_true", help="rewrite the table in docs/models.md")
    ap.add_argument(
        "--only", nargs="+", metavar="MODEL", help="measure these models and keep the other rows of --out as they are"
    )
    args = ap.parse_args(argv)
    unknown = sorted(set(args.only or ()) - set(list_models()))
    if unknown:
        ap.error(f"unknown model(s) {unknown}; choose from {list_models()}")
    kept = {}
    if args.only and args.out.is_file():
        kept = {r["model"]: r for r in json.loads(args.out.read_text())["models"] if r["model"] in list_models()}
    measured = {n: measure(n) for n in (args.only or list_models())}
    rows = [{**kept, **measured}[n] for n in sorted({**kept, **measured})]
    write_json(args.out, {"machine": machine_info(), "models": rows})
    if args.write_docs:
        DOC.write_text(replace_section(DOC.read_text(), table(rows), BEGIN, END))
    print(table(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
