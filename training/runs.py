"""One index of a runs folder: the trainer's checkpoints, evaluation results JSONs and ablation reports.

The dashboard's menus all read this one walk of ``runs/`` (newest first), so what counts as a checkpoint,
a results file or a report is decided in one place.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

from core.models.weights import read_meta

log = logging.getLogger(__name__)

RESULTS_SCHEMA_PREFIX = "ferlens.results/"
ABLATION_REPORT = "ablation.json"
SCAN_LIMIT = 5000
"""Files looked at per root at most (a runs folder is not meant to hold more; the walk says when it stops)."""


@dataclass(frozen=True)
class RunFile:
    """A file found under the runs folder."""

    path: Path
    mtime: float


@dataclass(frozen=True)
class Checkpoint(RunFile):
    """A ``.safetensors`` file and its JSON sidecar (``{}`` when it has none), as the trainer writes them."""

    meta: dict = field(default_factory=dict, repr=False)

    @property
    def config(self) -> dict:
        cfg = self.meta.get("config")
        return cfg if isinstance(cfg, dict) else {}

    @property
    def model(self) -> str | None:
        """The registered model the weights were trained for (None when the sidecar does not say)."""
        return self.meta.get("model") or self.config.get("model")


@dataclass(frozen=True)
class RunsIndex:
    """What a runs folder holds, each list newest first."""

    checkpoints: tuple[Checkpoint, ...] = ()
    results: tuple[RunFile, ...] = ()
    ablations: tuple[RunFile, ...] = ()


def is_results_file(path: Path) -> bool:
    """Cheap check (first bytes only) that ``path`` is a results JSON: its ``schema`` key comes first."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(128).decode("utf-8", "replace")
    except OSError:
        return False
    return f'"schema":"{RESULTS_SCHEMA_PREFIX}' in head.replace(" ", "")


def list_runs(root: str | Path, limit: int = SCAN_LIMIT) -> RunsIndex:
    """Index ``root`` recursively (an absent folder is empty). Checkpoints whose sidecar is unreadable are
    left out with a warning: they say nothing trustworthy about the model they fit."""
    root = Path(root)
    checkpoints, results, ablations = [], [], []
    for i, path in enumerate(_files(root)):
        if i >= limit:
            log.warning("stopped indexing %s after %d files", root, limit)
            break
        try:
            mtime = path.stat().st_mtime
        except OSError:  # removed while we walked
            continue
        if path.suffix == ".safetensors":
            try:
                checkpoints.append(Checkpoint(path, mtime, read_meta(path)))
            except (OSError, ValueError) as exc:
                log.warning("ignoring %s: unreadable sidecar (%s)", path, exc)
        elif path.name == ABLATION_REPORT:
            ablations.append(RunFile(path, mtime))
        elif path.suffix == ".json" and is_results_file(path):
            results.append(RunFile(path, mtime))

    def newest(files: list) -> tuple:
        return tuple(sorted(files, key=lambda f: f.mtime, reverse=True))

    return RunsIndex(newest(checkpoints), newest(results), newest(ablations))


def _files(root: Path):
    for folder, dirs, names in os.walk(root):
        dirs.sort()
        for name in sorted(names):
            if name.endswith((".safetensors", ".json")):
                yield Path(folder) / name
