"""Knock-outs: the part becomes identity in a copy, every other weight is kept, the output changes."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from core.models import available_parts, create_model, knock_out
from core.models.cbam import CBAM


@pytest.mark.parametrize(
    ("name", "overrides", "part", "removed"),
    [
        ("hafem_lite", {}, "cbam", ["cbams.2", "cbams.3"]),
        ("hafem_lite", {}, "transformer", ["encoder"]),
        ("fernet_s", {"cbam": True}, "cbam", ["cbam"]),
    ],
)
def test_knock_out_replaces_the_part_by_identity_and_keeps_the_rest(name, overrides, part, removed):
    torch.manual_seed(0)
    model = create_model(name, **overrides).eval()
    out = knock_out(model, part)
    for dotted in removed:
        assert isinstance(out.get_submodule(dotted), nn.Identity)
        assert not isinstance(model.get_submodule(dotted), nn.Identity)  # the original is untouched
    assert not available_parts(out)[part] and available_parts(model)[part]
    kept = out.state_dict()
    dropped = {k for k in model.state_dict() if any(k.startswith(d + ".") for d in removed)}
    assert dropped and set(kept) == set(model.state_dict()) - dropped
    for k, v in kept.items():
        assert torch.equal(v, model.state_dict()[k])
    x = torch.randn(3, 1, 48, 48)
    with torch.no_grad():
        assert not torch.allclose(out(x), model(x), atol=1e-4)
    assert not out.training


def test_knock_out_of_both_parts_and_what_identity_computes():
    torch.manual_seed(0)
    model = create_model("hafem_lite").eval()
    both = knock_out(model, "cbam", "transformer")
    assert available_parts(both) == {"cbam": False, "transformer": False}
    x = torch.randn(2, 1, 48, 48)
    with torch.no_grad():  # an independent forward: trunk without CBAM, tokens + positions, final norm, mean, head
        feats = model.stages(model.stem(x))
        tokens = feats.flatten(2).transpose(1, 2) + model.pos_embed
        expected = model.head(model.norm(tokens).mean(dim=1))
        assert torch.allclose(both(x), expected, atol=1e-5)


def test_knock_out_of_a_missing_or_unknown_part_is_a_clear_error():
    with pytest.raises(ValueError, match="has no transformer to knock out.*parts it has: none"):
        knock_out(create_model("fernet_s"), "transformer")
    with pytest.raises(ValueError, match="unknown part 'mlp'; choose one of"):
        knock_out(create_model("fernet_s"), "mlp")
    assert available_parts(create_model("hafem_lite", transformer=False)) == {"cbam": True, "transformer": False}
    assert isinstance(create_model("hafem_lite").get_submodule("cbams.3"), CBAM)
