"""Which explanation to believe: faithfulness and FACS agreement of every explainer on one fixed test subset.

    python -m training.explain_eval                  # writes bench/results/explanations.json, docs/explanations.md
    python -m training.explain_eval --render         # only re-renders the doc section from the JSON

Every method explains the predicted class of the same stratified images (pixel SHAP, ~100x slower, on fewer),
scored by ``core.explain``'s deletion/insertion AUCs against random maps and its AU agreement; the percentile
bootstrap intervals resample the same images for every method, so differences are paired.
"""

from __future__ import annotations

import argparse
import datetime as dt
import functools
import json
import logging
import re
import shlex
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from training.results import format_ci

log = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OUT = REPO_ROOT / "bench" / "results" / "explanations.json"
DEFAULT_DOC = REPO_ROOT / "docs" / "explanations.md"
SCHEMA = "ferlens.explanations/1"
BEGIN, END = "<!-- explain_eval:begin -->", "<!-- explain_eval:end -->"
MODES = ("deletion", "insertion")
MIN_CLASS_N = 3
RANDOM_REFS = {"random_iid": None, "random_smooth": 6}
"""Random references (``core.explain.random_maps`` grid): i.i.d. pixels, and 6x6 blobs as smooth as a CAM."""


def stratified_rows(labels: np.ndarray, per_class: int) -> np.ndarray:
    """Up to ``per_class`` rows of each class, evenly spaced through the class (deterministic), in file order."""
    picked = []
    for c in np.unique(labels):
        rows = np.flatnonzero(labels == c)
        picked.append(rows[np.unique(np.linspace(0, len(rows) - 1, min(per_class, len(rows))).round().astype(int))])
    return np.sort(np.concatenate(picked)) if picked else np.empty(0, np.int64)


def mean_ci(values, n_resamples: int = 1000, seed: int = 0, alpha: float = 0.05, paired_with=None) -> dict:
    """Mean of per-image ``values`` (minus ``paired_with``, same images; NaN rows left out) with a percentile
    bootstrap CI from :func:`core.metrics.bootstrap_weights`, the same resamples for every method."""
    from core.metrics import bootstrap_weights

    v = np.asarray(values, np.float64) - (0.0 if paired_with is None else np.asarray(paired_with, np.float64))
    v = v[np.isfinite(v)]
    if v.size == 0:
        return {"value": None, "ci_low": None, "ci_high": None, "n": 0}
    means = bootstrap_weights(v.size, n_resamples, np.random.default_rng(seed)) @ v / v.size
    lo, hi = np.percentile(means, [100 * alpha / 2, 100 * (1 - alpha / 2)])
    return {"value": float(v.mean()), "ci_low": float(lo), "ci_high": float(hi), "n": int(v.size)}


def _explainers(region_evals: int, pixel_evals: int) -> dict:
    """``{method: (kind, signed, fn(model, x, targets, crops) -> (N, H, W))}`` for every ``core.explain`` method."""
    import core.explain as E

    def cam(name):
        return lambda m, x, t, crops: E.explain_cam(m, x, t, name)

    def region(m, x, t, crops):  # the dashboard's map: per-area Shapley values of the crop's own AU regions
        maps = []
        for i in range(len(x)):
            masks = E.crop_masks(crops[i], x.shape[-1], "fer2013")
            maps.append(E.region_shap(m, x[i : i + 1], masks, int(t[i]), max_evals=region_evals).pixel_map())
        return np.stack(maps)

    def pixel(m, x, t, crops):
        return np.stack([E.pixel_shap(m, x[i : i + 1], int(t[i]), max_evals=pixel_evals).values for i in range(len(x))])

    out = {name: ("cam", False, cam(name)) for name in E.list_cam_methods()}
    return out | {"region_shap": ("region_shap", True, region), "pixel_shap": ("pixel_shap", True, pixel)}


def _curves(model, x, maps, targets, steps: int) -> dict[str, np.ndarray]:
    from core.explain import perturbation_curves

    return {m: perturbation_curves(model, x, maps, targets, mode=m, steps=steps).auc for m in MODES}


def evaluate_explanations(
    model,
    faceset,
    *,
    methods: list[str] | None = None,
    per_class: int = 5,
    pixel_per_class: int = 1,
    steps: int = 10,
    region_evals: int = 128,
    pixel_evals: int = 300,
    n_resamples: int = 1000,
    seed: int = 0,
) -> dict:
    """Faithfulness and AU agreement of each method on a stratified subset of ``faceset``; JSON-ready."""
    import torch

    from core.explain import agreement_records, crops_to_input, random_maps

    rows = stratified_rows(faceset.labels, per_class)
    images, labels = faceset.images[rows], faceset.labels[rows]
    pix_rows = stratified_rows(labels, pixel_per_class)
    names = list(model.spec.class_names)
    x = crops_to_input(model, images)
    with torch.inference_mode():
        preds = model.eval()(x).argmax(1).numpy()
    n, size = len(rows), x.shape[-1]
    refs = {
        ref: _curves(model, x, random_maps(n, size, size, seed=seed, grid=grid), preds, steps)
        for ref, grid in RANDOM_REFS.items()
    }
    table = _explainers(region_evals, pixel_evals)
    unknown = sorted(set(methods or []) - set(table))
    if unknown:
        raise ValueError(f"unknown methods {unknown}; choose from {list(table)}")
    interval = functools.partial(mean_ci, n_resamples=n_resamples, seed=seed)
    results, agreement = [], {}
    for name in methods or list(table):
        kind, signed, fn = table[name]
        idx = pix_rows if kind == "pixel_shap" else np.arange(n)
        captured = []

        def capture(m, xb, t, fn=fn, captured=captured, crops=images[idx]):
            captured.append(fn(m, xb, t, crops))
            return captured[-1]

        log.info("%s: explaining %d images", name, len(idx))
        rec = agreement_records(model, (images[idx], labels[idx]), capture, batch_size=len(idx))
        auc = _curves(model, x[idx], captured[0], preds[idx], steps)
        row = {"method": name, "kind": kind, "signed": signed, "n": len(idx)}
        for mode in MODES:
            row[f"{mode}_auc"] = interval(auc[mode])
            for ref in RANDOM_REFS:
                sign = 1 if mode == "insertion" else -1  # gain > 0: better than the random reference
                row[f"{mode}_gain_{ref}"] = interval(sign * auc[mode], paired_with=sign * refs[ref][mode][idx])
                row[f"{mode}_wins_{ref}"] = float(np.mean(sign * (auc[mode] - refs[ref][mode][idx]) > 0))
        row["ins_minus_del"] = interval(auc["insertion"] - auc["deletion"])
        results.append(row)
        agreement[name] = _agreement_rows(rec, names, interval)
        log.info("%s: deletion %.3f insertion %.3f", name, row["deletion_auc"]["value"], row["insertion_auc"]["value"])
    random_rows = {
        ref: {m: interval(a) for m, a in aucs.items()}
        | {"pixel_subset": {m: interval(a[pix_rows]) for m, a in aucs.items()}}
        for ref, aucs in refs.items()
    }
    ranking = sorted(results, key=lambda r: -r["ins_minus_del"]["value"])
    return {
        "schema": SCHEMA,
        "subset": {
            "rows": faceset.ids[rows].tolist(),
            "labels": [names[i] for i in labels],
            "predicted": [names[i] for i in preds],
            "pixel_shap_rows": faceset.ids[rows][pix_rows].tolist(),
            "accuracy": float(np.mean(preds == labels)),
        },
        "methods": results,
        "random": random_rows,
        "ranking": [r["method"] for r in ranking],
        "au_agreement": agreement,
    }


def _agreement_rows(rec: pd.DataFrame, names: list[str], interval) -> list[dict]:
    """Per explained class: the mean expected-region share and lift with CIs, plus ``agreement_table``'s rest."""
    from core.explain import agreement_table

    tab = agreement_table(rec, names)
    out = []
    for cls, t in tab.iterrows():
        g = rec[rec["explained"] == cls]
        out.append(
            {
                "class": cls,
                "n": int(t["n"]),
                "expected_regions": t["expected_regions"],
                "expected_area": _f(t["expected_area"]),
                "expected_share": interval(g["expected_share"]),
                "lift": interval(g["lift"]),
                "rank_auc": _f(t["rank_auc"]),
                "top_region": t["top_region"],
                "mesh_share": float((g["regions"] == "mesh").mean()),
            }
        )
    return out


def _f(x) -> float | None:
    return None if x is None or not np.isfinite(x) else float(x)


# ------------------------------------------------------------------------------------ tables (doc + dashboard)
def faithfulness_table(d: dict) -> pd.DataFrame:
    """One row per method in ranking order (by insertion minus deletion AUC, higher = more faithful)."""
    by = {r["method"]: r for r in d["methods"]}
    return pd.DataFrame(
        {
            "rank": rank,
            "method": r["method"],
            "n": r["n"],
            "deletion AUC ↓": format_ci(r["deletion_auc"]),
            "insertion AUC ↑": format_ci(r["insertion_auc"]),
            "insertion − deletion ↑": format_ci(r["ins_minus_del"]),
            "deletion gain vs smooth random": format_ci(r["deletion_gain_random_smooth"], "+.3f"),
            "insertion gain vs smooth random": format_ci(r["insertion_gain_random_smooth"], "+.3f"),
            "deletion wins vs i.i.d. random": f"{r['deletion_wins_random_iid']:.0%}",
        }
        for rank, r in enumerate((by[name] for name in d["ranking"]), 1)
    )


def random_table(d: dict) -> pd.DataFrame:
    """The random references' AUCs on the whole subset and on the pixel-SHAP images."""
    rows = []
    for ref, r in d["random"].items():
        for part, e in (("all images", r), ("pixel-SHAP images", r["pixel_subset"])):
            rows.append({"reference": ref.replace("_", " "), "images": part, "n": e["deletion"]["n"]} | {
                "deletion AUC": format_ci(e["deletion"]), "insertion AUC": format_ci(e["insertion"])})  # fmt: skip
    return pd.DataFrame(rows)


def au_table(d: dict, method: str) -> pd.DataFrame:
    """Per explained class for one method: n, expected regions, share of the map in them and its lift."""
    rows = d["au_agreement"].get(method)
    if rows is None:
        raise ValueError(f"no AU agreement for {method!r} in the file; it has {list(d['au_agreement'])}")
    return pd.DataFrame(
        {
            "class": r["class"],
            "n": r["n"],
            "expected regions": r["expected_regions"],
            "expected area": r["expected_area"],
            "share in expected": format_ci(r["expected_share"], ".2f"),
            "lift (1 = chance)": format_ci(r["lift"], ".2f"),
            "rank AUC": r["rank_auc"],
            "densest region": r["top_region"],
        }
        for r in rows
    )


def lift_matrix(d: dict) -> pd.DataFrame:
    """Lift with CI, explained class x method: the across-method view of the FACS claim."""
    cols = {
        m: {r["class"]: f"{format_ci(r['lift'], '.2f')} (n={r['n']})" for r in d["au_agreement"][m]}
        for m in d["ranking"]
    }
    return pd.DataFrame(cols).fillna("–").rename_axis("class").reset_index()


def method_faithfulness(d: dict | None, method: str) -> str | None:
    """One line for the explanation panel: the method's measured deletion/insertion AUC, or None if not measured."""
    by = {r["method"]: r for r in (d or {}).get("methods", [])}
    if method not in by:
        return None
    r, rand = by[method], d["random"]["random_smooth"]
    ref = rand["pixel_subset"] if r["kind"] == "pixel_shap" else rand
    rank = d["ranking"].index(method) + 1
    return (
        f"Measured faithfulness (rank {rank} of {len(d['ranking'])}, {r['n']} test faces): deletion AUC "
        f"{format_ci(r['deletion_auc'], '.2f')} (↓ better; smooth random {ref['deletion']['value']:.2f}), "
        f"insertion AUC {format_ci(r['insertion_auc'], '.2f')} (↑ better; random {ref['insertion']['value']:.2f})."
    )


def load(path: str | Path = DEFAULT_OUT) -> dict | None:
    """The explanations JSON, or None when it has not been written yet."""
    p = Path(path)
    if not p.is_file():
        return None
    d = json.loads(p.read_text())
    if d.get("schema") != SCHEMA:
        raise ValueError(
            f"{p}: schema {d.get('schema')!r}, expected {SCHEMA!r}; re-run python -m training.explain_eval"
        )
    return d


# ----------------------------------------------------------------------------------------------- render
def _md(df: pd.DataFrame) -> str:
    def cell(v):
        return f"{v:.2f}" if isinstance(v, float) else str(v)

    head = "| " + " | ".join(map(str, df.columns)) + " |"
    sep = "|" + "|".join("---" for _ in df.columns) + "|"
    return "\n".join([head, sep, *("| " + " | ".join(cell(v) for v in row) + " |" for row in df.itertuples(False))])


def highlights(d: dict) -> list[str]:
    """Plain-language readings of the JSON (which intervals exclude chance), so the doc's prose cannot go stale."""
    by = {r["method"]: r for r in d["methods"]}
    beats = [m for m in d["ranking"] if all((by[m][f"{k}_gain_random_smooth"]["ci_low"] or 0) > 0 for k in MODES)]
    out = [
        "Better than smooth random maps on both deletion and insertion (95 % CI above 0): "
        f"{', '.join(beats) or 'none'}."
    ]
    full = [m for m in d["ranking"] if by[m]["n"] == max(r["n"] for r in by.values())]  # same images only
    if len(full) > 1:
        a, b = by[full[0]]["ins_minus_del"], by[full[1]]["ins_minus_del"]
        verb = "overlap" if a["ci_low"] <= b["ci_high"] else "do not overlap"
        out.append(f"On the full subset the top two ({full[0]}, {full[1]}) {verb} in insertion − deletion.")
    few = [f"{m} (n={r['n']})" for m, r in by.items() if r["n"] < max(x["n"] for x in by.values())]
    if few:
        out.append(
            f"Fewer images: {', '.join(few)}; compare those rows through their gains over random maps "
            "on the same images."
        )
    out.append(f"AU lift, classes with at least {MIN_CLASS_N} faces (a bootstrap of one or two faces is no interval):")
    for m in d["ranking"]:
        rows = [r for r in d["au_agreement"][m] if r["lift"]["n"] >= MIN_CLASS_N]
        above = [r["class"] for r in rows if (r["lift"]["ci_low"] or 0) > 1]
        below = [r["class"] for r in rows if r["lift"]["ci_high"] is not None and r["lift"]["ci_high"] < 1]
        out.append(
            f"{m}: lift above chance for {', '.join(above) or 'no class'}; below for {', '.join(below) or 'none'}."
        )
    return out


def render_markdown(d: dict) -> str:
    """The generated section of ``docs/explanations.md`` (every figure from the JSON)."""
    m = d["meta"]
    best = d["ranking"][0]
    return "\n\n".join(
        [
            f"Generated by `{m['command']}` on {m['date']} at commit `{(m['git_commit'] or 'unknown')[:10]}`: model "
            f"`{m['model']}` (weights sha256 `{(m['weights_sha256'] or 'random')[:12]}`), {m['data']} {m['split']}, "
            f"{m['n_images']} images ({m['per_class']} per class, evenly spaced through each class; pixel SHAP on "
            f"{m['n_pixel_shap']} of them, {m['pixel_per_class']} per class, because it costs {m['pixel_evals']} "
            f"forward passes and shap's overhead per face). Each map explains the predicted class (accuracy on the "
            f"subset {d['subset']['accuracy']:.3f}); blur baseline, {m['steps']} steps; region SHAP sampled with "
            f"max_evals={m['region_evals']}. Brackets: 95 % percentile bootstrap over images ({m['n_resamples']} "
            "resamples, the same for every method).",
            "**Faithfulness**, ranked by insertion − deletion AUC (gains: positive = better than the random "
            "reference on the same images, paired):",
            _md(faithfulness_table(d)),
            "Random references:",
            _md(random_table(d)),
            f"**AU agreement**: lift of the expected regions per explained (predicted) class and method (1 = chance; "
            f"neutral expects no AU, so no lift). Per-method tables with shares are in the JSON and on the "
            f"dashboard's Evaluation page. Most faithful method here: `{best}`.",
            _md(lift_matrix(d)),
            "**Readings** (computed from the intervals above):\n\n" + "\n".join(f"* {h}" for h in highlights(d)),
        ]
    )


def update_doc(d: dict, doc: str | Path = DEFAULT_DOC) -> Path:
    """Replace the marked section of ``doc`` (appended under a heading the first time)."""
    p = Path(doc)
    text = p.read_text()
    section = f"{BEGIN}\n{render_markdown(d)}\n{END}"
    if BEGIN in text and END in text:
        text = re.sub(re.escape(BEGIN) + r".*?" + re.escape(END), lambda _: section, text, flags=re.S)
    else:
        text = text.rstrip("\n") + f"\n\n## Which explanation to believe (measured)\n\n{section}\n"
    p.write_text(text)
    return p


# -------------------------------------------------------------------------------------------------- CLI
def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    from training.evaluate import model_flags

    ap = argparse.ArgumentParser(
        prog="python -m training.explain_eval",
        description=__doc__.split("\n\n")[0],
        parents=[model_flags("ferplus", "PrivateTest")],
    )
    ap.add_argument("--per-class", type=int, default=5, help="images per class (evenly spaced through each class)")
    ap.add_argument("--pixel-per-class", type=int, default=1, help="of those, images per class for pixel SHAP")
    ap.add_argument("--methods", nargs="+", help="default: every CAM method, region_shap, pixel_shap")
    ap.add_argument("--steps", type=int, default=10, help="deletion/insertion steps")
    ap.add_argument("--region-evals", type=int, default=128)
    ap.add_argument("--pixel-evals", type=int, default=300)
    ap.add_argument("--out", default=str(DEFAULT_OUT.relative_to(REPO_ROOT)))
    ap.add_argument("--doc", default=str(DEFAULT_DOC.relative_to(REPO_ROOT)), help="doc to update ('' = none)")
    ap.add_argument("--render", action="store_true", help="only re-render --doc from the existing --out")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    out = Path(args.out)
    if args.render:
        d = load(out)
        if d is None:
            raise SystemExit(f"{out} does not exist; run python -m training.explain_eval first")
    else:
        from training.evaluate import _git_commit, build_model, load_faceset, sha256_file

        model, path = build_model(args.model, args.weights, None, {})
        fs = load_faceset(args.data, args.split, None, model.num_classes, None, [])
        keys = ("per_class", "pixel_per_class", "steps", "region_evals", "pixel_evals")
        params = {k: getattr(args, k) for k in keys} | {"n_resamples": args.bootstrap, "seed": args.seed}
        d = evaluate_explanations(model, fs, methods=args.methods, **params)
        d["meta"] = {
            "command": shlex.join(["python", "-m", "training.explain_eval", *argv]),
            "git_commit": _git_commit(),
            "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
            "model": args.model,
            "weights": path.name if path else None,
            "weights_sha256": sha256_file(path) if path else None,
            "data": args.data,
            "split": args.split,
            "n_images": len(d["subset"]["rows"]),
            "n_pixel_shap": len(d["subset"]["pixel_shap_rows"]),
            "targets": "predicted",
            "baseline": "blur",
            **params,
        }
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(d, indent=1) + "\n")
    if args.doc:
        update_doc(d, args.doc)
    print(f"ranking: {', '.join(d['ranking'])} -> {out}" + (f", {args.doc}" if args.doc else ""))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
