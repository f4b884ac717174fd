"""Reviewer verdicts on misclassified images: one table behind a database URL, safe with concurrent reviewers.

SQLite (the default, WAL mode, short ``BEGIN IMMEDIATE`` writes retried while locked) serves one dashboard;
PostgreSQL serves a team (migrations under an advisory lock). Both go through SQLAlchemy Core. Migrations are
append-only (:data:`MIGRATIONS`); a database from a newer ferlens is refused, never modified.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import random
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import TypeVar

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy import exc as sa_exc
from sqlalchemy.schema import CreateIndex, CreateTable, ExecutableDDLElement

from dashboard import REPO_ROOT

log = logging.getLogger(__name__)

URL_ENV = "FERLENS_VERDICTS_URL"
"""A SQLAlchemy database URL (``postgresql://user@host/db`` or ``sqlite:///path``); wins over :data:`DB_ENV`."""
DB_ENV = "FERLENS_DB"
"""A SQLite file path, used when :data:`URL_ENV` is unset."""

BACKENDS: dict[str, str] = {"sqlite": "sqlite:///PATH", "postgresql": "postgresql://USER@HOST[:PORT]/DB"}
"""The databases the store is tested on, with the shape of their URL."""

VERDICTS: tuple[str, ...] = ("label wrong", "model wrong", "ambiguous", "not a face")
"""What a reviewer can conclude about a misclassified (or any) image."""


def _first_columns() -> list[sa.Column]:
    """The columns of schema version 1 (fresh objects: a column belongs to one table)."""
    return [
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("dataset", sa.Text, nullable=False),
        sa.Column("item_id", sa.Integer, nullable=False),
        sa.Column("true_label", sa.Text, nullable=False, server_default=""),
        sa.Column("pred_label", sa.Text, nullable=False, server_default=""),
        sa.Column("verdict", sa.Text, nullable=False),
        sa.Column("note", sa.Text, nullable=False, server_default=""),
        sa.Column("reviewer", sa.Text, nullable=False),
        sa.Column("created_at", sa.Text, nullable=False),
    ]


_V1 = sa.Table("verdicts", sa.MetaData(), *_first_columns(), sqlite_autoincrement=True)
TABLE = sa.Table(
    "verdicts",
    sa.MetaData(),
    *_first_columns(),
    sa.Column("model", sa.Text, nullable=False, server_default=""),
    sa.Column("confidence", sa.Double),
    sqlite_autoincrement=True,
)
"""The verdict table as the current schema has it (what queries are built from)."""

MIGRATIONS: tuple[tuple[ExecutableDDLElement, ...], ...] = (
    # 0 -> 1: the first schema
    (CreateTable(_V1),),
    # 1 -> 2: which model was audited, its confidence on the image, and a lookup index per image
    (
        sa.DDL("ALTER TABLE verdicts ADD COLUMN model TEXT NOT NULL DEFAULT ''"),
        sa.DDL("ALTER TABLE verdicts ADD COLUMN confidence DOUBLE PRECISION"),  # REAL affinity in SQLite, float8 in PG
        CreateIndex(sa.Index("verdicts_item", TABLE.c.dataset, TABLE.c.item_id)),
    ),
)
"""DDL per schema version: SQLAlchemy constructs (compiled for the backend) or ``DDL`` text both backends read alike."""
SCHEMA_VERSION = len(MIGRATIONS)

VERSION_TABLE = sa.Table("verdicts_schema", sa.MetaData(), sa.Column("version", sa.Integer, nullable=False))
"""PostgreSQL's record of the schema version (one row); SQLite keeps it in ``PRAGMA user_version``."""
_MIGRATION_LOCK = 7_146_023_518_340_219_117
"""PostgreSQL advisory-lock key held while a store checks and migrates the schema (any constant will do)."""

T = TypeVar("T")


class VerdictError(ValueError):
    """A verdict that cannot be stored as given (unknown verdict, empty reviewer...)."""


class VerdictStoreError(RuntimeError):
    """The database cannot be used (bad URL, unreachable server, newer schema, still locked after every retry...).

    The message is one line that names the database (password hidden) and what went wrong.
    """


def default_db_path() -> Path:
    """``$FERLENS_DB``, else ``<repo>/runs/ferlens.db``."""
    return Path(os.environ.get(DB_ENV) or REPO_ROOT / "runs" / "ferlens.db")


def _one_line(text: object) -> str:
    return " ".join(str(text).split())


def database_url(target: str | os.PathLike | sa.URL | None = None) -> sa.URL:
    """The SQLAlchemy URL of ``target``: a URL, a plain path (a SQLite file), or None for ``$FERLENS_VERDICTS_URL``,
    else :func:`default_db_path`. Raises :class:`VerdictStoreError` for a URL it cannot read, a database other
    than :data:`BACKENDS`, or an in-memory SQLite database (every verdict would vanish with the process).
    """
    if target is None:
        target = os.environ.get(URL_ENV, "").strip() or default_db_path()
    if isinstance(target, sa.URL):
        url = target
    elif isinstance(target, str) and "://" in target:
        try:
            url = sa.make_url(target)
        except (sa_exc.ArgumentError, ValueError) as exc:  # the message never repeats the URL (or its password)
            raise VerdictStoreError(
                f"verdict database: cannot read the URL ({_one_line(exc)}); use {_shapes()}"
            ) from None
    else:
        return sa.URL.create("sqlite", database=os.fspath(target))
    if url.drivername in ("postgres", "postgresql"):  # the common "postgres://" alias; psycopg 3 is the driver
        url = url.set(drivername="postgresql+psycopg")
    backend = url.get_backend_name()
    if backend not in BACKENDS:
        shown = url.render_as_string(hide_password=True)
        raise VerdictStoreError(f"verdict database {shown}: unsupported database {backend!r}; use {_shapes()}")
    if backend == "sqlite" and (url.database or ":memory:").startswith((":memory:", "file::memory:")):
        raise VerdictStoreError(
            "verdict database: an in-memory SQLite database would lose every verdict; give a file (sqlite:///PATH)"
        )
    return url


def _shapes() -> str:
    return " or ".join(BACKENDS.values())


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds")


@dataclass(frozen=True)
class Verdict:
    """One reviewer's conclusion about one image.

    Attributes:
        dataset: the image's dataset (e.g. ``"fer2013:test"``); with ``item_id`` it names the image.
        item_id: the row id in the results JSON's ``predictions.id`` (for FER2013: the CSV row).
        true_label, pred_label: the dataset's label and the model's prediction when the verdict was given.
        model: which model/weights were audited (e.g. ``"default@3fa2c1d0e9b4"``).
        confidence: the model's top probability on the image, if known.
        created_at: ISO 8601 UTC, set by the store when empty.
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
        return replace(
            self,
            item_id=int(self.item_id),
            reviewer=str(self.reviewer).strip(),
            note=str(self.note).strip(),
            confidence=None if self.confidence is None else float(self.confidence),
            created_at=self.created_at or _now(),
        )


COLUMNS: tuple[str, ...] = tuple(f.name for f in fields(Verdict))

_WRITE = "ferlens_write"
"""Execution option marking a write transaction (SQLite begins it with ``BEGIN IMMEDIATE``)."""
_PG_TRANSIENT = {"40001", "40P01", "55P03"}
"""PostgreSQL SQLSTATEs worth a retry: serialization failure, deadlock, lock not available."""


class VerdictStore:
    """The verdict table of one database. Cheap to create; safe to share between threads and processes.

    Each operation takes a pooled connection for one short transaction, so no connection is shared across
    threads and nothing holds a lock between calls.

    Args:
        url: see :func:`database_url`. A SQLite file is created with its folder when missing; a PostgreSQL
            database must exist (the table is created in it).
        timeout_s: how long one attempt waits for SQLite's write lock, or for a PostgreSQL connection.
        retries: how many times a transaction that meets a lock (SQLite) or a serialization failure
            (PostgreSQL) is retried.

    Raises:
        VerdictStoreError: the database cannot be reached, read or migrated; nothing was changed.
    """

    def __init__(self, url: str | os.PathLike | sa.URL | None = None, timeout_s: float = 10.0, retries: int = 20):
        self.url = database_url(url)
        self.backend = self.url.get_backend_name()
        self.path = Path(self.url.database) if self.backend == "sqlite" else None
        self.where = str(self.path) if self.path is not None else self.url.render_as_string(hide_password=True)
        """The database as messages name it: the SQLite file, or the URL without its password."""
        self.timeout_s = float(timeout_s)
        self.retries = int(retries)
        try:
            if self.path is not None:
                self.path.parent.mkdir(parents=True, exist_ok=True)
            self.engine = self._create_engine()
        except (OSError, ImportError, sa_exc.SQLAlchemyError) as exc:
            raise VerdictStoreError(f"verdict database {self.where}: {_one_line(exc)}") from exc
        self._writer = self.engine.execution_options(**{_WRITE: True})
        self._retry(self._migrate)

    # ---------------------------------------------------------------------------------------------- plumbing

    def _create_engine(self) -> sa.Engine:
        if self.backend == "postgresql":
            timeout = max(1, round(self.timeout_s))
            return sa.create_engine(self.url, pool_pre_ping=True, connect_args={"connect_timeout": timeout})
        engine = sa.create_engine(self.url, connect_args={"timeout": self.timeout_s, "check_same_thread": False})

        @event.listens_for(engine, "connect")
        def _connect(dbapi_con, _record) -> None:
            dbapi_con.isolation_level = None  # pysqlite must not begin on its own: "begin" below does

        @event.listens_for(engine, "begin")
        def _begin(con: sa.Connection) -> None:
            # a write holds the write lock from its first statement; a read is a plain (deferred) snapshot
            con.exec_driver_sql("BEGIN IMMEDIATE" if con.get_execution_options().get(_WRITE) else "BEGIN")

        return engine

    def _transient(self, exc: BaseException) -> bool:
        orig = getattr(exc, "orig", exc)
        if self.backend == "sqlite":
            text = str(orig).lower()
            return isinstance(orig, sqlite3.OperationalError) and ("locked" in text or "busy" in text)
        return (getattr(orig, "sqlstate", None) or getattr(orig, "pgcode", None)) in _PG_TRANSIENT

    def _retry(self, fn: Callable[[], T]) -> T:
        delay = 0.01
        for attempt in range(self.retries + 1):
            try:
                return fn()
            except (sa_exc.SQLAlchemyError, sqlite3.Error) as exc:
                if not self._transient(exc) or attempt == self.retries:
                    detail = _one_line(getattr(exc, "orig", None) or exc)
                    raise VerdictStoreError(f"verdict database {self.where}: {detail}") from exc
                log.info("verdict database busy (%s); retry %d/%d", _one_line(exc), attempt + 1, self.retries)
                time.sleep(delay * (0.5 + random.random()))
                delay = min(delay * 2, 1.0)
        raise AssertionError("unreachable")  # pragma: no cover

    def _read(self, fn: Callable[[sa.Connection], T]) -> T:
        """``fn(connection)`` in one read transaction, retried while the database is busy."""

        def read() -> T:
            with self.engine.connect() as con:
                return fn(con)

        return self._retry(read)

    def _read_version(self, con: sa.Connection) -> int:
        if self.backend == "sqlite":
            return int(con.exec_driver_sql("PRAGMA user_version").scalar_one())
        if not sa.inspect(con).has_table(VERSION_TABLE.name):
            return 0
        return int(con.execute(sa.select(sa.func.max(VERSION_TABLE.c.version))).scalar() or 0)

    def _write_version(self, con: sa.Connection, version: int) -> None:
        if self.backend == "sqlite":
            con.exec_driver_sql(f"PRAGMA user_version = {int(version)}")
            return
        VERSION_TABLE.create(con, checkfirst=True)
        con.execute(sa.delete(VERSION_TABLE))
        con.execute(sa.insert(VERSION_TABLE).values(version=int(version)))

    def _migrate(self) -> None:
        if self.backend == "sqlite":
            raw = self.engine.raw_connection()  # outside any transaction: journal_mode cannot change inside one
            try:
                mode = raw.driver_connection.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            finally:
                raw.close()
            if str(mode).lower() != "wal":
                log.warning("%s: journal mode is %s, not WAL (file system without shared memory?)", self.where, mode)
        with self._writer.begin() as con:
            if self.backend == "postgresql":
                con.execute(sa.select(sa.func.pg_advisory_xact_lock(_MIGRATION_LOCK)))
            version = self._read_version(con)
            if version > SCHEMA_VERSION:
                raise VerdictStoreError(
                    f"verdict database {self.where} has schema version {version}, newer than this ferlens "
                    f"({SCHEMA_VERSION}); update ferlens or point ${URL_ENV} / ${DB_ENV} at another database"
                )
            for target in range(version + 1, SCHEMA_VERSION + 1):
                for step in MIGRATIONS[target - 1]:
                    con.execute(step)
                self._write_version(con, target)
                log.info("%s: verdict schema migrated to version %d", self.where, target)

    @property
    def schema_version(self) -> int:
        return self._read(self._read_version)

    def close(self) -> None:
        """Close the pooled connections (a later call opens new ones)."""
        self.engine.dispose()

    # ---------------------------------------------------------------------------------------------- API

    def add(self, verdict: Verdict) -> Verdict:
        """Store ``verdict`` (validated, time-stamped) and return it with its ``id`` and ``created_at``."""
        v = verdict.validated()
        row = {k: getattr(v, k) for k in COLUMNS if k != "id"}

        def insert() -> int:
            with self._writer.begin() as con:
                return int(con.execute(sa.insert(TABLE).values(**row)).inserted_primary_key[0])

        return replace(v, id=self._retry(insert))

    def _select(self, *where: sa.ColumnElement[bool]) -> list[Verdict]:
        query = sa.select(*(TABLE.c[k] for k in COLUMNS)).where(*where).order_by(TABLE.c.created_at, TABLE.c.id)
        return self._read(lambda con: [Verdict(**r._mapping) for r in con.execute(query)])

    def for_item(self, dataset: str, item_id: int) -> list[Verdict]:
        """Every verdict on one image, oldest first."""
        return self._select(TABLE.c.dataset == dataset, TABLE.c.item_id == int(item_id))

    def for_dataset(self, dataset: str) -> list[Verdict]:
        """Every verdict on the images of ``dataset``, oldest first."""
        return self._select(TABLE.c.dataset == dataset)

    def latest_by_item(self, dataset: str) -> dict[int, Verdict]:
        """The newest verdict per image of ``dataset`` (for badges in the gallery)."""
        return {v.item_id: v for v in self.for_dataset(dataset)}

    def all(self) -> list[Verdict]:
        return self._select()

    def count(self) -> int:
        return self._read(lambda con: int(con.execute(sa.select(sa.func.count()).select_from(TABLE)).scalar_one()))


_STORES: dict[str, VerdictStore] = {}
_STORES_LOCK = threading.Lock()


def get_store(url: str | os.PathLike | sa.URL | None = None) -> VerdictStore:
    """A process-wide store per database (migrations run once per process and database).

    A store that cannot be opened is not remembered: the next call tries again (the server may be back).
    """
    parsed = database_url(url)
    if parsed.get_backend_name() == "sqlite":
        parsed = parsed.set(database=str(Path(parsed.database).resolve()))
    key = parsed.render_as_string(hide_password=False)
    with _STORES_LOCK:
        if key not in _STORES:
            _STORES[key] = VerdictStore(parsed)
        return _STORES[key]
