"""AU-region masks at the model's input size, as ``{name: bool (H, W)}`` so explainers ignore where they came from:
an aligned face's (:func:`region_masks_for`), a pre-cropped face's (:func:`crop_masks`: FER2013 rows,
``--assume-cropped``) or a framing's typical landmarks' (:func:`framing_masks`). Regions covering no pixel are left out.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

import numpy as np

from core.faces.align import AlignedFace, framing_points
from core.faces.au_regions import (
    AU_REGION,
    EXPECTED_AUS,
    REGION_NAMES,
    AURegion,
    au_regions,
    region_masks,
    regions_for,
    regions_for_crop,
)
from core.faces.mesh import MeshFit

log = logging.getLogger(__name__)

__all__ = [
    "crop_masks",
    "framing_masks",
    "rasterise",
    "region_masks_for",
    "expected_regions",
]


def framing_masks(size: int, framing: str = "fer2013") -> dict[str, np.ndarray]:
    """``{region: bool (size, size)}`` for a pre-cropped face of that framing (no detection needed), from the points
    the Detector aligns live faces to: regions on a FER2013 row and on a live face cropped alike match."""
    return rasterise(au_regions(framing_points(size, framing)), size, size)


def region_masks_for(
    aligned: AlignedFace,
    size: int | None = None,
    clip_to_box: bool = True,
    image: np.ndarray | None = None,
    mesh: bool | MeshFit = True,
) -> dict[str, np.ndarray]:
    """``{region: bool (size, size)}`` for an aligned face (``image``, ``mesh``: see ``core.faces.regions_for``);
    polygons are rasterised at ``size`` (default: the crop's) rather than masks downsampled from a larger crop."""
    size = aligned.output_size if size is None else int(size)
    return rasterise(regions_for(aligned, image, mesh=mesh, clip_to_box=clip_to_box), size, aligned.output_size)


def crop_masks(
    crop: np.ndarray, size: int | None = None, framing: str = "fer2013", mesh: bool = True
) -> dict[str, np.ndarray]:
    """``{region: bool (size, size)}`` for a pre-cropped face (:func:`core.faces.au_regions.regions_for_crop`)."""
    crop_size = int(np.asarray(crop).shape[0])
    return rasterise(regions_for_crop(crop, framing, mesh=mesh), crop_size if size is None else size, crop_size)


def rasterise(regions: Mapping[str, AURegion], size: int, from_size: int) -> dict[str, np.ndarray]:
    """``{region: bool (size, size)}`` of regions drawn in a ``from_size`` crop, without the regions that cover no
    pixel (possible at 48 px for thin polygons), in order."""
    masks = region_masks(regions, (int(size), int(size)), from_size=int(from_size))
    empty = [k for k, m in masks.items() if not m.any()]
    if empty:
        log.debug("regions %s cover no pixel at this size; left out", empty)
    return {k: m for k, m in masks.items() if k not in empty}


def expected_regions(class_name: str) -> tuple[str, ...]:
    """The regions where FACS expects the AUs of ``class_name`` (``EXPECTED_AUS`` -> ``AU_REGION``), in
    :data:`REGION_NAMES` order; empty for ``neutral`` (no AUs expected)."""
    if class_name not in EXPECTED_AUS:
        raise ValueError(f"unknown class {class_name!r}; choose one of {list(EXPECTED_AUS)}")
    wanted = {AU_REGION[au] for au in EXPECTED_AUS[class_name] if au in AU_REGION}
    return tuple(r for r in REGION_NAMES if r in wanted)
