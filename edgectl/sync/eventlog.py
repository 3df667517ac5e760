"""The daemon's event log: every hi-res event, kept for a while, for ``edgectl export-events``.

The outbox forgets an ``events`` message once the broker has acknowledged it; the centre keeps
the long history. The junction keeps its own for ``[mqtt] event_log_max_age_s`` (7 days by
default), so that any recent time range can be written as ATSPM CSV on the cabinet computer,
whether or not the centre ever received it.

One SQLite file in WAL mode under the state directory (``events.sqlite3``):

- ``events(t_ms, code, param)`` — one row per event: the UTC time it was stamped with, in
  milliseconds since the epoch, and the Indiana code and parameter; rows in arrival order,
  indexed by time.
- ``meta(name, value)`` — ``intersection_id``: the junction the events are of.

Written by the sync service's batch task (:meth:`EventStore.record`, one transaction per
batch, never from the control loop) and pruned there (:meth:`EventStore.prune`): every
:data:`PRUNE_PERIOD_S`, the rows older than ``max_age_s``, then the oldest beyond
``max_rows``, at most :data:`PRUNE_CHUNK` rows per pass so that a long backlog (a daemon
stopped for days) never stalls the loop. A corrupt file is moved aside and replaced, as the
outbox's (:class:`~edgectl.sync.sqlite.WalStore`); ``synchronous=NORMAL``: a best-effort
record, unlike the outbox. Read by :class:`EventLogReader` over a read-only connection: safe
while the daemon writes.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import NamedTuple, Self

import structlog

from edgectl.errors import SyncError
from edgectl.sync.sqlite import LOCK_WAIT_S, Transaction, WalStore, move_aside

__all__ = [
    "DB_NAME",
    "PRUNE_CHUNK",
    "PRUNE_PERIOD_S",
    "EventLogReader",
    "EventStore",
    "LoggedEvent",
]

log = structlog.get_logger("edgectl.sync.eventlog")

DB_NAME = "events.sqlite3"
PRUNE_PERIOD_S = 60.0
"""How often the old rows are deleted (more often while a backlog remains)."""
PRUNE_CHUNK = 1000
"""Rows deleted in one pass at most: some milliseconds of SQLite (a busy junction logs a few
hundred events a minute)."""

_SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    t_ms INTEGER NOT NULL,
    code INTEGER NOT NULL,
    param INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS events_t ON events(t_ms);
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
"""


class LoggedEvent(NamedTuple):
    """One stored event; ``t`` is POSIX seconds (what the ATSPM writer takes)."""

    t_ms: int
    code: int
    param: int

    @property
    def t(self) -> float:
        return self.t_ms / 1000.0

    @property
    def when(self) -> datetime:
        return datetime.fromtimestamp(self.t, UTC)


def _ms(when: datetime) -> int:
    return round(when.timestamp() * 1000)


class EventStore(WalStore):
    """The writer. Not thread-safe: one owner (the sync service)."""

    label = "event log"
    schema = _SCHEMA
    synchronous = "NORMAL"  # best-effort record: a power cut may lose the last batch, no more

    def __init__(
        self,
        state_dir: Path,
        *,
        intersection_id: str,
        max_age_s: float = 7 * 86400.0,
        max_rows: int = 5_000_000,
        lock_wait_s: float = LOCK_WAIT_S,
        now: datetime | None = None,
    ) -> None:
        self.path = state_dir / DB_NAME
        self.intersection_id = intersection_id
        self.max_age_s = max_age_s
        self.max_rows = max_rows
        self.recovered_from: Path | None = None  # where a corrupt file was moved
        self.pruned = 0  # rows deleted by the bounds since start
        self._next_prune = -float("inf")
        self._start(state_dir, now or datetime.now(UTC), lock_wait_s)

    def _open(self) -> sqlite3.Connection:
        db = super()._open()
        try:
            db.execute(
                "INSERT OR REPLACE INTO meta(name, value) VALUES ('intersection_id', ?)",
                (self.intersection_id,),
            )
        except BaseException:
            db.close()
            raise
        return db

    def _recover(self, exc: Exception, now: datetime) -> None:
        self.recovered_from = move_aside(self.path, exc, now)
        log.error(
            "event_log_corrupt_moved_aside",
            path=str(self.path),
            moved_to=str(self.recovered_from),
            error=str(exc),
        )
        try:
            self._db = self._open()
        except sqlite3.Error as exc2:
            raise SyncError(f"cannot open event log {self.path}: {exc2}") from exc2

    def record(self, events: Sequence[tuple[datetime, int, int]]) -> None:
        """Store events ``(utc time, code, param)`` in one transaction."""
        rows = [(_ms(t), int(code), int(param)) for t, code, param in events]
        try:
            with Transaction(self._db):
                self._db.executemany("INSERT INTO events(t_ms, code, param) VALUES (?, ?, ?)", rows)
        except sqlite3.Error as exc:
            raise self._failed("write", exc) from exc

    def prune(self, now: datetime) -> int:
        """Delete what the bounds no longer keep, when a pass is due; return how many rows."""
        moment = now.timestamp()
        if moment < self._next_prune:
            return 0
        cutoff = round((moment - self.max_age_s) * 1000)
        try:
            with Transaction(self._db):
                n_age = self._db.execute(
                    "DELETE FROM events WHERE rowid IN "
                    "(SELECT rowid FROM events WHERE t_ms < ? ORDER BY t_ms LIMIT ?)",
                    (cutoff, PRUNE_CHUNK),
                ).rowcount
                n_rows = self._prune_rows(PRUNE_CHUNK - n_age)
        except sqlite3.Error as exc:
            raise self._failed("prune", exc) from exc
        deleted = max(n_age, 0) + n_rows
        self.pruned += deleted
        # a full pass means more is waiting: come back at the next batch
        self._next_prune = moment + (0.0 if deleted >= PRUNE_CHUNK else PRUNE_PERIOD_S)
        return deleted

    def _prune_rows(self, limit: int) -> int:
        """The oldest rows beyond ``max_rows``; rowids grow by one per row, so their span bounds
        the count without a COUNT(*) scan."""
        first, last = self._db.execute("SELECT min(rowid), max(rowid) FROM events").fetchone()
        if limit <= 0 or first is None or last - first + 1 <= self.max_rows:
            return 0
        below = min(last - self.max_rows + 1, first + limit)
        return max(self._db.execute("DELETE FROM events WHERE rowid < ?", (below,)).rowcount, 0)

    def close(self) -> None:
        try:
            self._db.close()
        except sqlite3.Error as exc:
            raise SyncError(f"closing event log: {exc}") from exc


class EventLogReader:
    """Reads the event log of a state directory, read-only, while the daemon may write it.

    Use as a context manager; raises :class:`~edgectl.errors.SyncError` when there is no
    log or it cannot be read.
    """

    def __init__(self, state_dir: Path) -> None:
        self.path = state_dir / DB_NAME
        if not self.path.is_file():
            raise SyncError(f"no event log at {self.path}")
        try:
            self._db = sqlite3.connect(f"{self.path.resolve().as_uri()}?mode=ro", uri=True)
            row = self._db.execute(
                "SELECT value FROM meta WHERE name = 'intersection_id'"
            ).fetchone()
        except sqlite3.Error as exc:
            raise SyncError(f"cannot read event log {self.path}: {exc}") from exc
        self.intersection_id: str | None = None if row is None else str(row[0])

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        with contextlib.suppress(sqlite3.Error):
            self._db.close()

    def span(self) -> tuple[datetime, datetime] | None:
        """Times of the first and the last stored event; None when the log is empty."""
        try:
            first, last = self._db.execute("SELECT min(t_ms), max(t_ms) FROM events").fetchone()
        except sqlite3.Error as exc:
            raise SyncError(f"cannot read event log {self.path}: {exc}") from exc
        if first is None:
            return None
        return LoggedEvent(first, 0, 0).when, LoggedEvent(last, 0, 0).when

    def events(
        self, start: datetime | None = None, end: datetime | None = None
    ) -> Iterator[LoggedEvent]:
        """Events with ``start <= time < end`` (either open), by time, arrival order kept."""
        low = -(2**62) if start is None else _ms(start)
        high = 2**62 if end is None else _ms(end)
        try:
            cursor = self._db.execute(
                "SELECT t_ms, code, param FROM events WHERE t_ms >= ? AND t_ms < ? "
                "ORDER BY t_ms, rowid",
                (low, high),
            )
            for t_ms, code, param in cursor:
                yield LoggedEvent(int(t_ms), int(code), int(param))
        except sqlite3.Error as exc:
            raise SyncError(f"cannot read event log {self.path}: {exc}") from exc
