"""The one image and video loader behind every entry point (upload, CLI, evaluation, API).

:func:`load_image` always returns an ``(H, W, 3)`` uint8 RGB array (EXIF orientation applied, transparency
composited on white), checks size limits before decoding, and turns every failure into a typed
:class:`ImageLoadError` (a ``ValueError``) that names the input. Arrays are taken as RGB, gray or RGBA.
Also: a ZIP of photos read safely in memory (:func:`read_image_archive`) and a video rewritten frame by frame
(:func:`rewrite_video`, e.g. to draw the faces on it).
"""

from __future__ import annotations

import io
import os
import re
import warnings
import zipfile
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

# FFmpeg (inside OpenCV) prints its own complaints ("moov atom not found") straight to the process's stderr, which
# breaks the one-line-per-bad-file contract of the CLI; the typed VideoLoadError already says what went wrong.
# OpenCV reads this once, when it first opens a capture, so it is set on import; an explicit setting wins.
os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")  # AV_LOG_QUIET

__all__ = [
    "MAX_BYTES",
    "MAX_PIXELS",
    "LoadLimits",
    "DEFAULT_LIMITS",
    "ImageLoadError",
    "EmptyInputError",
    "ImageNotFoundError",
    "UnsupportedFormatError",
    "CorruptImageError",
    "ImageTooLargeError",
    "InvalidArrayError",
    "VideoLoadError",
    "VideoInfo",
    "ArchiveError",
    "ArchiveLimits",
    "ArchiveContents",
    "IMAGE_SUFFIXES",
    "read_image_archive",
    "rewrite_video",
    "load_image",
    "iter_video_frames",
    "video_info",
]

MAX_BYTES: int = 50 * 1024 * 1024
"""Largest encoded input accepted (50 MiB): larger than any phone photo, small enough to hold in memory."""

MAX_PIXELS: int = 40_000_000
"""Largest decoded image accepted (40 megapixels, 120 MB as RGB): a 48 MP phone sensor must be downscaled
by the caller on purpose; a decompression bomb is refused before any pixel is decoded."""


@dataclass(frozen=True)
class LoadLimits:
    """Size limits checked before decoding. Raise them explicitly for trusted, very large inputs."""

    max_bytes: int = MAX_BYTES
    max_pixels: int = MAX_PIXELS

    def __post_init__(self) -> None:
        if self.max_bytes < 1 or self.max_pixels < 1:
            raise ValueError(f"limits must be positive, got {self}")


DEFAULT_LIMITS = LoadLimits()


class ImageLoadError(ValueError):
    """Base of every loading failure; ``source`` names the input (a path, ``<bytes>``, ``<array>``...)."""

    def __init__(self, message: str, source: str = "") -> None:
        super().__init__(message)
        self.source = source


class EmptyInputError(ImageLoadError):
    """Zero bytes, or an array with no pixels."""


class ImageNotFoundError(ImageLoadError):
    """The path does not exist or is not a file."""


class UnsupportedFormatError(ImageLoadError):
    """Not an image at all (text, HTML, PDF, SVG, a video...), or a format Pillow cannot read."""


class CorruptImageError(ImageLoadError):
    """A real image format whose data are broken (truncated download, damaged file)."""


class ImageTooLargeError(ImageLoadError):
    """Over :class:`LoadLimits` (bytes or pixels); refused before decoding."""


class InvalidArrayError(ImageLoadError):
    """A numpy array that is not an image: wrong shape or dtype, NaN/inf, floats outside [0, 1]."""


class VideoLoadError(ImageLoadError):
    """A video that OpenCV cannot open or that yields no frame."""


def load_image(src: Any, *, limits: LoadLimits = DEFAULT_LIMITS, name: str | None = None) -> np.ndarray:
    """Load a path, bytes, a binary file object (e.g. Streamlit's ``UploadedFile``), a PIL image or a numpy array
    as an ``(H, W, 3)`` uint8 RGB array; ``name`` labels the input in the :class:`ImageLoadError` it raises."""
    if isinstance(src, np.ndarray):
        return _from_array(src, limits, name or "<array>")
    if isinstance(src, Image.Image):
        label = name or getattr(src, "filename", "") or "<PIL image>"
        return _from_pil(src, limits, label)
    if isinstance(src, (bytes, bytearray, memoryview)):
        return _from_bytes(bytes(src), limits, name or "<bytes>")
    if isinstance(src, (str, os.PathLike)):
        return _from_path(Path(src), limits, name)
    if hasattr(src, "read"):
        label = name or str(getattr(src, "name", "") or "<file object>")
        try:
            data = src.read(limits.max_bytes + 1)
        except (OSError, ValueError) as exc:
            raise ImageLoadError(f"{label}: could not be read ({exc})", label) from exc
        if isinstance(data, str):
            raise ImageLoadError(f"{label}: a text-mode file object was given; open the file in binary mode", label)
        return _from_bytes(bytes(data), limits, label)
    raise ImageLoadError(
        f"cannot load an image from a {type(src).__name__}; give a path, bytes, a binary file object, "
        "a PIL image or a numpy array",
        name or "",
    )


def _from_path(path: Path, limits: LoadLimits, name: str | None) -> np.ndarray:
    label = name or str(path)
    if not path.exists():
        raise ImageNotFoundError(f"{label}: no such file", label)
    if not path.is_file():
        raise ImageNotFoundError(f"{label}: is not a file", label)
    size = path.stat().st_size
    if size == 0:
        raise EmptyInputError(f"{label}: the file is empty (0 bytes)", label)
    if size > limits.max_bytes:
        raise ImageTooLargeError(
            f"{label}: the file is {size / 2**20:.1f} MiB, over the {limits.max_bytes / 2**20:.0f} MiB limit",
            label,
        )
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ImageLoadError(f"{label}: could not be read ({exc.strerror or exc})", label) from exc
    return _from_bytes(data, limits, label)


_IMAGE_MAGIC: tuple[bytes, ...] = (
    b"\xff\xd8\xff",  # JPEG
    b"\x89PNG\r\n\x1a\n",
    b"GIF87a",
    b"GIF89a",
    b"BM",
    b"II*\x00",  # TIFF
    b"MM\x00*",
    b"RIFF",  # WebP (RIFF....WEBP)
)


_HEIC_BRANDS: frozenset[bytes] = frozenset({b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis", b"mif1", b"msf1"})
"""ISO-BMFF brands of HEIC/HEIF stills (``mif1`` is shared with AVIF, which Pillow reads when built with it)."""


def _describe_non_image(data: bytes) -> str | None:
    """What a non-image file most likely is, for the error message (``None`` when it looks like an image)."""
    head = data[:1024]
    stripped = head.lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if head.startswith(b"%PDF"):
        return "a PDF document"
    if stripped.startswith(b"<"):
        if b"<svg" in stripped:
            return "an SVG drawing (vector images are not supported; export it as PNG or JPEG)"
        if b"<html" in stripped or b"<!doctype html" in stripped:
            return "an HTML page (perhaps an error page saved instead of the image)"
        return "an XML or HTML document"
    if head[4:8] == b"ftyp" and head[8:12] not in (b"avif", b"avis", b"heic", b"heix", b"mif1"):
        return "a video (MP4/MOV); use core.io.iter_video_frames"
    if head.startswith(b"\x1aE\xdf\xa3"):
        return "a video (Matroska/WebM); use core.io.iter_video_frames"
    if head.startswith(b"PK\x03\x04"):
        return "a ZIP archive"
    if any(head.startswith(m) for m in _IMAGE_MAGIC):
        return None
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError:
        return None
    if text and sum(c.isprintable() or c in "\r\n\t" for c in text) >= 0.95 * len(text):
        return "a text file"
    return None


def _from_bytes(data: bytes, limits: LoadLimits, label: str) -> np.ndarray:
    if len(data) == 0:
        raise EmptyInputError(f"{label}: the input is empty (0 bytes)", label)
    if len(data) > limits.max_bytes:
        raise ImageTooLargeError(f"{label}: the input is over the {limits.max_bytes / 2**20:.0f} MiB limit", label)
    what = _describe_non_image(data)
    if what is not None:
        raise UnsupportedFormatError(f"{label}: this is {what}, not an image", label)
    try:
        with warnings.catch_warnings():
            # Pillow warns (on stderr) from 89 MP on; our own pixel limit below is the one that decides
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            im = Image.open(io.BytesIO(data))
    except Image.DecompressionBombError as exc:
        claimed = re.search(r"\((\d+) pixels\)", str(exc))
        size = f"claims {int(claimed.group(1)) / 1e6:.0f} megapixels, " if claimed else "is "
        raise ImageTooLargeError(
            f"{label}: {size}over the {limits.max_pixels / 1e6:.0f} MP limit; refused before decoding", label
        ) from exc
    except UnidentifiedImageError as exc:
        if data[4:8] == b"ftyp" and data[8:12] in _HEIC_BRANDS:
            raise UnsupportedFormatError(
                f"{label}: this is a HEIC/HEIF photo (the iPhone format), which cannot be read here; "
                "convert it to JPEG or PNG",
                label,
            ) from exc
        if any(data.startswith(m) for m in _IMAGE_MAGIC):
            raise CorruptImageError(f"{label}: looks like an image but its header is damaged", label) from exc
        raise UnsupportedFormatError(
            f"{label}: not an image format that can be read (JPEG, PNG, GIF, BMP, TIFF, WebP...)", label
        ) from exc
    except Exception as exc:  # Pillow's plugins raise SyntaxError, struct.error, ... on hostile headers
        raise CorruptImageError(f"{label}: the image header is damaged ({type(exc).__name__}: {exc})", label) from exc
    return _from_pil(im, limits, label)


def _from_pil(im: Image.Image, limits: LoadLimits, label: str) -> np.ndarray:
    width, height = im.size
    if width < 1 or height < 1:
        raise EmptyInputError(f"{label}: the image has no pixels ({width}x{height})", label)
    if width * height > limits.max_pixels:
        raise ImageTooLargeError(
            f"{label}: {width}x{height} is {width * height / 1e6:.0f} megapixels, over the "
            f"{limits.max_pixels / 1e6:.0f} MP limit (downscale it first)",
            label,
        )
    try:
        if getattr(im, "n_frames", 1) > 1:
            im.seek(0)  # animated GIF/WebP/APNG: the first frame
        im.load()
        return _pil_to_rgb(ImageOps.exif_transpose(im) or im, label)
    except (ImageLoadError, MemoryError):
        raise
    except Exception as exc:  # truncated data: OSError; damaged streams: SyntaxError, zlib.error, ValueError...
        raise CorruptImageError(
            f"{label}: the image data are damaged or truncated ({type(exc).__name__}: {exc})", label
        ) from exc


def _composite_on_white(rgb: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """``round(rgb * a/255 + 255 * (1 - a/255))`` in uint16 integers, in place, to bound the loader's memory.

    ``(rgb*a + 255*(255-a) + 127) // 255`` equals the rounded real value exactly (``N + 127.5`` is never a
    multiple of 255) and never exceeds 65152, so uint16 holds it: about 8 bytes per pixel instead of float32's 40.
    """
    a = alpha.astype(np.uint16)[..., None]
    out = rgb.astype(np.uint16)
    out *= a
    np.subtract(255, a, out=a)
    a *= 255
    a += 127
    out += a
    del a
    out //= 255
    return out.astype(np.uint8)


def _pil_to_rgb(im: Image.Image, label: str) -> np.ndarray:
    mode = im.mode
    if mode == "P" or mode == "PA":
        im = im.convert("RGBA") if ("transparency" in im.info or mode == "PA") else im.convert("RGB")
        mode = im.mode
    if mode == "RGB":
        return np.ascontiguousarray(np.asarray(im, dtype=np.uint8))
    if mode in ("RGBA", "RGBa", "LA", "La"):
        arr = np.asarray(im if mode == "RGBA" else im.convert("RGBA"), dtype=np.uint8)
        return _composite_on_white(arr[..., :3], arr[..., 3])
    if mode in ("L", "1"):
        return _gray_to_rgb(np.asarray(im.convert("L"), dtype=np.uint8))
    if mode.startswith("I;16") or mode == "I":
        arr = np.asarray(im)
        # integer rounding, round(x / 257) == (x + 128) // 257 exactly: 4 bytes per pixel (8 for 32-bit "I"),
        # not float64 temporaries; 16-bit data span 0..65535, a 32-bit "I" image holding 8-bit values stays as is
        wide = arr.astype(np.uint32 if arr.dtype.kind == "u" and arr.dtype.itemsize <= 2 else np.int64)
        del arr
        if mode.startswith("I;16") or wide.max(initial=0) > 255:
            wide += 128
            wide //= 257
        np.clip(wide, 0, 255, out=wide)
        return _gray_to_rgb(wide.astype(np.uint8))
    if mode == "F":
        arr = np.asarray(im, dtype=np.float32)
        if not np.isfinite(arr).all():
            raise CorruptImageError(f"{label}: the floating-point image holds NaN or infinite values", label)
        arr = arr * 255.0 if arr.max(initial=0.0) <= 1.0 else arr
        return _gray_to_rgb(np.clip(arr + 0.5, 0, 255).astype(np.uint8))
    # CMYK, YCbCr, LAB, HSV, ...: Pillow's conversion (CMYK is converted naively, without an ICC profile)
    return np.ascontiguousarray(np.asarray(im.convert("RGB"), dtype=np.uint8))


def _gray_to_rgb(gray: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(np.repeat(gray[..., None], 3, axis=2))


def _from_array(arr: np.ndarray, limits: LoadLimits, label: str) -> np.ndarray:
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[..., 0]
    if arr.ndim not in (2, 3) or (arr.ndim == 3 and arr.shape[2] not in (3, 4)):
        raise InvalidArrayError(
            f"{label}: an image array must be (H, W), (H, W, 1), (H, W, 3) RGB or (H, W, 4) RGBA; "
            f"got shape {arr.shape}",
            label,
        )
    if arr.size == 0:
        raise EmptyInputError(f"{label}: the array has no pixels (shape {arr.shape})", label)
    if arr.shape[0] * arr.shape[1] > limits.max_pixels:
        raise ImageTooLargeError(
            f"{label}: {arr.shape[1]}x{arr.shape[0]} is over the {limits.max_pixels / 1e6:.0f} MP limit", label
        )
    arr = _to_uint8(arr, label)
    if arr.ndim == 2:
        return _gray_to_rgb(arr)
    if arr.shape[2] == 4:
        return _composite_on_white(arr[..., :3], arr[..., 3])
    return np.ascontiguousarray(arr)


def _to_uint8(arr: np.ndarray, label: str) -> np.ndarray:
    kind = arr.dtype.kind
    if arr.dtype == np.uint8:
        return arr
    if arr.dtype == np.bool_:
        return arr.astype(np.uint8) * 255
    if arr.dtype == np.uint16:
        return ((arr.astype(np.uint32) + 128) // 257).astype(np.uint8)
    if kind == "f":
        if not np.isfinite(arr).all():
            raise InvalidArrayError(f"{label}: the array holds NaN or infinite values", label)
        lo, hi = float(arr.min()), float(arr.max())
        if lo < -1e-6 or hi > 1.0 + 1e-6:
            raise InvalidArrayError(
                f"{label}: float images must lie in [0, 1]; got values in [{lo:.3g}, {hi:.3g}] "
                "(divide 0-255 data by 255, or pass uint8)",
                label,
            )
        return np.clip(arr * 255.0 + 0.5, 0, 255).astype(np.uint8)
    if kind in "iu":
        lo, hi = int(arr.min()), int(arr.max())
        if lo < 0 or hi > 255:
            raise InvalidArrayError(
                f"{label}: integer images other than uint16 must lie in [0, 255]; got [{lo}, {hi}]", label
            )
        return arr.astype(np.uint8)
    raise InvalidArrayError(
        f"{label}: unsupported array dtype {arr.dtype} (use uint8, uint16, bool or float in [0, 1])", label
    )


@dataclass(frozen=True)
class VideoInfo:
    """What OpenCV reports about a video. ``frame_count`` is the container's claim (may be approximate)."""

    fps: float
    frame_count: int
    width: int
    height: int


def _open_video(path: str | os.PathLike, limits: LoadLimits) -> tuple[Any, VideoInfo]:  # (cv2.VideoCapture, info)
    import cv2

    label = str(path)
    p = Path(path)
    if not p.is_file():
        raise VideoLoadError(f"{label}: no such video file", label)
    if p.stat().st_size == 0:
        raise VideoLoadError(f"{label}: the video file is empty (0 bytes)", label)
    cap = cv2.VideoCapture(str(p))
    if not cap.isOpened():
        cap.release()
        raise VideoLoadError(f"{label}: OpenCV cannot open this as a video (unknown or damaged format)", label)
    info = VideoInfo(
        fps=float(cap.get(cv2.CAP_PROP_FPS) or 0.0),
        frame_count=max(0, int(cap.get(cv2.CAP_PROP_FRAME_COUNT))),
        width=int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)),
        height=int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT)),
    )
    if info.width * info.height > limits.max_pixels:
        cap.release()
        raise ImageTooLargeError(f"{label}: {info.width}x{info.height} frames are over the pixel limit", label)
    return cap, info


def video_info(path: str | os.PathLike, *, limits: LoadLimits = DEFAULT_LIMITS) -> VideoInfo:
    """Frame rate, frame count and frame size of a video, without decoding it."""
    cap, info = _open_video(path, limits)
    cap.release()
    return info


def iter_video_frames(
    path: str | os.PathLike,
    every: int = 1,
    max_frames: int | None = None,
    *,
    limits: LoadLimits = DEFAULT_LIMITS,
) -> Iterator[tuple[int, np.ndarray]]:
    """Yield ``(frame_index, rgb)`` for every ``every``-th frame (indices count all frames from 0).

    Skipped frames are only grabbed, not decoded to RGB, so ``every=3`` costs about a third less. At most
    ``max_frames`` frames are yielded. A video that opens but yields no frame raises :class:`VideoLoadError`.
    """
    import cv2

    if every < 1:
        raise ValueError(f"every must be >= 1, got {every}")
    if max_frames is not None and max_frames < 1:
        raise ValueError(f"max_frames must be >= 1 or None, got {max_frames}")
    cap, _ = _open_video(path, limits)
    label = str(path)
    try:
        index, yielded = 0, 0
        while max_frames is None or yielded < max_frames:
            if not cap.grab():
                break
            if index % every == 0:
                ok, frame = cap.retrieve()
                if not ok or frame is None:
                    raise VideoLoadError(f"{label}: frame {index} could not be decoded", label)
                yield index, cv2.cvtColor(frame, cv2.COLOR_GRAY2RGB if frame.ndim == 2 else cv2.COLOR_BGR2RGB)
                yielded += 1
            index += 1
        if index == 0:
            raise VideoLoadError(f"{label}: the video has no readable frame", label)
    finally:
        cap.release()


IMAGE_SUFFIXES: frozenset[str] = frozenset(
    {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".pgm", ".ppm"}
)
"""File name endings taken as images inside folders and archives (anything else is skipped and listed)."""


class ArchiveError(ImageLoadError):
    """A ZIP that cannot be used as a whole: not a ZIP, empty, no image inside, or too large (a zip bomb)."""


@dataclass(frozen=True)
class ArchiveLimits:
    """Checked on the ZIP's directory before a byte is decompressed, and again while reading.

    ``max_ratio`` bounds uncompressed per compressed bytes (a JPEG or PNG stays near 1, a bomb reaches 1000) for
    each file and for the whole archive over ``ratio_floor`` bytes; smaller ones (a tiny flat PNG can reach 50x)
    may compress as they like.
    """

    max_members: int = 2000
    max_total_bytes: int = 1 << 30
    max_ratio: float = 100.0
    ratio_floor: int = 1 << 20

    def __post_init__(self) -> None:
        if min(self.max_members, self.max_total_bytes, self.max_ratio, self.ratio_floor) <= 0:
            raise ValueError(f"archive limits must be positive, got {self}")


@dataclass(frozen=True)
class ArchiveContents:
    """The images of an archive as ``(name inside it, bytes)``, and ``"name: why"`` for every file skipped."""

    images: list[tuple[str, bytes]] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)


def _skip_reason(info: zipfile.ZipInfo) -> str | None:
    parts = info.filename.replace("\\", "/").split("/")
    if parts[0] == "__MACOSX" or parts[-1].startswith("."):
        return "system file"
    if info.flag_bits & 0x1:
        return "encrypted"
    if Path(parts[-1]).suffix.lower() not in IMAGE_SUFFIXES:
        return "not an image"
    return None


def read_image_archive(
    src: bytes | str | os.PathLike,
    *,
    name: str | None = None,
    limits: ArchiveLimits = ArchiveLimits(),
    image_limits: LoadLimits = DEFAULT_LIMITS,
) -> ArchiveContents:
    """The image files of a ZIP, read in memory (nothing is extracted to disk, so no path can escape).

    Files that are not images (by name), encrypted, damaged or over ``image_limits.max_bytes`` are skipped
    and listed; :func:`load_image` decodes the images later with its own limits. An :class:`ArchiveError` (not a
    ZIP, no image, over ``limits``) is decided from the ZIP's directory before anything is decompressed.
    """
    label = name or (str(src) if isinstance(src, (str, os.PathLike)) else "<zip>")
    try:
        zf = zipfile.ZipFile(io.BytesIO(src) if isinstance(src, (bytes, bytearray)) else src)
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise ArchiveError(f"{label}: not a readable ZIP archive ({exc})", label) from exc
    with zf:
        files = [i for i in zf.infolist() if not i.is_dir()]
        if not files:
            raise ArchiveError(f"{label}: the ZIP archive is empty", label)
        if len(files) > limits.max_members:
            raise ArchiveError(f"{label}: {len(files)} files, over the limit of {limits.max_members}", label)
        total = sum(i.file_size for i in files)
        if total > limits.max_total_bytes:
            raise ArchiveError(
                f"{label}: would expand to {total / 2**20:.0f} MiB, over the {limits.max_total_bytes / 2**20:.0f} "
                "MiB limit (a zip bomb?); nothing was extracted",
                label,
            )
        checks = [(f"{i.filename} expands", i.file_size, max(1, i.compress_size), "") for i in files]
        packed = max(1, sum(i.compress_size for i in files))  # many small bombs add up to a big one
        checks.append((f"its {len(files)} files expand", total, packed, " together"))
        for what, size, compressed, together in checks:
            if size > limits.ratio_floor and size > limits.max_ratio * compressed:
                raise ArchiveError(
                    f"{label}: {what} {size / compressed:.0f}-fold{together}, over the {limits.max_ratio:.0f}-fold "
                    "limit (a zip bomb?); nothing was extracted",
                    label,
                )
        out = ArchiveContents()
        for i in files:
            reason = _skip_reason(i)
            if reason is None and i.file_size > image_limits.max_bytes:
                reason = f"over the {image_limits.max_bytes / 2**20:.0f} MiB limit"
            if reason is not None:
                out.skipped.append(f"{i.filename}: {reason}")
                continue
            try:  # zipfile stops at the declared size and checks the CRC, so a lying header reads as damaged
                with zf.open(i) as fh:
                    data = fh.read()
            except (zipfile.BadZipFile, zlib.error, OSError, EOFError, NotImplementedError, RuntimeError) as exc:
                out.skipped.append(f"{i.filename}: damaged ({type(exc).__name__})")
                continue
            out.images.append((i.filename, data))
        if not out.images:
            listed = "; ".join(out.skipped[:5]) + (" ..." if len(out.skipped) > 5 else "")
            raise ArchiveError(f"{label}: no image in the ZIP archive (skipped {listed})", label)
        return out


def rewrite_video(
    src: str | os.PathLike,
    dst: str | os.PathLike,
    transform: Callable[[int, np.ndarray], np.ndarray],
    *,
    limits: LoadLimits = DEFAULT_LIMITS,
    progress: Callable[[int, int], None] | None = None,
) -> VideoInfo:
    """Write ``transform(index, rgb)`` of every frame of ``src`` to the MP4 ``dst``, same size and frame rate.

    The codec is the first of H.264 (``avc1``, plays in browsers) and MPEG-4 Part 2 (``mp4v``, in every
    OpenCV build) that OpenCV can open here. Returns what OpenCV reads back from ``dst``; a :class:`VideoLoadError`
    when ``src`` cannot be read, no codec can write ``dst`` or a transformed frame changes size.
    """
    import cv2

    info = video_info(src, limits=limits)
    fps = info.fps if info.fps > 0 else 25.0
    size = (info.width, info.height)
    dst = Path(dst)
    quiet = cv2.utils.logging.getLogLevel()
    for fourcc in ("avc1", "mp4v"):
        cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)  # a missing codec is expected
        try:
            writer = cv2.VideoWriter(str(dst), cv2.VideoWriter_fourcc(*fourcc), fps, size)
        finally:
            cv2.utils.logging.setLogLevel(quiet)
        if writer.isOpened():
            break
        writer.release()
    else:
        raise VideoLoadError(f"{dst.name}: no MP4 codec (avc1, mp4v) can be written with this OpenCV", str(dst))
    try:
        for index, rgb in iter_video_frames(src, limits=limits):
            out = transform(index, rgb)
            if out.shape[:2] != rgb.shape[:2]:
                raise VideoLoadError(f"frame {index}: the drawing changed the frame size {rgb.shape[:2]}", str(src))
            writer.write(cv2.cvtColor(np.ascontiguousarray(out), cv2.COLOR_RGB2BGR))
            if progress is not None:
                progress(index + 1, max(info.frame_count, index + 1))
    finally:
        writer.release()
    return video_info(dst, limits=limits)
