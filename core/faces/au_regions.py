"""Facial action-unit (AU) regions on an aligned face, and the FACS table of AUs each emotion shows.

The regions are derived from the five landmarks (no offline dense-landmark model ships its weights), placed in a
face frame spanned by the eye line and the eye-to-mouth distance with average adult proportions: coarse
geometry for attribution, not AU intensity; it degrades beyond ~30 degrees of yaw. :data:`EXPECTED_AUS` follows
EMFACS as tabulated by Matsumoto & Ekman, Scholarpedia 3(5):4237 (2008), Table 1 (see docs/explanations.md).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from core.faces.align import AlignedFace, transform_points

__all__ = [
    "EXPECTED_AUS",
    "UNILATERAL_AUS",
    "AU_NAMES",
    "AU_REGION",
    "REGION_NAMES",
    "ANATOMICAL_ORDER",
    "AURegion",
    "au_regions",
    "clip_polygon",
    "regions_for",
    "regions_to_image",
    "region_masks",
    "draw_regions",
    "REGION_COLORS",
]

EXPECTED_AUS: dict[str, tuple[int, ...]] = {
    "angry": (4, 5, 7, 23),
    "disgust": (9, 15, 16),
    "fear": (1, 2, 4, 5, 7, 20, 26),
    "happy": (6, 12),
    "sad": (1, 4, 15),
    "surprise": (1, 2, 5, 26),
    "neutral": (),
    "contempt": (12, 14),
}
"""Prototypical AUs per emotion (EMFACS; Matsumoto & Ekman 2008, Table 1), keys in ``core.labels`` names."""

UNILATERAL_AUS: dict[str, tuple[int, ...]] = {"contempt": (12, 14)}
"""AUs that the prototype shows on one side of the face only (contempt: R12A + R14A)."""

AU_NAMES: dict[int, str] = {
    1: "inner brow raiser",
    2: "outer brow raiser",
    4: "brow lowerer",
    5: "upper lid raiser",
    6: "cheek raiser",
    7: "lid tightener",
    9: "nose wrinkler",
    10: "upper lip raiser",
    12: "lip corner puller",
    14: "dimpler",
    15: "lip corner depressor",
    16: "lower lip depressor",
    17: "chin raiser",
    20: "lip stretcher",
    23: "lip tightener",
    24: "lip pressor",
    25: "lips part",
    26: "jaw drop",
    27: "mouth stretch",
}
"""FACS names of the AUs used here (Ekman, Friesen & Hager 2002)."""

AU_REGION: dict[int, str] = {
    1: "brows",
    2: "brows",
    4: "brows",
    5: "eyes",
    7: "eyes",
    6: "cheeks",
    9: "nose",
    10: "nasolabial",
    12: "lip_corners",
    14: "lip_corners",
    15: "lip_corners",
    20: "lip_corners",
    16: "lips",
    23: "lips",
    24: "lips",
    25: "lips",
    17: "chin",
    26: "jaw",
    27: "jaw",
}
"""Where on the face each AU's appearance change mostly shows."""

REGION_NAMES: tuple[str, ...] = (
    "brows",
    "eyes",
    "cheeks",
    "nose",
    "nasolabial",
    "lip_corners",
    "lips",
    "jaw",
    "chin",
)

ANATOMICAL_ORDER: tuple[str, ...] = ("brows", "eyes", "nose", "lips", "chin")
"""Regions whose centroids must go strictly downwards the face in this order (a sanity check)."""

REGION_COLORS: dict[str, tuple[int, int, int]] = {
    "brows": (230, 159, 0),
    "eyes": (86, 180, 233),
    "cheeks": (204, 121, 167),
    "nose": (0, 158, 115),
    "nasolabial": (240, 228, 66),
    "lip_corners": (213, 94, 0),
    "lips": (255, 80, 80),
    "jaw": (0, 114, 178),
    "chin": (160, 160, 160),
}
"""RGB colours (Okabe-Ito based, colour-blind safe) for drawing."""


@dataclass(frozen=True, eq=False)
class AURegion:
    """A named region: one or more polygons (``(k, 2)`` float32 points) in one coordinate frame.

    Attributes:
        name: one of :data:`REGION_NAMES`.
        aus: the AUs that show in it (from :data:`AU_REGION`).
        polygons: the polygons, in crop pixels (from :func:`au_regions`) or image pixels (after
            :func:`regions_to_image`).
    """

    name: str
    aus: tuple[int, ...]
    polygons: tuple[np.ndarray, ...]

    @property
    def points(self) -> np.ndarray:
        return np.concatenate(self.polygons, axis=0)

    @property
    def centroid(self) -> np.ndarray:
        """Area-weighted centroid of all polygons."""
        total, acc = 0.0, np.zeros(2)
        for poly in self.polygons:
            x, y = poly[:, 0].astype(np.float64), poly[:, 1].astype(np.float64)
            cross = x * np.roll(y, -1) - np.roll(x, -1) * y
            area = cross.sum() / 2.0
            if abs(area) < 1e-9:
                continue
            cx = ((x + np.roll(x, -1)) * cross).sum() / (6 * area)
            cy = ((y + np.roll(y, -1)) * cross).sum() / (6 * area)
            total += abs(area)
            acc += abs(area) * np.array([cx, cy])
        return acc / total if total > 0 else self.points.mean(axis=0)

    def transformed(self, matrix: np.ndarray) -> AURegion:
        """The same region under a 2x3 affine (e.g. ``aligned.inverse`` to go to the original image)."""
        polys = tuple(transform_points(p, matrix).astype(np.float32) for p in self.polygons)
        return AURegion(self.name, self.aus, polys)

    def mask(self, shape: tuple[int, int], scale: float = 1.0) -> np.ndarray:
        """Boolean mask of ``shape`` (h, w); polygon coordinates are multiplied by ``scale`` first."""
        canvas = np.zeros(shape[:2], np.uint8)
        shift = 4  # sub-pixel precision for fillPoly
        # pixel centres sit at integer coordinates: (p + 0.5) * scale - 0.5 maps them between resolutions
        pts = [np.round(((p + 0.5) * scale - 0.5) * (1 << shift)).astype(np.int32) for p in self.polygons]
        cv2.fillPoly(canvas, pts, 1, lineType=cv2.LINE_8, shift=shift)
        return canvas.astype(bool)


def _ellipse(center: np.ndarray, u: np.ndarray, v: np.ndarray, ru: float, rv: float, n: int = 16) -> np.ndarray:
    t = np.linspace(0, 2 * np.pi, n, endpoint=False)
    return (center + np.outer(np.cos(t) * ru, u) + np.outer(np.sin(t) * rv, v)).astype(np.float32)


def au_regions(landmarks: np.ndarray) -> dict[str, AURegion]:
    """Region polygons from five landmarks (viewer's order: eyes, nose, mouth corners), in their frame.

    Pass the aligned crop's landmarks (:attr:`AlignedFace.landmarks`) to get crop coordinates, or the
    original landmarks to get image coordinates directly. See the module docstring for the geometry.
    """
    lm = np.asarray(landmarks, np.float64).reshape(5, 2)
    le, re, nose, ml, mr = lm
    eye_c = (le + re) / 2.0
    ex = re - le
    d = float(np.hypot(*ex))
    if d < 1e-6:
        raise ValueError("the two eye landmarks coincide; cannot build AU regions")
    u = ex / d
    v = np.array([-u[1], u[0]])  # image y points down, so this is "down the face"
    mouth_c = (ml + mr) / 2.0
    f = float((mouth_c - eye_c) @ v)
    if f < 0.2 * d:
        raise ValueError("the mouth is not below the eyes in these landmarks; cannot build AU regions")

    def p(a: float, b: float) -> np.ndarray:
        return eye_c + a * d * u + b * f * v

    def poly(*pts: tuple[float, float]) -> np.ndarray:
        return np.array([p(a, b) for a, b in pts], np.float32)

    def shifted(base: np.ndarray, a: float, b: float) -> np.ndarray:
        return base + a * d * u + b * f * v

    regions: dict[str, tuple[np.ndarray, ...]] = {}
    # brows: one band over each eye reaching across the glabella (AU1 inner, AU2 outer, AU4 lowerer)
    regions["brows"] = (
        poly((-1.0, -0.42), (-0.6, -0.55), (-0.05, -0.45), (-0.05, -0.18), (-0.55, -0.22), (-0.95, -0.15)),
        poly((0.05, -0.45), (0.6, -0.55), (1.0, -0.42), (0.95, -0.15), (0.55, -0.22), (0.05, -0.18)),
    )
    # eyes incl. upper lids, around the real eye landmarks (AU5, AU7)
    regions["eyes"] = tuple(_ellipse(c, u, v, 0.3 * d, 0.13 * f) for c in (le, re))
    # cheeks: below and outside the eyes, beside the nose (AU6)
    regions["cheeks"] = tuple(
        _ellipse(shifted(c, side * 0.08, 0.5), u, v, 0.24 * d, 0.2 * f) for c, side in ((le, -1), (re, 1))
    )
    # nose: from the bridge between the eyes to just below the real nose tip (AU9)
    tip = nose
    regions["nose"] = (
        np.array(
            [p(-0.12, 0.08), p(0.12, 0.08), tip + 0.25 * d * u + 0.08 * f * v, tip - 0.25 * d * u + 0.08 * f * v],
            np.float32,
        ),
    )
    # nasolabial folds: from beside the nostrils down to just outside the real mouth corners (AU10)
    regions["nasolabial"] = (
        np.array(
            [
                tip - 0.28 * d * u - 0.1 * f * v,
                tip - 0.16 * d * u + 0.05 * f * v,
                ml - 0.02 * d * u - 0.1 * f * v,
                ml - 0.16 * d * u - 0.05 * f * v,
            ],
            np.float32,
        ),
        np.array(
            [
                tip + 0.28 * d * u - 0.1 * f * v,
                tip + 0.16 * d * u + 0.05 * f * v,
                mr + 0.02 * d * u - 0.1 * f * v,
                mr + 0.16 * d * u - 0.05 * f * v,
            ],
            np.float32,
        ),
    )
    # lip corners: discs at the real corners (AU12, AU14, AU15, AU20)
    regions["lip_corners"] = tuple(_ellipse(c, u, v, 0.16 * d, 0.14 * f, 12) for c in (ml, mr))
    # lips: between the real corners, upper lip ~0.2 f above the mouth line, lower ~0.22 f below (AU16, 23-25)
    half = (mr - ml) / 2.0
    regions["lips"] = (
        np.array(
            [
                ml - 0.05 * d * u,
                mouth_c - 0.55 * half - 0.18 * f * v,
                mouth_c + 0.55 * half - 0.18 * f * v,
                mr + 0.05 * d * u,
                mouth_c + 0.55 * half + 0.22 * f * v,
                mouth_c - 0.55 * half + 0.22 * f * v,
            ],
            np.float32,
        ),
    )
    # jaw / mouth opening: the lower face from the mouth line to the jaw line (AU26, AU27)
    regions["jaw"] = (
        np.array(
            [
                mouth_c - 0.75 * d * u - 0.05 * f * v,
                mouth_c + 0.75 * d * u - 0.05 * f * v,
                mouth_c + 0.6 * d * u + 0.45 * f * v,
                mouth_c + 0.25 * d * u + 0.62 * f * v,
                mouth_c - 0.25 * d * u + 0.62 * f * v,
                mouth_c - 0.6 * d * u + 0.45 * f * v,
            ],
            np.float32,
        ),
    )
    # chin: the mentalis area below the lower lip (AU17)
    regions["chin"] = (_ellipse(mouth_c + 0.42 * f * v, u, v, 0.3 * d, 0.17 * f),)
    aus_by_region: dict[str, list[int]] = {n: [] for n in REGION_NAMES}
    for au, name in AU_REGION.items():
        aus_by_region[name].append(au)
    return {n: AURegion(n, tuple(sorted(aus_by_region[n])), regions[n]) for n in REGION_NAMES}


def clip_polygon(poly: np.ndarray, clip: np.ndarray) -> np.ndarray:
    """Sutherland-Hodgman: the part of ``poly`` inside the convex polygon ``clip`` (either orientation)."""
    clip = np.asarray(clip, np.float64)
    x, y = clip[:, 0], clip[:, 1]
    orient = np.sign((x * np.roll(y, -1) - np.roll(x, -1) * y).sum()) or 1.0
    out = [np.asarray(q, np.float64) for q in poly]
    for a, b in zip(clip, np.roll(clip, -1, axis=0), strict=True):
        edge = b - a

        def inside(q: np.ndarray, a=a, edge=edge) -> bool:
            return orient * (edge[0] * (q[1] - a[1]) - edge[1] * (q[0] - a[0])) >= 0

        def cut(p: np.ndarray, q: np.ndarray, a=a, edge=edge) -> np.ndarray:
            d = q - p
            den = edge[0] * d[1] - edge[1] * d[0]
            t = (edge[1] * (p[0] - a[0]) - edge[0] * (p[1] - a[1])) / den if abs(den) > 1e-12 else 0.0
            return p + t * d

        src, out = out, []
        for i, cur in enumerate(src):
            prev = src[i - 1]
            if inside(cur):
                if not inside(prev):
                    out.append(cut(prev, cur))
                out.append(cur)
            elif inside(prev):
                out.append(cut(prev, cur))
        if not out:
            break
    return np.asarray(out, np.float32).reshape(-1, 2)


def regions_for(aligned: AlignedFace, clip_to_box: bool = True) -> dict[str, AURegion]:
    """Regions of an aligned face, in crop pixels (from the crop's actual landmarks).

    With ``clip_to_box`` every polygon is cut to the detector's face box (mapped into the crop), so that a
    region never leaks off the face: on a strongly turned head the frontal geometry would otherwise put the
    far-side brow or cheek over the background. A polygon cut away entirely is dropped; a region that would
    lose all its polygons keeps them uncut (it is then outside the box, which callers can check).
    """
    regions = au_regions(aligned.landmarks)
    if not clip_to_box:
        return regions
    x1, y1, x2, y2 = aligned.face.xyxy
    box = transform_points(np.array([[x1, y1], [x2, y1], [x2, y2], [x1, y2]], np.float64), aligned.matrix)
    out = {}
    for name, region in regions.items():
        polys = tuple(q for q in (clip_polygon(p, box) for p in region.polygons) if len(q) >= 3)
        out[name] = AURegion(name, region.aus, polys) if polys else region
    return out


def regions_to_image(regions: Mapping[str, AURegion], aligned: AlignedFace) -> dict[str, AURegion]:
    """Crop-pixel regions -> original-image pixels (through ``aligned.inverse``)."""
    return {n: r.transformed(aligned.inverse) for n, r in regions.items()}


def region_masks(
    regions: Mapping[str, AURegion], shape: tuple[int, int], from_size: int | None = None
) -> dict[str, np.ndarray]:
    """Boolean masks of ``shape`` for each region. ``from_size``: the crop size the polygons are in, when the
    masks are wanted at another resolution (e.g. a 7x7 CAM grid of a 224 crop: ``shape=(7, 7), from_size=224``)."""
    scale = 1.0 if from_size is None else shape[0] / float(from_size)
    return {n: r.mask(shape, scale) for n, r in regions.items()}


def draw_regions(
    image_rgb: np.ndarray,
    regions: Mapping[str, AURegion] | Sequence[AURegion],
    labels: bool = True,
    thickness: int = 1,
    fill_alpha: float = 0.0,
    colors: Mapping[str, tuple[int, int, int]] = REGION_COLORS,
) -> np.ndarray:
    """A copy of the image with the region outlines (optionally filled) and their names drawn on it."""
    items = list(regions.values()) if isinstance(regions, Mapping) else list(regions)
    out = np.ascontiguousarray(image_rgb.copy())
    shift = 4
    if fill_alpha > 0:
        layer = out.copy()
        for r in items:
            pts = [np.round(p * (1 << shift)).astype(np.int32) for p in r.polygons]
            cv2.fillPoly(layer, pts, colors.get(r.name, (255, 255, 255)), cv2.LINE_AA, shift)
        out = cv2.addWeighted(layer, fill_alpha, out, 1.0 - fill_alpha, 0.0)
    scale = max(0.3, min(out.shape[:2]) / 600.0)
    for r in items:
        color = colors.get(r.name, (255, 255, 255))
        pts = [np.round(p * (1 << shift)).astype(np.int32) for p in r.polygons]
        cv2.polylines(out, pts, True, color, thickness, cv2.LINE_AA, shift)
        if labels:
            x, y = r.polygons[0].min(axis=0)
            cv2.putText(out, r.name, (int(x), int(y) - 2), cv2.FONT_HERSHEY_SIMPLEX, scale, color, 1, cv2.LINE_AA)
    return out
