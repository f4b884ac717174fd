"""HAFEM / ADNN-FER: EfficientNet-B5 + CBAM + a Transformer encoder over the 7x7 tokens.

``hafem_paper`` and ``hafem_compact`` are the papers' two contradicting Transformer sizes (docs/papers.md);
``hafem_lite`` is the design at CPU scale on the FerNet trunk. ``cbam`` and ``transformer_layers`` switch the parts
off, so the ablation ladder is one family.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import torch
from torch import nn

from core.models._registry import MODELS
from core.models.base import FERModel, ModelSpec, build_config, tokens_to_grid
from core.models.cbam import CBAM
from core.models.fernet import DEFAULT_CONFIG, FerNet
from core.models.trunks import TimmTrunk

PAPER = "HAFEM / ADNN-FER (seed papers): EfficientNet-B5 + CBAM + Transformer encoder, compound loss"


@dataclass(frozen=True)
class HafemConfig:
    """Every switch of the HAFEM family; overrides to ``create_model`` set these fields."""

    backbone: str = "efficientnet_b5"
    input_size: int = 224
    cbam: bool = True
    cbam_stage: int = 4
    """1-based index into timm's ``feature_info`` of efficientnet_b5 (strides 2, 4, 8, 16, 32): 4 is ``blocks.4``
    (176 channels, stride 16), the fifth MBConv stage when timm's ``blocks`` are counted from 1. Counting
    EfficientNet's stem conv as stage 1 (Tan & Le 2019, Table 1) would make it ``blocks.3`` instead; the papers do
    not say which (docs/papers.md)."""
    cbam_reduction: int = 16
    cbam_kernel: int = 7
    transformer_layers: int = 1
    d_model: int = 2048
    heads: int = 8
    d_ff: int = 4096
    attn_dropout: float = 0.1
    drop_rate: float = 0.3
    """Dropout before the classifier."""
    drop_path_rate: float = 0.2
    pretrained_backbone: str | None = None


class _TokenEncoder(FERModel):
    """A pre-norm Transformer encoder with learned positions over a CNN's final token grid (or nothing).

    Both HAFEM sizes share it; with ``transformer_layers=0`` the CNN's feature map goes straight to pooling.
    """

    def _build_encoder(self, cfg, channels: int, grid: int) -> None:
        if cfg.transformer_layers:
            self.proj = nn.Linear(channels, cfg.d_model) if channels != cfg.d_model else nn.Identity()
            self.pos_embed = nn.Parameter(torch.zeros(1, grid * grid, cfg.d_model))
            nn.init.trunc_normal_(self.pos_embed, std=0.02)
            layer = nn.TransformerEncoderLayer(
                cfg.d_model,
                cfg.heads,
                cfg.d_ff,
                dropout=cfg.attn_dropout,
                activation="gelu",
                batch_first=True,
                norm_first=True,
            )
            self.encoder = nn.TransformerEncoder(layer, cfg.transformer_layers, enable_nested_tensor=False)
            self.norm = nn.LayerNorm(cfg.d_model)
            self.embed_dim = cfg.d_model
            self.cam_reshape_transform = tokens_to_grid  # Grad-CAM on ``norm``: tokens (N, L, d) -> grid
        else:
            self.proj = self.pos_embed = self.encoder = self.norm = None
            self.embed_dim = channels

    def _encode(self, feats: torch.Tensor) -> torch.Tensor:
        if self.encoder is None:
            return feats
        tokens = self.proj(feats.flatten(2).transpose(1, 2))
        if tokens.shape[1] != self.pos_embed.shape[1]:
            raise ValueError(
                f"{self.spec.name} was built for {self.spec.input_size}px input "
                f"({self.pos_embed.shape[1]} tokens), got {tokens.shape[1]} tokens"
            )
        return self.norm(self.encoder(tokens + self.pos_embed))

    def _encoder_modules(self) -> list[nn.Module]:
        return [self.proj, *self.encoder.layers, self.norm] if self.encoder is not None else []


class Hafem(_TokenEncoder):
    def __init__(self, cfg: HafemConfig, num_classes: int = 7, name: str = "hafem") -> None:
        super().__init__()
        self.cfg = cfg
        self.trunk = TimmTrunk(
            cfg.backbone,
            cbam_after_stages=(cfg.cbam_stage,) if cfg.cbam else (),
            cbam_on_output=cfg.cbam,
            cbam_reduction=cfg.cbam_reduction,
            cbam_kernel=cfg.cbam_kernel,
            pretrained_backbone=cfg.pretrained_backbone,
            drop_path_rate=cfg.drop_path_rate,
        )
        self._build_encoder(cfg, self.trunk.channels, cfg.input_size // self.trunk.reduction)
        self.drop = nn.Dropout(cfg.drop_rate)
        self.head = nn.Linear(self.embed_dim, num_classes)
        self.spec = ModelSpec.of(name, cfg, num_classes, preprocess=("clahe",), paper=PAPER)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self._encode(self.trunk(x))

    def cam_target_layers(self) -> list[nn.Module]:
        return [self.norm] if self.encoder is not None else [self.trunk.last_spatial_module()]

    def layer_modules(self) -> list[nn.Module]:
        return self.trunk.layer_modules() + self._encoder_modules()


def _build(name: str, base, num_classes: int, overrides: dict, cls=None):
    overrides = dict(overrides)
    if "transformer" in overrides:  # the ablation switch: transformer=False is transformer_layers=0
        on = bool(overrides.pop("transformer"))
        overrides.setdefault("transformer_layers", (base.transformer_layers or 1) if on else 0)
    cfg = build_config(name, base, overrides)
    if cfg.transformer_layers < 0 or (cfg.transformer_layers and cfg.d_model % cfg.heads):
        raise ValueError(
            f"bad transformer config: {cfg.transformer_layers} layers, d_model {cfg.d_model}, "
            f"{cfg.heads} heads (d_model must divide by heads)"
        )
    return (cls or Hafem)(cfg, num_classes=num_classes, name=name)


@MODELS.register
def hafem(num_classes: int = 7, **overrides) -> Hafem:
    """HAFEM with every switch exposed; defaults equal ``hafem_compact``."""
    return _build("hafem", HafemConfig(), num_classes, overrides)


@MODELS.register
def hafem_compact(num_classes: int = 7, **overrides) -> Hafem:
    """One d_model-2048 encoder layer: matches the papers' stated 61.6 M parameters (see docs/papers.md)."""
    return _build("hafem_compact", HafemConfig(transformer_layers=1), num_classes, overrides)


@MODELS.register
def hafem_paper(num_classes: int = 7, **overrides) -> Hafem:
    """The text's 6 layers x d_model 2048 x d_ff 4096 x 8 heads: ~230 M parameters, not the stated 61.6 M."""
    return _build("hafem_paper", HafemConfig(transformer_layers=6), num_classes, overrides)


@MODELS.register
def effnet_b5_baseline(num_classes: int = 7, **overrides) -> Hafem:
    """Ladder rung 2: EfficientNet-B5 + GAP + linear (HAFEM with CBAM and Transformer off)."""
    base = HafemConfig(cbam=False, transformer_layers=0)
    return _build("effnet_b5_baseline", base, num_classes, overrides)


# ----------------------------------------------------------------------------------- HAFEM at CPU scale


@dataclass(frozen=True)
class HafemLiteConfig:
    """HAFEM's parts on the FerNet-S trunk at 48 px gray; trunk fields equal ``default``'s so its weights load."""

    input_size: int = DEFAULT_CONFIG.input_size
    in_chans: int = DEFAULT_CONFIG.in_chans
    widths: tuple[int, ...] = DEFAULT_CONFIG.widths
    depths: tuple[int, ...] = DEFAULT_CONFIG.depths
    cbam: bool = True
    cbam_stages: tuple[int, ...] = (3, 4)
    """1-based FerNet stages followed by CBAM: the last two, as HAFEM puts it after stage 5 and the last."""
    cbam_reduction: int = 16
    cbam_kernel: int = 7
    transformer_layers: int = 1
    d_model: int = 256
    heads: int = 8
    d_ff: int = 1024
    attn_dropout: float = 0.1
    drop_rate: float = DEFAULT_CONFIG.drop_rate
    """Dropout before the classifier."""


class HafemLite(_TokenEncoder):
    """FerNet trunk (``stem``, ``stages``: the keys of ``default``) + CBAM (``cbams``) + token encoder + GAP + head."""

    def __init__(self, cfg: HafemLiteConfig, num_classes: int = 7, name: str = "hafem_lite") -> None:
        super().__init__()
        bad = [s for s in cfg.cbam_stages if not 1 <= s <= len(cfg.widths)]
        if bad:
            raise ValueError(f"cbam_stages {list(cfg.cbam_stages)}: stages are 1..{len(cfg.widths)}")
        self.cfg = cfg
        fernet = FerNet(replace(DEFAULT_CONFIG, **{k: getattr(cfg, k) for k in TRUNK_FIELDS}, cbam=False))
        self.stem, self.stages = fernet.stem, fernet.stages
        self.cbams = nn.ModuleDict(
            {str(s - 1): CBAM(cfg.widths[s - 1], cfg.cbam_reduction, cfg.cbam_kernel) for s in cfg.cbam_stages}
            if cfg.cbam
            else {}
        )
        self._build_encoder(cfg, cfg.widths[-1], cfg.input_size // 2 ** (len(cfg.widths) - 1))
        self.drop = nn.Dropout(cfg.drop_rate)
        self.head = nn.Linear(self.embed_dim, num_classes)
        paper = PAPER + " (at CPU scale: FerNet-S trunk, 48 px gray)"
        self.spec = ModelSpec.of(name, cfg, num_classes, mean=fernet.spec.mean, std=fernet.spec.std, paper=paper)

    def _trunk(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        for i, stage in enumerate(self.stages):
            x = stage(x)
            if str(i) in self.cbams:
                x = self.cbams[str(i)](x)
        return x

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self._encode(self._trunk(x))

    def cam_target_layers(self) -> list[nn.Module]:
        if self.encoder is not None:
            return [self.norm]
        last = str(len(self.stages) - 1)
        return [self.cbams[last] if last in self.cbams else self.stages[-1]]

    def layer_modules(self) -> list[nn.Module]:
        mods: list[nn.Module] = [self.stem]
        for i, stage in enumerate(self.stages):
            mods += [stage] + ([self.cbams[str(i)]] if str(i) in self.cbams else [])
        return mods + self._encoder_modules()


TRUNK_FIELDS = ("input_size", "in_chans", "widths", "depths", "drop_rate")


@MODELS.register
def hafem_lite(num_classes: int = 7, **overrides) -> HafemLite:
    """HAFEM at CPU scale: FerNet-S trunk + CBAM after stages 3-4 + 1 encoder layer (d_model 256) over 6x6 tokens.

    ``cbam=False`` and ``transformer=False`` (or ``transformer_layers=0``) give the ladder's lower rungs; with
    both off it is FerNet-S itself (same keys as ``fernet_s_fer2013``, so ``warm_start`` loads every trunk tensor).
    """
    return _build("hafem_lite", HafemLiteConfig(), num_classes, overrides, HafemLite)


@MODELS.register
def default(num_classes: int = 7, **overrides) -> HafemLite:
    """The embedded model the app, the CLI and the explainers start on: ``hafem_lite`` with CBAM and Transformer.

    Fine-tuned on FERPlus votes from the FERPlus FerNet-S; why it ships: docs/model-card.md.
    """
    return _build("default", HafemLiteConfig(), num_classes, overrides, HafemLite)


@MODELS.register
def default_fer2013(num_classes: int = 7, **overrides) -> HafemLite:
    """``default`` fine-tuned on FER2013's own labels: the FER2013-benchmark path, comparable with published results."""
    return _build("default_fer2013", HafemLiteConfig(), num_classes, overrides, HafemLite)
