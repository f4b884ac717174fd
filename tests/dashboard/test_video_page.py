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
