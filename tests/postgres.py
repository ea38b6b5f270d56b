"""A real PostgreSQL server for the tests, started from Debian's ``postgresql`` package.

initdb into a fresh folder, a free loopback port, trust authentication for one superuser, and
``pg_ctl stop`` at the end. PostgreSQL refuses to run as root, so under root (CI, containers)
the server runs as the package's ``postgres`` user. Each test gets its own database.
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import tempfile
import uuid
from pathlib import Path

from tests.serving import free_port

USER = "facesearch"


def binaries() -> Path | None:
    """The folder holding initdb and pg_ctl: on PATH, else Debian's /usr/lib/postgresql/N/bin."""
    found = shutil.which("initdb")
    if found:
        return Path(found).resolve().parent
    versions = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=lambda p: int(p.parent.parent.name))
    return versions[-1].parent if versions else None


def why_not() -> str | None:
    """Why no server can be started here (None: it can)."""
    if binaries() is None:
        return "PostgreSQL is not installed (Debian: apt-get install postgresql)"
    try:
        import psycopg  # noqa: F401
    except ImportError:
        return "psycopg is not installed: pip install 'facesearch[postgres]'"
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            return "running as root and there is no postgres user to run the server as"
    return None


class PostgresServer:
    """One throwaway server; ``url()`` makes a new empty database on it."""

    def __init__(self) -> None:
        self.bin = binaries()
        assert self.bin is not None, why_not()
        self.port = free_port()
        # Not under pytest's tmp_path: its parents are root's 0700 folders, which the
        # postgres user could not enter.
        self.root = Path(tempfile.mkdtemp(prefix="facesearch-pg-"))
        self.data = self.root / "data"
        self.log = self.root / "server.log"
        self._as_owner = []
        if os.geteuid() == 0:
            owner = pwd.getpwnam("postgres")
            os.chown(self.root, owner.pw_uid, owner.pw_gid)
            self._as_owner = ["runuser", "-u", "postgres", "--"]

    def _run(self, *args: str) -> None:
        subprocess.run([*self._as_owner, *args], check=True, capture_output=True, timeout=120)

    def start(self) -> "PostgresServer":
        self._run(str(self.bin / "initdb"), "-D", str(self.data), "-U", USER, "--auth=trust", "-E", "UTF8", "--no-sync")
        options = f"-c listen_addresses=127.0.0.1 -p {self.port} -k {self.root} -c fsync=off -c max_connections=100"
        self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-l", str(self.log), "-o", options, "-w", "start")
        return self

    def stop(self) -> None:
        try:
            self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "-w", "stop")
        finally:
            shutil.rmtree(self.root, ignore_errors=True)

    def admin_url(self, database: str = "postgres") -> str:
        return f"postgresql://{USER}@127.0.0.1:{self.port}/{database}"

    def url(self) -> str:
        """A new, empty database: what a user hands facesearch with --database-url."""
        import psycopg

        name = f"gallery_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(self.admin_url(), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.admin_url(name)

    def execute(self, url: str, sql: str) -> list[tuple]:
        """Run SQL on a test's database as the superuser (to age or damage it)."""
        import psycopg

        with psycopg.connect(url, autocommit=True) as conn:
            cursor = conn.execute(sql)
            return cursor.fetchall() if cursor.description else []
