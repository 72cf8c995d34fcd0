"""Opening the journal's SQLite file: create it, or prove it is ours and intact.

The checks run before anything is written: the raw header (magic string and the
``application_id`` at offset 68) first, then, through a read-only connection that can neither
write nor checkpoint, the journal tables, the magic row, the schema version and
``PRAGMA quick_check``. A foreign, damaged or newer file raises :class:`JournalError` and is
left byte-for-byte as it was.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Callable
from pathlib import Path

from ._errors import JournalError

__all__ = ["APPLICATION_ID", "DEFAULT_BUSY_TIMEOUT", "JOURNAL_SCHEMA_VERSION", "JournalFile"]

logger = logging.getLogger("vidgo_async")

# 1: jobs. 2: + uploads (a version-1 journal is migrated when opened for writing).
JOURNAL_SCHEMA_VERSION = 2
# "VdgJ": marks the SQLite header (offset 68) so a foreign database is never taken for ours.
APPLICATION_ID = 0x5664674A
_MAGIC = "vidgo-async journal"
_SQLITE_HEADER = b"SQLite format 3\x00"
DEFAULT_BUSY_TIMEOUT = 30.0

_SCHEMA = """
CREATE TABLE vidgo_journal (name TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE jobs (
    seq INTEGER PRIMARY KEY,
    key TEXT NOT NULL UNIQUE,
    fingerprint TEXT NOT NULL,
    model TEXT NOT NULL,
    input_json TEXT NOT NULL,
    callback_token TEXT,
    state TEXT NOT NULL,
    task_id TEXT,
    task_json TEXT,
    files_json TEXT NOT NULL DEFAULT '[]',
    error_type TEXT,
    error_message TEXT,
    attempts INTEGER NOT NULL DEFAULT 0,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL,
    submitted_at REAL,
    finished_at REAL,
    checksum TEXT
);
CREATE INDEX jobs_task_id ON jobs (task_id);
"""

# Files uploaded for a batch, by content hash (schema version 2).
_UPLOADS_SCHEMA = """
CREATE TABLE IF NOT EXISTS uploads (
    sha256 TEXT PRIMARY KEY,
    file_url TEXT NOT NULL,
    expires_at REAL NOT NULL,
    size INTEGER NOT NULL,
    source TEXT NOT NULL,
    uploaded_at REAL NOT NULL
)
"""


class JournalFile:
    """Open one journal file as an SQLite connection (used by ``Journal`` in a worker thread)."""

    def __init__(
        self,
        path: Path,
        *,
        create: bool,
        readonly: bool,
        busy_timeout: float,
        clock: Callable[[], float],
    ) -> None:
        self._path = path
        self._create = create and not readonly
        self._readonly = readonly
        self._busy_timeout = busy_timeout
        self._clock = clock

    def connect(self) -> sqlite3.Connection:
        """Return a validated connection in WAL mode with ``synchronous=FULL``."""
        fresh = self._inspect_file()
        if fresh:
            conn = self._connect(readonly=False)
            try:
                self._initialize(conn)
            except BaseException:
                conn.close()
                raise
        else:
            # Validate through a read-only connection first: it never writes nor
            # checkpoints, so a damaged or foreign file stays byte-for-byte as it was.
            probe = self._connect(readonly=True)
            try:
                self._validate(probe)
            finally:
                probe.close()
            conn = self._connect(readonly=self._readonly)
            if not self._readonly:
                try:
                    self._migrate(conn)
                except BaseException:
                    conn.close()
                    raise
        try:
            if not self._readonly:
                conn.execute("PRAGMA journal_mode=WAL")
                conn.execute("PRAGMA synchronous=FULL")
        except sqlite3.Error as exc:
            conn.close()
            raise self._error(f"cannot use the journal ({exc})") from exc
        return conn

    def _migrate(self, conn: sqlite3.Connection) -> None:
        """Bring a validated older journal up to this schema version (one transaction)."""
        try:
            conn.execute("BEGIN IMMEDIATE")
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            if version >= JOURNAL_SCHEMA_VERSION:
                conn.execute("ROLLBACK")
                return
            conn.execute(_UPLOADS_SCHEMA)
            conn.execute(f"PRAGMA user_version={JOURNAL_SCHEMA_VERSION}")
            conn.execute(
                "UPDATE vidgo_journal SET value = ? WHERE name = 'schema'",
                (str(JOURNAL_SCHEMA_VERSION),),
            )
            conn.execute("COMMIT")
        except sqlite3.Error as exc:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise self._error(f"cannot upgrade the journal ({exc})") from exc
        logger.info("upgraded journal %s to schema %d", self._path, JOURNAL_SCHEMA_VERSION)

    def _error(self, message: str) -> JournalError:
        return JournalError(f"{message}: {self._path}", path=str(self._path))

    def _inspect_file(self) -> bool:
        """Check the raw header without SQLite; return whether the journal must be created."""
        path = self._path
        if path.is_dir():
            raise self._error("the journal path is a directory, not a file")
        if not path.exists():
            if not self._create:
                raise self._error("no journal found")
            path.parent.mkdir(parents=True, exist_ok=True)
            return True
        try:
            with path.open("rb") as handle:
                header = handle.read(100)
        except OSError as exc:
            raise self._error(f"cannot read the journal ({exc.strerror})") from exc
        if not header:
            # An empty file holds nothing to lose (a crash before the first commit).
            if self._readonly:
                raise self._error("the journal is empty")
            return True
        if len(header) < 100 or not header.startswith(_SQLITE_HEADER):
            raise self._error(
                "not a vidgo-async journal (not an SQLite database); it was not modified. "
                "HINT: pass another path, or move the file aside"
            )
        app_id = int.from_bytes(header[68:72], "big")
        if app_id not in (0, APPLICATION_ID):
            raise self._error(
                f"not a vidgo-async journal (an SQLite database of another application, "
                f"application_id {app_id:#x}); it was not modified. HINT: pass another path"
            )
        return False

    def _connect(self, *, readonly: bool) -> sqlite3.Connection:
        mode = "ro" if readonly else "rwc"
        uri = f"{self._path.resolve().as_uri()}?mode={mode}"
        try:
            conn = sqlite3.connect(
                uri,
                uri=True,
                timeout=self._busy_timeout,
                isolation_level=None,  # transactions are explicit (BEGIN IMMEDIATE)
                check_same_thread=False,  # used from worker threads, under self._lock
            )
            conn.execute(f"PRAGMA busy_timeout={int(self._busy_timeout * 1000)}")
        except sqlite3.Error as exc:
            raise self._error(f"cannot open the journal ({exc})") from exc
        return conn

    def _initialize(self, conn: sqlite3.Connection) -> None:
        try:
            conn.execute("BEGIN IMMEDIATE")
            existing = conn.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]
            if existing:
                # Another process created it between our check and our lock.
                conn.execute("ROLLBACK")
                self._validate(conn)
                return
            conn.execute(f"PRAGMA application_id={APPLICATION_ID}")
            conn.execute(f"PRAGMA user_version={JOURNAL_SCHEMA_VERSION}")
            for statement in _SCHEMA.split(";"):
                if statement.strip():
                    conn.execute(statement)
            conn.execute(_UPLOADS_SCHEMA)
            conn.executemany(
                "INSERT INTO vidgo_journal (name, value) VALUES (?, ?)",
                [
                    ("magic", _MAGIC),
                    ("schema", str(JOURNAL_SCHEMA_VERSION)),
                    ("created_at", repr(self._clock())),
                ],
            )
            conn.execute("COMMIT")
        except sqlite3.Error as exc:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise self._error(f"cannot create the journal ({exc})") from exc
        logger.debug("created journal %s", self._path)

    def _validate(self, conn: sqlite3.Connection) -> None:
        try:
            app_id = conn.execute("PRAGMA application_id").fetchone()[0]
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            tables = {
                row[0]
                for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
            }
            if app_id != APPLICATION_ID or "vidgo_journal" not in tables or "jobs" not in tables:
                raise self._error(
                    "not a vidgo-async journal (an SQLite database without the journal "
                    "tables); it was not modified. HINT: pass another path"
                )
            magic = conn.execute("SELECT value FROM vidgo_journal WHERE name = 'magic'").fetchone()
            if magic is None or magic[0] != _MAGIC:
                raise self._error("not a vidgo-async journal (wrong magic); it was not modified")
            if version > JOURNAL_SCHEMA_VERSION:
                raise self._error(
                    f"the journal has schema version {version}, newer than this vidgo-async "
                    f"understands ({JOURNAL_SCHEMA_VERSION}). HINT: upgrade vidgo-async"
                )
            check = conn.execute("PRAGMA quick_check").fetchall()
        except sqlite3.DatabaseError as exc:
            raise self._error(
                f"the journal is damaged ({exc}); it was not modified. HINT: move it aside "
                "and keep it (`sqlite3 FILE .recover` may still read its task ids), then start "
                "over"
            ) from exc
        if check != [("ok",)]:
            detail = "; ".join(str(row[0]) for row in check[:3])
            raise self._error(
                f"the journal is damaged ({detail}); it was not modified. HINT: move it aside "
                "and keep it (`sqlite3 FILE .recover` may still read its task ids), then start "
                "over"
            )
