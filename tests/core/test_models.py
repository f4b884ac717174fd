"""Every registered model: builds by name, right shapes, finite gradients, counts match docs/models.md."""

from __future__ import annotations

import functools
import pickle
from pathlib import Path

import pytest
import torch

from bench.models import DOC, parse_table
from core.models import WeightsError, create_model, list_models, load_weights, save_weights, tokens_to_grid
from core.models.cbam import CBAM
from core.models.weights import read_meta

ALL = list_models()
EXPECTED = {
    "resnet50_baseline",
    "effnet_b5_baseline",
    "hafem",
    "hafem_compact",
    "hafem_paper",
    "dcrnet",
    "default",
}


@functools.cache
def built(name: str) -> torch.nn.Module:
    """One instance per model for the read-only tests (building hafem_paper takes seconds)."""
    return create_model(name)


def n_params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def test_registry_lists_the_papers_models():
    assert EXPECTED <= set(ALL)


# ``hafem`` with its defaults equals ``hafem_compact``: exercise its CBAM-only rung instead.
BUILD_CASES = [(n, {"transformer": False} if n == "hafem" else {}) for n in ALL]


@pytest.mark.slow
@pytest.mark.parametrize(("name", "overrides"), BUILD_CASES)
def test_builds_shapes_and_finite_gradients(name, overrides):
    model = create_model(name, **overrides).train()
    s, c = model.spec.input_size, model.spec.in_chans
    x = torch.randn(2, c, s, s)
    logits, emb = model.forward_train(x)
    assert logits.shape == (2, 7) and emb.shape == (2, model.embed_dim)
    (logits.logsumexp(1).mean() + emb.pow(2).mean() + model.regularization_loss()).backward()
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    assert any(g.abs().sum() > 0 for g in grads)


@pytest.mark.parametrize("name", ALL)
def test_parameter_counts_match_the_docs_table(name):
    table = parse_table(DOC.read_text())
    assert name in table, f"{name} missing from docs/models.md: run bench/models.py --write-docs"
    assert n_params(built(name)) == table[name]


@pytest.mark.parametrize("name", ALL)
def test_layer_groups_cover_every_parameter_once_head_last(name):
    model = built(name)
    groups = model.layer_groups()
    ids = [id(p) for g in groups for p in g]
    assert len(ids) == len(set(ids)) == len(list(model.parameters()))
    assert {id(p) for p in model.get_classifier().parameters()} <= {id(p) for p in groups[-1]}
    assert len(groups) >= 4


def cbam_param_count(channels: int, reduction: int = 16, kernel_size: int = 7) -> int:
    """Closed-form parameter count of one CBAM block: the shared MLP's two 1x1 convs and the k x k spatial conv."""
    return 2 * channels * max(channels // reduction, 1) + 2 * kernel_size * kernel_size


def test_cbam_switch_changes_count_by_two_cbam_blocks():
    on, off = create_model("hafem", transformer=False), create_model("hafem", transformer=False, cbam=False)
    assert n_params(on) - n_params(off) == cbam_param_count(176) + cbam_param_count(2048)
    assert cbam_param_count(64) == n_params(CBAM(64))


def test_transformer_switch_changes_count_by_the_encoder():
    d, ff, layers, tokens = 512, 1024, 2, 49
    on = create_model("hafem", cbam=False, transformer_layers=layers, d_model=d, heads=8, d_ff=ff)
    off = create_model("hafem", cbam=False, transformer=False)
    per_layer = (3 * d * d + 3 * d) + (d * d + d) + (d * ff + ff) + (ff * d + d) + 4 * d
    proj = 2048 * d + d
    head_change = (d * 7 + 7) - (2048 * 7 + 7)
    expected = proj + tokens * d + layers * per_layer + 2 * d + head_change
    assert n_params(on) - n_params(off) == expected


def test_paper_transformer_is_about_200m_parameters():
    paper, compact = built("hafem_paper"), built("hafem_compact")
    encoder = sum(p.numel() for p in paper.encoder.parameters())
    assert 195e6 < encoder < 205e6
    assert abs(n_params(compact) - 61.6e6) / 61.6e6 < 0.02


def test_transformer_cam_layer_gives_a_square_grid():
    model = create_model("hafem_compact").eval()
    seen = {}
    handle = model.cam_target_layers()[0].register_forward_hook(lambda m, i, o: seen.setdefault("out", o))
    with torch.no_grad():
        model(torch.randn(1, 3, 224, 224))
    handle.remove()
    grid = model.cam_reshape_transform(seen["out"])
    assert grid.shape == (1, 2048, 7, 7)
    with pytest.raises(ValueError, match="square"):
        tokens_to_grid(torch.zeros(1, 50, 4))


def test_wrong_input_size_for_transformer_is_a_clear_error():
    with pytest.raises(ValueError, match="built for 224px"):
        create_model("hafem_compact")(torch.randn(1, 3, 160, 160))


def test_unknown_names_and_options_list_the_known_ones():
    with pytest.raises(ValueError, match="unknown model 'vgg'.*default"):
        create_model("vgg")
    with pytest.raises(ValueError, match="unknown option.*depht.*known"):
        create_model("default", depht=3)


def test_reset_classifier_to_eight_classes():
    model = create_model("default")
    model.reset_classifier(8)
    assert model(torch.randn(1, 1, 48, 48)).shape == (1, 8)
    assert model.spec.class_names[-1] == "contempt"
    assert create_model("default", num_classes=8).spec.num_classes == 8


def test_weights_roundtrip_through_safetensors(tmp_path: Path):
    model = create_model("default").eval()
    path = tmp_path / "w.safetensors"
    save_weights(model, path, meta={"spec": model.spec.to_dict()})
    clone = create_model("default", weights=path).eval()
    x = torch.randn(3, 1, 48, 48)
    assert torch.equal(model(x), clone(x))
    assert read_meta(path)["spec"]["input_size"] == 48


@pytest.mark.parametrize(
    "sidecar, needle",
    [
        (b"[1, 2]", "is a JSON list, not an object"),
        (b"{", "not valid JSON"),
        (b"\xff\xfe{}", "not valid JSON"),
        (b"[" * 100_000, "not valid JSON"),
    ],  # fmt: skip
)
def test_a_bad_sidecar_is_a_weights_error_everywhere(tmp_path: Path, sidecar: bytes, needle: str):
    from core.engine import InferenceEngine

    path = tmp_path / "w.safetensors"
    save_weights(create_model("default"), path)
    path.with_suffix(".json").write_bytes(sidecar)
    with pytest.raises(WeightsError, match=needle):
        read_meta(path)
    with pytest.raises(WeightsError, match=needle):  # the API path that used to fail with an AttributeError
        InferenceEngine("default", weights=str(path))


def test_mismatched_weights_name_the_keys(tmp_path: Path):
    path = tmp_path / "m.safetensors"
    save_weights(create_model("fernet_m"), path)
    with pytest.raises(WeightsError, match=r"unexpected keys \(24\).*shape mismatches.*stages\.0\.0"):
        load_weights(create_model("default"), path)
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"not a safetensors file at all")
    with pytest.raises(WeightsError, match="not a valid safetensors"):
        create_model("default", weights=bad)


class _Payload:
    def __init__(self, canary: str) -> None:
        self.canary = canary

    def __reduce__(self):
        return (open, (self.canary, "w"))


def test_pickle_checkpoint_is_refused_and_never_runs(tmp_path: Path):
    canary = tmp_path / "canary"
    path = tmp_path / "evil.pt"
    with open(path, "wb") as fh:
        pickle.dump({"weight": _Payload(str(canary))}, fh)
    with pytest.raises(WeightsError, match="could not be loaded safely"):
        create_model("default", weights=path)
    assert not canary.exists()


def test_hafem_lite_warm_starts_every_trunk_tensor_from_the_default_weights():
    from safetensors.torch import load_file

    from core.models.weights import SHIPPED_DIR, warm_start

    path = SHIPPED_DIR / "fernet_s_fer2013.safetensors"
    assert path.is_file(), "fernet_s_fer2013 weights are shipped with the repo"
    torch.manual_seed(0)
    model = create_model("hafem_lite")
    fresh_before = {k: v.clone() for k, v in model.state_dict().items()}
    started = warm_start(model, path)
    own, file = model.state_dict(), load_file(str(path))
    assert set(file) <= set(own) and any(k.startswith("stages.") for k in file)
    for k, v in file.items():
        assert torch.equal(own[k], v), k  # every trunk (and head) tensor is the file's
    new = set(own) - set(file)
    assert new == set(started["fresh"])
    assert {k.split(".")[0] for k in new} == {"cbams", "pos_embed", "encoder", "norm"}
    for k in new:
        assert torch.equal(own[k], fresh_before[k]), k  # the new parts keep their init


def test_hafem_lite_rungs_are_one_family():
    trunk = create_model("hafem_lite", cbam=False, transformer=False)
    cbam = create_model("hafem_lite", transformer=False)
    full = create_model("hafem_lite")
    assert set(trunk.state_dict()) == set(create_model("fernet_s_fer2013").state_dict())  # the trunk rung is FerNet-S
    assert n_params(cbam) - n_params(trunk) == cbam_param_count(128) + cbam_param_count(256)
    d, ff, tokens = 256, 1024, 36
    per_layer = (3 * d * d + 3 * d) + (d * d + d) + (d * ff + ff) + (ff * d + d) + 4 * d
    assert n_params(full) - n_params(cbam) == tokens * d + per_layer + 2 * d  # no projection: widths end at 256
    assert full.cam_reshape_transform is tokens_to_grid and trunk.cam_reshape_transform is None
    with pytest.raises(ValueError, match="cbam_stages"):
        create_model("hafem_lite", cbam_stages=(5,))
    with pytest.raises(ValueError, match="built for 48px"):
        full(torch.randn(1, 1, 64, 64))
