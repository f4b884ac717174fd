"""Face datasets as decoded uint8 arrays: FER2013, FERPlus, ImageFolder layouts and AffectNet's CSV.

Every loader returns a :class:`FaceSet` of numpy arrays, decoded once and cached as ``.npy`` keyed by the source
file's size and mtime. Loaders register by name in :data:`DATASETS`. Splits are ``train`` / ``val`` / ``test``,
with FER2013's ``Training`` / ``PublicTest`` / ``PrivateTest`` accepted as aliases.
"""

from __future__ import annotations

import gzip
import hashlib
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from core.labels import FERPLUS_VOTE_COLUMNS, canonical, class_names, from_dataset_code, remap_columns
from core.models.weights import atomic_write
from core.registry import Registry

if TYPE_CHECKING:  # the loaders only read a DataConfig; importing it would close a cycle with validate_config
    from training.config import DataConfig

log = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parents[1]
DATA_ENV = "FERLENS_DATA"
CACHE_ENV = "FERLENS_CACHE"
FER_SIZE = 48

_SPLIT_ALIASES = {
    **dict.fromkeys(("train", "training"), "train"),
    **dict.fromkeys(("val", "valid", "validation", "publictest"), "val"),
    **dict.fromkeys(("test", "testing", "privatetest"), "test"),
}
FER_USAGE = {"train": "Training", "val": "PublicTest", "test": "PrivateTest"}


class DatasetError(ValueError):
    """A dataset that cannot be read as asked: missing files, unknown split, inconsistent join."""


@dataclass
class FaceSet:
    """One split of one dataset, fully decoded.

    Attributes:
        images: uint8, ``(N, H, W)`` grayscale or ``(N, H, W, 3)`` RGB.
        targets: what the loss sees: ``(N,)`` int64 class indices, or ``(N, C)`` float32 vote distributions.
        labels: ``(N,)`` int64 hard labels in canonical order (the argmax of soft targets, first wins ties).
        ids: ``(N,)`` int64 row ids in the source (the CSV row; for folders the index in the sorted listing),
            so the error explorer can show the very image.
        class_names: canonical names of the C classes.
        split: canonical split name (train / val / test / all).
        source: dataset spec and file it came from.
        paths: source file per row for folder datasets (empty for FER2013/FERPlus).
        skipped_bad_rows: rows of this split left out because their labels were unusable.
    """

    images: np.ndarray
    targets: np.ndarray
    labels: np.ndarray
    ids: np.ndarray
    class_names: tuple[str, ...]
    split: str
    source: str
    paths: tuple[str, ...] = ()
    skipped_bad_rows: int = 0
    cache: dict = field(default_factory=dict, repr=False, compare=False)
    """Model-sized tensors made from ``images`` (filled by ``training.loader``), so epochs reuse them."""

    def __post_init__(self) -> None:
        n = len(self.images)
        for name in ("targets", "labels", "ids"):
            if len(getattr(self, name)) != n:
                raise DatasetError(f"FaceSet.{name} has {len(getattr(self, name))} rows, images have {n}")

    def __len__(self) -> int:
        return len(self.images)

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def soft(self) -> bool:
        return self.targets.ndim == 2

    def class_counts(self) -> np.ndarray:
        """Images per class (hard labels), length C."""
        return np.bincount(self.labels, minlength=self.num_classes)

    def subset(self, index: np.ndarray) -> FaceSet:
        """Rows ``index`` (in that order) as a new FaceSet."""
        index = np.asarray(index)
        paths = tuple(self.paths[i] for i in index) if self.paths else ()
        return replace(
            self,
            images=self.images[index],
            targets=self.targets[index],
            labels=self.labels[index],
            ids=self.ids[index],
            paths=paths,
            cache={},
        )


# ------------------------------------------------------------------------------------------ paths


def data_root(root: str | os.PathLike | None = None) -> Path:
    """The folder with ``fer2013/`` and ``ferplus/``.

    ``root`` if given, else ``$FERLENS_DATA``, else ``<repo>/../shared/datasets``.
    """
    return Path(root or os.environ.get(DATA_ENV) or (REPO_ROOT.parent / "shared" / "datasets").resolve())


def cache_root(cache_dir: str | os.PathLike | None = None) -> Path:
    """Where decoded arrays go: ``cache_dir``, else ``$FERLENS_CACHE``, else ``<repo>/cache`` (gitignored)."""
    return Path(cache_dir or os.environ.get(CACHE_ENV) or REPO_ROOT / "cache")


def canonical_split(split: str) -> str:
    """``train``/``val``/``test`` (or ``all``) for any accepted spelling; raises with the accepted ones."""
    key = str(split).strip().lower()
    if key == "all":
        return "all"
    if key not in _SPLIT_ALIASES:
        raise DatasetError(f"unknown split {split!r}; use train/val/test or Training/PublicTest/PrivateTest (or all)")
    return _SPLIT_ALIASES[key]


def _file_key(path: Path) -> str:
    st = path.stat()
    return f"{st.st_size}-{st.st_mtime_ns}"


def _save_npy(path: Path, *arrays: np.ndarray, save: Callable = np.save, **named: np.ndarray) -> None:
    """``save(file, *arrays, **named)`` atomically; given an open file, numpy adds no ``.npy``/``.npz`` suffix."""

    def write(tmp: str) -> None:
        with open(tmp, "wb") as fh:
            save(fh, *arrays, **named)

    atomic_write(path, write)


# ------------------------------------------------------------------------------------ registry

Loader = Callable[["DataConfig", str, str | None], FaceSet]
DATASETS: Registry[tuple[Loader, bool]] = Registry("dataset", error=DatasetError)


def register_dataset(name: str, needs_path: bool = False) -> Callable[[Loader], Loader]:
    """Register ``fn(cfg, split, arg)`` as dataset ``name`` (``name:PATH`` when ``needs_path``)."""

    def deco(fn: Loader) -> Loader:
        DATASETS.register((fn, needs_path), name=name)
        return fn

    return deco


def list_datasets() -> list[str]:
    return sorted(f"{n}:PATH" if DATASETS.get(n)[1] else n for n in DATASETS)


def parse_dataset(spec: str) -> tuple[str, str | None]:
    """Split ``"folder:/data/rafdb"`` into ``("folder", "/data/rafdb")``; unknown names raise with the list."""
    name, _, arg = str(spec).partition(":")
    if name not in DATASETS:
        raise DatasetError(f"unknown dataset {spec!r}; choose one of {list_datasets()}")
    needs = DATASETS.get(name)[1]
    if needs and not arg:
        raise DatasetError(f"dataset {name!r} needs a path: {name}:PATH")
    if not needs and arg:
        raise DatasetError(f"dataset {name!r} takes no path (use data.root to move the data folder)")
    return name, arg or None


def load_split(cfg: DataConfig, split: str) -> FaceSet:
    """One split of ``cfg.dataset`` with ``cfg``'s label mode, classes and ``limit`` applied."""
    name, arg = parse_dataset(cfg.dataset)
    fs = DATASETS.get(name)[0](cfg, canonical_split(split), arg)
    if cfg.limit is not None and len(fs) > cfg.limit:
        fs = fs.subset(limit_index(fs.labels, cfg.limit, cfg.limit_mode))
    log.info("%s %s: %d images, class counts %s", cfg.dataset, fs.split, len(fs), fs.class_counts().tolist())
    return fs


def limit_index(labels: np.ndarray, limit: int, mode: str = "stratified") -> np.ndarray:
    """Deterministic row indices of a ``limit``-row slice.

    ``first``: rows 0..limit-1. ``stratified``: each class keeps its share (largest remainder, at least one row
    per present class when ``limit`` allows), rows evenly spaced through the class, returned in file order.
    """
    n = len(labels)
    if limit >= n:
        return np.arange(n)
    if mode == "first":
        return np.arange(limit)
    if mode != "stratified":
        raise DatasetError(f"unknown limit_mode {mode!r}; choose 'stratified' or 'first'")
    classes, counts = np.unique(labels, return_counts=True)
    exact = counts * limit / n
    take = np.floor(exact).astype(int)
    if limit >= len(classes):
        take = np.maximum(take, 1)
    order = np.argsort(-(exact - np.floor(exact)), kind="stable")
    i = 0
    while take.sum() < limit:
        c = order[i % len(order)]
        if take[c] < counts[c]:
            take[c] += 1
        i += 1
    while take.sum() > limit:  # the at-least-one rule overshot: trim the largest classes
        take[np.argmax(take)] -= 1
    picked = [
        np.flatnonzero(labels == c)[np.unique(np.linspace(0, n_c - 1, k).round().astype(int))]
        for c, k, n_c in zip(classes, take, counts, strict=True)
        if k > 0
    ]
    return np.sort(np.concatenate(picked))


# ----------------------------------------------------------------------------------- FER2013

_USAGE_CODES = tuple(FER_USAGE.values())  # read_fer2013's usage code k is _USAGE_CODES[k]


def fer2013_path(root: str | os.PathLike | None = None) -> Path:
    base = data_root(root) / "fer2013"
    for name in ("fer2013.csv.gz", "fer2013.csv"):
        if (base / name).is_file():
            return base / name
    raise DatasetError(
        f"FER2013 not found: expected {base}/fer2013.csv(.gz); set data.root or ${DATA_ENV} to the folder "
        "holding fer2013/ and ferplus/"
    )


def read_fer2013(path: str | os.PathLike, cache_dir: str | os.PathLike | None = None) -> dict[str, np.ndarray]:
    """All rows of a FER2013 csv(.gz): ``images`` (N,48,48) uint8, ``emotion`` (N,) int64, ``usage`` (N,) int8.

    ``usage`` codes 0/1/2 are Training/PublicTest/PrivateTest. The decoded arrays are cached as ``.npy`` keyed by
    the file's size and mtime, so the CSV is parsed once per file version.
    """
    path = Path(path)
    stem = path.name.split(".")[0]
    base = cache_root(cache_dir) / f"{stem}-{_file_key(path)}"
    files = {k: base.with_name(f"{base.name}.{k}.npy") for k in ("images", "emotion", "usage")}
    if all(f.is_file() for f in files.values()):
        try:
            return {k: np.load(f) for k, f in files.items()}
        except (OSError, ValueError) as exc:
            log.warning("decoded cache %s unreadable (%s); decoding %s again", base, exc, path.name)
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt") as fh:
        frame = pd.read_csv(fh, dtype={"emotion": np.int64, "pixels": str, "Usage": str})
    missing = {"emotion", "pixels", "Usage"} - set(frame.columns)
    if missing:
        raise DatasetError(f"{path.name} lacks column(s) {sorted(missing)}; expected emotion,pixels,Usage")
    n = len(frame)
    # One C-level parse of all pixel strings; per-row np.fromstring is ~10x slower.
    flat = np.fromstring(" ".join(frame["pixels"].tolist()), dtype=np.uint8, sep=" ")
    if flat.size != n * FER_SIZE * FER_SIZE:
        raise DatasetError(f"{path.name}: {flat.size} pixel values for {n} rows, expected {n * FER_SIZE**2}")
    usage = frame["Usage"].map({u: i for i, u in enumerate(_USAGE_CODES)})
    if usage.isna().any():
        bad = sorted(set(frame["Usage"][usage.isna()]))
        raise DatasetError(f"{path.name}: unknown Usage value(s) {bad}; expected {list(_USAGE_CODES)}")
    out = {
        "images": flat.reshape(n, FER_SIZE, FER_SIZE),
        "emotion": frame["emotion"].to_numpy(np.int64),
        "usage": usage.to_numpy(np.int8),
    }
    try:
        for k, f in files.items():
            _save_npy(f, out[k])
    except OSError as exc:
        log.warning("could not write the decoded cache under %s: %s (continuing without it)", base.parent, exc)
    return out


def _usage_mask(usage: np.ndarray, split: str) -> np.ndarray:
    if split == "all":
        return np.ones(len(usage), dtype=bool)
    return usage == _USAGE_CODES.index(FER_USAGE[split])


@register_dataset("fer2013")
def load_fer2013(cfg: DataConfig, split: str, arg: str | None = None) -> FaceSet:
    """FER2013 with its original labels. 8-class configs keep the 7 labels (contempt never occurs)."""
    if cfg.label_mode != "hard":
        raise DatasetError("FER2013 has one label per image; label_mode='soft' needs dataset 'ferplus'")
    path = fer2013_path(cfg.root)
    raw = read_fer2013(path, cfg.cache_dir)
    rows = np.flatnonzero(_usage_mask(raw["usage"], split))
    labels = raw["emotion"][rows]
    return FaceSet(
        images=raw["images"][rows],
        targets=labels.copy(),
        labels=labels,
        ids=rows.astype(np.int64),
        class_names=class_names(cfg.num_classes),
        split=split,
        source=f"fer2013:{path}",
    )


# ------------------------------------------------------------------------------------ FERPlus

FERPLUS_ALL_COLUMNS = (*FERPLUS_VOTE_COLUMNS, "unknown", "NF")


def read_ferplus_votes(root: str | os.PathLike | None = None, n_fer: int | None = None) -> pd.DataFrame:
    """FERPlus votes joined to ``fer2013.csv.gz`` as the datasets README prescribes.

    Row k of the result is row k of ``fer2013.csv.gz`` (checked on ``Usage``). Rows with unusable votes stay in
    place with NaN votes, so the join is not shifted; they are counted in ``attrs["bad_vote_rows"]`` and
    :func:`load_ferplus` skips them.
    """
    path = data_root(root) / "ferplus" / "fer2013new.csv"
    if not path.is_file():
        raise DatasetError(f"FERPlus votes not found: expected {path}")
    try:
        plus = pd.read_csv(path)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise DatasetError(f"{path}: not a readable CSV ({exc})") from exc
    missing = {"Usage", "Image name", *FERPLUS_ALL_COLUMNS} - set(plus.columns)
    if missing:
        raise DatasetError(
            f"{path} lacks column(s) {sorted(missing)}; expected Usage, Image name, {', '.join(FERPLUS_ALL_COLUMNS)}"
        )
    keep = plus["Image name"].notna() & ~plus["Image name"].duplicated(keep="last")
    plus = plus[keep].reset_index(drop=True)
    if n_fer is not None and len(plus) != n_fer:
        raise DatasetError(f"FERPlus join gives {len(plus)} rows but FER2013 has {n_fer}; files do not match")
    cols = list(FERPLUS_ALL_COLUMNS)
    votes = plus[cols].apply(pd.to_numeric, errors="coerce").to_numpy(np.float64, copy=True)
    reasons = {"non-numeric or non-finite": ~np.isfinite(votes).all(1)}
    reasons["negative"] = ~reasons["non-numeric or non-finite"] & (votes < 0).any(1)
    reasons["no votes"] = np.isfinite(votes).all(1) & (votes == 0).all(1)
    bad = np.logical_or.reduce(list(reasons.values()))
    votes[bad] = np.nan
    plus[cols] = votes
    plus.attrs["bad_vote_rows"] = int(bad.sum())
    if bad.any():
        counts = ", ".join(f"{int(m.sum())} {why}" for why, m in reasons.items() if m.any())
        log.warning(
            "%s: skipping %d row(s) with unusable votes (%s); first FER2013 rows: %s",
            path,
            int(bad.sum()),
            counts,
            np.flatnonzero(bad)[:10].tolist(),
        )
    return plus


def ferplus_labels(votes: np.ndarray, rule: str = "argmax") -> tuple[np.ndarray, np.ndarray]:
    """Majority label (0..9 in file column order; 8 = unknown, 9 = NF) and the votes the rule kept.

    ``argmax``: the column with most votes, first column wins ties (the README's table). ``strict``: FERPlus'
    own ``majority`` mode (``src/ferplus.py``): single votes are dropped as outliers and the top class is kept
    only with more than half of the remaining votes, otherwise the row is ``unknown``.
    """
    votes = np.asarray(votes, dtype=np.float64)
    if rule == "argmax":
        return votes.argmax(1), votes
    if rule != "strict":
        raise DatasetError(f"unknown FERPlus rule {rule!r}; choose 'argmax' or 'strict'")
    kept = np.where(votes <= 1, 0.0, votes)
    top = kept.max(1)
    label = np.where(top > 0.5 * kept.sum(1), kept.argmax(1), 8)
    return label, kept


@register_dataset("ferplus")
def load_ferplus(cfg: DataConfig, split: str, arg: str | None = None) -> FaceSet:
    """FERPlus labels on FER2013 pixels; rows whose majority is ``unknown`` or ``NF`` are dropped.

    With 7 classes, contempt-majority rows are dropped (no principled target to fold it into). Soft targets are
    the emotion votes divided by their sum; hard and soft runs see the same rows. Rows with unusable votes are
    skipped and counted in ``skipped_bad_rows``.
    """
    path = fer2013_path(cfg.root)
    raw = read_fer2013(path, cfg.cache_dir)
    plus = read_ferplus_votes(cfg.root, n_fer=len(raw["usage"]))
    usage_codes = plus["Usage"].map({u: i for i, u in enumerate(_USAGE_CODES)}).to_numpy()
    if not np.array_equal(usage_codes, raw["usage"]):
        raise DatasetError("FERPlus and FER2013 Usage columns disagree after the join; the files do not match")
    votes = plus[list(FERPLUS_ALL_COLUMNS)].to_numpy(np.float64)
    valid = np.isfinite(votes).all(1)  # read_ferplus_votes blanked the unusable rows
    majority, kept = ferplus_labels(np.where(valid[:, None], votes, 0.0), cfg.ferplus_rule)
    c = cfg.num_classes
    perm = remap_columns(FERPLUS_VOTE_COLUMNS, 8)  # canonical column j comes from file column perm[j]
    emotion_votes = kept[:, :8][:, perm]  # (N, 8) canonical order, contempt last
    is_emotion = majority < 8
    canon = np.where(is_emotion, np.argsort(perm)[np.minimum(majority, 7)], -1)  # file column -> canonical index
    in_split = _usage_mask(raw["usage"], split)
    keep = valid & is_emotion & (canon < c) & in_split
    rows = np.flatnonzero(keep)
    labels = canon[rows]
    if cfg.label_mode == "soft":
        dist = emotion_votes[rows, :c]
        targets = (dist / dist.sum(1, keepdims=True)).astype(np.float32)
    else:
        targets = labels.copy()
    return FaceSet(
        images=raw["images"][rows],
        targets=targets,
        labels=labels,
        ids=rows.astype(np.int64),
        class_names=class_names(c),
        split=split,
        source=f"ferplus:{data_root(cfg.root) / 'ferplus' / 'fer2013new.csv'}",
        skipped_bad_rows=int((~valid & in_split).sum()),
    )


# ------------------------------------------------------------------------------ photo folders

IMAGE_EXTS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".pgm", ".ppm")


def _read_rgb(path: Path):
    import cv2

    buf = np.fromfile(str(path), dtype=np.uint8)
    img = cv2.imdecode(buf, cv2.IMREAD_COLOR) if buf.size else None
    if img is None:
        return None
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


def _resize_square(img: np.ndarray, size: int) -> np.ndarray:
    """An RGB photo crop at ``size`` px with the resize every face crop gets (``core.models.base.resize_uint8``)."""
    import torch

    from core.models.base import resize_uint8

    t = resize_uint8(torch.from_numpy(np.ascontiguousarray(img)).permute(2, 0, 1)[None], size)
    return t[0].permute(1, 2, 0).numpy()


def _decode_folder(
    paths: list[Path], size: int, faces: str, boxes: list[tuple[int, int, int, int] | None] | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Decode, crop to ``boxes`` (x, y, w, h) or detect, resize; returns images (M, size, size, 3) and the
    indices of the paths that worked (unreadable files and faceless photos are logged and skipped)."""
    out, ok = [], []
    for i, p in enumerate(paths):
        img = _read_rgb(p)
        if img is None:
            log.warning("skipping unreadable image %s", p)
            continue
        box = boxes[i] if boxes is not None else None
        if box is not None:
            x, y, w, h = box
            crop = img[max(y, 0) : y + h, max(x, 0) : x + w]
            img = crop if crop.size else img
        if faces == "detect":
            from core.faces import detect_and_align  # the face pipeline, imported only when asked for

            crop = detect_and_align(img, size)
            if crop is None:
                log.warning("no face found in %s; skipped", p)
                continue
            img = crop
        out.append(_resize_square(img, size))
        ok.append(i)
    if not out:
        raise DatasetError(f"none of the {len(paths)} images could be read")
    return np.stack(out), np.asarray(ok, dtype=np.int64)


def _cached_decode(
    kind: str, paths: list[Path], size: int, faces: str, cache_dir, boxes=None
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`_decode_folder` behind an ``.npz`` cache keyed by every file's path, size, mtime and box."""
    h = hashlib.sha1(f"resize-v2|{size}|{faces}".encode())
    for i, p in enumerate(paths):
        h.update(f"{p}|{_file_key(p) if p.is_file() else 'missing'}|{boxes[i] if boxes else ''}\n".encode())
    path = cache_root(cache_dir) / f"{kind}-{h.hexdigest()[:16]}.npz"
    if path.is_file():
        try:
            with np.load(path) as z:
                return z["images"], z["ok"]
        except (OSError, ValueError, KeyError) as exc:
            log.warning("decoded cache %s unreadable (%s); decoding again", path, exc)
    images, ok = _decode_folder(paths, size, faces, boxes)
    try:
        _save_npy(path, save=np.savez, images=images, ok=ok)
    except OSError as exc:
        log.warning("could not write the decoded cache %s: %s (continuing without it)", path, exc)
    return images, ok


def _photo_set(
    cfg: DataConfig, split: str, source: str, paths: list[Path], labels: np.ndarray, ids: np.ndarray, boxes=None
) -> FaceSet:
    """The photos of ``paths`` decoded (cached) as a FaceSet; rows that did not decode are dropped from every field."""
    images, ok = _cached_decode(source.partition(":")[0], paths, cfg.image_size, cfg.faces, cfg.cache_dir, boxes)
    labels = labels[ok]
    paths = tuple(str(paths[i]) for i in ok)
    return FaceSet(images, labels.copy(), labels, ids[ok], class_names(cfg.num_classes), split, source, paths)


def _hash_unit(key: str) -> float:
    """A stable number in [0, 1] from a file's relative path: split assignments that survive added files."""
    return int(hashlib.md5(key.encode()).hexdigest()[:8], 16) / 0xFFFFFFFF


def _hash_split(rel: str) -> str:
    """train/val/test, 80/10/10, by :func:`_hash_unit`."""
    u = _hash_unit(rel)
    return "train" if u < 0.8 else "val" if u < 0.9 else "test"


def _class_dirs(folder: Path, num_classes: int) -> dict[Path, int]:
    order = class_names(num_classes)
    out, skipped = {}, []
    for d in sorted(p for p in folder.iterdir() if p.is_dir()):
        try:
            out[d] = order.index(canonical(d.name))  # both raise ValueError: not an emotion, or not one of these
        except ValueError:
            skipped.append(d.name)
    if skipped:
        log.warning("%s: ignoring folder(s) that are not %d-class emotions: %s", folder, num_classes, skipped)
    return out


@register_dataset("folder", needs_path=True)
def load_folder(cfg: DataConfig, split: str, arg: str | None) -> FaceSet:
    """An ImageFolder: ``PATH/<split>/<class>/*`` or ``PATH/<class>/*`` (RAF-DB, CK+, KDEF, JAFFE layouts).

    Class folders may use any spelling :func:`core.labels.canonical` knows. Without split folders, images are
    split 80/10/10 by a hash of their path (stable as files are added); ``all`` returns every image.
    """
    root = Path(arg).expanduser()
    if not root.is_dir():
        raise DatasetError(f"image folder not found: {root}")
    split_dirs = {}
    for d in root.iterdir():
        if d.is_dir() and d.name.lower() in _SPLIT_ALIASES:
            split_dirs.setdefault(_SPLIT_ALIASES[d.name.lower()], []).append(d)
    if not split_dirs:  # one tree, split by path hash
        wanted = [root]
    elif split == "all":
        wanted = [d for ds in split_dirs.values() for d in ds]
    elif split in split_dirs:
        wanted = split_dirs[split]
    else:
        raise DatasetError(f"{root} has split folders for {sorted(split_dirs)}, not {split!r}")
    by_hash = not split_dirs and split != "all"
    items = [
        (p, label)
        for sd in sorted(wanted)
        for cd, label in _class_dirs(sd, cfg.num_classes).items()
        for p in sorted(cd.rglob("*"))
        if p.suffix.lower() in IMAGE_EXTS and (not by_hash or _hash_split(str(p.relative_to(root))) == split)
    ]
    if not items:
        raise DatasetError(f"no images with emotion-named class folders found under {root} for split {split!r}")
    labels = np.asarray([label for _, label in items], dtype=np.int64)
    return _photo_set(cfg, split, f"folder:{root}", [p for p, _ in items], labels, np.arange(len(items)))


# ---------------------------------------------------------------------------------- AffectNet

AFFECTNET_VAL_FRACTION = 0.05


@register_dataset("affectnet", needs_path=True)
def load_affectnet(cfg: DataConfig, split: str, arg: str | None) -> FaceSet:
    """AffectNet's manually annotated set: ``PATH/training.csv``, ``PATH/validation.csv`` and the images.

    Images are cropped to the CSV's face box; codes 8-10 (none, uncertain, non-face) are dropped, and 7
    (contempt) with 7 classes. The test set is not public, so ``test`` is ``validation.csv`` and ``val`` a stable
    5 % of ``training.csv``: model selection never sees the reported rows.
    """
    root = Path(arg).expanduser()
    csv = root / ("validation.csv" if split == "test" else "training.csv")
    if split == "all":
        raise DatasetError("affectnet has no 'all' split; use train, val or test")
    if not csv.is_file():
        raise DatasetError(f"AffectNet CSV not found: {csv}")
    frame = pd.read_csv(csv)
    need = {"subDirectory_filePath", "expression"}
    if need - set(frame.columns):
        raise DatasetError(f"{csv.name} lacks column(s) {sorted(need - set(frame.columns))}")
    order = class_names(cfg.num_classes)
    names = [from_dataset_code("affectnet", int(e)) for e in frame["expression"]]
    keep = np.asarray([n in order for n in names])
    if split in ("train", "val"):
        in_val = frame["subDirectory_filePath"].map(lambda r: _hash_unit(str(r)) < AFFECTNET_VAL_FRACTION).to_numpy()
        keep &= in_val if split == "val" else ~in_val
    rows = np.flatnonzero(keep)
    if not len(rows):
        raise DatasetError(f"{csv.name} has no {cfg.num_classes}-class emotion rows for split {split!r}")
    img_root = root / "Manually_Annotated_Images"
    img_root = img_root if img_root.is_dir() else root
    box_cols = ["face_x", "face_y", "face_width", "face_height"]
    boxes = None
    if set(box_cols) <= set(frame.columns):
        boxes = [
            tuple(int(v) for v in b) if (np.isfinite(b).all() and b[2] > 0 and b[3] > 0) else None
            for b in frame.loc[rows, box_cols].to_numpy(float)
        ]
    paths = [img_root / str(frame.at[r, "subDirectory_filePath"]) for r in rows]
    labels = np.asarray([order.index(names[r]) for r in rows], dtype=np.int64)
    return _photo_set(cfg, split, f"affectnet:{csv}", paths, labels, rows.astype(np.int64), boxes)


def describe(fs: FaceSet) -> dict:
    """A JSON-able summary (sizes, class counts, skipped bad rows when there were any) for logs and sidecars."""
    out = {
        "split": fs.split,
        "source": fs.source,
        "n": len(fs),
        "image_shape": list(fs.images.shape[1:]),
        "soft": fs.soft,
        "class_counts": dict(zip(fs.class_names, fs.class_counts().tolist(), strict=True)),
    }
    if fs.skipped_bad_rows:
        out["skipped_bad_rows"] = fs.skipped_bad_rows
    return out


__all__ = [
    "DatasetError",
    "FaceSet",
    "cache_root",
    "canonical_split",
    "data_root",
    "describe",
    "ferplus_labels",
    "limit_index",
    "list_datasets",
    "load_split",
    "parse_dataset",
    "read_fer2013",
    "register_dataset",
]
