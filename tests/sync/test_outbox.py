"""The SQLite outbox: seq, persistence, bounds, corrupt-file recovery."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

from edgectl.sync.outbox import DB_NAME, Outbox
from tests.sync.conftest import FakeHandler, make_service

T0 = datetime(2026, 11, 21, 6, 0, 0, tzinfo=UTC)


def test_seq_per_stream_persists_and_ack_deletes(tmp_path: Path) -> None:
    ob = Outbox(tmp_path)
    rows = [ob.append("events", {"events": [[1]]}, now=T0) for _ in range(3)]
    tel = ob.append("telemetry", {"x": 1}, now=T0)
    assert [r.seq for r in rows] == [1, 2, 3]
    assert tel.seq == 1
    assert rows[0].payload == {"seq": 1, "ts": "2026-11-21T06:00:00.000Z", "events": [[1]]}
    ob.ack(rows[0].id)
    assert [r.seq for r in ob.pending()] == [2, 3, 1]
    assert ob.bump("bdseq") == 1
    ob.close()
    ob2 = Outbox(tmp_path)
    assert ob2.depth == 3
    assert ob2.append("events", {}, now=T0).seq == 4  # continues after a restart
    assert ob2.bump("bdseq") == 2
    # WAL mode
    assert sqlite3.connect(tmp_path / DB_NAME).execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_bounds_drop_oldest_first(tmp_path: Path) -> None:
    ob = Outbox(tmp_path, max_rows=10, max_age_s=3600)
    for i in range(15):
        ob.append("telemetry", {"i": i}, now=T0)
    assert ob.enforce_bounds(now=T0) == 5
    assert [r.payload["i"] for r in ob.pending()] == list(range(5, 15))
    # by age
    later = T0 + timedelta(seconds=3601)
    ob.append("telemetry", {"i": 99}, now=later)
    assert ob.enforce_bounds(now=later) == 10
    assert [r.payload["i"] for r in ob.pending()] == [99]
    assert ob.dropped == 15


def test_service_counts_drops_and_emits_event(tmp_path: Path, handler: FakeHandler) -> None:
    service = make_service("", tmp_path, handler, outbox_max_rows=10)
    for i in range(15):
        service.add_telemetry({"i": i})
    service._forward.flush()
    assert service.metrics.dropped == 5
    assert service.metrics.outbox_depth == 10
    assert service._forward.events[-1][1:] == (206, 5)  # OUTBOX_DROPPED, 5 rows


def test_corrupt_database_moved_aside(tmp_path: Path, handler: FakeHandler) -> None:
    db = tmp_path / DB_NAME
    db.write_bytes(b"this is not an sqlite database at all" * 100)
    ob = Outbox(tmp_path, now=T0)
    assert ob.recovered_from is not None
    assert ob.recovered_from.name == f"{DB_NAME}.corrupt-20261121T060000Z"
    assert ob.recovered_from.read_bytes().startswith(b"this is not")
    assert ob.append("events", {}, now=T0).seq == 1  # a fresh, working database
    ob.close()
    # a damaged page inside a real database is detected too
    db2 = tmp_path / "b"
    good = Outbox(db2)
    for i in range(200):
        good.append("telemetry", {"pad": "x" * 500, "i": i}, now=T0)
    good.close()
    raw = bytearray((db2 / DB_NAME).read_bytes())
    raw[4096 * 2 : 4096 * 2 + 512] = b"\xde\xad" * 256
    (db2 / DB_NAME).write_bytes(bytes(raw))
    service = make_service("", db2, handler)
    assert service.metrics.outbox_recovered_from is not None
    assert service.metrics.outbox_depth == 0
    assert service._forward.events[0][1:] == (206, 0)  # reported to the centre as an event too


def test_corruption_found_at_run_time_is_recovered_with_counters(tmp_path: Path) -> None:
    ob = Outbox(tmp_path, now=T0)
    for _ in range(3):
        ob.append("events", {}, now=T0)
    ob.bump("bdseq")
    # what a query on a damaged page raises (SQLITE_CORRUPT)
    err = ob._failed("read", sqlite3.DatabaseError("database disk image is malformed"))
    assert "corrupt database replaced" in str(err)
    assert ob.recovered_from is not None
    assert ob.recovered_from.exists()
    assert ob.depth == 0
    assert ob.append("events", {}, now=T0).seq == 4  # seq continues: a gap, not a restart
    assert ob.bump("bdseq") == 2


def test_counters_salvaged_from_a_file_corrupt_at_open(tmp_path: Path) -> None:
    ob = Outbox(tmp_path, now=T0)
    for _ in range(5):
        ob.append("telemetry", {"pad": "x" * 2000}, now=T0)
    ob.close()
    db = tmp_path / DB_NAME
    raw = bytearray(db.read_bytes())
    page = 4096
    # damage page 2 (the outbox table's root here), not the counters table
    raw[page + 8 : 2 * page - 8] = b"\x00\xff" * ((page - 16) // 2)
    db.write_bytes(bytes(raw))
    ob2 = Outbox(tmp_path, now=T0)
    assert ob2.recovered_from is not None
    assert ob2.append("telemetry", {}, now=T0).seq == 6  # salvaged from the moved file


def test_unserialisable_telemetry_is_logged_not_fatal(tmp_path: Path, handler: FakeHandler) -> None:
    service = make_service("", tmp_path, handler)
    service.add_telemetry({(1, 2): "tuple keys are not JSON"})  # type: ignore[dict-item]
    service.add_telemetry({"when": T0, "ok": 1})  # a datetime becomes its str()
    service._forward.flush()
    rows = service._outbox.pending()
    assert len(rows) == 1
    assert rows[0].payload["when"] == str(T0)
