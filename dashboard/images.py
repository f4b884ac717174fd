"""The pixels behind a results JSON's rows: FER2013/FERPlus images by CSV row id, folder datasets by path.

The evaluation writes ids, not pixels; the dataset is read once per process and indexed.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

FER_SOURCES = ("fer2013", "ferplus")


class ImageUnavailableError(LookupError):
    """The image of a results row cannot be found on this machine; the message says what to set."""


def fer2013_file(d: dict) -> Path | None:
    """The FER2013 csv(.gz) behind results ``d`` on FER2013/FERPlus (None for other datasets): the recorded file if
    it is here, else the local data folder (``$FERLENS_DATA`` or ``<repo>/../shared/datasets``)."""
    from training.datasets import fer2013_path

    dataset, _, recorded = str(d["meta"]["data"]["source"]).partition(":")
    if dataset not in FER_SOURCES:
        return None
    if Path(recorded).name.startswith("fer2013") and Path(recorded).is_file():
        return Path(recorded)
    return fer2013_path()


def fer2013_images(path: Path) -> np.ndarray:
    """All FER2013 images ``(N, 48, 48)`` uint8, indexed by CSV row."""
    from training.datasets import read_fer2013

    return read_fer2013(path)["images"]


def images_for(d: dict) -> np.ndarray | None:
    """The FER2013 image array when results ``d`` are on FER2013/FERPlus (None for other datasets)."""
    path = fer2013_file(d)
    return None if path is None else fer2013_images(path)


def row_image(d: dict, row: int, images: np.ndarray | None) -> np.ndarray:
    """The image of prediction row ``row`` of results ``d``: ``(H, W)`` gray or ``(H, W, 3)`` RGB uint8.

    ``images`` is :func:`images_for` of ``d``, which the caller reads once.
    """
    pr = d["predictions"]
    if images is not None:
        item = int(pr["id"][row])
        if not 0 <= item < len(images):
            raise ImageUnavailableError(f"row id {item} is outside FER2013 ({len(images)} rows): another file version?")
        return images[item]
    if "path" in pr:
        from core.io import load_image

        return load_image(pr["path"][row])
    dataset = str(d["meta"]["data"]["source"]).split(":", 1)[0]
    raise ImageUnavailableError(
        f"results on {dataset!r} carry no image paths; the explorer shows images of FER2013, FERPlus and "
        "folder datasets"
    )
