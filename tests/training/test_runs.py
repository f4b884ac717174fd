"""training.runs: one walk of a runs folder finds checkpoints, results JSONs and ablation reports, newest first."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from training.runs import list_runs


def _write(path: Path, text: str | bytes, mtime: float) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    os.utime(path, (mtime, mtime))
    return path


@pytest.fixture
def runs(tmp_path: Path) -> Path:
    """A runs folder as the trainer, training.evaluate and training.ablate leave it, plus debris."""
    side = {"config": {"model": "default", "model_overrides": {"cbam": True}, "loss": {"name": "compound"}}}
    _write(tmp_path / "r1" / "best.safetensors", b"w", 100)
    _write(tmp_path / "r1" / "best.json", json.dumps(side), 100)
    _write(tmp_path / "r1" / "last.safetensors", b"w", 300)
    _write(tmp_path / "r1" / "last.json", json.dumps(side), 300)
    _write(tmp_path / "r1" / "config.json", json.dumps(side["config"]), 100)
    _write(tmp_path / "r1" / "metrics.jsonl", "{}\n", 100)
    _write(tmp_path / "loose" / "w.safetensors", b"w", 200)  # no sidecar: kept, model unknown
    _write(tmp_path / "bad" / "best.safetensors", b"w", 400)
    _write(tmp_path / "bad" / "best.json", "{not json", 400)  # unreadable sidecar: left out
    _write(tmp_path / "eval" / "a.json", '{"schema": "ferlens.results/1", "meta": {}}', 150)
    _write(tmp_path / "eval" / "b.json", '{"schema":"ferlens.results/1"}', 250)
    _write(tmp_path / "eval" / "notes.json", '{"schema": "something else"}', 260)
    _write(tmp_path / "abl" / "ablation.json", "{}", 50)
    _write(tmp_path / "abl2" / "ablation.json", "{}", 60)
    return tmp_path


def test_list_runs_classifies_and_orders_newest_first(runs: Path):
    index = list_runs(runs)
    assert [c.path.relative_to(runs).as_posix() for c in index.checkpoints] == [
        "r1/last.safetensors",
        "loose/w.safetensors",
        "r1/best.safetensors",
    ]
    best = index.checkpoints[-1]
    assert best.model == "default" and best.config["model_overrides"] == {"cbam": True}
    assert index.checkpoints[1].model is None and index.checkpoints[1].meta == {}
    assert [f.path.name for f in index.results] == ["b.json", "a.json"]
    assert [f.path.parent.name for f in index.ablations] == ["abl2", "abl"]


def test_list_runs_of_a_missing_folder_is_empty_and_the_walk_is_capped(runs: Path, caplog):
    empty = list_runs(runs / "nothing")
    assert (empty.checkpoints, empty.results, empty.ablations) == ((), (), ())
    capped = list_runs(runs, limit=3)
    found = len(capped.checkpoints) + len(capped.results) + len(capped.ablations)
    assert found <= 3 and "stopped indexing" in caplog.text
