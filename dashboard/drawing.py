"""Drawing on images for the pages: numbered face boxes with labels, enlarged crops, PNG encoding.

Pure numpy/OpenCV on ``(H, W, 3)`` uint8 RGB, returning new arrays; text and line sizes scale with the image.
Heat-map overlays are ``core.explain``'s.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from dashboard.charts import rgb_of


@dataclass(frozen=True)
class BoxLabel:
    """One face to draw: box ``(x, y, w, h)`` in image pixels, its number and what the model said."""

    box: tuple[float, float, float, float]
    number: int
    label: str = ""
    confidence: float | None = None


def _scale(image: np.ndarray) -> float:
    return max(0.55, min(image.shape[:2]) / 500.0)


def draw_faces(image_rgb: np.ndarray, faces: Sequence[BoxLabel]) -> np.ndarray:
    """Boxes in the label's colour with ``#n label 83%`` on a filled tag above (inside when at the top edge)."""
    out = np.ascontiguousarray(image_rgb.copy())
    s = _scale(out)
    thick = max(1, round(2 * s))
    font, fscale = cv2.FONT_HERSHEY_SIMPLEX, 0.55 * s
    for f in faces:
        x, y, w, h = (round(v) for v in f.box)
        color = rgb_of(f.label) if f.label else (255, 255, 255)
        cv2.rectangle(out, (x, y), (x + w, y + h), color, thick, cv2.LINE_AA)
        text = f"#{f.number}"
        if f.label:
            text += f" {f.label}"
        if f.confidence is not None:
            text += f" {f.confidence:.0%}"
        (tw, th), base = cv2.getTextSize(text, font, fscale, max(1, thick // 2))
        top = y - th - base - 2 * thick
        if top < 0:  # no room above the box: put the tag just inside it
            top = y
        cv2.rectangle(out, (x, top), (x + tw + 2 * thick, top + th + base + 2 * thick), color, -1)
        ink = (0, 0, 0) if sum(color) > 380 else (255, 255, 255)
        cv2.putText(out, text, (x + thick, top + th + thick), font, fscale, ink, max(1, thick // 2), cv2.LINE_AA)
    return out


def upscale(image: np.ndarray, size: int = 192) -> np.ndarray:
    """Enlarge a small crop (48 px FER2013) for display, nearest-neighbour so pixels stay honest."""
    if image.ndim == 2:
        image = np.repeat(image[..., None], 3, axis=2)
    h, w = image.shape[:2]
    if max(h, w) >= size:
        return image
    k = size / max(h, w)
    return cv2.resize(image, (round(w * k), round(h * k)), interpolation=cv2.INTER_NEAREST)


STREAMLIT_MAX_WIDTH = 1460
"""``st.image`` shrinks anything wider than this (``streamlit.elements.lib.image_utils.MAXIMUM_CONTENT_WIDTH``)."""


def displayable(image: np.ndarray, max_width: int = STREAMLIT_MAX_WIDTH) -> np.ndarray:
    """``image`` padded with grey rows when ``st.image`` would shrink it to 0 px tall (and Pillow would refuse).

    A valid photo 5000 px wide and 1 px tall is analysed fine, but Streamlit scales it to 1460 px wide and
    ``int(1 * 1460 / 5000) == 0`` rows. Padding keeps every original pixel and makes the strip visible.
    """
    h, w = image.shape[:2]
    rows = -(-w // max_width)  # the fewest rows that survive the shrink as at least one
    if w <= max_width or h >= rows:
        return image
    pad = [(0, rows - h), (0, 0)] + [(0, 0)] * (image.ndim - 2)
    return np.pad(image, pad, constant_values=128)


def to_png(image_rgb: np.ndarray) -> bytes:
    """PNG bytes of an RGB image (for ``st.download_button``)."""
    ok, buf = cv2.imencode(".png", np.ascontiguousarray(image_rgb[..., ::-1]))
    if not ok:
        raise ValueError("could not encode the image as PNG")
    return buf.tobytes()
