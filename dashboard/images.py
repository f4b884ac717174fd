"""The pixels behind a results JSON's rows: FER2013/FERPlus images by CSV row id, folder datasets by path.

The evaluation writes ids, not pixels; the dataset is read once per process and indexed.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

FER_SOURCES = ("fer2013", "ferplus")


class ImageUnavailableError(LookupError):
    """The image of a results row cannot be found on this machine; the message says what to set."""


def fer2013_file(source: str) -> Path:
    """The FER2013 csv(.gz) for a results ``meta.data.source``: the recorded file if it is here, else the
    local data folder (``$FERLENS_DATA`` or ``<repo>/../shared/datasets``)."""
    from training.datasets import fer2013_path

    recorded = Path(source.split(":", 1)[1]) if ":" in source else None
    if recorded is not None and recorded.name.startswith("fer2013") and recorded.is_file():
        return recorded
    return fer2013_path()


def fer2013_images(path: Path) -> np.ndarray:
    """All FER2013 images ``(N, 48, 48)`` uint8, indexed by CSV row."""
    from training.datasets import read_fer2013

    return read_fer2013(path)["images"]


def images_for(d: dict) -> np.ndarray | None:
    """The FER2013 image array when results ``d`` are on FER2013/FERPlus (None for other datasets)."""
    source = str(d["meta"]["data"]["source"])
    return fer2013_images(fer2013_file(source)) if source.split(":", 1)[0] in FER_SOURCES else None


def row_image(d: dict, row: int, images: np.ndarray | None = None) -> np.ndarray:
    """The image of prediction row ``row`` of results ``d``: ``(H, W)`` gray or ``(H, W, 3)`` RGB uint8.

    ``images`` is the FER2013 array when the caller caches it (the explorer does).
    """
    source = str(d["meta"]["data"]["source"])
    dataset = source.split(":", 1)[0]
    pr = d["predictions"]
    if dataset in FER_SOURCES:
        arr = images if images is not None else fer2013_images(fer2013_file(source))
        item = int(pr["id"][row])
        if not 0 <= item < len(arr):
            raise ImageUnavailableError(f"row id {item} is outside FER2013 ({len(arr)} rows): another file version?")
        return arr[item]
    if "path" in pr:
        from core.io import load_image

        return load_image(pr["path"][row])
    raise ImageUnavailableError(
        f"results on {dataset!r} carry no image paths; the explorer shows images of FER2013, FERPlus and "
        "folder datasets"
    )
