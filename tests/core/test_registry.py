"""The one registry type, and every registry of the project looped over (timm's tests loop over list_models)."""

from __future__ import annotations

import re

import pytest

from core.explain.cam import CAM_METHODS
from core.faces import DETECTORS
from core.faces.preprocess import PREPROCESS
from core.losses import LOSSES
from core.models import MODELS
from core.registry import Registry
from training.config import PRESETS, ConfigError
from training.datasets import DATASETS, DatasetError

REGISTRIES = {
    "model": (MODELS, ValueError),
    "detector": (DETECTORS, ValueError),
    "preprocessing": (PREPROCESS, ValueError),
    "CAM method": (CAM_METHODS, ValueError),
    "loss": (LOSSES, ValueError),
    "dataset": (DATASETS, DatasetError),
    "preset": (PRESETS, ConfigError),
}
MINIMUM = {"model": {"default", "hafem_compact", "dcrnet"}, "detector": {"default", "mtcnn", "assume_cropped"},
           "preprocessing": {"clahe", "gamma"}, "CAM method": {"gradcam", "eigencam"}, "loss": {"ce", "compound"},
           "dataset": {"fer2013", "ferplus", "folder"}, "preset": {"default", "hafem_compact"}}  # fmt: skip


@pytest.mark.parametrize("kind", list(REGISTRIES))
def test_every_registry_lists_gets_and_rejects_unknown_names(kind):
    reg, error = REGISTRIES[kind]
    assert reg.kind == kind and MINIMUM[kind] <= set(reg.names())
    assert reg.names() == sorted(reg) and len(reg) == len(reg.names())
    for name in reg:
        assert name in reg and reg.get(name) is not None
    with pytest.raises(error, match=rf"unknown {kind} 'no-such-name'; choose one of \[") as exc:
        reg.get("no-such-name")
    listed = re.findall(r"'([^']+)'", str(exc.value).split("choose one of", 1)[1])
    assert listed == reg.names()  # the message names every registered entry
    first = next(iter(reg))
    with pytest.raises(ValueError, match="registered twice"):
        reg.register(reg.get(first), name=first)


def test_registry_decorator_forms_and_glob():
    reg: Registry[object] = Registry("thing")

    @reg.register
    def alpha():
        return 1

    @reg.register(name="beta-2")
    def anything():
        return 2

    reg.register(object, name="gamma")
    assert alpha() == 1 and anything() == 2  # decorators hand the function back unchanged
    assert list(reg) == ["alpha", "beta-2", "gamma"] and reg.names("*a") == ["alpha", "gamma"]
    assert reg.get("beta-2") is anything and "delta" not in reg
