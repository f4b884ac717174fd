"""Canonical emotion classes and the mapping from every dataset's own names to them.

There is exactly one class order in ferlens: FER2013's (0-6), with FERPlus' ``contempt`` appended as the
8th class. Every model output, CSV column, confusion matrix and results JSON uses these names in this order,
so a 7-class and an 8-class model agree on the first seven columns.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

EMOTIONS_7: tuple[str, ...] = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
"""FER2013 order: label k of ``fer2013.csv`` is ``EMOTIONS_7[k]``."""

EMOTIONS_8: tuple[str, ...] = EMOTIONS_7 + ("contempt",)
"""FERPlus' eight emotions in ferlens order (contempt last, so the first seven match FER2013)."""

# Every spelling used by the datasets we read, lower-cased, mapped to a canonical name.
# Sources: FER2013 (Goodfellow et al. 2013), FERPlus column names (Barsoum et al. 2016), CK+ label codes
# (Lucey et al. 2010: 0 neutral, 1 anger, 2 contempt, 3 disgust, 4 fear, 5 happy, 6 sadness, 7 surprise),
# RAF-DB basic (Li et al. 2017: 1 surprise, 2 fear, 3 disgust, 4 happiness, 5 sadness, 6 anger, 7 neutral),
# AffectNet (Mollahosseini et al. 2017: 0 neutral, 1 happy, 2 sad, 3 surprise, 4 fear, 5 disgust, 6 anger,
# 7 contempt; 8 none, 9 uncertain, 10 non-face), KDEF codes (AF AN DI HA NE SA SU) and JAFFE codes.
_ALIASES: dict[str, str] = {
    # canonical names map to themselves
    **{name: name for name in EMOTIONS_8},
    # FERPlus / AffectNet / RAF-DB / CK+ spellings
    "anger": "angry",
    "angry": "angry",
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
    "ckplus": {
        0: "neutral",
        1: "angry",
        2: "contempt",
        3: "disgust",
        4: "fear",
        5: "happy",
        6: "sad",
        7: "surprise",
    },
    "rafdb": {1: "surprise", 2: "fear", 3: "disgust", 4: "happy", 5: "sad", 6: "angry", 7: "neutral"},
    "affectnet": {
        0: "neutral",
        1: "happy",
        2: "sad",
        3: "surprise",
        4: "fear",
        5: "disgust",
        6: "angry",
        7: "contempt",
    },
}
"""Integer label codes of each dataset, mapped to canonical names. AffectNet codes 8-10 (none, uncertain,
non-face) are deliberately absent: they are not emotions and loaders drop them."""


def canonical(name: str) -> str:
    """Return the canonical ferlens name for any dataset's spelling of an emotion.

    Raises:
        ValueError: the name is not an emotion we know, with the list of accepted spellings.
    """
    key = str(name).strip().lower()
    if key not in _ALIASES:
        raise ValueError(f"unknown emotion label {name!r}; known spellings: {sorted(_ALIASES)}")
    return _ALIASES[key]


def class_names(num_classes: int) -> tuple[str, ...]:
    """The canonical class names of a model with ``num_classes`` outputs (7: FER2013, 8: FERPlus)."""
    if num_classes == 7:
        return EMOTIONS_7
    if num_classes == 8:
        return EMOTIONS_8
    raise ValueError(f"ferlens models have 7 or 8 emotion classes, not {num_classes}")


def to_index(names: Iterable[str], num_classes: int = 7) -> list[int]:
    """Map dataset label names to indices in the canonical order of a ``num_classes`` model."""
    order = class_names(num_classes)
    out = []
    for name in names:
        c = canonical(name)
        if c not in order:
            raise ValueError(f"label {name!r} ({c}) has no index in the {num_classes}-class order {order}")
        out.append(order.index(c))
    return out


def from_dataset_code(dataset: str, code: int) -> str | None:
    """Canonical name of integer label ``code`` in ``dataset`` (None for codes that are not emotions)."""
    if dataset not in DATASET_CODES:
        raise ValueError(f"unknown dataset {dataset!r}; choose one of {sorted(DATASET_CODES)}")
    return DATASET_CODES[dataset].get(int(code))


def remap_columns(names: Sequence[str], num_classes: int) -> list[int]:
    """Column permutation that reorders a per-class array given in ``names`` order into canonical order."""
    idx = to_index(names, num_classes=max(num_classes, 7))
    if sorted(idx) != list(range(num_classes)):
        raise ValueError(f"{list(names)} does not cover the {num_classes} canonical classes exactly")
    perm = [0] * num_classes
    for src, dst in enumerate(idx):
        perm[dst] = src
    return perm
