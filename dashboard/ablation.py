"""The ablation page's helpers: switches, the committed hafem_lite ladder, comparison tables, the model's view.

For every part the committed ladder (``core/models/weights/ladder``) gives the rung with it, those weights with
the part knocked out, and the rung retrained without it; a loss has only the retrained row.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

log = logging.getLogger(__name__)

ARCH_PARTS: dict[str, tuple[str, dict]] = {
    "cbam": ("CBAM attention", {"cbam": False}),
    "transformer": ("Transformer encoder", {"transformer_layers": 0}),
}
"""Part -> (label, the ``create_model`` overrides that remove it)."""

PART_RUNGS: dict[str, tuple[str, str, str]] = {
    "cbam": ("CBAM", "lite_cbam", "lite_trunk"),
    "transformer": ("Transformer", "lite_transformer", "lite_cbam"),
    "compound_loss": ("Compound loss", "lite_compound", "lite_transformer"),
}
"""Part -> (label, the hafem_lite rung with it, the rung retrained without it)."""


def rung_model(weights: Path) -> str:
    """The registered model name a rung's sidecar records (``config.model``)."""
    from core.models.weights import WeightsError, read_meta

    name = (read_meta(weights).get("config") or {}).get("model")
    if not name:
        raise WeightsError(f"the sidecar of {weights} does not say which model it trained")
    return name


def trained_loss(weights_path: Path | None) -> str | None:
    """The loss the weights were trained with (the sidecar's ``config.loss.name``); None when no sidecar says."""
    from core.models.weights import WeightsError, read_meta

    if weights_path is None:
        return None
    try:
        meta = read_meta(weights_path)
    except WeightsError as exc:
        log.warning("%s", exc)
        return None
    return ((meta.get("config") or {}).get("loss") or {}).get("name")


def ladder_weights(ladder_dir: Path) -> dict[str, Path | None]:
    """Rung -> its committed weights file in ``ladder_dir`` (None when absent)."""
    rungs = {r for _, with_part, without in PART_RUNGS.values() for r in (with_part, without)}
    return {r: (p if (p := Path(ladder_dir) / f"{r}.safetensors").is_file() else None) for r in sorted(rungs)}


def missing_ladder_message(ladder_dir: Path, missing: Sequence[str]) -> str:
    """Plain words and the exact commands that produce the missing rung weights."""
    from training.ablate import LADDER_COMMANDS

    return (
        f"The retrained rungs {', '.join(f'`{m}`' for m in missing)} are not in `{ladder_dir}` yet, so only "
        "knock-outs can be shown. They come from training the hafem_lite ladder (about 3 CPU-hours at its 2-epoch "
        "schedule) and exporting one seed's weights:\n\n" + "\n".join(f"    {c}" for c in LADDER_COMMANDS)
    )


def compare_table(variants: dict[str, Sequence[np.ndarray]], class_names: Sequence[str], decimals: int = 3):
    """Per variant and face: label, confidence and every probability (rounded), and the difference to the first
    variant (the reference) in the probability of the reference's label for that face."""
    names = list(variants)
    reference = variants[names[0]]
    rows = []
    for name in names:
        for i, probs in enumerate(variants[name]):
            p = np.asarray(probs, dtype=np.float64)
            ref = np.asarray(reference[i], dtype=np.float64)
            k = int(ref.argmax())
            row = {"variant": name, "face": i + 1, "label": class_names[int(p.argmax())]}
            row["confidence"] = round(float(p.max()), decimals)
            row.update({c: round(float(v), decimals) for c, v in zip(class_names, p, strict=True)})
            row["Δ p(reference label)"] = round(float(p[k] - ref[k]), decimals)
            rows.append(row)
    return pd.DataFrame(rows)


def part_tables(rungs: dict[str, Path], crops: Sequence[np.ndarray], rung_engine) -> dict[str, pd.DataFrame]:
    """Per part: the rung with it, those weights with the part knocked out, and the rung retrained without it.

    ``rung_engine(weights, parts)`` returns an engine for a committed rung with ``parts`` knocked out (the page
    passes its cached loader). A loss has no knock-out row.
    """
    tables = {}
    for part, (label, with_part, without) in PART_RUNGS.items():
        full = rung_engine(rungs[with_part], ())
        variants = {f"{with_part} (with {label})": full.predict(crops)}
        if part in ARCH_PARTS:
            variants[f"{with_part}, {label} knocked out"] = rung_engine(rungs[with_part], (part,)).predict(crops)
        else:
            label += " (a loss cannot be knocked out)"
        variants[f"{without} (retrained without)"] = rung_engine(rungs[without], ()).predict(crops)
        tables[label] = compare_table(variants, full.class_names)
    return tables


@dataclass(frozen=True)
class Switches:
    """What is kept (True) or switched off (False)."""

    cbam: bool = True
    transformer: bool = True
    compound_loss: bool = True
    align: bool = True
    clahe: bool = False
    gamma: bool = False

    def removed(self, have: dict[str, bool]) -> tuple[str, ...]:
        """The architecture parts the model has (``core.models.available_parts``) and the switches turn off."""
        return tuple(p for p in ARCH_PARTS if have[p] and not getattr(self, p))

    def overrides(self, have: dict[str, bool]) -> dict:
        """``create_model`` overrides that remove the switched-off architecture parts the model has."""
        return {k: v for part in self.removed(have) for k, v in ARCH_PARTS[part][1].items()}

    def preprocess(self) -> tuple[str, ...]:
        return tuple(s for s in ("gamma", "clahe") if getattr(self, s))


def find_checkpoint(runs: Path, model: str, overrides: dict, compound_loss: bool) -> Path | None:
    """The newest trained ``best.safetensors`` under ``runs`` whose sidecar says: same model, those overrides,
    that loss (``config.model``, ``config.model_overrides``, ``config.loss.name``). None when no run matches."""
    from training.runs import list_runs

    for ckpt in list_runs(runs).checkpoints:  # newest first
        own = ckpt.config.get("model_overrides") or {}
        loss = (ckpt.config.get("loss") or {}).get("name")
        if (
            ckpt.path.name == "best.safetensors"
            and ckpt.model == model
            and all(own.get(k) == v for k, v in overrides.items())
            and (loss == "compound") == compound_loss
        ):
            return ckpt.path
    return None


def ablation_reports(runs: Path, limit: int = 20) -> list[Path]:
    """``ablation.json`` files written by ``python -m training.ablate`` under ``runs``, newest first."""
    from training.runs import list_runs

    return [f.path for f in list_runs(runs).ablations[:limit]]


class AblationReportError(ValueError):
    """An ``ablation.json`` that ``training.ablate`` did not write, or that was damaged; the message names it."""


REPORT_KEYS = ("meta", "summary", "comparisons")


def report_markdown(path: Path) -> str:
    """The training ablation table of ``path`` as markdown (``training.ablate.markdown``).

    Anything may land under ``runs/``, so every way the file can fail to be a report is one
    :class:`AblationReportError` naming it.
    """
    from training.ablate import markdown

    path = Path(path)
    try:
        report = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise AblationReportError(f"{path}: not a JSON file ({exc})") from exc
    if not isinstance(report, dict) or any(k not in report for k in REPORT_KEYS):
        raise AblationReportError(f"{path}: not an ablation report of training.ablate (it needs {list(REPORT_KEYS)})")
    try:
        return markdown(report)
    except (KeyError, IndexError, TypeError, ValueError, AttributeError) as exc:
        raise AblationReportError(
            f"{path}: not an ablation report of training.ablate ({type(exc).__name__}: {exc})"
        ) from exc
