"""What the sync layer's SQLite files share: opening in WAL mode, locks, moving aside.

Both the outbox (``sync.sqlite3``) and the event log (``events.sqlite3``) are one file each
under the state directory, in WAL mode (readers such as ``edgectl export-events`` never block
the daemon's writes), created ``0600`` whatever the umask (SQLite gives the ``-wal``/``-shm``
files the database's mode).

- ``synchronous``: ``FULL`` for the outbox — every commit is fsynced, so a committed
  ``seq``/``bdseq`` counter and a stored row survive a power cut (with ``NORMAL`` in WAL mode
  the last transactions before a power loss can roll back, and a ``seq`` already sent could be
  issued again). The event log uses ``NORMAL``: it is a best-effort local record, a power cut
  may lose its last second of events but never corrupts it, and it must not cost an fsync per
  batch on an SD card.
- A file SQLite reports as corrupt is renamed ``NAME.corrupt-YYYYmmddTHHMMSSZ`` with its
  ``-wal``/``-shm`` files and replaced by a fresh one: never a crash loop. Only the newest
  :data:`KEEP_CORRUPT` moved-aside copies of a database are kept.
- A file that is *locked* (another process holds a write or exclusive lock) is not corrupt:
  it is never moved aside. Opening retries with backoff for a while, then fails with a clear
  :class:`~edgectl.errors.SyncError`; the file, its rows and its command memory stay.
- :class:`WalStore` is the common part of both stores: open-or-recover at start, and
  :meth:`WalStore._failed` — translate an SQLite error to ``SyncError``, moving a file found
  corrupt at run time aside.
"""

from __future__ import annotations

import contextlib
import os
import re
import sqlite3
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

import structlog

from edgectl.errors import SyncError

__all__ = [
    "KEEP_CORRUPT",
    "LOCK_WAIT_S",
    "Transaction",
    "WalStore",
    "is_busy",
    "is_corrupt",
    "move_aside",
    "open_wal",
    "prune_corrupt",
]

log = structlog.get_logger("edgectl.sync.sqlite")

KEEP_CORRUPT = 3
"""Moved-aside copies kept per database (the newest); older ones are deleted."""
LOCK_WAIT_S = 30.0
"""How long opening waits for another process's lock before giving up."""
FILE_MODE = 0o600

Synchronous = Literal["FULL", "NORMAL"]


def _create_private(path: Path) -> None:
    """Create the database file ``0600`` (umask-independent) if it does not exist yet."""
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, FILE_MODE)
    except FileExistsError:
        return
    except OSError as exc:
        raise SyncError(f"cannot create {path}: {exc.strerror or exc}") from exc
    try:
        os.fchmod(fd, FILE_MODE)  # O_CREAT's mode is filtered by the umask
    finally:
        os.close(fd)


def open_wal(
    path: Path,
    schema: str,
    *,
    synchronous: Synchronous = "FULL",
    busy_timeout_s: float = 5.0,
    open_timeout_s: float | None = None,
) -> sqlite3.Connection:
    """Open (creating, ``0600``) a database in WAL mode, check it, create the schema.

    ``open_timeout_s`` bounds the wait for another connection's lock while opening (then
    ``database is locked``); ``busy_timeout_s`` is the wait of every later statement."""
    _create_private(path)
    first = busy_timeout_s if open_timeout_s is None else open_timeout_s
    db = sqlite3.connect(path, isolation_level=None, timeout=first)
    try:
        db.execute("PRAGMA journal_mode=WAL")
        db.execute(f"PRAGMA synchronous={synchronous}")
        _check(db)
        db.executescript(schema)
        db.execute(f"PRAGMA busy_timeout={round(busy_timeout_s * 1000)}")
    except BaseException:
        db.close()
        raise
    return db


def _check(db: sqlite3.Connection) -> None:
    row = db.execute("PRAGMA quick_check").fetchone()
    if row is None or row[0] != "ok":
        raise sqlite3.DatabaseError(f"quick_check: {row[0] if row else 'no answer'}")


def is_corrupt(exc: BaseException) -> bool:
    """True for the errors of a damaged file (as opposed to a full disk or a lock)."""
    name = getattr(exc, "sqlite_errorname", "")
    return name in ("SQLITE_CORRUPT", "SQLITE_NOTADB") or (
        type(exc) is sqlite3.DatabaseError and "malformed" in str(exc)
    )


def is_busy(exc: BaseException) -> bool:
    """True when another connection holds a lock (``database is locked``)."""
    name = str(getattr(exc, "sqlite_errorname", ""))
    return name.startswith(("SQLITE_BUSY", "SQLITE_LOCKED")) or "locked" in str(exc)


_STAMP = re.compile(r"^\.corrupt-(\d{8}T\d{6}Z)(?:-(\d+))?$")


def _moved_name(path: Path, now: datetime) -> Path:
    stamp = now.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
    candidate = path.with_name(f"{path.name}.corrupt-{stamp}")
    n = 1
    while candidate.exists():
        candidate = path.with_name(f"{path.name}.corrupt-{stamp}-{n}")
        n += 1
    return candidate


def move_aside(path: Path, exc: Exception, now: datetime, *, keep: int = KEEP_CORRUPT) -> Path:
    """Rename a corrupt database and its ``-wal``/``-shm`` files; return the new name.

    Older moved-aside copies beyond the newest ``keep`` are deleted (:func:`prune_corrupt`).
    """
    target = _moved_name(path, now)
    for suffix in ("", "-wal", "-shm"):
        src = path.with_name(path.name + suffix)
        if src.exists():
            try:
                src.rename(target.with_name(target.name + suffix))
            except OSError as mv_exc:
                raise SyncError(f"cannot move corrupt database {src} aside: {mv_exc}") from exc
    prune_corrupt(path, keep=keep)
    return target


def prune_corrupt(path: Path, *, keep: int = KEEP_CORRUPT) -> list[Path]:
    """Delete the moved-aside copies of ``path`` but the newest ``keep``; return the deleted."""
    groups: dict[tuple[str, int], list[Path]] = {}
    prefix = path.name
    try:
        entries = list(path.parent.iterdir())
    except OSError:
        return []
    for entry in entries:
        name = entry.name
        if not name.startswith(prefix + ".corrupt-"):
            continue
        base = name[len(prefix) :]
        for suffix in ("-wal", "-shm"):
            if base.endswith(suffix):
                base = base[: -len(suffix)]
                break
        match = _STAMP.match(base)
        if match is None:
            continue
        groups.setdefault((match[1], int(match[2] or 0)), []).append(entry)
    deleted: list[Path] = []
    for key in sorted(groups)[: max(len(groups) - keep, 0)]:
        for file in groups[key]:
            with contextlib.suppress(OSError):
                file.unlink()
                deleted.append(file)
    return deleted


class Transaction:
    """``BEGIN IMMEDIATE`` … ``COMMIT`` / ``ROLLBACK`` on an autocommit connection."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    def __enter__(self) -> None:
        self._db.execute("BEGIN IMMEDIATE")

    def __exit__(self, exc_type: type[BaseException] | None, *_: object) -> None:
        if exc_type is None:
            self._db.execute("COMMIT")
        else:
            self._db.execute("ROLLBACK")


def _read_only(directory: Path) -> str:
    """Why ``directory`` cannot be written, if that is the reason ("" if it is not)."""
    try:
        if os.statvfs(directory).f_flag & os.ST_RDONLY:
            return "the state directory is on a read-only file system"
    except OSError:
        return ""
    if not os.access(directory, os.W_OK):
        return "the state directory is not writable by this user"
    return ""


class WalStore:
    """One WAL database of the state directory: open (waiting out a lock, moving a corrupt
    file aside), and translate errors. Subclasses set :attr:`schema` and give
    :meth:`_recover` (and may extend :meth:`_open`)."""

    label = "database"  # for messages: "outbox", "event log"
    schema = ""
    synchronous: Synchronous = "FULL"
    path: Path
    recovered_from: Path | None
    _db: sqlite3.Connection
    _open_timeout_s: float | None = None

    def _open(self) -> sqlite3.Connection:
        return open_wal(
            self.path,
            self.schema,
            synchronous=self.synchronous,
            open_timeout_s=self._open_timeout_s,
        )

    def _recover(self, exc: Exception, now: datetime) -> None:
        """Move the corrupt file aside and open a fresh one (sets ``_db``)."""
        raise NotImplementedError

    def _start(self, state_dir: Path, now: datetime, lock_wait_s: float) -> None:
        """Create the directory, open the database; called once by ``__init__``."""
        try:
            state_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise SyncError(f"cannot create state directory {state_dir}: {exc}") from exc
        self._db = self._open_waiting(lock_wait_s, now)

    def _open_waiting(self, lock_wait_s: float, now: datetime) -> sqlite3.Connection:
        deadline = time.monotonic() + lock_wait_s
        pause = 0.05
        self._open_timeout_s = min(0.5, lock_wait_s)
        while True:
            try:
                return self._open()
            except sqlite3.Error as exc:
                if is_corrupt(exc):
                    self._recover(exc, now)
                    return self._db
                if not is_busy(exc):
                    why = _read_only(self.path.parent)
                    raise SyncError(f"cannot open {self.label} {self.path}: {why or exc}") from exc
                left = deadline - time.monotonic()
                if left <= 0:
                    raise SyncError(
                        f"{self.label} {self.path} is locked by another process "
                        f"(waited {lock_wait_s:g} s); it is not corrupt and was left as it is"
                    ) from exc
                log.warning("sqlite_locked_retrying", path=str(self.path), wait_s=round(pause, 3))
                time.sleep(min(pause, left))  # blocking: this runs once, at start, off the loop
                pause = min(pause * 2, 2.0)

    def _failed(self, what: str, exc: sqlite3.Error) -> SyncError:
        """Translate; a corrupt database found at run time is moved aside and replaced."""
        if is_corrupt(exc):
            with contextlib.suppress(sqlite3.Error):
                self._db.close()
            try:
                self._recover(exc, datetime.now(UTC))
            except SyncError as rec_exc:
                return rec_exc
            return SyncError(f"{self.label} {what} failed, corrupt database replaced: {exc}")
        return SyncError(f"{self.label} {what} failed: {exc}")
