"""Checkpoints under faults: a failing write keeps the previous checkpoint, a SIGKILL anywhere resumes exactly.

Faults are injected where the operating system reports them: the safetensors and ``torch.save`` writers, the
``fsync`` that surfaces delayed-allocation ``ENOSPC``, a torn ``metrics.jsonl`` append, ``os.replace``, and
``mkstemp`` refused with ``EACCES``. Every case then checks that the files of the last good epoch are
byte-identical, that no temp file is left, that the error names the file and the folder, and that ``--resume``
ends exactly where an uninterrupted run ends.
"""

from __future__ import annotations

import dataclasses
import errno
import json
import os
import random
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from core.models.weights import read_state_dict
from tests.training.conftest import tiny_config
from training import trainer as T
from training.config import TrainConfig, config_to_dict

REPO = Path(__file__).resolve().parents[2]
TIMING = ("train_time_s", "img_per_s", "time_s")
"""Record fields that measure the machine, not the run: the only ones allowed to differ."""


def _cfg(out: Path, root: Path, **kw) -> TrainConfig:
    """The tiny two-epoch run of ``tests/training/conftest.py``, seed 0 (its epoch 2 improves, so it writes
    ``best.*`` too); no step rows unless ``log_every`` is given."""
    cfg = tiny_config(out, **{"seed": 0, **kw})
    return dataclasses.replace(cfg, data=dataclasses.replace(cfg.data, root=str(root)))


def _rows(out: Path) -> list[dict]:
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    return [{k: v for k, v in r.items() if k not in TIMING} for r in rows]


def _max_difference(a: list[dict], b: list[dict]) -> float:
    """Largest absolute difference over every numeric field of two metrics logs (inf if their shape differs)."""
    if len(a) != len(b) or any(x.keys() != y.keys() for x, y in zip(a, b, strict=True)):
        return float("inf")
    diff = 0.0
    for x, y in zip(a, b, strict=True):
        for k in x:
            if isinstance(x[k], (int, float)) and isinstance(y[k], (int, float)):
                diff = max(diff, abs(float(x[k]) - float(y[k])))
            elif x[k] != y[k]:
                return float("inf")
    return diff


def _same_weights(a: Path, b: Path) -> bool:
    sa, sb = read_state_dict(a), read_state_dict(b)
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def _snapshot(out: Path) -> dict[str, bytes]:
    """Every file of the run folder (temp files included) with its bytes."""
    return {p.name: p.read_bytes() for p in sorted(out.iterdir()) if p.is_file()}


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory, shared_datasets: Path) -> Path:
    """An uninterrupted two-epoch run whose second epoch improves (so it writes ``best.*`` too)."""
    out = tmp_path_factory.mktemp("reference") / "run"
    res = T.fit(_cfg(out, shared_datasets))
    assert [r["epoch"] for r in res.history] == [1, 2] and res.best_epoch == 2, "epoch 2 must write best.*"
    return out


# ------------------------------------------------------------------------------------------ fault injection


def _proc_name(fd: int) -> str:
    return os.readlink(f"/proc/self/fd/{fd}")


def _enospc(what: str) -> OSError:
    return OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), what)


class Fault:
    """Arms one injected error after epoch 1's checkpoint (from the trainer's callback) and counts its hits."""

    def __init__(self, out: Path) -> None:
        self.out, self.armed, self.hits = out, False, 0

    def callback(self, record: dict) -> None:
        if record["epoch"] == 1:
            self.before = _snapshot(self.out)
            self.armed = True

    def fire(self) -> bool:
        if self.armed:
            self.hits += 1
        return self.armed


def _inject(kind: str, fault: Fault, monkeypatch: pytest.MonkeyPatch) -> tuple[str, int]:
    """Patch the failure ``kind`` in; returns the file the message must name and the expected errno."""
    out = fault.out
    if kind == "safetensors-enospc":  # the Rust writer of the weights fails
        real_save = T.save_file

        def save_file(tensors, filename, *a, **k):
            if Path(filename).name.startswith(".last.safetensors.") and fault.fire():
                raise _enospc(filename)
            return real_save(tensors, filename, *a, **k)

        monkeypatch.setattr(T, "save_file", save_file)
        return "last.safetensors", errno.ENOSPC
    if kind == "torch-save-enospc":  # the optimizer/RNG state cannot be written
        real_torch_save = torch.save

        def save(obj, f, *a, **k):
            if Path(str(f)).name.startswith(".last_state.pt.") and fault.fire():
                raise _enospc(str(f))
            return real_torch_save(obj, f, *a, **k)

        monkeypatch.setattr(torch, "save", save)
        return "last_state.pt", errno.ENOSPC
    if kind == "fsync-enospc":  # delayed allocation: the data were "written", the disk is full at fsync
        real_fsync = os.fsync

        def fsync(fd):
            if Path(_proc_name(fd)).name.startswith(".last.json.") and fault.fire():
                raise _enospc(_proc_name(fd))
            return real_fsync(fd)

        monkeypatch.setattr(os, "fsync", fsync)
        return "last.json", errno.ENOSPC
    if kind == "metrics-torn-enospc":  # half of epoch 2's record reaches metrics.jsonl, then the disk is full
        real_write = os.write

        def write(fd, data):
            if _proc_name(fd).endswith("metrics.jsonl") and b'"kind": "epoch"' in bytes(data) and fault.fire():
                real_write(fd, bytes(data)[: len(data) // 2])
                raise _enospc(_proc_name(fd))
            return real_write(fd, data)

        monkeypatch.setattr(os, "write", write)
        return "metrics.jsonl", errno.ENOSPC
    if kind == "replace-enospc":  # the very first rename of the commit fails
        real_replace = os.replace

        def replace(src, dst, *a, **k):
            if Path(dst).parent == out and fault.fire():
                raise _enospc(str(dst))
            return real_replace(src, dst, *a, **k)

        monkeypatch.setattr(os, "replace", replace)
        return "best.json", errno.ENOSPC
    if kind == "mkstemp-eacces":  # the folder no longer accepts new files
        import tempfile

        real_mkstemp = tempfile.mkstemp

        def mkstemp(*a, **k):
            if Path(k.get("dir", "")) == out and fault.fire():
                raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(out))
            return real_mkstemp(*a, **k)

        monkeypatch.setattr(tempfile, "mkstemp", mkstemp)
        return "best.json", errno.EACCES
    if kind == "readonly-dir":  # a real permission error (root ignores modes, hence the skip)
        if os.geteuid() == 0:
            pytest.skip("running as root: directory modes are not enforced (mkstemp-eacces covers EACCES)")
        original = fault.callback

        def callback(record: dict) -> None:
            original(record)
            if record["epoch"] == 1:
                out.chmod(0o555)

        fault.callback = callback  # type: ignore[method-assign]
        return "best.json", errno.EACCES
    raise AssertionError(kind)


FAULTS = (
    "safetensors-enospc",
    "torch-save-enospc",
    "fsync-enospc",
    "metrics-torn-enospc",
    "replace-enospc",
    "mkstemp-eacces",
    "readonly-dir",
)


@pytest.mark.parametrize("kind", FAULTS)
def test_failed_checkpoint_write_keeps_the_previous_one(
    kind: str, reference: Path, tmp_path: Path, shared_datasets: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "run"
    cfg = _cfg(out, shared_datasets)
    fault = Fault(out)
    name, code = _inject(kind, fault, monkeypatch)
    try:
        with pytest.raises(T.CheckpointError) as info:
            T.fit(cfg, callbacks=[lambda r: fault.callback(r)])
    finally:
        out.chmod(0o755)
    assert fault.hits >= 1 or kind == "readonly-dir"
    fault.armed = False
    monkeypatch.undo()

    # the previous checkpoint, byte for byte, and nothing else in the folder (no temp file, no torn line)
    after = _snapshot(out)
    assert after.keys() == fault.before.keys(), sorted(set(after) ^ set(fault.before))
    for f, data in fault.before.items():
        assert after[f] == data, f"{f} changed although epoch 2's checkpoint failed"
    assert json.loads(after["last.json"])["epoch"] == 1 and json.loads(after["best.json"])["epoch"] == 1

    # the error says what failed, where, why, and what is intact
    exc = info.value
    assert isinstance(exc, OSError) and exc.errno == code
    text = str(exc)
    assert name in text and str(out) in text and "epoch 2" in text, text
    assert "intact" in text and "--resume" in text, text
    assert os.strerror(code) in text, text

    # --resume continues from it and ends exactly where the uninterrupted run ends
    res = T.fit(cfg, resume=True)
    assert [r["epoch"] for r in res.history] == [1, 2]
    assert _max_difference(_rows(out), _rows(reference)) == 0.0
    assert _same_weights(out / "last.safetensors", reference / "last.safetensors")
    assert _same_weights(out / "best.safetensors", reference / "best.safetensors")
    assert not [p.name for p in out.iterdir() if p.name.endswith(".tmp")]


def test_failed_commit_after_some_renames_still_resumes(
    reference: Path, tmp_path: Path, shared_datasets: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A rename failing mid-commit: files renamed before it are one epoch ahead, ``last_state.pt`` is not."""
    out = tmp_path / "run"
    cfg = _cfg(out, shared_datasets)
    fault = Fault(out)
    real_replace = os.replace

    def replace(src, dst, *a, **k):
        if Path(dst) == out / "last.safetensors" and fault.fire():
            raise OSError(errno.EIO, os.strerror(errno.EIO), str(dst))
        return real_replace(src, dst, *a, **k)

    monkeypatch.setattr(os, "replace", replace)
    with pytest.raises(T.CheckpointError, match=r"last_state\.pt still holds epoch 1, which --resume continues"):
        T.fit(cfg, callbacks=[fault.callback])
    monkeypatch.undo()
    after = _snapshot(out)
    assert after.keys() == fault.before.keys()  # temp files of the unrenamed files were removed
    for f in ("last.safetensors", T.STATE_FILE):
        assert after[f] == fault.before[f]
    assert json.loads(after["last.json"])["epoch"] == 2  # renamed before the failure: one epoch ahead

    res = T.fit(cfg, resume=True)  # weights come from last_state.pt, not from the mismatched last.*
    assert [r["epoch"] for r in res.history] == [1, 2]
    assert _max_difference(_rows(out), _rows(reference)) == 0.0
    assert _same_weights(out / "last.safetensors", reference / "last.safetensors")


def test_torn_metrics_line_and_stale_temps_from_a_kill_are_cleaned_on_resume(
    reference: Path, tmp_path: Path, shared_datasets: Path
) -> None:
    """What a SIGKILL can leave (a half-written line, staged temp files) does not stop or pollute a resume."""
    out = tmp_path / "run"
    cfg = _cfg(out, shared_datasets)

    def stop_after_epoch_1(record: dict) -> None:
        if record["epoch"] == 1:
            raise KeyboardInterrupt  # the process dies right after epoch 1's checkpoint

    with pytest.raises(KeyboardInterrupt):
        T.fit(cfg, callbacks=[stop_after_epoch_1])
    with open(out / "metrics.jsonl", "a") as fh:
        fh.write('{"kind": "epoch", "epoch": 2, "train_lo')  # torn by the kill
    for name in ("last.safetensors", T.STATE_FILE):
        (out / f".{name}.abc123.tmp").write_bytes(b"half a file")
    res = T.fit(cfg, resume=True)
    assert [r["epoch"] for r in res.history] == [1, 2]
    assert not [p.name for p in out.iterdir() if p.name.endswith(".tmp")]
    assert _max_difference(_rows(out), _rows(reference)) == 0.0


# ------------------------------------------------------------------------------------------ SIGKILL


_CHILD = r"""
import os, signal, sys
from pathlib import Path

out, kind, at = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3])
config = sys.argv[4]
from training import train, trainer as T


def die():
    os.kill(os.getpid(), signal.SIGKILL)


if kind == "step":  # SIGKILL right after optimizer step number `at` of this process
    build = T.build_optimizer

    def build_optimizer(*a, **k):
        opt = build(*a, **k)
        n = [0]

        def hook(*_):
            n[0] += 1
            if n[0] == at:
                die()

        opt.register_step_post_hook(hook)
        return opt

    T.build_optimizer = build_optimizer
elif kind == "replace":  # SIGKILL just before the `at`-th rename into the run folder (mid-commit)
    real = os.replace
    n = [0]

    def replace(src, dst, *a, **k):
        if Path(dst).parent == out:
            n[0] += 1
            if n[0] == at:
                die()
        return real(src, dst, *a, **k)

    os.replace = replace
args = ["--preset", config, "--out", str(out), "-q"]
if (out / T.STATE_FILE).is_file():
    args.append("--resume")
sys.exit(train.main(args))
"""


def _child(out: Path, config: Path, kind: str, at: int) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    return subprocess.run(
        [sys.executable, "-c", _CHILD, str(out), kind, str(at), str(config)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


KILL_SEED = 20250917
"""Seeds the kill points: random over the run, the same in every CI run (printed by the test)."""


@pytest.mark.slow
def test_sigkill_at_a_random_step_then_resume_gives_the_same_metrics(tmp_path: Path, shared_datasets: Path) -> None:
    epochs, steps_per_epoch = 3, 4  # 64 rows / batch 16
    ref = T.fit(_cfg(tmp_path / "reference", shared_datasets, epochs=epochs, log_every=1))
    assert ref.history[-1]["step"] == epochs * steps_per_epoch

    out = tmp_path / "killed"
    config = tmp_path / "config.json"
    config.write_text(json.dumps(config_to_dict(_cfg(out, shared_datasets, epochs=epochs, log_every=1))))
    rng = random.Random(KILL_SEED)
    step = rng.randint(steps_per_epoch + 1, epochs * steps_per_epoch - 1)  # after epoch 1: a real resume
    committed = (step - 1) // steps_per_epoch  # epochs whose checkpoint was written before the kill
    # the resumed process renames: metrics.jsonl (truncation) then >= 3 files per remaining epoch
    rename = rng.randint(2, 1 + 3 * (epochs - committed))
    print(f"SIGKILL after optimizer step {step}, then (resumed) before rename {rename}; seed {KILL_SEED}")

    first = _child(out, config, "step", step)
    assert first.returncode == -signal.SIGKILL, first.stderr[-2000:]
    second = _child(out, config, "replace", rename)
    assert second.returncode == -signal.SIGKILL, second.stderr[-2000:]
    last = _child(out, config, "none", 0)
    assert last.returncode == 0, last.stderr[-2000:]

    a, b = _rows(out), _rows(ref.out_dir)
    difference = _max_difference(a, b)
    print(f"max |difference| over {len(a)} metrics.jsonl rows (step and epoch): {difference}")
    assert difference == 0.0, f"kill at step {step} / rename {rename}: metrics differ by {difference}"
    final = [r for r in a if r["kind"] == "epoch"][-1]
    assert final["epoch"] == epochs and final["val_macro_f1"] == ref.history[-1]["val_macro_f1"]
    assert (
        json.loads((out / "best.json").read_text())["val"] == json.loads((ref.out_dir / "best.json").read_text())["val"]
    )
    assert _same_weights(out / "last.safetensors", ref.out_dir / "last.safetensors")
    assert _same_weights(out / "best.safetensors", ref.out_dir / "best.safetensors")
    assert not [p.name for p in out.iterdir() if p.name.endswith(".tmp")]


def test_the_cli_reports_a_failed_checkpoint_write_in_one_line(monkeypatch, tmp_path: Path, capsys) -> None:
    from training import train

    def full_disk(cfg, resume=False):
        raise T.CheckpointError(f"could not write last_state.pt in {tmp_path}: [Errno 28] No space left on device")

    monkeypatch.setattr(T, "fit", full_disk)
    assert train.main(["--preset", "default", "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"error: could not write last_state.pt in {tmp_path}: [Errno 28] No space left on device"]
