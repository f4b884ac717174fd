"""Optimiser and learning-rate schedule: AdamW/Adam with layer-wise LR decay, warm-up + cosine or plateau.

Group k of G (``model.layer_groups()``, input to head) trains at ``lr * layer_decay ** (G - 1 - k)`` (Clark et
al. 2020); 1-D parameters get no weight decay. The cosine schedule is per step: linear warm-up to ``lr``, then a
half cosine ending exactly at ``min_lr`` (scaled by each group's factor).
"""

from __future__ import annotations

import logging
import math
from functools import partial

import torch
from torch import nn

from training.config import OptimConfig

log = logging.getLogger(__name__)


def param_groups(
    model: nn.Module, lr: float, weight_decay: float, layer_decay: float, extra: nn.Module | None = None
) -> list[dict]:
    """Optimiser groups with layer-wise decayed rates and no decay on 1-D parameters.

    Uses ``model.layer_groups()`` when the model has it (every FERModel does), else one group. Trainable
    parameters of ``extra`` (e.g. a loss with learnable parts) join the head's rate.
    """
    layers = model.layer_groups() if hasattr(model, "layer_groups") else [list(model.parameters())]
    if extra is not None:
        layers = [*layers[:-1], layers[-1] + list(extra.parameters())] if layers else [list(extra.parameters())]
    groups = []
    n = len(layers)
    for k, params in enumerate(layers):
        scale = layer_decay ** (n - 1 - k)
        params = [p for p in params if p.requires_grad]
        decay = [p for p in params if p.ndim > 1]
        no_decay = [p for p in params if p.ndim <= 1]
        for plist, wd in ((decay, weight_decay), (no_decay, 0.0)):
            if plist:
                groups.append({"params": plist, "lr": lr * scale, "weight_decay": wd, "layer": k, "lr_scale": scale})
    return groups


def build_optimizer(model: nn.Module, cfg: OptimConfig, extra: nn.Module | None = None) -> torch.optim.Optimizer:
    """AdamW (decoupled weight decay) or Adam (L2 added to the gradient, as DCRNet's Keras code does)."""
    groups = param_groups(model, cfg.lr, cfg.weight_decay, cfg.layer_decay, extra)
    cls = {"adamw": torch.optim.AdamW, "adam": torch.optim.Adam}.get(cfg.name)
    if cls is None:
        raise ValueError(f"unknown optimizer {cfg.name!r}; choose one of ['adam', 'adamw']")
    return cls(groups, lr=cfg.lr, betas=tuple(cfg.betas), eps=cfg.eps, weight_decay=cfg.weight_decay)


def lr_factor(step: int, total_steps: int, warmup_steps: int, floor: float, schedule: str = "cosine") -> float:
    """Multiplier of the base rate at optimiser step ``step`` (0-based).

    Warm-up: ``(step + 1) / warmup_steps``, so the last warm-up step runs at the full rate. Cosine: from 1 at the
    first post-warm-up step to ``floor = min_lr / lr`` at step ``total_steps - 1``. ``constant``: 1 after warm-up.
    """
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    if schedule == "constant":
        return 1.0
    span = total_steps - warmup_steps - 1
    progress = 1.0 if span <= 0 else min(1.0, (step - warmup_steps) / span)
    return floor + (1.0 - floor) * 0.5 * (1.0 + math.cos(math.pi * progress))


def build_scheduler(
    optimizer: torch.optim.Optimizer, cfg: OptimConfig, steps_per_epoch: int, epochs: int
) -> tuple[torch.optim.lr_scheduler.LRScheduler | torch.optim.lr_scheduler.ReduceLROnPlateau, str]:
    """The schedule and how often to step it: ``("step")`` for warm-up/cosine/constant, ``("epoch")`` for
    ReduceLROnPlateau, which watches validation macro-F1 (mode ``max``)."""
    if cfg.schedule == "plateau":
        sched = torch.optim.lr_scheduler.ReduceLROnPlateau(
            optimizer,
            mode="max",
            factor=cfg.plateau_factor,
            patience=cfg.plateau_patience,
            min_lr=[cfg.min_lr * g.get("lr_scale", 1.0) for g in optimizer.param_groups],
        )
        return sched, "epoch"
    total = steps_per_epoch * epochs
    warmup = min(total, round(cfg.warmup_epochs * steps_per_epoch))
    fn = partial(lr_factor, total_steps=total, warmup_steps=warmup, floor=cfg.min_lr / cfg.lr, schedule=cfg.schedule)
    return torch.optim.lr_scheduler.LambdaLR(optimizer, fn), "step"
