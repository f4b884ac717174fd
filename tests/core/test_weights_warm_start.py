"""core.models.weights.warm_start: a 7-class file starts an 8-class model, a trunk file starts a bigger model."""

from __future__ import annotations

import pytest
import torch

from core.models import create_model, save_weights
from core.models.weights import WeightsError, warm_start


def test_a_seven_class_head_fills_the_first_rows_and_contempt_keeps_its_init(tmp_path):
    torch.manual_seed(0)
    src = create_model("fernet_s", num_classes=7)
    save_weights(src, tmp_path / "w7.safetensors")
    dst = create_model("fernet_s", num_classes=8)
    fresh_row = dst.head.weight[7].detach().clone()
    report = warm_start(dst, tmp_path / "w7.safetensors")
    assert report["widened"] == ["head.bias", "head.weight"] and report["fresh"] == []
    assert torch.equal(dst.head.weight[:7], src.head.weight) and torch.equal(dst.head.bias[:7], src.head.bias)
    assert torch.equal(dst.head.weight[7], fresh_row)
    assert torch.equal(dst.stem[0].weight, src.stem[0].weight)


def test_an_eight_class_head_starts_a_seven_class_model_without_contempts_row(tmp_path):
    torch.manual_seed(0)
    src = create_model("fernet_s", num_classes=8)
    save_weights(src, tmp_path / "w8.safetensors")
    dst = create_model("fernet_s", num_classes=7)
    report = warm_start(dst, tmp_path / "w8.safetensors")
    assert report["widened"] == ["head.bias", "head.weight"]
    assert torch.equal(dst.head.weight, src.head.weight[:7]) and torch.equal(dst.head.bias, src.head.bias[:7])
    x = torch.randn(2, 1, 48, 48)
    src.eval(), dst.eval()
    with torch.no_grad():  # same trunk, same first seven logits
        assert torch.allclose(dst(x), src(x)[:, :7], atol=1e-5)


def test_keys_the_file_lacks_keep_their_init_and_a_foreign_shape_is_refused(tmp_path):
    save_weights(create_model("fernet_s"), tmp_path / "trunk.safetensors")
    with_cbam = create_model("fernet_s", cbam=True)
    report = warm_start(with_cbam, tmp_path / "trunk.safetensors")
    assert report["fresh"] and all(k.startswith("cbam.") for k in report["fresh"])
    with pytest.raises(WeightsError, match="cannot warm-start"):
        warm_start(create_model("fernet_m"), tmp_path / "trunk.safetensors")
