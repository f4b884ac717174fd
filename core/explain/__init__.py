"""Explanations: why the model said what it said (CAMs, region and pixel Shapley values), and whether that "why"
holds up (faithfulness curves, AU-region agreement). Every explainer takes the model's normalised input ``x``
(as ``InferenceEngine.prepare`` returns) and returns numpy at the model's input size; scores are defined in
``docs/explanations.md``.
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
from core.explain.overlay import colorize, heatmap_overlay, overlay_on_image
from core.explain.regions import crop_masks, expected_regions, framing_masks, region_masks_for
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
    "crop_masks",
    "crops_to_input",
    "expected_regions",
    "explain_cam",
    "faithfulness",
    "framing_masks",
    "get_cam_method",
    "heatmap_overlay",
    "list_cam_methods",
    "make_baseline",
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
