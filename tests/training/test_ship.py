"""training.ship on a tiny run: weights copied, every score measured from the copied file, sidecar and card agree."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from core.models import create_model, save_weights
from core.models import weights as W
from tests.harness.model_card import check_card
from training import ship as S
from training.config import DataConfig, TrainConfig, config_to_dict
from training.datasets import load_split
from training.evaluate import load_results, predict_probs, sha256_file
from training.model_card import render_card

TINY = {"widths": (4, 8, 16, 32), "d_model": 32, "heads": 4, "d_ff": 64}
"""A narrow ``default`` (hafem_lite): d_model equals the last width, so no projection, as in the real one."""


def _fake_run(tmp_path):
    """A run folder as the trainer leaves it: best weights + best.json + metrics.jsonl (two epochs)."""
    torch.manual_seed(3)
    model = create_model("default", **TINY)
    run = tmp_path / "run"
    run.mkdir()
    overrides = {k: list(v) if isinstance(v, tuple) else v for k, v in TINY.items()}
    cfg = config_to_dict(TrainConfig(model="default", model_overrides=overrides))
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
    check_card(card.read_text(), meta)  # the card's figures, read back from its text
    assert meta["run"]["epochs_run"] == 2 and meta["run"]["wall_s"] == 120.0
    assert meta["params"] == sum(p.numel() for p in model.parameters())

    # every score is the file's own: the slice count recomputed from the in-memory model agrees exactly
    sl = meta["slice"]
    fs = load_split(DataConfig(dataset="fer2013", root=str(shared_datasets), limit=sl["limit"]), "PrivateTest")
    assert int((predict_probs(model, fs).argmax(1) == fs.labels).sum()) == sl["correct"]
    main = load_results(tmp_path / "runs" / "eval" / "default-fer2013_private.json")
    assert main["meta"]["weights_sha256"] == meta["sha256"] and main["meta"]["data"]["n"] == 3573
    assert meta["test"]["fer2013_private"]["accuracy"]["value"] == main["metrics"]["accuracy"]["value"]
    fp = meta["test"]["ferplus_private_8"]
    assert fp["missing_classes"] == ["contempt"] and fp["per_class_f1"]["contempt"] == 0.0
    zs = meta["test"]["zeroshot_samples"]
    assert zs["n"] == 7 and zs["command"].startswith("python bench/zeroshot_samples.py")
    assert np.isfinite(meta["test"]["fer2013_private_tta"]["ece"]["value"])


def test_shipping_over_the_file_a_run_started_from_keeps_the_stages_behind_it(tmp_path, monkeypatch):
    """The hybrid was fine-tuned from the shipped ``default`` it replaces: its card must still say how that was made."""
    monkeypatch.setattr(W, "SHIPPED_DIR", tmp_path / "weights")
    monkeypatch.setattr(S, "measure", lambda *a, **k: {})
    run, _ = _fake_run(tmp_path)
    old = W.SHIPPED_DIR / "default.safetensors"
    old.parent.mkdir()
    old.write_bytes(b"the weights the run started from")
    earlier = [{"run": "runs/a", "command": "python -m training.train --out runs/a", "epochs_run": 3}]
    old.with_suffix(".json").write_text(json.dumps({"stages": earlier, "ship_command": "ship a"}))
    best = json.loads((run / "best.json").read_text())
    best["config"]["init_weights"] = str(old)
    (run / "best.json").write_text(json.dumps(best))

    meta = S.ship(run, "default", card=None)
    assert [st["run"] for st in meta["stages"]] == ["runs/a", str(run)]
    assert meta["stages"][0]["then"] == "ship a"
    assert old.read_bytes() == (run / "best.safetensors").read_bytes()


def _stage(tmp_path, name: str, init: str | None, command: str, epochs: int) -> None:
    run = tmp_path / name
    run.mkdir()
    cfg = config_to_dict(TrainConfig(init_weights=init))
    (run / "best.json").write_text(json.dumps({"command": command, "config": cfg, "epoch": epochs}, default=list))
    rows = [{"kind": "epoch", "epoch": e, "train_acc": 0.5, "val_acc": 0.4, "val_macro_f1": 0.3, "time_s": 30.0,
             "img_per_s": 90.0} for e in range(1, epochs + 1)]  # fmt: skip
    (run / "metrics.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n")


def test_stages_follow_init_weights_back_to_the_first_run(tmp_path):
    _stage(tmp_path, "a", None, "/x/training/train.py --preset default --out runs/a num_threads=2", 3)
    _stage(tmp_path, "b", str(tmp_path / "a" / "best.safetensors"), "/x/training/train.py --out runs/b lr=5e-4", 2)
    chain = S.stages(tmp_path / "b")
    assert [st["run"] for st in chain] == [str(tmp_path / "a"), str(tmp_path / "b")]
    assert chain[0]["command"] == "python -m training.train --preset default --out runs/a num_threads=2"
    assert chain[1]["command"] == "python -m training.train --out runs/b lr=5e-4"
    assert [st["epochs_run"] for st in chain] == [3, 2] and chain[1]["wall_s"] == 60.0

    # weights from outside a run folder without a sidecar end the chain; the stage still says where it started.
    # A run not started by the CLI (here under pytest) has no CLI arguments to show: the preset and folder stand in
    _stage(tmp_path, "c", str(tmp_path / "loose.safetensors"), "/usr/bin/pytest -q tests/training", 1)
    (only,) = S.stages(tmp_path / "c")
    assert only["init_weights"] == str(tmp_path / "loose.safetensors")
    assert only["command"] == f"python -m training.train --preset default --out {tmp_path / 'c'}"


def test_stages_continue_through_a_shipped_file_with_its_ship_command(tmp_path):
    shipped = tmp_path / "weights" / "default_fer2013.safetensors"
    shipped.parent.mkdir()
    earlier = [{"run": "runs/a", "command": "python -m training.train --out runs/a", "epochs_run": 3}]
    ship_cmd = "python -m training.ship --run runs/a --model default_fer2013"
    shipped.with_suffix(".json").write_text(json.dumps({"stages": earlier, "ship_command": ship_cmd}))
    _stage(tmp_path, "d", str(shipped), "/x/training/train.py --preset default_ferplus --out runs/d", 2)
    chain = S.stages(tmp_path / "d")
    assert [st["run"] for st in chain] == ["runs/a", str(tmp_path / "d")]
    assert chain[0]["then"] == ship_cmd and "then" not in chain[1]
    assert chain[1]["command"] == "python -m training.train --preset default_ferplus --out runs/d"


def test_a_run_continuing_a_stage_shipped_over_its_own_start_file_lists_each_stage_once(tmp_path):
    """Run e started from the shipped file; that file was then replaced by e's weights, and run f continues e.

    The sidecar now describes e, so following f -> e -> the shipped file must not bring e back a second time.
    """
    shipped = tmp_path / "weights" / "default.safetensors"
    shipped.parent.mkdir()
    _stage(tmp_path, "e", str(shipped), "/x/training/train.py --preset p --out runs/e", 2)
    _stage(tmp_path, "f", str(tmp_path / "e" / "best.safetensors"), "/x/training/train.py --out runs/f", 2)
    earlier = [
        {"run": "runs/a", "command": "python -m training.train --out runs/a", "then": "ship a"},
        {"run": str(tmp_path / "e"), "command": "python -m training.train --preset p --out runs/e"},
    ]
    shipped.with_suffix(".json").write_text(json.dumps({"stages": earlier, "ship_command": "ship e"}))
    chain = S.stages(tmp_path / "f")
    assert [st["run"] for st in chain] == ["runs/a", str(tmp_path / "e"), str(tmp_path / "f")]
    assert chain[0]["then"] == "ship a" and "then" not in chain[1]


def test_stages_refuse_a_cycle(tmp_path):
    _stage(tmp_path, "a", str(tmp_path / "b" / "best.safetensors"), "train.py", 1)
    _stage(tmp_path, "b", str(tmp_path / "a" / "best.safetensors"), "train.py", 1)
    with pytest.raises(ValueError, match="cycle"):
        S.stages(tmp_path / "b")


def test_card_lists_every_stage_command_and_history(tmp_path):
    sidecar = json.loads((W.SHIPPED_DIR / "default.json").read_text())
    _stage(tmp_path, "a", None, "train.py --preset default --out runs/a", 2)
    _stage(tmp_path, "b", str(tmp_path / "a" / "best.safetensors"), "train.py --out runs/b optim.lr=5e-4", 1)
    meta = {**sidecar, "stages": S.stages(tmp_path / "b")}
    card = render_card(meta)
    repro = card.split("```bash\n", 1)[1].split("```", 1)[0].splitlines()
    assert repro == ["python -m training.train --preset default --out runs/a",
                     "python -m training.train --out runs/b optim.lr=5e-4", sidecar["ship_command"]]  # fmt: skip
    assert "Epochs run: 3;" in card and "Trained in 2 sequential stages" in card
    history = [line for line in card.splitlines() if line.startswith(("| 1 | ", "| 2 | "))]
    assert [line.split(" | ")[:2] for line in history] == [["| 1", "1"], ["| 1", "2"], ["| 2", "1"]]
