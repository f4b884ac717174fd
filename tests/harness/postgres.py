"""A throw-away PostgreSQL server for tests: ``initdb`` into a temporary folder, a private Unix socket, no TCP.

PostgreSQL refuses to run as root, so as root the server runs as the ``postgres`` user (Debian's package creates
it), falling back to ``nobody``; the folder is handed to that user. Without the server binaries (a laptop without
Debian's ``postgresql`` package), :func:`unavailable_reason` says so and the tests that need a server skip.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
from pathlib import Path

import sqlalchemy as sa

SEARCH = "/usr/lib/postgresql/*/bin"
"""Where Debian puts the server binaries (they are not on PATH there); PATH is searched first."""


def binaries() -> Path | None:
    """The folder holding ``initdb``, ``pg_ctl`` and ``postgres``, or None."""
    found = shutil.which("initdb")
    candidates = [Path(found).resolve().parent] if found else []
    candidates += [Path(p) for p in sorted(glob.glob(SEARCH), reverse=True)]
    for folder in candidates:
        if all((folder / b).is_file() for b in ("initdb", "pg_ctl", "postgres")):
            return folder
    return None


def _run_as() -> str | None:
    """The unprivileged user the server runs as when we are root (None: run as ourselves)."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        try:
            pwd.getpwnam(name)
        except KeyError:
            continue
        return name
    return ""


def unavailable_reason() -> str | None:
    """Why no test server can start here, or None when one can."""
    if binaries() is None:
        return (
            "PostgreSQL server binaries (initdb, pg_ctl, postgres) not found on PATH or in "
            f"{SEARCH}: install Debian's 'postgresql' package (make postgres does, as root)"
        )
    user = _run_as()
    if user == "":
        return "running as root and there is no 'postgres' or 'nobody' user to run PostgreSQL as"
    if user and shutil.which("runuser") is None:
        return "running as root and 'runuser' (util-linux) is missing, so PostgreSQL cannot run unprivileged"
    return None


class PostgresServer:
    """One server in its own temporary folder; :meth:`database` makes a fresh database and returns its URL."""

    port = 5432  # the socket lives in our own folder, so the usual port never clashes with another server

    def __init__(self) -> None:
        self.bin = binaries()
        self.user = _run_as()
        self.root = Path(tempfile.mkdtemp(prefix="ferlens-pg-", dir="/tmp" if os.path.isdir("/tmp") else None))
        self.data = self.root / "data"
        self._databases = 0
        self.running = False
        if self.user:
            entry = pwd.getpwnam(self.user)
            os.chown(self.root, entry.pw_uid, entry.pw_gid)
        self._call("initdb", "-D", str(self.data), "-U", "postgres", "-A", "trust", "--no-sync", "--locale=C",
                   "-E", "UTF8")  # fmt: skip
        with open(self.data / "postgresql.conf", "a") as fh:
            fh.write(
                f"listen_addresses = ''\nunix_socket_directories = '{self.root}'\nport = {self.port}\n"
                "fsync = off\nsynchronous_commit = off\nfull_page_writes = off\n"
            )
        self.start()

    def _call(self, program: str, *args: str) -> None:
        cmd = [str(self.bin / program), *args]
        if self.user:
            cmd = ["runuser", "-u", self.user, "--", *cmd]
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=300, cwd=self.root)
        if done.returncode != 0:
            log = (self.root / "log").read_text() if (self.root / "log").is_file() else ""
            raise RuntimeError(f"{program} failed ({done.returncode}): {done.stderr.strip()} {log[-2000:]}")

    def start(self) -> None:
        self._call("pg_ctl", "-D", str(self.data), "-l", str(self.root / "log"), "-w", "-t", "120", "start")
        self.running = True

    def stop(self) -> None:
        """Stop at once (``-m fast``: open sessions are ended, committed data is kept)."""
        self._call("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "-t", "120", "stop")
        self.running = False

    def url(self, database: str = "postgres") -> sa.URL:
        return sa.URL.create(
            "postgresql+psycopg",
            username="postgres",
            database=database,
            query={"host": str(self.root), "port": str(self.port)},
        )

    def database(self) -> sa.URL:
        """A new, empty database on this server."""
        self._databases += 1
        name = f"t{self._databases}"
        engine = sa.create_engine(self.url(), isolation_level="AUTOCOMMIT")
        try:
            with engine.connect() as con:
                con.exec_driver_sql(f"CREATE DATABASE {name}")
        finally:
            engine.dispose()
        return self.url(name)

    def close(self) -> None:
        try:
            if self.running:
                self.stop()
        finally:
            shutil.rmtree(self.root, ignore_errors=True)
