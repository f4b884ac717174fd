"""The reviewer-verdict store: round trip, validation, schema migrations and concurrent writers."""

from __future__ import annotations

import csv
import io
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from dashboard.verdicts import (
    MIGRATIONS,
    SCHEMA_VERSION,
    VERDICTS,
    Verdict,
    VerdictError,
    VerdictStore,
    VerdictStoreError,
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


def test_round_trip_and_csv(tmp_path: Path) -> None:
    store = VerdictStore(tmp_path / "v.db")
    saved = store.add(_verdict(7))
    assert saved.id is not None and saved.created_at.endswith("+00:00")
    store.add(_verdict(7, reviewer="bo", verdict="ambiguous"))
    store.add(_verdict(8))
    again = VerdictStore(tmp_path / "v.db")  # a new store on the same file = a restart
    got = again.for_item("fer2013:test", 7)
    assert [v.reviewer for v in got] == ["ana", "bo"]
    assert got[0] == saved
    assert again.latest_by_item("fer2013:test")[7].verdict == "ambiguous"
    assert again.for_item("fer2013:val", 7) == []
    rows = list(csv.DictReader(io.StringIO(again.to_csv())))
    assert len(rows) == 3 and rows[0]["note"] == "note 7, with a comma" and rows[0]["item_id"] == "7"
    with sqlite3.connect(tmp_path / "v.db") as con:
        assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


@pytest.mark.parametrize(
    "change, match",
    [({"verdict": "looks fine"}, "unknown verdict"), ({"reviewer": "  "}, "reviewer"), ({"dataset": ""}, "dataset")],
)
def test_invalid_verdicts_are_refused(tmp_path: Path, change: dict, match: str) -> None:
    store = VerdictStore(tmp_path / "v.db")
    with pytest.raises(VerdictError, match=match):
        store.add(_verdict(1, **change))
    assert store.count() == 0


def _write_v1_database(path: Path, item_id: int, reviewer: str) -> None:
    """A database as the first schema version wrote it, holding one verdict."""
    with sqlite3.connect(path) as con:
        for statement in MIGRATIONS[0]:
            con.execute(statement)
        con.execute(
            "INSERT INTO verdicts (dataset, item_id, verdict, reviewer, created_at) VALUES (?, ?, ?, ?, ?)",
            ("fer2013:test", item_id, "not a face", reviewer, "2025-01-01T00:00:00+00:00"),
        )
        con.execute("PRAGMA user_version = 1")


def test_old_schema_is_migrated_keeping_rows(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    _write_v1_database(path, item_id=3, reviewer="cy")
    store = VerdictStore(path)
    assert store.schema_version == SCHEMA_VERSION == 2
    (old,) = store.for_item("fer2013:test", 3)
    assert (old.verdict, old.reviewer, old.model, old.confidence) == ("not a face", "cy", "", None)
    with sqlite3.connect(path) as con:
        assert "verdicts_item" in {r[1] for r in con.execute("PRAGMA index_list(verdicts)")}


def test_newer_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "new.db"
    VerdictStore(path)
    with sqlite3.connect(path) as con:
        con.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    with pytest.raises(VerdictStoreError, match="newer"):
        VerdictStore(path)


_WORKER = """
import sys
from dashboard.verdicts import Verdict, VerdictStore
assert "torch" not in sys.modules and "streamlit" not in sys.modules, "verdicts must stay light"
path, who, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
store = VerdictStore(path)
for i in range(n):
    store.add(Verdict(dataset="fer2013:test", item_id=i, verdict="model wrong", reviewer=who, note=str(i)))
"""


def _run_writers(path: Path, writers: int = 8, each: int = 200) -> None:
    """``writers`` processes adding ``each`` verdicts to ``path`` at once; none may fail or mention a lock."""
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _WORKER, str(path), f"r{k}", str(each)],
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
def test_eight_concurrent_writer_processes(tmp_path: Path) -> None:
    """8 processes x 200 verdicts on a new file (they also race to create and migrate it): 1,600 rows."""
    path = tmp_path / "race.db"
    _run_writers(path)
    store = VerdictStore(path)
    rows = store.all()
    assert len(rows) == store.count() == 1600
    assert len({v.id for v in rows}) == 1600
    for k in range(8):
        assert sorted(int(v.note) for v in rows if v.reviewer == f"r{k}") == list(range(200))


def test_concurrent_threads_share_one_store(tmp_path: Path) -> None:
    """Streamlit sessions are threads of one server: 8 threads x 50 verdicts through one store object."""
    store = VerdictStore(tmp_path / "threads.db")
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
def test_eight_writers_on_a_version_1_database_migrate_it_once(tmp_path: Path) -> None:
    """A v1 file with rows, opened by 8 writer processes at once: migrated once, old rows kept, 1,600 new."""
    path = tmp_path / "v1.db"
    _write_v1_database(path, item_id=9999, reviewer="old")
    _run_writers(path)
    store = VerdictStore(path)
    assert store.schema_version == SCHEMA_VERSION
    rows = store.all()
    assert len(rows) == 1601 and len({v.id for v in rows}) == 1601
    (old,) = [v for v in rows if v.reviewer == "old"]
    assert (old.item_id, old.model, old.confidence) == (9999, "", None)
    with sqlite3.connect(path) as con:
        columns = [r[1] for r in con.execute("PRAGMA table_info(verdicts)")]
        assert columns.count("model") == 1 and columns.count("confidence") == 1  # each migration ran once
        assert "verdicts_item" in {r[1] for r in con.execute("PRAGMA index_list(verdicts)")}


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
