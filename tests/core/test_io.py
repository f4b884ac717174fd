"""core.io: every input kind, every colour mode, the limits, the typed errors, and video frames."""

from __future__ import annotations

import io
import struct
import tracemalloc
import zlib
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from core.io import (
    CorruptImageError,
    EmptyInputError,
    ImageLoadError,
    ImageNotFoundError,
    ImageTooLargeError,
    InvalidArrayError,
    LoadLimits,
    UnsupportedFormatError,
    VideoLoadError,
    iter_video_frames,
    load_image,
    video_info,
)


def _encode(im: Image.Image, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    im.save(buf, fmt, **kw)
    return buf.getvalue()


def _png_header_only(width: int, height: int) -> bytes:
    """A valid PNG signature + IHDR claiming width x height, a tiny IDAT and IEND: a few dozen bytes."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 16)) + chunk(b"IEND", b"")


@pytest.fixture(scope="module")
def single_face(samples_dir: Path) -> Path:
    return samples_dir / "single_face.jpg"


# --------------------------------------------------------------------------------------------------------------
# Input kinds


def test_every_input_kind_gives_the_same_rgb_array(single_face: Path):
    ref = load_image(single_face)
    assert ref.shape == (562, 572, 3) and ref.dtype == np.uint8 and ref.flags.c_contiguous
    data = single_face.read_bytes()
    assert np.array_equal(load_image(str(single_face)), ref)
    assert np.array_equal(load_image(data), ref)
    assert np.array_equal(load_image(bytearray(data)), ref)
    assert np.array_equal(load_image(io.BytesIO(data)), ref)
    with single_face.open("rb") as fh:
        assert np.array_equal(load_image(fh), ref)
    with Image.open(single_face) as im:
        assert np.array_equal(load_image(im), ref)
    assert np.array_equal(load_image(ref), ref)


@pytest.mark.parametrize(
    "name,shape",
    [
        ("multi_face.jpg", (667, 1000, 3)),
        ("free-mountain-vector-01.jpg", (1080, 1920, 3)),
        ("45-m7-di-ph.jpg", (512, 512, 3)),
    ],
)
def test_samples_load(samples_dir: Path, name: str, shape):
    assert load_image(samples_dir / name).shape == shape


def test_exif_orientation_is_applied():
    rgb = np.zeros((20, 40, 3), np.uint8)
    rgb[:, :20] = (255, 0, 0)  # left half red, right half blue (as stored)
    rgb[:, 20:] = (0, 0, 255)
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 CW to display"
    data = _encode(Image.fromarray(rgb), "JPEG", exif=exif.tobytes(), quality=95)
    out = load_image(data)
    assert out.shape == (40, 20, 3)  # upright: portrait
    assert out[5, 10, 0] > 200 and out[5, 10, 2] < 60  # stored left (red) is now on top
    assert out[35, 10, 2] > 200 and out[35, 10, 0] < 60


def test_colour_modes_become_rgb():
    gray = Image.fromarray(np.arange(256, dtype=np.uint8).reshape(16, 16))
    out = load_image(_encode(gray, "PNG"))
    assert (
        out.shape == (16, 16, 3)
        and np.array_equal(out[..., 0], np.asarray(gray))
        and (out[..., 0] == out[..., 2]).all()
    )

    rgba = np.zeros((8, 8, 4), np.uint8)
    rgba[..., 0] = 200
    rgba[:4, :, 3] = 255  # top opaque red, bottom fully transparent
    out = load_image(_encode(Image.fromarray(rgba, "RGBA"), "PNG"))
    assert tuple(out[0, 0]) == (200, 0, 0) and tuple(out[7, 7]) == (255, 255, 255)  # composited on white

    la = Image.fromarray(np.stack([np.full((4, 4), 10, np.uint8), np.zeros((4, 4), np.uint8)], 2), "LA")
    assert tuple(load_image(_encode(la, "PNG"))[0, 0]) == (255, 255, 255)

    pal = Image.fromarray(np.full((6, 6, 3), (10, 200, 30), np.uint8)).convert("P", palette=Image.Palette.ADAPTIVE)
    assert tuple(load_image(_encode(pal, "PNG"))[0, 0]) == (10, 200, 30)
    pal_t = pal.copy()
    pal_t.info["transparency"] = int(np.asarray(pal)[0, 0])
    assert tuple(load_image(_encode(pal_t, "PNG", transparency=pal_t.info["transparency"]))[0, 0]) == (255, 255, 255)

    deep = Image.fromarray(np.array([[0, 257 * 100, 65535]], np.uint16))  # I;16
    out = load_image(_encode(deep, "PNG"))
    assert out[0, :, 0].tolist() == [0, 100, 255]

    cmyk = Image.new("CMYK", (5, 5), (0, 255, 255, 0))  # pure red in CMYK
    out = load_image(_encode(cmyk, "JPEG", quality=95))
    assert out[2, 2, 0] > 200 and out[2, 2, 1] < 60 and out[2, 2, 2] < 60


def test_animated_gif_gives_its_first_frame():
    frames = [Image.new("RGB", (10, 10), c) for c in ((255, 0, 0), (0, 255, 0), (0, 0, 255))]
    buf = io.BytesIO()
    frames[0].save(buf, "GIF", save_all=True, append_images=frames[1:], duration=50, loop=0)
    out = load_image(buf.getvalue())
    assert out.shape == (10, 10, 3) and out[5, 5, 0] > 200 and out[5, 5, 1] < 50


def test_arrays_of_every_supported_kind():
    g = np.array([[0, 128, 255]], np.uint8)
    assert load_image(g).shape == (1, 3, 3)
    assert np.array_equal(load_image(g[..., None]), load_image(g))
    assert load_image(np.array([[0, 65535]], np.uint16))[0, :, 0].tolist() == [0, 255]
    assert load_image(np.array([[0.0, 0.5, 1.0]], np.float32))[0, :, 0].tolist() == [0, 128, 255]
    assert load_image(np.array([[True, False]]))[0, :, 0].tolist() == [255, 0]
    rgba = np.zeros((2, 2, 4), np.uint8)
    assert tuple(load_image(rgba)[0, 0]) == (255, 255, 255)  # fully transparent -> white


@pytest.mark.parametrize(
    "arr,err,text",
    [
        (np.array([[np.nan, 0.5]], np.float32), InvalidArrayError, "NaN"),
        (np.array([[np.inf, 0.5]], np.float64), InvalidArrayError, "NaN or infinite"),
        (np.array([[0.0, 2.0]], np.float32), InvalidArrayError, r"\[0, 1\]"),
        (np.zeros((2, 2, 2), np.uint8), InvalidArrayError, "shape"),
        (np.zeros((2, 2, 3, 1), np.uint8), InvalidArrayError, "shape"),
        (np.zeros(5, np.uint8), InvalidArrayError, "shape"),
        (np.zeros((0, 5, 3), np.uint8), EmptyInputError, "no pixels"),
        (np.array([[-1, 3]], np.int32), InvalidArrayError, r"\[0, 255\]"),
        (np.array([["a"]], object), InvalidArrayError, "dtype"),
    ],
)
def test_bad_arrays_are_refused(arr, err, text):
    with pytest.raises(err, match=text):
        load_image(arr)


# --------------------------------------------------------------------------------------------------------------
# Bad files: the acceptance list (0-byte, truncated, text renamed to .jpg, 30000x30000) and friends


def test_zero_byte_file(tmp_path: Path):
    p = tmp_path / "empty.jpg"
    p.write_bytes(b"")
    with pytest.raises(EmptyInputError, match=r"empty\.jpg: the file is empty \(0 bytes\)"):
        load_image(p)
    with pytest.raises(EmptyInputError):
        load_image(b"")


def test_truncated_jpeg(tmp_path: Path, single_face: Path):
    p = tmp_path / "cut.jpg"
    p.write_bytes(single_face.read_bytes()[:20_000])
    with pytest.raises(CorruptImageError, match=r"cut\.jpg: the image data are damaged or truncated"):
        load_image(p)
    p.write_bytes(single_face.read_bytes()[:200])  # cut inside the header
    with pytest.raises(CorruptImageError, match=r"cut\.jpg"):
        load_image(p)


@pytest.mark.parametrize(
    "content,what",
    [
        (b"name,age\nalice,3\n", "a text file"),
        (b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj", "a PDF document"),
        (b"<!DOCTYPE html><html><body>404</body></html>", "an HTML page"),
        (b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg"></svg>', "an SVG drawing"),
        (b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00", "a video"),
    ],
)
def test_non_images_renamed_to_jpg(tmp_path: Path, content: bytes, what: str):
    p = tmp_path / "photo.jpg"
    p.write_bytes(content)
    with pytest.raises(UnsupportedFormatError, match=rf"photo\.jpg: this is {what}"):
        load_image(p)


def test_unknown_binary_is_unsupported():
    with pytest.raises(UnsupportedFormatError, match="not an image format"):
        load_image(bytes(range(256)) * 4, name="blob.bin")


def test_30000_square_png_is_refused_before_decoding(tmp_path: Path):
    p = tmp_path / "huge.png"
    p.write_bytes(_png_header_only(30000, 30000))
    tracemalloc.start()
    try:
        with pytest.raises(ImageTooLargeError, match=r"huge\.png"):
            load_image(p)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 50 * 2**20  # nothing near the 2.7 GB the pixels would need was allocated


def test_pixel_and_byte_limits_are_checked_first(tmp_path: Path, single_face: Path):
    with pytest.raises(ImageTooLargeError, match="8000x6000 is 48 megapixels, over the 40 MP limit"):
        load_image(_png_header_only(8000, 6000), name="big.png")
    with pytest.raises(ImageTooLargeError, match="over the"):
        load_image(single_face, limits=LoadLimits(max_pixels=100_000))
    with pytest.raises(ImageTooLargeError, match="MiB"):
        load_image(single_face, limits=LoadLimits(max_bytes=1000))
    with pytest.raises(ImageTooLargeError):
        load_image(np.zeros((400, 400), np.uint8), limits=LoadLimits(max_pixels=1000))


def test_missing_paths_and_wrong_types(tmp_path: Path):
    with pytest.raises(ImageNotFoundError, match="no such file"):
        load_image(tmp_path / "nope.jpg")
    with pytest.raises(ImageNotFoundError, match="is not a file"):
        load_image(tmp_path)
    with pytest.raises(ImageLoadError, match="cannot load an image from a int"):
        load_image(42)
    with pytest.raises(ImageLoadError, match="binary mode"):
        load_image(io.StringIO("text"))


def test_every_error_is_a_value_error():
    for cls in (EmptyInputError, UnsupportedFormatError, CorruptImageError, ImageTooLargeError, InvalidArrayError):
        assert issubclass(cls, ImageLoadError) and issubclass(cls, ValueError)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.binary(min_size=0, max_size=2048))
def test_fuzz_random_bytes_only_raise_typed_errors(data: bytes):
    try:
        out = load_image(data)
    except ImageLoadError:
        return
    assert out.ndim == 3 and out.shape[2] == 3 and out.dtype == np.uint8


@settings(max_examples=150, deadline=None)
@given(st.integers(0, 1023), st.integers(0, 255), st.integers(1, 40))
def test_fuzz_damaged_png_and_jpeg_only_raise_typed_errors(pos: int, value: int, cut: int):
    rgb = (np.arange(24 * 24 * 3) % 251).astype(np.uint8).reshape(24, 24, 3)
    for fmt in ("PNG", "JPEG"):
        data = bytearray(_encode(Image.fromarray(rgb), fmt))
        data[pos % len(data)] = value
        data = data[: max(1, len(data) - cut * (pos % 3))]
        try:
            out = load_image(bytes(data))
        except ImageLoadError:
            continue
        assert out.shape[2] == 3 and out.dtype == np.uint8


# --------------------------------------------------------------------------------------------------------------
# Video


def test_video_info(samples_dir: Path):
    info = video_info(samples_dir / "single_face.mp4")
    assert (info.width, info.height) == (640, 360)
    assert abs(info.fps - 30.0) < 0.5 and info.frame_count == 72


def test_iter_video_frames_every_and_max_frames(samples_dir: Path):
    frames = list(iter_video_frames(samples_dir / "single_face.mp4", every=3))
    assert [i for i, _ in frames] == list(range(0, 72, 3))
    assert all(f.shape == (360, 640, 3) and f.dtype == np.uint8 for _, f in frames)
    first = list(iter_video_frames(samples_dir / "no_face.mp4", max_frames=2))
    assert [i for i, _ in first] == [0, 1] and first[0][1].shape == (540, 960, 3)
    # frames come out RGB: the "Caminandes" sky is blue, so blue > red on average
    sky = first[0][1]
    assert sky[..., 2].mean() > sky[..., 0].mean()


def test_bad_videos_raise_video_load_error(tmp_path: Path):
    with pytest.raises(VideoLoadError, match="no such video"):
        list(iter_video_frames(tmp_path / "none.mp4"))
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    with pytest.raises(VideoLoadError, match="empty"):
        video_info(empty)
    text = tmp_path / "notes.mp4"
    text.write_bytes(b"this is not a video\n" * 50)
    with pytest.raises(VideoLoadError, match=r"notes\.mp4"):
        list(iter_video_frames(text))
    with pytest.raises(ValueError, match="every"):
        list(iter_video_frames(text, every=0))
