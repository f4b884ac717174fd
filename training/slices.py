"""Error rates by image condition ("slices"), each with a Wilson 95 % interval, for the results JSON.

Measured per image on the dataset crop (:data:`DESCRIPTIONS`); face size is not measurable on a pre-cropped set.
``training.evaluate --slices`` writes the per-image values into ``predictions`` and the bins into ``slices``;
:func:`row_bins` turns them back into one bin label per image (the error explorer's filters).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd

QUANTILES = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)
"""Brightness, blur and pitch are cut at the evaluated set's quintiles (their scales have no fixed meaning)."""
YAW_EDGES = (0.0, 5.0, 10.0, 20.0, 90.0)
"""Yaw is cut by its magnitude in degrees (0 = frontal), fixed so two results are comparable."""
NO_MESH = "no mesh"

COLUMNS = {
    "brightness": "brightness",
    "blur": "blur",
    "yaw": "yaw_deg",
    "pitch": "pitch_deg",
    "mesh_fit": "mesh_fit",
}
"""Slice name -> the ``predictions`` column holding its per-image value."""

DESCRIPTIONS = {
    "brightness": "mean gray level of the crop (0-255), quintiles of this set",
    "blur": "variance of the Laplacian of the crop (low = blurry), quintiles of this set",
    "yaw": "|head yaw| in degrees from the face mesh fitted on the crop (rows without a trusted mesh: 'no mesh')",
    "pitch": "head pitch in degrees from the face mesh (forehead vs chin depth; + = chin up), quintiles of this "
    "set; relative only, the mesh's zero is not the camera's on 48-px crops",
    "mesh_fit": "whether the 468-point mesh fits the crop: a proxy for a visible, unoccluded face, not measured "
    "occlusion (no label for it exists here)",
}


def measure(images: np.ndarray, framing: str = "fer2013") -> pd.DataFrame:
    """Per-image brightness, blur, yaw/pitch (NaN without a trusted mesh) and ``mesh_fit`` of uint8 ``(N, H, W)``
    gray or ``(N, H, W, 3)`` RGB crops; the mesh starts from ``framing``'s five points (``CROP_MESH_CONFIG``)."""
    import cv2

    from core.faces.align import framing_points
    from core.faces.au_regions import CROP_MESH_CONFIG
    from core.faces.mesh import fit_mesh

    rows = []
    for img in np.asarray(images):
        rgb = np.ascontiguousarray(np.repeat(img[..., None], 3, axis=2) if img.ndim == 2 else img)
        gray = img if img.ndim == 2 else cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
        row = {
            "brightness": float(gray.mean()),
            "blur": float(cv2.Laplacian(gray.astype(np.float64), cv2.CV_64F).var()),
            "yaw_deg": math.nan,
            "pitch_deg": math.nan,
            "mesh_fit": False,
        }
        fit = fit_mesh(rgb, framing_points(gray.shape[0], framing), CROP_MESH_CONFIG)
        if fit.ok:
            p = fit.points
            row |= {
                "yaw_deg": float(fit.yaw_deg),
                "pitch_deg": math.degrees(math.atan2(p[10, 2] - p[152, 2], p[152, 1] - p[10, 1])),
                "mesh_fit": True,
            }
        rows.append(row)
    return pd.DataFrame(rows, columns=list(COLUMNS.values()))


def _edges(name: str, values: np.ndarray) -> list[float] | None:
    if name == "mesh_fit":
        return None
    if name == "yaw":
        return list(YAW_EDGES)
    finite = values[np.isfinite(values)]
    return np.unique(np.quantile(finite, QUANTILES)).tolist() if finite.size else []


def _value(name: str, values: np.ndarray) -> np.ndarray:
    return np.abs(values) if name == "yaw" else values


def assign(name: str, values: Sequence, edges: Sequence[float] | None) -> list[str]:
    """One bin label per value: ``"lo-hi"`` (every bin holds its lower edge; the last also its upper), ``NO_MESH``
    for a missing yaw/pitch, ``"fits"``/``"rejected"`` for ``mesh_fit``. Bins partition the values."""
    if name == "mesh_fit":
        return ["fits" if bool(v) else "rejected" for v in values]
    v = _value(name, np.array([np.nan if x is None else x for x in values], dtype=np.float64))
    labels = _labels(edges)
    k = np.clip(np.searchsorted(np.asarray(edges, np.float64), v, side="right") - 1, 0, max(len(labels) - 1, 0))
    return [NO_MESH if not np.isfinite(x) or not labels else labels[i] for x, i in zip(v, k, strict=True)]


def _labels(edges: Sequence[float] | None) -> list[str]:
    if not edges or len(edges) < 2:
        return []
    digits = 0 if max(abs(e) for e in edges) >= 100 else 1
    return [f"{lo:.{digits}f}–{hi:.{digits}f}" for lo, hi in zip(edges[:-1], edges[1:], strict=True)]


def slice_report(attrs: pd.DataFrame, correct: np.ndarray, alpha: float = 0.05, crop_side: int | None = None) -> dict:
    """The ``slices`` object: per attribute its edges and one row per bin (n, errors, error rate, Wilson CI)."""
    from statsmodels.stats.proportion import proportion_confint

    wrong = ~np.asarray(correct, bool)
    out: dict = {}
    for name, col in COLUMNS.items():
        raw = attrs[col].to_numpy()
        edges = _edges(name, _value(name, raw.astype(np.float64)))
        labels = assign(name, raw, edges)
        order = ["fits", "rejected"] if name == "mesh_fit" else [*_labels(edges), NO_MESH]
        bins = []
        for label in order:
            sel = np.array([x == label for x in labels])
            n, e = int(sel.sum()), int(wrong[sel].sum())
            if n == 0 and label in (NO_MESH, "rejected"):
                continue
            lo, hi = proportion_confint(e, n, alpha=alpha, method="wilson") if n else (None, None)
            bins.append(
                {"label": label, "n": n, "errors": e, "error_rate": e / n if n else None,
                 "ci_low": None if lo is None else float(lo), "ci_high": None if hi is None else float(hi)}
            )  # fmt: skip
        out[name] = {"description": DESCRIPTIONS[name], "measurable": True, "edges": edges, "bins": bins}
    side = f"{crop_side}x{crop_side} px" if crop_side else "the crop"
    out["face_size"] = {
        "description": "face width in pixels",
        "measurable": False,
        "reason": f"every image is a pre-cropped face of {side}, framed alike: face size is constant here",
        "edges": None,
        "bins": [],
    }
    fitted = int(attrs["mesh_fit"].sum())
    return {
        "ci": f"Wilson {100 * (1 - alpha):.0f} % interval of each bin's error rate",
        "n": len(attrs),
        "mesh": {"fitted": fitted, "rate": fitted / len(attrs) if len(attrs) else None},
        "attributes": out,
    }


def prediction_columns(attrs: pd.DataFrame) -> dict[str, list]:
    """The per-image values as ``predictions`` columns (JSON: NaN -> null, rounded)."""
    cols = {
        col: [None if not np.isfinite(x) else round(float(x), 3) for x in attrs[col].to_numpy(np.float64)]
        for col in COLUMNS.values()
        if col != "mesh_fit"
    }
    return cols | {"mesh_fit": [bool(x) for x in attrs["mesh_fit"]]}


def row_bins(d: dict) -> pd.DataFrame | None:
    """One bin label per image and measurable slice, indexed by image id (None: the file has no slices)."""
    sl, pr = d.get("slices"), d["predictions"]
    if not sl:
        return None
    out = {}
    for name, entry in sl["attributes"].items():
        col = COLUMNS.get(name)
        if entry.get("measurable") and col in pr:
            out[name] = assign(name, pr[col], entry["edges"])
    return pd.DataFrame(out, index=pd.Index([int(i) for i in pr["id"]], name="id"))
