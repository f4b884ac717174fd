"""Facial action-unit (AU) regions on an aligned face, and the FACS table of AUs each emotion shows.

Regions are hulls of face-mesh point sets (:mod:`core.faces.mesh`); when the mesh cannot fit, they are placed
from the five landmarks with average proportions and :class:`FaceRegions` says so. Geometry for attribution, not
AU intensity. :data:`EXPECTED_AUS` follows Matsumoto & Ekman, Scholarpedia 3(5):4237 (2008), Table 1.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

import cv2
import numpy as np

from core.faces.align import AlignedFace, framing_points, transform_points
from core.faces.mesh import EYE_VIEWER_LEFT, EYE_VIEWER_RIGHT, MeshConfig, MeshFit, fit_mesh

__all__ = [
    "EXPECTED_AUS",
    "UNILATERAL_AUS",
    "AU_REGION",
    "REGION_NAMES",
    "AURegion",
    "CROP_MESH_CONFIG",
    "FaceRegions",
    "MESH_REGION_INDICES",
    "au_regions",
    "clip_polygon",
    "mesh_regions",
    "regions_for",
    "regions_for_crop",
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

_AUS_BY_REGION: dict[str, tuple[int, ...]] = {
    "brows": (1, 2, 4),
    "eyes": (5, 7),
    "cheeks": (6,),
    "nose": (9,),
    "nasolabial": (10,),
    "lip_corners": (12, 14, 15, 20),
    "lips": (16, 23, 24, 25),
    "jaw": (26, 27),
    "chin": (17,),
}

AU_REGION: dict[int, str] = {au: region for region, aus in _AUS_BY_REGION.items() for au in aus}
"""Where on the face each AU's appearance change mostly shows."""

REGION_NAMES: tuple[str, ...] = tuple(_AUS_BY_REGION)

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

MESH_REGION_INDICES: dict[str, tuple[tuple[int, ...], ...]] = {
    # brow contours (FACEMESH_LEFT/RIGHT_EYEBROW), the forehead row above them (AU1/AU2 lift it) and the
    # glabella between them (9, 8: AU4 furrows)
    "brows": (
        (70, 63, 105, 66, 107, 46, 53, 52, 65, 55, 68, 104, 69, 108, 9, 8),
        (300, 293, 334, 296, 336, 276, 283, 282, 295, 285, 298, 333, 299, 337, 9, 8),
    ),
    # eye contours (FACEMESH_LEFT/RIGHT_EYE) and the lid rings around them up to the crease (AU5, AU7)
    "eyes": (
        EYE_VIEWER_LEFT + (247, 30, 29, 27, 28, 56, 190, 130, 25, 110, 24, 23, 22, 26, 112, 243),
        EYE_VIEWER_RIGHT + (467, 260, 259, 257, 258, 286, 414, 359, 255, 339, 254, 253, 252, 256, 341, 463),
    ),
    # the infraorbital cheek below each eye (AU6 raises it)
    "cheeks": ((117, 118, 119, 100, 101, 50, 205, 36, 123), (346, 347, 348, 329, 330, 280, 425, 266, 352)),
    # bridge from the nasion to the tip and the alae (AU9 wrinkles it)
    "nose": ((168, 6, 197, 195, 5, 4, 1, 2, 98, 327, 64, 294, 129, 358, 193, 417, 122, 351, 196, 419),),
    # from beside the ala down to outside the mouth corner (AU10 deepens the fold)
    "nasolabial": ((203, 206, 216, 212, 186, 92, 165), (423, 426, 436, 432, 410, 322, 391)),
    # around each mouth corner (61, 291) (AU12, AU14, AU15, AU20)
    "lip_corners": ((61, 185, 40, 146, 91, 57, 43, 186, 92), (291, 409, 270, 375, 321, 287, 273, 410, 322)),
    # outer lip contour (FACEMESH_LIPS) (AU16, AU23-25)
    "lips": ((61, 146, 91, 181, 84, 17, 314, 405, 321, 375, 291, 409, 270, 269, 267, 0, 37, 39, 40, 185),),
    # from the mouth line down to the lower face oval (FACEMESH_FACE_OVAL) (AU26, AU27)
    "jaw": ((61, 291, 212, 432, 214, 434, 136, 365, 150, 379, 149, 378, 176, 400, 148, 377, 152),),
    # the mentalis area below the lower lip (AU17)
    "chin": ((18, 200, 199, 175, 83, 313, 201, 421, 208, 428, 171, 396, 32, 262),),
}
"""Each region as point sets of the 468-point mesh, one per polygon (the polygon is the set's convex hull).

Indices are MediaPipe's canonical face mesh (``mediapipe/python/solutions/face_mesh_connections.py`` names the
eye, brow, lip and face-oval sets; the rest were read off the canonical mesh and checked on the sample faces).
Paired regions list the viewer's left side first, like the 5-point landmarks: index 33 is the subject's right
eye corner, which a camera shows on the viewer's left.
"""

CROP_MESH_CONFIG = MeshConfig(max_point_error=0.75)
"""Mesh limits for pre-cropped faces: they start from the framing's typical points, which miss a row's own
landmarks (docs/faces.md), so a sound mesh may lie farther from them than from a detector's points."""


@dataclass(frozen=True, eq=False)
class AURegion:
    """A named region (one of :data:`REGION_NAMES`), the AUs that show in it, and its polygons (``(k, 2)``
    float32 points) in one frame: crop pixels (from :func:`au_regions`) or image pixels (:func:`regions_to_image`).
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
        moments = [cv2.moments(p) for p in self.polygons]
        area = sum(m["m00"] for m in moments)
        if area <= 0:
            return self.points.mean(axis=0)
        return np.array([sum(m["m10"] for m in moments), sum(m["m01"] for m in moments)]) / area

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


@dataclass(frozen=True, eq=False)
class FaceRegions(Mapping[str, AURegion]):
    """The AU regions of one face (a read-only ``{name: AURegion}`` mapping, :data:`REGION_NAMES` order), their
    ``source`` (the 468-point mesh, the detector's five landmarks, or a dataset's typical five landmarks for a
    pre-cropped face) and the ``reason`` the mesh was not used (``None`` if it was or was not asked for)."""

    regions: Mapping[str, AURegion]
    source: Literal["mesh", "five_point", "framing"]
    reason: str | None = None

    def __getitem__(self, name: str) -> AURegion:
        return self.regions[name]

    def __iter__(self):
        return iter(self.regions)

    def __len__(self) -> int:
        return len(self.regions)

    @property
    def fallback(self) -> bool:
        """True when the regions are not the mesh's (what the UI flags)."""
        return self.source != "mesh"

    @property
    def note(self) -> str:
        """One line for the UI: where the regions come from and, for a fallback, why."""
        if self.source == "mesh":
            return "AU regions from the 468-point face mesh"
        what = "five landmarks" if self.source == "five_point" else "the dataset's typical five landmarks"
        return f"AU regions from {what} (fallback: {self.reason})" if self.reason else f"AU regions from {what}"

    def transformed(self, matrix: np.ndarray) -> FaceRegions:
        """Every region under a 2x3 affine (see :meth:`AURegion.transformed`); source and reason kept."""
        return FaceRegions({n: r.transformed(matrix) for n, r in self.regions.items()}, self.source, self.reason)


def _ellipse(center: np.ndarray, u: np.ndarray, v: np.ndarray, ru: float, rv: float, n: int = 16) -> np.ndarray:
    t = np.linspace(0, 2 * np.pi, n, endpoint=False)
    return (center + np.outer(np.cos(t) * ru, u) + np.outer(np.sin(t) * rv, v)).astype(np.float32)


def au_regions(landmarks: np.ndarray) -> dict[str, AURegion]:
    """Region polygons from five landmarks (viewer's order: eyes, nose, mouth corners), in their frame.

    Pass the aligned crop's landmarks (:attr:`AlignedFace.landmarks`) to get crop coordinates, or the
    original landmarks to get image coordinates directly.
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

    def at(base: np.ndarray, a: float, b: float) -> np.ndarray:
        """``a`` eye distances along the eye line and ``b`` eye-to-mouth distances down the face from ``base``."""
        return base + a * d * u + b * f * v

    def poly(base: np.ndarray, *offsets: tuple[float, float]) -> np.ndarray:
        return np.array([at(base, a, b) for a, b in offsets], np.float32)

    lip_l, lip_r = mouth_c - 0.55 * (mr - ml) / 2.0, mouth_c + 0.55 * (mr - ml) / 2.0
    regions = {
        # one band over each eye reaching across the glabella (AU1 inner, AU2 outer, AU4 lowerer)
        "brows": (
            poly(eye_c, (-1.0, -0.42), (-0.6, -0.55), (-0.05, -0.45), (-0.05, -0.18), (-0.55, -0.22), (-0.95, -0.15)),
            poly(eye_c, (0.05, -0.45), (0.6, -0.55), (1.0, -0.42), (0.95, -0.15), (0.55, -0.22), (0.05, -0.18)),
        ),
        # eyes incl. upper lids, around the real eye landmarks (AU5, AU7)
        "eyes": tuple(_ellipse(c, u, v, 0.3 * d, 0.13 * f) for c in (le, re)),
        # below and outside the eyes, beside the nose (AU6)
        "cheeks": tuple(_ellipse(at(c, s * 0.08, 0.5), u, v, 0.24 * d, 0.2 * f) for c, s in ((le, -1), (re, 1))),
        # from the bridge between the eyes to just below the real nose tip (AU9)
        "nose": (np.concatenate([poly(eye_c, (-0.12, 0.08), (0.12, 0.08)), poly(nose, (0.25, 0.08), (-0.25, 0.08))]),),
        # nasolabial folds: from beside the nostrils down to just outside the real mouth corners (AU10)
        "nasolabial": tuple(
            np.concatenate(
                [poly(nose, (s * 0.28, -0.1), (s * 0.16, 0.05)), poly(c, (s * 0.02, -0.1), (s * 0.16, -0.05))]
            )
            for c, s in ((ml, -1), (mr, 1))
        ),
        # discs at the real corners (AU12, AU14, AU15, AU20)
        "lip_corners": tuple(_ellipse(c, u, v, 0.16 * d, 0.14 * f, 12) for c in (ml, mr)),
        # between the real corners, upper lip ~0.2 f above the mouth line, lower ~0.22 f below (AU16, 23-25)
        "lips": (
            np.array(
                [
                    at(ml, -0.05, 0),
                    at(lip_l, 0, -0.18),
                    at(lip_r, 0, -0.18),
                    at(mr, 0.05, 0),
                    at(lip_r, 0, 0.22),
                    at(lip_l, 0, 0.22),
                ],
                np.float32,
            ),
        ),
        # jaw / mouth opening: the lower face from the mouth line to the jaw line (AU26, AU27)
        "jaw": (poly(mouth_c, (-0.75, -0.05), (0.75, -0.05), (0.6, 0.45), (0.25, 0.62), (-0.25, 0.62), (-0.6, 0.45)),),
        # the mentalis area below the lower lip (AU17)
        "chin": (_ellipse(at(mouth_c, 0, 0.42), u, v, 0.3 * d, 0.17 * f),),
    }
    return {n: AURegion(n, _AUS_BY_REGION[n], regions[n]) for n in REGION_NAMES}


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


def mesh_regions(points: np.ndarray) -> dict[str, AURegion]:
    """Region polygons from the 468-point mesh (``(468, 2)`` or ``(468, 3)``), in the points' frame.

    Each polygon is the convex hull of one point set of :data:`MESH_REGION_INDICES`.
    """
    pts = np.asarray(points, np.float32)
    if pts.ndim != 2 or pts.shape[0] != 468 or pts.shape[1] < 2 or not np.isfinite(pts[:, :2]).all():
        raise ValueError(f"mesh_regions needs (468, 2) finite points, got shape {pts.shape}")
    xy = np.ascontiguousarray(pts[:, :2])
    out = {}
    for name in REGION_NAMES:
        polys = tuple(cv2.convexHull(xy[list(ix)]).reshape(-1, 2) for ix in MESH_REGION_INDICES[name])
        out[name] = AURegion(name, _AUS_BY_REGION[name], polys)
    return out


def _clip_all(regions: Mapping[str, AURegion], box: np.ndarray) -> dict[str, AURegion]:
    """Every polygon cut to the convex ``box``; a region cut away entirely keeps its polygons uncut."""
    out = {}
    for name, region in regions.items():
        polys = tuple(q for q in (clip_polygon(p, box) for p in region.polygons) if len(q) >= 3)
        out[name] = AURegion(name, region.aus, polys) if polys else region
    return out


def _face_regions(fit: MeshFit | None, fallback: dict[str, AURegion], source: str, clip: np.ndarray | None):
    """A :class:`FaceRegions`: the mesh's when ``fit`` is sound, else ``fallback`` with the fit's reason; cut to
    the convex ``clip`` when given."""
    if fit is not None and fit.ok:
        regions, source, reason = mesh_regions(fit.points), "mesh", None
    else:
        regions, reason = fallback, None if fit is None else fit.reason
    return FaceRegions(regions if clip is None else _clip_all(regions, clip), source, reason)


def regions_for(
    aligned: AlignedFace,
    image: np.ndarray | None = None,
    *,
    mesh: bool | MeshFit = True,
    clip_to_box: bool = True,
    config: MeshConfig | None = None,
) -> FaceRegions:
    """Regions of an aligned face, in crop pixels: from the face mesh, else (``source="five_point"``, with the
    ``reason``) from the five landmarks.

    Args:
        image: the image the face was detected in; the mesh is fitted there (sharper than the crop), else on the
            crop.
        mesh: ``True`` (fit it), ``False`` (five landmarks only) or a :class:`MeshFit` already fitted on ``image``.
        clip_to_box: cut every polygon to the face box so no region leaks off the face; a region that would lose
            all its polygons keeps them uncut.
    """
    if isinstance(mesh, MeshFit):
        fit = mesh.transformed(aligned.matrix)
    elif mesh:
        fit = (
            fit_mesh(image, aligned.face.landmarks, config).transformed(aligned.matrix)
            if image is not None
            else fit_mesh(aligned.image, aligned.landmarks, config)
        )
    else:
        fit = None
    box = None
    if clip_to_box:
        x1, y1, x2, y2 = aligned.face.xyxy
        box = transform_points(np.array([[x1, y1], [x2, y1], [x2, y2], [x1, y2]], np.float64), aligned.matrix)
    return _face_regions(fit, au_regions(aligned.landmarks), "five_point", box)


def regions_for_crop(
    crop: np.ndarray, framing: str = "fer2013", *, mesh: bool = True, config: MeshConfig | None = None
) -> FaceRegions:
    """Regions of a square pre-cropped face (a dataset row, ``--assume-cropped``) in its pixels, clipped to it.

    The mesh starts from where faces sit in ``framing`` on average, which also gives the fallback
    (``source="framing"``).
    """
    arr = np.asarray(crop)
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[..., 0]
    if arr.dtype != np.uint8 or arr.ndim not in (2, 3) or arr.shape[0] != arr.shape[1]:
        raise ValueError(f"regions_for_crop takes a square (H, W) or (H, W, 3) uint8 crop, got {arr.dtype} {arr.shape}")
    size = arr.shape[0]
    points = framing_points(size, framing)
    rgb = np.repeat(arr[..., None], 3, axis=2) if arr.ndim == 2 else arr
    fit = fit_mesh(rgb, points, config or CROP_MESH_CONFIG) if mesh else None
    edge = size - 0.5
    square = np.array([[-0.5, -0.5], [edge, -0.5], [edge, edge], [-0.5, edge]], np.float64)
    return _face_regions(fit, au_regions(points), "framing", square)


def regions_to_image(regions: Mapping[str, AURegion], aligned: AlignedFace) -> FaceRegions | dict[str, AURegion]:
    """Crop-pixel regions -> original-image pixels (through ``aligned.inverse``); a :class:`FaceRegions` stays one."""
    if isinstance(regions, FaceRegions):
        return regions.transformed(aligned.inverse)
    return {n: r.transformed(aligned.inverse) for n, r in regions.items()}


def region_masks(
    regions: Mapping[str, AURegion], shape: tuple[int, int], from_size: int | None = None
) -> dict[str, np.ndarray]:
    """Boolean masks of ``shape`` for each region. ``from_size``: the crop size the polygons are in, when the
    masks are wanted at another resolution (e.g. a 7x7 CAM grid of a 224 crop: ``shape=(7, 7), from_size=224``)."""
    scale = 1.0 if from_size is None else shape[0] / float(from_size)
    return {n: r.mask(shape, scale) for n, r in regions.items()}


def draw_regions(
    image_rgb: np.ndarray, regions: Mapping[str, AURegion], labels: bool = True, thickness: int = 1
) -> np.ndarray:
    """A copy of the image with the region outlines and their names drawn on it."""
    out = np.ascontiguousarray(image_rgb.copy())
    shift = 4
    scale = max(0.3, min(out.shape[:2]) / 600.0)
    for r in regions.values():
        color = REGION_COLORS.get(r.name, (255, 255, 255))
        pts = [np.round(p * (1 << shift)).astype(np.int32) for p in r.polygons]
        cv2.polylines(out, pts, True, color, thickness, cv2.LINE_AA, shift)
        if labels:
            x, y = r.polygons[0].min(axis=0)
            cv2.putText(out, r.name, (int(x), int(y) - 2), cv2.FONT_HERSHEY_SIMPLEX, scale, color, 1, cv2.LINE_AA)
    return out
