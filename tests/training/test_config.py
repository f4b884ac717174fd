"""Presets build, overrides parse and reject mistakes with useful messages, configs round-trip through JSON."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from core.models import create_model, list_models
from training.config import (
    ConfigError,
    TrainConfig,
    apply_overrides,
    config_from_dict,
    config_to_dict,
    get_preset,
    list_presets,
)

REPO = Path(__file__).resolve().parents[2]

LADDER = {
    "ladder_resnet50": ("resnet50_baseline", {}, "ce"),
    "ladder_effnet_b5": ("effnet_b5_baseline", {}, "ce"),
    "ladder_cbam": ("hafem", {"transformer": False}, "ce"),
    "ladder_transformer": ("hafem", {}, "ce"),
    "ladder_full": ("hafem", {}, "compound"),
}


def test_required_presets_exist():
    required = {"default", "hafem_paper", "hafem_compact", "dcrnet_paper", *LADDER}
    assert required <= set(list_presets())


@pytest.mark.parametrize("name", list_presets())
def test_preset_builds_its_model_and_round_trips(name):
    cfg = get_preset(name)
    assert cfg.name == name and cfg.model in list_models()
    with torch.device("meta"):  # structure only: no memory, no init cost, no weights
        model = create_model(cfg.model, num_classes=cfg.data.num_classes, **cfg.model_overrides)
    assert model.spec.num_classes == cfg.data.num_classes
    assert len(model.layer_groups()) >= 2
    again = config_from_dict(json.loads(json.dumps(config_to_dict(cfg))))
    assert again == cfg


def test_ladder_rungs_change_one_thing_each():
    for name, (model, overrides, loss) in LADDER.items():
        cfg = get_preset(name)
        assert (cfg.model, cfg.model_overrides, cfg.loss.name) == (model, overrides, loss)
    dicts = [config_to_dict(get_preset(n)) for n in LADDER]
    for d in dicts:  # identical recipe otherwise
        for key in ("data", "augment", "optim", "epochs", "batch_size"):
            assert d[key] == dicts[0][key]


def test_paper_and_dcrnet_protocols():
    h = get_preset("hafem_compact")
    assert (h.optim.name, h.optim.lr, h.optim.min_lr, h.optim.betas, h.optim.eps, h.optim.weight_decay) == (
        "adamw",
        1e-3,
        1e-6,
        (0.9, 0.999),
        1e-8,
        5e-4,
    )
    assert h.optim.schedule == "cosine" and h.optim.layer_decay == 0.9 and h.loss.name == "compound"
    a = h.augment
    assert (a.hflip, a.crop, a.jitter, a.rotate, a.noise, a.cutout, a.mixup) == (0.5, 0.8, 0.5, 0.3, 0.2, 0.3, 0.4)
    d = get_preset("dcrnet_paper")
    assert (d.optim.name, d.optim.schedule, d.data.sampler, d.loss.name) == (
        "adam",
        "plateau",
        "balanced",
        "weighted_ce",
    )
    with torch.device("meta"):
        assert create_model(get_preset("default").model).spec.input_size <= 64  # the CPU model's own size


def test_overrides_are_typed():
    cfg = apply_overrides(
        get_preset("default"),
        [
            "optim.lr=3e-4",
            "epochs=2",
            "deterministic=true",
            "augment.noise_sigma=[0.02, 0.04]",
            "data.limit=none",
            "data.dataset=ferplus",
            "data.num_classes=8",
            "model_overrides.cbam=false",
            "loss.name=ce",
        ],
    )
    assert cfg.optim.lr == 3e-4 and isinstance(cfg.optim.lr, float)
    assert cfg.epochs == 2 and cfg.deterministic is True
    assert cfg.augment.noise_sigma == (0.02, 0.04)
    assert cfg.data.limit is None and cfg.data.dataset == "ferplus" and cfg.data.num_classes == 8
    assert cfg.model_overrides == {"cbam": False}
    assert get_preset("default").optim.lr == 1e-3  # presets are fresh, frozen objects


def test_unknown_key_lists_the_known_ones():
    with pytest.raises(ConfigError) as err:
        apply_overrides(get_preset("default"), ["optim.learning_rate=1e-3"])
    msg = str(err.value)
    assert "optim.learning_rate" in msg and "optim.lr" in msg and "augment.mixup" in msg and "epochs" in msg
    with pytest.raises(ConfigError, match="known: "):
        config_from_dict({**config_to_dict(TrainConfig()), "epochz": 3})


@pytest.mark.parametrize(
    "override, fragment",
    [
        ("optim.lr=-0.1", "optim.lr must be a positive number"),
        ("epochs=two", "epochs='two' is not a valid int"),
        ("epochs=0", "epochs must be >= 1"),
        ("augment.mixup=1.5", "augment.mixup is a probability"),
        ("data.dataset=imagenet", "unknown dataset 'imagenet'"),
        ("data.dataset=folder", "needs a path"),
        ("data.sampler=weird", "data.sampler='weird' must be one of"),
        ("loss.name=focal", "unknown loss 'focal'"),
        ("loss.w_ce=-1", "loss.w_ce must be >= 0"),
        ("data.label_mode=soft", "only dataset 'ferplus'"),
        ("optim", "must look like key=value"),
    ],
)
def test_bad_values_give_clear_errors(override, fragment):
    with pytest.raises(ConfigError, match=fragment.replace("(", r"\(").replace("[", r"\[")):
        apply_overrides(get_preset("default"), [override])


def test_unknown_preset_lists_presets():
    with pytest.raises(ConfigError, match="unknown preset 'nope'; choose one of .*default"):
        get_preset("nope")


def test_json_config_file_is_a_preset(tmp_path):
    cfg = apply_overrides(get_preset("dcrnet_paper"), ["epochs=3"])
    path = tmp_path / "c.json"
    path.write_text(json.dumps(config_to_dict(cfg)))
    assert get_preset(str(path)) == cfg


def test_cli_help_runs_as_a_module():
    res = subprocess.run(
        [sys.executable, "-m", "training.train", "--help"], cwd=REPO, capture_output=True, text=True, timeout=120
    )
    assert res.returncode == 0 and "--resume" in res.stdout and "hafem_compact" in res.stdout


def test_cli_errors_and_print_config(capsys):
    from training.train import main

    with pytest.raises(SystemExit) as exit_:
        main(["--preset", "default", "optim.lrr=1", "--print-config"])
    assert exit_.value.code == 2 and "unknown config key 'optim.lrr'" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_:
        main(["--preset", "nope"])
    assert exit_.value.code == 2 and "unknown preset" in capsys.readouterr().err
    assert main(["--preset", "dcrnet_paper", "epochs=3", "--limit", "10", "--print-config"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["epochs"] == 3 and printed["data"]["limit"] == 10 and printed["model"] == "dcrnet"


def test_hafem_lite_ladder_changes_one_thing_per_rung_from_one_warm_start():
    from training.config import LADDERS

    rungs = [get_preset(n) for n in LADDERS["hafem_lite"]]
    steps = [(c.model_overrides, c.loss.name) for c in rungs]
    assert steps == [
        ({"cbam": False, "transformer": False}, "ce"),
        ({"cbam": True, "transformer": False}, "ce"),
        ({"cbam": True, "transformer": True}, "ce"),
        ({"cbam": True, "transformer": True}, "compound"),
    ]
    dicts = [config_to_dict(c) for c in rungs]
    for d in dicts:
        assert d["model"] == "hafem_lite" and d["init_weights"].endswith("fernet_s_fer2013.safetensors")
        for key in ("data", "augment", "optim", "epochs", "batch_size", "init_weights", "seed"):
            assert d[key] == dicts[0][key], key
    full = rungs[-1].loss
    assert (full.w_ce, full.w_center, full.w_dls) == (0.60, 0.25, 0.15) and full.center_ramp_steps > 0
    assert (REPO / rungs[0].init_weights).is_file()
