"""Bad input through the upload and video pages: one plain error per bad file, and the saved verdicts stay."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from dashboard import video
from tests.harness.corpus import zip_bytes as _zip


def _damaged_midway(samples_dir: Path, dst: Path) -> Path:
    """The sample clip with a stretch of its frame data overwritten: OpenCV opens it and stops after 17 frames."""
    data = bytearray((samples_dir / "single_face.mp4").read_bytes())
    data[60_000:120_000] = np.random.default_rng(0).integers(0, 256, 60_000, dtype=np.uint8).tobytes()
    dst.write_bytes(bytes(data))
    return dst


@pytest.fixture
def saved_verdict(dashboard_env):
    """One verdict in the test's own store (``$FERLENS_DB``); returns a function that reads the store afresh."""
    import os

    from dashboard.verdicts import Verdict, VerdictStore

    db = os.environ["FERLENS_DB"]
    store = VerdictStore(db)
    saved = store.add(Verdict("fer2013:test", 17, "label wrong", "ana", "sad", "neutral", note="kept?"))
    store.close()

    def read():
        fresh = VerdictStore(db)  # not the page's cached store: what is on disk
        try:
            return saved, fresh.all()
        finally:
            fresh.close()

    return read


def test_bad_zips_give_one_plain_error_each_and_keep_the_verdicts(saved_verdict, open_page) -> None:
    uploads = {
        "notes.zip": _zip({"readme.txt": b"no photo here", "data.csv": b"a,b\n1,2\n"}),
        "empty.zip": _zip({}),
        "bomb.zip": _zip({"big.png": b"\x00" * (40 << 20)}),
        "sprinkle.zip": _zip({f"{i}.png": b"\x00" * ((1 << 20) - 1) for i in range(300)}),  # small bombs adding up
        "fake.zip": b"PK\x03\x04 not a zip at all",
    }
    at = open_page("upload")
    at.file_uploader(key="up_files").set_value([(n, d, "application/zip") for n, d in uploads.items()]).run()
    assert not at.exception
    errors = [e.value for e in at.error]
    assert len(errors) == len(uploads), errors
    for (name, _), message in zip(uploads.items(), errors, strict=True):
        assert message.startswith(f"Opening {name} failed: {name}: ") and "\n" not in message
    assert "no image in the ZIP" in errors[0] and "readme.txt: not an image" in errors[0]
    assert "empty" in errors[1]
    assert "zip bomb" in errors[2] and "zip bomb" in errors[3] and "expand" in errors[3]
    assert "not a readable ZIP" in errors[4]
    saved, now = saved_verdict()
    assert now == [saved]


def test_a_video_damaged_midway_is_refused_for_export_and_leaves_no_file(samples_dir: Path, tmp_path: Path) -> None:
    import pandas as pd

    from core.io import VideoLoadError, video_info

    src = _damaged_midway(samples_dir, tmp_path / "mid.mp4")
    assert video_info(src).frame_count == 72  # the container still declares every frame
    out = tmp_path / "out.mp4"
    with pytest.raises(VideoLoadError, match=r"the video is damaged: its frames stop at 17 of the 72") as err:
        video.annotate(src, pd.DataFrame(), out)
    assert "\n" not in str(err.value) and not out.exists()


@pytest.mark.slow
def test_the_video_page_names_the_upload_when_the_export_fails_and_keeps_the_verdicts(
    samples_dir: Path, tmp_path: Path, saved_verdict, open_page
) -> None:
    data = _damaged_midway(samples_dir, tmp_path / "mid.mp4").read_bytes()
    at = open_page("video")
    at.file_uploader(key="vid_file").set_value(("holiday.mp4", data, "video/mp4")).run()
    assert not at.exception and not at.error, [e.value for e in at.error]  # the 17 readable frames are analysed
    at.button(key="vid_annotate").click().run()
    assert not at.exception
    errors = [e.value for e in at.error]
    assert len(errors) == 1 and errors[0].startswith("Making the annotated video failed: holiday.mp4: the video is")
    assert str(video.spool(data, "holiday.mp4")) not in errors[0]  # the server's temp path stays private
    assert "Annotated video (MP4)" not in {d.label for d in at.get("download_button")}
    saved, now = saved_verdict()
    assert now == [saved]
