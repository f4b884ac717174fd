"""Safe weight files: safetensors first, ``torch.load(weights_only=True)`` otherwise, never a pickle.

A weights file ``X.safetensors`` may have a sidecar ``X.json`` holding the :class:`ModelSpec` it was trained
with, the command that trained it and its measured scores (the model card's source of truth).
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
import warnings
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn

log = logging.getLogger(__name__)

SHIPPED_DIR = Path(__file__).resolve().parent / "weights"
"""Weights committed with the repository (safetensors, 25 MB in all at most)."""

PRETRAINED_ENV = "FERLENS_PRETRAINED_DIR"
"""Folder searched for ImageNet backbone files named ``<timm-arch>.safetensors`` (or ``.pth``/``.bin``)."""


class WeightsError(ValueError):
    """A weights file that cannot be used: unreadable, unsafe, or not matching the model."""


def shipped_weights(name: str) -> Path | None:
    """The weights shipped in the repo for model ``name``, or None."""
    path = SHIPPED_DIR / f"{name}.safetensors"
    return path if path.is_file() else None


RANDOM_INIT = ("none", "random")
"""``weights`` values (besides ``None``) that ask for a random init on purpose."""


def resolve_weights(name: str, weights: str | Path | None) -> Path | None:
    """``create_model``'s ``weights`` -> the file to load, or None for a random init.

    ``"default"`` is the file shipped for ``name``; ``None``, ``"none"`` or ``"random"`` a random init. A file
    that does not exist is a :class:`WeightsError` naming the fix, never a silent random init.
    """
    if weights is None or str(weights).lower() in RANDOM_INIT:
        return None
    if str(weights) == "default":
        path = shipped_weights(name)
        if path is None:
            raise WeightsError(
                f"no weights are shipped for model {name!r}: pick a trained .safetensors file "
                "(e.g. runs/<run>/best.safetensors), or 'none' for a random init"
            )
        return path
    path = Path(weights)
    if not path.is_file():
        raise WeightsError(f"weights file not found: {path}; pick an existing .safetensors file, 'default' or 'none'")
    return path


def sidecar_build_args(path: Path | None) -> tuple[int | None, dict]:
    """``(num_classes, model_overrides)`` the trainer recorded beside ``path``; ``(None, {})`` without a sidecar."""
    side = read_meta(path) if path is not None else {}
    spec = side.get("spec") if isinstance(side.get("spec"), dict) else {}
    cfg = side.get("config") if isinstance(side.get("config"), dict) else {}
    num_classes = spec.get("num_classes") or (cfg.get("data") or {}).get("num_classes")
    return (int(num_classes) if num_classes else None), dict(cfg.get("model_overrides") or {})


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """Read a state dict without ever running code from the file.

    ``.safetensors`` is parsed as data; anything else goes through ``torch.load(weights_only=True)``, which
    refuses pickled objects other than tensors and plain containers. A crafted pickle raises WeightsError.
    """
    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"weights file not found: {path}")
    if path.suffix == ".safetensors":
        try:
            return load_file(str(path))
        except (SafetensorError, OSError, ValueError) as exc:
            raise WeightsError(f"{path.name} is not a valid safetensors file: {exc}") from exc
    try:
        with warnings.catch_warnings():  # torch warns about the pickle protocol before refusing; our error says it
            warnings.simplefilter("ignore", UserWarning)
            obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises UnpicklingError, RuntimeError, EOFError... for bad files
        raise WeightsError(
            f"{path.name} could not be loaded safely (weights_only=True refused it or it is corrupt): "
            f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
        ) from exc
    if isinstance(obj, dict) and "state_dict" in obj and isinstance(obj["state_dict"], dict):
        obj = obj["state_dict"]
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise WeightsError(f"{path.name} does not hold a state dict of tensors")
    return obj


def load_weights(model: nn.Module, path: str | Path, strict: bool = True) -> None:
    """Load ``path`` into ``model``; a mismatch names the missing, unexpected and mis-shaped keys."""
    state = read_state_dict(path)
    own = model.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    shapes = [
        f"{k}: file {tuple(state[k].shape)} vs model {tuple(own[k].shape)}"
        for k in sorted(set(own) & set(state))
        if state[k].shape != own[k].shape
    ]
    if shapes or (strict and (missing or unexpected)):
        named = (("missing keys", missing), ("unexpected keys", unexpected), ("shape mismatches", shapes))
        parts = [f"{what} ({len(keys)}): {keys[:8]}" for what, keys in named if keys]
        raise WeightsError(f"{Path(path).name} does not fit {type(model).__name__}: " + "; ".join(parts))
    model.load_state_dict(state, strict=strict)


def warm_start(model: nn.Module, path: str | Path) -> dict[str, list[str]]:
    """Fine-tuning init: load every key of ``path`` that fits ``model``, resizing the classifier where classes differ.

    Canonical class order puts contempt last: a 7-class head fills the first rows of an 8-class one, an 8-class
    head starts a 7-class one without its last row. Keys the file lacks keep their init; any other mismatch, or a
    file that fits nothing, is a :class:`WeightsError`. Returns what was resized (``widened``) and what kept its init.
    """
    state = read_state_dict(path)
    own = model.state_dict()
    widened, bad = [], []
    for k in sorted(set(own) & set(state)):
        src, dst = state[k], own[k]
        if src.shape == dst.shape:
            continue
        if src.dim() >= 1 and src.shape[1:] == dst.shape[1:] and k.startswith("head."):
            resized = dst.clone()
            n = min(src.shape[0], dst.shape[0])
            resized[:n] = src[:n].to(dst.dtype)
            state[k] = resized
            widened.append(k)
        else:
            bad.append(f"{k}: file {tuple(src.shape)} vs model {tuple(dst.shape)}")
    unexpected = sorted(set(state) - set(own))
    if bad or unexpected or not set(own) & set(state):
        raise WeightsError(
            f"{Path(path).name} cannot warm-start {type(model).__name__}: "
            f"shape mismatches {bad[:8]}, keys the model lacks {unexpected[:8]}"
        )
    fresh = sorted(set(own) - set(state))
    model.load_state_dict(state, strict=False)
    return {"widened": widened, "fresh": fresh}


TEMP_SUFFIX = ".tmp"
"""Temp files are named ``.<target name>.<random>.tmp`` beside their target (how a resume spots leftovers)."""


def stage_write(path: Path, write) -> Path:
    """The first half of :func:`atomic_write`: ``write(tmp)`` to a temp file beside ``path``, fsynced.

    Returns the temp file for the caller to ``os.replace`` onto ``path``, so several files can be written before
    any is committed (the trainer's checkpoint). On error the temp file is removed and the error propagates.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=TEMP_SUFFIX, dir=path.parent)
    os.close(fd)
    try:
        write(tmp)
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())  # delayed allocation: a full disk may only show here
        os.chmod(tmp, 0o644)  # mkstemp makes 0600 files; results and weights are meant to be shared
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return Path(tmp)


def atomic_write(path: Path, write) -> None:
    """Write via a temp file in the same folder and ``os.replace``, so a crash never leaves half a file."""
    tmp = stage_write(path, write)
    try:
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def save_weights(model: nn.Module, path: str | Path, meta: dict | None = None) -> None:
    """Save ``model``'s weights as safetensors (atomically) and, if given, ``meta`` as a JSON sidecar."""
    path = Path(path)
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    atomic_write(path, lambda tmp: save_file(state, tmp))
    if meta is not None:
        text = json.dumps(meta, indent=2, sort_keys=True, default=str)
        atomic_write(path.with_suffix(".json"), lambda tmp: Path(tmp).write_text(text))


def read_meta(path: str | Path) -> dict:
    """The JSON sidecar of a weights file ({} when there is none); a WeightsError when it is not a UTF-8 JSON
    object, as it then says nothing trustworthy about how the weights were built and callers must not guess."""
    side = Path(path).with_suffix(".json")
    if not side.is_file():
        return {}
    try:
        meta = json.loads(side.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise WeightsError(f"the sidecar {side} of {Path(path).name} is not valid JSON: {exc}") from None
    if not isinstance(meta, dict):
        raise WeightsError(f"the sidecar {side} of {Path(path).name} is a JSON {type(meta).__name__}, not an object")
    return meta


def find_pretrained(arch: str, explicit: str | Path | None = None) -> Path | None:
    """Locate local ImageNet weights for timm backbone ``arch``; never touches the network.

    Looks at ``explicit`` first, then ``$FERLENS_PRETRAINED_DIR/<arch>.{safetensors,pth,bin}``. When nothing is
    found, logs once what to place where and returns None (the backbone then starts from random init).
    """
    if explicit:
        p = Path(explicit)
        if not p.is_file():
            raise WeightsError(f"pretrained backbone file not found: {p}")
        return p
    root = os.environ.get(PRETRAINED_ENV)
    if root:
        for ext in (".safetensors", ".pth", ".bin"):
            p = Path(root) / f"{arch}{ext}"
            if p.is_file():
                return p
    log.info(
        "no local ImageNet weights for %s: random init. To use them, put %s.safetensors in $%s "
        "or pass pretrained_backbone=PATH (ferlens never downloads).",
        arch,
        arch,
        PRETRAINED_ENV,
    )
    return None
