"""The ablation page's logic: which parts can be switched off for a model, and how each is switched off.

Three kinds of parts, three honest ways to remove them on one image:

* **Architecture** (CBAM, the Transformer encoder): the part is bypassed (replaced by identity) in a copy of
  the current model, every other layer keeping its weights ("knock-out": the trained network minus that part,
  not retrained). When a training run of exactly that configuration (``create_model`` overrides such as
  ``cbam=False``) exists under ``runs/`` (e.g. from ``python -m training.ablate``), its checkpoint is used
  instead: that is the retrained ablation.
* **Training** (the compound loss): cannot be removed at inference; only a checkpoint trained without it can
  show its effect. Without one the switch is disabled and says why.
* **Input pipeline** (5-point alignment, CLAHE, adaptive gamma): applied or not before the same model.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

ARCH_PARTS: dict[str, tuple[str, dict]] = {
    "cbam": ("CBAM attention", {"cbam": False}),
    "transformer": ("Transformer encoder", {"transformer_layers": 0}),
}
"""Part -> (label, the ``create_model`` overrides that remove it)."""


def arch_parts(config: dict) -> dict[str, bool]:
    """Which architecture parts the model has (from its ``ModelSpec.config``)."""
    return {"cbam": bool(config.get("cbam")), "transformer": int(config.get("transformer_layers") or 0) > 0}


@dataclass(frozen=True)
class Switches:
    """What is kept (True) or switched off (False)."""

    cbam: bool = True
    transformer: bool = True
    compound_loss: bool = True
    align: bool = True
    clahe: bool = False
    gamma: bool = False

    def removed(self, config: dict) -> tuple[str, ...]:
        """The architecture parts the model has and the switches turn off."""
        have = arch_parts(config)
        return tuple(p for p in ARCH_PARTS if have[p] and not getattr(self, p))

    def overrides(self, config: dict) -> dict:
        """``create_model`` overrides that remove the switched-off architecture parts the model has."""
        have = arch_parts(config)
        out: dict = {}
        for part, (_, remove) in ARCH_PARTS.items():
            if have[part] and not getattr(self, part):
                out.update(remove)
        return out

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


def _part_class(part: str):
    from torch import nn

    from core.models.cbam import CBAM

    return {"cbam": CBAM, "transformer": nn.TransformerEncoder}[part]


def knockout(engine, parts: tuple[str, ...]):
    """A copy of the engine's model with every module of ``parts`` bypassed (replaced by identity).

    CBAM re-weights a feature map and the Transformer encoder maps tokens to tokens of the same shape, so
    both can be bypassed while every other layer keeps its trained weights exactly (no renamed or reshaped
    tensor). Returns ``(model, removed)``: the copy in eval mode and the names of the bypassed modules.
    """
    import copy

    from torch import nn

    model = copy.deepcopy(engine.model)
    kinds = tuple(_part_class(p) for p in parts)
    targets = [name for name, m in model.named_modules() if name and isinstance(m, kinds)]
    for name in targets:
        parent_name, _, child = name.rpartition(".")
        parent = model.get_submodule(parent_name) if parent_name else model
        setattr(parent, child, nn.Identity())
    return model.eval(), targets


def variant_table(variants: dict[str, object], class_names) -> list[dict]:
    """Rows for the comparison table: per variant and face, label, confidence and every probability."""
    rows = []
    for name, result in variants.items():
        for i, face in enumerate(result.faces):
            row = {"variant": name, "face": i + 1, "label": face.label, "confidence": face.score}
            row.update({c: float(p) for c, p in zip(class_names, face.probs, strict=True)})
            rows.append(row)
    return rows


def ablation_reports(runs: Path, limit: int = 20) -> list[Path]:
    """``ablation.json`` files written by ``python -m training.ablate`` under ``runs``, newest first."""
    from training.runs import list_runs

    return [f.path for f in list_runs(runs).ablations[:limit]]


class AblationReportError(ValueError):
    """An ``ablation.json`` that ``training.ablate`` did not write, or that was damaged; the message names it."""


REPORT_KEYS = ("meta", "summary", "comparisons")


def report_markdown(path: Path) -> str:
    """The training ablation table of ``path`` as markdown (``training.ablate.markdown``).

    The file sits under ``runs/`` where anything may land (a results JSON saved under the wrong name, half a
    file from a killed run), so every way it can fail to be a report becomes one :class:`AblationReportError`
    naming the file, instead of whatever ``json`` or the table code happened to raise.
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
