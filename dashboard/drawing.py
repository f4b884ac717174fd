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


Rect = tuple[int, int, int, int]
"""``(x, y, w, h)`` in integer pixels."""


def _intersects(a: Rect, b: Rect) -> bool:
    return a[0] < b[0] + b[2] and b[0] < a[0] + a[2] and a[1] < b[1] + b[3] and b[1] < a[1] + a[3]


def _overlap(a: Rect, b: Rect) -> int:
    w = min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0])
    h = min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1])
    return max(0, w) * max(0, h)


def place_labels(boxes: Sequence[Rect], sizes: Sequence[tuple[int, int]], image_hw: tuple[int, int]) -> list[Rect]:
    """Where each box's label tag goes so that no two tags intersect (greedy, in the order given).

    Each tag (``sizes``: ``(w, h)`` per box) tries spots above, inside and below its box, then further out, clamped
    into the image; the first that touches no placed tag and no other face wins, else the one with the least overlap.
    """
    height, width = image_hw
    placed: list[Rect] = []
    for i, ((x, y, _, h), (tw, th)) in enumerate(zip(boxes, sizes, strict=True)):
        tx = min(max(0, x), max(0, width - tw))
        offsets = [y - th, y, y + h, y + h - th]
        for k in range(1, max(1, height // max(1, th)) + 1):
            offsets += [y - th - k * th, y + h + k * th]
        spots = list(dict.fromkeys((tx, min(max(0, ty), max(0, height - th)), tw, th) for ty in offsets))
        others = [tuple(b) for j, b in enumerate(boxes) if j != i]
        free = [r for r in spots if not any(_intersects(r, p) for p in placed)]
        clear = [r for r in free if not any(_intersects(r, o) for o in others)]
        if clear or free:
            placed.append((clear or free)[0])
        else:
            placed.append(min(spots, key=lambda r: sum(_overlap(r, p) for p in placed)))
    return placed


def _tag_text(f: BoxLabel) -> str:
    text = f"#{f.number}"
    if f.label:
        text += f" {f.label}"
    if f.confidence is not None:
        text += f" {f.confidence:.0%}"
    return text


def _contrast(color: tuple[int, int, int]) -> tuple[int, int, int]:
    """Black for a light colour, white for a dark one: the ink of a tag and the halo of a box."""
    return (0, 0, 0) if sum(color) > 380 else (255, 255, 255)


def draw_faces(image_rgb: np.ndarray, faces: Sequence[BoxLabel]) -> np.ndarray:
    """Boxes in the label's colour with ``#n label 83%`` on a filled tag near each; tags never overlap."""
    out = np.ascontiguousarray(image_rgb.copy())
    s = _scale(out)
    thick = max(1, round(2 * s))
    font, fscale, fthick = cv2.FONT_HERSHEY_SIMPLEX, 0.55 * s, max(1, thick // 2)
    boxes = [tuple(round(v) for v in f.box) for f in faces]
    texts = [_tag_text(f) for f in faces]
    metrics = [cv2.getTextSize(t, font, fscale, fthick) for t in texts]
    sizes = [(tw + 2 * thick, th + base + 2 * thick) for (tw, th), base in metrics]
    tags = place_labels(boxes, sizes, out.shape[:2])
    colors = [rgb_of(f.label) if f.label else (255, 255, 255) for f in faces]
    for (x, y, w, h), color in zip(boxes, colors, strict=True):
        # a contrasting halo under the line: neutral's mid grey alone vanishes on skin, walls and grey video
        cv2.rectangle(out, (x, y), (x + w, y + h), _contrast(color), thick + 2, cv2.LINE_AA)
        cv2.rectangle(out, (x, y), (x + w, y + h), color, thick, cv2.LINE_AA)
    for (tx, ty, tw, th), ((_, text_h), _), text, color in zip(tags, metrics, texts, colors, strict=True):
        cv2.rectangle(out, (tx, ty), (tx + tw - 1, ty + th - 1), color, -1)
        ink = _contrast(color)
        cv2.putText(out, text, (tx + thick, ty + text_h + thick), font, fscale, ink, fthick, cv2.LINE_AA)
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

    E.g. a 5000x1 photo, which Streamlit scales to 0 rows; padding keeps every original pixel.
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
