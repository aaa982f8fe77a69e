"""A local cache of OCR results and a ledger of submitted jobs, in one SQLite file.

The service bills per page, so a pipeline run twice must not pay twice: complete results
are kept under a key derived from the file's content and the request's options. A batch
stopped by a crash or Ctrl-C must not pay twice either: every submitted job is recorded
before it is polled, so the next run polls it again (the service keeps a result for one
hour after completion) instead of uploading the file again.

One :class:`ResultCache` may be shared by the threads of a batch (one connection behind a
lock) and one file by several processes (WAL journal, busy timeout). The cache is a
convenience, never a dependency: a corrupt file is moved aside and a fresh one started,
and a file that cannot be opened at all degrades to an in-memory cache with a warning.

Nothing here receives an API key, and nothing that is stored is derived from one.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import sqlite3
import threading
import time
import zlib
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from types import TracebackType
from typing import Any

from pydantic import ValidationError

from ._models import OCRResult
from ._options import OCRJob

__all__ = ["CACHE_DIR_ENV", "CacheStats", "ResultCache"]

logger = logging.getLogger("datalab_ocr")

CACHE_DIR_ENV = "DATALAB_OCR_CACHE_DIR"
_FILENAME = "results.sqlite3"
_SCHEMA_VERSION = 1
_KEY_VERSION = 1
_BUSY_TIMEOUT_SECONDS = 10.0
# Level 1 compresses OCR JSON (highly repetitive keys) nearly as well as level 9, many
# times faster: a 7,000-page result is tens of MB of JSON.
_ZLIB_LEVEL = 1
# Error codes (and, for Python 3.10 which lacks ``sqlite_errorcode``, messages) that mean
# the file itself is damaged. Any other error (locked, read-only, cannot open) is not
# cured by moving the file aside.
_CORRUPT_CODES = {11, 26}  # SQLITE_CORRUPT, SQLITE_NOTADB
_CORRUPT_MESSAGES = ("file is not a database", "malformed", "file is encrypted")
_BUSY_CODES = {5, 6}  # SQLITE_BUSY, SQLITE_LOCKED

_SCHEMA = """
CREATE TABLE IF NOT EXISTS results (
    key TEXT PRIMARY KEY,
    stored_at REAL NOT NULL,
    codec TEXT NOT NULL,
    data BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS jobs (
    key TEXT PRIMARY KEY,
    request_id TEXT NOT NULL,
    submitted_at REAL NOT NULL,
    job TEXT NOT NULL
);
"""


@dataclass(frozen=True, slots=True)
class CacheStats:
    """What a cache holds: complete results, pending jobs, and its size on disk in bytes."""

    results: int
    pending_jobs: int
    bytes_on_disk: int


class ResultCache:
    """OCR results and in-flight jobs, kept in a SQLite file across runs and processes.

    ``path`` defaults to :meth:`default_path`; its parent folders are created and the file
    opened on first use (a folder that cannot be created, such as under a read-only home,
    means caching in memory for the process, with a warning). Use it as a context manager,
    or call :meth:`close`; a closed cache opens its file again if it is used again.

    Lookups and writes never raise because of the file: a locked or failing database logs
    a warning and counts as a miss (or a skipped write), so the cache cannot stop OCR.
    """

    def __init__(self, path: str | os.PathLike[str] | None = None) -> None:
        self.path = Path(path) if path is not None else self.default_path()
        self._lock = threading.Lock()
        self._conn: sqlite3.Connection | None = None
        self._in_memory = False

    @staticmethod
    def default_path() -> Path:
        """Where the cache lives unless told otherwise.

        ``$DATALAB_OCR_CACHE_DIR/results.sqlite3`` if that is set, else
        ``$XDG_CACHE_HOME/datalab-ocr/results.sqlite3``, else
        ``~/.cache/datalab-ocr/results.sqlite3``.
        """
        explicit = os.environ.get(CACHE_DIR_ENV)
        if explicit:
            return Path(explicit).expanduser() / _FILENAME
        xdg = os.environ.get("XDG_CACHE_HOME")
        base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
        return base / "datalab-ocr" / _FILENAME

    @staticmethod
    def key(
        *,
        content_sha256: str,
        options: Mapping[str, str],
        base_url: str,
        endpoint: str = "/api/v1/ocr",
        server_id: str | None = None,
    ) -> str:
        """The cache key of one request: a SHA-256 hex digest.

        ``server_id`` (a local server's ``X-Datalab-Server-Id``) stands in for ``base_url``
        when given: every local server with the same engine and settings gives the same
        result, whatever port it listens on. The hosted API sends none and is keyed by its URL.

        The caller passes as ``options`` the canonical form fields it sends
        (:meth:`OCROptions.form_fields`), so that equal requests give equal keys however
        the user spelled them; their order does not matter. ``skip_cache`` is left
        out (it says whether the *service* may reuse a result, not what the result is).
        A trailing slash of ``base_url`` is ignored. The API key is never an input.
        """
        fields = {name: value for name, value in options.items() if name != "skip_cache"}
        where = {"server_id": server_id} if server_id else {"base_url": base_url.rstrip("/")}
        canonical = json.dumps(
            {
                "v": _KEY_VERSION,
                "content_sha256": content_sha256.lower(),
                "options": fields,
                **where,
                "endpoint": endpoint,
            },
            sort_keys=True,
            separators=(",", ":"),
            ensure_ascii=False,
        )
        return hashlib.sha256(canonical.encode("utf-8")).hexdigest()

    # -- results ---------------------------------------------------------------------------

    def get(self, key: str) -> OCRResult | None:
        """The complete result stored under ``key``, or None.

        A row that no longer decodes or validates (damaged, or written by an incompatible
        version) counts as a miss and is dropped.
        """
        try:
            with self._connection() as conn:
                row = conn.execute(
                    "SELECT codec, data FROM results WHERE key = ?", (key,)
                ).fetchone()
        except sqlite3.Error as error:
            _log_failure("read a cached result", error)
            return None
        if row is None:
            return None
        codec, data = row
        try:
            raw = zlib.decompress(data) if codec == "zlib" else bytes(data)
            return OCRResult.model_validate_json(raw)
        except (zlib.error, ValidationError, ValueError) as error:
            logger.warning("Dropping an unreadable cached result (%s): %s", key[:12], error)
        try:
            with self._connection() as conn, _write(conn):
                conn.execute("DELETE FROM results WHERE key = ?", (key,))
        except sqlite3.Error as error:
            _log_failure("drop a cached result", error)
        return None

    def put(self, key: str, result: OCRResult) -> None:
        """Store ``result`` under ``key`` (replacing any), and forget the key's pending job."""
        data = zlib.compress(result.model_dump_json().encode("utf-8"), _ZLIB_LEVEL)
        try:
            with self._connection() as conn, _write(conn):
                conn.execute(
                    "INSERT OR REPLACE INTO results (key, stored_at, codec, data) "
                    "VALUES (?, ?, 'zlib', ?)",
                    (key, time.time(), data),
                )
                conn.execute("DELETE FROM jobs WHERE key = ?", (key,))
        except sqlite3.Error as error:
            _log_failure("store a result", error)

    # -- in-flight jobs --------------------------------------------------------------------

    def record_job(self, key: str, job: OCRJob, *, submitted_at: float | None = None) -> None:
        """Remember that ``job`` was submitted for ``key`` at ``submitted_at`` (wall time)."""
        when = time.time() if submitted_at is None else submitted_at
        try:
            with self._connection() as conn, _write(conn):
                conn.execute(
                    "INSERT OR REPLACE INTO jobs (key, request_id, submitted_at, job) "
                    "VALUES (?, ?, ?, ?)",
                    (key, job.request_id, when, _dump_job(job)),
                )
        except sqlite3.Error as error:
            _log_failure("record a submitted job", error)

    def pending_job(
        self, key: str, *, max_age: float = 3600.0, now: float | None = None
    ) -> OCRJob | None:
        """The job recorded for ``key`` if it was submitted at most ``max_age`` seconds ago.

        Otherwise None; finding a stale job drops every job older than ``max_age``, since
        the service no longer keeps their results.
        """
        oldest = (time.time() if now is None else now) - max_age
        try:
            with self._connection() as conn:
                row = conn.execute(
                    "SELECT submitted_at, job FROM jobs WHERE key = ?", (key,)
                ).fetchone()
                if row is None:
                    return None
                submitted_at, stored = row
                if submitted_at < oldest:
                    with _write(conn):
                        conn.execute("DELETE FROM jobs WHERE submitted_at < ?", (oldest,))
                    return None
        except sqlite3.Error as error:
            _log_failure("look up a submitted job", error)
            return None
        try:
            return _load_job(stored)
        except (TypeError, ValueError) as error:
            logger.warning("Ignoring an unreadable recorded job (%s): %s", key[:12], error)
            return None

    def forget_job(self, key: str) -> None:
        """Forget the job recorded for ``key`` (it failed, or its result was collected)."""
        try:
            with self._connection() as conn, _write(conn):
                conn.execute("DELETE FROM jobs WHERE key = ?", (key,))
        except sqlite3.Error as error:
            _log_failure("forget a submitted job", error)

    def forget_jobs_of_stopped_servers(self, server_id: str, instance: str) -> int:
        """Forget jobs recorded for earlier runs of local servers with ``server_id``.

        A local server keeps its jobs in memory only, so once it stops (an embedded server
        stops with its process) its request ids mean nothing; ``instance`` is the run now
        answering. Returns how many were forgotten.
        """
        try:
            with self._connection() as conn:
                rows = conn.execute("SELECT key, job FROM jobs").fetchall()
                gone = []
                for key, stored in rows:
                    try:
                        job = _load_job(stored)
                    except (TypeError, ValueError):
                        continue
                    if job.server_id == server_id and job.server_instance not in (None, instance):
                        gone.append((key,))
                if gone:
                    with _write(conn):
                        conn.executemany("DELETE FROM jobs WHERE key = ?", gone)
        except sqlite3.Error as error:
            _log_failure("forget the jobs of stopped servers", error)
            return 0
        return len(gone)

    # -- housekeeping ----------------------------------------------------------------------

    def clear(self) -> int:
        """Remove every result and job; return how many results were removed."""
        with self._connection() as conn:
            with _write(conn):
                removed: int = conn.execute("DELETE FROM results").rowcount
                conn.execute("DELETE FROM jobs")
            try:
                conn.execute("VACUUM")  # give the space back to the disk
            except sqlite3.OperationalError as error:  # another process is reading
                logger.debug("Could not vacuum the result cache: %s", error)
        return removed

    def stats(self) -> CacheStats:
        """How many results and pending jobs the cache holds, and its size on disk."""
        with self._connection() as conn:
            results = conn.execute("SELECT COUNT(*) FROM results").fetchone()[0]
            jobs = conn.execute("SELECT COUNT(*) FROM jobs").fetchone()[0]
        size = 0
        for suffix in ("", "-wal", "-shm"):
            with suppress(OSError):
                size += os.path.getsize(f"{self.path}{suffix}")
        return CacheStats(results=results, pending_jobs=jobs, bytes_on_disk=size)

    def close(self) -> None:
        """Close the file. Safe to call more than once."""
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    def __enter__(self) -> ResultCache:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        where = f"{str(self.path)!r}" + (", in memory" if self._in_memory else "")
        return f"ResultCache(path={where})"

    # -- opening ---------------------------------------------------------------------------

    @contextmanager
    def _connection(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            if self._conn is None:
                self._conn = self._open()
            yield self._conn

    def _open(self) -> sqlite3.Connection:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            return self._fall_back_to_memory(error)
        try:
            return _connect_patiently(self.path)
        except sqlite3.DatabaseError as error:
            if not _is_corrupt(error):
                return self._fall_back_to_memory(error)
            try:
                aside = _move_aside(self.path)
            except OSError as move_error:
                return self._fall_back_to_memory(move_error)
            logger.warning(
                "The result cache %s is unreadable (%s); moved it to %s and started afresh",
                self.path,
                error,
                aside,
            )
        try:
            return _connect_patiently(self.path)
        except sqlite3.DatabaseError as error:
            return self._fall_back_to_memory(error)

    def _fall_back_to_memory(self, error: Exception) -> sqlite3.Connection:
        logger.warning(
            "Cannot use the result cache %s (%s); caching in memory for this process only",
            self.path,
            error,
        )
        self._in_memory = True
        return _connect(":memory:")


def _dump_job(job: OCRJob) -> str:
    # Every field of the dataclass, by name: fields added to OCRJob later are kept with no
    # schema change, and rows written before they existed still load (with the default).
    return json.dumps(asdict(job), separators=(",", ":"))


def _load_job(stored: str) -> OCRJob:
    data = json.loads(stored)
    known = {field.name for field in fields(OCRJob)}
    arguments: dict[str, Any] = {
        name: tuple(value) if isinstance(value, list) else value
        for name, value in data.items()
        if name in known
    }
    return OCRJob(**arguments)


def _log_failure(action: str, error: sqlite3.Error) -> None:
    # The cache saves money but must never stop OCR: a locked or failing file costs a miss.
    logger.warning("The result cache could not %s: %s", action, error)


def _connect_patiently(path: Path) -> sqlite3.Connection:
    # Processes that open a new file at the same moment race to switch it to WAL, and the
    # loser gets SQLITE_BUSY at once: SQLite does not call the busy handler for that switch.
    deadline = time.monotonic() + _BUSY_TIMEOUT_SECONDS
    while True:
        try:
            return _connect(path)
        except sqlite3.OperationalError as error:
            if not _is_busy(error) or time.monotonic() >= deadline:
                raise
        time.sleep(0.05)


def _connect(path: Path | str) -> sqlite3.Connection:
    # Autocommit mode: every write runs in an explicit BEGIN IMMEDIATE transaction, which
    # takes the write lock up front instead of failing to upgrade a read lock later.
    conn = sqlite3.connect(
        path,
        timeout=_BUSY_TIMEOUT_SECONDS,
        isolation_level=None,
        check_same_thread=False,
    )
    try:
        conn.execute(f"PRAGMA busy_timeout = {int(_BUSY_TIMEOUT_SECONDS * 1000)}")
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        if version > _SCHEMA_VERSION:
            raise sqlite3.OperationalError(
                f"written by a newer datalab-ocr (schema {version}, this one reads "
                f"{_SCHEMA_VERSION})"
            )
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = NORMAL")  # safe with WAL; a cache needs no more
        if version < _SCHEMA_VERSION:
            _migrate(conn, version)
    except BaseException:
        conn.close()
        raise
    return conn


def _migrate(conn: sqlite3.Connection, version: int) -> None:
    with _write(conn):
        # Read again under the write lock: another process may have just migrated.
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        if version == 0:
            for statement in _SCHEMA.split(";"):
                if statement.strip():
                    conn.execute(statement)
        conn.execute(f"PRAGMA user_version = {_SCHEMA_VERSION}")


@contextmanager
def _write(conn: sqlite3.Connection) -> Iterator[None]:
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def _is_corrupt(error: sqlite3.DatabaseError) -> bool:
    code = getattr(error, "sqlite_errorcode", None)
    if code is not None:
        return code & 0xFF in _CORRUPT_CODES
    message = str(error).lower()
    return any(fragment in message for fragment in _CORRUPT_MESSAGES)


def _is_busy(error: sqlite3.OperationalError) -> bool:
    code = getattr(error, "sqlite_errorcode", None)
    if code is not None:
        return code & 0xFF in _BUSY_CODES
    message = str(error).lower()
    return "locked" in message or "busy" in message


def _move_aside(path: Path) -> Path:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    aside = path.with_name(f"{path.name}.corrupt-{stamp}")
    counter = 1
    while aside.exists():
        aside = path.with_name(f"{path.name}.corrupt-{stamp}-{counter}")
        counter += 1
    for suffix in ("", "-wal", "-shm"):
        # Another process that found the same damage may have moved it already.
        with suppress(FileNotFoundError):
            Path(f"{path}{suffix}").replace(Path(f"{aside}{suffix}"))
    return aside
