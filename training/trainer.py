"""The papers' trainer: one ``fit(cfg)`` for a laptop CPU, one GPU, or many under ``torchrun``.

A run folder holds ``config.json``, ``metrics.jsonl``, ``best.*`` (best validation macro-F1) and ``last.*`` +
``last_state.pt``. Checkpoints commit at ``last_state.pt`` and randomness is reseeded per epoch, so a killed run
resumes exactly (docs/training.md).
"""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import math
import os
import platform
import random
import shlex
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F
from safetensors.torch import save_file
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from core.losses import build_loss
from core.metrics import macro_f1
from core.models import create_model
from core.models.weights import TEMP_SUFFIX, atomic_write, load_weights, stage_write, warm_start
from training.augment import BatchAugmenter
from training.config import TrainConfig, config_from_dict, config_to_dict, validate_config
from training.datasets import FaceSet, describe, load_split
from training.loader import BatchLoader, seed_for
from training.optim import build_optimizer, build_scheduler

log = logging.getLogger(__name__)

STATE_FILE = "last_state.pt"
CHECKPOINT_FILES = ("best.json", "best.safetensors", "last.json", "last.safetensors", STATE_FILE)
"""An epoch's checkpoint files in commit order: ``last_state.pt`` last, as the commit point."""
RUN_FILES = (*CHECKPOINT_FILES, "metrics.jsonl", "config.json", "data.json")
RESUME_MAY_CHANGE = ("out_dir", "patience", "log_every", "num_threads", "eval_batch_size")
"""Config fields that may differ between a run and its resumption without breaking exactness."""


class CheckpointError(OSError):
    """An epoch's checkpoint could not be written (disk full, permission denied...).

    ``errno`` is the underlying error's; the message names the file, the run folder and what is still intact.
    """


@dataclass
class FitResult:
    out_dir: Path
    best_weights: Path
    last_checkpoint: Path
    best_epoch: int
    best_val_macro_f1: float
    history: list[dict] = field(default_factory=list)


# ------------------------------------------------------------------------------------ environment


@dataclass(frozen=True)
class DistInfo:
    rank: int = 0
    world_size: int = 1
    local_world_size: int = 1
    device: torch.device = torch.device("cpu")

    @property
    def main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def setup_distributed() -> DistInfo:
    """Join the process group when launched by ``torchrun`` (``WORLD_SIZE > 1``); else a single process."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    local_world = int(os.environ.get("LOCAL_WORLD_SIZE", str(world)))
    cuda = torch.cuda.is_available()
    device = torch.device(f"cuda:{local_rank}" if cuda else "cpu")
    if cuda:
        torch.cuda.set_device(device)
    if world > 1:
        if not dist.is_initialized():
            dist.init_process_group(backend="nccl" if cuda else "gloo")
        return DistInfo(dist.get_rank(), world, local_world, device)
    return DistInfo(device=device)


def set_threads(cfg: TrainConfig, info: DistInfo) -> int:
    """On CPU, ``cfg.num_threads`` or the cores shared among this machine's processes (at least 1)."""
    if info.device.type != "cpu":
        return torch.get_num_threads()
    n = cfg.num_threads or max(1, (os.cpu_count() or 1) // max(1, info.local_world_size))
    torch.set_num_threads(n)
    return n


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def hardware(device: torch.device | None = None) -> str:
    """What trained (or measured): the CUDA device's name, else the CPU model and core count."""
    if device is not None and device.type == "cuda" or device is None and torch.cuda.is_available():
        return torch.cuda.get_device_name(device)
    cpu = platform.processor() or platform.machine()
    with contextlib.suppress(OSError, StopIteration):  # no /proc (macOS, Windows) or no model name in it
        cpu = next(x.split(":", 1)[1].strip() for x in Path("/proc/cpuinfo").read_text().splitlines()
                   if x.startswith("model name"))  # fmt: skip
    return f"{cpu}, {os.cpu_count()} cores, no GPU"


def set_deterministic(on: bool, device_type: str = "cpu") -> None:
    """``torch.use_deterministic_algorithms`` plus the cuDNN/cuBLAS switches it needs.

    A violation is an error on CPU; on CUDA, where a few ops have no deterministic kernel, it only warns.
    """
    if on:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    torch.use_deterministic_algorithms(on, warn_only=on and device_type == "cuda")
    torch.backends.cudnn.deterministic = on
    torch.backends.cudnn.benchmark = not on


def amp_dtype(cfg: TrainConfig, device: torch.device) -> torch.dtype | None:
    """Autocast dtype on CUDA (bf16 where supported, else fp16); None on CPU or with ``amp=off``."""
    if device.type != "cuda" or cfg.optim.amp == "off":
        return None
    if cfg.optim.amp == "fp16" or (cfg.optim.amp == "auto" and not torch.cuda.is_bf16_supported()):
        return torch.float16
    return torch.bfloat16


class _TrainStep(nn.Module):
    """``forward`` returns ``(logits, embedding)``, so DDP (which wraps ``forward`` only) sees the train pass.

    The embedding is taken before the classifier's dropout, which the center loss must not see.
    """

    def __init__(self, model: nn.Module, with_embedding: bool) -> None:
        super().__init__()
        self.model, self.with_embedding = model, with_embedding

    def forward(self, x: torch.Tensor):
        if self.with_embedding:
            return self.model.forward_train(x)
        return self.model(x), None


@torch.no_grad()
def evaluate_loader(model: nn.Module, loader: BatchLoader, info: DistInfo, amp: torch.dtype | None) -> dict:
    """Validation accuracy, macro-F1 and CE loss over the whole split (gathered across DDP ranks)."""
    model.eval()
    idx_all, pred_all, loss_all = [np.zeros(0, np.int64)], [np.zeros(0, np.int64)], [np.zeros(0, np.float32)]
    for x, y, idx in loader:
        with torch.autocast(info.device.type, dtype=amp, enabled=amp is not None):
            logits = model(x).float()
        idx_all.append(idx.numpy())
        pred_all.append(logits.argmax(1).cpu().numpy())
        loss_all.append(F.cross_entropy(logits, y.float() if y.ndim == 2 else y, reduction="none").cpu().numpy())
    cols = [np.concatenate(c) for c in (idx_all, pred_all, loss_all)]
    if info.distributed:
        parts: list = [None] * info.world_size
        dist.all_gather_object(parts, cols)
        cols = [np.concatenate(c) for c in zip(*parts, strict=True)]
    idx, pred, losses = cols
    idx, first = np.unique(idx, return_index=True)  # drop DistributedSampler-style padding duplicates
    pred, losses = pred[first], losses[first]
    labels = loader.fs.labels[idx]
    return {
        "val_loss": float(losses.mean()) if len(losses) else float("nan"),
        "val_acc": float((pred == labels).mean()) if len(labels) else float("nan"),
        "val_macro_f1": macro_f1(labels, pred, loader.fs.num_classes),
    }


# ------------------------------------------------------------------------------------ checkpoints


def _write_json(path: Path, obj) -> None:
    text = json.dumps(obj, indent=2, sort_keys=True, default=str)
    atomic_write(path, lambda tmp: Path(tmp).write_text(text))


def _rng_state() -> dict:
    state = {"torch": torch.get_rng_state(), "python": random.getstate()}
    _, key, pos, has_gauss, gauss = np.random.get_state()
    state["numpy"] = {"key": [int(v) for v in key], "pos": int(pos), "has_gauss": int(has_gauss), "gauss": float(gauss)}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    random.setstate(state["python"])
    npy = state["numpy"]
    np.random.set_state(
        ("MT19937", np.asarray(npy["key"], dtype=np.uint32), npy["pos"], npy["has_gauss"], npy["gauss"])
    )
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _truncate_metrics(path: Path, epochs_done: int) -> list[dict]:
    """Keep the records of completed epochs (a killed run may have logged steps past its checkpoint)."""
    if not path.is_file():
        return []
    kept, history = [], []
    for n, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except json.JSONDecodeError:  # a line torn by a kill or a full disk; its epoch is redone anyway
            log.warning("%s: dropping unreadable line %d (%.60r)", path, n, line)
            continue
        if rec.get("epoch", 0) <= epochs_done:
            kept.append(line)
            if rec.get("kind") == "epoch":
                history.append(rec)
    atomic_write(path, lambda tmp: Path(tmp).write_text("".join(k + "\n" for k in kept)))
    return history


def epoch_records(run_dir: Path) -> list[dict] | None:
    """The per-epoch records of a run's ``metrics.jsonl`` (None without one), skipping lines torn by a kill."""
    path = Path(run_dir) / "metrics.jsonl"
    if not path.is_file():
        return None
    records = []
    for line in path.read_text().splitlines():
        with contextlib.suppress(json.JSONDecodeError):
            records.append(json.loads(line))
    return [r for r in records if r.get("kind") == "epoch"]


def _check_resumable(saved: TrainConfig, cfg: TrainConfig) -> None:
    a, b = config_to_dict(saved), config_to_dict(cfg)
    diff = sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k) and k not in RESUME_MAY_CHANGE)
    if diff:
        raise ValueError(
            f"cannot resume: the config differs from the run's config.json in {diff}; resume with the same "
            "settings (only " + ", ".join(RESUME_MAY_CHANGE) + " may change)"
        )


def _append_line(path: Path, line: str) -> int:
    """Append one line to ``path`` and return its old size; a failed write (disk full) is cut back off."""
    data = memoryview((line + "\n").encode())
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o666)
    try:
        end = os.lseek(fd, 0, os.SEEK_END)
        try:
            while data:
                data = data[os.write(fd, data) :]
        except BaseException:
            os.ftruncate(fd, end)  # no torn line left behind
            raise
    finally:
        os.close(fd)
    return end


def _save_checkpoint(out: Path, epoch: int, files: dict[str, Callable[[str], None]], record: dict) -> None:
    """Write epoch ``epoch``'s checkpoint so that no failure and no kill leaves a run that cannot resume.

    1. Stage: every file of ``files`` (name -> ``write(tmp)``) is written in full to a temp file and fsynced.
    2. Log: the epoch's record is appended to ``metrics.jsonl`` (a resume drops records past its epoch).
    3. Commit: the temp files replace their targets in :data:`CHECKPOINT_FILES` order, ``last_state.pt`` last.
       ``last_state.pt`` holds the weights too, so until it is replaced the previous epoch is what a resume
       continues from, whatever happened to the other files.

    A failure up to the first rename leaves every file as the previous epoch left it; a later rename failure
    leaves some files one epoch ahead, which a resume ignores. Failures raise :class:`CheckpointError`.
    """
    metrics = out / "metrics.jsonl"
    staged: dict[str, Path] = {}
    done: list[str] = []
    logged_from: int | None = None
    step, name = "writing", ""
    try:
        for name in CHECKPOINT_FILES:
            if name in files:
                staged[name] = stage_write(out / name, files[name])
        step, name = "appending to", metrics.name
        logged_from = _append_line(metrics, json.dumps(record))
        step = "committing"
        for name, tmp in staged.items():
            os.replace(tmp, out / name)
            done.append(name)
    except BaseException as exc:
        for tmp in staged.values():
            tmp.unlink(missing_ok=True)
        if logged_from is not None:
            try:
                os.truncate(metrics, logged_from)  # metrics.jsonl lists committed epochs only
            except OSError as cut:  # a resume drops the record anyway
                log.warning("could not remove epoch %d's record from %s: %s", epoch, metrics, cut)
        if not isinstance(exc, Exception):
            raise
        code = getattr(exc, "errno", None) or errno.EIO
        why = getattr(exc, "strerror", None) or f"{type(exc).__name__}: {exc}"
        if done:
            intact = (
                f"{', '.join(done)} already hold epoch {epoch}; {STATE_FILE} still holds epoch {epoch - 1}, "
                "which --resume continues from"
            )
        else:
            intact = f"nothing of epoch {epoch} was committed; the checkpoint of epoch {epoch - 1} is intact"
        raise CheckpointError(
            code,
            f"could not save the checkpoint of epoch {epoch}: {step} {name} in {out} failed ({why}); {intact}. "
            "Free disk space or fix the folder's permissions, then rerun with --resume",
        ) from exc


def _remove_stale_temps(out: Path) -> None:
    """Delete temp files that a killed run left beside its checkpoint files (``.<name>.<random>.tmp``)."""
    for name in RUN_FILES:
        for tmp in out.glob(f".{name}.*{TEMP_SUFFIX}"):
            log.info("removing %s, left by an interrupted save", tmp)
            tmp.unlink(missing_ok=True)


# ------------------------------------------------------------------------------------------ fit


def fit(
    cfg: TrainConfig,
    resume: bool = False,
    *,
    callbacks: Sequence[Callable[[dict], None]] = (),
    command: str | None = None,
    train_set: FaceSet | None = None,
    val_set: FaceSet | None = None,
) -> FitResult:
    """Train ``cfg.model`` on ``cfg.data`` and keep the best validation macro-F1 weights.

    ``resume`` continues the run in ``cfg.out_dir`` from its last complete epoch (same config required); without it
    a folder that holds a run raises FileExistsError, with it a folder without a checkpoint FileNotFoundError.
    ``callbacks`` get each epoch's record on rank 0 once its checkpoint is written; ``command`` is recorded in the
    sidecars (default ``sys.argv``); ``train_set``/``val_set`` are pre-loaded splits (ablation and search reuse them).
    """
    validate_config(cfg)
    saved = (
        torch.get_num_threads(),
        torch.are_deterministic_algorithms_enabled(),
        torch.backends.cudnn.benchmark,
        torch.is_deterministic_algorithms_warn_only_enabled(),
    )
    try:
        return _fit(cfg, resume, callbacks, command, train_set, val_set)
    finally:  # library callers (ablation, search, tests) get their global torch settings back
        torch.set_num_threads(saved[0])
        torch.use_deterministic_algorithms(saved[1], warn_only=saved[3])
        torch.backends.cudnn.deterministic = saved[1]
        torch.backends.cudnn.benchmark = saved[2]


def _fit(cfg, resume, callbacks, command, train_set, val_set) -> FitResult:
    info = setup_distributed()
    threads = set_threads(cfg, info)
    set_deterministic(cfg.deterministic, info.device.type)
    out = Path(cfg.out_dir)
    state_path = out / STATE_FILE
    command = command or shlex.join(sys.argv)
    where = {"hardware": hardware(info.device), "torch": torch.__version__}
    if resume:
        if not state_path.is_file():
            raise FileNotFoundError(f"nothing to resume: {state_path} does not exist")
        _check_resumable(load_run_config(out), cfg)
    elif state_path.is_file():
        raise FileExistsError(f"{out} already holds a run; pass --resume to continue it or choose another --out")
    if info.main and out.is_dir():
        _remove_stale_temps(out)

    seed_everything(cfg.seed)
    train_fs = train_set if train_set is not None else load_split(cfg.data, cfg.data.train_split)
    val_fs = val_set if val_set is not None else load_split(cfg.data, cfg.data.val_split)
    num_classes = cfg.data.num_classes

    model = create_model(cfg.model, num_classes=num_classes, **cfg.model_overrides)
    if cfg.init_weights and not resume:
        started = warm_start(model, cfg.init_weights)
        log.info(
            "warm start from %s: widened %s, %d tensors kept their init",
            cfg.init_weights,
            started["widened"],
            len(started["fresh"]),
        )
    spec = model.spec
    memory_format = torch.channels_last if cfg.channels_last else torch.contiguous_format
    model.to(info.device, memory_format=memory_format)
    criterion = build_loss(cfg.loss, num_classes, model.embed_dim, train_fs.class_counts().tolist()).to(info.device)
    augmenter = BatchAugmenter(cfg.augment, spec.input_size, num_classes)
    common = dict(
        seed=cfg.seed, rank=info.rank, world_size=info.world_size, device=info.device, cache_dir=cfg.data.cache_dir
    )
    train_loader = BatchLoader(
        train_fs, spec, cfg.batch_size, train=True, augmenter=augmenter, sampler=cfg.data.sampler, **common
    )
    val_loader = BatchLoader(val_fs, spec, cfg.eval_batch_size, train=False, **common)
    steps_per_epoch = len(train_loader)
    optimizer = build_optimizer(model, cfg.optim, extra=criterion)
    scheduler, sched_every = build_scheduler(optimizer, cfg.optim, steps_per_epoch, cfg.epochs)
    amp = amp_dtype(cfg, info.device)
    scaler = torch.amp.GradScaler("cuda", enabled=amp is torch.float16)
    step_module: nn.Module = _TrainStep(model, criterion.needs_embedding)
    if info.distributed:
        step_module = DistributedDataParallel(
            step_module, device_ids=[info.device.index] if info.device.type == "cuda" else None
        )

    stateful = {"optimizer": optimizer, "scheduler": scheduler, "scaler": scaler, "loss": criterion}
    start_epoch, global_step, best_f1, best_epoch, bad_epochs = 0, 0, -math.inf, 0, 0
    history: list[dict] = []
    if resume:
        state = torch.load(state_path, map_location="cpu", weights_only=True)
        if "model" in state:  # the commit point holds the weights; last.* may be one uncommitted epoch ahead
            model.load_state_dict(state["model"])
        else:  # runs saved before the weights moved into the state file: last.* must match it
            sidecar = json.loads((out / "last.json").read_text())
            if sidecar.get("epoch") != state["epoch"]:
                raise ValueError(
                    f"{out}: last.safetensors is from epoch {sidecar.get('epoch')} but {STATE_FILE} from epoch "
                    f"{state['epoch']}; the run was killed mid-save, restore a consistent pair"
                )
            load_weights(model, out / "last.safetensors")
        for key, obj in stateful.items():
            obj.load_state_dict(state[key])
        _set_rng_state(state["rng"])
        start_epoch, global_step = state["epoch"], state["global_step"]
        best_f1, best_epoch, bad_epochs = state["best_val_macro_f1"], state["best_epoch"], state["bad_epochs"]
        if info.main:
            history = _truncate_metrics(out / "metrics.jsonl", start_epoch)
        log.info("resuming %s after epoch %d (best macro-F1 %.4f at epoch %d)", out, start_epoch, best_f1, best_epoch)
    elif info.main:
        out.mkdir(parents=True, exist_ok=True)
        (out / "metrics.jsonl").unlink(missing_ok=True)
        _write_json(out / "config.json", config_to_dict(cfg))
        _write_json(out / "data.json", {"train": describe(train_fs), "val": describe(val_fs)})

    if info.main:
        log.info(
            "training %s (%s, %.2f M params) on %s: %d train / %d val, %d steps/epoch, %s, %d threads, amp=%s",
            cfg.model,
            spec.name,
            sum(p.numel() for p in model.parameters()) / 1e6,
            cfg.data.dataset,
            len(train_fs),
            len(val_fs),
            steps_per_epoch,
            info.device,
            threads,
            amp,
        )
    from tqdm.auto import tqdm

    show_bar = info.main and sys.stderr.isatty()
    metrics_file = out / "metrics.jsonl"
    for epoch in range(start_epoch, cfg.epochs):
        if cfg.patience and bad_epochs >= cfg.patience:
            if info.main:
                log.info(
                    "early stop: no better validation macro-F1 for %d epochs (best %.4f at epoch %d)",
                    cfg.patience,
                    best_f1,
                    best_epoch,
                )
            break
        torch.manual_seed(seed_for(cfg.seed, epoch, info.rank, 3))  # dropout, drop-path: replayable per epoch
        train_loader.set_epoch(epoch)
        step_module.train()
        criterion.train()
        t0 = time.perf_counter()
        sums = {"loss": 0.0, "correct": 0.0, "n": 0}
        term_sums: dict[str, float] = {}
        bar = tqdm(train_loader, desc=f"epoch {epoch + 1}/{cfg.epochs}", disable=not show_bar, leave=False)
        for x, y, _ in bar:
            x = x.contiguous(memory_format=memory_format)
            with torch.autocast(info.device.type, dtype=amp, enabled=amp is not None):
                logits, emb = step_module(x)
            loss = criterion(logits.float(), y, None if emb is None else emb.float())
            loss = loss + model.regularization_loss()
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            if cfg.optim.clip_grad > 0:
                scaler.unscale_(optimizer)
                torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.optim.clip_grad)
            scaler.step(optimizer)
            scaler.update()
            if sched_every == "step":
                scheduler.step()
            global_step += 1
            if not torch.isfinite(loss):
                raise FloatingPointError(
                    f"loss became {loss.item()} at epoch {epoch + 1}, step {global_step}; lower optim.lr or "
                    "check the data"
                )
            n = x.shape[0]
            sums["loss"] += float(loss.detach()) * n
            hard = y if y.ndim == 1 else y.argmax(1)
            sums["correct"] += float((logits.detach().argmax(1) == hard).sum())
            sums["n"] += n
            for k, v in criterion.last_terms.items():
                term_sums[k] = term_sums.get(k, 0.0) + v * n
            if show_bar:
                bar.set_postfix(loss=f"{sums['loss'] / sums['n']:.4f}", lr=f"{optimizer.param_groups[-1]['lr']:.2e}")
            if info.main and cfg.log_every and global_step % cfg.log_every == 0:
                rec = {
                    "kind": "step",
                    "epoch": epoch + 1,
                    "step": global_step,
                    "loss": float(loss.detach()),
                    "lr": optimizer.param_groups[-1]["lr"],
                    **{f"train_{k}": v for k, v in criterion.last_terms.items()},
                }
                _append_line(metrics_file, json.dumps(rec))
        train_time = time.perf_counter() - t0
        if info.distributed:
            _sync_loss_buffers(criterion, info)
        val = evaluate_loader(model, val_loader, info, amp)
        if sched_every == "epoch":
            scheduler.step(val["val_macro_f1"])
        improved = val["val_macro_f1"] > best_f1
        if improved:
            best_f1, best_epoch, bad_epochs = val["val_macro_f1"], epoch + 1, 0
        else:
            bad_epochs += 1
        record = {
            "kind": "epoch",
            "epoch": epoch + 1,
            "step": global_step,
            "lr": optimizer.param_groups[-1]["lr"],
            "train_loss": sums["loss"] / max(1, sums["n"]),
            "train_acc": sums["correct"] / max(1, sums["n"]),
            **{f"train_{k}": v / max(1, sums["n"]) for k, v in term_sums.items()},
            **val,
            "best_val_macro_f1": best_f1,
            "best_epoch": best_epoch,
            "train_time_s": train_time,
            "img_per_s": sums["n"] * info.world_size / max(train_time, 1e-9),
            "time_s": time.perf_counter() - t0,
        }
        if info.main:
            meta = {"spec": spec.to_dict(), "config": config_to_dict(cfg), "command": command, **where}
            weights = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
            side = json.dumps({**meta, "epoch": epoch + 1, "val": val}, indent=2, sort_keys=True, default=str)
            state = {
                "epoch": epoch + 1,
                "global_step": global_step,
                "model": weights,
                **{key: obj.state_dict() for key, obj in stateful.items()},
                "rng": _rng_state(),
                "best_val_macro_f1": best_f1,
                "best_epoch": best_epoch,
                "bad_epochs": bad_epochs,
            }
            files: dict[str, Callable[[str], None]] = {
                "last.json": lambda tmp, t=side: Path(tmp).write_text(t),
                "last.safetensors": lambda tmp, w=weights: save_file(w, tmp),
                STATE_FILE: lambda tmp, s=state: torch.save(s, tmp),
            }
            if improved:
                files["best.json"] = files["last.json"]
                files["best.safetensors"] = files["last.safetensors"]
            _save_checkpoint(out, epoch + 1, files, record)
            history.append(record)
            log.info(
                "epoch %d/%d: train loss %.4f acc %.4f | val acc %.4f macro-F1 %.4f%s | %.0f img/s",
                epoch + 1,
                cfg.epochs,
                record["train_loss"],
                record["train_acc"],
                val["val_acc"],
                val["val_macro_f1"],
                " (best)" if improved else "",
                record["img_per_s"],
            )
            for cb in callbacks:
                cb(record)
        if info.distributed:
            dist.barrier()
    return FitResult(
        out_dir=out,
        best_weights=out / "best.safetensors",
        last_checkpoint=state_path,
        best_epoch=best_epoch,
        best_val_macro_f1=float(best_f1),
        history=history,
    )


def _sync_loss_buffers(criterion: nn.Module, info: DistInfo) -> None:
    """Average loss buffers (center-loss centers) over ranks; each rank moved them with its own batches."""
    for buf in criterion.buffers():
        if buf.is_floating_point():
            dist.all_reduce(buf, op=dist.ReduceOp.SUM)
            buf.div_(info.world_size)


def load_run_config(out_dir: str | Path) -> TrainConfig:
    """The merged config of a run folder (what ``--resume`` continues)."""
    path = Path(out_dir) / "config.json"
    if not path.is_file():
        raise FileNotFoundError(f"no config.json in {out_dir}: not a ferlens run folder")
    return config_from_dict(json.loads(path.read_text()))


__all__ = ["DistInfo", "FitResult", "evaluate_loader", "fit", "load_run_config"]
