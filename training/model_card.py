"""Render ``docs/model-card.md`` from a shipped model's JSON sidecar (written by :mod:`training.ship`).

Every number on the card is read from the sidecar, which :mod:`training.ship` fills from results JSONs of the very
weights file it sits beside; nothing is typed in by hand. ``tests/core/test_shipped_weights.py`` checks that the
card in the repo is exactly what this renders from the shipped sidecar, so the two cannot drift apart.
"""

from __future__ import annotations

import json
from pathlib import Path

from training.datasets import FER_USAGE

CARD_PATH = Path(__file__).resolve().parents[1] / "docs" / "model-card.md"
PEERS_PATH = Path(__file__).resolve().parents[1] / "bench" / "results" / "peers.json"
"""Peer figures (``python bench/peers.py``); the card's peers section is read from it when it exists."""

GOALS = {"fer2013_private": 0.74, "ferplus_private_8": 0.89}
"""The goals: the best published single models on FER2013 PrivateTest and FERPlus (8-class majority)."""

COMPANION = {"default": "default_fer2013"}
"""A shipped model whose card also shows another shipped model (the FER2013-label path of the same architecture)."""

TITLES = {
    "fer2013_private": "FER2013 PrivateTest (FER2013 labels)",
    "fer2013_private_tta": "FER2013 PrivateTest, hflip TTA",
    "fer2013_private_uncalibrated": "FER2013 PrivateTest, before temperature scaling",
    "ferplus_private_8": "FERPlus PrivateTest (majority, 8 classes)",
    "ferplus_private_8_tta": "FERPlus PrivateTest (majority, 8 classes), hflip TTA",
    "ferplus_private_8_uncalibrated": "FERPlus PrivateTest (majority, 8 classes), before temperature scaling",
    "zeroshot_samples": "Zero-shot: sample photos (ImageFolder, face pipeline)",
}

TRAINED_ON = {
    "fer2013": "FER2013 Training with FER2013's own labels (one label per image)",
    "ferplus": "the FER2013 Training images with FERPlus' ten-annotator votes as soft targets (soft-label CE over 8 "
    "classes, contempt included); rows whose majority vote is `unknown` or `NF` are dropped and those two columns "
    "are left out of each vote distribution, the standard FERPlus 8-class protocol",
}

LICENCE = [
    "## Licence of the weights and of the data they were trained on",
    "",
    "- **FER2013 images** (every set of weights here was trained on them): released for the 2013 Kaggle / ICML "
    "workshop competition *Challenges in Representation Learning* under the competition's rules; the images were "
    "collected by web search and their copyright stays with their unknown owners. No licence grants commercial "
    "use.",
    "- **FERPlus labels** (`default`): Microsoft's FERPlus repository is MIT-licensed, but it covers the labels "
    "only; the images are still FER2013's. The FERPlus maintainers have not answered whether commercial use is "
    "allowed (github.com/microsoft/FERPlus issue #10, open since 2018).",
    "- **What that means for you**: ferlens' code and these weights are offered for research, teaching and "
    "evaluation. Weights are widely held to be derived from their training data, so treat them as carrying the "
    "data's terms: do not ship them in a commercial product without your own legal advice; retrain on data you "
    "hold the rights to (`python -m training.train --preset ... data.dataset=folder:PATH`) for that. This is a "
    "summary, not legal advice.",
    "",
]


DATASET_TITLES = {"fer2013": "FER2013", "ferplus": "FERPlus", "folder": "sample photos"}


def score_name(
    dataset: str,
    split: str,
    tta_hflip: bool,
    weights: str | None,
    sha256: str | None,
    num_classes: int | None = None,
) -> str:
    """One line naming a score (e.g. ``FER2013 PrivateTest, hflip TTA, default sha256:179e5630``) for the rows of the
    dashboard's card and both sides of a comparison: shipped weights by model name, a run's as ``run/file``; FERPlus
    also shows ``num_classes``, as its 8-class protocol differs from the 7-class one."""
    data = DATASET_TITLES.get(dataset, dataset)
    if dataset in ("fer2013", "ferplus"):
        data += f" {FER_USAGE.get(split, split)}"
        if dataset == "ferplus" and num_classes:
            data += f" ({num_classes} classes)"
    elif split not in ("all", ""):
        data += f" {split}"
    if weights is None:
        who = "random init"
    else:
        path = Path(weights)
        shipped = path.parent.name == "weights" and path.parent.parent.name == "models"
        who = path.stem if shipped or not path.parent.name else f"{path.parent.name}/{path.stem}"
        if sha256:
            who += f" sha256:{sha256[:8]}"
    return ", ".join([data, "hflip TTA" if tta_hflip else "no TTA", who])


def result_name(d: dict) -> str:
    """:func:`score_name` of a results JSON (``training.evaluate``'s output)."""
    m = d["meta"]
    return score_name(
        str(m["data"]["source"]).split(":", 1)[0],
        str(m["data"]["split"]),
        bool(m.get("tta_hflip")),
        m.get("weights"),
        m.get("weights_sha256"),
        len(d.get("class_names") or []) or None,
    )


def _pct(m: dict | float | None, pct: bool = True) -> str:
    """A number or ``{value, ci_low, ci_high}`` in percent with 2 places (``pct=False``: as is, 3 places)."""
    m = {"value": m} if m is None or isinstance(m, float | int) else m
    if m.get("value") is None:
        return "—"
    f = (lambda v: f"{100 * v:.2f}") if pct else (lambda v: f"{v:.3f}")
    s = f(m["value"]) + (" %" if pct else "")
    if m.get("ci_low") is not None:
        s += f" [{f(m['ci_low'])}, {f(m['ci_high'])}]"
    return s


def _num(m: dict) -> str:
    return _pct(m, pct=False)


def _summary_line(key: str, t: dict) -> str:
    return (
        f"- {TITLES.get(key, key)}: accuracy **{_pct(t['accuracy'])}** (95 % bootstrap CI, n = {t['n']}), macro-F1 "
        f"{_pct(t['macro_f1'])}, ECE {_num(t['ece'])}"
        + (f"; the goal is {_pct(GOALS[key])}" if key in GOALS else "")
        + "."
    )


def _ordered(test: dict, primary: str) -> list[tuple[str, dict]]:
    """Rows in reading order (the sidecar's keys are sorted): the model's own benchmark first."""
    first = [primary, f"{primary}_tta", f"{primary}_uncalibrated"]
    keys = [k for k in first if k in test] + [k for k in TITLES if k in test and k not in first]
    return [(k, test[k]) for k in keys + sorted(set(test) - set(keys))]


def peers_section(peers: dict) -> list[str]:
    """The card's lines on `fer` against ferlens, from ``bench/results/peers.json`` (``bench/peers.py``)."""
    a, f, r = peers["accuracy"], peers["fps"], peers["robustness"]["summary"]
    rows = [
        ("`fer` " + peers["peer"]["versions"]["fer"], "fer"),
        *((f"ferlens `{m}`", m) for m in peers["ferlens"]["models"]),
    ]
    lines = [
        "## Peers",
        "",
        f"Measured by `{peers['command']}` ({peers['date'][:10]}); `docs/performance.md` says how. FER2013 PrivateTest "
        f"crops given straight to each classifier (n = {a['n']}, 95 % bootstrap CIs); mean retention under "
        f"`training.augment.CORRUPTIONS` on a {peers['robustness']['n']}-image slice; end-to-end FPS on "
        f"`{f['video']}` (median of interleaved runs, ferlens with its default model `default`).",
        "",
        "| tool | FER2013 PrivateTest accuracy | macro-F1 | mean retention |",
        "|---|---:|---:|---:|",
    ]
    for title, key in rows:
        lines.append(
            f"| {title} | {_pct(a[key]['accuracy'])} | {_pct(a[key]['macro_f1'])} | {r[key]['mean_retention']:.3f} |"
        )
    lines += [
        "",
        f"End-to-end FPS: `fer` {f['fer']['median']:.1f}, ferlens {f['ferlens']['median']:.1f}.",
        "",
    ]
    return lines


def render_card(meta: dict, companion: dict | None = None, peers: dict | None = None) -> str:
    """The markdown model card of a shipped model's sidecar ``meta`` (plus a companion model's and the peers',
    when given)."""
    spec, cfg, run, test = meta["spec"], meta["config"], meta["run"], meta["test"]
    name = meta["model"]
    c = spec["config"]
    params = meta.get("params")
    primary = meta.get("primary", "fer2013_private")
    other = "fer2013_private" if primary == "ferplus_private_8" else "ferplus_private_8"
    chain = meta["stages"]  # training.ship records every run behind the weights, oldest first
    classes = list(spec["class_names"])
    lines = [
        f"# Model card: `{name}`",
        "",
        "Generated by `python -m training.ship` from the sidecar `core/models/weights/"
        f"{name}.json`"
        + (f" and `{companion['model']}.json`" if companion else "")
        + f"; do not edit by hand. Every figure below was measured on the shipped file (sha256 "
        f"`{meta['sha256'][:16]}…`) by the command shown beside it.",
        "",
        "## Summary",
        "",
        *(_summary_line(k, test[k]) for k in (primary, f"{primary}_tta", other) if k in test),
    ]
    if primary == "ferplus_private_8":
        lines.append(
            "- The model learned FERPlus' ten-annotator votes, so on FER2013's own labels (which disagree with the "
            "FERPlus majority on 36.6 % of the images, docs/papers.md) it is scored against labels it was not "
            "taught; its contempt answers count as errors there."
        )
    else:
        lines.append(
            "- The model learned FER2013's own labels, which disagree with the FERPlus majority on 36.6 % of the "
            "images (docs/papers.md)"
            + ("; it has no contempt output (counted as an error on FERPlus)." if "contempt" not in classes else ".")
        )
    lines += [
        "- Papers' claim for comparison: HAFEM/ADNN-FER report 94.7 % on FER2013, above human agreement and every "
        "other published result (about 73-76 %); ferlens has not reproduced it (docs/papers.md).",
        "",
    ]
    if companion:
        ct = companion["test"]
        lines += [
            "## Which weights answer",
            "",
            f"- `{name}` answers by default in the dashboard, the CLI and `Detector()`: its labels come from ten "
            "annotators per image instead of one, it can say contempt, and on FERPlus' majority labels it scores "
            f"{_pct(test['ferplus_private_8']['accuracy'])} against "
            f"{_pct(ct['ferplus_private_8']['accuracy'])} for the FER2013-label weights.",
            f"- `{companion['model']}` ("
            + (
                f"the same architecture, fine-tuned from `{companion['stages'][-2]['run']}`, a stage of `{name}`'s "
                "training below"
                if companion["spec"]["config"] == c and len(companion.get("stages", [])) > 1
                else f"{architecture(companion['spec']['config']).split(':')[0]}, the trunk `{name}` started from"
            )
            + ", weights trained on FER2013's own labels; "
            f"`create_model('{companion['model']}', weights='default')`, `Detector(model='{companion['model']}')`) "
            "answers FER2013-label evaluations, so figures stay comparable with published FER2013 results: "
            f"{_pct(ct['fer2013_private']['accuracy'])} on FER2013 PrivateTest, "
            f"{_pct(ct['fer2013_private_tta']['accuracy'])} with hflip TTA (the engine's default), against "
            f"{_pct(test['fer2013_private']['accuracy'])} for `{name}` there.",
            "- Two files rather than two heads on one trunk: each file is one plain classifier that every tool "
            "(Grad-CAM, SHAP, ONNX) explains without a head switch, and each head's trunk is tuned to its labels. "
            f"The cost is {4 * companion.get('params', 0) / 1e6:.1f} MB more in the repository (fp32).",
            "",
        ]
    lines += [
        "## Model",
        "",
        "| | |",
        "|---|---|",
        f"| architecture | {architecture(c)} |",
        f"| parameters | {params / 1e6:.2f} M |" if params else "| parameters | see docs/models.md |",
        f"| input | {spec['in_chans']}×{spec['input_size']}×{spec['input_size']} grayscale, mean {spec['mean']}, "
        f"std {spec['std']} (FER2013 training pixels) |",
        f"| classes | {', '.join(classes)} |",
        "| faces in photos | BlazeFace + O-Net landmarks, aligned to FER2013's own framing (`core.faces.align`) |",
        "",
        "## Data and training",
        "",
        f"- Last stage trained on {TRAINED_ON.get(cfg['data']['dataset'], cfg['data']['dataset'])}; the epoch was "
        "chosen on PublicTest by macro-F1; the test splits were evaluated once per shipped candidate, after "
        "training (`docs/training-log.md` lists every candidate and its scores).",
        f"- Loss `{cfg['loss']['name']}`, optimiser {cfg['optim']['name']} lr {cfg['optim']['lr']:g} "
        f"(weight decay {cfg['optim']['weight_decay']:g}), {cfg['optim']['warmup_epochs']:g} warm-up epoch(s) then "
        f"{cfg['optim']['schedule']} to {cfg['optim']['min_lr']:g}, batch {cfg['batch_size']}, "
        f"{cfg['epochs']} epochs planned, early stopping patience {cfg['patience']}; the papers' seven "
        f"augmentations at strength {cfg['augment']['strength']:g} with mixup {cfg['augment']['mixup']:g}"
        + (
            f" and camera corruptions with probability {cfg['augment']['corrupt']:g}"
            if cfg["augment"].get("corrupt")
            else ""
        )
        + ".",
    ]
    soup = chain[-1].get("soup_of")
    seq = [st for st in chain if not st.get("ingredient") and not st.get("soup_of")]
    if len(chain) > 1:
        lines.append(
            f"- Trained in {len(seq)} sequential stage{'s' if len(seq) > 1 else ''}, each starting from the previous "
            "stage's selected weights "
            "(`init_weights`) with a fresh warm-up and cosine schedule"
            + ("" if soup else "; the optimiser settings above are the last stage's")
            + ": "
            + "; ".join(f"stage {i} `{st['run']}`, {st['epochs_run']} epochs" for i, st in enumerate(seq, 1))
            + "."
        )
    elif chain[0].get("init_weights"):
        lines.append(f"- Fine-tuned from `{chain[0]['init_weights']}`.")
    if soup:
        lines.append(
            f"- Then {len(soup)} fine-tunes of that stage's weights, each with its own seed and learning rate (the "
            "optimiser settings above are the first's), and the shipped weights are their element-wise mean, a "
            "uniform model soup (`training.soup`; Wortsman et al. 2022): "
            + "; ".join(f"`{st['run']}` {st['epochs_run']} epochs" for st in chain if st.get("ingredient"))
            + "."
        )
    by_hw: dict[str, list] = {}
    for st in chain:
        if st["epochs_run"]:
            hw = f"{st.get('hardware', run['hardware'])} (torch {st.get('torch', run['torch'])})"
            by_hw.setdefault(hw, []).append(st)
    lines += [
        f"- Epochs run: {sum(st['epochs_run'] for st in chain)}; shipped: "
        + ("the soup" if soup else f"epoch {meta['epoch']}" + (" of the last stage" if len(chain) > 1 else ""))
        + f" (PublicTest accuracy {_pct(meta['val']['val_acc'])}, macro-F1 "
        f"{_pct(meta['val']['val_macro_f1'])}).",
        "- Wall time: "
        + "; ".join(f"{sum(st['wall_s'] for st in sts) / 60:.0f} min on {hw}" for hw, sts in by_hw.items())
        + " (per-epoch figures in each run's `metrics.jsonl`, slower when other jobs shared the machine).",
        "",
        "Reproduce from nothing (train stage by stage, shipping where a later stage starts from a shipped file; the "
        "last line copies, calibrates, evaluates and writes this card):",
        "",
        "```bash",
    ]
    for st in chain:
        lines.append(st["command"])
        if st.get("then"):
            lines.append(st["then"])
    lines += [meta["ship_command"], "```", ""]
    cal = meta.get("calibration")
    if cal:
        before, after = test.get(f"{primary}_uncalibrated"), test.get(primary)
        lines += [
            "## Calibration",
            "",
            f"- One softmax temperature T = {cal['temperature']:.3f}, fitted on {cal['fitted_on']} (n = {cal['n']}) "
            f"by `{cal['command']}`; the engine and `training.evaluate` apply it (`--no-calibration` to skip). It "
            "never changes the top class.",
            f"- ECE ({cal['ece_bins']} bins) on the fitting split: {cal['ece_before']:.3f} before, "
            f"{cal['ece_after']:.3f} after."
            + (
                f" On {TITLES.get(primary, primary)}: {_num(before['ece'])} before, {_num(after['ece'])} after."
                if before and after
                else ""
            ),
            "",
        ]
    lines += [
        "## Test scores (95 % bootstrap CIs, 1,000 resamples)",
        "",
        "| data | n | accuracy | macro-F1 | ECE |",
        "|---|---:|---:|---:|---:|",
    ]
    rows = _ordered(test, primary)
    for key, t in rows:
        lines.append(
            f"| {TITLES.get(key, key)} | {t['n']} | {_pct(t['accuracy'])} | {_pct(t['macro_f1'])} | {_num(t['ece'])} |"
        )
    cols = classes + (["contempt"] if "contempt" not in classes else [])
    lines += ["", "Per-class F1:", "", "| data | " + " | ".join(cols) + " |", "|---|" + "---:|" * len(cols)]
    for key, t in rows:
        f1 = t["per_class_f1"]
        lines.append(
            f"| {TITLES.get(key, key)} | "
            + " | ".join(f"{f1[k]:.3f}" if f1.get(k) is not None else "—" for k in cols)
            + " |"
        )
    sl = meta["slice"]
    lines += [
        "",
        "Commands (each prints the accuracy above; `--weights` defaults to the shipped file):",
        "",
        "```bash",
        *(t["command"] for _, t in rows),
        "```",
        "",
        f"Export check: the accuracy on a fixed stratified {sl['limit']}-image slice of "
        f"{sl.get('data', ['fer2013'])[0]} PrivateTest is {sl['accuracy']:.4f} ({sl['correct']} correct); "
        "`tests/core/test_shipped_weights.py` recomputes it from the shipped file.",
        "",
        *(peers_section(peers) if peers else []),
        "## Training history (PublicTest)",
        "",
        "| stage | epoch | train acc | val acc | val macro-F1 |",
        "|---:|---:|---:|---:|---:|",
    ]
    for i, st in enumerate(chain, 1):
        # a soup ingredient shows only its selected epoch; its full history is in its run folder
        rows_of = [max(st["history"], key=lambda h: h["val_macro_f1"])] if st.get("ingredient") else st["history"]
        for h in rows_of:
            lines.append(
                f"| {i} | {h['epoch']} | {h['train_acc']:.3f} | {h['val_acc']:.3f} | {h['val_macro_f1']:.3f} |"
            )
    zs = test.get("zeroshot_samples")
    lines += [
        "",
        *LICENCE,
        "## Limitations",
        "",
        "- FER2013's faces are web images of mostly posed, mostly adult faces; accuracy on other populations, ages, "
        "lighting and spontaneous expressions is not known from these figures. FER2013's own labels are noisy "
        "(FERPlus' ten annotators disagree with them on about a third of the images).",
        "- The zero-shot figure "
        + (f"(n = {zs['n']}) " if zs else "")
        + "is a smoke test, not a benchmark: no labelled face set other than FER2013/FERPlus can be obtained "
        "offline here (no package registry ships one with a licence that allows it), so only the seven labelled "
        "sample faces (four posed studio photos, one photo and two video frames) are scored.",
    ]
    if "contempt" not in classes:
        lines.append("- Seven classes only: no contempt output (FERPlus' eighth class counts as an error above).")
    else:
        lines.append(
            "- Contempt is FERPlus' rarest class (165 training images by majority vote): read its F1 with its wide "
            "uncertainty in mind."
        )
    lines += [
        "- An expression label is not an emotion: the model reads facial configuration, not inner state. Do not use "
        "it for decisions about people (hiring, policing, health).",
        "",
    ]
    return "\n".join(lines)


def architecture(c: dict) -> str:
    """One sentence on a FerNet or hafem_lite config (a sidecar's ``spec.config``), for the card's model table."""
    trunk = (
        f"a ResNet with a full-resolution stem, stages of widths {'-'.join(map(str, c['widths']))} with "
        f"{'-'.join(map(str, c['depths']))} basic blocks"
    )
    if "d_model" not in c:
        return (
            f"FerNet (`core/models/fernet.py`): {trunk}, global average pooling, dropout {c['drop_rate']}, linear head"
        )
    parts = [f"the FerNet trunk ({trunk})"]
    if c.get("cbam"):
        parts.append(
            f"CBAM (r {c['cbam_reduction']}, {c['cbam_kernel']}×{c['cbam_kernel']}) after stages "
            + ", ".join(map(str, c["cbam_stages"]))
        )
    if c.get("transformer_layers"):
        parts.append(
            f"{c['transformer_layers']} pre-norm Transformer encoder layer(s) (d_model {c['d_model']}, {c['heads']} "
            f"heads, d_ff {c['d_ff']}) over the final token grid with learned positions"
        )
    return (
        "hafem_lite, the papers' HAFEM at CPU scale (`core/models/hafem.py`): "
        + " + ".join(parts)
        + f", global average pooling, dropout {c['drop_rate']}, linear head"
    )


def render_shipped_card(name: str = "default") -> str:
    """The card of the shipped ``name``, with its companion's figures when that is shipped too."""
    from core.models.weights import read_meta, shipped_weights

    meta = read_meta(shipped_weights(name))
    other = COMPANION.get(name)
    companion = read_meta(shipped_weights(other)) if other and shipped_weights(other) else None
    peers = json.loads(PEERS_PATH.read_text()) if PEERS_PATH.is_file() else None
    return render_card(meta, companion if companion and "test" in companion else None, peers)
