"""One call from the pages to ``core.explain``: explain a face crop with the sidebar's method.

The pages do not care whether a method is a CAM (gradients through hooks) or a perturbation method (region
SHAP); they get a ``[0, 1]`` heat map at the crop's size plus, for region methods, a value per AU region.
Hook-based methods run under :meth:`core.engine.InferenceEngine.exclusive`, because their hooks would
otherwise see other sessions' forward passes on the shared model.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

log = logging.getLogger(__name__)

REGION_METHODS = ("region_shap",)


@dataclass(frozen=True)
class Explanation:
    """What a page draws for one face.

    Attributes:
        method: the method's registry name.
        target: the class index explained.
        heat: ``(S, S)`` float32 in [0, 1] at the model's input size (resize it to draw).
        region_values: AU region -> attribution (region methods only), largest first.
    """

    method: str
    target: int
    heat: np.ndarray
    region_values: dict[str, float] = field(default_factory=dict)


def available_methods() -> list[str]:
    """CAM methods registered in ``core.explain.cam`` plus the perturbation methods that are installed."""
    methods: list[str] = []
    try:
        from core.explain.cam import list_cam_methods

        methods += list(list_cam_methods())
    except ImportError as exc:
        log.info("CAM methods unavailable: %s", exc)
    try:
        from core.explain.shap_regions import region_shap  # noqa: F401

        methods += list(REGION_METHODS)
    except ImportError as exc:
        log.info("region SHAP unavailable: %s", exc)
    return methods


def fer_masks(size: int) -> dict[str, np.ndarray]:
    """AU-region masks for a pre-cropped FER2013-framed face of ``size`` pixels (no landmarks needed)."""
    from core.explain.regions import framing_masks

    return framing_masks(size, "fer2013")


def aligned_masks(aligned, size: int) -> dict[str, np.ndarray]:
    """AU-region masks of an aligned face, rasterised at the model's input size."""
    from core.explain.regions import region_masks_for

    return region_masks_for(aligned, size=size)


def explain_crop(
    engine,
    crop: np.ndarray,
    method: str,
    target: int | None = None,
    masks: Mapping[str, np.ndarray] | None = None,
    max_evals: int = 256,
) -> Explanation:
    """Explain one face crop (uint8 RGB or gray, any size) with ``method`` for class ``target`` (None = predicted).

    Args:
        engine: the :class:`core.engine.InferenceEngine` whose model is explained.
        crop: the face as the model sees it before resizing (an aligned crop or a FER2013 image).
        method: a name from :func:`available_methods`.
        masks: AU-region masks at the model's input size (region methods); default: FER2013 framing.
        max_evals: model evaluations allowed for region SHAP (exact when 2^regions fits).
    """
    x = engine.prepare([crop])
    size = engine.spec.input_size
    if method in REGION_METHODS:
        from core.explain.shap_regions import region_shap

        regions = dict(masks) if masks is not None else fer_masks(size)
        with engine.exclusive() as model:
            res = region_shap(model, x, regions, target, max_evals=max_evals)
        values = {k: float(v) for k, v in zip(res.names, res.values, strict=True)}
        heat = np.asarray(res.pixel_map(per_area=True), dtype=np.float32)
        heat = np.clip(heat, 0, None)
        peak = float(heat.max())
        heat = heat / peak if peak > 0 else heat
        ordered = dict(sorted(values.items(), key=lambda kv: kv[1], reverse=True))
        return Explanation(method, int(res.target), heat.astype(np.float32), ordered)
    from core.explain.cam import compute_cam

    with engine.exclusive() as model:
        res = compute_cam(model, x, target, method)
    return Explanation(method, int(res.targets[0]), res.maps[0].astype(np.float32))
