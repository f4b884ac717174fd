"""training.ship on a tiny run: weights copied, every score measured from the copied file, sidecar and card agree."""

from __future__ import annotations

import json

import numpy as np
import torch

from core.models import create_model, save_weights
from core.models import weights as W
from training import ship as S
from training.config import DataConfig, TrainConfig, config_to_dict
from training.datasets import load_split
from training.evaluate import load_results, predict_probs, sha256_file
from training.model_card import render_card

TINY = {"widths": (8, 16, 32, 64)}


def _fake_run(tmp_path):
    """A run folder as the trainer leaves it: best weights + best.json + metrics.jsonl (two epochs)."""
    torch.manual_seed(3)
    model = create_model("default", **TINY)
    run = tmp_path / "run"
    run.mkdir()
    cfg = config_to_dict(TrainConfig(model="default", model_overrides={"widths": [8, 16, 32, 64]}))
    best = {"command": "train.py", "config": cfg, "epoch": 2, "spec": model.spec.to_dict(),
            "val": {"val_acc": 0.3, "val_macro_f1": 0.2, "val_loss": 1.9}}  # fmt: skip
    save_weights(model, run / "best.safetensors")
    (run / "best.json").write_text(json.dumps(best, default=list))
    rows = [{"kind": "epoch", "epoch": e, "train_acc": 0.2, "val_acc": 0.3, "val_macro_f1": 0.2, "time_s": 60.0,
             "img_per_s": 100.0} for e in (1, 2)]  # fmt: skip
    (run / "metrics.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    return run, model


def test_ship_measures_the_copied_file_and_renders_the_card(tmp_path, monkeypatch, shared_datasets):
    monkeypatch.setattr(W, "SHIPPED_DIR", tmp_path / "weights")
    monkeypatch.setenv("FERLENS_RUNS", str(tmp_path / "runs"))
    monkeypatch.setenv("FERLENS_DATA", str(shared_datasets))
    run, model = _fake_run(tmp_path)
    card = tmp_path / "card.md"
    meta = S.ship(run, "default", card=card)

    dest = tmp_path / "weights" / "default.safetensors"
    assert dest.read_bytes() == (run / "best.safetensors").read_bytes() and meta["sha256"] == sha256_file(dest)
    assert json.loads(dest.with_suffix(".json").read_text()) == json.loads(json.dumps(meta))
    assert card.read_text() == render_card(meta)
    assert meta["run"]["epochs_run"] == 2 and meta["run"]["wall_s"] == 120.0
    assert meta["params"] == sum(p.numel() for p in model.parameters())

    # every score is the file's own: the slice count recomputed from the in-memory model agrees exactly
    sl = meta["slice"]
    fs = load_split(DataConfig(dataset="fer2013", root=str(shared_datasets), limit=sl["limit"]), "PrivateTest")
    assert int((predict_probs(model, fs).argmax(1) == fs.labels).sum()) == sl["correct"]
    main = load_results(tmp_path / "runs" / "eval" / "default-fer2013-PrivateTest.json")
    assert main["meta"]["weights_sha256"] == meta["sha256"] and main["meta"]["data"]["n"] == 3573
    assert meta["test"]["fer2013_private"]["accuracy"]["value"] == main["metrics"]["accuracy"]["value"]
    fp = meta["test"]["ferplus_private_8"]
    assert fp["missing_classes"] == ["contempt"] and fp["per_class_f1"]["contempt"] == 0.0
    zs = meta["test"]["zeroshot_samples"]
    assert zs["n"] == 7 and zs["command"].startswith("python bench/zeroshot_samples.py")
    assert f"{100 * main['metrics']['accuracy']['value']:.2f} %" in card.read_text()
    assert np.isfinite(meta["test"]["fer2013_private_tta"]["ece"]["value"])
