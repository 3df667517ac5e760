"""Store-and-forward for ``events`` and ``telemetry``, and the sync layer's small durable state.

One SQLite database in WAL mode under the state directory (``sync.sqlite3``):

- ``outbox(id, stream, seq, created, payload)`` — messages not yet acknowledged by the broker.
  ``seq`` increases by one per message and per stream; the counter lives in ``counters`` and
  is bumped in the same transaction as the insert, so it survives restarts and never repeats.
  A row is deleted only after its PUBACK (:meth:`Outbox.ack`).
- ``counters(name, value)`` — the per-stream ``seq`` counters and the birth/death ``bdseq``.
- ``commands(id, response, created)`` — the answers of recently executed commands, so a
  duplicate ``id`` gets its original answer again after a restart instead of a second run.

Bounds: at most ``max_rows`` rows, ``max_bytes`` bytes of stored payload (an SD card is not
endless) and ``max_age_s`` seconds; when it must drop, it drops the oldest first and returns how
many, so the caller can emit an ``OUTBOX_DROPPED`` event and count.

A *locked* database (another process holds its lock) is not corrupt: opening waits for it up
to ``lock_wait_s`` with backoff, then fails with a clear SyncError; nothing is moved aside.
On a full disk :meth:`Outbox.bump` still returns the next ``bdseq`` (from memory, persisted by
the next successful write), so the MQTT link comes up.

A database that SQLite reports as corrupt (or that is not a database), at open or later, is
moved aside — renamed ``sync.sqlite3.corrupt-YYYYmmddTHHMMSSZ`` together with its
``-wal``/``-shm`` files — reported in :attr:`Outbox.recovered_from` and the log, and replaced
by a fresh one: never a crash loop. The ``seq``/``bdseq`` counters are carried over (from
memory, or salvaged from the moved file when still readable) so the centre sees a gap in
``seq`` — data lost, as it was — rather than a restart at 1. The rows themselves are lost.

Everything here is synchronous and short (one transaction per call, ``synchronous=FULL`` in
WAL mode: one fsync per commit, so that a committed ``seq``/``bdseq`` never repeats after a
power cut); the service calls it from its own tasks, never from the control loop. SQLite
errors are translated to :class:`edgectl.errors.SyncError`. The file is created ``0600``.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import structlog

from edgectl.errors import SyncError
from edgectl.sync.clock import iso_ms
from edgectl.sync.sqlite import LOCK_WAIT_S, Transaction, WalStore, move_aside

log = structlog.get_logger("edgectl.sync.outbox")

DB_NAME = "sync.sqlite3"
DEFAULT_MAX_BYTES = 256 * 1024 * 1024
"""Stored payload bytes kept at most by default: a small share of a cabinet's SD card."""
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


class Outbox(WalStore):
    """The sync layer's SQLite store. Not thread-safe: one owner (the sync service)."""

    label = "outbox"
    schema = _SCHEMA
    synchronous = "FULL"  # a committed seq/bdseq must survive a power cut (see sync.sqlite)

    def __init__(
        self,
        state_dir: Path,
        *,
        max_rows: int = 100_000,
        max_age_s: float = 7 * 86400.0,
        max_bytes: int = DEFAULT_MAX_BYTES,
        command_log_size: int = 1000,
        command_log_age_s: float = 3600.0,
        lock_wait_s: float = LOCK_WAIT_S,
        now: datetime | None = None,
    ) -> None:
        self.path = state_dir / DB_NAME
        self.max_rows = max_rows
        self.max_age_s = max_age_s
        self.max_bytes = max_bytes
        self.command_log_size = command_log_size  # kept at least, however old
        self.command_log_age_s = command_log_age_s  # kept at least this long, however many
        self.recovered_from: Path | None = None  # where a corrupt database was moved
        self.dropped = 0  # rows dropped by the bounds since start
        self._known: dict[str, int] = {}  # counters as last seen, to re-seed after a recovery
        self._unsaved: set[str] = set()  # counters bumped in memory only (a full disk)
        self._start(state_dir, now or datetime.now(UTC), lock_wait_s)

    def _open(self) -> sqlite3.Connection:
        db = super()._open()
        try:
            for name, value in db.execute("SELECT name, value FROM counters"):
                key = str(name)
                self._known[key] = max(int(value), self._known.get(key, 0))
        except BaseException:
            db.close()
            raise
        return db

    def _recover(self, exc: Exception, now: datetime) -> None:
        """Move the corrupt file aside, open a fresh one, carry the counters over."""
        self._move_aside(exc, now)
        salvaged = self._salvage_counters()
        for name, value in salvaged.items():
            self._known[name] = max(value, self._known.get(name, 0))
        try:
            self._db = self._open()
            with self._tx():
                for name, value in self._known.items():
                    self._db.execute(
                        "INSERT OR REPLACE INTO counters(name, value) VALUES (?, ?)", (name, value)
                    )
        except sqlite3.Error as exc2:
            raise SyncError(f"cannot open outbox {self.path}: {exc2}") from exc2
        self._unsaved.clear()

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

    # --- opening and recovery ---

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
        """Increase a counter by one and return the new value, durably when the disk allows.

        When it cannot be written (a full disk, an I/O error), the value is taken one past the
        last known one in memory, the failure is logged (``counter_not_persisted``), and the
        next successful write of this outbox persists it: the MQTT link must come up on a full
        disk, and the value never goes back while the process runs."""
        try:
            with self._tx():
                self._persist_unsaved()
                value = max(self._counter(name), self._known.get(name, 0)) + 1
                self._db.execute(
                    "INSERT INTO counters(name, value) VALUES (?, ?) "
                    "ON CONFLICT(name) DO UPDATE SET value = excluded.value",
                    (name, value),
                )
        except sqlite3.Error as exc:
            error = self._failed("write", exc)
            value = self._known.get(name, 0) + 1
            self._unsaved.add(name)
            log.error(
                "counter_not_persisted",
                path=str(self.path),
                counter=name,
                value=value,
                error=str(error),
            )
        else:
            self._saved()
        self._known[name] = value
        return value

    def _persist_unsaved(self) -> None:
        """Inside a transaction: write the counters that were bumped in memory only."""
        for name in sorted(self._unsaved):
            self._db.execute(
                "INSERT INTO counters(name, value) VALUES (?, ?) "
                "ON CONFLICT(name) DO UPDATE SET value = max(value, excluded.value)",
                (name, self._known[name]),
            )

    def _saved(self) -> None:
        """A transaction that ran :meth:`_persist_unsaved` committed."""
        if self._unsaved:
            log.info("counter_persisted", counters=sorted(self._unsaved))
            self._unsaved.clear()

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
                self._persist_unsaved()
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
        self._saved()
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
        """Drop the oldest rows beyond ``max_rows``, older than ``max_age_s``, or beyond
        ``max_bytes`` of stored payload; return how many."""
        cutoff = now.timestamp() - self.max_age_s
        try:
            with self._tx():
                self._persist_unsaved()
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
                n_bytes = self._drop_beyond_bytes()
        except sqlite3.Error as exc:
            raise self._failed("write", exc) from exc
        self._saved()
        dropped = max(n_age, 0) + max(n_rows, 0) + n_bytes
        self.dropped += dropped
        return dropped

    def _drop_beyond_bytes(self) -> int:
        """The oldest rows whose payloads push the total beyond ``max_bytes``.

        The pages in use bound the payload bytes from above, so the exact (scanning) sum is
        only computed when the file itself has grown beyond the bound."""
        page_size = self._db.execute("PRAGMA page_size").fetchone()[0]
        pages = self._db.execute("PRAGMA page_count").fetchone()[0]
        free = self._db.execute("PRAGMA freelist_count").fetchone()[0]
        if (int(pages) - int(free)) * int(page_size) <= self.max_bytes:
            return 0
        total = self._db.execute(
            "SELECT COALESCE(SUM(LENGTH(CAST(payload AS BLOB))), 0) FROM outbox"
        ).fetchone()[0]
        over = int(total) - self.max_bytes
        if over <= 0:
            return 0
        row = self._db.execute(
            "SELECT id FROM (SELECT id, SUM(LENGTH(CAST(payload AS BLOB))) "
            "OVER (ORDER BY id) AS upto FROM outbox) WHERE upto >= ? ORDER BY id LIMIT 1",
            (over,),
        ).fetchone()
        if row is None:
            return 0
        return max(self._db.execute("DELETE FROM outbox WHERE id <= ?", (row[0],)).rowcount, 0)

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
                # by age (a replay within its max age must find it), and the newest few
                self._db.execute(
                    "DELETE FROM commands WHERE created < ? AND id NOT IN "
                    "(SELECT id FROM commands ORDER BY created DESC LIMIT ?)",
                    (now.timestamp() - self.command_log_age_s, self.command_log_size),
                )
        except sqlite3.Error as exc:
            raise self._failed("write", exc) from exc

    # --- helpers ---

    def _tx(self) -> Transaction:
        return Transaction(self._db)
