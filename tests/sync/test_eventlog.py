"""The daemon's event log: what the sync service keeps of every event, and for how long."""

from __future__ import annotations

import asyncio
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

from edgectl.sync.eventlog import DB_NAME, PRUNE_CHUNK, EventLogReader, EventStore, LoggedEvent
from tests.sync.conftest import IID, FakeHandler, eventually, make_service, running

T0 = datetime(2026, 11, 21, 6, 0, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def stored(state_dir: Path) -> list[tuple[int, int, int]]:
    with EventLogReader(state_dir) as log:
        return [(e.t_ms - round(T0.timestamp() * 1000), e.code, e.param) for e in log.events()]


def test_range_order_and_meta(tmp_path: Path) -> None:
    store = EventStore(tmp_path, intersection_id=IID)
    # a later batch may carry an event stamped earlier (a command refused between ticks)
    store.record([(at(1.0), 1, 2), (at(1.0), 82, 9), (at(2.5), 8, 2)])
    store.record([(at(0.95), 201, 3), (at(3.0), 10, 2)])
    with EventLogReader(tmp_path) as log:  # read-only, beside the open writer (WAL)
        assert log.intersection_id == IID
        assert log.span() == (at(0.95), at(3.0))
        assert list(log.events(at(1.0), at(3.0))) == [
            LoggedEvent(round(at(1.0).timestamp() * 1000), 1, 2),
            LoggedEvent(round(at(1.0).timestamp() * 1000), 82, 9),  # arrival order kept
            LoggedEvent(round(at(2.5).timestamp() * 1000), 8, 2),
        ]
        assert [e.code for e in log.events(end=at(1.0))] == [201]
        assert [e.code for e in log.events(start=at(2.6))] == [10]
        assert next(iter(log.events())).when == at(0.95)
    store.close()
    assert sqlite3.connect(tmp_path / DB_NAME).execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_prune_by_age_periodically(tmp_path: Path) -> None:
    store = EventStore(tmp_path, intersection_id=IID, max_age_s=3600.0)
    store.record([(at(t), 82, 1) for t in (0.0, 10.0, 3000.0)])
    assert store.prune(at(3605.0)) == 1  # older than an hour: the event at 0 s
    store.record([(at(3700.0), 82, 1)])
    assert store.prune(at(3620.0)) == 0  # not due yet (a pass a minute)
    assert store.prune(at(3700.0)) == 1  # the event at 10 s
    assert [t for t, _, _ in stored(tmp_path)] == [3_000_000, 3_700_000]
    assert store.pruned == 2


def test_prune_by_rows_in_bounded_passes(tmp_path: Path) -> None:
    store = EventStore(tmp_path, intersection_id=IID, max_rows=1000)
    total = 1000 + 2 * PRUNE_CHUNK + 10
    store.record([(at(i * 0.001), 82, i % 64) for i in range(total)])
    passes = []
    now = at(10.0)
    while n := store.prune(now):
        passes.append(n)  # a full pass is followed by another at the next batch
    assert passes == [PRUNE_CHUNK, PRUNE_CHUNK, 10]
    assert store.prune(now + timedelta(seconds=59)) == 0
    left = stored(tmp_path)
    assert len(left) == 1000
    assert left[0][0] == total - 1000  # the oldest went first


def test_off_with_zero_age(tmp_path: Path, handler: FakeHandler) -> None:
    service = make_service("", tmp_path, handler, event_log_max_age_s=0)
    service.add_events([(at(0), 1, 2)])
    service._forward.flush()
    assert not (tmp_path / DB_NAME).exists()


def test_corrupt_file_moved_aside(tmp_path: Path) -> None:
    (tmp_path / DB_NAME).write_bytes(b"not a database" * 500)
    store = EventStore(tmp_path, intersection_id=IID, now=T0)
    assert store.recovered_from is not None
    assert store.recovered_from.name == f"{DB_NAME}.corrupt-20261121T060000Z"
    store.record([(at(1), 1, 2)])
    assert stored(tmp_path) == [(1000, 1, 2)]


async def test_the_service_records_every_event_it_is_given(
    tmp_path: Path, handler: FakeHandler
) -> None:
    """Without a broker (url empty) too: the batch task stores events in the outbox and the log."""
    base = datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=60)
    ms0 = round(base.timestamp() * 1000)

    def rows() -> list[tuple[int, int, int]]:
        with EventLogReader(tmp_path) as log:
            return [(e.t_ms - ms0, e.code, e.param) for e in log.events()]

    service = make_service("", tmp_path, handler, outbox_max_rows=10)
    async with running(service):
        service.add_events([(base, 1, 2), (base, 1, 6)])
        service.add_events([(base + timedelta(seconds=12.3), 4, 2)])
        service.add_events([(base + timedelta(seconds=12.3), 8, 2)])
        await eventually(lambda: (tmp_path / DB_NAME).exists() and len(rows()) == 4)
        for i in range(15):  # the outbox drops 5 rows: its 206 event lands in the log as well
            service.add_telemetry({"i": i})
        await eventually(lambda: len(rows()) >= 5)
        service.add_events([(base + timedelta(seconds=20), 10, 2)])
        await asyncio.sleep(0)
    # close() flushed what the last batch had not taken yet
    got = rows()
    assert got[:5] == [(0, 1, 2), (0, 1, 6), (12_300, 4, 2), (12_300, 8, 2), (20_000, 10, 2)]
    # the outbox's drops, stamped now (after the others): 15 telemetry rows beyond 10 at least
    assert got[5:]
    assert {code for _, code, _ in got[5:]} == {206}
    assert got[5][2] >= 5
