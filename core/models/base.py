"""The one contract every ferlens model speaks: timm's, plus what explainers and the trainer need.

A :class:`FERModel` adds ``forward_train`` (center loss), the Grad-CAM hooks and ``layer_groups`` to timm's
contract; its frozen :class:`ModelSpec` is saved beside the weights, and ``spec.transform(crops)`` is the one way
face crops become model input (training, evaluation, serving, explaining).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, fields, replace

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from core.labels import class_names

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

Steps = Callable[[np.ndarray], np.ndarray]
"""Photometric steps on one uint8 image (``core.faces.preprocess.Compose``), e.g. CLAHE or adaptive gamma."""
Crops = Sequence[np.ndarray] | np.ndarray | torch.Tensor
"""Face crops: a list of uint8 ``(H, W)`` / ``(H, W, 3)`` arrays, or an ``(N, H, W[, 3])`` batch array or tensor."""


@dataclass(frozen=True)
class ModelSpec:
    """What the face pipeline and the engine must know to feed a model (timm's ``pretrained_cfg``)."""

    name: str
    input_size: int
    in_chans: int = 3
    mean: tuple[float, ...] = IMAGENET_MEAN
    std: tuple[float, ...] = IMAGENET_STD
    num_classes: int = 7
    preprocess: tuple[str, ...] = ()
    """Photometric steps the model was trained with, by name in ``core.faces.preprocess`` (e.g. "clahe")."""
    paper: str = ""
    config: dict = field(default_factory=dict)
    """The model's own config dataclass as a dict, so a checkpoint says exactly what was built."""

    @property
    def class_names(self) -> tuple[str, ...]:
        return class_names(self.num_classes)

    @property
    def grayscale(self) -> bool:
        return self.in_chans == 1

    @classmethod
    def of(cls, name: str, cfg, num_classes: int, **fields) -> ModelSpec:
        """The spec of a model built from the config dataclass ``cfg``: its size, channels and every field."""
        return cls(
            name, cfg.input_size, getattr(cfg, "in_chans", 3), num_classes=num_classes, config=asdict(cfg), **fields
        )

    def to_dict(self) -> dict:
        d = asdict(self)
        d["class_names"] = list(self.class_names)
        return d

    def pixels(self, crops: Crops, steps: Steps | None = None) -> torch.Tensor:
        """Face crops -> uint8 ``(N, c, S, S)``: the photometric half of :meth:`transform` (training caches it).

        Per crop: gray (ITU-R 601 luma) for 1-channel models, resize to ``input_size``, then ``steps`` (default:
        the spec's ``preprocess``), at model size as in training. A colour crop with equal channels counts as
        gray, so a face gives the same pixels from a CSV or a PNG. ``c`` is 1 when every crop is gray, else 3.
        """
        from core.faces.preprocess import from_names, luminance

        steps = from_names(self.preprocess) if steps is None and self.preprocess else steps
        planes = []
        for i, crop in enumerate(as_crops(crops)):
            crop = _check_crop(crop, i)
            if crop.ndim == 3 and (self.in_chans == 1 or _is_gray(crop)):
                crop = luminance(crop)
            planes.append(crop)
        size = self.input_size
        if not planes:
            return torch.zeros((0, self.in_chans, size, size), dtype=torch.uint8)
        if len({p.shape for p in planes}) == 1:  # one batched resize (training's 4096-image chunks)
            return _photometric(resize_uint8(_nchw(np.stack(planes)), size), steps)
        blocks = [_photometric(resize_uint8(_nchw(p[None]), size), steps) for p in planes]
        channels = max(b.shape[1] for b in blocks)
        return torch.cat([b.expand(-1, channels, -1, -1) for b in blocks])

    def normalize(self, x: torch.Tensor) -> torch.Tensor:
        """Float ``[0, 1]`` batch -> model input: gray expanded to ``in_chans`` channels, then ``(x - mean) / std``."""
        if x.shape[1] == 1 and self.in_chans == 3:
            x = x.expand(-1, 3, -1, -1)
        if x.shape[1] != self.in_chans:
            raise ValueError(f"{self.name} takes {self.in_chans}-channel input, got {x.shape[1]} channels")
        mean = torch.tensor(self.mean, dtype=x.dtype, device=x.device).view(1, -1, 1, 1)
        std = torch.tensor(self.std, dtype=x.dtype, device=x.device).view(1, -1, 1, 1)
        return (x - mean) / std

    def transform(self, crops: Crops, steps: Steps | None = None) -> torch.Tensor:
        """Face crops (uint8, any size, RGB or gray) -> the normalised float32 ``(N, in_chans, S, S)`` model input.

        ``steps`` replaces the spec's own preprocessing (the dashboard's ablation switches).
        """
        return self.normalize(self.pixels(crops, steps).float().div_(255.0))


def as_crops(crops: Crops) -> Sequence[np.ndarray] | np.ndarray:
    """A list of crops as it is; an array or tensor is a batch ``(N, H, W[, C])`` (wrap a single crop in a list)."""
    if isinstance(crops, torch.Tensor):
        crops = crops.detach().cpu().numpy()
    if isinstance(crops, np.ndarray) and crops.ndim not in (3, 4):
        raise ValueError(
            f"an array of crops is a batch (N, H, W) or (N, H, W, 3), got shape {crops.shape}; "
            "give a single crop as a list of one"
        )
    return crops


def resize_uint8(x: torch.Tensor, size: int) -> torch.Tensor:
    """uint8 ``(N, C, H, W)`` -> ``(N, C, size, size)``: bilinear with antialiasing (PIL-like), rounded; a no-op
    at the right size. The one resize of face crops, for datasets, training and serving alike."""
    if tuple(x.shape[-2:]) == (size, size):
        return x
    y = F.interpolate(x.float(), size=(size, size), mode="bilinear", antialias=True, align_corners=False)
    return y.round_().clamp_(0, 255).to(torch.uint8)


def _check_crop(crop, i: int) -> np.ndarray:
    if not isinstance(crop, np.ndarray) or crop.dtype != np.uint8:
        got = f"{crop.dtype} array" if isinstance(crop, np.ndarray) else type(crop).__name__
        raise TypeError(f"crop {i}: expected a uint8 (H, W, 3) RGB or (H, W) gray array, got {got}")
    if crop.ndim == 3 and crop.shape[2] == 1:
        crop = crop[..., 0]
    if not (crop.ndim == 2 or (crop.ndim == 3 and crop.shape[2] == 3)) or min(crop.shape[:2]) < 1:
        raise ValueError(f"crop {i}: expected (H, W, 3) RGB or (H, W) gray, got shape {crop.shape}")
    return crop


def _is_gray(rgb: np.ndarray) -> bool:
    return bool(np.array_equal(rgb[..., 0], rgb[..., 1]) and np.array_equal(rgb[..., 0], rgb[..., 2]))


def _nchw(batch: np.ndarray) -> torch.Tensor:
    t = torch.from_numpy(np.ascontiguousarray(batch))
    return t[:, None] if t.ndim == 3 else t.permute(0, 3, 1, 2)


def _photometric(x: torch.Tensor, steps: Steps | None) -> torch.Tensor:
    """``steps`` on each uint8 image of ``(n, c, S, S)`` (OpenCV works on ``(H, W[, C])`` arrays)."""
    if not steps:
        return x.contiguous()
    hwc = x.permute(0, 2, 3, 1).numpy()
    out = np.stack([np.asarray(steps(img[..., 0] if img.shape[2] == 1 else img)) for img in hwc])
    return _nchw(out[..., None] if out.ndim == 3 else out).contiguous()


def build_config(name: str, base, overrides: dict):
    """``replace(base, **overrides)`` with a message that lists the known fields when one is unknown."""
    known = {f.name for f in fields(base)}
    unknown = set(overrides) - known
    if unknown:
        raise ValueError(f"unknown option(s) {sorted(unknown)} for {name}; known: {sorted(known)}")
    return replace(base, **overrides)


def tokens_to_grid(tokens: torch.Tensor) -> torch.Tensor:
    """Reshape ``(N, L, D)`` tokens to ``(N, D, s, s)`` with ``s = sqrt(L)``; the grid is inferred, never given.

    Used as pytorch-grad-cam's ``reshape_transform`` for transformer heads. A class token, if any, must have been
    dropped before; a non-square token count is an error rather than a silent crop.
    """
    if tokens.ndim != 3:
        raise ValueError(f"expected tokens (N, L, D), got shape {tuple(tokens.shape)}")
    n, length, dim = tokens.shape
    side = math.isqrt(length)
    if side * side != length:
        raise ValueError(f"{length} tokens do not form a square grid")
    return tokens.transpose(1, 2).reshape(n, dim, side, side)


class FERModel(nn.Module):
    """Base class: subclasses set ``spec``, ``embed_dim``, ``head`` (and ``drop``) and implement
    ``forward_features``."""

    spec: ModelSpec
    embed_dim: int
    head: nn.Module
    drop: nn.Module
    """Dropout before the classifier (identity unless a subclass sets one)."""

    def __init__(self) -> None:
        super().__init__()
        self.drop = nn.Identity()

    cam_reshape_transform: Callable[[torch.Tensor], torch.Tensor] | None = None

    @property
    def num_classes(self) -> int:
        return self.spec.num_classes

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def pool(self, feats: torch.Tensor) -> torch.Tensor:
        """Global average pooling of a feature map ``(N, C, h, w)`` or of tokens ``(N, L, D)``."""
        return feats.mean(dim=(2, 3)) if feats.ndim == 4 else feats.mean(dim=1)

    def embed(self, pooled: torch.Tensor) -> torch.Tensor:
        """Map the pooled features to the embedding (identity unless the model has a dense neck); no dropout."""
        return pooled

    def pre_logits(self, pooled: torch.Tensor) -> torch.Tensor:
        """The classifier's input: the embedding after the classifier's dropout."""
        return self.drop(self.embed(pooled))

    def forward_head(self, feats: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        emb = self.pre_logits(self.pool(feats))
        return emb if pre_logits else self.head(emb)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))

    def forward_train(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Logits and the pre-dropout embedding in one pass (CE on the logits, center loss on the embedding).

        The logits are exactly ``forward``'s (same dropout draw); only the returned embedding skips the dropout.
        """
        emb = self.embed(self.pool(self.forward_features(x)))
        return self.head(self.drop(emb)), emb

    def get_classifier(self) -> nn.Module:
        return self.head

    def reset_classifier(self, num_classes: int) -> None:
        """Replace the final layer, e.g. to fine-tune a 7-class model on 8-class FERPlus."""
        class_names(num_classes)  # validates
        self.head = nn.Linear(self.embed_dim, num_classes)
        self.spec = replace(self.spec, num_classes=num_classes)

    def cam_target_layers(self) -> list[nn.Module]:  # pragma: no cover - abstract
        """Layers whose activations and gradients Grad-CAM reads (the last spatial stage)."""
        raise NotImplementedError

    def layer_modules(self) -> list[nn.Module]:  # pragma: no cover - abstract
        """Modules in forward order from the input up to (not including) the classifier head."""
        raise NotImplementedError

    def layer_groups(self) -> list[list[nn.Parameter]]:
        """Parameters grouped from input (index 0) to head (last), for layer-wise LR decay.

        One group per module of :meth:`layer_modules`; the head and any parameter not listed there (e.g. a
        positional embedding) form the last group, so every parameter is in exactly one group.
        """
        seen: set[int] = set()
        groups: list[list[nn.Parameter]] = []
        for module in self.layer_modules():
            params = [p for p in module.parameters() if id(p) not in seen]
            seen.update(id(p) for p in params)
            if params:
                groups.append(params)
        rest = [p for p in self.parameters() if id(p) not in seen]
        if rest:
            groups.append(rest)
        return groups

    def regularization_loss(self) -> torch.Tensor:
        """Extra penalty the trainer adds to the loss (DCRNet's L2 on its dense head); zero by default."""
        return torch.zeros((), device=next(self.parameters()).device)
