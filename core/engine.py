"""InferenceEngine: one loaded model served to every caller (dashboard sessions, webcam thread, CLI, explainers).

Loading, device, precision, batching and timing live here, with the one definition of how a face crop becomes
model input. Backends: ``torch`` (default), ``onnx`` (exported once per weights hash, run by onnxruntime) and
``auto`` (onnxruntime on CPU, torch on GPU). Every model call holds ``engine.lock``; code that hooks
``engine.model`` (Grad-CAM) holds :meth:`InferenceEngine.exclusive`.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from core.models import FERModel, ModelSpec, create_model
from core.models.weights import load_weights, read_meta, shipped_weights

log = logging.getLogger(__name__)

__all__ = [
    "BACKENDS",
    "EngineStats",
    "InferenceEngine",
    "build_model",
    "crops_to_pixels",
    "normalize",
    "prepare",
    "resolve_device",
]

BACKENDS = ("torch", "onnx", "auto")
Steps = Callable[[np.ndarray], np.ndarray]
"""A photometric preprocessing pipeline on one uint8 image (``core.faces.preprocess.Compose``)."""
CACHE_ENV = "FERLENS_CACHE"
"""Folder for derived artefacts (ONNX exports); default ``~/.cache/ferlens``."""


# --------------------------------------------------------------------------------------------------------------
# The input pipeline (the one definition; training.loader must agree with it)


def _check_crop(crop: np.ndarray, i: int) -> np.ndarray:
    if not isinstance(crop, np.ndarray) or crop.dtype != np.uint8:
        got = f"{crop.dtype} array" if isinstance(crop, np.ndarray) else type(crop).__name__
        raise TypeError(f"crop {i}: expected a uint8 (H, W, 3) RGB or (H, W) gray array, got {got}")
    if crop.ndim == 3 and crop.shape[2] == 1:
        crop = crop[..., 0]
    if not (crop.ndim == 2 or (crop.ndim == 3 and crop.shape[2] == 3)) or min(crop.shape[:2]) < 1:
        raise ValueError(f"crop {i}: expected (H, W, 3) RGB or (H, W) gray, got shape {crop.shape}")
    return crop


def _array_crops(arr: np.ndarray) -> list[np.ndarray]:
    """One array -> its crops: ``(H, W)`` and ``(H, W, 1|3)`` are one crop, ``(N, H, W[, C])`` a batch.

    Other shapes are refused here rather than iterated: iterating an ``(H, W, 4)`` RGBA image or an ``(H, W, 5)``
    array would silently classify H "gray crops" W pixels by 4 or 5, a confident answer to a wrong question.
    A gray batch ``(N, H, W)`` is told apart from a channel axis by its width (crops narrower than 8 px are
    not faces).
    """
    if arr.ndim == 2 or (arr.ndim == 3 and arr.shape[2] in (1, 3)):
        return [arr]
    if arr.ndim == 4 or (arr.ndim == 3 and arr.shape[2] >= 8):
        return list(arr)
    hint = (
        " (drop or composite the alpha channel first, e.g. with core.io.load_image)"
        if arr.ndim and arr.shape[-1] == 4
        else ""
    )
    raise ValueError(
        f"expected a crop (H, W) or (H, W, 3), or a batch (N, H, W[, 3]) of crops; got an array of shape "
        f"{arr.shape}{hint}"
    )


def crops_to_pixels(
    crops: Sequence[np.ndarray], spec: ModelSpec, steps: Callable[[np.ndarray], np.ndarray] | None = None
) -> torch.Tensor:
    """Face crops -> uint8 ``(N, c, S, S)`` at the model's size: the photometric part of the input pipeline.

    Per crop, in this order (the order ``training.loader.prepare_tensor`` uses):

    1. the model's ``spec.preprocess`` steps (``core.faces.preprocess``, e.g. CLAHE) at the crop's own
       resolution;
    2. RGB -> one channel (ITU-R 601 luma, ``core.faces.preprocess.luminance``) for 1-channel models; a gray
       crop stays one channel and is expanded to three only in :func:`normalize`;
    3. resize to ``spec.input_size`` with bilinear interpolation and antialiasing (a no-op for aligned crops,
       which the face pipeline already warps to that size).

    ``c`` is 1 when every crop is gray or the model is gray, else 3. ``steps`` replaces the model's own
    preprocessing (the dashboard's ablation switches); ``None`` means ``spec.preprocess``.
    """
    from core.faces import preprocess as pp

    size = spec.input_size
    planes = []
    for i, crop in enumerate(crops):
        img = _check_crop(crop, i)
        if steps is not None:
            img = steps(img)
            if img.ndim == 3 and img.shape[2] == 1:
                img = img[..., 0]
        elif spec.preprocess:
            img = pp.apply(img, tuple(spec.preprocess))
        if img.ndim == 3 and spec.in_chans == 1:
            img = pp.luminance(img)
        planes.append(img)
    if not planes:
        return torch.zeros((0, spec.in_chans, size, size), dtype=torch.uint8)
    channels = 1 if all(p.ndim == 2 for p in planes) else 3
    out = torch.empty((len(planes), channels, size, size), dtype=torch.uint8)
    for i, img in enumerate(planes):
        if img.ndim == 2 and channels == 3:  # mixed gray and colour crops in one batch
            img = np.repeat(img[..., None], 3, axis=2)
        t = torch.from_numpy(np.ascontiguousarray(img))
        t = t[None, None] if t.ndim == 2 else t.permute(2, 0, 1)[None]
        if t.shape[-2:] != (size, size):
            t = F.interpolate(t.float(), size=(size, size), mode="bilinear", antialias=True, align_corners=False)
            t = t.round().clamp(0, 255).to(torch.uint8)
        out[i] = t[0]
    return out


def normalize(x: torch.Tensor, spec: ModelSpec) -> torch.Tensor:
    """Float ``[0, 1]`` batch -> model input: gray expanded to ``spec.in_chans`` channels, then ``(x - mean) / std``."""
    if x.shape[1] == 1 and spec.in_chans == 3:
        x = x.expand(-1, 3, -1, -1)
    if x.shape[1] != spec.in_chans:
        raise ValueError(f"{spec.name} takes {spec.in_chans}-channel input, got {x.shape[1]} channels")
    mean = torch.tensor(spec.mean, dtype=x.dtype, device=x.device).view(1, -1, 1, 1)
    std = torch.tensor(spec.std, dtype=x.dtype, device=x.device).view(1, -1, 1, 1)
    return (x - mean) / std


def prepare(
    crops: Sequence[np.ndarray], spec: ModelSpec, steps: Callable[[np.ndarray], np.ndarray] | None = None
) -> torch.Tensor:
    """Face crops (uint8 RGB or gray, any size) -> the normalised float32 ``(N, in_chans, S, S)`` model input."""
    return normalize(crops_to_pixels(crops, spec, steps).float() / 255.0, spec).contiguous()


# --------------------------------------------------------------------------------------------------------------
# Device and model loading


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """``"auto"`` -> cuda, else mps, else cpu; anything else is passed to ``torch.device`` and checked."""
    if str(device) == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        mps = getattr(torch.backends, "mps", None)
        if mps is not None and mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {str(device)!r} asked for, but CUDA is not available here; use 'auto' or 'cpu'")
    return dev


def build_model(
    name: str, weights: str | Path | None = "default", num_classes: int | None = None, **overrides
) -> tuple[FERModel, str, Path | None]:
    """Build a registered model and load its weights; returns ``(model, weights_status, weights_path)``.

    ``weights="default"`` uses the file shipped for ``name`` when there is one, else leaves the model at a
    seeded random init and says so (status + one WARNING): every consumer must still work, and must show
    that predictions are meaningless. ``None`` asks for random init on purpose. A path loads that file; its
    JSON sidecar (written by the trainer) supplies ``num_classes`` and the run's ``model_overrides``, so a
    checkpoint alone rebuilds the trained model (the same rule as ``training.evaluate``).
    """
    path: Path | None = None
    if weights is not None and str(weights) == "default":
        path = shipped_weights(name)
    elif weights is not None and str(weights).lower() not in ("none", "random"):
        path = Path(weights)
        if not path.is_file():
            raise FileNotFoundError(f"weights file not found: {path}")
    side = read_meta(path) if path is not None else {}
    spec = side.get("spec") if isinstance(side.get("spec"), dict) else {}
    cfg = side.get("config") if isinstance(side.get("config"), dict) else {}
    kw = {**(cfg.get("model_overrides") or {}), **overrides}
    nc = num_classes or spec.get("num_classes") or (cfg.get("data") or {}).get("num_classes") or 7
    # Random init is seeded, so two engines (two app sessions, two CLI runs) agree even without weights.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = create_model(name, num_classes=int(nc), **kw)
    if path is not None:
        load_weights(model, path)
        status = f"trained weights: {_short(path)}"
    elif weights is None or str(weights).lower() in ("none", "random"):
        status = f"random init (no weights asked for {name!r}): predictions are meaningless"
        log.info("%s: %s", name, status)
    else:
        status = f"random init (no weights shipped for {name!r}): predictions are meaningless"
        log.warning("%s", status)
    return model.eval(), status, path


def _short(path: Path) -> str:
    root = Path(__file__).resolve().parents[1]
    try:
        return str(path.resolve().relative_to(root))
    except ValueError:
        return str(path)


# --------------------------------------------------------------------------------------------------------------
# Statistics


@dataclass(frozen=True)
class EngineStats:
    """Latency and throughput over the last ``window`` model calls (each call = one batch)."""

    calls: int
    """Calls since the engine was built."""
    images: int
    """Images classified since the engine was built."""
    window: int
    """Calls the figures below are computed over."""
    latency_ms_mean: float | None
    latency_ms_p50: float | None
    latency_ms_p95: float | None
    images_per_s: float | None
    """Images divided by time spent in the model (compute throughput)."""
    calls_per_s: float | None
    """Calls per second of wall-clock time across the window (the served frame rate when one call = one frame)."""

    def to_dict(self) -> dict:
        return asdict(self)


class _Stats:
    def __init__(self, window: int) -> None:
        self._lock = threading.Lock()
        self._window: deque[tuple[float, float, int]] = deque(maxlen=window)  # (end time, seconds, images)
        self._calls = 0
        self._images = 0

    def add(self, seconds: float, images: int) -> None:
        with self._lock:
            self._window.append((time.perf_counter(), seconds, images))
            self._calls += 1
            self._images += images

    def snapshot(self) -> EngineStats:
        with self._lock:
            rows = list(self._window)
            calls, images = self._calls, self._images
        if not rows:
            return EngineStats(calls, images, 0, None, None, None, None, None)
        lat = np.array([r[1] for r in rows]) * 1e3
        busy = float(sum(r[1] for r in rows))
        n_img = sum(r[2] for r in rows)
        span = rows[-1][0] - (rows[0][0] - rows[0][1])
        return EngineStats(
            calls=calls,
            images=images,
            window=len(rows),
            latency_ms_mean=float(lat.mean()),
            latency_ms_p50=float(np.percentile(lat, 50)),
            latency_ms_p95=float(np.percentile(lat, 95)),
            images_per_s=n_img / busy if busy > 0 else None,
            calls_per_s=len(rows) / span if span > 0 else None,
        )


# --------------------------------------------------------------------------------------------------------------
# The engine


class InferenceEngine:
    """A loaded model behind a thread-safe, batched ``predict``.

    Args:
        model: a registered model name (``core.models.list_models()``), or an already built ``FERModel``
            (then ``weights`` is ignored unless it is a path).
        weights: ``"default"`` (shipped weights, else seeded random init with a warning), ``None`` (random
            init), or a ``.safetensors`` path.
        device: ``"auto"`` (cuda -> mps -> cpu), ``"cpu"``, ``"cuda"``, ``"cuda:1"``, ``"mps"``.
        backend: ``"torch"``, ``"onnx"`` (onnxruntime on the CPU or, if its CUDA provider is installed, GPU) or
            ``"auto"`` (onnx on the CPU, torch elsewhere).
        threads: CPU threads for torch (``torch.set_num_threads``, which is process-wide) and onnxruntime.
        num_classes: override the class count (7 or 8); default from the weights' sidecar, else 7.
        precision: ``"auto"`` (bf16 autocast on CUDA when supported, else fp16; fp32 elsewhere), ``"fp32"``,
            ``"bf16"`` or ``"fp16"``.
        compile: wrap the model in ``torch.compile`` (CUDA only by default: compiling on CPU needs a C++ compiler).
        max_batch: larger inputs are split into chunks of this size.
        stats_window: how many recent calls :meth:`stats` summarises.
        onnx_dir: where ONNX exports are cached (default ``$FERLENS_CACHE/onnx`` or ``~/.cache/ferlens/onnx``).
        **overrides: model config overrides passed to ``create_model`` (e.g. ``cbam=True``).
    """

    def __init__(
        self,
        model: str | FERModel = "default",
        weights: str | Path | None = "default",
        device: str | torch.device = "auto",
        backend: str = "torch",
        threads: int | None = None,
        num_classes: int | None = None,
        precision: str = "auto",
        compile: bool = False,
        max_batch: int = 64,
        stats_window: int = 256,
        onnx_dir: str | Path | None = None,
        **overrides,
    ) -> None:
        if backend not in BACKENDS:
            raise ValueError(f"unknown backend {backend!r}; choose one of {list(BACKENDS)}")
        if precision not in ("auto", "fp32", "bf16", "fp16"):
            raise ValueError(f"unknown precision {precision!r}; choose one of ['auto', 'fp32', 'bf16', 'fp16']")
        if max_batch < 1:
            raise ValueError(f"max_batch must be >= 1, got {max_batch}")
        if threads is not None:
            if threads < 1:
                raise ValueError(f"threads must be >= 1, got {threads}")
            torch.set_num_threads(threads)
        self.threads = threads
        self.max_batch = max_batch
        self.lock = threading.RLock()
        self._stats = _Stats(stats_window)
        if isinstance(model, FERModel):
            self.model = model.eval()
            self.weights_path = None
            self.weights_status = "model given by the caller (its weights as they are)"
            if weights is not None and str(weights) not in ("default", "none", "random"):
                load_weights(self.model, weights)
                self.weights_path = Path(weights)
                self.weights_status = f"trained weights: {_short(self.weights_path)}"
        elif isinstance(model, str):
            self.model, self.weights_status, self.weights_path = build_model(model, weights, num_classes, **overrides)
        else:
            raise TypeError(f"model must be a registered name or a FERModel, got {type(model).__name__}")
        self.spec: ModelSpec = self.model.spec
        if backend == "auto":
            backend = "torch" if resolve_device(device).type != "cpu" else "onnx"
            fallback = True
        else:
            fallback = False
        self.backend = backend
        self.device = resolve_device(device) if backend == "torch" else torch.device("cpu")
        self.model.to(self.device)
        self.amp_dtype = self._amp_dtype(precision)
        self.channels_last = self.device.type == "cuda"
        if self.channels_last:
            self.model.to(memory_format=torch.channels_last)
        self._forward = self.model
        if compile:
            self._forward = torch.compile(self.model)
        self._session = None
        if backend == "onnx":
            try:
                self._session = self._onnx_session(onnx_dir)
            except Exception as exc:
                if not fallback:
                    raise
                log.warning("ONNX export/session failed (%s: %s); serving with torch", type(exc).__name__, exc)
                self.backend = "torch"
        log.info(
            "engine: %s on %s (%s%s), %s",
            self.spec.name,
            self.device,
            self.backend,
            f", {self.amp_dtype}" if self.amp_dtype else "",
            self.weights_status,
        )

    # -- properties
    @property
    def class_names(self) -> tuple[str, ...]:
        return self.spec.class_names

    @property
    def has_trained_weights(self) -> bool:
        return self.weights_path is not None

    def __repr__(self) -> str:
        return (
            f"InferenceEngine(model={self.spec.name!r}, device={str(self.device)!r}, backend={self.backend!r}, "
            f"weights={self.weights_status!r})"
        )

    # -- input
    def prepare(self, crops: Sequence[np.ndarray] | np.ndarray, steps: Steps | None = None) -> torch.Tensor:
        """Face crops -> normalised float32 model input on the CPU (see :func:`crops_to_pixels`).

        A single ``(H, W, 3)`` or ``(H, W)`` array is one crop; an ``(N, H, W[, 3])`` array or a list is a batch.
        """
        if isinstance(crops, np.ndarray):
            crops = _array_crops(crops)
        return prepare(list(crops), self.spec, steps)

    # -- inference
    def predict(
        self, inputs: Sequence[np.ndarray] | np.ndarray | torch.Tensor, steps: Steps | None = None
    ) -> np.ndarray:
        """Class probabilities ``(N, num_classes)`` float32 for face crops or an already prepared tensor.

        ``steps`` replaces the model's own photometric preprocessing for crops (ignored for tensors).
        """
        return _softmax(self.predict_logits(inputs, steps))

    def predict_logits(
        self, inputs: Sequence[np.ndarray] | np.ndarray | torch.Tensor, steps: Steps | None = None
    ) -> np.ndarray:
        """Raw logits ``(N, num_classes)`` float32 (what calibration and the faithfulness curves need)."""
        x = inputs if isinstance(inputs, torch.Tensor) else self.prepare(inputs, steps)
        s = self.spec.input_size
        if x.ndim != 4 or x.shape[1] != self.spec.in_chans or tuple(x.shape[2:]) != (s, s):
            raise ValueError(f"{self.spec.name} takes (N, {self.spec.in_chans}, {s}, {s}) input, got {tuple(x.shape)}")
        n = x.shape[0]
        if n == 0:
            return np.zeros((0, self.spec.num_classes), np.float32)
        out = [self._run(x[i : i + self.max_batch]) for i in range(0, n, self.max_batch)]
        return np.concatenate(out)

    def _run(self, x: torch.Tensor) -> np.ndarray:
        x = x.detach().float()
        with self.lock:
            t0 = time.perf_counter()
            if self._session is not None:
                feed = np.ascontiguousarray(x.detach().cpu().numpy())
                logits = self._session.run(None, {"x": feed})[0].astype(np.float32, copy=False)
            else:
                logits = self._torch_forward(x)
            self._stats.add(time.perf_counter() - t0, len(x))
        return logits

    def _torch_forward(self, x: torch.Tensor) -> np.ndarray:
        x = x.to(self.device, non_blocking=True)
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        amp = (
            torch.autocast(self.device.type, dtype=self.amp_dtype)
            if self.amp_dtype is not None
            else contextlib.nullcontext()
        )
        with torch.inference_mode(), amp:
            logits = self._forward(x)
        return logits.float().cpu().numpy()

    @contextlib.contextmanager
    def exclusive(self) -> Iterator[FERModel]:
        """Hold the engine's lock and yield the model: for explainers that hook or run the model themselves."""
        with self.lock:
            yield self.model

    def stats(self) -> EngineStats:
        """Latency and throughput of the recent model calls."""
        return self._stats.snapshot()

    def warmup(self, batch: int = 1) -> None:
        """Run one dummy batch (first calls pay for allocations, kernel selection, compilation)."""
        s = self.spec.input_size
        self._run(torch.zeros(batch, self.spec.in_chans, s, s))

    # -- helpers
    def _amp_dtype(self, precision: str) -> torch.dtype | None:
        if precision == "fp32" or self.backend == "onnx":
            return None
        if self.device.type != "cuda":
            if precision != "auto":
                log.warning("precision %s is only used on CUDA; running fp32 on %s", precision, self.device)
            return None
        if precision == "fp16":
            return torch.float16
        if precision == "bf16" or torch.cuda.is_bf16_supported():
            return torch.bfloat16
        return torch.float16

    def _onnx_session(self, onnx_dir: str | Path | None):
        import onnxruntime as ort

        path = self._export_onnx(onnx_dir)
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = self.threads or torch.get_num_threads()
        opts.inter_op_num_threads = 1
        opts.log_severity_level = 3
        providers = [p for p in ("CUDAExecutionProvider", "CPUExecutionProvider") if p in ort.get_available_providers()]
        return ort.InferenceSession(str(path), opts, providers=providers)

    def _export_onnx(self, onnx_dir: str | Path | None) -> Path:
        """Export once per (model, weights, torch version); later engines reuse the cached file."""
        root = Path(onnx_dir) if onnx_dir else Path(os.environ.get(CACHE_ENV, Path.home() / ".cache" / "ferlens"))
        root = root / "onnx" if not onnx_dir else root
        h = hashlib.sha256(f"{self.spec.to_dict()}|{torch.__version__}".encode())
        for k, v in sorted(self.model.state_dict().items()):
            h.update(k.encode())
            h.update(v.detach().cpu().contiguous().numpy().tobytes())
        path = root / f"{self.spec.name}-{self.spec.num_classes}c-{h.hexdigest()[:16]}.onnx"
        if path.is_file():
            return path
        root.mkdir(parents=True, exist_ok=True)
        s = self.spec.input_size
        dummy = torch.zeros(2, self.spec.in_chans, s, s)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
        t0 = time.perf_counter()
        try:
            torch.onnx.export(
                self.model,
                (dummy,),
                str(tmp),
                input_names=["x"],
                output_names=["logits"],
                dynamo=True,
                dynamic_shapes={"x": {0: torch.export.Dim("batch", min=1, max=4096)}},
                external_data=False,
                verbose=False,
            )
            os.replace(tmp, path)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        log.info("exported %s to ONNX in %.1f s: %s", self.spec.name, time.perf_counter() - t0, path)
        return path


def _softmax(logits: np.ndarray) -> np.ndarray:
    z = logits - logits.max(axis=1, keepdims=True)
    e = np.exp(z)
    return (e / e.sum(axis=1, keepdims=True)).astype(np.float32, copy=False)
