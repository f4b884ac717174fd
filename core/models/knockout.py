"""Knock-outs: a trained model minus one part (CBAM, the Transformer encoder), every other weight unchanged.

The inference-time half of an ablation (the retrained rung of ``training.ablate`` is the other). Both parts are
shape-preserving, so an identity replaces them; the encoder's positions and final norm stay, keeping the
classifier's input on its trained scale.
"""

from __future__ import annotations

import copy

from torch import nn

from core.models.cbam import CBAM

PARTS: dict[str, type[nn.Module]] = {"cbam": CBAM, "transformer": nn.TransformerEncoder}
"""Part name -> the module class that implements it in every ferlens family."""


def part_modules(model: nn.Module, part: str) -> list[str]:
    """Dotted names of the modules of ``model`` that implement ``part`` (empty when it has none)."""
    if part not in PARTS:
        raise ValueError(f"unknown part {part!r}; choose one of {sorted(PARTS)}")
    return [name for name, m in model.named_modules() if name and isinstance(m, PARTS[part])]


def available_parts(model: nn.Module) -> dict[str, bool]:
    """Which knock-out parts ``model`` has (``{"cbam": True, "transformer": False}`` for FerNet + CBAM)."""
    return {part: bool(part_modules(model, part)) for part in PARTS}


def knock_out(model: nn.Module, *parts: str) -> nn.Module:
    """A deep copy of ``model`` in eval mode with every module of ``parts`` replaced by ``nn.Identity``; a
    ValueError for an unknown part or one the model does not have lists the parts it has."""
    names = {part: part_modules(model, part) for part in parts}
    missing = [p for p, found in names.items() if not found]
    if missing:
        have = [p for p, ok in available_parts(model).items() if ok]
        raise ValueError(
            f"{type(model).__name__} has no {', '.join(missing)} to knock out (parts it has: {have or 'none'})"
        )
    out = copy.deepcopy(model)
    for name in (n for found in names.values() for n in found):
        parent_name, _, child = name.rpartition(".")
        setattr(out.get_submodule(parent_name) if parent_name else out, child, nn.Identity())
    return out.eval()
