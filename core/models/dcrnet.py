"""DCRNet: DenseNet121 + conv blocks with CBAM + residual modules + a 512-256-128 dense head.

Built from the seed paper's description (trained with class-weighted CE, adaptive gamma on the input); the
kernel sizes it leaves out are chosen in docs/papers.md.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from core.models._registry import MODELS
from core.models.base import FERModel, ModelSpec, build_config
from core.models.cbam import CBAM
from core.models.layers import ResidualBlock, conv_bn_relu
from core.models.trunks import TimmTrunk


@dataclass(frozen=True)
class DcrnetConfig:
    backbone: str = "densenet121"
    input_size: int = 224
    conv_channels: tuple[int, int] = (256, 512)
    conv_dropout: tuple[float, float] = (0.3, 0.4)
    residual_filters: tuple[int, ...] = (32, 64)
    blocks_per_module: int = 3
    dense: tuple[int, ...] = (512, 256, 128)
    dense_dropout: float = 0.4
    dense_l2: float = 1e-3
    pretrained_backbone: str | None = None


class Dcrnet(FERModel):
    def __init__(self, cfg: DcrnetConfig, num_classes: int = 7, name: str = "dcrnet") -> None:
        super().__init__()
        self.cfg = cfg
        self.trunk = TimmTrunk(cfg.backbone, pretrained_backbone=cfg.pretrained_backbone)
        c1, c2 = cfg.conv_channels
        self.conv1 = nn.Sequential(*conv_bn_relu(self.trunk.channels, c1), nn.Dropout(cfg.conv_dropout[0]), CBAM(c1))
        self.conv2 = nn.Sequential(
            *conv_bn_relu(c1, c2), nn.MaxPool2d(2, ceil_mode=True), nn.Dropout(cfg.conv_dropout[1]), CBAM(c2)
        )
        modules, cin = [], c2
        for filters in cfg.residual_filters:
            blocks = []
            for _ in range(cfg.blocks_per_module):
                blocks.append(ResidualBlock(cin, filters))
                cin = filters
            modules.append(nn.Sequential(*blocks))
        self.residual = nn.Sequential(*modules)
        self.cbam_out = CBAM(cin, reduction=min(16, cin))
        dense, width = [], cin
        for units in cfg.dense:
            dense += [nn.Linear(width, units), nn.ReLU(inplace=True), nn.Dropout(cfg.dense_dropout)]
            width = units
        self.dense = nn.Sequential(*dense)
        self.drop = self.dense[-1] if dense else nn.Identity()
        self.embed_dim = width
        self.head = nn.Linear(width, num_classes)
        paper = "DCRNet (seed paper): DenseNet121 + CBAM + residual blocks, class-weighted CE"
        self.spec = ModelSpec.of(name, cfg, num_classes, preprocess=("gamma",), paper=paper)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.cbam_out(self.residual(self.conv2(self.conv1(self.trunk(x)))))

    def embed(self, pooled: torch.Tensor) -> torch.Tensor:
        """The dense stack up to its last dropout (which is ``drop``, before the classifier)."""
        return self.dense[:-1](pooled) if len(self.dense) else pooled

    def regularization_loss(self) -> torch.Tensor:
        """The paper's L2 (1e-3) on the dense head's weights, as an explicit loss term (Keras-style)."""
        weights = [m.weight for m in self.dense if isinstance(m, nn.Linear)] + [self.head.weight]
        return self.cfg.dense_l2 * sum(w.pow(2).sum() for w in weights)

    def cam_target_layers(self) -> list[nn.Module]:
        return [self.cbam_out]

    def layer_modules(self) -> list[nn.Module]:
        return [
            *self.trunk.layer_modules(),
            self.conv1,
            self.conv2,
            *self.residual,
            self.cbam_out,
            self.dense,
        ]


@MODELS.register
def dcrnet(num_classes: int = 7, **overrides) -> Dcrnet:
    """DCRNet as described (DenseNet121 trunk, 224x224, adaptive gamma preprocessing)."""
    return Dcrnet(build_config("dcrnet", DcrnetConfig(), overrides), num_classes, "dcrnet")
