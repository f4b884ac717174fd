"""What a label reviewer needs beside the model: FERPlus's human votes, disputed labels, duplicates, exports.

A row is disputed when the FERPlus majority (most votes, first column wins ties) differs from FER2013's label;
a majority of ``unknown`` or ``NF`` counts as disputed, a row without votes never does. Near duplicates are by
perceptual hash (``imagehash.phash``), cached beside the decoded arrays.
"""

from __future__ import annotations

import csv
import io
import logging
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from core.labels import EMOTIONS_7, EMOTIONS_8, FERPLUS_VOTE_COLUMNS, remap_columns

log = logging.getLogger(__name__)

NOT_A_FACE = "not a face"
VOTE_NAMES: tuple[str, ...] = (*EMOTIONS_8, "unknown", NOT_A_FACE)
"""Columns of :func:`human_votes`' vote counts: the 8 emotions in ferlens order, then unknown and NF."""
LABEL_WRONG = "label wrong"

DUPLICATE_MAX_DISTANCE = 6
"""Largest Hamming distance between two 64-bit pHashes still called a near duplicate (see docs/dashboard.md)."""


class ReviewDataError(ValueError):
    """The votes or the labels to review cannot be read as given; the message says what is wrong."""


def votes_table(fer2013_emotion: np.ndarray, votes: np.ndarray) -> pd.DataFrame:
    """FER2013's label beside FERPlus's ``(N, 10)`` votes (``fer2013new.csv``'s column order), index = row id.

    Columns: ``fer2013`` (label name), one count per :data:`VOTE_NAMES`, ``n_votes``, ``majority`` (``""`` when
    the row has no vote) and ``disputed``.
    """
    from training.datasets import ferplus_labels

    votes = np.asarray(votes, dtype=np.int64)
    emotion = np.asarray(fer2013_emotion, dtype=np.int64)
    if votes.ndim != 2 or votes.shape[1] != len(VOTE_NAMES):
        raise ReviewDataError(f"votes must be (N, {len(VOTE_NAMES)}), got {votes.shape}")
    if len(votes) != len(emotion):
        raise ReviewDataError(f"{len(votes)} vote rows for {len(emotion)} FER2013 rows; the files do not match")
    if (votes < 0).any():
        raise ReviewDataError("vote counts must not be negative")
    if ((emotion < 0) | (emotion >= len(EMOTIONS_7))).any():
        raise ReviewDataError(f"FER2013 labels must be 0..{len(EMOTIONS_7) - 1}")
    # file order -> VOTE_NAMES order: canonical emotion j comes from file column perm[j]; unknown, NF stay last
    order = [*remap_columns(FERPLUS_VOTE_COLUMNS, len(EMOTIONS_8)), 8, 9]
    file_names = np.array([VOTE_NAMES[order.index(k)] for k in range(len(VOTE_NAMES))])
    majority_col, _ = ferplus_labels(votes, "argmax")
    n_votes = votes.sum(1)
    majority = np.where(n_votes > 0, file_names[majority_col], "")
    empty = int((n_votes == 0).sum())
    if empty:
        log.warning("%d FERPlus row(s) carry no vote; they have no majority and are never 'disputed'", empty)
    table = pd.DataFrame(votes[:, order], columns=list(VOTE_NAMES))
    table.insert(0, "fer2013", np.asarray(EMOTIONS_7)[emotion])
    table["n_votes"] = n_votes
    table["majority"] = majority
    table["disputed"] = (n_votes > 0) & (majority != table["fer2013"].to_numpy())
    table.index.name = "id"
    return table


def human_votes(root: str | Path | None = None) -> pd.DataFrame:
    """:func:`votes_table` of the local FER2013 and FERPlus files (``$FERLENS_DATA`` or ``root``)."""
    from training.datasets import FERPLUS_ALL_COLUMNS, fer2013_path, read_fer2013, read_ferplus_votes

    raw = read_fer2013(fer2013_path(root))
    plus = read_ferplus_votes(root, n_fer=len(raw["emotion"]))
    return votes_table(raw["emotion"], plus[list(FERPLUS_ALL_COLUMNS)].to_numpy())


def suggested_verdicts(table: pd.DataFrame, ids: Sequence[int], predicted: Sequence[str]) -> list[str | None]:
    """``"label wrong"`` where the votes (:func:`votes_table`) dispute FER2013's label of the image ``ids`` and
    their majority is the model's ``predicted`` class name."""
    rows = table.reindex([int(i) for i in ids])
    return [
        LABEL_WRONG if bool(disputed) and majority == pred else None
        for disputed, majority, pred in zip(rows["disputed"].fillna(False), rows["majority"], predicted, strict=True)
    ]


# ---------------------------------------------------------------------------------------------- duplicates


def phashes(images: np.ndarray) -> np.ndarray:
    """64-bit perceptual hash (``imagehash.phash``) of each ``(N, H, W)`` uint8 image, as ``uint64``."""
    import imagehash
    from PIL import Image

    bits = np.stack([imagehash.phash(Image.fromarray(np.asarray(x))).hash.ravel() for x in images])
    return np.packbits(bits, axis=1).view(">u8").ravel().astype(np.uint64)


def fer2013_phashes(path: str | Path, cache_dir: str | Path | None = None) -> np.ndarray:
    """:func:`phashes` of every row of a FER2013 file, cached on disk beside its decoded arrays."""
    from training.datasets import _file_key, _save_npy, cache_root, read_fer2013

    path = Path(path)
    cached = cache_root(cache_dir) / f"{path.name.split('.')[0]}-{_file_key(path)}.phash.npy"
    if cached.is_file():
        try:
            return np.load(cached)
        except (OSError, ValueError) as exc:
            log.warning("pHash cache %s unreadable (%s); hashing again", cached, exc)
    log.info("hashing the %s images once (cached in %s)", path.name, cached.parent)
    hashes = phashes(read_fer2013(path, cache_dir)["images"])
    try:
        _save_npy(cached, hashes)
    except OSError as exc:
        log.warning("could not cache the pHashes in %s: %s", cached.parent, exc)
    return hashes


def duplicates(
    rows: Iterable[int], images: np.ndarray, hashes: np.ndarray, max_distance: int = DUPLICATE_MAX_DISTANCE
) -> pd.DataFrame:
    """Every other image within ``max_distance`` pHash bits of each of ``rows``: one line per pair (``row``,
    ``other``, ``distance`` in bits, ``identical`` pixels), sorted by row then distance."""
    rows = np.asarray(list(rows), dtype=np.int64)
    hashes = np.asarray(hashes, dtype=np.uint64)
    if len(hashes) != len(images):
        raise ReviewDataError(f"{len(hashes)} hashes for {len(images)} images")
    found = [(np.empty(0, np.int64), np.empty(0, np.int64), np.empty(0, np.uint8))]
    for q in np.split(rows, np.arange(256, len(rows), 256)):  # 256 query rows at a time bound the memory
        dist = np.bitwise_count(hashes[q][:, None] ^ hashes[None, :])
        dist[np.arange(len(q)), q] = 255  # not its own duplicate
        qi, other = np.nonzero(dist <= max_distance)
        found.append((q[qi], other, dist[qi, other]))
    row, other, dist = (np.concatenate(x) for x in zip(*found, strict=True))
    flat = np.asarray(images).reshape(len(images), -1)
    identical = (flat[row] == flat[other]).all(1)
    out = pd.DataFrame({"row": row, "other": other, "distance": dist.astype(np.int64), "identical": identical})
    return out.sort_values(["row", "distance", "other"], kind="stable").reset_index(drop=True)


# -------------------------------------------------------------------------------------------------- export


def corrections(verdicts: Iterable) -> dict[int, str]:
    """The label each reviewed FER2013 row should carry: the prediction (``pred_label``) its newest ``"label wrong"``
    verdict was given on, unless a later verdict of another kind on the row withdrew it."""
    out: dict[int, str] = {}
    for v in sorted(verdicts, key=lambda v: (v.created_at, v.id or 0)):
        if str(v.dataset).split(":", 1)[0] not in ("fer2013", "ferplus"):
            continue
        if v.verdict == LABEL_WRONG and v.pred_label in EMOTIONS_7:
            out[int(v.item_id)] = v.pred_label
        else:
            out.pop(int(v.item_id), None)
    return out


def corrected_fer2013_csv(raw: Mapping[str, np.ndarray], fixes: Mapping[int, str]) -> str:
    """FER2013 (``read_fer2013``'s arrays) in its own CSV format (``emotion,pixels,Usage``) with ``fixes`` (row id
    -> class name, from :func:`corrections`) applied."""
    images, emotion, usage = raw["images"], np.array(raw["emotion"], dtype=np.int64), raw["usage"]
    bad = {r: n for r, n in fixes.items() if not 0 <= int(r) < len(emotion) or n not in EMOTIONS_7}
    if bad:
        raise ReviewDataError(f"corrections outside FER2013 or its 7 classes: {dict(list(bad.items())[:5])}")
    for r, name in fixes.items():
        emotion[int(r)] = EMOTIONS_7.index(name)
    from training.datasets import _USAGE_CODES

    buf = io.StringIO()
    buf.write("emotion,pixels,Usage\n")
    for k in range(len(emotion)):
        buf.write(f"{emotion[k]},{' '.join(map(str, images[k].ravel().tolist()))},{_USAGE_CODES[usage[k]]}\n")
    return buf.getvalue()


LOG_COLUMNS = ("dataset", "item_id", "verdict", "reviewer", "true_label", "pred_label", "corrected_label", "note",
               "confidence", "created_at", "model", "weights_sha256")  # fmt: skip


def verdict_log_csv(verdicts: Iterable, weights_sha256: Mapping[str, str | None] | None = None) -> str:
    """The verdict log (``Verdict``-like objects, oldest first) as CSV with the audited model and its weights' sha256:
    the full digest where ``weights_sha256`` maps the ``model`` key (``"name@<sha prefix>"``) to it, else the prefix."""
    weights_sha256 = weights_sha256 or {}
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(LOG_COLUMNS), lineterminator="\n")
    writer.writeheader()
    for v in verdicts:
        model, _, sha = str(v.model).partition("@")
        corrected = v.pred_label if v.verdict == LABEL_WRONG else ""
        writer.writerow(
            {
                **{k: getattr(v, k) for k in LOG_COLUMNS if hasattr(v, k) and k != "model"},
                "corrected_label": corrected,
                "model": model,
                "weights_sha256": weights_sha256.get(v.model) or ("" if sha == "random" else sha),
            }
        )
    return buf.getvalue()


def nearest_distances(split: str = "test", root: str | Path | None = None, up_to: int = 16) -> dict:
    """The histogram behind :data:`DUPLICATE_MAX_DISTANCE`: how far each image of ``split`` is from its nearest other
    FER2013 image in pHash bits, with the pairs' pixel differences per distance so the cut can be checked by eye."""
    from training.datasets import _usage_mask, canonical_split, fer2013_path, read_fer2013

    path = fer2013_path(root)
    raw = read_fer2013(path)
    rows = np.flatnonzero(_usage_mask(raw["usage"], canonical_split(split)))
    pairs = duplicates(rows, raw["images"], fer2013_phashes(path), max_distance=up_to)
    nearest = pairs.groupby("row", sort=False).head(1)
    flat = raw["images"].reshape(len(raw["images"]), -1).astype(np.int16)
    diff = np.abs(flat[nearest["row"]] - flat[nearest["other"]]).mean(1)
    by = pd.DataFrame({"distance": nearest["distance"].to_numpy(), "diff": diff}).groupby("distance")["diff"]
    return {
        "split": canonical_split(split),
        "images": int(len(rows)),
        "nearest_within": int(up_to),
        "count": {int(k): int(v) for k, v in by.size().items()},
        "median_pixel_difference": {int(k): round(float(v), 1) for k, v in by.median().items()},
        "max_distance_used": DUPLICATE_MAX_DISTANCE,
    }


def main(argv: list[str] | None = None) -> int:
    import argparse
    import json

    ap = argparse.ArgumentParser(
        prog="python -m training.review", description="Nearest-duplicate distances (pHash bits) of a FER2013 split."
    )
    ap.add_argument("--split", default="test", help="train | val | test (default: test)")
    ap.add_argument("--root", help="datasets folder (default: $FERLENS_DATA or ../shared/datasets)")
    ap.add_argument("--up-to", type=int, default=16, help="largest distance counted (bits)")
    args = ap.parse_args(argv)
    print(json.dumps(nearest_distances(args.split, args.root, args.up_to), indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
