"""InferenceEngine: one loaded model served to every caller (dashboard sessions, webcam thread, CLI, explainers).

Loading, device, precision, batching, timing and the torch/onnx backends live here; crops become input through
``ModelSpec.transform``, the transform training uses. Model calls hold ``engine.lock``; code that hooks
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

from core.models import FERModel, ModelSpec, create_model
from core.models.base import Steps
from core.models.weights import atomic_write, load_weights, read_meta, resolve_weights

log = logging.getLogger(__name__)

__all__ = [
    "BACKENDS",
    "EngineStats",
    "InferenceEngine",
    "TTA_MODES",
    "build_model",
    "check_tta",
    "probabilities",
    "resolve_device",
    "sidecar_temperature",
]

BACKENDS = ("torch", "onnx", "auto")
TTA_MODES: tuple[str | None, ...] = (None, "hflip")
"""Test-time augmentation: ``None`` (one view) or ``"hflip"`` (the crop and its mirror, probabilities averaged)."""
CACHE_ENV = "FERLENS_CACHE"
"""Folder for derived artefacts (ONNX exports); default ``~/.cache/ferlens``."""


def _array_crops(arr: np.ndarray) -> list[np.ndarray] | np.ndarray:
    """One array -> its crops: ``(H, W)`` and ``(H, W, 1|3)`` are one crop, ``(N, H, W[, C])`` a batch.

    Other shapes are refused: iterating an ``(H, W, 4)`` RGBA image would classify H bogus crops. A gray batch
    ``(N, H, W)`` is told from a channel axis by its width (crops narrower than 8 px are not faces).
    """
    if arr.ndim == 2 or (arr.ndim == 3 and arr.shape[2] in (1, 3)):
        return [arr]
    if arr.ndim == 4 or (arr.ndim == 3 and arr.shape[2] >= 8):
        return arr
    hint = (
        " (drop or composite the alpha channel first, e.g. with core.io.load_image)" if arr.shape[-1:] == (4,) else ""
    )
    raise ValueError(
        f"expected a crop (H, W) or (H, W, 3), or a batch (N, H, W[, 3]) of crops; got an array of shape "
        f"{arr.shape}{hint}"
    )


def check_tta(tta: str | None) -> str | None:
    """``tta`` if it is one of :data:`TTA_MODES`, else a ValueError that lists them."""
    if not (tta is None or (isinstance(tta, str) and tta in TTA_MODES)):
        raise ValueError(f"unknown tta {tta!r}; choose one of {list(TTA_MODES)}")
    return tta


def probabilities(
    forward: Callable[[torch.Tensor], torch.Tensor | np.ndarray],
    x: torch.Tensor,
    temperature: float = 1.0,
    tta: str | None = None,
) -> torch.Tensor:
    """The one definition: ``softmax(forward(x) / temperature)``; with ``tta="hflip"`` averaged with the mirror's.

    Both views go through one forward call. Temperature comes first, so the result is the mean of two calibrated
    distributions.
    """
    check_tta(tta)
    if not (temperature > 0 and np.isfinite(temperature)):
        raise ValueError(f"temperature must be a positive finite number, got {temperature!r}")
    n = x.shape[0]
    if tta == "hflip":
        x = torch.cat([x, torch.flip(x, dims=[-1])])
    logits = torch.as_tensor(forward(x)).float()
    p = torch.softmax(logits / temperature, dim=1)
    return 0.5 * (p[:n] + p[n:]) if tta == "hflip" else p


def sidecar_temperature(meta: dict) -> float | None:
    """The temperature ``training.calibrate`` stored in a weights sidecar (``meta["calibration"]``), or None."""
    cal = meta.get("calibration")
    t = cal.get("temperature") if isinstance(cal, dict) else None
    if t is None:
        return None
    if isinstance(t, bool) or not isinstance(t, (int, float)) or not (t > 0 and np.isfinite(t)):
        raise ValueError(f"the sidecar's calibration.temperature must be a positive number, got {t!r}")
    return float(t)


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """``"auto"`` -> cuda, else mps, else cpu; anything else is passed to ``torch.device`` and checked."""
    if str(device) == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {str(device)!r} asked for, but CUDA is not available here; use 'auto' or 'cpu'")
    return dev


def build_model(
    name: str, weights: str | Path | None = "default", num_classes: int | None = None, **overrides
) -> tuple[FERModel, str, Path | None]:
    """``create_model`` in eval mode, plus ``(weights_status, weights_path)`` for banners and logs.

    A random init (``weights=None``) is seeded, so two engines (two app sessions, two CLI runs) agree.
    Raises ``WeightsError`` (naming the fix) when the weights asked for do not exist or do not fit.
    """
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = create_model(name, num_classes=num_classes, weights=weights, **overrides)
    path = resolve_weights(name, weights)
    if path is not None:
        status = f"trained weights: {_short(path)}"
    else:
        status = f"random init (no weights asked for {name!r}): predictions are meaningless"
        log.info("%s: %s", name, status)
    return model.eval(), status, path


def _short(path: Path) -> str:
    root = Path(__file__).resolve().parents[1]
    try:
        return str(path.resolve().relative_to(root))
    except ValueError:
        return str(path)


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


class InferenceEngine:
    """A loaded model behind a thread-safe, batched ``predict``.

    Args:
        model: a registered name, or a built ``FERModel`` (then ``weights`` counts only as a path).
        weights: ``"default"`` (the shipped file; ``WeightsError`` when there is none), ``None`` (seeded random
            init) or a ``.safetensors`` path whose sidecar supplies ``num_classes``, model overrides and the
            temperature.
        device: ``"auto"`` (cuda, then mps, then cpu) or a torch device.
        backend: ``"torch"``, ``"onnx"`` (onnxruntime; on the GPU when its CUDA provider is installed) or ``"auto"``
            (onnx on the CPU, torch elsewhere).
        threads: CPU threads for torch (process-wide) and onnxruntime.
        num_classes: 7 or 8; default from the sidecar, else 7.
        precision: ``"auto"`` (bf16 or fp16 autocast on CUDA, fp32 elsewhere), ``"fp32"``, ``"bf16"``, ``"fp16"``.
        compile: ``torch.compile`` the model (on the CPU this needs a C++ compiler).
        max_batch: larger inputs are split into chunks of this size.
        stats_window: how many recent calls :meth:`stats` summarises.
        calibration: divide logits by the sidecar's temperature (``training.calibrate``) before the softmax.
        onnx_dir: where ONNX exports are cached (default ``$FERLENS_CACHE/onnx``).
        **overrides: model config overrides for ``create_model`` (e.g. ``cbam=True``).
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
        calibration: bool = True,
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
        found = sidecar_temperature(read_meta(self.weights_path)) if calibration and self.weights_path else None
        self.temperature: float = found or 1.0
        """Logits are divided by this before the softmax in :meth:`predict` (1.0: uncalibrated)."""
        fallback = backend == "auto"
        if fallback:
            backend = "torch" if resolve_device(device).type != "cpu" else "onnx"
        self.backend = backend
        self.device = resolve_device(device) if backend == "torch" else torch.device("cpu")
        self.model.to(self.device)
        self.amp_dtype = self._amp_dtype(precision)
        self.channels_last = self.device.type == "cuda"
        if self.channels_last:
            self.model.to(memory_format=torch.channels_last)
        self._forward = torch.compile(self.model) if compile else self.model
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
            self.weights_status + (f", temperature {self.temperature:.3f}" if self.temperature != 1.0 else ""),
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
        """Face crops -> normalised float32 model input on the CPU (``ModelSpec.transform``).

        A single ``(H, W, 3)`` or ``(H, W)`` array is one crop; an ``(N, H, W[, 3])`` array or a list is a batch.
        """
        return self.spec.transform(_array_crops(crops) if isinstance(crops, np.ndarray) else crops, steps)

    # -- inference
    def predict(
        self,
        inputs: Sequence[np.ndarray] | np.ndarray | torch.Tensor,
        steps: Steps | None = None,
        tta: str | None = None,
    ) -> np.ndarray:
        """Class probabilities ``(N, num_classes)`` float32 for face crops or an already prepared tensor.

        Calibrated by ``engine.temperature``; ``tta="hflip"`` averages each crop with its mirror image (one
        batch of 2N, see :func:`probabilities`). ``steps`` replaces the model's own photometric preprocessing
        for crops (ignored for tensors).
        """
        return probabilities(self.predict_logits, self._input(inputs, steps), self.temperature, tta).numpy()

    def predict_logits(
        self, inputs: Sequence[np.ndarray] | np.ndarray | torch.Tensor, steps: Steps | None = None
    ) -> np.ndarray:
        """Raw logits ``(N, num_classes)`` float32, before temperature (what the faithfulness curves need)."""
        x = self._input(inputs, steps)
        n = x.shape[0]
        if n == 0:
            return np.zeros((0, self.spec.num_classes), np.float32)
        out = [self._run(x[i : i + self.max_batch]) for i in range(0, n, self.max_batch)]
        return np.concatenate(out)

    def _input(self, inputs: Sequence[np.ndarray] | np.ndarray | torch.Tensor, steps: Steps | None) -> torch.Tensor:
        x = inputs if isinstance(inputs, torch.Tensor) else self.prepare(inputs, steps)
        s = self.spec.input_size
        if x.ndim != 4 or x.shape[1] != self.spec.in_chans or tuple(x.shape[2:]) != (s, s):
            raise ValueError(f"{self.spec.name} takes (N, {self.spec.in_chans}, {s}, {s}) input, got {tuple(x.shape)}")
        return x

    def _run(self, x: torch.Tensor) -> np.ndarray:
        x = x.detach().float()
        with self.lock:
            t0 = time.perf_counter()
            if self._session is not None:
                feed = np.ascontiguousarray(x.cpu().numpy())
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
        cache = Path(os.environ.get(CACHE_ENV, Path.home() / ".cache" / "ferlens"))
        root = Path(onnx_dir) if onnx_dir else cache / "onnx"
        h = hashlib.sha256(f"{self.spec.to_dict()}|{torch.__version__}".encode())
        for k, v in sorted(self.model.state_dict().items()):
            h.update(k.encode())
            h.update(v.detach().cpu().contiguous().numpy().tobytes())
        path = root / f"{self.spec.name}-{self.spec.num_classes}c-{h.hexdigest()[:16]}.onnx"
        if path.is_file():
            return path
        s = self.spec.input_size
        dummy = torch.zeros(2, self.spec.in_chans, s, s)
        t0 = time.perf_counter()
        atomic_write(  # concurrent engines each export to their own temp file; the last replace wins
            path,
            lambda tmp: torch.onnx.export(
                self.model,
                (dummy,),
                str(tmp),
                input_names=["x"],
                output_names=["logits"],
                dynamo=True,
                dynamic_shapes={"x": {0: torch.export.Dim("batch", min=1, max=4096)}},
                external_data=False,
                verbose=False,
            ),
        )
        log.info("exported %s to ONNX in %.1f s: %s", self.spec.name, time.perf_counter() - t0, path)
        return path
