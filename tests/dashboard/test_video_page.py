"""The video page on the real sample clip: one tracked face, a timeline, a frame explained."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dashboard import video


@pytest.mark.slow
def test_single_face_clip_gives_one_track_with_a_timeline(samples_dir: Path, dashboard_env, open_page) -> None:
    at = open_page("video")
    data = (samples_dir / "single_face.mp4").read_bytes()
    at.file_uploader(key="vid_file").set_value(("single_face.mp4", data, "video/mp4")).run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    heading = at.subheader[0].value
    assert heading.startswith("single_face.mp4: ") and heading.endswith("1 track(s)")
    timelines = [json.loads(c.proto.spec) for c in at.get("plotly_chart")]
    assert any(f["layout"]["title"]["text"].startswith("Track 0") for f in timelines)
    summary = at.dataframe[0].value
    assert list(summary["track"]) == [0]
    # 72 frames, every third analysed (skip 2): the face is in all 24
    assert int(summary["frames"].iloc[0]) == 24
    at.toggle(key="vid_explain").set_value(True).run()
    assert not at.exception and not at.error
    assert any(c.startswith("gradcam for '") for img in at.image for c in img.captions)


def test_no_face_clip_and_a_broken_clip(samples_dir: Path, dashboard_env, open_page) -> None:
    at = open_page("video")
    at.file_uploader(key="vid_file").set_value(("broken.mp4", b"\x00\x00\x00\x18ftypmp42 nothing", "video/mp4")).run()
    assert not at.exception
    assert [e.value.split(":")[0] for e in at.error] == ["Analysing the video failed"]
    at = open_page("video")
    data = (samples_dir / "no_face.mp4").read_bytes()
    at.file_uploader(key="vid_file").set_value(("no_face.mp4", data, "video/mp4")).run()
    assert not at.exception and not at.error
    assert [i.value for i in at.info] == ["No face in this clip."]


def test_read_frame_returns_the_asked_frame(samples_dir: Path) -> None:
    from core.io import iter_video_frames

    path = samples_dir / "single_face.mp4"
    frames = dict(iter_video_frames(path, max_frames=8))
    for index in (0, 1, 7):
        assert (video.read_frame(path, index) == frames[index]).all()
    with pytest.raises(ValueError):
        video.read_frame(path, 10_000)


@pytest.mark.slow
def test_annotated_video_keeps_every_frame_and_draws_in_the_boxes(samples_dir: Path, tmp_path: Path) -> None:
    import numpy as np

    from core.detector import Detector
    from core.io import iter_video_frames, video_info

    src = samples_dir / "single_face.mp4"
    table = Detector(device="cpu", backend="torch").detect_video(src, skip_frames=2)
    info = video.annotate(src, table, tmp_path / "out.mp4", hold=3)
    before = video_info(src)
    assert (info.frame_count, info.width, info.height) == (before.frame_count, before.width, before.height)
    original, drawn = dict(iter_video_frames(src)), dict(iter_video_frames(tmp_path / "out.mp4"))
    assert len(drawn) == before.frame_count
    # the box outline differs from the clip on every analysed frame; away from boxes it does not. The clip starts
    # neutral, whose mid-grey box once vanished on its mid-tone skin and wall (the halo keeps it visible).
    assert {"neutral", "happy"} <= set(table["label"])
    for _, r in table.iterrows():
        f = int(r.frame)
        x, y, w, h = (round(v) for v in (r.x, r.y, r.w, r.h))
        diff = np.abs(drawn[f].astype(int) - original[f].astype(int)).sum(axis=2)
        edge = diff[y + 1 : y + h - 1, x - 3 : x + 4]  # the left edge of the box, +-3 px of codec blur
        assert (edge.max(axis=1) > 60).mean() > 0.5
        assert np.median(diff[:40, -80:]) < 25  # the top-right corner (no face there) only has codec noise
    # frames skipped by the analysis keep the boxes of the frame before
    f = int(table["frame"].iloc[3]) + 1
    r = table.iloc[3]
    x, y, h = round(r.x), round(r.y), round(r.h)
    edge = np.abs(drawn[f].astype(int) - original[f].astype(int)).sum(axis=2)[y + 1 : y + h - 1, x - 3 : x + 4]
    assert (edge.max(axis=1) > 60).mean() > 0.5


@pytest.mark.slow
def test_video_page_example_rounded_summary_and_annotated_download(dashboard_env, open_page) -> None:
    at = open_page("video")
    at.button(key="vid_example").click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert at.subheader[0].value.startswith("single_face.mp4: ")
    assert "Per-frame CSV" in {d.label for d in at.get("download_button")}
    at.button(key="vid_annotate").click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert "Annotated video (MP4)" in {d.label for d in at.get("download_button")}
    columns = json.loads(at.dataframe[0].proto.columns)
    formats = {k: v.get("type_config", {}).get("format") for k, v in columns.items()}
    assert formats.get("from_s") == "%.1f s" and formats.get("happy") == "percent"


def test_annotating_a_corrupt_video_is_one_plain_error(tmp_path: Path) -> None:
    import pandas as pd

    from core.io import VideoLoadError

    bad = tmp_path / "broken.mp4"
    bad.write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 20)
    with pytest.raises(VideoLoadError, match="broken.mp4: OpenCV cannot open this as a video") as err:
        video.annotate(bad, pd.DataFrame(), tmp_path / "out.mp4")
    assert "\n" not in str(err.value)
