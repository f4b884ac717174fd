"""The bad-input corpus: every kind of hostile or unusual input an entry point must answer plainly.

Nothing here is committed as a binary: :func:`build_corpus` writes every file from the two real sample photos
(``single_face.jpg``, ``multi_face.jpg``, the faceless mountain) and from PIL/numpy/cv2, deterministically and in
a few seconds. The same list feeds the Python API and CLI tests (``tests/reliability``), the dashboard pages'
tests and ``bench/reliability.py``, which tables each kind against each entry point in ``docs/reliability.md``.

``Case.expect`` says what a correct entry point does with the input:

* ``"error"``: a typed ``core.io.ImageLoadError`` (``VideoLoadError`` for videos) with a plain message;
* ``"faces"``: loads, and at least one face is found;
* ``"no_face"``: loads, and no face is found;
* ``"ok"``: loads without error; the face count is not asserted (a half-cut or 10-px face may or may not be
  found, and that is a recall question, not a reliability one).

The bombs are real: ``png_bomb`` and ``huge_30000`` carry every row of their pixels (1-bit, all zero, so zlib
packs 50-112 MB of rows into ~50-110 KB), so a loader that decoded them would allocate 1.2-2.7 GB as RGB.
"""

from __future__ import annotations

import io
import struct
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from PIL import Image

import core.io  # noqa: F401  (sets OPENCV_FFMPEG_LOGLEVEL before this module's VideoWriter starts FFmpeg)

__all__ = ["Case", "build_corpus", "MEDIA", "EXPECTS", "PeakRss", "peak_rss_supported"]

MEDIA = ("image", "video", "array")
EXPECTS = ("error", "faces", "no_face", "ok")

FACE_BOX = (191, 130, 185, 266)
"""x, y, w, h of the face in ``single_face.jpg`` (the default detector's box), used to cut and tile it."""


@dataclass(frozen=True)
class Case:
    """One corpus entry: an input file (or array) and what every entry point must do with it."""

    kind: str
    media: str
    path: Path | None
    array: np.ndarray | None
    expect: str
    note: str

    def __post_init__(self) -> None:
        if self.media not in MEDIA or self.expect not in EXPECTS:
            raise ValueError(f"{self.kind}: bad media {self.media!r} or expect {self.expect!r}")
        if (self.media == "array") != (self.array is not None) or (self.media == "array") == (self.path is not None):
            raise ValueError(f"{self.kind}: arrays carry .array, files carry .path")


# --------------------------------------------------------------------------------------------------------------
# Encoders


def _encode(im: Image.Image, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    im.save(buf, fmt, **kw)
    return buf.getvalue()


def _png_chunk(tag: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)


def _zero_png_1bit(width: int, height: int) -> bytes:
    """A complete, valid 1-bit gray PNG of ``width`` x ``height`` black pixels, compressed row block by block.

    Every row is present (filter byte + packed bits), so this is a real decompression bomb, not a lying header.
    """
    row = 1 + (width + 7) // 8
    block_rows = max(1, min(height, (4 << 20) // row))
    comp = zlib.compressobj(9)
    parts = []
    zeros = bytes(row * block_rows)
    done = 0
    while done < height:
        n = min(block_rows, height - done)
        parts.append(comp.compress(zeros if n == block_rows else bytes(row * n)))
        done += n
    parts.append(comp.flush())
    ihdr = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", ihdr)
        + _png_chunk(b"IDAT", b"".join(parts))
        + _png_chunk(b"IEND", b"")
    )


def _gif_bomb_screen() -> bytes:
    """A 1x1 GIF whose logical screen claims 65535 x 65535 (4.3 gigapixels)."""
    data = bytearray(_encode(Image.new("P", (1, 1)), "GIF"))
    data[6:10] = struct.pack("<HH", 65535, 65535)
    return bytes(data)


def _gif_bomb_frame() -> bytes:
    """A GIF with a 1x1 logical screen whose first frame descriptor claims 65535 x 65535."""
    data = bytearray(_encode(Image.new("P", (1, 1)), "GIF"))
    at = data.index(b",")  # image descriptor: ',' left top width height flags
    data[at + 5 : at + 9] = struct.pack("<HH", 65535, 65535)
    return bytes(data)


# --------------------------------------------------------------------------------------------------------------
# Derived photos


def _face_crop(face: Image.Image, margin: float = 0.35) -> Image.Image:
    x, y, w, h = FACE_BOX
    mx, my = int(w * margin), int(h * margin)
    return face.crop((max(0, x - mx), max(0, y - my), min(face.width, x + w + mx), min(face.height, y + h + my)))


def _fifty_faces(face: Image.Image) -> Image.Image:
    crop = _face_crop(face).resize((120, 150), Image.Resampling.LANCZOS)
    canvas = Image.new("RGB", (10 * 128, 5 * 158), (200, 200, 200))
    for k in range(50):
        canvas.paste(crop, (4 + (k % 10) * 128, 4 + (k // 10) * 158))
    return canvas


def _tiny_face(face: Image.Image) -> Image.Image:
    x, y, w, h = FACE_BOX
    scale = 10 / w
    small = face.resize((max(1, round(face.width * scale)), max(1, round(face.height * scale))), Image.Resampling.BOX)
    canvas = Image.new("RGB", (320, 240), (128, 128, 128))
    canvas.paste(small, (150, 110))
    return canvas


def _rgba_face(face: Image.Image) -> Image.Image:
    """The face opaque inside an ellipse, fully transparent outside (RGB zeros there: black if alpha is dropped)."""
    w, h = face.size
    yy, xx = np.mgrid[0:h, 0:w]
    x, y, bw, bh = FACE_BOX
    cx, cy, rx, ry = x + bw / 2, y + bh / 2, bw * 0.9, bh * 0.8
    inside = ((xx - cx) / rx) ** 2 + ((yy - cy) / ry) ** 2 <= 1.0
    rgb = np.asarray(face).copy()
    rgb[~inside] = 0
    alpha = np.where(inside, 255, 0).astype(np.uint8)
    return Image.fromarray(np.dstack([rgb, alpha]), "RGBA")


def _exif_rotated(face: Image.Image) -> bytes:
    """The face stored rotated a quarter turn with orientation 6, which tells viewers to turn it back."""
    stored = face.transpose(Image.Transpose.ROTATE_90)  # counter-clockwise; orientation 6 turns it clockwise
    exif = Image.Exif()
    exif[0x0112] = 6
    return _encode(stored, "JPEG", quality=90, exif=exif.tobytes())


def _animated_gif(face: Image.Image, mountain: Image.Image) -> bytes:
    frames = [face, mountain.resize(face.size), face.transpose(Image.Transpose.FLIP_LEFT_RIGHT)]
    return _encode(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)


def _write_video(path: Path, frames: list[np.ndarray], fourcc: str, fps: float = 10.0) -> None:
    h, w = frames[0].shape[:2] if frames else (48, 64)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), fps, (w, h))
    if not writer.isOpened():
        raise RuntimeError(f"OpenCV cannot write {path.suffix} with {fourcc} here")
    for f in frames:
        writer.write(cv2.cvtColor(f, cv2.COLOR_RGB2BGR))
    writer.release()


# --------------------------------------------------------------------------------------------------------------
# The corpus


def build_corpus(dest: Path, samples_dir: Path) -> list[Case]:
    """Write every corpus file into ``dest`` and return the cases, in a fixed order (deterministic, ~2-4 s).

    Args:
        dest: an empty or reusable folder (files are overwritten).
        samples_dir: ``shared/datasets/samples`` (single_face.jpg, multi_face.jpg, free-mountain-vector-01.jpg).
    """
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    face_bytes = (samples_dir / "single_face.jpg").read_bytes()
    face = Image.open(io.BytesIO(face_bytes)).convert("RGB")
    mountain = Image.open(samples_dir / "free-mountain-vector-01.jpg").convert("RGB")
    face_rgb = np.asarray(face)
    cases: list[Case] = []

    def file(kind: str, name: str, data: bytes, expect: str, note: str, media: str = "image") -> None:
        path = dest / name
        path.write_bytes(data)
        cases.append(Case(kind, media, path, None, expect, note))

    def array(kind: str, arr: np.ndarray, expect: str, note: str) -> None:
        cases.append(Case(kind, "array", None, arr, expect, note))

    png_face = _encode(face, "PNG")

    # -- broken or empty files
    file("zero_byte", "zero_byte.jpg", b"", "error", "0-byte file named .jpg")
    file("truncated_jpeg", "truncated.jpg", face_bytes[: len(face_bytes) // 2], "error", "face JPEG cut at half")
    file("truncated_jpeg_header", "truncated_header.jpg", face_bytes[:300], "error", "JPEG cut inside its header")
    file("truncated_png", "truncated.png", png_face[: len(png_face) // 2], "error", "face PNG cut at half")
    flipped = bytearray(png_face)
    for pos in rng.integers(200, len(flipped), 64):
        flipped[int(pos)] ^= 0xFF
    file("corrupt_png_crc", "corrupt_crc.png", bytes(flipped), "error", "face PNG with 64 flipped bytes (bad CRC)")

    # -- bombs and limits (each refused before decoding)
    file("png_bomb", "png_bomb.png", _zero_png_1bit(20000, 20000), "error", "real 1-bit PNG, 20000x20000 (400 MP)")
    file("huge_30000", "huge_30000.png", _zero_png_1bit(30000, 30000), "error", "real 1-bit PNG, 30000x30000 (900 MP)")
    file("png_50mp", "png_50mp.png", _zero_png_1bit(7100, 7100), "error", "real PNG, 7100x7100: over the 40 MP limit")
    file("png_100mp", "png_100mp.png", _zero_png_1bit(10000, 10000), "error", "real PNG, 100 MP (Pillow only warns)")
    file("gif_bomb_screen", "gif_bomb_screen.gif", _gif_bomb_screen(), "error", "GIF screen claims 65535x65535")
    file("gif_bomb_frame", "gif_bomb_frame.gif", _gif_bomb_frame(), "error", "GIF frame claims 65535x65535")

    # -- not images at all, named as images
    file("text_as_jpg", "notes.jpg", b"name,age\nalice,31\nbob,42\n" * 20, "error", "CSV text renamed .jpg")
    pdf = b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<< /Type /Catalog >>\nendobj\ntrailer\n<< /Root 1 0 R >>\n%%EOF\n"
    file("pdf_as_jpg", "document.jpg", pdf, "error", "PDF renamed .jpg")
    html = b"<!DOCTYPE html>\n<html><head><title>404 Not Found</title></head><body>Not Found</body></html>\n"
    file("html_as_jpg", "error_page.jpg", html, "error", "HTML error page saved as .jpg")
    svg = b'<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><circle r="4"/></svg>'
    file("svg_as_jpg", "drawing.jpg", svg, "error", "SVG drawing renamed .jpg")
    heic = struct.pack(">I", 24) + b"ftypheic" + b"\x00\x00\x00\x00mif1heic" + rng.bytes(2000)
    file("heic_as_png", "iphone.png", heic, "error", "HEIC-branded file named .png")
    file("unknown_binary_png", "blob.png", rng.bytes(4096), "error", "random bytes named .png")
    file("mp4_as_jpg", "clip.jpg", (samples_dir / "single_face.mp4").read_bytes(), "error", "an MP4 video named .jpg")

    # -- valid but unusual encodings of a real face
    cmyk = _encode(face.convert("CMYK"), "JPEG", quality=90)
    file("cmyk_jpeg", "cmyk.jpg", cmyk, "faces", "CMYK JPEG of the face")
    gray16 = (np.asarray(face.convert("L")).astype(np.uint16) * 257).astype(np.uint16)
    file("png_16bit", "gray16.png", _encode(Image.fromarray(gray16), "PNG"), "faces", "16-bit grayscale PNG")
    file("grayscale", "gray.jpg", _encode(face.convert("L"), "JPEG", quality=90), "faces", "8-bit grayscale JPEG")
    palette = face.convert("P", palette=Image.Palette.ADAPTIVE, colors=64)
    file("palette", "palette.png", _encode(palette, "PNG"), "faces", "64-colour palette PNG")
    file("rgba", "rgba.png", _encode(_rgba_face(face), "PNG"), "faces", "RGBA PNG, transparent outside the face")
    file("exif_rotated", "exif_rotated.jpg", _exif_rotated(face), "faces", "face stored sideways, EXIF orientation 6")
    file("animated_gif", "animated.gif", _animated_gif(face, mountain), "faces", "3-frame GIF, first frame a face")
    file("webp", "face.webp", _encode(face, "WEBP", quality=90), "faces", "WebP")
    file("bmp", "face.bmp", _encode(face, "BMP"), "faces", "BMP")
    file("tiff", "face.tiff", _encode(face, "TIFF", compression="tiff_deflate"), "faces", "TIFF (deflate)")
    file("jpeg_named_png", "really_jpeg.png", face_bytes, "faces", "a JPEG named .png (content wins)")

    # -- geometry and content
    file("one_pixel", "one_pixel.png", _encode(Image.new("RGB", (1, 1), (90, 60, 40)), "PNG"), "no_face", "1x1 image")
    tall = Image.fromarray(rng.integers(0, 255, (5000, 1, 3), dtype=np.uint8))
    file("aspect_1x5000", "aspect_1x5000.png", _encode(tall, "PNG"), "no_face", "1 px wide, 5000 px tall")
    wide = Image.fromarray(rng.integers(0, 255, (1, 5000, 3), dtype=np.uint8))
    file("aspect_5000x1", "aspect_5000x1.png", _encode(wide, "PNG"), "no_face", "5000 px wide, 1 px tall")
    file("faceless", "mountain.jpg", (samples_dir / "free-mountain-vector-01.jpg").read_bytes(), "no_face",
         "the samples' mountain drawing")  # fmt: skip
    x, _, w, _ = FACE_BOX
    cut = face.crop((x + w // 2, 0, face.width, face.height))
    file("face_cut_by_border", "face_cut.jpg", _encode(cut, "JPEG", quality=90), "ok", "left half of the face cut off")
    file("tiny_face", "tiny_face.png", _encode(_tiny_face(face), "PNG"), "ok", "a 10-px-wide face on 320x240")
    file("fifty_faces", "fifty_faces.jpg", _encode(_fifty_faces(face), "JPEG", quality=90), "faces",
         "the face tiled 50 times (10x5) on 1280x790")  # fmt: skip
    file("multi_face", "multi_face.jpg", (samples_dir / "multi_face.jpg").read_bytes(), "faces", "5-face photo")

    # -- arrays handed to the Python API
    nan = face_rgb.astype(np.float32) / 255.0
    nan[100:110, 100:110] = np.nan
    array("nan_array", nan, "error", "float32 face with a NaN patch")
    inf = face_rgb.astype(np.float64) / 255.0
    inf[0, 0, 0] = np.inf
    array("inf_array", inf, "error", "float64 face with one +inf")
    array("float_0_255", face_rgb.astype(np.float32), "error", "float face in 0..255 instead of [0, 1]")
    array("array_4d", face_rgb[None], "error", "batch-shaped (1, H, W, 3)")
    array("array_5ch", np.zeros((64, 64, 5), np.uint8), "error", "(H, W, 5) channels")
    array("array_1d", np.zeros(300, np.uint8), "error", "1-D vector")
    array("array_empty", np.zeros((0, 0, 3), np.uint8), "error", "(0, 0, 3): no pixels")
    obj = np.empty((8, 8, 3), dtype=object)
    obj[...] = 1
    array("object_dtype", obj, "error", "dtype object")
    array("complex_dtype", np.zeros((32, 32, 3), np.complex64), "error", "dtype complex64")
    array("int_out_of_range", face_rgb.astype(np.int32) * 4 - 100, "error", "int32 values in -100..920")
    array("array_face_rgba", np.dstack([face_rgb, np.full(face_rgb.shape[:2], 255, np.uint8)]), "faces",
          "valid (H, W, 4) uint8 RGBA face")  # fmt: skip

    # -- videos
    file("video_zero_byte", "zero.mp4", b"", "error", "0-byte .mp4", media="video")
    no_frames = dest / "no_frames.avi"
    _write_video(no_frames, [], "MJPG")
    cases.append(Case("video_no_frames", "video", no_frames, None, "error", "valid AVI container with 0 frames"))
    mp4 = (samples_dir / "single_face.mp4").read_bytes()
    file("video_truncated", "truncated.mp4", mp4[: len(mp4) // 2], "error", "face MP4 cut at half", media="video")
    file("video_garbage", "garbage.mp4", rng.bytes(50_000), "error", "random bytes named .mp4", media="video")
    head = mp4[:4096] + rng.bytes(20_000)
    file("video_header_garbage", "header_garbage.mp4", head, "error", "MP4 header then garbage", media="video")
    file("video_is_jpeg", "photo.mp4", face_bytes, "ok", "a JPEG photo named .mp4", media="video")
    clip = dest / "short_face.avi"
    _write_video(clip, [face_rgb[:560, :560]] * 3, "MJPG")
    cases.append(Case("video_valid", "video", clip, None, "faces", "3-frame MJPG AVI of the face (control)"))

    kinds = [c.kind for c in cases]
    if len(set(kinds)) != len(kinds):
        raise AssertionError(f"duplicate kinds in the corpus: {kinds}")
    return cases


# --------------------------------------------------------------------------------------------------------------
# Peak memory of one call


def _status_kib(field: str) -> int:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise OSError(f"{field} missing from /proc/self/status")


def peak_rss_supported() -> bool:
    """True where the kernel lets a process reset its own peak RSS (Linux >= 4.0: ``/proc/self/clear_refs``)."""
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
        _status_kib("VmHWM")
        return True
    except OSError:
        return False


@dataclass(frozen=True)
class PeakRss:
    """How far one call pushed the process's resident memory above where it started (bytes).

    Linux keeps the peak (``VmHWM``) per process and lets the process reset it to the current RSS by writing
    ``5`` to ``/proc/self/clear_refs``; so one process can measure case after case, unlike ``ru_maxrss``,
    which only ever grows. Memory that C libraries (Pillow's decoder, OpenCV, onnxruntime) allocate is
    counted, which ``tracemalloc`` would miss.
    """

    before: int
    peak: int

    @property
    def growth(self) -> int:
        return max(0, self.peak - self.before)

    @classmethod
    def measure(cls, fn: Callable[[], Any]) -> tuple[PeakRss, Any, BaseException | None]:
        """Run ``fn()`` and return (its peak RSS growth, its result or None, the exception it raised or None)."""
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
        before = _status_kib("VmRSS") * 1024
        result, error = None, None
        try:
            result = fn()
        except Exception as exc:  # the caller judges the exception; here only memory is measured
            error = exc
        peak = _status_kib("VmHWM") * 1024
        return cls(before, peak), result, error


def zip_bytes(members: dict[str, bytes], method: int | None = None) -> bytes:
    """An in-memory ZIP archive of ``members`` (name -> bytes), deflated unless ``method`` says otherwise."""
    import io
    import zipfile

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED if method is None else method) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buf.getvalue()
