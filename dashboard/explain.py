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
PIXEL_METHODS = ("pixel_shap",)
CAM_FALLBACK = "gradcam"
"""What the live page uses when the sidebar's method is a (too slow for video) SHAP method."""


def is_cam(method: str) -> bool:
    return method not in REGION_METHODS + PIXEL_METHODS


@dataclass(frozen=True)
class Explanation:
    """What a page draws for one face.

    Attributes:
        method: the method's registry name.
        target: the class index explained.
        heat: ``(S, S)`` float32 at the model's input size (resize it to draw): in [0, 1] for CAMs, signed
            (evidence for / against the class) for SHAP methods.
        signed: whether ``heat`` is signed (draw it with a diverging colour scale).
        region_values: AU region -> attribution (region methods only), largest first.
    """

    method: str
    target: int
    heat: np.ndarray
    signed: bool = False
    region_values: dict[str, float] = field(default_factory=dict)


def available_methods() -> list[str]:
    """CAM methods registered in ``core.explain`` plus its perturbation methods (region and pixel SHAP)."""
    try:
        from core.explain import list_cam_methods
    except ImportError as exc:
        log.info("explanations unavailable: %s", exc)
        return []
    return [*list_cam_methods(), *REGION_METHODS, *PIXEL_METHODS]


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
    steps=None,
    max_evals: int = 256,
) -> Explanation:
    """Explain one face crop (uint8 RGB or gray, any size) with ``method`` for class ``target`` (None = predicted).

    Args:
        engine: the :class:`core.engine.InferenceEngine` whose model is explained.
        crop: the face as the model sees it before resizing (an aligned crop or a FER2013 image).
        method: a name from :func:`available_methods`.
        masks: AU-region masks at the model's input size (region methods); default: FER2013 framing.
        steps: the photometric preprocessing the prediction used (None: the model's own), so the
            explanation explains the same input.
        max_evals: model evaluations allowed for the SHAP methods.
    """
    import core.explain as E

    x = engine.prepare([crop], steps)
    size = engine.spec.input_size
    with engine.exclusive() as model:  # hooks and many forwards: keep other sessions off the model meanwhile
        if method in REGION_METHODS:
            regions = dict(masks) if masks is not None else fer_masks(size)
            res = E.region_shap(model, x, regions, target, max_evals=max_evals)
            values = {k: float(v) for k, v in zip(res.names, res.values, strict=True)}
            ordered = dict(sorted(values.items(), key=lambda kv: kv[1], reverse=True))
            heat = np.asarray(res.pixel_map(per_area=True), dtype=np.float32)
            return Explanation(method, int(res.target), heat, True, ordered)
        if method in PIXEL_METHODS:
            res = E.pixel_shap(model, x, target, max_evals=max(max_evals, 3))
            return Explanation(method, int(res.target), np.asarray(res.values, np.float32), True)
        res = E.compute_cam(model, x, target, method)
    return Explanation(method, int(res.targets[0]), res.maps[0].astype(np.float32))
