"""From pixels to what the upload, video and ablation pages draw: faces, labels, explanations, tables.

The face pipeline itself is ``core.detector.Detector`` (the same one the CLI and the API use; "alignment off" is its
``framing="box"``); this module adds only what the pages need around it: display-size crops, explanations with AU
regions and their FACS agreement, the annotated photo and the per-face table.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np
import pandas as pd

from dashboard.drawing import BoxLabel, draw_faces, upscale
from dashboard.explain import explain_crop

DISPLAY_SIZE = 192
"""Side of the face crops shown on the pages (the model's own crop is often 48 px)."""


@dataclass(frozen=True, eq=False)
class ImageAnalysis:
    """One photo analysed: the pixels, one ``core.detector.FaceResult`` per face, and the annotated photo."""

    name: str
    rgb: np.ndarray
    faces: list
    class_names: tuple[str, ...]
    annotated: np.ndarray
    table: pd.DataFrame = field(repr=False)
    model_inputs: tuple[np.ndarray, ...] = field(repr=False)
    """Per face, the pixels the model gets (:func:`model_input_image`), in the order of ``faces``."""
    aligned: bool = True


def analyze_rgb(detector, rgb: np.ndarray, name: str = "image") -> ImageAnalysis:
    """Detect, crop (aligned, or the plain box when ``detector.framing`` is ``"box"``), classify; draw and
    tabulate."""
    results = sorted(detector.analyze_faces(rgb), key=lambda r: r.face.box[0])  # numbered left to right
    names = tuple(detector.class_names)
    boxes = [BoxLabel(r.face.box, i + 1, r.label, r.score) for i, r in enumerate(results)]
    table = face_table(name, results, names, detector.provenance)
    inputs = tuple(model_input_image(detector.engine, r.aligned.image, detector.steps) for r in results)
    return ImageAnalysis(name, rgb, results, names, draw_faces(rgb, boxes), table, inputs, detector.framing != "box")


def model_input_image(engine, crop: np.ndarray, steps=None) -> np.ndarray:
    """``ModelSpec.pixels`` of ``crop`` (the uint8 half of the transform the engine runs): the ``(S, S)`` gray or
    ``(S, S, 3)`` pixels the network receives, so the page shows exactly that, not a display crop."""
    pixels = engine.spec.pixels([crop], steps)[0].numpy()
    return pixels[0] if pixels.shape[0] == 1 else np.ascontiguousarray(pixels.transpose(1, 2, 0))


def expand_uploads(uploads: list[tuple[str, bytes]]) -> tuple[list[tuple[str, bytes]], list[str], list[Exception]]:
    """Uploaded files -> ``(photos, skipped, errors)``: ZIPs opened (``core.io.read_image_archive``, a photo in
    ``a.zip`` named ``a.zip/dir/photo.jpg``), photos as is. ``skipped`` lists what ZIPs held besides images, ``errors``
    one ``core.io.ArchiveError`` per unusable ZIP (empty, a bomb, not a ZIP) with the ZIP's name as ``source``.
    """
    from core.io import ArchiveError, read_image_archive

    photos, skipped, errors = [], [], []
    for name, data in uploads:
        if not name.lower().endswith(".zip"):
            photos.append((name, data))
            continue
        try:
            contents = read_image_archive(data, name=name)
        except ArchiveError as exc:
            errors.append(exc)
            continue
        photos += [(f"{name}/{member}", b) for member, b in contents.images]
        skipped += [f"{name}/{line}" for line in contents.skipped]
    return photos, skipped, errors


def batch_table(analyses: list[ImageAnalysis]) -> pd.DataFrame:
    """The per-face tables of several photos as one (the CSV of a folder or a ZIP)."""
    tables = [a.table for a in analyses if not a.table.empty]
    return pd.concat(tables, ignore_index=True) if tables else pd.DataFrame()


def face_table(name: str, results: list, class_names: tuple[str, ...], provenance: dict) -> pd.DataFrame:
    """One row per face: number, box, label, its probability, every class probability, detector score, and
    the model and weights (``provenance``) that made the row."""
    rows = []
    for i, r in enumerate(results):
        x, y, w, h = r.face.box
        row = {"input": name, "face": i + 1, "x": x, "y": y, "w": w, "h": h, "label": r.label, "score": r.score}
        row.update({c: float(p) for c, p in zip(class_names, r.probs, strict=True)})
        row["face_score"] = r.face.score
        row.update(provenance)
        rows.append(row)
    cols = ["input", "face", "x", "y", "w", "h", "label", "score", *class_names, "face_score", *provenance]
    return pd.DataFrame(rows, columns=cols)


def display_crop(rgb: np.ndarray, result, align: bool, size: int = DISPLAY_SIZE):
    """The model's crop of this face re-made at ``size`` px (same geometry, sharper) for display and regions."""
    if not align:
        from core.detector import box_crop

        return box_crop(rgb, result.face, size)
    up = np.vstack([_enlarge(size / result.aligned.output_size), [0.0, 0.0, 1.0]])
    matrix = (up @ np.vstack([result.aligned.matrix, [0.0, 0.0, 1.0]]))[:2]
    from core.faces import AlignedFace, transform_points
    from core.faces.align import invert_affine

    crop = cv2.warpAffine(rgb, matrix, (size, size), flags=cv2.INTER_CUBIC)
    lm = transform_points(result.face.landmarks, matrix).astype(np.float32)
    return AlignedFace(crop, matrix, invert_affine(matrix), lm, result.face, lm.copy())


def _enlarge(k: float) -> np.ndarray:
    """The affine ``(2, 3)`` that enlarges a crop ``k`` times about pixel centres: ``u' = (u + 0.5) * k - 0.5``."""
    return np.array([[k, 0.0, 0.5 * k - 0.5], [0.0, k, 0.5 * k - 0.5]])


@dataclass(frozen=True, eq=False)
class FaceExplanation:
    """One face explained: overlays on the crop and the photo, the AU agreement of the map, and where the AU
    regions came from (``regions_note``; ``regions_fallback`` when not from the face mesh)."""

    method: str
    target: str
    crop_overlay: np.ndarray
    agreement: pd.DataFrame
    summary: dict
    map: np.ndarray = field(repr=False)
    signed: bool = False
    regions_note: str = ""
    regions_fallback: bool = False
    mesh: object = field(default=None, repr=False)
    """The face's ``core.faces.MeshFit`` (photo pixels), reused for the photo overlay; ``None`` for dataset crops."""


def explain_face(detector, rgb: np.ndarray, result, method: str) -> FaceExplanation:
    """Explain the predicted class of one face ``detector`` analysed with ``method`` and measure its FACS agreement.

    The map is computed on the model's own crop (``result.aligned``); the AU regions come from the face mesh
    fitted once on the photo (or the five landmarks when it cannot fit) and are placed on that crop, so the
    agreement is measured where the model looked.
    """
    from core.explain import region_masks_for
    from core.faces import fit_mesh, regions_for

    engine = detector.engine
    fit = fit_mesh(rgb, result.face.landmarks)
    masks = region_masks_for(result.aligned, size=engine.spec.input_size, mesh=fit)
    target = int(np.argmax(result.probs))
    ex = explain_crop(engine, result.aligned.image, method, target=target, masks=masks, steps=detector.steps)
    shown = display_crop(rgb, result, detector.framing != "box")
    return _explained(engine, method, ex, masks, shown.image, regions_for(shown, mesh=fit), fit)


def _explained(engine, method: str, ex, masks, shown: np.ndarray, regions, mesh=None) -> FaceExplanation:
    """``ex`` (``dashboard.explain.explain_crop``'s) drawn on ``shown`` with ``regions``, and its FACS agreement."""
    from core.explain import agreement, heatmap_overlay

    overlay = heatmap_overlay(shown, ex.heat, alpha=0.45, signed=ex.signed, regions=regions)
    name = engine.class_names[ex.target]
    agree = agreement(ex.heat, masks, name)
    summary = {
        "class": agree.class_name,
        "expected": ", ".join(agree.expected) or "none (neutral)",
        "lift": agree.lift,
        "top_region": agree.top_region,
    }
    return FaceExplanation(
        method, name, overlay, agreement_frame(agree), summary, ex.heat, ex.signed, regions.note, regions.fallback, mesh
    )


def agreement_frame(agree) -> pd.DataFrame:
    """The per-region part of a ``core.explain.Agreement`` as a table, expected regions flagged."""
    rows = [
        {
            "region": r,
            "expected": r in agree.expected,
            "share": agree.share[r],
            "density": agree.density[r],
            "area": agree.area[r],
        }
        for r in agree.share
    ]
    return pd.DataFrame(rows).sort_values("density", ascending=False, na_position="last").reset_index(drop=True)


def photo_overlay(rgb: np.ndarray, results: list, explanations: list[FaceExplanation]) -> np.ndarray:
    """Every face's map carried back onto the photo (with its AU regions outlined), then the boxes on top."""
    from core.explain import overlay_on_image
    from core.faces import regions_for

    out = rgb
    for r, ex in zip(results, explanations, strict=True):
        regions = regions_for(r.aligned, rgb, mesh=ex.mesh if ex.mesh is not None else True)
        out = overlay_on_image(out, ex.map, r.aligned, alpha=0.45, signed=ex.signed, regions=regions)
    boxes = [BoxLabel(r.face.box, i + 1, r.label, r.score) for i, r in enumerate(results)]
    return draw_faces(out, boxes)


def explain_dataset_crop(engine, image: np.ndarray, method: str, target: int, size: int = 240) -> FaceExplanation:
    """Explain a pre-cropped dataset face (FER2013 framing), with its AU regions and FACS agreement.

    Dataset crops have no detection: the face mesh is fitted on the crop itself, starting from where faces sit
    in FER2013's framing; when it cannot fit, the regions are those typical positions
    (``core.faces.regions_for_crop``), as in the evaluation's agreement numbers.
    """
    from core.explain.regions import rasterise
    from core.faces import regions_for_crop

    regions = regions_for_crop(image, "fer2013")
    masks = rasterise(regions, engine.spec.input_size, image.shape[0])
    ex = explain_crop(engine, image, method, target=target, masks=masks)
    shown = upscale(image, size)
    return _explained(engine, method, ex, masks, shown, regions.transformed(_enlarge(shown.shape[0] / image.shape[0])))
