"""core.io's ZIP reader (non-images, bombs, empty and broken archives, built in tmp) and its video rewriter."""

from __future__ import annotations

import zipfile
from pathlib import Path

import cv2
import numpy as np
import pytest

from core.io import (
    ArchiveError,
    ArchiveLimits,
    VideoLoadError,
    iter_video_frames,
    load_image,
    read_image_archive,
    rewrite_video,
    video_info,
)
from tests.harness.corpus import zip_bytes as _zip


def test_images_are_read_and_everything_else_is_skipped_and_listed(samples_dir: Path) -> None:
    jpg = (samples_dir / "single_face.jpg").read_bytes()
    data = _zip(
        {
            "a/face.jpg": jpg,
            "b/FACE.JPEG": jpg,
            "notes.txt": b"hello",
            "clip.mp4": (samples_dir / "single_face.mp4").read_bytes()[:5000],
            "__MACOSX/a/._face.jpg": b"\x00\x05\x16\x07",
            ".DS_Store": b"\x00",
            "inner.zip": _zip({"x.jpg": jpg}),
        }
    )
    out = read_image_archive(data, name="photos.zip")
    assert [n for n, _ in out.images] == ["a/face.jpg", "b/FACE.JPEG"]
    assert all(b == jpg for _, b in out.images)
    assert load_image(out.images[0][1]).shape == load_image(jpg).shape
    assert sorted(out.skipped) == sorted(
        [
            "notes.txt: not an image",
            "clip.mp4: not an image",
            "__MACOSX/a/._face.jpg: system file",
            ".DS_Store: system file",
            "inner.zip: not an image",
        ]
    )


def test_zip_bomb_is_refused_from_the_directory_before_decompressing(tmp_path: Path) -> None:
    bomb = _zip({"big.png": b"\x00" * (64 << 20)})  # 64 MiB of zeros: about 64 kB compressed
    assert len(bomb) < 200_000
    with pytest.raises(ArchiveError, match=r"bomb\.zip: big\.png expands \d+-fold.*zip bomb"):
        read_image_archive(bomb, name="bomb.zip")
    many = _zip({f"{i}.jpg": b"\xff\xd8\xff" for i in range(30)})
    with pytest.raises(ArchiveError, match="30 files, over the limit of 20"):
        read_image_archive(many, name="many.zip", limits=ArchiveLimits(max_members=20))
    total = _zip({f"{i}.png": np.random.default_rng(i).bytes(1 << 20) for i in range(3)}, zipfile.ZIP_STORED)
    with pytest.raises(ArchiveError, match="expand to 3 MiB, over the 2 MiB limit"):
        read_image_archive(total, name="total.zip", limits=ArchiveLimits(max_total_bytes=2 << 20))


def test_many_small_members_that_expand_together_are_a_bomb_too() -> None:
    """Each member stays under ``ratio_floor`` (1 MiB) and the total under the 1 GiB cap, yet 600 kB become 600 MiB."""
    members = {f"{i}.png": b"\x00" * ((1 << 20) - 1) for i in range(600)}
    bomb = _zip(members)
    assert len(bomb) < 1 << 20
    with pytest.raises(ArchiveError, match=r"small\.zip: its 600 files expand \d+-fold together.*zip bomb") as err:
        read_image_archive(bomb, name="small.zip")
    assert "\n" not in str(err.value)


def test_photos_that_hardly_compress_pass_the_ratio_checks(samples_dir: Path) -> None:
    jpg = (samples_dir / "single_face.jpg").read_bytes()
    data = _zip({f"{i}.jpg": jpg for i in range(40)})
    assert len(read_image_archive(data, name="ok.zip", limits=ArchiveLimits(ratio_floor=1)).images) == 40


def test_a_member_that_lies_about_its_size_is_caught_while_reading(samples_dir: Path) -> None:
    jpg = (samples_dir / "single_face.jpg").read_bytes()
    data = bytearray(_zip({"face.jpg": jpg}, zipfile.ZIP_STORED))
    # shrink the declared size in the central directory only: the reader must not trust it
    cd = data.rfind(b"PK\x01\x02")
    data[cd + 24 : cd + 28] = (100).to_bytes(4, "little")
    # the size checks above trust the directory; the read itself never goes past it (and checks the CRC)
    with pytest.raises(ArchiveError, match=r"liar\.zip: no image in the ZIP archive \(skipped face\.jpg: damaged"):
        read_image_archive(bytes(data), name="liar.zip")


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (_zip({}), "empty.zip: the ZIP archive is empty"),
        (_zip({"docs/": b"", "docs/readme.txt": b"x"}), "empty.zip: no image in the ZIP archive"),
        (b"PK\x03\x04 this is not really a zip", "empty.zip: not a readable ZIP archive"),
        (b"", "empty.zip: not a readable ZIP archive"),
    ],
)
def test_empty_and_broken_archives_give_one_plain_error(data: bytes, message: str) -> None:
    with pytest.raises(ArchiveError) as err:
        read_image_archive(data, name="empty.zip")
    assert str(err.value).startswith(message) and "\n" not in str(err.value)


def test_damaged_member_is_skipped(samples_dir: Path) -> None:
    jpg = (samples_dir / "single_face.jpg").read_bytes()
    data = bytearray(_zip({"good.jpg": jpg, "bad.jpg": jpg}, zipfile.ZIP_DEFLATED))
    second = data.find(b"PK\x03\x04", 4)
    start = second + 30 + len("bad.jpg") + 100
    data[start : start + 50] = b"\x00" * 50  # corrupt the deflate stream of bad.jpg
    out = read_image_archive(bytes(data), name="x.zip")
    assert [n for n, _ in out.images] == ["good.jpg"]
    assert len(out.skipped) == 1 and out.skipped[0].startswith("bad.jpg: damaged")


def test_rewrite_video_keeps_every_frame_and_the_size(samples_dir: Path, tmp_path: Path) -> None:
    src = samples_dir / "single_face.mp4"
    dst = tmp_path / "out.mp4"

    def white_square(i: int, rgb: np.ndarray) -> np.ndarray:
        out = rgb.copy()
        out[10:60, 10:60] = 255
        return out

    info = rewrite_video(src, dst, white_square)
    before = video_info(src)
    assert (info.frame_count, info.width, info.height) == (before.frame_count, before.width, before.height)
    assert info.fps == pytest.approx(before.fps)
    frames = list(iter_video_frames(dst))
    assert len(frames) == before.frame_count
    assert frames[5][1][20:50, 20:50].mean() > 240  # drawn (lossy codec: near white, not exactly)


def test_rewrite_video_of_a_corrupt_file_is_one_plain_error(samples_dir: Path, tmp_path: Path) -> None:
    bad = tmp_path / "broken.mp4"
    bad.write_bytes(b"\x00\x00\x00\x18ftypmp42" + b"\x13" * 4000)
    with pytest.raises(VideoLoadError, match="broken.mp4: OpenCV cannot open this as a video"):
        rewrite_video(bad, tmp_path / "out.mp4", lambda i, rgb: rgb)
    assert cv2.VideoCapture(str(tmp_path / "out.mp4")).isOpened() is False
