"""Photometric preprocessing the papers use, as small switchable transforms (the dashboard ablates each).

Each transform maps a uint8 image to the same dtype and shape, deterministically: :class:`Clahe` (HAFEM),
:class:`AdaptiveGamma` (DCRNet), :class:`ToGray`. :func:`from_names` builds a ``ModelSpec.preprocess`` pipeline.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from core.registry import Registry

__all__ = [
    "Clahe",
    "AdaptiveGamma",
    "ToGray",
    "Compose",
    "PreprocessConfig",
    "build_preprocess",
    "create_preprocess",
    "list_preprocess",
    "from_names",
    "luminance",
]


def _check(image: np.ndarray) -> np.ndarray:
    if not isinstance(image, np.ndarray) or image.dtype != np.uint8:
        raise TypeError(f"preprocessing takes uint8 arrays, got {getattr(image, 'dtype', type(image).__name__)}")
    if not (image.ndim == 2 or (image.ndim == 3 and image.shape[2] in (1, 3))):
        raise ValueError(f"preprocessing takes (H, W), (H, W, 1) or (H, W, 3) arrays, got shape {image.shape}")
    if image.size == 0:  # OpenCV asserts on empty images instead of raising a typed error
        raise ValueError(f"preprocessing takes non-empty images, got shape {image.shape}")
    return image


def luminance(image: np.ndarray) -> np.ndarray:
    """ITU-R 601 luma of a uint8 RGB or gray image, as uint8 ``(H, W)``."""
    image = _check(image)
    if image.ndim == 2:
        return image
    if image.shape[2] == 1:
        return image[..., 0]
    return cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)


@dataclass(frozen=True)
class Clahe:
    """CLAHE on L of LAB (gray images: on the gray values). ``clip`` is OpenCV's clip limit."""

    clip: float = 2.0
    tiles: int = 8
    name = "clahe"

    def __post_init__(self) -> None:
        if self.clip <= 0 or self.tiles < 1:
            raise ValueError(f"CLAHE needs clip > 0 and tiles >= 1, got clip={self.clip}, tiles={self.tiles}")

    def __call__(self, image: np.ndarray) -> np.ndarray:
        image = _check(image)
        clahe = cv2.createCLAHE(clipLimit=float(self.clip), tileGridSize=(self.tiles, self.tiles))
        if image.ndim == 2 or image.shape[2] == 1:
            out = clahe.apply(np.ascontiguousarray(image.reshape(image.shape[:2])))
            return out.reshape(image.shape)
        lab = cv2.cvtColor(image, cv2.COLOR_RGB2LAB)
        lab[..., 0] = clahe.apply(np.ascontiguousarray(lab[..., 0]))
        return cv2.cvtColor(lab, cv2.COLOR_LAB2RGB)


@dataclass(frozen=True)
class AdaptiveGamma:
    """Gamma ``log(0.5) / log(mean luminance)``, which maps the mean to mid-grey, clipped to ``[lo, hi]``."""

    lo: float = 0.6
    hi: float = 1.4
    name = "gamma"

    def __post_init__(self) -> None:
        if not 0 < self.lo <= 1.0 <= self.hi:
            raise ValueError(f"AdaptiveGamma needs 0 < lo <= 1 <= hi, got lo={self.lo}, hi={self.hi}")

    def gamma_for(self, image: np.ndarray) -> float:
        mu = float(luminance(image).mean()) / 255.0
        mu = min(max(mu, 1e-3), 1.0 - 1e-3)  # uniform black/white images: finite log, gamma hits the clip
        return float(np.clip(math.log(0.5) / math.log(mu), self.lo, self.hi))

    def __call__(self, image: np.ndarray) -> np.ndarray:
        image = _check(image)
        gamma = self.gamma_for(image)
        lut = np.clip(255.0 * (np.arange(256) / 255.0) ** gamma + 0.5, 0, 255).astype(np.uint8)
        return cv2.LUT(image, lut).reshape(image.shape)


@dataclass(frozen=True)
class ToGray:
    """Luma, as ``channels`` (3: identical R=G=B, for RGB backbones; 1: ``(H, W, 1)``)."""

    channels: int = 3
    name = "grayscale"

    def __post_init__(self) -> None:
        if self.channels not in (1, 3):
            raise ValueError(f"ToGray channels must be 1 or 3, got {self.channels}")

    def __call__(self, image: np.ndarray) -> np.ndarray:
        gray = luminance(image)
        if image.ndim == 2:
            return gray.copy()  # already gray: keep the (H, W) shape the caller gave
        return np.repeat(gray[..., None], self.channels, axis=2)


class Compose:
    """Apply transforms in order. Empty = identity (returns the input unchanged)."""

    def __init__(self, transforms: Sequence[Callable[[np.ndarray], np.ndarray]] = ()) -> None:
        self.transforms = tuple(transforms)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(getattr(t, "name", type(t).__name__) for t in self.transforms)

    def __call__(self, image: np.ndarray) -> np.ndarray:
        for t in self.transforms:
            image = t(image)
        return image

    def __len__(self) -> int:
        return len(self.transforms)

    def __repr__(self) -> str:
        return f"Compose({list(self.transforms)})"


# --------------------------------------------------------------------------------------------------------------
# Registry by name (what ModelSpec.preprocess holds)

PREPROCESS: Registry[Callable[..., Callable[[np.ndarray], np.ndarray]]] = Registry("preprocessing")


for _transform in (Clahe, AdaptiveGamma, ToGray):
    PREPROCESS.register(_transform, name=_transform.name)


def list_preprocess() -> list[str]:
    return PREPROCESS.names()


def create_preprocess(name: str, **kwargs) -> Callable[[np.ndarray], np.ndarray]:
    """One transform by registered name; an unknown name raises with the list of known ones."""
    return PREPROCESS.get(name)(**kwargs)


def from_names(names: Sequence[str]) -> Compose:
    """A pipeline from a ``ModelSpec.preprocess`` tuple, e.g. ``("clahe",)`` or ``("gamma", "clahe")``."""
    if isinstance(names, str):
        names = (names,)
    return Compose([create_preprocess(n) for n in names])


@dataclass(frozen=True)
class PreprocessConfig:
    """Which steps are on (the dashboard's ablation switches). Order: gamma, then CLAHE, then grayscale."""

    clahe: bool = False
    gamma: bool = False
    grayscale: bool = False
    clahe_clip: float = 2.0
    clahe_tiles: int = 8

    @classmethod
    def from_names(cls, names: Sequence[str]) -> PreprocessConfig:
        unknown = sorted(set(names) - {"clahe", "gamma", "grayscale"})
        if unknown:
            raise ValueError(f"unknown preprocessing {unknown}; choose from {list_preprocess()}")
        return cls(clahe="clahe" in names, gamma="gamma" in names, grayscale="grayscale" in names)


def build_preprocess(cfg: PreprocessConfig) -> Compose:
    """The pipeline a :class:`PreprocessConfig` switches on. Gamma first (global tone), CLAHE second (local
    contrast on the tone-corrected image), grayscale last (so CLAHE still works on L of a colour image)."""
    steps: list[Callable[[np.ndarray], np.ndarray]] = []
    if cfg.gamma:
        steps.append(AdaptiveGamma())
    if cfg.clahe:
        steps.append(Clahe(cfg.clahe_clip, cfg.clahe_tiles))
    if cfg.grayscale:
        steps.append(ToGray(3))
    return Compose(steps)
