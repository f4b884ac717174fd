"""Explanations: why the model said what it said, and whether that "why" holds up.

Every explainer takes the model's normalised input ``x`` (``(N, C, H, W)``, what ``InferenceEngine.prepare``
returns, or :func:`crops_to_input`) and returns plain numpy, at the model's input size. Entry points (the ones
``bench/engine.py``, the CLI and the dashboard call)::

    explain_cam(model, x, targets=None, method="gradcam") -> np.ndarray (N, H, W) float32 in [0, 1]
        Grad-CAM family via pytorch-grad-cam; methods: list_cam_methods() = gradcam, gradcam++, hirescam,
        eigencam, layercam. targets: None (predicted class), one int, or one per input. Safe under
        torch.inference_mode(); hooks released after every call. compute_cam(...) also returns the
        targets and probabilities (CamResult).

    region_shap(model, x1, regions, target=None, *, baseline="blur", max_evals=512, rest=False,
                output="prob") -> RegionShapResult
        Shapley values of AU regions (players = {name: bool (H, W)} masks, e.g. region_masks_for(aligned,
        model.spec.input_size) or framing_masks(size)). Exact when 2^n <= max_evals, else antithetic
        permutation sampling within max_evals. .values sum to .f_x - .f_baseline; .pixel_map() for overlays.

    pixel_shap(model, x1, target=None, *, masker="blur", max_evals=500) -> PixelShapResult
        shap's Partition explainer with shap.maskers.Image ("blur", "blur(kx,ky)", "inpaint_telea",
        "inpaint_ns"); .values is an (H, W) signed map for the target class.

    agreement(map, masks, class_name) -> Agreement            # AU-region share / density / FACS lift
    agreement_records(model, faceset, method) -> DataFrame    # one row per image
    agreement_table(records) -> DataFrame                     # per class: "does it look at the brows for anger?"

    perturbation_curves(model, x, maps, mode="deletion"|"insertion") -> Curves   # with AUCs
    faithfulness(model, x, maps) -> dict                       # AUCs beside random maps'

    heatmap_overlay(crop, map, regions=...) / overlay_on_image(photo, map, aligned, regions=...) -> RGB uint8

``x1`` is one face (``(1, C, H, W)`` or ``(C, H, W)``). Definitions of every score: ``docs/explanations.md``.
"""

from core.explain._common import BASELINES, crops_to_input, make_baseline
from core.explain.au_agreement import (
    Agreement,
    agreement,
    agreement_records,
    agreement_table,
    region_attribution,
)
from core.explain.cam import (
    CamResult,
    compute_cam,
    explain_cam,
    get_cam_method,
    list_cam_methods,
    resize_maps,
)
from core.explain.faithfulness import Curves, faithfulness, perturbation_curves, random_maps
from core.explain.overlay import colorize, heatmap_overlay, outline_masks, overlay_on_image
from core.explain.regions import expected_regions, framing_masks, region_masks_for
from core.explain.shap_pixels import PIXEL_MASKERS, PixelShapResult, pixel_shap
from core.explain.shap_regions import RegionShapResult, region_shap, region_value_map

__all__ = [
    "BASELINES",
    "PIXEL_MASKERS",
    "Agreement",
    "CamResult",
    "Curves",
    "PixelShapResult",
    "RegionShapResult",
    "agreement",
    "agreement_records",
    "agreement_table",
    "colorize",
    "compute_cam",
    "crops_to_input",
    "expected_regions",
    "explain_cam",
    "faithfulness",
    "framing_masks",
    "get_cam_method",
    "heatmap_overlay",
    "list_cam_methods",
    "make_baseline",
    "outline_masks",
    "overlay_on_image",
    "perturbation_curves",
    "pixel_shap",
    "random_maps",
    "region_attribution",
    "region_masks_for",
    "region_shap",
    "region_value_map",
    "resize_maps",
]
