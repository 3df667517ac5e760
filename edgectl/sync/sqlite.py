"""What the sync layer's SQLite files share: opening in WAL mode, transactions, moving aside.

Both the outbox (``sync.sqlite3``) and the event log (``events.sqlite3``) are one file each
under the state directory, in WAL mode with ``synchronous=NORMAL`` (no fsync per commit, and
readers such as ``edgectl export-events`` never block the daemon's writes). A file SQLite
reports as corrupt is renamed ``NAME.corrupt-YYYYmmddTHHMMSSZ`` with its ``-wal``/``-shm``
files and replaced by a fresh one: never a crash loop.
"""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from pathlib import Path

from edgectl.errors import SyncError

__all__ = ["Transaction", "is_corrupt", "move_aside", "open_wal"]


def open_wal(path: Path, schema: str) -> sqlite3.Connection:
    """Open (creating) a database in WAL mode, check it, create the schema."""
    db = sqlite3.connect(path, isolation_level=None, timeout=5.0)
    try:
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        _check(db)
        db.executescript(schema)
    except BaseException:
        db.close()
        raise
    return db


def _check(db: sqlite3.Connection) -> None:
    row = db.execute("PRAGMA quick_check").fetchone()
    if row is None or row[0] != "ok":
        raise sqlite3.DatabaseError(f"quick_check: {row[0] if row else 'no answer'}")


def is_corrupt(exc: sqlite3.Error) -> bool:
    """True for the errors of a damaged file (as opposed to a full disk or a lock)."""
    name = getattr(exc, "sqlite_errorname", "")
    return name in ("SQLITE_CORRUPT", "SQLITE_NOTADB") or (
        type(exc) is sqlite3.DatabaseError and "malformed" in str(exc)
    )


def _moved_name(path: Path, now: datetime) -> Path:
    stamp = now.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
    candidate = path.with_name(f"{path.name}.corrupt-{stamp}")
    n = 1
    while candidate.exists():
        candidate = path.with_name(f"{path.name}.corrupt-{stamp}-{n}")
        n += 1
    return candidate


def move_aside(path: Path, exc: Exception, now: datetime) -> Path:
    """Rename a corrupt database and its ``-wal``/``-shm`` files; return the new name."""
    target = _moved_name(path, now)
    for suffix in ("", "-wal", "-shm"):
        src = path.with_name(path.name + suffix)
        if src.exists():
            try:
                src.rename(target.with_name(target.name + suffix))
            except OSError as mv_exc:
                raise SyncError(f"cannot move corrupt database {src} aside: {mv_exc}") from exc
    return target


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
