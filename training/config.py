"""Training configs: frozen dataclasses, named presets and dinov2-style ``key=value`` overrides.

One :class:`TrainConfig` says everything a run needs and is saved as ``config.json`` beside every checkpoint.
Presets are functions in :data:`PRESETS` (``@PRESETS.register``); dotted overrides (``optim.lr=3e-4``) are parsed
against the field types, so a typo fails with the list of known keys.
"""

from __future__ import annotations

import ast
import dataclasses
import json
import math
import types
import typing
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, fields, is_dataclass, replace
from functools import partial
from pathlib import Path
from typing import Literal

from core.losses import LossConfig, list_losses
from core.registry import Registry

__all__ = [
    "AugmentConfig",
    "ConfigError",
    "DataConfig",
    "LossConfig",
    "OptimConfig",
    "TrainConfig",
    "apply_overrides",
    "config_from_dict",
    "config_to_dict",
    "get_preset",
    "list_presets",
    "parse_value",
    "validate_config",
]


class ConfigError(ValueError):
    """A config that cannot be trained: unknown key, bad value, unknown preset or dataset."""


@dataclass(frozen=True)
class DataConfig:
    """Where the faces come from and how labels are formed.

    ``dataset`` is ``fer2013``, ``ferplus``, ``folder:PATH`` (class-named sub-folders, e.g. RAF-DB, CK+, KDEF,
    JAFFE) or ``affectnet:PATH`` (AffectNet's ``training.csv`` / ``validation.csv`` and image folder).
    """

    dataset: str = "fer2013"
    root: str | None = None
    """Folder holding ``fer2013/`` and ``ferplus/``; None: ``$FERLENS_DATA`` or ``<repo>/../shared/datasets``."""
    label_mode: Literal["hard", "soft"] = "hard"
    """``hard``: one class per image; ``soft``: FERPlus vote distribution (other datasets: one-hot)."""
    num_classes: int = 7
    """7 (FER2013 order) or 8 (FERPlus, contempt last)."""
    ferplus_rule: Literal["argmax", "strict"] = "argmax"
    """``argmax``: column with most votes, first wins ties (the README's table); ``strict``: FERPlus' own
    "majority" mode (single votes ignored, top class needs more than half the rest)."""
    limit: int | None = None
    """Keep at most this many rows per split (tiny/CI mode)."""
    limit_mode: Literal["stratified", "first"] = "stratified"
    """``stratified``: a deterministic per-class proportional slice; ``first``: the first ``limit`` rows."""
    train_split: str = "train"
    val_split: str = "val"
    sampler: Literal["random", "balanced", "sqrt"] = "random"
    """``random``: a shuffled epoch; ``balanced``: DCRNet's oversampling, classes drawn equally often;
    ``sqrt``: class weights 1/sqrt(n_c), a milder rebalancing."""
    image_size: int = 112
    """Side of the cached crops for ``folder:``/``affectnet:`` photos (FER2013 is 48 px by construction)."""
    faces: Literal["cropped", "detect"] = "cropped"
    """``cropped``: folder images are already face crops; ``detect``: run them through ``core.faces`` first."""
    cache_dir: str | None = None
    """Decoded-array cache; None: ``$FERLENS_CACHE`` or ``<repo>/cache``."""


@dataclass(frozen=True)
class AugmentConfig:
    """The papers' seven augmentations with their probabilities (HAFEM/ADNN-FER), as one frozen object.

    Pixel sizes (``crop_padding``, ``cutout_size``) are given at the papers' ``ref_size`` of 224 px and scaled
    linearly to the model's input (so a 32-px cutout is 1/7 of the face at any size, 7 px at 48 px).
    ``strength`` multiplies every probability (clamped to 1) and every magnitude; 0 switches everything off.
    ``corrupt`` is not the papers': the probability of one camera corruption per sample (noise, blur, low light,
    JPEG, low resolution, occlusion; ``training.augment.CORRUPTIONS``), 0 by default.
    """

    enabled: bool = True
    hflip: float = 0.5
    crop: float = 0.8
    crop_padding: int = 10
    jitter: float = 0.5
    brightness: float = 0.3
    contrast: float = 0.3
    saturation: float = 0.2
    hue: float = 0.05
    rotate: float = 0.3
    degrees: float = 15.0
    noise: float = 0.2
    noise_sigma: tuple[float, float] = (0.01, 0.05)
    cutout: float = 0.3
    cutout_size: int = 32
    mixup: float = 0.4
    mixup_alpha: float = 0.4
    corrupt: float = 0.0
    ref_size: int = 224
    strength: float = 1.0


@dataclass(frozen=True)
class OptimConfig:
    """Optimiser and schedule. Defaults are the HAFEM protocol: AdamW, linear warm-up, cosine 1e-3 -> 1e-6."""

    name: Literal["adamw", "adam"] = "adamw"
    """``adamw`` or ``adam`` (DCRNet)."""
    lr: float = 1e-3
    min_lr: float = 1e-6
    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = 1e-8
    weight_decay: float = 5e-4
    schedule: Literal["cosine", "plateau", "constant"] = "cosine"
    """``cosine`` (per step, after warm-up), ``plateau`` (ReduceLROnPlateau on val macro-F1, per epoch) or
    ``constant``."""
    warmup_epochs: float = 1.0
    layer_decay: float = 0.9
    """Layer-wise LR decay: group k of G (input -> head) trains at ``lr * layer_decay ** (G - 1 - k)``."""
    clip_grad: float = 5.0
    """Max global grad norm; 0 disables clipping."""
    plateau_factor: float = 0.1
    plateau_patience: int = 5
    amp: Literal["auto", "bf16", "fp16", "off"] = "auto"
    """``auto`` (bf16 on CUDA when supported, else fp16), ``bf16``, ``fp16`` or ``off``. Never used on CPU."""


@dataclass(frozen=True)
class TrainConfig:
    """One training run, complete. ``name`` is the preset it came from."""

    name: str = "default"
    model: str = "fernet_s"
    model_overrides: dict = field(default_factory=dict)
    init_weights: str | None = None
    """Start from these weights (fine-tuning); None: the model's own init."""
    data: DataConfig = field(default_factory=DataConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    epochs: int = 30
    batch_size: int = 64
    eval_batch_size: int = 256
    seed: int = 0
    deterministic: bool = False
    patience: int = 10
    """Stop after this many epochs without a better validation macro-F1; 0 disables early stopping."""
    out_dir: str = "runs/default"
    log_every: int = 0
    """Also log a JSONL record every k optimiser steps (0: per epoch only)."""
    num_threads: int = 0
    """CPU threads for torch; 0: all cores divided among local processes."""
    channels_last: bool = False
    """Train in NHWC memory format: +20 % img/s for FerNet-S on this 2-core CPU (oneDNN), more for CNNs on CUDA.
    Same arithmetic, different kernel order, so results match the NCHW run only to float tolerance."""


# ---------------------------------------------------------------------------------------------- presets

PRESETS: Registry[Callable[[], TrainConfig]] = Registry("preset", error=ConfigError)


def list_presets() -> list[str]:
    return PRESETS.names()


def get_preset(name: str) -> TrainConfig:
    """A preset by name, or a JSON/YAML config file (e.g. a run's ``config.json``) by path."""
    if name.endswith((".json", ".yaml", ".yml")):
        path = Path(name)
        if not path.is_file():
            raise ConfigError(f"config file not found: {path}")
        if path.suffix == ".json":
            data = json.loads(path.read_text())
        else:
            import yaml

            data = yaml.safe_load(path.read_text())
        return config_from_dict(data)
    return PRESETS.get(name)()


def _paper(name: str, model: str, **kw) -> TrainConfig:
    """The papers' protocol shared by the paper presets and the ablation ladder: 100 epochs, patience 15.

    The ladder trains on FER2013 (7 classes), where the papers report it; the HAFEM presets on FERPlus' cleaner
    majority labels (8 classes).
    """
    base = dict(loss=LossConfig(name="compound"), optim=OptimConfig(warmup_epochs=5.0), epochs=100, patience=15)
    return TrainConfig(name=name, model=model, out_dir=f"runs/{name}", **{**base, **kw})


@PRESETS.register
def default() -> TrainConfig:
    """FerNet-S on FER2013 labels, from scratch (``fernet_s_fer2013``'s weights, the trunk of every hafem_lite run).

    A short cosine schedule sized for a 2-core CPU budget. Plain CE and no mixup, by evidence (docs/training-log.md):
    the papers' compound loss collapsed FerNet-S onto the majority class from scratch, and mixup slows a schedule
    this short.
    """
    return TrainConfig(
        augment=AugmentConfig(mixup=0.0),
        loss=LossConfig(name="ce"),
        optim=OptimConfig(layer_decay=1.0),
        epochs=26,
        patience=8,
        channels_last=True,
    )


@PRESETS.register
def default_ferplus() -> TrainConfig:
    """FerNet-S fine-tuned on FERPlus' ten-annotator vote distributions (8 classes, contempt included).

    Soft-label CE against each image's emotion votes; rows whose majority is ``unknown`` or ``NF`` are dropped and
    ``unknown``/``NF`` votes are left out of the distribution (the standard FERPlus 8-class protocol). Warm start:
    the FER2013-label weights, whose 7-row head is widened to 8 (``core.models.weights.warm_start``).
    The warm start of :func:`hafem_lite_ferplus` (the shipped ``default``).
    """
    base = default()
    return replace(
        base,
        name="default_ferplus",
        init_weights="core/models/weights/fernet_s_fer2013.safetensors",
        data=DataConfig(dataset="ferplus", num_classes=8, label_mode="soft"),
        optim=replace(base.optim, lr=5e-4, warmup_epochs=0.5),
        epochs=12,
        patience=0,
        out_dir="runs/default_ferplus",
    )


@PRESETS.register
def default_ferplus_robust() -> TrainConfig:
    """:func:`default_ferplus` with camera corruptions on half of the samples (robust training).

    One in two keeps the clean image most of the time, so clean accuracy is still trained for while every
    corruption family is seen by ~1/12 of the samples per epoch.
    """
    return replace(
        default_ferplus(),
        name="default_ferplus_robust",
        augment=AugmentConfig(mixup=0.0, corrupt=0.5),
        out_dir="runs/default_ferplus_robust",
    )


@PRESETS.register
def hafem_lite_ferplus() -> TrainConfig:
    """The papers' hybrid at CPU scale (hafem_lite: CBAM + Transformer) on FERPlus vote distributions.

    Same data, loss and schedule shape as :func:`default_ferplus`; warm start: that run's FERPlus FerNet-S, whose
    every tensor fits hafem_lite's trunk and head (d_model 256 = the trunk's last width), so only CBAM, the
    positions and the encoder layer start fresh. Soft-label CE: the compound loss needs hard labels. Its weights
    ship as ``default``.
    """
    return replace(
        default_ferplus(),
        name="hafem_lite_ferplus",
        model="hafem_lite",
        init_weights="runs/default_ferplus/best.safetensors",
        epochs=8,
        out_dir="runs/hafem_lite_ferplus",
    )


@PRESETS.register
def hafem_paper() -> TrainConfig:
    """HAFEM as the text describes it (6-layer, d_model 2048 transformer) with the compound loss."""
    return _paper("hafem_paper", "hafem_paper", data=DataConfig(dataset="ferplus", num_classes=8))


@PRESETS.register
def hafem_compact() -> TrainConfig:
    """HAFEM in the configuration that matches the paper's stated 61.6 M parameters."""
    return _paper("hafem_compact", "hafem_compact", data=DataConfig(dataset="ferplus", num_classes=8))


@PRESETS.register
def dcrnet_paper() -> TrainConfig:
    """DCRNet: Adam + ReduceLROnPlateau, class-weighted CE and class-balanced oversampling."""
    optim = OptimConfig(name="adam", weight_decay=0.0, schedule="plateau", warmup_epochs=0.0, layer_decay=1.0)
    loss = LossConfig(name="weighted_ce")
    return _paper("dcrnet_paper", "dcrnet", data=DataConfig(sampler="balanced"), loss=loss, optim=optim)


# The ablation ladder ResNet-50 -> EffNet-B5 -> +CBAM -> +Transformer -> +compound loss. Every rung but the
# last trains with plain CE, so each step changes exactly one thing. Rung name: (model, its switches, loss).
_PAPER_RUNGS = {
    "ladder_resnet50": ("resnet50_baseline", {}, "ce"),
    "ladder_effnet_b5": ("effnet_b5_baseline", {}, "ce"),
    "ladder_cbam": ("hafem", {"transformer": False}, "ce"),
    "ladder_transformer": ("hafem", {}, "ce"),
    "ladder_full": ("hafem", {}, "compound"),
}

# The papers' ladder at CPU scale, hafem_lite: trunk (CE) -> +CBAM -> +Transformer -> +compound loss. Every rung
# starts from the same trained FerNet-S trunk (fernet_s_fer2013) and trains on the same schedule; one thing changes
# per rung. ``python -m training.ablate --ladder hafem_lite`` runs them in this order.
LITE_WARM_START = "core/models/weights/fernet_s_fer2013.safetensors"
LITE_STEPS_PER_EPOCH = 449
"""Optimiser steps of one FER2013 Training epoch at batch 64 (28,709 images); sizes the center-loss ramp."""
_LITE_RUNGS = {
    # the FerNet-S trunk alone (hafem_lite with CBAM and Transformer off)
    "lite_trunk": ({"cbam": False, "transformer": False}, LossConfig(name="ce")),
    # + CBAM after the last two stages
    "lite_cbam": ({"cbam": True, "transformer": False}, LossConfig(name="ce")),
    # + the d_model-256 Transformer encoder over the 6x6 tokens
    "lite_transformer": ({"cbam": True, "transformer": True}, LossConfig(name="ce")),
    # + the papers' compound loss, literal 0.60/0.25/0.15, center weight ramped over two epochs
    "lite_compound": (
        {"cbam": True, "transformer": True},
        LossConfig(name="compound", center_ramp_steps=2 * LITE_STEPS_PER_EPOCH),
    ),
}


def _paper_rung(name: str) -> TrainConfig:
    model, switches, loss = _PAPER_RUNGS[name]
    return _paper(name, model, model_overrides=dict(switches), loss=LossConfig(name=loss))


def _lite(name: str, model_overrides: dict, loss: LossConfig) -> TrainConfig:
    return TrainConfig(
        name=name,
        model="hafem_lite",
        model_overrides=dict(model_overrides),
        init_weights=LITE_WARM_START,
        augment=AugmentConfig(mixup=0.0),
        loss=loss,
        optim=OptimConfig(lr=5e-4, warmup_epochs=0.5, layer_decay=1.0),
        epochs=6,
        patience=0,
        out_dir=f"runs/{name}",
        channels_last=True,
    )


for _name in _PAPER_RUNGS:
    PRESETS.register(partial(_paper_rung, _name), name=_name)
for _name in _LITE_RUNGS:
    PRESETS.register(partial(_lite, _name, *_LITE_RUNGS[_name]), name=_name)


@PRESETS.register
def hafem_lite_fer2013() -> TrainConfig:
    """The shipped hybrid (``default``, FERPlus votes) fine-tuned on FER2013's own labels: the FER2013-label path.

    FER2013's labels disagree with the FERPlus majority on a third of the images, so a FERPlus model scores low
    against them; this run learns FER2013's labelling on top of the hybrid's features. The 8-class head is
    narrowed to 7 by dropping contempt's row (``core.models.weights.warm_start``). Plain CE, as :func:`default`.
    Its weights ship as ``default_fer2013``.
    """
    return replace(
        _lite("hafem_lite_fer2013", {}, LossConfig(name="ce")),
        init_weights="core/models/weights/default.safetensors",
        optim=OptimConfig(lr=3e-4, warmup_epochs=0.3, layer_decay=1.0),
    )


LADDERS: dict[str, tuple[str, ...]] = {"hafem_lite": tuple(_LITE_RUNGS), "papers": tuple(_PAPER_RUNGS)}
"""Named ladders: presets in rung order (``training.ablate --ladder NAME``)."""


# ----------------------------------------------------------------------------------- dict round trip


def config_to_dict(cfg) -> dict:
    """A JSON-safe dict of a config (tuples become lists)."""
    return json.loads(json.dumps(dataclasses.asdict(cfg)))


def _build(cls, data: dict, where: str):
    if not isinstance(data, dict):
        raise ConfigError(f"{where or 'config'} must be a mapping, got {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    unknown = sorted(set(data) - set(hints))
    if unknown:
        raise ConfigError(f"unknown config key(s) {unknown} in {where or 'config'}; known: {sorted(hints)}")
    kwargs = {
        key: _build(hints[key], value, key)
        if is_dataclass(hints[key])
        else _coerce(value, hints[key], f"{where}.{key}".lstrip("."))
        for key, value in data.items()
    }
    try:
        return cls(**kwargs)
    except ValueError as exc:  # a config's own __post_init__ check (e.g. LossConfig weights)
        raise ConfigError(str(exc)) from exc


def config_from_dict(data: dict) -> TrainConfig:
    """Inverse of :func:`config_to_dict`; unknown keys raise with the list of known ones."""
    cfg = _build(TrainConfig, data, "")
    validate_config(cfg)
    return cfg


# --------------------------------------------------------------------------------------- overrides


def parse_value(text: str):
    """Parse a command-line value: JSON / Python literal, true/false/none, else the raw string."""
    low = text.strip().lower()
    if low in ("true", "yes", "on"):
        return True
    if low in ("false", "no", "off"):
        return False
    if low in ("none", "null", ""):
        return None
    for parse in (json.loads, ast.literal_eval):
        try:
            return parse(text)
        except (ValueError, SyntaxError, TypeError):
            continue
    return text


_ACCEPTS = {
    bool: lambda v: isinstance(v, bool) or v in (0, 1),
    int: lambda v: not isinstance(v, bool) and not (isinstance(v, float) and not v.is_integer()),
    float: lambda v: not isinstance(v, bool),
    str: lambda v: True,
    tuple: lambda v: isinstance(v, (list, tuple)),
    dict: lambda v: isinstance(v, dict),
}
"""Values each field type takes before conversion: no bool as a number, no 2.5 as an int, 0/1 as a bool."""


def _coerce(value, hint, key: str):
    """Convert ``value`` to the field type ``hint`` (X | None, bool, int, float, str, tuple[X, ...], dict)."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if type(None) in args and (value is None or (isinstance(value, str) and parse_value(value) is None)):
            return None
        return _coerce(value, next(a for a in args if a is not type(None)), key)
    kind = type(args[0]) if origin is Literal else origin or hint
    if isinstance(value, str) and kind is not str:
        value = parse_value(value)
    try:
        if not _ACCEPTS[kind](value):
            raise TypeError
        if kind is tuple and args:
            return tuple(_coerce(v, args[0], key) for v in value)
        return kind(value)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{key}={value!r} is not a valid {getattr(hint, '__name__', hint)}") from exc


def apply_overrides(cfg: TrainConfig, overrides: Iterable[str]) -> TrainConfig:
    """Apply ``key=value`` overrides (dotted for nested configs) and validate the result.

    ``model_overrides.KEY=VALUE`` adds or replaces a model constructor argument (checked when the model is
    built, since each model has its own fields).
    """
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"override {item!r} must look like key=value (e.g. optim.lr=3e-4)")
        key, text = item.split("=", 1)
        key = key.strip()
        parts = key.split(".")
        if parts[0] == "model_overrides":
            if len(parts) != 2 or not parts[1]:
                raise ConfigError(f"override {key!r}: use model_overrides.FIELD=VALUE")
            cfg = replace(cfg, model_overrides={**cfg.model_overrides, parts[1]: parse_value(text)})
            continue
        cfg = _set(cfg, parts, text, key)
    validate_config(cfg)
    return cfg


def _all_keys(cls=TrainConfig, prefix: str = "") -> list[str]:
    out = []
    for name, hint in typing.get_type_hints(cls).items():
        if is_dataclass(hint):
            out += _all_keys(hint, f"{prefix}{name}.")
        else:
            out.append(prefix + name + (".KEY" if name == "model_overrides" else ""))
    return out


def _set(obj, parts: list[str], text: str, full: str):
    head = parts[0]
    current = getattr(obj, head, None)
    if head not in {f.name for f in fields(obj)} or (len(parts) > 1 and not is_dataclass(current)):
        raise ConfigError(f"unknown config key {full!r}; known keys: {', '.join(_all_keys())}")
    if len(parts) > 1:
        return replace(obj, **{head: _set(current, parts[1:], text, full)})
    if is_dataclass(current):
        raise ConfigError(f"{full!r} is a group; set one of its fields, e.g. {full}.{fields(current)[0].name}=...")
    value = _coerce(text, typing.get_type_hints(type(obj))[head], full)
    try:
        return replace(obj, **{head: value})
    except ValueError as exc:  # a config's own __post_init__ check (e.g. LossConfig weights)
        raise ConfigError(f"{full}: {exc}") from exc


# -------------------------------------------------------------------------------------- validation


def validate_config(cfg: TrainConfig) -> None:
    """Raise :class:`ConfigError` with a plain message for values that cannot train.

    The model name is checked when the model is built (``create_model`` lists the known ones); the dataset
    name is checked here against the dataset registry.
    """
    from training.datasets import parse_dataset  # lazy: datasets imports this module

    problems: list[str] = []
    for group in ("data", "augment", "loss", "optim"):  # the Literal[...] fields name their choices
        for name, hint in typing.get_type_hints(type(getattr(cfg, group))).items():
            value, allowed = getattr(getattr(cfg, group), name), typing.get_args(hint)
            if typing.get_origin(hint) is Literal and value not in allowed:
                problems.append(f"{group}.{name}={value!r} must be one of {list(allowed)}")
    o, a, d = cfg.optim, cfg.augment, cfg.data
    checks = [
        (o.lr > 0 and math.isfinite(o.lr), f"optim.lr must be a positive number, got {o.lr}"),
        (0 <= o.min_lr <= o.lr, f"optim.min_lr must lie in [0, optim.lr], got {o.min_lr}"),
        (o.weight_decay >= 0, f"optim.weight_decay must be >= 0, got {o.weight_decay}"),
        (o.eps > 0, f"optim.eps must be > 0, got {o.eps}"),
        (
            all(0 <= b < 1 for b in o.betas) and len(o.betas) == 2,
            f"optim.betas must be two values in [0, 1), got {o.betas}",
        ),
        (0 < o.layer_decay <= 1, f"optim.layer_decay must lie in (0, 1], got {o.layer_decay}"),
        (o.warmup_epochs >= 0, f"optim.warmup_epochs must be >= 0, got {o.warmup_epochs}"),
        (
            o.schedule != "plateau" or o.warmup_epochs == 0,
            "optim.warmup_epochs must be 0 with optim.schedule='plateau' (warm-up is defined per step for cosine)",
        ),
        (o.clip_grad >= 0, f"optim.clip_grad must be >= 0 (0 disables), got {o.clip_grad}"),
        (0 < o.plateau_factor < 1, f"optim.plateau_factor must lie in (0, 1), got {o.plateau_factor}"),
        (cfg.epochs >= 1, f"epochs must be >= 1, got {cfg.epochs}"),
        (cfg.batch_size >= 1, f"batch_size must be >= 1, got {cfg.batch_size}"),
        (cfg.eval_batch_size >= 1, f"eval_batch_size must be >= 1, got {cfg.eval_batch_size}"),
        (cfg.patience >= 0, f"patience must be >= 0 (0 disables early stopping), got {cfg.patience}"),
        (cfg.log_every >= 0, f"log_every must be >= 0, got {cfg.log_every}"),
        (cfg.num_threads >= 0, f"num_threads must be >= 0 (0 = auto), got {cfg.num_threads}"),
        (d.num_classes in (7, 8), f"data.num_classes must be 7 or 8, got {d.num_classes}"),
        (d.limit is None or d.limit >= 1, f"data.limit must be >= 1 or none, got {d.limit}"),
        (d.image_size >= 8, f"data.image_size must be >= 8, got {d.image_size}"),
        (a.strength >= 0, f"augment.strength must be >= 0, got {a.strength}"),
        (a.mixup_alpha > 0, f"augment.mixup_alpha must be > 0, got {a.mixup_alpha}"),
        (a.ref_size >= 1, f"augment.ref_size must be >= 1, got {a.ref_size}"),
        (
            len(a.noise_sigma) == 2 and 0 <= a.noise_sigma[0] <= a.noise_sigma[1],
            f"augment.noise_sigma must be (low, high) with 0 <= low <= high, got {a.noise_sigma}",
        ),
    ]
    for name in ("hflip", "crop", "jitter", "rotate", "noise", "cutout", "corrupt", "mixup"):
        p = getattr(a, name)
        checks.append((0 <= p <= 1, f"augment.{name} is a probability and must lie in [0, 1], got {p}"))
    problems += [msg for ok, msg in checks if not ok]
    try:
        parse_dataset(d.dataset)
    except ValueError as exc:
        problems.append(str(exc))
    if cfg.loss.name not in list_losses():
        problems.append(f"unknown loss {cfg.loss.name!r}; choose one of {list_losses()}")
    if d.label_mode == "soft" and not d.dataset.startswith("ferplus"):
        problems.append("data.label_mode='soft' needs vote distributions, which only dataset 'ferplus' has")
    if problems:
        raise ConfigError("invalid training config: " + "; ".join(problems))
