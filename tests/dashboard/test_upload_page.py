"""The upload page on the real sample photos: faces found and numbered, explanations, bad files."""

from __future__ import annotations

from pathlib import Path

import pytest

from dashboard import analysis
from tests.harness.corpus import zip_bytes as _zip


def _faces(at) -> list[str]:
    return [m.value for m in at.markdown if m.value.startswith("**Face #")]


@pytest.mark.slow
def test_multi_face_photo_shows_five_faces_and_gradcam_overlays(samples_dir: Path, dashboard_env, open_page) -> None:
    at = open_page("upload")
    assert not at.exception and not at.error
    data = (samples_dir / "multi_face.jpg").read_bytes()
    at.file_uploader(key="up_files").set_value(("multi_face.jpg", data, "image/jpeg")).run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert [s.value for s in at.subheader] == ["multi_face.jpg: 5 faces"]
    assert [f.split(":")[0] for f in _faces(at)] == [f"**Face #{i}" for i in range(1, 6)]
    captions = [c for img in at.image for c in img.captions]
    assert not any("gradcam" in c for c in captions)
    labels = {d.label for d in at.get("download_button")}
    assert {"Annotated PNG", "Faces CSV"} <= labels

    at.toggle(key="up_explain").set_value(True).run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    captions = [c for img in at.image for c in img.captions]
    assert sum(c.startswith("gradcam for '") for c in captions) == 5
    assert "gradcam on the photo, AU regions outlined" in captions
    assert "Explanation PNG" in {d.label for d in at.get("download_button")}


def test_corrupt_and_non_image_uploads_show_plain_errors(samples_dir: Path, dashboard_env, open_page) -> None:
    jpeg = (samples_dir / "single_face.jpg").read_bytes()
    at = open_page("upload")
    at.file_uploader(key="up_files").set_value(
        [
            ("truncated.jpg", jpeg[:300], "image/jpeg"),
            ("notes.png", b"these are not pixels", "image/png"),
            ("empty.jpg", b"", "image/jpeg"),
        ]
    ).run()
    assert not at.exception
    errors = [e.value for e in at.error]
    assert len(errors) == 3
    for name, err in zip(("truncated.jpg", "notes.png", "empty.jpg"), errors, strict=True):
        assert err.startswith(f"Analysing {name} failed: ") and "Traceback" not in err


def test_a_photo_without_faces_says_so(samples_dir: Path, dashboard_env, open_page) -> None:
    at = open_page("upload")
    data = (samples_dir / "free-mountain-vector-01.jpg").read_bytes()
    at.file_uploader(key="up_files").set_value(("mountains.jpg", data, "image/jpeg")).run()
    assert not at.exception and not at.error
    assert [s.value for s in at.subheader] == ["mountains.jpg: 0 faces"]
    assert any("No face found" in i.value for i in at.info)


def test_alignment_off_analyses_with_the_detectors_box_framing(samples_dir: Path) -> None:
    """The page's "alignment off" is ``Detector(framing="box")``: crops are scaled and shifted, never rotated."""
    from core.detector import Detector
    from core.io import load_image

    rgb = load_image(samples_dir / "single_face.jpg")
    on_det = Detector(device="cpu", backend="torch", threads=None)
    off = analysis.analyze_rgb(Detector(engine=on_det.engine, framing="box"), rgb)
    on = analysis.analyze_rgb(on_det, rgb)
    assert not off.aligned and on.aligned and len(off.faces) == len(on.faces) == 1
    m = off.faces[0].aligned.matrix
    assert m[0, 1] == m[1, 0] == 0 and m[0, 0] == m[1, 1]
    assert on.faces[0].aligned.matrix[0, 1] != 0  # the aligned crop is rotated to level the eyes


def test_sidebar_offers_only_runnable_detectors_and_says_how_to_enable_the_others(
    monkeypatch, tmp_path: Path, dashboard_env, open_page
) -> None:
    from core.faces import retinaface as rf

    monkeypatch.delenv(rf.WEIGHTS_ENV, raising=False)
    monkeypatch.setenv("DEEPFACE_HOME", str(tmp_path))  # no RetinaFace weights, whatever this machine has
    at = open_page("upload")
    assert not at.exception and not at.error
    options = at.selectbox(key="sb_detector").options
    assert "retinaface" not in options and "default" in options
    notes = [c.value for c in at.sidebar.caption if "unavailable here" in c.value]
    assert len(notes) == 1 and "`retinaface`" in notes[0] and rf.WEIGHTS_ENV in notes[0]


@pytest.mark.slow
def test_a_zip_of_photos_gives_one_csv_and_lists_what_it_skipped(samples_dir: Path, dashboard_env, open_page) -> None:
    members = {
        "group/multi.jpg": (samples_dir / "multi_face.jpg").read_bytes(),
        "one.jpg": (samples_dir / "single_face.jpg").read_bytes(),
        "readme.txt": b"not a photo",
    }
    at = open_page("upload")
    at.file_uploader(key="up_files").set_value(("batch.zip", _zip(members), "application/zip")).run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert [s.value for s in at.subheader][:3] == [
        "2 photos: 6 faces",
        "batch.zip/group/multi.jpg: 5 faces",
        "batch.zip/one.jpg: 1 face",
    ]
    assert any("batch.zip/readme.txt: not an image" in m.value for m in at.markdown)
    assert "Faces CSV (all photos)" in {d.label for d in at.get("download_button")}


@pytest.mark.slow
def test_the_batch_csv_has_one_row_per_face_of_every_photo(samples_dir: Path) -> None:
    from core.detector import Detector

    photos, skipped, errors = analysis.expand_uploads(
        [
            ("a.zip", _zip({"x/multi.jpg": (samples_dir / "multi_face.jpg").read_bytes(), "n.txt": b"."})),
            ("single.jpg", (samples_dir / "single_face.jpg").read_bytes()),
        ]
    )
    assert [n for n, _ in photos] == ["a.zip/x/multi.jpg", "single.jpg"]  # upload order, ZIPs opened in place
    assert skipped == ["a.zip/n.txt: not an image"] and not errors
    det = Detector(device="cpu", backend="torch")
    from core.io import load_image

    table = analysis.batch_table([analysis.analyze_rgb(det, load_image(d), n) for n, d in photos])
    assert table.groupby("input")["face"].max().to_dict() == {"a.zip/x/multi.jpg": 5, "single.jpg": 1}
    assert {"model", "weights_sha256"} <= set(table.columns) and len(table) == 6


def test_empty_zip_and_zip_bomb_give_one_plain_error_each(dashboard_env, open_page) -> None:
    bomb = _zip({"big.png": b"\x00" * (40 << 20)})
    at = open_page("upload")
    at.file_uploader(key="up_files").set_value(
        [("empty.zip", _zip({}), "application/zip"), ("bomb.zip", bomb, "application/zip")]
    ).run()
    assert not at.exception
    errors = [e.value for e in at.error]
    assert len(errors) == 2, errors
    assert errors[0].startswith("Opening empty.zip failed: ") and "empty" in errors[0]
    assert errors[1].startswith("Opening bomb.zip failed: ") and "zip bomb" in errors[1]


@pytest.mark.slow
def test_try_an_example_analyses_the_shared_group_photo(dashboard_env, open_page) -> None:
    at = open_page("upload")
    assert at.info  # nothing uploaded yet
    at.button(key="up_example").click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert [s.value for s in at.subheader] == ["multi_face.jpg: 5 faces"]
    captions = [c for img in at.image for c in img.captions]
    assert sum(c.startswith("what the model sees: its 48×48 gray input") for c in captions) == 5
