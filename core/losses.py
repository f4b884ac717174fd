"""The papers' losses, all accepting hard labels ``(N,)`` or soft targets ``(N, C)`` (FERPlus votes, mixup).

``ce``, DCRNet's ``weighted_ce``, distribution-aware label smoothing ``dls`` and HAFEM's ``compound`` (0.60 CE +
0.25 center + 0.15 DLS), built by name from :data:`LOSSES`. Center loss details and their reasons: docs/training.md.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from core.registry import Registry


@dataclass(frozen=True)
class LossConfig:
    name: str = "ce"
    w_ce: float = 0.60
    w_center: float = 0.25
    w_dls: float = 0.15
    smoothing: float = 0.1
    """DLS smoothing mass epsilon."""
    center_alpha: float = 0.5
    """Center update rate alpha of Wen et al. (their experiments use 0.5)."""
    label_smoothing: float = 0.0
    """Uniform smoothing for plain ``ce``."""
    center_ramp_steps: int = 0
    """Raise the center weight linearly from 0 to ``w_center`` over this many optimiser steps (0: full from step
    1). Counted in steps by the loss itself, so the ramp is saved with the loss's state and a resume is exact."""

    def __post_init__(self) -> None:
        for field_name in ("w_ce", "w_center", "w_dls", "center_alpha", "center_ramp_steps"):
            if getattr(self, field_name) < 0:
                raise ValueError(f"loss.{field_name} must be >= 0, got {getattr(self, field_name)}")
        for field_name in ("smoothing", "label_smoothing"):
            if not 0.0 <= getattr(self, field_name) < 1.0:
                raise ValueError(f"loss.{field_name} must be in [0, 1), got {getattr(self, field_name)}")


def class_weights(class_counts: Sequence[int]) -> torch.Tensor:
    """Balanced weights ``N / (C * n_i)``; an empty class gets weight 0 rather than infinity."""
    counts = torch.as_tensor(class_counts, dtype=torch.float64)
    if counts.ndim != 1 or (counts < 0).any() or counts.sum() <= 0:
        raise ValueError(f"class_counts must be non-negative with a positive total, got {list(class_counts)}")
    w = counts.sum() / (len(counts) * counts.clamp_min(1))
    return torch.where(counts > 0, w, torch.zeros_like(w)).float()


def as_distribution(targets: torch.Tensor, num_classes: int) -> torch.Tensor:
    """Hard labels -> one-hot; soft targets are checked and renormalised to sum to 1."""
    if targets.ndim == 1:
        return F.one_hot(targets.long(), num_classes).float()
    if targets.ndim != 2 or targets.shape[1] != num_classes:
        raise ValueError(f"targets must be (N,) or (N, {num_classes}), got {tuple(targets.shape)}")
    return targets.float() / targets.float().sum(dim=1, keepdim=True).clamp_min(1e-12)


class FERLoss(nn.Module):
    """Base: ``loss(logits, targets, embedding=None)``; ``last_terms`` keeps the parts for the metrics log."""

    needs_embedding = False

    def __init__(self) -> None:
        super().__init__()
        self.last_terms: dict[str, float] = {}


class CrossEntropy(FERLoss):
    def __init__(self, num_classes: int, weight: torch.Tensor | None = None, label_smoothing: float = 0.0):
        super().__init__()
        self.num_classes = num_classes
        self.label_smoothing = label_smoothing
        self.register_buffer("weight", weight, persistent=False)

    def forward(self, logits: torch.Tensor, targets: torch.Tensor, embedding=None) -> torch.Tensor:
        if self.weight is None:
            if targets.ndim == 2:
                targets = as_distribution(targets, self.num_classes)
            loss = F.cross_entropy(logits, targets, label_smoothing=self.label_smoothing)
        else:
            # Weighted mean sum_i w(q_i) * nll_i / sum_i w(q_i), with w(q) = sum_k w_k q_k: for hard labels this
            # is torch's weighted CE, and a one-hot soft target gives exactly the same value.
            q = as_distribution(targets, self.num_classes).to(logits.dtype)
            if self.label_smoothing:
                q = (1 - self.label_smoothing) * q + self.label_smoothing / self.num_classes
            w = self.weight.to(logits.dtype)
            per_sample = -(w * q * F.log_softmax(logits, dim=1)).sum(dim=1)
            loss = per_sample.sum() / (q * w).sum().clamp_min(1e-12)
        self.last_terms = {"ce": float(loss.detach())}
        return loss


class DistributionAwareSmoothing(FERLoss):
    """CE against ``(1 - eps) * target + eps * prior`` where ``prior_k`` is proportional to ``1 / n_k``."""

    def __init__(self, class_counts: Sequence[int], smoothing: float = 0.1) -> None:
        super().__init__()
        w = class_weights(class_counts)
        self.register_buffer("prior", w / w.sum(), persistent=False)
        self.smoothing = smoothing

    def smoothed_targets(self, targets: torch.Tensor) -> torch.Tensor:
        dist = as_distribution(targets, self.prior.numel())
        return (1.0 - self.smoothing) * dist + self.smoothing * self.prior.to(dist.dtype)

    def forward(self, logits: torch.Tensor, targets: torch.Tensor, embedding=None) -> torch.Tensor:
        q = self.smoothed_targets(targets).to(logits.dtype)
        loss = -(q * F.log_softmax(logits, dim=1)).sum(dim=1).mean()
        self.last_terms = {"dls": float(loss.detach())}
        return loss


class CenterLoss(nn.Module):
    """Wen et al. 2016 center loss with the paper's explicit center update (centers are buffers, not params).

    A center starts at the mean embedding of its class in the first batch that holds it (``initialised``), so
    the term measures within-class spread instead of fighting the classifier as random or zero centers would.
    """

    def __init__(self, num_classes: int, embed_dim: int, alpha: float = 0.5) -> None:
        super().__init__()
        self.alpha = alpha
        self.register_buffer("centers", torch.zeros(num_classes, embed_dim))
        self.register_buffer("initialised", torch.zeros(num_classes, dtype=torch.bool))

    def forward(self, embedding: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        if self.training:
            self.init_centers(embedding.detach(), labels)
        centers = self.centers.to(embedding.dtype)[labels]
        loss = 0.5 * (embedding - centers).pow(2).mean(dim=1).mean()
        if self.training:
            self.update(embedding.detach(), labels)
        return loss

    @torch.no_grad()
    def init_centers(self, embedding: torch.Tensor, labels: torch.Tensor) -> None:
        """Set each not yet initialised center of a class present in the batch to that class's batch mean."""
        num_classes = self.centers.shape[0]
        counts = torch.bincount(labels, minlength=num_classes)
        new = (counts > 0) & ~self.initialised
        if new.any():
            sums = torch.zeros_like(self.centers).index_add_(0, labels, embedding.float())
            means = sums / counts.clamp_min(1).to(sums.dtype).unsqueeze(1)
            self.centers[new] = means[new]
            self.initialised |= new

    @torch.no_grad()
    def update(self, embedding: torch.Tensor, labels: torch.Tensor) -> None:
        """Eq. 4 of Wen et al.: move each center toward the mean of its batch members."""
        num_classes = self.centers.shape[0]
        diff = self.centers[labels] - embedding.float()
        delta = torch.zeros_like(self.centers).index_add_(0, labels, diff)
        counts = torch.bincount(labels, minlength=num_classes).to(delta.dtype).unsqueeze(1)
        self.centers -= self.alpha * delta / (1.0 + counts)


def ramp_factor(step: int, ramp_steps: int) -> float:
    """Linear warm-up of a loss weight: 0 at step 0, 1 from step ``ramp_steps`` on (1 throughout if 0)."""
    return 1.0 if ramp_steps <= 0 else min(1.0, step / ramp_steps)


class CompoundLoss(FERLoss):
    """HAFEM's ``w_ce * CE + w_center * ramp * center + w_dls * DLS``; ``step`` counts training calls."""

    needs_embedding = True

    def __init__(self, cfg: LossConfig, num_classes: int, embed_dim: int, class_counts: Sequence[int]):
        super().__init__()
        self.cfg = cfg
        self.ce = CrossEntropy(num_classes)
        self.center = CenterLoss(num_classes, embed_dim, cfg.center_alpha)
        self.dls = DistributionAwareSmoothing(class_counts, cfg.smoothing)
        self.register_buffer("step", torch.zeros((), dtype=torch.long))

    def forward(self, logits: torch.Tensor, targets: torch.Tensor, embedding: torch.Tensor | None = None):
        if embedding is None:
            raise ValueError("the compound loss needs the embedding: call model.forward_train(x)")
        ce = self.ce(logits, targets)
        center = self.center(embedding, targets.long() if targets.ndim == 1 else targets.argmax(dim=1))
        dls = self.dls(logits, targets)
        ramp = ramp_factor(int(self.step), self.cfg.center_ramp_steps)
        total = self.cfg.w_ce * ce + self.cfg.w_center * ramp * center + self.cfg.w_dls * dls
        if self.training:
            self.step += 1
        self.last_terms = {
            "ce": float(ce.detach()),
            "center": float(center.detach()),
            "dls": float(dls.detach()),
            "center_ramp": ramp,
        }
        return total


_Builder = Callable[[LossConfig, int, int, "Sequence[int] | None"], FERLoss]
LOSSES: Registry[_Builder] = Registry("loss")
"""Loss builders ``fn(cfg, num_classes, embed_dim, class_counts)`` by name."""


def list_losses() -> list[str]:
    return LOSSES.names()


def _need_counts(name: str, class_counts) -> Sequence[int]:
    if class_counts is None:
        raise ValueError(f"loss {name!r} needs the training set's class_counts")
    return class_counts


@LOSSES.register(name="ce")
def _ce(cfg, num_classes, embed_dim, class_counts):
    return CrossEntropy(num_classes, label_smoothing=cfg.label_smoothing)


@LOSSES.register(name="weighted_ce")
def _weighted_ce(cfg, num_classes, embed_dim, class_counts):
    weight = class_weights(_need_counts("weighted_ce", class_counts))
    return CrossEntropy(num_classes, weight=weight, label_smoothing=cfg.label_smoothing)


@LOSSES.register(name="dls")
def _dls(cfg, num_classes, embed_dim, class_counts):
    return DistributionAwareSmoothing(_need_counts("dls", class_counts), cfg.smoothing)


@LOSSES.register(name="compound")
def _compound(cfg, num_classes, embed_dim, class_counts):
    return CompoundLoss(cfg, num_classes, embed_dim, _need_counts("compound", class_counts))


def build_loss(cfg: LossConfig, num_classes: int, embed_dim: int, class_counts: Sequence[int] | None = None) -> FERLoss:
    """Build the loss named by ``cfg.name``; an unknown name lists the known ones."""
    build = LOSSES.get(cfg.name)
    if class_counts is not None and len(class_counts) != num_classes:
        raise ValueError(f"class_counts has {len(class_counts)} entries for {num_classes} classes")
    return build(cfg, num_classes, embed_dim, class_counts)
