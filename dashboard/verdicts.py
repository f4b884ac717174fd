"""Reviewer verdicts on misclassified images, in SQLite: survives restarts, safe with concurrent reviewers.

WAL mode lets readers proceed during a write; every write is one short ``BEGIN IMMEDIATE`` transaction, retried
with jittered back-off if SQLite still reports a lock. The schema is versioned with ``PRAGMA user_version`` and
append-only :data:`MIGRATIONS`. WAL needs a local file system: put ``$FERLENS_DB`` on a local disk.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import logging
import os
import random
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import TypeVar

log = logging.getLogger(__name__)

DB_ENV = "FERLENS_DB"

VERDICTS: tuple[str, ...] = ("label wrong", "model wrong", "ambiguous", "not a face")
"""What a reviewer can conclude about a misclassified (or any) image."""

MIGRATIONS: tuple[tuple[str, ...], ...] = (
    # 0 -> 1: the first schema
    (
        """CREATE TABLE verdicts (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            dataset TEXT NOT NULL,
            item_id INTEGER NOT NULL,
            true_label TEXT NOT NULL DEFAULT '',
            pred_label TEXT NOT NULL DEFAULT '',
            verdict TEXT NOT NULL,
            note TEXT NOT NULL DEFAULT '',
            reviewer TEXT NOT NULL,
            created_at TEXT NOT NULL
        )""",
    ),
    # 1 -> 2: which model was audited, its confidence on the image, and a lookup index per image
    (
        "ALTER TABLE verdicts ADD COLUMN model TEXT NOT NULL DEFAULT ''",
        "ALTER TABLE verdicts ADD COLUMN confidence REAL",
        "CREATE INDEX verdicts_item ON verdicts (dataset, item_id)",
    ),
)
SCHEMA_VERSION = len(MIGRATIONS)

T = TypeVar("T")


class VerdictError(ValueError):
    """A verdict that cannot be stored as given (unknown verdict, empty reviewer...)."""


class VerdictStoreError(RuntimeError):
    """The database cannot be used (newer schema than this code, still locked after every retry...)."""


def default_db_path() -> Path:
    """``$FERLENS_DB``, else ``<repo>/runs/ferlens.db``."""
    env = os.environ.get(DB_ENV)
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[1] / "runs" / "ferlens.db"


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds")


@dataclass(frozen=True)
class Verdict:
    """One reviewer's conclusion about one image.

    Attributes:
        dataset: the image's dataset (e.g. ``"fer2013:test"``); with ``item_id`` it names the image.
        item_id: the row id in the results JSON's ``predictions.id`` (for FER2013: the CSV row).
        verdict: one of :data:`VERDICTS`.
        reviewer: who decided (free text, required).
        true_label, pred_label: the dataset's label and the model's prediction when the verdict was given.
        note: free text.
        model: which model/weights were audited (e.g. ``"default@3fa2c1d0e9b4"``).
        confidence: the model's top probability on the image, if known.
        created_at: ISO 8601 UTC, set by the store when empty.
        id: row id, set by the store.
    """

    dataset: str
    item_id: int
    verdict: str
    reviewer: str
    true_label: str = ""
    pred_label: str = ""
    note: str = ""
    model: str = ""
    confidence: float | None = None
    created_at: str = ""
    id: int | None = field(default=None, compare=False)

    def validated(self) -> Verdict:
        if self.verdict not in VERDICTS:
            raise VerdictError(f"unknown verdict {self.verdict!r}; choose one of {list(VERDICTS)}")
        if not str(self.reviewer).strip():
            raise VerdictError("a verdict needs a reviewer name")
        if not str(self.dataset).strip():
            raise VerdictError("a verdict needs the dataset the image comes from")
        return Verdict(
            **{
                **asdict(self),
                "item_id": int(self.item_id),
                "reviewer": str(self.reviewer).strip(),
                "note": str(self.note).strip(),
                "confidence": None if self.confidence is None else float(self.confidence),
                "created_at": self.created_at or _now(),
            }
        )


COLUMNS: tuple[str, ...] = tuple(f.name for f in fields(Verdict))


class VerdictStore:
    """The verdict table of one SQLite file. Cheap to create; safe to share between threads and processes.

    Each operation opens its own short-lived connection, so no connection is ever shared across threads and
    nothing holds a lock between calls.

    Args:
        path: the database file (created with its folder when missing); default :func:`default_db_path`.
        timeout_s: how long one attempt waits for the write lock (SQLite's busy timeout).
        retries: how many times a transaction that still meets "database is locked" is retried.
    """

    def __init__(self, path: str | os.PathLike | None = None, timeout_s: float = 10.0, retries: int = 20) -> None:
        self.path = Path(path) if path is not None else default_db_path()
        self.timeout_s = float(timeout_s)
        self.retries = int(retries)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._retry(self._migrate)

    # ---------------------------------------------------------------------------------------------- plumbing

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        con = sqlite3.connect(self.path, timeout=self.timeout_s, isolation_level=None)
        try:
            con.execute(f"PRAGMA busy_timeout = {int(self.timeout_s * 1000)}")
            con.execute("PRAGMA foreign_keys = ON")
            con.row_factory = sqlite3.Row
            yield con
        finally:
            con.close()

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One write transaction, holding the write lock from its first statement (``BEGIN IMMEDIATE``)."""
        with self._connect() as con:
            con.execute("BEGIN IMMEDIATE")
            try:
                yield con
            except BaseException:
                con.execute("ROLLBACK")
                raise
            con.execute("COMMIT")

    def _retry(self, fn: Callable[[], T]) -> T:
        delay = 0.01
        for attempt in range(self.retries + 1):
            try:
                return fn()
            except sqlite3.OperationalError as exc:
                text = str(exc).lower()
                if ("locked" not in text and "busy" not in text) or attempt == self.retries:
                    raise VerdictStoreError(f"verdict database {self.path}: {exc}") from exc
                log.info("verdict database busy (%s); retry %d/%d", exc, attempt + 1, self.retries)
                time.sleep(delay * (0.5 + random.random()))
                delay = min(delay * 2, 1.0)
        raise AssertionError("unreachable")  # pragma: no cover

    def _migrate(self) -> None:
        with self._connect() as con:
            mode = con.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                log.warning("%s: journal mode is %s, not WAL (file system without shared memory?)", self.path, mode)
        with self._write() as con:
            version = con.execute("PRAGMA user_version").fetchone()[0]
            if version > SCHEMA_VERSION:
                raise VerdictStoreError(
                    f"{self.path} has schema version {version}, newer than this ferlens ({SCHEMA_VERSION}); "
                    "update ferlens or use another $FERLENS_DB"
                )
            for target in range(version + 1, SCHEMA_VERSION + 1):
                for statement in MIGRATIONS[target - 1]:
                    con.execute(statement)
                con.execute(f"PRAGMA user_version = {target}")
                log.info("%s: verdict schema migrated to version %d", self.path, target)

    @property
    def schema_version(self) -> int:
        with self._connect() as con:
            return int(con.execute("PRAGMA user_version").fetchone()[0])

    # ---------------------------------------------------------------------------------------------- API

    def add(self, verdict: Verdict) -> Verdict:
        """Store ``verdict`` (validated, time-stamped) and return it with its ``id`` and ``created_at``."""
        v = verdict.validated()
        row = {k: getattr(v, k) for k in COLUMNS if k != "id"}
        sql = f"INSERT INTO verdicts ({', '.join(row)}) VALUES ({', '.join('?' * len(row))})"

        def insert() -> int:
            with self._write() as con:
                return int(con.execute(sql, tuple(row.values())).lastrowid)

        new_id = self._retry(insert)
        return Verdict(**{**row, "id": new_id})

    def _select(self, where: str = "", params: tuple = ()) -> list[Verdict]:
        sql = f"SELECT {', '.join(COLUMNS)} FROM verdicts {where} ORDER BY created_at, id"

        def read() -> list[Verdict]:
            with self._connect() as con:
                return [Verdict(**dict(r)) for r in con.execute(sql, params)]

        return self._retry(read)

    def for_item(self, dataset: str, item_id: int) -> list[Verdict]:
        """Every verdict on one image, oldest first."""
        return self._select("WHERE dataset = ? AND item_id = ?", (dataset, int(item_id)))

    def latest_by_item(self, dataset: str) -> dict[int, Verdict]:
        """The newest verdict per image of ``dataset`` (for badges in the gallery)."""
        return {v.item_id: v for v in self._select("WHERE dataset = ?", (dataset,))}

    def all(self) -> list[Verdict]:
        return self._select()

    def count(self) -> int:
        def read() -> int:
            with self._connect() as con:
                return int(con.execute("SELECT COUNT(*) FROM verdicts").fetchone()[0])

        return self._retry(read)

    def to_csv(self, verdicts: list[Verdict] | None = None) -> str:
        """CSV text (header + one row per verdict), for the explorer's download button."""
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=list(COLUMNS), lineterminator="\n")
        writer.writeheader()
        for v in self.all() if verdicts is None else verdicts:
            writer.writerow(asdict(v))
        return buf.getvalue()


_STORES: dict[Path, VerdictStore] = {}
_STORES_LOCK = threading.Lock()


def get_store(path: str | os.PathLike | None = None) -> VerdictStore:
    """A process-wide store per file (migrations run once per process and file)."""
    key = (Path(path) if path is not None else default_db_path()).resolve()
    with _STORES_LOCK:
        if key not in _STORES:
            _STORES[key] = VerdictStore(key)
        return _STORES[key]
