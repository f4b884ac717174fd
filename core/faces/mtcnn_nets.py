"""MTCNN's three networks: torch definitions (to read facenet-pytorch's weight files) and ONNX Runtime sessions.

The nets are tiny and run many times per frame, so each runs in a single-threaded, non-spinning ORT session
(torch's spinning thread pool is much slower on a busy CPU, docs/faces.md). The graphs are written with
``onnx.helper``; a test checks them against the torch modules.
"""

from __future__ import annotations

import importlib.util
import logging
import threading
from pathlib import Path

import numpy as np
import torch
from torch import nn

from core.faces.types import DetectorUnavailableError

log = logging.getLogger(__name__)

__all__ = ["mtcnn_weights_dir", "load_state_dicts", "build_onnx", "sessions", "torch_nets"]

# --------------------------------------------------------------------------------------------------------------
# The three networks (layout identical to facenet_pytorch.models.mtcnn, so its state dicts load unchanged)


class _PNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 10, kernel_size=3)
        self.prelu1 = nn.PReLU(10)
        self.pool1 = nn.MaxPool2d(2, 2, ceil_mode=True)
        self.conv2 = nn.Conv2d(10, 16, kernel_size=3)
        self.prelu2 = nn.PReLU(16)
        self.conv3 = nn.Conv2d(16, 32, kernel_size=3)
        self.prelu3 = nn.PReLU(32)
        self.conv4_1 = nn.Conv2d(32, 2, kernel_size=1)
        self.softmax4_1 = nn.Softmax(dim=1)
        self.conv4_2 = nn.Conv2d(32, 4, kernel_size=1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.pool1(self.prelu1(self.conv1(x)))
        x = self.prelu3(self.conv3(self.prelu2(self.conv2(x))))
        return self.conv4_2(x), self.softmax4_1(self.conv4_1(x))


class _RNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 28, kernel_size=3)
        self.prelu1 = nn.PReLU(28)
        self.pool1 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv2 = nn.Conv2d(28, 48, kernel_size=3)
        self.prelu2 = nn.PReLU(48)
        self.pool2 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv3 = nn.Conv2d(48, 64, kernel_size=2)
        self.prelu3 = nn.PReLU(64)
        self.dense4 = nn.Linear(576, 128)
        self.prelu4 = nn.PReLU(128)
        self.dense5_1 = nn.Linear(128, 2)
        self.softmax5_1 = nn.Softmax(dim=1)
        self.dense5_2 = nn.Linear(128, 4)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.pool1(self.prelu1(self.conv1(x)))
        x = self.pool2(self.prelu2(self.conv2(x)))
        x = self.prelu3(self.conv3(x))
        x = x.permute(0, 3, 2, 1).contiguous()  # the weights were converted from a (W, H)-ordered TF graph
        x = self.prelu4(self.dense4(x.view(x.shape[0], -1)))
        return self.dense5_2(x), self.softmax5_1(self.dense5_1(x))


class _ONet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 32, kernel_size=3)
        self.prelu1 = nn.PReLU(32)
        self.pool1 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv2 = nn.Conv2d(32, 64, kernel_size=3)
        self.prelu2 = nn.PReLU(64)
        self.pool2 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv3 = nn.Conv2d(64, 64, kernel_size=3)
        self.prelu3 = nn.PReLU(64)
        self.pool3 = nn.MaxPool2d(2, 2, ceil_mode=True)
        self.conv4 = nn.Conv2d(64, 128, kernel_size=2)
        self.prelu4 = nn.PReLU(128)
        self.dense5 = nn.Linear(1152, 256)
        self.prelu5 = nn.PReLU(256)
        self.dense6_1 = nn.Linear(256, 2)
        self.softmax6_1 = nn.Softmax(dim=1)
        self.dense6_2 = nn.Linear(256, 4)
        self.dense6_3 = nn.Linear(256, 10)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        x = self.pool1(self.prelu1(self.conv1(x)))
        x = self.pool2(self.prelu2(self.conv2(x)))
        x = self.pool3(self.prelu3(self.conv3(x)))
        x = self.prelu4(self.conv4(x))
        x = x.permute(0, 3, 2, 1).contiguous()
        x = self.prelu5(self.dense5(x.view(x.shape[0], -1)))
        return self.dense6_2(x), self.dense6_3(x), self.softmax6_1(self.dense6_1(x))


# --------------------------------------------------------------------------------------------------------------
# Weights: found inside the installed facenet-pytorch wheel, loaded once per process


def mtcnn_weights_dir() -> Path:
    """The folder holding ``pnet.pt``, ``rnet.pt``, ``onet.pt`` inside the installed facenet-pytorch.

    Found with ``importlib.util.find_spec`` so that facenet-pytorch's own code is never imported.
    """
    spec = importlib.util.find_spec("facenet_pytorch")
    if spec is None or not spec.submodule_search_locations:
        raise DetectorUnavailableError(
            "the MTCNN weights ship inside the facenet-pytorch wheel, which is not installed; run "
            "`pip install --no-deps facenet-pytorch==2.6.0` (see requirements-nodeps.txt)"
        )
    folder = Path(next(iter(spec.submodule_search_locations))) / "data"
    missing = [n for n in ("pnet.pt", "rnet.pt", "onet.pt") if not (folder / n).is_file()]
    if missing:
        raise DetectorUnavailableError(f"facenet-pytorch is installed but {missing} are missing from {folder}")
    return folder


def load_state_dicts(weights_dir: str | Path | None = None) -> dict[str, dict[str, torch.Tensor]]:
    """``{"pnet": ..., "rnet": ..., "onet": ...}`` read with ``torch.load(weights_only=True)``."""
    from core.models.weights import read_state_dict

    folder = Path(weights_dir) if weights_dir is not None else mtcnn_weights_dir()
    return {n: read_state_dict(folder / f"{n}.pt") for n in ("pnet", "rnet", "onet")}


def torch_nets(weights_dir: str | Path | None = None) -> dict[str, nn.Module]:
    """The torch modules with the weights loaded (reference implementation, used by the tests)."""
    out = {}
    for name, sd in load_state_dicts(weights_dir).items():
        net = {"pnet": _PNet, "rnet": _RNet, "onet": _ONet}[name]()
        net.load_state_dict(sd)
        out[name] = net.eval().requires_grad_(False)
    return out


# --------------------------------------------------------------------------------------------------------------
# Hand-written ONNX graphs

# (op, module name or params) in forward order; "flatten" = permute(0, 3, 2, 1) + flatten, as in the modules
_TRUNKS = {
    "pnet": [
        ("conv", "conv1"),
        ("prelu", "prelu1"),
        ("pool", (2, 2)),
        ("conv", "conv2"),
        ("prelu", "prelu2"),
        ("conv", "conv3"),
        ("prelu", "prelu3"),
    ],
    "rnet": [
        ("conv", "conv1"),
        ("prelu", "prelu1"),
        ("pool", (3, 2)),
        ("conv", "conv2"),
        ("prelu", "prelu2"),
        ("pool", (3, 2)),
        ("conv", "conv3"),
        ("prelu", "prelu3"),
        ("flatten", None),
        ("dense", "dense4"),
        ("prelu", "prelu4"),
    ],
    "onet": [
        ("conv", "conv1"),
        ("prelu", "prelu1"),
        ("pool", (3, 2)),
        ("conv", "conv2"),
        ("prelu", "prelu2"),
        ("pool", (3, 2)),
        ("conv", "conv3"),
        ("prelu", "prelu3"),
        ("pool", (2, 2)),
        ("conv", "conv4"),
        ("prelu", "prelu4"),
        ("flatten", None),
        ("dense", "dense5"),
        ("prelu", "prelu5"),
    ],
}
# heads: (output name, module, softmax?) in the order the cascade reads them
_HEADS = {
    "pnet": [("reg", "conv4_2", False), ("prob", "conv4_1", True)],
    "rnet": [("reg", "dense5_2", False), ("prob", "dense5_1", True)],
    "onet": [("reg", "dense6_2", False), ("points", "dense6_3", False), ("prob", "dense6_1", True)],
}


def build_onnx(name: str, state_dict: dict[str, torch.Tensor]) -> bytes:
    """The ONNX model (opset 17) of ``pnet``/``rnet``/``onet`` with these weights, batch (and P-Net's H, W)
    dynamic."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    inits, nodes = [], []

    def weight(key: str, arr: np.ndarray | None = None) -> str:
        value = state_dict[key].detach().cpu().numpy() if arr is None else arr
        inits.append(numpy_helper.from_array(np.ascontiguousarray(value, np.float32), key))
        return key

    x, conv_like = "x", True
    for i, (op, arg) in enumerate(_TRUNKS[name]):
        out = f"t{i}"
        if op == "conv":
            nodes.append(helper.make_node("Conv", [x, weight(f"{arg}.weight"), weight(f"{arg}.bias")], [out]))
        elif op == "prelu":
            slope = state_dict[f"{arg}.weight"].detach().cpu().numpy()
            shape = (-1, 1, 1) if conv_like else (-1,)
            nodes.append(helper.make_node("PRelu", [x, weight(f"{arg}.weight", slope.reshape(shape))], [out]))
        elif op == "pool":
            k, s = arg
            nodes.append(helper.make_node("MaxPool", [x], [out], kernel_shape=[k, k], strides=[s, s], ceil_mode=1))
        elif op == "flatten":
            nodes.append(helper.make_node("Transpose", [x], [f"{out}_t"], perm=[0, 3, 2, 1]))
            nodes.append(helper.make_node("Flatten", [f"{out}_t"], [out], axis=1))
            conv_like = False
        elif op == "dense":
            nodes.append(helper.make_node("Gemm", [x, weight(f"{arg}.weight"), weight(f"{arg}.bias")], [out], transB=1))
        x = out
    outputs = []
    for out_name, module, softmax in _HEADS[name]:
        raw = f"{out_name}_raw" if softmax else out_name
        if conv_like:
            nodes.append(helper.make_node("Conv", [x, weight(f"{module}.weight"), weight(f"{module}.bias")], [raw]))
        else:
            nodes.append(
                helper.make_node("Gemm", [x, weight(f"{module}.weight"), weight(f"{module}.bias")], [raw], transB=1)
            )
        if softmax:
            nodes.append(helper.make_node("Softmax", [raw], [out_name], axis=1))
        k = int(state_dict[f"{module}.bias"].shape[0])
        out_dims = ["n", k, "oh", "ow"] if conv_like else ["n", k]
        outputs.append(helper.make_tensor_value_info(out_name, TensorProto.FLOAT, out_dims))
    dims = (
        ["n", 3, "h", "w"] if name == "pnet" else ["n", 3, 24 if name == "rnet" else 48, 24 if name == "rnet" else 48]
    )
    graph = helper.make_graph(
        nodes, f"mtcnn_{name}", [helper.make_tensor_value_info("x", TensorProto.FLOAT, dims)], outputs, inits
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="ferlens")
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model.SerializeToString()


_SESSIONS: dict[tuple[str, int], dict[str, object]] = {}
_LOCK = threading.Lock()


def sessions(weights_dir: str | Path | None = None, num_threads: int = 1) -> dict[str, object]:
    """ONNX Runtime sessions for the three nets, built once per process (thread-safe; ``run`` is re-entrant)."""
    import onnxruntime as ort

    folder = Path(weights_dir) if weights_dir is not None else mtcnn_weights_dir()
    key = (str(folder.resolve()), num_threads)
    with _LOCK:
        if key not in _SESSIONS:
            opts = ort.SessionOptions()
            opts.intra_op_num_threads = num_threads
            opts.inter_op_num_threads = 1
            opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
            opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
            opts.log_severity_level = 3
            sds = load_state_dicts(folder)
            _SESSIONS[key] = {
                n: ort.InferenceSession(build_onnx(n, sd), opts, providers=["CPUExecutionProvider"])
                for n, sd in sds.items()
            }
            log.debug("built MTCNN ONNX sessions from %s (%d thread(s))", folder, num_threads)
        return _SESSIONS[key]
