"""A throw-away PostgreSQL server for tests and benchmarks (Debian ``postgresql`` binaries).

Runs ``initdb`` and ``pg_ctl`` from ``/usr/lib/postgresql/<version>/bin`` (or ``$PATH``) into a
temporary folder, listening on a free loopback port and a socket in that folder.  PostgreSQL
refuses to run as root, so under root the server runs as the ``postgres`` (or ``nobody``) user.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

from msus.errors import StoreError


def find_bindir() -> Path | None:
    """The folder holding ``initdb`` and ``pg_ctl`` (newest Debian version first), or None."""
    cands = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: _version(p), reverse=True)
    for d in cands:
        if Path(d, "initdb").exists() and Path(d, "pg_ctl").exists():
            return Path(d)
    initdb = shutil.which("initdb")
    if initdb and shutil.which("pg_ctl"):
        return Path(initdb).parent
    return None


def _version(p: str) -> float:
    try:
        return float(Path(p).parent.name)
    except ValueError:
        return 0.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class TempPostgres:
    """``with TempPostgres() as pg: url = pg.create_database("x")``."""

    def __init__(self, *, fsync: bool = False):
        self.bindir = find_bindir()
        if self.bindir is None:
            raise StoreError("PostgreSQL server binaries (initdb, pg_ctl) not found; install Debian postgresql")
        self.fsync = fsync
        self.port = free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="msus-pg-"))
        self.data = self.dir / "data"
        self.log = self.dir / "server.log"
        self._prefix: list[str] = []
        if os.geteuid() == 0:
            user = _unprivileged_user()
            pw = pwd.getpwnam(user)
            os.chown(self.dir, pw.pw_uid, pw.pw_gid)
            self._prefix = ["runuser", "-u", user, "--"]
        self.started = False

    def _run(self, *args: str) -> None:
        res = subprocess.run(self._prefix + list(args), capture_output=True, text=True, timeout=120)
        if res.returncode != 0:
            tail = (res.stderr or res.stdout).strip().splitlines()[-3:]
            raise StoreError(f"{Path(args[0]).name} failed: {' | '.join(tail)}")

    def start(self) -> "TempPostgres":
        self._run(str(self.bindir / "initdb"), "-D", str(self.data), "-U", "msus", "--auth=trust", "-E", "UTF8", "--no-sync")
        opts = f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c max_connections=100"
        if not self.fsync:
            opts += " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        self._run(str(self.bindir / "pg_ctl"), "-D", str(self.data), "-o", opts, "-l", str(self.log), "-w", "-t", "60", "start")
        self.started = True
        return self

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+psycopg2://msus@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: str) -> str:
        """Create database ``name`` (dropping any old one) and return its URL."""
        import psycopg2

        conn = psycopg2.connect(host="127.0.0.1", port=self.port, user="msus", dbname="postgres")
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute(f'DROP DATABASE IF EXISTS "{name}"')
            cur.execute(f'CREATE DATABASE "{name}"')
        conn.close()
        return self.url(name)

    def stop(self) -> None:
        if self.started:
            try:
                self._run(str(self.bindir / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "-w", "stop")
            except StoreError:
                pass
            self.started = False
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> "TempPostgres":
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(self, *exc) -> None:
        self.stop()


def _unprivileged_user() -> str:
    for user in ("postgres", "nobody"):
        try:
            pwd.getpwnam(user)
            return user
        except KeyError:
            continue
    raise StoreError("running as root and no 'postgres' or 'nobody' user to run PostgreSQL as")
