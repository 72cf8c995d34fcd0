"""A real PostgreSQL server for the fleet tests, started and stopped by the tests themselves.

The server binaries come from Debian's versioned directory (``/usr/lib/postgresql/*/bin``;
``.ci/run`` installs the ``postgresql`` package when they are missing). ``initdb`` refuses to
run as root, so as root the server runs as the ``postgres`` user. It listens on a unix
socket in a temporary directory only (no TCP port), with ``fsync`` off (the tests kill
clients, never the server). A server that cannot start FAILS the tests: it never skips.
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

__all__ = ["PostgresServer", "find_bin_dir", "running_postgres"]


def find_bin_dir() -> Path:
    """The newest installed PostgreSQL server's ``bin`` directory."""
    found = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/initdb"),
        key=lambda path: int(Path(path).parts[-3]) if Path(path).parts[-3].isdigit() else 0,
    )
    if not found:
        raise RuntimeError(
            "no PostgreSQL server binaries in /usr/lib/postgresql/*/bin: install the "
            "`postgresql` package (bash .ci/run does it when they are missing)"
        )
    return Path(found[-1]).parent


class PostgresServer:
    """A running throwaway server; ``url(db)`` names a database on its unix socket."""

    def __init__(self, socket_dir: Path) -> None:
        self.socket_dir = socket_dir
        self._count = 0

    def url(self, database: str = "postgres") -> str:
        """A libpq URL for ``database`` over the unix socket."""
        return f"postgresql://postgres@/{database}?host={self.socket_dir}"

    def new_database(self) -> str:
        """Create a fresh empty database; return its URL."""
        import psycopg

        self._count += 1
        name = f"t{os.getpid()}_{self._count}"
        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')  # type: ignore[arg-type]
        return self.url(name)


def _as_server_user(argv: list[str]) -> list[str]:
    if os.geteuid() != 0:
        return argv
    return ["runuser", "-u", "postgres", "--", *argv]


@contextlib.contextmanager
def running_postgres() -> Iterator[PostgresServer]:
    """Start a server in a new temporary directory; stop it and remove it on exit."""
    bin_dir = find_bin_dir()
    base = Path(tempfile.mkdtemp(prefix="vidgo-pg-"))
    data = base / "data"
    try:
        if os.geteuid() == 0:
            shutil.chown(base, "postgres", "postgres")
        subprocess.run(  # noqa: S603 - fixed argv
            _as_server_user(
                [str(bin_dir / "initdb"), "-D", str(data), "-U", "postgres", "-A", "trust",
                 "--no-sync", "-E", "UTF8"]
            ),
            check=True,
            capture_output=True,
        )  # fmt: skip
        options = f"-c listen_addresses='' -k {base} -c fsync=off -c max_connections=200"
        started = subprocess.run(  # noqa: S603 - fixed argv
            _as_server_user(
                [str(bin_dir / "pg_ctl"), "-D", str(data), "-l", str(base / "log"), "-o",
                 options, "-w", "-t", "60", "start"]
            ),
            capture_output=True,
            text=True,
        )  # fmt: skip
        if started.returncode != 0:
            log = (base / "log").read_text() if (base / "log").exists() else ""
            raise RuntimeError(f"PostgreSQL did not start: {started.stderr}\n{log}")
        try:
            yield PostgresServer(base)
        finally:
            subprocess.run(  # noqa: S603 - fixed argv
                _as_server_user(
                    [str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop"]
                ),
                capture_output=True,
            )
    finally:
        shutil.rmtree(base, ignore_errors=True)
