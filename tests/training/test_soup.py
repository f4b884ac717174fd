"""training.soup: the mean of fine-tunes of one start, shipped with every stage behind it."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import save_file

from core.models import weights as W
from training import ship as S
from training import soup as SO
from training.config import TrainConfig, config_to_dict
from training.model_card import render_card


def test_average_is_the_elementwise_mean_and_keeps_integer_buffers(tmp_path):
    g = torch.Generator().manual_seed(0)
    states = [{"w": torch.randn(3, 4, generator=g), "bn.num_batches_tracked": torch.tensor(10 * (i + 1))}
              for i in range(3)]  # fmt: skip
    paths = []
    for i, s in enumerate(states):
        paths.append(tmp_path / f"{i}.safetensors")
        save_file(s, str(paths[-1]))
    avg = SO.average(paths)
    torch.testing.assert_close(avg["w"], torch.stack([s["w"] for s in states]).mean(0))
    assert avg["bn.num_batches_tracked"].item() == 10  # the first file's counter, not a fractional mean

    save_file({"w": torch.zeros(4, 3)}, str(tmp_path / "other.safetensors"))
    with pytest.raises(SO.SoupError, match="does not have the tensors"):
        SO.average([paths[0], tmp_path / "other.safetensors"])


def _meta(init, model="default"):
    return {"config": {"model": model, "init_weights": init}, "spec": {"num_classes": 8}}


def test_ingredients_must_share_model_spec_and_start(tmp_path):
    runs = [tmp_path / "a", tmp_path / "b"]
    SO.check_ingredients([_meta("w.safetensors"), _meta("w.safetensors")], runs)
    with pytest.raises(SO.SoupError, match="init_weights"):
        SO.check_ingredients([_meta("w.safetensors"), _meta("v.safetensors")], runs)
    with pytest.raises(SO.SoupError, match="model"):
        SO.check_ingredients([_meta("w.safetensors"), _meta("w.safetensors", "fernet_s")], runs)
    with pytest.raises(SO.SoupError, match="from scratch"):
        SO.check_ingredients([_meta(None), _meta(None)], runs)
    with pytest.raises(SO.SoupError, match="at least two"):
        SO.soup(runs[:1], tmp_path / "s", "cmd")


def _stage(root, name, init, epochs, hardware=None):
    run = root / name
    run.mkdir()
    cfg = config_to_dict(TrainConfig(init_weights=init))
    best = {"command": f"/x/training/train.py --out runs/{name}", "config": cfg, "epoch": epochs,
            **({"hardware": hardware, "torch": "2.11"} if hardware else {})}  # fmt: skip
    (run / "best.json").write_text(json.dumps(best, default=list))
    rows = [{"kind": "epoch", "epoch": e, "train_acc": 0.5, "val_acc": 0.4 + e / 100, "val_macro_f1": 0.3 + e / 100,
             "time_s": 60.0, "img_per_s": 90.0} for e in range(1, epochs + 1)]  # fmt: skip
    (run / "metrics.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    return run


def test_stages_of_a_soup_list_the_shared_start_once_then_every_ingredient(tmp_path):
    base = _stage(tmp_path, "base", None, 3)
    start = str(base / "best.safetensors")
    x = _stage(tmp_path, "x", start, 2, hardware="NVIDIA H200")
    y = _stage(tmp_path, "y", start, 4, hardware="NVIDIA H200")
    soup = tmp_path / "soup"
    soup.mkdir()
    (soup / "best.json").write_text(json.dumps({"command": "python -m training.soup --runs x y --out soup",
                                                "soup_of": [str(x), str(y)], "epoch": None}))  # fmt: skip
    chain = S.stages(soup)
    assert [st["run"] for st in chain] == [str(base), str(x), str(y), str(soup)]
    assert [bool(st.get("ingredient")) for st in chain] == [False, True, True, False]
    assert chain[-1]["soup_of"] == [str(x), str(y)] and chain[-1]["epochs_run"] == 0

    sidecar = json.loads((W.SHIPPED_DIR / "default.json").read_text())
    card = render_card({**sidecar, "stages": chain, "epoch": None})
    repro = card.split("```bash\n", 1)[1].split("```", 1)[0].splitlines()
    assert repro[:4] == [
        "python -m training.train --out runs/base",
        "python -m training.train --out runs/x",
        "python -m training.train --out runs/y",
        "python -m training.soup --runs x y --out soup",
    ]
    assert "Trained in 1 sequential stage," in card and "uniform model soup" in card
    assert "Epochs run: 9; shipped: the soup" in card
    # wall time per machine: 3 CPU epochs here, 6 H200 epochs of 60 s
    assert "6 min on NVIDIA H200 (torch 2.11)" in card
    # an ingredient shows its selected epoch only; the sequential stage its whole history
    history = [line.split(" | ")[:2] for line in card.splitlines() if line.startswith(("| 1 | ", "| 2 | ", "| 3 | "))]
    assert history == [["| 1", "1"], ["| 1", "2"], ["| 1", "3"], ["| 2", "2"], ["| 3", "4"]]


def test_soup_cli_refuses_runs_of_different_starts_with_one_line(tmp_path, capsys):
    a = _stage(tmp_path, "a", "w.safetensors", 1)
    b = _stage(tmp_path, "b", "v.safetensors", 1)
    for r in (a, b):
        meta = json.loads((r / "best.json").read_text())
        meta["spec"] = {"num_classes": 8}
        (r / "best.json").write_text(json.dumps(meta))
    assert SO.main(["--runs", str(a), str(b), "--out", str(tmp_path / "s")]) == 2
    assert "init_weights" in capsys.readouterr().err
    assert not (tmp_path / "s").exists()
