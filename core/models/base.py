"""The one contract every ferlens model speaks: timm's, plus what explainers and the trainer need.

:class:`FERModel` provides ``forward_features`` / ``forward_head`` / ``forward``, ``forward_train`` (logits and
embedding, for the center loss), ``cam_target_layers`` / ``cam_reshape_transform`` (Grad-CAM),
``layer_groups`` (layer-wise LR decay) and ``spec``, a frozen :class:`ModelSpec` saved beside the weights.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields, replace

import torch
from torch import nn

from core.labels import class_names

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


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

    def to_dict(self) -> dict:
        d = asdict(self)
        d["class_names"] = list(self.class_names)
        return d


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
    """Base class: subclasses set ``spec``, ``embed_dim`` and ``head`` and implement ``forward_features``."""

    spec: ModelSpec
    embed_dim: int
    head: nn.Module
    cam_reshape_transform: Callable[[torch.Tensor], torch.Tensor] | None = None

    @property
    def num_classes(self) -> int:
        return self.spec.num_classes

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def pool(self, feats: torch.Tensor) -> torch.Tensor:
        """Global average pooling of a feature map ``(N, C, h, w)`` or of tokens ``(N, L, D)``."""
        return feats.mean(dim=(2, 3)) if feats.ndim == 4 else feats.mean(dim=1)

    def pre_logits(self, pooled: torch.Tensor) -> torch.Tensor:
        """Map the pooled features to the embedding that the classifier (and the center loss) see."""
        return pooled

    def forward_head(self, feats: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        emb = self.pre_logits(self.pool(feats))
        return emb if pre_logits else self.head(emb)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))

    def forward_train(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Logits and embedding in one pass (compound loss = CE on logits + center loss on embedding)."""
        emb = self.forward_head(self.forward_features(x), pre_logits=True)
        return self.head(emb), emb

    def get_classifier(self) -> nn.Module:
        return self.head

    def reset_classifier(self, num_classes: int) -> None:
        """Replace the final layer, e.g. to fine-tune a 7-class model on 8-class FERPlus."""
        class_names(num_classes)  # validates
        self.head = nn.Linear(self.embed_dim, num_classes)
        self.spec = ModelSpec(**{**self.spec.__dict__, "num_classes": num_classes})

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
