"""Store-and-forward for ``events`` and ``telemetry``, and the sync layer's small durable state.

One SQLite database in WAL mode under the state directory (``sync.sqlite3``):

- ``outbox(id, stream, seq, created, payload)`` — messages not yet acknowledged by the broker.
  ``seq`` increases by one per message and per stream; the counter lives in ``counters`` and
  is bumped in the same transaction as the insert, so it survives restarts and never repeats.
  A row is deleted only after its PUBACK (:meth:`Outbox.ack`).
- ``counters(name, value)`` — the per-stream ``seq`` counters and the birth/death ``bdseq``.
- ``commands(id, response, created)`` — the answers of recently executed commands, so a
  duplicate ``id`` gets its original answer again after a restart instead of a second run.

Bounds: at most ``max_rows`` rows and ``max_age_s`` seconds; when it must drop, it drops the
oldest first and returns how many, so the caller can emit an ``OUTBOX_DROPPED`` event and count.

A database that SQLite reports as corrupt (or that is not a database), at open or later, is
moved aside — renamed ``sync.sqlite3.corrupt-YYYYmmddTHHMMSSZ`` together with its
``-wal``/``-shm`` files — reported in :attr:`Outbox.recovered_from` and the log, and replaced
by a fresh one: never a crash loop. The ``seq``/``bdseq`` counters are carried over (from
memory, or salvaged from the moved file when still readable) so the centre sees a gap in
``seq`` — data lost, as it was — rather than a restart at 1. The rows themselves are lost.

Everything here is synchronous and cheap (one short transaction per call, ``synchronous=NORMAL``
in WAL mode: no fsync per commit); the service calls it from its own tasks, never from the
control loop. SQLite errors are translated to :class:`edgectl.errors.SyncError`.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import structlog

from edgectl.errors import SyncError
from edgectl.sync.clock import iso_ms
from edgectl.sync.sqlite import Transaction, is_corrupt, move_aside, open_wal

log = structlog.get_logger("edgectl.sync.outbox")

DB_NAME = "sync.sqlite3"
STREAMS = ("events", "telemetry")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    stream TEXT NOT NULL,
    seq INTEGER NOT NULL,
    created REAL NOT NULL,
    payload TEXT NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS outbox_stream_seq ON outbox(stream, seq);
CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS commands (
    id TEXT PRIMARY KEY,
    response TEXT NOT NULL,
    created REAL NOT NULL
);
"""


@dataclass(frozen=True, slots=True)
class OutboxRow:
    """One stored message. ``payload`` already carries ``seq`` and ``ts``."""

    id: int
    stream: str
    seq: int
    created: float  # POSIX seconds (the service's clock)
    payload: dict[str, object]


class Outbox:
    """The sync layer's SQLite store. Not thread-safe: one owner (the sync service)."""

    def __init__(
        self,
        state_dir: Path,
        *,
        max_rows: int = 100_000,
        max_age_s: float = 7 * 86400.0,
        command_log_size: int = 1000,
        now: datetime | None = None,
    ) -> None:
        self.path = state_dir / DB_NAME
        self.max_rows = max_rows
        self.max_age_s = max_age_s
        self.command_log_size = command_log_size
        self.recovered_from: Path | None = None  # where a corrupt database was moved
        self.dropped = 0  # rows dropped by the bounds since start
        try:
            state_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise SyncError(f"cannot create state directory {state_dir}: {exc}") from exc
        self._known: dict[str, int] = {}  # counters as last seen, to re-seed after a recovery
        try:
            self._db = self._open()
            self._known.update(
                (str(k), int(v)) for k, v in self._db.execute("SELECT name, value FROM counters")
            )
        except sqlite3.DatabaseError as exc:
            with contextlib.suppress(AttributeError, sqlite3.Error):
                self._db.close()
            self._recover(exc, now or datetime.now(UTC))

    def _recover(self, exc: Exception, now: datetime) -> None:
        """Move the corrupt file aside, open a fresh one, carry the counters over."""
        self._move_aside(exc, now)
        salvaged = self._salvage_counters()
        try:
            self._db = self._open()
            with self._tx():
                for name, value in {**salvaged, **self._known}.items():
                    self._db.execute(
                        "INSERT OR REPLACE INTO counters(name, value) VALUES (?, ?)", (name, value)
                    )
        except sqlite3.Error as exc2:
            raise SyncError(f"cannot open outbox {self.path}: {exc2}") from exc2

    def _salvage_counters(self) -> dict[str, int]:
        """Best effort: the seq/bdseq counters of the moved-aside file, if still readable."""
        if self.recovered_from is None:
            return {}
        try:
            db = sqlite3.connect(f"file:{self.recovered_from}?mode=ro", uri=True)
            try:
                rows = db.execute("SELECT name, value FROM counters").fetchall()
            finally:
                db.close()
        except sqlite3.Error:
            return {}
        return {str(name): int(value) for name, value in rows}

    def _failed(self, what: str, exc: sqlite3.Error) -> SyncError:
        """Translate; a corrupt database found at run time is moved aside and replaced."""
        if is_corrupt(exc):
            with contextlib.suppress(sqlite3.Error):
                self._db.close()
            try:
                self._recover(exc, datetime.now(UTC))
            except SyncError as rec_exc:
                return rec_exc
            return SyncError(f"outbox {what} failed, corrupt database replaced: {exc}")
        return SyncError(f"outbox {what} failed: {exc}")

    # --- opening and recovery ---

    def _open(self) -> sqlite3.Connection:
        return open_wal(self.path, _SCHEMA)

    def _move_aside(self, exc: Exception, now: datetime) -> None:
        target = move_aside(self.path, exc, now)
        self.recovered_from = target
        log.error(
            "outbox_corrupt_moved_aside", path=str(self.path), moved_to=str(target), error=str(exc)
        )

    def close(self) -> None:
        try:
            self._db.close()
        except sqlite3.Error as exc:
            raise SyncError(f"closing outbox: {exc}") from exc

    # --- counters ---

    def _counter(self, name: str) -> int:
        row = self._db.execute("SELECT value FROM counters WHERE name = ?", (name,)).fetchone()
        return 0 if row is None else int(row[0])

    def counter(self, name: str) -> int:
        """Current value of a counter (last ``seq`` of a stream, ``bdseq``), 0 if never set."""
        try:
            return self._counter(name)
        except sqlite3.Error as exc:
            raise self._failed("read", exc) from exc

    def bump(self, name: str) -> int:
        """Increase a counter by one and return the new value (durably)."""
        try:
            with self._tx():
                value = self._counter(name) + 1
                self._db.execute(
                    "INSERT INTO counters(name, value) VALUES (?, ?) "
                    "ON CONFLICT(name) DO UPDATE SET value = excluded.value",
                    (name, value),
                )
        except sqlite3.Error as exc:
            raise self._failed("write", exc) from exc
        self._known[name] = value
        return value

    # --- messages ---

    def append(self, stream: str, body: Mapping[str, object], *, now: datetime) -> OutboxRow:
        """Store a message of ``stream``; assigns the next ``seq`` and ``ts``.

        Returns the stored row. Enforcing the bounds is :meth:`enforce_bounds`' job.
        """
        if stream not in STREAMS:
            raise ValueError(f"unknown outbox stream {stream!r}")
        created = now.timestamp()
        try:
            with self._tx():
                seq = self._counter(f"seq:{stream}") + 1
                payload: dict[str, object] = {"seq": seq, "ts": iso_ms(now), **body}
                payload["seq"] = seq
                text = json.dumps(payload, separators=(",", ":"), ensure_ascii=False, default=str)
                cur = self._db.execute(
                    "INSERT INTO outbox(stream, seq, created, payload) VALUES (?, ?, ?, ?)",
                    (stream, seq, created, text),
                )
                self._db.execute(
                    "INSERT INTO counters(name, value) VALUES (?, ?) "
                    "ON CONFLICT(name) DO UPDATE SET value = excluded.value",
                    (f"seq:{stream}", seq),
                )
                rowid = int(cur.lastrowid or 0)
        except sqlite3.Error as exc:
            raise self._failed("write", exc) from exc
        self._known[f"seq:{stream}"] = seq
        return OutboxRow(rowid, stream, seq, created, payload)

    def pending(self, limit: int = 100, after_id: int = 0) -> list[OutboxRow]:
        """Oldest rows first (insertion order), with ``id > after_id``."""
        try:
            rows = self._db.execute(
                "SELECT id, stream, seq, created, payload FROM outbox WHERE id > ? "
                "ORDER BY id LIMIT ?",
                (after_id, limit),
            ).fetchall()
        except sqlite3.Error as exc:
            raise self._failed("read", exc) from exc
        out: list[OutboxRow] = []
        for rid, stream, seq, created, text in rows:
            try:
                payload = json.loads(text)
            except ValueError:
                payload = {"seq": seq, "corrupt": True}
            out.append(OutboxRow(int(rid), str(stream), int(seq), float(created), payload))
        return out

    def ack(self, row_id: int) -> None:
        """The broker acknowledged the row: forget it."""
        try:
            self._db.execute("DELETE FROM outbox WHERE id = ?", (row_id,))
        except sqlite3.Error as exc:
            raise self._failed("write", exc) from exc

    def ack_many(self, row_ids: Sequence[int]) -> None:
        """Forget several acknowledged rows in one transaction."""
        try:
            with self._tx():
                self._db.executemany("DELETE FROM outbox WHERE id = ?", [(i,) for i in row_ids])
        except sqlite3.Error as exc:
            raise self._failed("write", exc) from exc

    @property
    def depth(self) -> int:
        try:
            row = self._db.execute("SELECT COUNT(*) FROM outbox").fetchone()
        except sqlite3.Error as exc:
            raise self._failed("read", exc) from exc
        return int(row[0])

    def enforce_bounds(self, *, now: datetime) -> int:
        """Drop the oldest rows beyond ``max_rows`` or older than ``max_age_s``; return how many."""
        cutoff = now.timestamp() - self.max_age_s
        try:
            with self._tx():
                n_age = self._db.execute("DELETE FROM outbox WHERE created < ?", (cutoff,)).rowcount
                excess = self._db.execute("SELECT COUNT(*) FROM outbox").fetchone()[0]
                excess = int(excess) - self.max_rows
                n_rows = 0
                if excess > 0:
                    n_rows = self._db.execute(
                        "DELETE FROM outbox WHERE id IN "
                        "(SELECT id FROM outbox ORDER BY id LIMIT ?)",
                        (excess,),
                    ).rowcount
        except sqlite3.Error as exc:
            raise self._failed("write", exc) from exc
        dropped = max(n_age, 0) + max(n_rows, 0)
        self.dropped += dropped
        return dropped

    # --- command log (duplicate ids) ---

    def command_response(self, command_id: str) -> dict[str, object] | None:
        try:
            row = self._db.execute(
                "SELECT response FROM commands WHERE id = ?", (command_id,)
            ).fetchone()
        except sqlite3.Error as exc:
            raise self._failed("read", exc) from exc
        if row is None:
            return None
        try:
            value = json.loads(row[0])
        except ValueError:
            return None
        return value if isinstance(value, dict) else None

    def remember_command(
        self, command_id: str, response: Mapping[str, object], *, now: datetime
    ) -> None:
        text = json.dumps(dict(response), separators=(",", ":"), ensure_ascii=False)
        try:
            with self._tx():
                self._db.execute(
                    "INSERT OR REPLACE INTO commands(id, response, created) VALUES (?, ?, ?)",
                    (command_id, text, now.timestamp()),
                )
                self._db.execute(
                    "DELETE FROM commands WHERE id NOT IN "
                    "(SELECT id FROM commands ORDER BY created DESC LIMIT ?)",
                    (self.command_log_size,),
                )
        except sqlite3.Error as exc:
            raise self._failed("write", exc) from exc

    # --- helpers ---

    def _tx(self) -> Transaction:
        return Transaction(self._db)
