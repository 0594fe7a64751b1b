"""A real, throwaway PostgreSQL server for tests: a temporary cluster on a free loopback port.

``scripts/install_postgres.sh`` (``make install``) brings Debian's server binaries; :func:`postgres_server`
runs ``initdb`` into a temporary directory, starts ``postgres`` on 127.0.0.1 only (its Unix socket stays in
that directory), and removes everything on exit. PostgreSQL refuses to run as root, so under root (CI)
the server runs as the ``postgres`` system user the Debian package creates.

Durability is switched off (``fsync``, ``synchronous_commit``, ``full_page_writes``): a test cluster is thrown
away, and this keeps the suite fast. Nothing else differs from a production server.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

from tests.live import free_port

SUPERUSER = "cap"


def bindir() -> Path:
    """The newest installed server's bin directory (``CAP_PG_BINDIR`` overrides)."""
    override = os.environ.get("CAP_PG_BINDIR")
    if override:
        return Path(override)
    found = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/postgres"), key=lambda p: int(Path(p).parent.parent.name)
    )
    if not found:
        raise RuntimeError("no PostgreSQL server binaries: run scripts/install_postgres.sh (make install)")
    return Path(found[-1]).parent


class PgServer:
    """One running cluster; :meth:`create_database` hands each test its own database."""

    def __init__(self, root: Path, port: int, run_as: str | None) -> None:
        self.root = root
        self.data = root / "data"
        self.port = port
        self.run_as = run_as

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://{SUPERUSER}@127.0.0.1:{self.port}/{database}"

    def create_database(self, prefix: str = "cap") -> str:
        """A new empty database; returns its URL."""
        import psycopg

        name = f"{prefix}_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def drop_database(self, url: str) -> None:
        import psycopg

        name = url.rsplit("/", 1)[1]
        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def _command(self, *args: str) -> list[str]:
        return ["runuser", "-u", self.run_as, "--", *args] if self.run_as else list(args)

    def start(self) -> None:
        tools = bindir()
        subprocess.run(
            self._command(
                str(tools / "initdb"),
                "-D",
                str(self.data),
                "-U",
                SUPERUSER,
                "--auth=trust",
                "--encoding=UTF8",
                "--locale=C",
                "--no-sync",
            ),
            check=True,
            capture_output=True,
        )
        options = (
            f"-c listen_addresses=127.0.0.1 -p {self.port} -k {self.root} -c fsync=off "
            "-c synchronous_commit=off -c full_page_writes=off -c max_connections=100 "
            "-c shared_buffers=32MB"
        )
        subprocess.run(
            self._command(
                str(tools / "pg_ctl"),
                "-D",
                str(self.data),
                "-o",
                options,
                "-l",
                str(self.root / "log"),
                "-w",
                "start",
            ),
            check=True,
            capture_output=True,
        )

    def stop(self) -> None:
        subprocess.run(
            self._command(str(bindir() / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "-w", "stop"),
            check=False,
            capture_output=True,
        )

    def log(self) -> str:
        path = self.root / "log"
        return path.read_text(errors="replace") if path.exists() else ""


@contextlib.contextmanager
def postgres_server() -> Iterator[PgServer]:
    """A started throwaway cluster; stopped and deleted afterwards."""
    root = Path(tempfile.mkdtemp(prefix="cap-pg-"))
    run_as = None
    if os.geteuid() == 0:
        run_as = "postgres"
        entry = pwd.getpwnam(run_as)
        os.chown(root, entry.pw_uid, entry.pw_gid)
    server = PgServer(root, free_port(), run_as)
    try:
        server.start()
        yield server
    finally:
        server.stop()
        shutil.rmtree(root, ignore_errors=True)
