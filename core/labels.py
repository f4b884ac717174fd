"""Canonical emotion classes and the mapping from every dataset's own names to them.

There is exactly one class order in ferlens: FER2013's (0-6), with FERPlus' ``contempt`` appended as the
8th class. Every model output, CSV column, confusion matrix and results JSON uses these names in this order,
so a 7-class and an 8-class model agree on the first seven columns.
"""

from __future__ import annotations

from collections.abc import Sequence

EMOTIONS_7: tuple[str, ...] = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
"""FER2013 order: label k of ``fer2013.csv`` is ``EMOTIONS_7[k]``."""

EMOTIONS_8: tuple[str, ...] = EMOTIONS_7 + ("contempt",)
"""FERPlus' eight emotions in ferlens order (contempt last, so the first seven match FER2013)."""

# Every spelling used by the datasets we read, lower-cased, mapped to a canonical name. Sources: FER2013
# (Goodfellow et al. 2013), FERPlus (Barsoum et al. 2016), CK+ (Lucey et al. 2010), RAF-DB basic (Li et al. 2017),
# AffectNet (Mollahosseini et al. 2017), KDEF and JAFFE codes; the integer codes are in DATASET_CODES.
_ALIASES: dict[str, str] = {
    # canonical names map to themselves
    **{name: name for name in EMOTIONS_8},
    # FERPlus / AffectNet / RAF-DB / CK+ spellings
    "anger": "angry",
    "mad": "angry",
    "disgusted": "disgust",
    "fearful": "fear",
    "afraid": "fear",
    "scared": "fear",
    "happiness": "happy",
    "joy": "happy",
    "smile": "happy",
    "sadness": "sad",
    "unhappy": "sad",
    "surprised": "surprise",
    "suprise": "surprise",  # the misspelling appears in several public CK+ folder layouts
    "calm": "neutral",
    "contemptuous": "contempt",
    # KDEF two-letter codes
    "af": "fear",
    "an": "angry",
    "di": "disgust",
    "ha": "happy",
    "ne": "neutral",
    "sa": "sad",
    "su": "surprise",
    # JAFFE three-letter codes
    "ang": "angry",
    "dis": "disgust",
    "fea": "fear",
    "hap": "happy",
    "neu": "neutral",
    "sur": "surprise",
}

FERPLUS_VOTE_COLUMNS: tuple[str, ...] = (
    "neutral",
    "happiness",
    "surprise",
    "sadness",
    "anger",
    "disgust",
    "fear",
    "contempt",
)
"""The eight emotion vote columns of ``fer2013new.csv`` in the file's own order (then ``unknown``, ``NF``)."""

DATASET_CODES: dict[str, dict[int, str]] = {
    "fer2013": dict(enumerate(EMOTIONS_7)),
    "ferplus": {i: _ALIASES[n] for i, n in enumerate(FERPLUS_VOTE_COLUMNS)},
    "ckplus": dict(enumerate(("neutral", "angry", "contempt", "disgust", "fear", "happy", "sad", "surprise"))),
    "rafdb": dict(enumerate(("surprise", "fear", "disgust", "happy", "sad", "angry", "neutral"), start=1)),
    "affectnet": dict(enumerate(("neutral", "happy", "sad", "surprise", "fear", "disgust", "angry", "contempt"))),
}
"""Integer label codes of each dataset, mapped to canonical names. AffectNet codes 8-10 (none, uncertain,
non-face) are deliberately absent: they are not emotions and loaders drop them."""


def canonical(name: str) -> str:
    """The canonical ferlens name for any dataset's spelling of an emotion; a ValueError lists the known ones."""
    key = str(name).strip().lower()
    if key not in _ALIASES:
        raise ValueError(f"unknown emotion label {name!r}; known spellings: {sorted(_ALIASES)}")
    return _ALIASES[key]


def class_names(num_classes: int) -> tuple[str, ...]:
    """The canonical class names of a model with ``num_classes`` outputs (7: FER2013, 8: FERPlus)."""
    if num_classes not in (7, 8):
        raise ValueError(f"ferlens models have 7 or 8 emotion classes, not {num_classes}")
    return EMOTIONS_8[:num_classes]


def from_dataset_code(dataset: str, code: int) -> str | None:
    """Canonical name of integer label ``code`` in ``dataset`` (None for codes that are not emotions)."""
    if dataset not in DATASET_CODES:
        raise ValueError(f"unknown dataset {dataset!r}; choose one of {sorted(DATASET_CODES)}")
    return DATASET_CODES[dataset].get(int(code))


def remap_columns(names: Sequence[str], num_classes: int) -> list[int]:
    """Column permutation that reorders a per-class array given in ``names`` order into canonical order."""
    order = class_names(max(num_classes, 7))
    idx = []
    for name in names:
        c = canonical(name)
        if c not in order:
            raise ValueError(f"label {name!r} ({c}) has no index in the {len(order)}-class order {order}")
        idx.append(order.index(c))
    if sorted(idx) != list(range(num_classes)):
        raise ValueError(f"{list(names)} does not cover the {num_classes} canonical classes exactly")
    return [idx.index(k) for k in range(num_classes)]
