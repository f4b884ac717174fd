"""How much of an explanation falls on the action-unit regions FACS expects: the papers' claim, measured.

For any attribution map: per-region share and density of the positive evidence, the lift of the expected
regions over a uniform map, and a rank AUC over regions (definitions in ``docs/explanations.md``).
:func:`agreement_records` scores a dataset split, :func:`agreement_table` aggregates per class.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import cv2
import numpy as np
import pandas as pd
from torch import nn

from core.explain._common import crops_to_input, logits_fn
from core.explain.cam import explain_cam, get_cam_method
from core.explain.regions import expected_regions, rasterise
from core.faces.au_regions import regions_for_crop

log = logging.getLogger(__name__)

__all__ = [
    "Agreement",
    "region_attribution",
    "agreement",
    "agreement_records",
    "agreement_table",
]

SUMMARY = ("lift", "rank_auc", "expected_share", "expected_area", "share_outside", "top_region")
"""The :class:`Agreement` fields :func:`agreement_records` writes as columns (besides each region's)."""


@dataclass(frozen=True)
class Agreement:
    """Attribution per region and agreement with FACS for one map.

    Attributes:
        share, density, area: ``{region: value}`` (see the module docstring); ``share_outside``: in no region.
        expected: the regions FACS expects for ``class_name``.
        expected_share, expected_area: of the union of the expected regions.
        lift: ``expected_share / expected_area`` (the headline; 1 = chance).
        rank_auc: Mann-Whitney AUC of expected vs other regions' densities (0.5 = chance).
        top_region: the region with the highest density.
    """

    share: dict[str, float]
    density: dict[str, float]
    area: dict[str, float]
    share_outside: float
    class_name: str
    expected: tuple[str, ...]
    expected_share: float
    expected_area: float
    lift: float
    rank_auc: float
    top_region: str | None


def _fit_map(attribution: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    a = np.asarray(attribution, dtype=np.float64)
    if a.ndim != 2:
        raise ValueError(f"an attribution map is (H, W), got shape {a.shape}")
    if a.shape != shape:
        a = cv2.resize(a, (shape[1], shape[0]), interpolation=cv2.INTER_LINEAR)
    return a


def region_attribution(
    attribution: np.ndarray, masks: Mapping[str, np.ndarray]
) -> tuple[dict[str, float], dict[str, float], dict[str, float], float]:
    """``(share, density, area, share_outside)`` of a map's positive part over the region masks.

    The map is resized (bilinear) to the masks' size when they differ.
    """
    if not masks:
        raise ValueError("no region masks given")
    shape = next(iter(masks.values())).shape
    pos = np.maximum(_fit_map(attribution, shape), 0.0)
    total = float(pos.sum())
    n_px = float(pos.size)
    share, density, area = {}, {}, {}
    union = np.zeros(shape, dtype=bool)
    for name, m in masks.items():
        m = np.asarray(m, dtype=bool)
        if m.shape != shape:
            raise ValueError(f"mask {name!r} is {m.shape}, others are {shape}")
        union |= m
        area[name] = float(m.sum()) / n_px
        share[name] = float(pos[m].sum()) / total if total > 0 else float("nan")
        density[name] = share[name] / area[name] if area[name] > 0 else float("nan")
    outside = float(pos[~union].sum()) / total if total > 0 else float("nan")
    return share, density, area, outside


def _rank_auc(density: Mapping[str, float], expected: Sequence[str]) -> float:
    exp = [density[r] for r in density if r in expected]
    other = [density[r] for r in density if r not in expected]
    if not exp or not other or any(np.isnan(exp)) or any(np.isnan(other)):
        return float("nan")
    e, o = np.asarray(exp)[:, None], np.asarray(other)[None, :]
    return float(((e > o) + 0.5 * (e == o)).mean())


def agreement(attribution: np.ndarray, masks: Mapping[str, np.ndarray], class_name: str) -> Agreement:
    """Region attribution of one map and its agreement with the AUs FACS expects for ``class_name``."""
    share, density, area, outside = region_attribution(attribution, masks)
    expected = tuple(r for r in expected_regions(class_name) if r in masks)
    if expected:  # the union of the expected regions as one region: its density is the lift
        union = np.any([np.asarray(masks[r], bool) for r in expected], axis=0)
        u_share, u_density, u_area, _ = region_attribution(attribution, {"expected": union})
        exp_share, lift, exp_area = u_share["expected"], u_density["expected"], u_area["expected"]
    else:
        exp_share = exp_area = lift = float("nan")
    finite = {k: v for k, v in density.items() if np.isfinite(v)}
    top = max(finite, key=finite.get) if finite else None
    return Agreement(
        share,
        density,
        area,
        outside,
        class_name,
        expected,
        exp_share,
        exp_area,
        lift,
        _rank_auc(density, expected),
        top,
    )


def agreement_records(
    model: nn.Module,
    data,
    method: str | Callable = "gradcam",
    *,
    masks: Mapping[str, np.ndarray] | None = None,
    framing: str = "fer2013",
    mesh: bool = True,
    explain: str = "predicted",
    batch_size: int = 64,
    limit: int | None = None,
) -> pd.DataFrame:
    """One row per image (of the first ``limit``): label, prediction, explained class, lift, rank AUC, share and
    density per region.

    Args:
        data: a FaceSet-like object (``.images`` uint8 ``(N, H, W[, 3])`` crops and ``.labels``) or a tuple
            ``(images, labels)``.
        method: a CAM method name or a callable ``(model, x, targets) -> (N, H, W) maps``.
        masks: region masks at the model's input size, the same for every image; default: each image's own
            regions, from the face mesh fitted on the crop (``mesh=True``), else the typical landmarks of
            ``framing`` (column ``regions`` says which).
        explain: ``"predicted"`` (the class the model chose: does its evidence match FACS for its own claim?)
            or ``"label"`` (the true class).
    """
    images, labels = (data.images, data.labels) if hasattr(data, "images") else data
    images = np.asarray(images)
    labels = np.asarray(labels, dtype=np.int64)
    if limit is not None:
        images, labels = images[:limit], labels[:limit]
    if len(images) != len(labels):
        raise ValueError(f"{len(images)} images but {len(labels)} labels")
    if explain not in ("predicted", "label"):
        raise ValueError(f"explain must be 'predicted' or 'label', got {explain!r}")
    names = model.spec.class_names
    size = int(model.spec.input_size)
    fixed = dict(masks) if masks is not None else None
    run = method if callable(method) else functools.partial(explain_cam, method=get_cam_method(method).name)
    rows = []
    for s in range(0, len(images), batch_size):
        x = crops_to_input(model, images[s : s + batch_size])
        preds = logits_fn(model, batch_size=batch_size)(x).argmax(1).numpy()
        targets = preds if explain == "predicted" else labels[s : s + batch_size]
        maps = run(model, x, targets)
        for i, (m, t) in enumerate(zip(maps, targets, strict=True)):
            if fixed is None:
                regions = regions_for_crop(images[s + i], framing, mesh=mesh)
                face_masks, source = rasterise(regions, size, images[s + i].shape[0]), regions.source
            else:
                face_masks, source = fixed, "given"
            a = agreement(m, face_masks, names[int(t)])
            row = {
                "index": s + i,
                "regions": source,
                "label": names[int(labels[s + i])],
                "predicted": names[int(preds[i])],
                "explained": a.class_name,
            }
            row.update({k: getattr(a, k) for k in SUMMARY})
            row.update({f"share_{r}": v for r, v in a.share.items()})
            row.update({f"density_{r}": v for r, v in a.density.items()})
            rows.append(row)
    return pd.DataFrame(rows)


def agreement_table(records: pd.DataFrame, class_names: Sequence[str] | None = None) -> pd.DataFrame:
    """Per explained class: n, mean lift (+ standard error), mean rank AUC, mean density/share per region,
    and the most frequent top region. Classes in ``class_names`` order (default: as they appear)."""
    if records.empty:
        raise ValueError("no records to aggregate")
    order = list(class_names) if class_names is not None else list(dict.fromkeys(records["explained"]))
    dens = [c for c in records.columns if c.startswith("density_")]
    share = [c for c in records.columns if c.startswith("share_") and c != "share_outside"]
    g = records.groupby("explained", sort=False)
    means = ("rank_auc", "expected_share", "expected_area", "share_outside")
    table = pd.DataFrame(
        {
            "n": g.size(),
            "expected_regions": pd.Series({c: ", ".join(expected_regions(c)) or "-" for c in g.groups}),
            "lift": g["lift"].mean(),
            "lift_se": g["lift"].sem(),
            **{c: g[c].mean() for c in means},
            "top_region": g["top_region"].agg(lambda s: s.mode().iloc[0] if s.notna().any() else None),
            **{c: g[c].mean() for c in dens + share},
        }
    )
    return table.loc[[c for c in order if c in table.index]].rename_axis("class")
