"""MTCNN's three networks as ONNX Runtime sessions, built from facenet-pytorch's weight files.

The nets are tiny and run many times per frame, so each runs in a single-threaded, non-spinning ORT session
(torch's spinning thread pool is much slower on a busy CPU, docs/faces.md). The graphs are written with
``onnx.helper``; a test checks them against facenet-pytorch's own torch modules.
"""

from __future__ import annotations

import importlib.util
import logging
import threading
from pathlib import Path

import numpy as np
import torch

from core.faces.types import DetectorUnavailableError

log = logging.getLogger(__name__)

__all__ = ["mtcnn_weights_dir", "load_state_dicts", "build_onnx", "sessions"]

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


# --------------------------------------------------------------------------------------------------------------
# Hand-written ONNX graphs

# Each net's trunk in forward order, named as in facenet_pytorch.models.mtcnn (so its state dicts load unchanged):
# "convN" / "denseN" is followed by "preluN"; "poolK" is a KxK, stride-2, ceil-mode max pool; "flatten" permutes to
# (N, W, H, C) first, because the weights were converted from a (W, H)-ordered TF graph.
_TRUNKS = {
    "pnet": ("conv1", "pool2", "conv2", "conv3"),
    "rnet": ("conv1", "pool3", "conv2", "pool3", "conv3", "flatten", "dense4"),
    "onet": ("conv1", "pool3", "conv2", "pool3", "conv3", "pool2", "conv4", "flatten", "dense5"),
}
# heads: (output name, module) in the order the cascade reads them; "prob" goes through a softmax
_HEADS = {
    "pnet": [("reg", "conv4_2"), ("prob", "conv4_1")],
    "rnet": [("reg", "dense5_2"), ("prob", "dense5_1")],
    "onet": [("reg", "dense6_2"), ("points", "dense6_3"), ("prob", "dense6_1")],
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

    def affine(x: str, module: str, out: str) -> None:  # Conv before the flatten, Gemm (x @ W.T + b) after it
        op, kw = ("Conv", {}) if conv_like else ("Gemm", {"transB": 1})
        nodes.append(helper.make_node(op, [x, weight(f"{module}.weight"), weight(f"{module}.bias")], [out], **kw))

    x, conv_like = "x", True
    for i, layer in enumerate(_TRUNKS[name]):
        out = f"t{i}"
        if layer.startswith("pool"):
            k = int(layer[4:])
            nodes.append(helper.make_node("MaxPool", [x], [out], kernel_shape=[k, k], strides=[2, 2], ceil_mode=1))
        elif layer == "flatten":
            nodes.append(helper.make_node("Transpose", [x], [f"{out}_t"], perm=[0, 3, 2, 1]))
            nodes.append(helper.make_node("Flatten", [f"{out}_t"], [out], axis=1))
            conv_like = False
        else:
            affine(x, layer, f"{out}_a")
            prelu = "prelu" + layer.removeprefix("conv").removeprefix("dense")
            slope = state_dict[f"{prelu}.weight"].detach().cpu().numpy().reshape((-1, 1, 1) if conv_like else (-1,))
            nodes.append(helper.make_node("PRelu", [f"{out}_a", weight(f"{prelu}.weight", slope)], [out]))
        x = out
    outputs = []
    for out_name, module in _HEADS[name]:
        if out_name == "prob":
            affine(x, module, "logits")
            nodes.append(helper.make_node("Softmax", ["logits"], [out_name], axis=1))
        else:
            affine(x, module, out_name)
        k = int(state_dict[f"{module}.bias"].shape[0])
        out_dims = ["n", k, "oh", "ow"] if conv_like else ["n", k]
        outputs.append(helper.make_tensor_value_info(out_name, TensorProto.FLOAT, out_dims))
    side = {"pnet": "h", "rnet": 24, "onet": 48}[name]
    dims = ["n", 3, side, "w" if name == "pnet" else side]
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
