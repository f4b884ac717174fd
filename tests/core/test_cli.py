"""``python -m core predict``: rows and columns, the per-file error policy, --assume-cropped, --explain, videos."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from core.__main__ import main
from core.engine import InferenceEngine
from core.labels import EMOTIONS_8

REPO = Path(__file__).resolve().parents[2]
COLUMNS = ["input", "frame", "face", "x", "y", "w", "h", "label", "score", *EMOTIONS_8]


@pytest.fixture(scope="module", autouse=True)
def _restore_torch_threads():
    n = torch.get_num_threads()
    yield
    torch.set_num_threads(n)


@pytest.fixture(autouse=True)
def _onnx_cache(tmp_path_factory, monkeypatch):
    """The CLI's default backend exports to the ONNX cache: keep it out of $HOME, shared by this module."""
    monkeypatch.setenv("FERLENS_CACHE", str(tmp_path_factory.getbasetemp() / "ferlens-cache"))


def _run(args: list[str], capsys) -> tuple[int, str]:
    rc = main(["predict", *args])
    return rc, capsys.readouterr().err


def test_help_runs_as_a_module():
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    out = subprocess.run([sys.executable, "-m", "core", "--help"], capture_output=True, text=True, env=env, cwd=REPO)
    assert out.returncode == 0 and "predict" in out.stdout
    sub = subprocess.run(
        [sys.executable, "-m", "core", "predict", "--help"], capture_output=True, text=True, env=env, cwd=REPO
    )
    assert sub.returncode == 0 and "--assume-cropped" in sub.stdout and "--explain" in sub.stdout


def test_multi_face_photo_writes_five_rows(samples_dir, tmp_path, capsys):
    out = tmp_path / "res" / "faces.csv"
    rc, err = _run([str(samples_dir / "multi_face.jpg"), "--out", str(out)], capsys)
    assert rc == 0, err
    df = pd.read_csv(out)
    assert len(df) == 5
    assert list(df.columns[: len(COLUMNS)]) == COLUMNS
    np.testing.assert_allclose(df[list(EMOTIONS_8)].sum(axis=1), 1.0, atol=1e-5)
    assert set(df["label"]) <= set(EMOTIONS_8)
    from core.models.weights import shipped_weights

    shipped = shipped_weights("default")
    sha = hashlib.sha256(Path(shipped).read_bytes()).hexdigest() if shipped else ""
    assert (df["model"] == "default").all() and (df["weights_sha256"].fillna("") == sha).all()

    # random weights are said once, plainly; shipped weights are used silently
    assert ("meaningless" in err) == (shipped_weights("default") is None)


def test_directory_with_good_faceless_and_corrupt_files(samples_dir, tmp_path, capsys):
    folder = tmp_path / "in"
    (folder / "sub").mkdir(parents=True)
    (folder / "sub" / "good.jpg").write_bytes((samples_dir / "single_face.jpg").read_bytes())
    (folder / "landscape.jpg").write_bytes((samples_dir / "free-mountain-vector-01.jpg").read_bytes())
    (folder / "corrupt.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 64)
    (folder / "notes.txt").write_text("not an image, skipped in directories")
    out = tmp_path / "out.csv"
    rc, err = _run([str(folder), "--out", str(out), "--backend", "torch"], capsys)
    assert rc != 0
    df = pd.read_csv(out)
    assert df["input"].tolist() == [str(folder / "sub" / "good.jpg")]
    lines = err.strip().splitlines()
    errors = [ln for ln in lines if ln.startswith("error:") and "corrupt.png" in ln]
    assert len(errors) == 1 and "damaged" in errors[0]
    assert any(ln.startswith("note:") and "landscape.jpg" in ln and "no face" in ln for ln in lines)
    assert not any("notes.txt" in ln for ln in lines)


def test_missing_path_is_an_error_but_others_run(samples_dir, tmp_path, capsys):
    out = tmp_path / "out.csv"
    rc, err = _run([str(tmp_path / "nope.jpg"), str(samples_dir / "single_face.jpg"), "--out", str(out)], capsys)
    assert rc == 1 and "nope.jpg: no such file" in err
    assert len(pd.read_csv(out)) == 1


def test_assume_cropped_gives_one_row_per_crop_like_the_evaluation(fer_faces, tmp_path, capsys, softmax_by_hand):
    folder = tmp_path / "crops"
    folder.mkdir()
    faces = list(fer_faces[:10])
    for i, face in enumerate(faces):
        Image.fromarray(face).save(folder / f"{i:03d}.png")
    out = tmp_path / "crops.csv"
    rc, err = _run([str(folder), "--assume-cropped", "--out", str(out), "--backend", "torch"], capsys)
    assert rc == 0, err
    df = pd.read_csv(out)
    assert len(df) == 10 and (df["face"] == 0).all() and (df["w"] == 48).all()
    assert df["input"].map(lambda p: Path(p).name).tolist() == [f"{i:03d}.png" for i in range(10)]
    engine = InferenceEngine("default", device="cpu", backend="torch")
    # --tta is the default: each crop averaged with its mirror image
    names = list(engine.spec.class_names)
    np.testing.assert_allclose(df[names].to_numpy(), softmax_by_hand(engine, faces, tta=True), atol=1e-5)
    rc, err = _run([str(folder), "--assume-cropped", "--out", str(out), "--backend", "torch", "--no-tta"], capsys)
    assert rc == 0, err
    np.testing.assert_allclose(pd.read_csv(out)[names].to_numpy(), softmax_by_hand(engine, faces), atol=1e-5)


def test_explain_writes_one_overlay_per_face(samples_dir, tmp_path, capsys):
    out = tmp_path / "x.csv"
    rc, err = _run([str(samples_dir / "single_face.jpg"), "--out", str(out), "--explain", "gradcam"], capsys)
    assert rc == 0, err
    pngs = sorted((tmp_path / "x_explain").glob("*.png"))
    assert len(pngs) == 1 and "single_face" in pngs[0].name and pngs[0].name.endswith("_gradcam.png")
    img = np.asarray(Image.open(pngs[0]))
    assert img.shape == (192, 192, 3) and img.std() > 10


@pytest.mark.slow
def test_video_rows_have_frames_and_tracks(samples_dir, tmp_path, capsys):
    out = tmp_path / "v.csv"
    args = [str(samples_dir / "single_face.mp4"), str(samples_dir / "single_face.jpg"), "--skip-frames", "10"]
    rc, err = _run([*args, "--out", str(out)], capsys)
    assert rc == 0, err
    df = pd.read_csv(out)
    video = df[df["input"].str.endswith(".mp4")]
    assert video["frame"].tolist() == list(range(0, 72, 11))
    assert (video["track"] == 0).all() and df.loc[df["input"].str.endswith(".jpg"), "track"].isna().all()


def test_bad_arguments_exit_2(samples_dir, tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["predict", str(samples_dir / "single_face.jpg")])  # --out is required
    assert exc.value.code == 2
    rc, err = _run([str(samples_dir / "single_face.jpg"), "--out", str(tmp_path / "o.csv"), "--model", "nope"], capsys)
    assert rc == 2 and "unknown model 'nope'" in err
    rc, err = _run(
        [str(samples_dir / "single_face.jpg"), "--out", str(tmp_path / "o.csv"), "--skip-frames", "-1"], capsys
    )
    assert rc == 2 and "--skip-frames" in err
