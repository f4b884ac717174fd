"""Heatmaps on the aligned crop and on the original photo, with the AU regions outlined on top.

Unsigned maps in [0, 1] (CAMs) get a sequential colormap, signed maps (SHAP) a diverging one symmetric about
zero. On the photo, the crop-space map and the region polygons are carried back with the alignment's inverse
affine and blended only where the crop covers the photo.
"""

from __future__ import annotations

from collections.abc import Mapping

import cv2
import numpy as np

from core.faces.align import AlignedFace, warp_to_image
from core.faces.au_regions import AURegion, draw_regions, regions_to_image

__all__ = ["colorize", "heatmap_overlay", "overlay_on_image", "diverging_colors"]


def diverging_colors(values: np.ndarray, limit: float | None = None) -> np.ndarray:
    """Signed values -> RGB uint8: blue (negative) - white (0) - red (positive), symmetric at ``+-limit``."""
    v = np.asarray(values, dtype=np.float32)
    lim = float(np.abs(v).max()) if limit is None else float(limit)
    t = np.clip(v / lim, -1.0, 1.0) if lim > 0 else np.zeros_like(v)
    pos, neg = np.clip(t, 0, 1), np.clip(-t, 0, 1)
    rgb = np.stack([1.0 - neg, 1.0 - np.maximum(pos, neg), 1.0 - pos], axis=-1)
    return (rgb * 255.0 + 0.5).astype(np.uint8)


def colorize(map_2d: np.ndarray, signed: bool = False, colormap: int = cv2.COLORMAP_JET) -> np.ndarray:
    """A map as an RGB uint8 image: unsigned maps are clipped to [0, 1] and colour-mapped; signed maps use
    :func:`diverging_colors`."""
    m = np.asarray(map_2d, dtype=np.float32)
    if m.ndim != 2:
        raise ValueError(f"a map is (H, W), got shape {m.shape}")
    if signed:
        return diverging_colors(m)
    bgr = cv2.applyColorMap(np.uint8(np.clip(m, 0.0, 1.0) * 255.0 + 0.5), colormap)
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def _as_rgb(image: np.ndarray) -> np.ndarray:
    img = np.asarray(image)
    if img.dtype != np.uint8:
        raise TypeError(f"overlays take uint8 images, got {img.dtype}")
    if img.ndim == 2 or (img.ndim == 3 and img.shape[2] == 1):
        return np.repeat(img.reshape(img.shape[:2] + (1,)), 3, axis=2)
    if img.ndim == 3 and img.shape[2] == 3:
        return img
    raise ValueError(f"overlays take (H, W) or (H, W, 3) images, got shape {img.shape}")


def _heat(map_2d: np.ndarray, h: int, w: int, signed: bool, colormap: int) -> np.ndarray:
    """The map resized (bilinear) to ``(h, w)`` and coloured."""
    m = np.asarray(map_2d, dtype=np.float32)
    if m.shape != (h, w):
        m = cv2.resize(m, (w, h), interpolation=cv2.INTER_LINEAR)
    return colorize(m, signed=signed, colormap=colormap)


def heatmap_overlay(
    crop: np.ndarray,
    map_2d: np.ndarray,
    alpha: float = 0.5,
    signed: bool = False,
    colormap: int = cv2.COLORMAP_JET,
    regions: Mapping[str, AURegion] | None = None,
    labels: bool = False,
) -> np.ndarray:
    """Blend a map of any resolution (resized to the crop) over a uint8 RGB or gray crop with weight ``alpha``,
    optionally outlining AU ``regions`` given in the crop's pixels (``labels``: with their names).

    ``signed`` maps (SHAP) get diverging colours.
    """
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be in [0, 1], got {alpha}")
    rgb = _as_rgb(crop)
    heat = _heat(map_2d, *rgb.shape[:2], signed, colormap)
    out = cv2.addWeighted(heat, alpha, rgb, 1.0 - alpha, 0.0)
    if regions:
        out = draw_regions(out, regions, labels=labels, thickness=1)
    return out


def overlay_on_image(
    image: np.ndarray,
    map_2d: np.ndarray,
    aligned: AlignedFace,
    alpha: float = 0.5,
    signed: bool = False,
    colormap: int = cv2.COLORMAP_JET,
    regions: Mapping[str, AURegion] | None = None,
    labels: bool = False,
) -> np.ndarray:
    """A map covering the aligned crop, blended onto the uint8 RGB photo the face was detected in (through the
    inverse affine of ``aligned``); ``regions`` in *crop* pixels are mapped to the photo. Else as
    :func:`heatmap_overlay`."""
    rgb = _as_rgb(image)
    size = aligned.output_size
    heat_img = warp_to_image(_heat(map_2d, size, size, signed, colormap), aligned, rgb.shape)
    cover = warp_to_image(np.ones((size, size), np.float32), aligned, rgb.shape)[..., None] * alpha
    out = (heat_img.astype(np.float32) * cover + rgb.astype(np.float32) * (1.0 - cover) + 0.5).astype(np.uint8)
    if regions:
        thickness = max(1, int(round(2.0 / max(aligned.scale, 1e-6) / 2)))
        out = draw_regions(out, regions_to_image(regions, aligned), labels=labels, thickness=thickness)
    return out
