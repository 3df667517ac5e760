"""The daemon's shared clock: DST, the fixed zone offset, step detection, kernel sync status."""

from __future__ import annotations

import ctypes
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from edgectl.config.loader import load_config
from edgectl.config.model import Mode
from edgectl.control.controller import Controller
from edgectl.control.coordination import target_position
from edgectl.control.types import Inputs
from edgectl.daemon.clock import (
    STEP_ALARM_S,
    SYNC_CHECK_S,
    KernelSync,
    SharedClock,
    StepDetector,
    from_env,
    kernel_sync,
    shared_seconds,
    stepped_wall,
    zone_offset_s,
)

from ..hil.support import EIGHT_PHASE

TICK = 0.1


class FakeClocks:
    """Monotonic and wall clocks a test moves by hand."""

    def __init__(self, wall: float = 1_780_000_000.0) -> None:
        self.mono = 100.0
        self.wall = wall

    def tick(self, dt: float = TICK) -> None:
        self.mono += dt
        self.wall += dt


DST = [
    (
        "Europe/Berlin",
        datetime(2026, 3, 29, 1, 0, tzinfo=UTC),
        datetime(2026, 10, 25, 1, 0, tzinfo=UTC),
    ),
    (
        "America/New_York",
        datetime(2026, 3, 8, 7, 0, tzinfo=UTC),
        datetime(2026, 11, 1, 6, 0, tzinfo=UTC),
    ),
]


@pytest.mark.parametrize(("zone", "spring", "autumn"), DST)
def test_dst_moves_the_schedule_not_the_cycle(
    zone: str, spring: datetime, autumn: datetime
) -> None:
    tz = ZoneInfo(zone)
    fixed = zone_offset_s(tz)
    assert fixed == datetime(2026, 1, 1, tzinfo=tz).utcoffset().total_seconds()  # type: ignore[union-attr]
    for change in (spring, autumn):
        before, after = change - timedelta(seconds=50), change + timedelta(seconds=50)
        # the local time of day jumps by an hour (what the schedule reads) …
        jump = after.astimezone(tz).replace(tzinfo=None) - before.astimezone(tz).replace(
            tzinfo=None
        )
        assert abs(jump.total_seconds() - 100.0) == 3600.0
        # … the shared clock runs on: the cycle is where it would have been
        a = shared_seconds(before.timestamp(), fixed)
        b = shared_seconds(after.timestamp(), fixed)
        assert b - a == pytest.approx(100.0)
        for cycle in (60.0, 90.0, 100.0, 130.0):
            pa = target_position(a, 0.0, 0.0, cycle)
            pb = target_position(b, 0.0, 0.0, cycle)
            assert (pb - pa) % cycle == pytest.approx(100.0 % cycle)
    # in standard time, local midnight is cycle zero of a 100 s cycle (86 400 = 864 × 100)
    midnight = datetime(2026, 1, 15, 0, 0, tzinfo=tz)
    s = shared_seconds(midnight.timestamp(), fixed)
    assert target_position(s, 0.0, 0.0, 100.0) == pytest.approx(0.0, abs=1e-6)
    # in summer time the reference is an hour later on the local clock (01:00 local)
    summer = datetime(2026, 7, 15, 1, 0, tzinfo=tz)
    assert shared_seconds(summer.timestamp(), fixed) % 86400 == pytest.approx(0.0, abs=1e-6)


def test_the_system_zone_is_read_for_a_fixed_date(monkeypatch: pytest.MonkeyPatch) -> None:
    import time

    monkeypatch.setenv("TZ", "America/New_York")
    time.tzset()
    try:
        assert zone_offset_s() == -5 * 3600.0
    finally:
        monkeypatch.delenv("TZ")
        time.tzset()


def test_two_junctions_started_apart_agree() -> None:
    """Same plan, same zone, controllers started 17 s apart: the same cycle position."""
    config = load_config(EIGHT_PHASE)
    fixed = zone_offset_s(ZoneInfo("Europe/Berlin"))
    wall0 = datetime(2026, 5, 4, 7, 12, 13, tzinfo=UTC).timestamp()
    a = Controller(config, mode=Mode.COORDINATED, plan_id=2)
    b = Controller(config, mode=Mode.COORDINATED, plan_id=2)
    for k in range(3000):
        sync = shared_seconds(wall0 + k * TICK, fixed)
        a.step(k * TICK, Inputs(sync_s=sync))
        if k >= 170:
            out = b.step((k - 170) * TICK, Inputs(sync_s=sync))
            assert out.cycle_time == pytest.approx(a.view.cycle_time(), abs=1e-6)


def test_step_detector() -> None:
    d = StepDetector(threshold_s=1.0)
    assert d.feed(0.0, 1000.0) is None
    assert d.feed(0.1, 1000.1) is None
    assert d.feed(0.2, 1000.2 + 0.9) is None  # slewed / jitter below the threshold
    assert d.feed(0.3, 1001.2 + 30.0) == pytest.approx(30.0)
    assert d.feed(0.4, 1031.3 - 30.0) == pytest.approx(-30.0)
    assert d.feed(5.4, 1006.3) is None  # a stalled process: both clocks moved together


def test_shared_clock_raises_and_clears_alarms() -> None:
    c = FakeClocks()
    synced = [False]
    clock = SharedClock(
        wall=lambda: c.wall,
        monotonic=lambda: c.mono,
        zone_offset=3600.0,
        sync_status=lambda: KernelSync(synced[0], 5 if not synced[0] else 0, 0, 16.0),
    )
    r = clock.read()
    assert r.sync_s == c.wall + 3600.0
    assert r.alarms == ("clock:unsynchronised",) and r.synchronised is False
    synced[0] = True
    c.tick(SYNC_CHECK_S)
    r = clock.read()
    assert r.alarms == () and r.synchronised is True
    c.tick()
    c.wall += 30.0
    r = clock.read()
    assert r.step_s == pytest.approx(30.0)
    assert r.alarms == ("clock:step:+30.0",)
    c.tick(STEP_ALARM_S)
    assert clock.read().alarms == ()


def test_stepped_wall_and_env_hook() -> None:
    c = FakeClocks()
    wall = stepped_wall(5.0, -30.0, wall=lambda: c.wall, monotonic=lambda: c.mono)
    assert wall() == c.wall
    c.tick(5.0)
    assert wall() == c.wall - 30.0
    clock = from_env({"EDGECTL_TEST_CLOCK_STEP": "0:30"})
    assert clock.read().wall > datetime.now(UTC).timestamp() + 25
    with pytest.raises(ValueError, match="float"):
        from_env({"EDGECTL_TEST_CLOCK_STEP": "soon"})


def _fake_adjtimex(state: int, status: int) -> Any:
    def call(tx: Any) -> int:
        tx.status = status
        tx.maxerror = 16_000_000
        return state

    return call


def test_kernel_sync_status() -> None:
    assert kernel_sync(_fake_adjtimex(0, 0x2001)) == KernelSync(True, 0, 0x2001, 16.0)
    assert not kernel_sync(_fake_adjtimex(5, 0x40)).synchronised  # type: ignore[union-attr]
    assert not kernel_sync(_fake_adjtimex(0, 0x40)).synchronised  # type: ignore[union-attr]
    assert not kernel_sync(_fake_adjtimex(5, 0)).synchronised  # type: ignore[union-attr]
    assert kernel_sync(_fake_adjtimex(-1, 0)) is None
    # the real kernel answers here (whatever it says)
    real = kernel_sync()
    assert real is None or isinstance(real.synchronised, bool)
    assert ctypes.sizeof(ctypes.c_long) == 8
