"""The sync layer's SQLite files under a bad disk: full, locked, power-cut safe, bounded,
private, and moved-aside copies pruned (issue 21)."""

from __future__ import annotations

import contextlib
import os
import sqlite3
import stat
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from edgectl.errors import SyncError
from edgectl.sync.eventlog import EventStore
from edgectl.sync.outbox import DB_NAME, Outbox
from edgectl.sync.sqlite import KEEP_CORRUPT, move_aside
from edgectl.testing.mosquitto import MosquittoBroker
from tests.sync.conftest import (
    IID,
    PREFIX,
    FakeHandler,
    consuming,
    eventually,
    make_service,
    running,
)

T0 = datetime(2026, 11, 21, 6, 0, 0, tzinfo=UTC)


@dataclass
class SmallDisk:
    """A real 512 KiB tmpfs that can be filled to the last byte and freed again."""

    root: Path

    @property
    def filler(self) -> Path:
        return self.root / "filler"

    def fill(self) -> None:
        with self.filler.open("ab", buffering=0) as f:
            with contextlib.suppress(OSError):
                while True:
                    f.write(b"\0" * 4096)
            with contextlib.suppress(OSError):
                while True:  # the last partial block
                    f.write(b"\0")

    def free(self) -> None:
        self.filler.unlink(missing_ok=True)


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[SmallDisk]:
    mount = tmp_path / f"disk-{uuid.uuid4().hex[:6]}"
    mount.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=512k", "tmpfs", str(mount)],
        capture_output=True,
        check=False,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    try:
        yield SmallDisk(mount)
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


# --------------------------------------------------------------------------- full disk


async def test_full_disk_link_still_comes_up(
    broker: MosquittoBroker, small_disk: SmallDisk, handler: FakeHandler
) -> None:
    state_dir = small_disk.root / "state"
    ob = Outbox(state_dir)
    for _ in range(3):
        ob.bump("bdseq")
    ob.close()
    service = make_service(broker.url, state_dir, handler)
    small_disk.fill()
    with pytest.raises(SyncError, match="full"):  # the disk is really full for SQLite
        service._outbox.append("events", {}, now=T0)
    async with (
        consuming(broker.url, [f"{PREFIX}/{IID}/status"]) as c,
        running(service),
    ):
        # the bdseq could not be written, the link comes up anyway with the next one
        await eventually(
            lambda: any(m.payload.get("online") and m.payload["bdseq"] == 4 for m in c.messages)
        )
        assert service.connected
        # space again: the next write persists the in-memory bdseq
        small_disk.free()
        service.add_telemetry({"x": 1})
        await eventually(lambda: service.metrics.published["telemetry"] >= 1)
    check = sqlite3.connect(state_dir / DB_NAME)
    assert check.execute("SELECT value FROM counters WHERE name='bdseq'").fetchone()[0] == 4
    check.close()


# --------------------------------------------------------------------------- locked at open


def _lock_exclusively(path: Path) -> sqlite3.Connection:
    """Another process's view: a connection holding the database's exclusive lock."""
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("PRAGMA locking_mode=EXCLUSIVE")
    other.execute("BEGIN EXCLUSIVE")
    return other


def _populated(state_dir: Path) -> None:
    ob = Outbox(state_dir)
    ob.append("events", {"n": 1}, now=T0)
    ob.remember_command("cmd-1", {"id": "cmd-1", "ok": True}, now=T0)
    ob.close()


def test_locked_database_is_not_moved_aside_and_fails_clearly(tmp_path: Path) -> None:
    _populated(tmp_path)
    other = _lock_exclusively(tmp_path / DB_NAME)
    try:
        with pytest.raises(SyncError, match="locked by another process"):
            Outbox(tmp_path, lock_wait_s=0.3)
    finally:
        other.close()
    assert not list(tmp_path.glob("*.corrupt-*"))
    ob = Outbox(tmp_path)
    assert ob.recovered_from is None
    assert [r.payload["n"] for r in ob.pending()] == [1]
    assert ob.command_response("cmd-1") == {"id": "cmd-1", "ok": True}


def test_locked_database_is_waited_for(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _populated(tmp_path)
    other = _lock_exclusively(tmp_path / DB_NAME)
    pauses: list[float] = []
    real_sleep = time.sleep

    def pause(seconds: float) -> None:  # the other process lets go during the first backoff
        pauses.append(seconds)
        other.close()
        real_sleep(0)

    monkeypatch.setattr(time, "sleep", pause)  # the backoff of edgectl.sync.sqlite
    ob = Outbox(tmp_path, lock_wait_s=10.0)
    assert pauses  # it did meet the lock
    assert ob.recovered_from is None
    assert not list(tmp_path.glob("*.corrupt-*"))
    assert ob.depth == 1
    assert ob.command_response("cmd-1") == {"id": "cmd-1", "ok": True}


# --------------------------------------------------------------------------- durability


def test_outbox_commits_are_fsynced_event_log_is_not(tmp_path: Path) -> None:
    # synchronous=FULL (2) in WAL mode: a committed seq/bdseq survives a power cut
    ob = Outbox(tmp_path)
    assert ob._db.execute("PRAGMA synchronous").fetchone()[0] == 2
    log = EventStore(tmp_path, intersection_id=IID)
    assert log._db.execute("PRAGMA synchronous").fetchone()[0] == 1  # NORMAL: best effort


# --------------------------------------------------------------------------- bounds


def test_outbox_bounded_by_bytes_oldest_first(tmp_path: Path) -> None:
    ob = Outbox(tmp_path, max_rows=100_000, max_bytes=200_000)
    for i in range(40):
        ob.append("telemetry", {"i": i, "pad": "x" * 10_000}, now=T0)
    dropped = ob.enforce_bounds(now=T0)
    kept = [r.payload["i"] for r in ob.pending(limit=1000)]
    assert dropped == 40 - len(kept)
    assert 15 <= len(kept) <= 20  # ~10 KB each within 200 KB
    assert kept == list(range(40 - len(kept), 40))  # the newest stay
    assert ob.dropped == dropped
    assert ob.enforce_bounds(now=T0) == 0


def test_service_drops_by_bytes_with_the_drop_event(tmp_path: Path, handler: FakeHandler) -> None:
    service = make_service("", tmp_path, handler, outbox_max_bytes=1024 * 1024)
    for i in range(30):
        service.add_telemetry({"i": i, "pad": "y" * 100_000})
    service._forward.flush()
    assert service.metrics.dropped > 0
    assert service._forward.events[-1][1:] == (206, service.metrics.dropped)


# --------------------------------------------------------------------------- moved-aside copies


def test_corrupt_copies_are_pruned_to_the_newest(tmp_path: Path) -> None:
    db = tmp_path / DB_NAME
    for n in range(6):
        db.write_bytes(b"not a database " * 100)
        db.with_name(DB_NAME + "-wal").write_bytes(b"junk")
        move_aside(db, ValueError("corrupt"), T0 + timedelta(hours=n))
    left = sorted(p.name for p in tmp_path.glob(f"{DB_NAME}.corrupt-*"))
    stamps = [f"20261121T{6 + n:02d}0000Z" for n in range(6 - KEEP_CORRUPT, 6)]
    assert left == sorted(
        f"{DB_NAME}.corrupt-{s}{suffix}" for s in stamps for suffix in ("", "-wal")
    )
    # and through the outbox's own recovery
    db.write_bytes(b"still not a database " * 100)
    ob = Outbox(tmp_path, now=T0 + timedelta(days=1))
    assert ob.recovered_from is not None
    assert len(list(tmp_path.glob(f"{DB_NAME}.corrupt-*[0-9]Z"))) == KEEP_CORRUPT


# --------------------------------------------------------------------------- file modes


def test_files_are_private_whatever_the_umask(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        ob = Outbox(tmp_path / "s")
        ob.append("events", {}, now=T0)
        log = EventStore(tmp_path / "s", intersection_id=IID)
        log.record([(T0, 1, 2)])
    finally:
        os.umask(old)
    for name in (DB_NAME, DB_NAME + "-wal", DB_NAME + "-shm", "events.sqlite3"):
        mode = stat.S_IMODE((tmp_path / "s" / name).stat().st_mode)
        assert mode == 0o600, (name, oct(mode))


# --------------------------------------------------------------------------- read-only


def test_a_read_only_state_directory_is_a_clear_error(small_disk: SmallDisk) -> None:
    """The SD card's file system mounted read-only (what ext4 does after an I/O error) when
    the daemon starts: a clear error naming the directory — never a traceback, never a
    database moved aside as corrupt."""
    state_dir = small_disk.root / "state"
    state_dir.mkdir()
    _populated(state_dir)
    subprocess.run(["mount", "-o", "remount,ro", str(small_disk.root)], check=True)
    try:
        with pytest.raises(SyncError, match="read-only file system") as info:
            Outbox(state_dir)
        assert str(state_dir) in str(info.value)
        assert sorted(p.name for p in state_dir.iterdir()) == [DB_NAME]  # nothing moved aside
    finally:
        subprocess.run(["mount", "-o", "remount,rw", str(small_disk.root)], check=True)
