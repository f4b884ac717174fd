"""Plain ImageNet CNN baselines: the first rung of the papers' ablation ladder (ResNet-50 -> ...).

A timm trunk, global average pooling, dropout and one linear layer; nothing FER-specific, so that each later rung
measures what its own addition is worth.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from core.models._registry import MODELS
from core.models.base import FERModel, ModelSpec, build_config
from core.models.trunks import TimmTrunk


@dataclass(frozen=True)
class BaselineConfig:
    backbone: str = "resnet50"
    input_size: int = 224
    drop_rate: float = 0.3
    pretrained_backbone: str | None = None


class TimmBaseline(FERModel):
    def __init__(self, cfg: BaselineConfig, num_classes: int, name: str) -> None:
        super().__init__()
        self.cfg = cfg
        self.trunk = TimmTrunk(cfg.backbone, pretrained_backbone=cfg.pretrained_backbone)
        self.embed_dim = self.trunk.channels
        self.drop = nn.Dropout(cfg.drop_rate)
        self.head = nn.Linear(self.embed_dim, num_classes)
        paper = "ablation-ladder baseline (He et al. 2016, ResNet-50)"
        self.spec = ModelSpec.of(name, cfg, num_classes, preprocess=("clahe",), paper=paper)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.trunk(x)

    def cam_target_layers(self) -> list[nn.Module]:
        return [self.trunk.last_spatial_module()]

    def layer_modules(self) -> list[nn.Module]:
        return self.trunk.layer_modules()


@MODELS.register
def resnet50_baseline(num_classes: int = 7, **overrides) -> TimmBaseline:
    """Ladder rung 1: ResNet-50 + GAP + linear at 224x224."""
    cfg = build_config("resnet50_baseline", BaselineConfig(), overrides)
    return TimmBaseline(cfg, num_classes, "resnet50_baseline")
