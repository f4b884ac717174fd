"""The reviewer-verdict store on SQLite and PostgreSQL: round trip, validation, schema migrations, concurrent
writers, and what bad URLs and an unreachable server give."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import sqlalchemy as sa

from dashboard.verdicts import (
    SCHEMA_VERSION,
    VERDICTS,
    Verdict,
    VerdictError,
    VerdictStore,
    VerdictStoreError,
    database_url,
)

REPO = Path(__file__).resolve().parents[2]


def _verdict(i: int, reviewer: str = "ana", **kw) -> Verdict:
    base = dict(
        dataset="fer2013:test",
        item_id=i,
        verdict=VERDICTS[i % len(VERDICTS)],
        reviewer=reviewer,
        true_label="sad",
        pred_label="neutral",
        note=f"note {i}, with a comma",
        model="default@abc",
        confidence=0.5,
    )
    return Verdict(**{**base, **kw})


def _url(db) -> str:
    """What a user would give: a file path (SQLite) or a URL string with its password (PostgreSQL)."""
    return db.render_as_string(hide_password=False) if isinstance(db, sa.URL) else str(db)


def _engine(db) -> sa.Engine:
    return sa.create_engine(db if isinstance(db, sa.URL) else f"sqlite:///{db}")


def test_round_trip(verdicts_db) -> None:
    store = VerdictStore(_url(verdicts_db))
    saved = store.add(_verdict(7))
    assert saved.id is not None and saved.created_at.endswith("+00:00")
    store.add(_verdict(7, reviewer="bo", verdict="ambiguous"))
    store.add(_verdict(8))
    store.add(_verdict(8, dataset="fer2013:val"))
    again = VerdictStore(_url(verdicts_db))  # a new store on the same database = a restart
    got = again.for_item("fer2013:test", 7)
    assert [v.reviewer for v in got] == ["ana", "bo"]
    assert got[0] == saved and got[0].id == saved.id and isinstance(got[0].confidence, float)
    assert again.latest_by_item("fer2013:test")[7].verdict == "ambiguous"
    assert [v.item_id for v in again.for_dataset("fer2013:test")] == [7, 7, 8]
    assert again.for_item("fer2013:val", 7) == []
    if isinstance(verdicts_db, Path):
        with sqlite3.connect(verdicts_db) as con:
            assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


@pytest.mark.parametrize(
    "change, match",
    [({"verdict": "looks fine"}, "unknown verdict"), ({"reviewer": "  "}, "reviewer"), ({"dataset": ""}, "dataset")],
)
def test_invalid_verdicts_are_refused(verdicts_db, change: dict, match: str) -> None:
    store = VerdictStore(_url(verdicts_db))
    with pytest.raises(VerdictError, match=match):
        store.add(_verdict(1, **change))
    assert store.count() == 0


# The first schema as ferlens 0.1 wrote it in SQLite, and the same table in PostgreSQL: written out here, not taken
# from MIGRATIONS, so the migration is tested against what old databases really hold.
_V1_SQL = {
    "sqlite": """CREATE TABLE verdicts (
        id INTEGER PRIMARY KEY AUTOINCREMENT, dataset TEXT NOT NULL, item_id INTEGER NOT NULL,
        true_label TEXT NOT NULL DEFAULT '', pred_label TEXT NOT NULL DEFAULT '', verdict TEXT NOT NULL,
        note TEXT NOT NULL DEFAULT '', reviewer TEXT NOT NULL, created_at TEXT NOT NULL)""",
    "postgresql": """CREATE TABLE verdicts (
        id SERIAL PRIMARY KEY, dataset TEXT NOT NULL, item_id INTEGER NOT NULL,
        true_label TEXT NOT NULL DEFAULT '', pred_label TEXT NOT NULL DEFAULT '', verdict TEXT NOT NULL,
        note TEXT NOT NULL DEFAULT '', reviewer TEXT NOT NULL, created_at TEXT NOT NULL)""",
}


def _set_version(con: sa.Connection, version: int) -> None:
    """The schema version, written by hand: SQLite's user_version, PostgreSQL's one-row verdicts_schema."""
    if con.dialect.name == "sqlite":
        con.exec_driver_sql(f"PRAGMA user_version = {version}")
    else:
        con.exec_driver_sql("CREATE TABLE IF NOT EXISTS verdicts_schema (version INTEGER NOT NULL)")
        con.exec_driver_sql("DELETE FROM verdicts_schema")
        con.exec_driver_sql(f"INSERT INTO verdicts_schema VALUES ({version})")


def _write_v1_database(db, item_id: int, reviewer: str) -> None:
    """A database as the first schema version wrote it, holding one verdict."""
    engine = _engine(db)
    with engine.begin() as con:
        con.exec_driver_sql(_V1_SQL[con.dialect.name])
        con.execute(
            sa.text(
                "INSERT INTO verdicts (dataset, item_id, verdict, reviewer, created_at) VALUES (:d, :i, :v, :r, :t)"
            ),
            dict(d="fer2013:test", i=item_id, v="not a face", r=reviewer, t="2025-01-01T00:00:00+00:00"),
        )
        _set_version(con, 1)
    engine.dispose()


def _columns_and_indexes(db) -> tuple[list[str], set[str]]:
    engine = _engine(db)
    try:
        inspector = sa.inspect(engine)
        return [c["name"] for c in inspector.get_columns("verdicts")], {
            i["name"] for i in inspector.get_indexes("verdicts")
        }
    finally:
        engine.dispose()


def test_old_schema_is_migrated_keeping_rows(verdicts_db) -> None:
    _write_v1_database(verdicts_db, item_id=3, reviewer="cy")
    store = VerdictStore(_url(verdicts_db))
    assert store.schema_version == SCHEMA_VERSION == 2
    (old,) = store.for_item("fer2013:test", 3)
    assert (old.verdict, old.reviewer, old.model, old.confidence) == ("not a face", "cy", "", None)
    assert "verdicts_item" in _columns_and_indexes(verdicts_db)[1]
    assert store.add(_verdict(4)).id == old.id + 1


def test_a_new_sqlite_file_has_the_schema_ferlens_0_1_files_migrate_to(tmp_path: Path) -> None:
    """SQLAlchemy's DDL gives new files the same columns, defaults and keys as the hand-written SQL did."""
    old = tmp_path / "old.db"
    with sqlite3.connect(old) as con:
        con.execute(_V1_SQL["sqlite"])
        con.execute("ALTER TABLE verdicts ADD COLUMN model TEXT NOT NULL DEFAULT ''")
        con.execute("ALTER TABLE verdicts ADD COLUMN confidence REAL")
    VerdictStore(tmp_path / "new.db")

    def info(path: Path) -> list[tuple]:
        with sqlite3.connect(path) as con:  # name, type affinity, not null, default, primary key
            rows = con.execute("PRAGMA table_info(verdicts)").fetchall()
            sql = con.execute("SELECT sql FROM sqlite_master WHERE name = 'verdicts'").fetchone()[0]
        affinity = {"TEXT": "TEXT", "INTEGER": "INTEGER", "REAL": "REAL", "DOUBLE PRECISION": "REAL"}
        # SQLAlchemy writes NOT NULL on the primary key, which SQLite's rowid alias is anyway: count a key as not null
        return [(r[1], affinity[r[2]], bool(r[3] or r[5]), r[4], r[5]) for r in rows] + [("AUTOINCREMENT" in sql,)]

    assert info(tmp_path / "new.db") == info(old)


def test_newer_schema_is_refused(verdicts_db) -> None:
    VerdictStore(_url(verdicts_db)).add(_verdict(1))
    engine = _engine(verdicts_db)
    with engine.begin() as con:
        _set_version(con, SCHEMA_VERSION + 1)
    engine.dispose()
    with pytest.raises(VerdictStoreError, match="newer") as info:
        VerdictStore(_url(verdicts_db))
    assert "\n" not in str(info.value)
    engine = _engine(verdicts_db)
    with engine.connect() as con:  # refused, not modified
        assert con.exec_driver_sql("SELECT COUNT(*) FROM verdicts").scalar() == 1
    engine.dispose()


_WORKER = """
import sys
from dashboard.verdicts import Verdict, VerdictStore
assert "torch" not in sys.modules and "streamlit" not in sys.modules, "verdicts must stay light"
db, who, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
store = VerdictStore(db)
for i in range(n):
    store.add(Verdict(dataset="fer2013:test", item_id=i, verdict="model wrong", reviewer=who, note=str(i)))
"""


def _run_writers(db, writers: int = 8, each: int = 200) -> None:
    """``writers`` processes adding ``each`` verdicts to ``db`` at once; none may fail or mention a lock."""
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _WORKER, _url(db), f"r{k}", str(each)],
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for k in range(writers)
    ]
    outs = [p.communicate(timeout=600) for p in procs]
    for p, (_, err) in zip(procs, outs, strict=True):
        assert p.returncode == 0 and "locked" not in err, err


@pytest.mark.slow
def test_eight_concurrent_writer_processes(verdicts_db) -> None:
    """8 processes x 200 verdicts on a new database (they also race to create and migrate it): 1,600 rows."""
    _run_writers(verdicts_db)
    store = VerdictStore(_url(verdicts_db))
    rows = store.all()
    assert len(rows) == store.count() == 1600
    assert len({v.id for v in rows}) == 1600
    for k in range(8):
        assert sorted(int(v.note) for v in rows if v.reviewer == f"r{k}") == list(range(200))


def test_concurrent_threads_share_one_store(verdicts_db) -> None:
    """Streamlit sessions are threads of one server: 8 threads x 50 verdicts through one store object."""
    store = VerdictStore(_url(verdicts_db))
    errors: list[BaseException] = []

    def work(k: int) -> None:
        try:
            for i in range(50):
                store.add(_verdict(i, reviewer=f"t{k}"))
        except BaseException as exc:  # collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert store.count() == 400


@pytest.mark.slow
def test_eight_writers_on_a_version_1_database_migrate_it_once(verdicts_db) -> None:
    """A v1 database with rows, opened by 8 writer processes at once: migrated once, old rows kept, 1,600 new."""
    _write_v1_database(verdicts_db, item_id=9999, reviewer="old")
    _run_writers(verdicts_db)
    store = VerdictStore(_url(verdicts_db))
    assert store.schema_version == SCHEMA_VERSION
    rows = store.all()
    assert len(rows) == 1601 and len({v.id for v in rows}) == 1601
    (old,) = [v for v in rows if v.reviewer == "old"]
    assert (old.item_id, old.model, old.confidence) == (9999, "", None)
    columns, indexes = _columns_and_indexes(verdicts_db)
    assert columns.count("model") == 1 and columns.count("confidence") == 1  # each migration ran once
    assert "verdicts_item" in indexes


def test_a_held_write_lock_never_surfaces_as_database_is_locked(tmp_path: Path) -> None:
    """Readers go on during someone else's write; a writer waits, and if the lock outlasts every retry it gets
    a VerdictStoreError naming the file, never sqlite3's bare "database is locked"."""
    path = tmp_path / "held.db"
    store = VerdictStore(path)
    store.add(_verdict(1))
    impatient = VerdictStore(path, timeout_s=0.05, retries=2)
    holder = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    holder.execute("BEGIN IMMEDIATE")
    holder.execute(
        "INSERT INTO verdicts (dataset, item_id, verdict, reviewer, created_at) VALUES (?, ?, ?, ?, ?)",
        ("fer2013:test", 2, "ambiguous", "holder", "2025-01-01T00:00:00+00:00"),
    )
    try:
        assert impatient.count() == 1  # WAL: the reader sees the last commit, without waiting
        assert [v.item_id for v in impatient.all()] == [1]
        with pytest.raises(VerdictStoreError, match=str(path.name)) as info:
            impatient.add(_verdict(3))
        assert not isinstance(info.value, sqlite3.OperationalError)

        released = threading.Timer(0.3, holder.execute, args=("COMMIT",))
        released.start()  # a patient writer simply waits for the commit
        saved = store.add(_verdict(4))
        released.join()
    finally:
        holder.close()
    assert saved.id is not None and sorted(v.item_id for v in store.all()) == [1, 2, 4]


def test_the_database_comes_from_the_url_variable_then_the_file_variable(monkeypatch, tmp_path: Path) -> None:
    monkeypatch.delenv("FERLENS_VERDICTS_URL", raising=False)
    monkeypatch.setenv("FERLENS_DB", str(tmp_path / "a.db"))
    assert database_url() == sa.make_url(f"sqlite:///{tmp_path / 'a.db'}")
    monkeypatch.setenv("FERLENS_VERDICTS_URL", "postgres://rev:pw@db.example:5433/ferlens")
    url = database_url()
    assert (url.drivername, url.host, url.port, url.database) == ("postgresql+psycopg", "db.example", 5433, "ferlens")
    assert database_url(tmp_path / "b.db").database == str(tmp_path / "b.db")  # an argument wins


@pytest.mark.parametrize(
    "url, match",
    [
        ("mysql://rev:s3cret@db/ferlens", "unsupported database 'mysql'"),
        ("postgresql+nodriver://rev:s3cret@db/ferlens", "nodriver"),
        ("sqlite://", "in-memory"),
        ("sqlite:///:memory:", "in-memory"),
        ("postgresql://rev:s3cret@db:port/ferlens", "cannot read the URL"),
    ],
)
def test_a_bad_url_is_one_line_naming_it_without_its_password(url: str, match: str) -> None:
    with pytest.raises(VerdictStoreError, match=match) as info:
        VerdictStore(url)
    assert "\n" not in str(info.value) and "s3cret" not in str(info.value)


def test_an_unreachable_server_is_one_line_naming_it_without_its_password() -> None:
    with pytest.raises(VerdictStoreError, match="127.0.0.1") as info:
        VerdictStore("postgresql://rev:s3cret@127.0.0.1:1/ferlens", timeout_s=2)
    text = str(info.value)
    assert text.startswith("verdict database postgresql+psycopg://rev:***@127.0.0.1:1/ferlens: ")
    assert "\n" not in text and "s3cret" not in text


@pytest.mark.postgres
def test_a_server_that_goes_away_loses_no_verdict(postgres_server) -> None:
    """Saves while the server is down fail with one line; the verdicts saved before are all there after."""
    store = VerdictStore(postgres_server.database(), timeout_s=2, retries=2)
    before = [store.add(_verdict(i)) for i in range(5)]
    postgres_server.stop()
    try:
        with pytest.raises(VerdictStoreError) as info:
            store.add(_verdict(99))
        assert "\n" not in str(info.value) and str(info.value).startswith("verdict database postgresql")
        with pytest.raises(VerdictStoreError):
            store.all()
    finally:
        postgres_server.start()
    assert store.all() == before  # the same store object reconnects (pool pre-ping)
    assert store.add(_verdict(5)).id is not None and store.count() == 6
