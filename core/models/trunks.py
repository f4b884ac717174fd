"""CNN trunks taken from timm, with optional CBAM blocks inserted after named stages.

The papers place CBAM after numbered stages; timm's ``feature_info`` names each stage and its channels, so
channel counts are read, never hard-coded.
"""

from __future__ import annotations

import logging

import timm
import torch
from torch import nn

from core.models.cbam import CBAM
from core.models.weights import WeightsError, find_pretrained, read_state_dict

log = logging.getLogger(__name__)


class TimmTrunk(nn.Module):
    """A timm model without pooling and classifier, ``forward(x) -> (N, channels, h, w)`` at stride ``reduction``.

    ``cbam_after_stages`` are 1-based indices into ``feature_info`` after whose module a CBAM block is inserted;
    ``cbam_on_output`` adds one after the final features. ``pretrained_backbone`` is a local ImageNet weights file
    (None looks in ``$FERLENS_PRETRAINED_DIR``).
    """

    def __init__(
        self,
        arch: str,
        cbam_after_stages: tuple[int, ...] = (),
        cbam_on_output: bool = False,
        cbam_reduction: int = 16,
        cbam_kernel: int = 7,
        pretrained_backbone: str | None = None,
        drop_path_rate: float = 0.0,
    ) -> None:
        super().__init__()
        kwargs = {"drop_path_rate": drop_path_rate} if drop_path_rate else {}
        self.net = timm.create_model(arch, pretrained=False, num_classes=0, global_pool="", **kwargs)
        self.arch = arch
        path = find_pretrained(arch, pretrained_backbone)
        if path is not None:
            self._load_pretrained(path)
        infos = self.net.feature_info
        self.channels, self.reduction = self.net.num_features, infos[-1]["reduction"]
        for stage in cbam_after_stages:
            if not 1 <= stage <= len(infos):
                raise ValueError(f"{arch} has stages 1..{len(infos)} in feature_info, not {stage}")
            parent_name, _, last = infos[stage - 1]["module"].rpartition(".")
            parent = self.net.get_submodule(parent_name)
            cbam = CBAM(infos[stage - 1]["num_chs"], cbam_reduction, cbam_kernel)
            setattr(parent, last, nn.Sequential(getattr(parent, last), cbam))
        self.cbam_out = CBAM(self.channels, cbam_reduction, cbam_kernel) if cbam_on_output else None

    def _load_pretrained(self, path) -> None:
        state = read_state_dict(path)
        missing, unexpected = self.net.load_state_dict(state, strict=False)
        unexpected = [k for k in unexpected if not k.startswith(("classifier.", "fc.", "head."))]
        if missing or unexpected:
            raise WeightsError(
                f"{path} is not {self.arch} ImageNet weights: missing {missing[:5]}, unexpected {unexpected[:5]}"
            )
        log.info("loaded ImageNet weights for %s from %s", self.arch, path)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.net.forward_features(x)
        return self.cbam_out(x) if self.cbam_out is not None else x

    def layer_modules(self) -> list[nn.Module]:
        """The trunk's top-level modules in forward order (stem, each stage, head conv), for LLRD."""
        mods: list[nn.Module] = []
        for _, child in self.net.named_children():
            if isinstance(child, nn.Sequential) and all(isinstance(c, nn.Sequential) for c in child):
                mods.extend(child)  # a container of stages (EfficientNet's ``blocks``): one group per stage
            else:
                mods.append(child)
        if self.cbam_out is not None:
            mods.append(self.cbam_out)
        return mods

    def last_spatial_module(self) -> nn.Module:
        """Where Grad-CAM should look: the final spatial output (CBAM if present, else the last module)."""
        if self.cbam_out is not None:
            return self.cbam_out
        return [m for m in self.layer_modules() if any(True for _ in m.parameters())][-1]
