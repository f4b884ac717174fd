"""FerNet: compact residual CNNs for 48-64 px grayscale faces, the family of ferlens' embedded CPU default.

Not from the seed papers (their 224 px models are too slow on a CPU); FER2013's best single models are
VGG/ResNet-style nets at 48 px (Khaimova et al. 2021; Pham et al. 2021). Sizes chosen in docs/models.md.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from core.models._registry import MODELS
from core.models.base import FERModel, ModelSpec, build_config
from core.models.cbam import CBAM
from core.models.layers import ResidualBlock, conv_bn_relu

FER_GRAY_MEAN = (0.5077,)
FER_GRAY_STD = (0.2550,)
"""Mean and std of FER2013's training pixels (0-1 scale), measured on ``fer2013.csv.gz``'s Training rows."""


@dataclass(frozen=True)
class FerNetConfig:
    input_size: int = 48
    in_chans: int = 1
    widths: tuple[int, ...] = (32, 64, 128, 256)
    depths: tuple[int, ...] = (1, 1, 1, 1)
    cbam: bool = False
    drop_rate: float = 0.3


class FerNet(FERModel):
    def __init__(self, cfg: FerNetConfig, num_classes: int = 7, name: str = "fernet") -> None:
        super().__init__()
        if len(cfg.widths) != len(cfg.depths) or not cfg.widths:
            raise ValueError(f"widths {cfg.widths} and depths {cfg.depths} must be non-empty and equally long")
        self.cfg = cfg
        self.stem = nn.Sequential(*conv_bn_relu(cfg.in_chans, cfg.widths[0]))
        stages, cin = [], cfg.widths[0]
        for i, (width, depth) in enumerate(zip(cfg.widths, cfg.depths, strict=True)):
            blocks = [
                ResidualBlock(cin if j == 0 else width, width, 2 if (i > 0 and j == 0) else 1) for j in range(depth)
            ]
            stages.append(nn.Sequential(*blocks))
            cin = width
        self.stages = nn.Sequential(*stages)
        self.cbam = CBAM(cin) if cfg.cbam else None
        self.embed_dim = cin
        self.drop = nn.Dropout(cfg.drop_rate)
        self.head = nn.Linear(cin, num_classes)
        self.spec = ModelSpec.of(
            name,
            cfg,
            num_classes,
            mean=FER_GRAY_MEAN if cfg.in_chans == 1 else (0.5,) * 3,
            std=FER_GRAY_STD if cfg.in_chans == 1 else (0.25,) * 3,
            paper="ferlens FerNet (compact ResNet for 48 px faces)",
        )

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stages(self.stem(x))
        return self.cbam(x) if self.cbam is not None else x

    def cam_target_layers(self) -> list[nn.Module]:
        return [self.cbam if self.cbam is not None else self.stages[-1]]

    def layer_modules(self) -> list[nn.Module]:
        return [self.stem, *self.stages] + ([self.cbam] if self.cbam is not None else [])


@MODELS.register
def fernet_s(num_classes: int = 7, **overrides) -> FerNet:
    """Widths 32-256, one block per stage, 48 px gray: ~1.2 M parameters."""
    return FerNet(build_config("fernet_s", FerNetConfig(), overrides), num_classes, "fernet_s")


@MODELS.register
def fernet_m(num_classes: int = 7, **overrides) -> FerNet:
    """Widths 48-384, two blocks per stage, 48 px gray."""
    base = FerNetConfig(widths=(48, 96, 192, 384), depths=(1, 2, 2, 1))
    return FerNet(build_config("fernet_m", base, overrides), num_classes, "fernet_m")


DEFAULT_CONFIG = FerNetConfig(widths=(32, 64, 128, 256), depths=(1, 1, 1, 1))
"""FerNet-S: ``fernet_s_fer2013`` and the trunk of the hybrids ``default``/``default_fer2013``, so weights move."""


@MODELS.register
def fernet_s_fer2013(num_classes: int = 7, **overrides) -> FerNet:
    """FerNet-S with weights trained on FER2013's own labels: the trunk every hafem_lite run starts from."""
    return FerNet(build_config("fernet_s_fer2013", DEFAULT_CONFIG, overrides), num_classes, "fernet_s_fer2013")


__all__ = ["FerNet", "FerNetConfig", "DEFAULT_CONFIG"]
