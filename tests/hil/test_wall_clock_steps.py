"""Hardware-in-the-loop: the wall clock steps by an hour, and a daylight-saving change, while
the junction runs (issue 21). The controller times every interval on the monotonic clock, so
neither may shorten anything; a step raises an alarm; a DST change moves the time-of-day
schedule and nothing else (the shared cycle clock counts on a fixed UTC offset: no step).
Ground truth: the emulator's record (independent checker) and the daemon's own log. The
``EDGECTL_TEST_CLOCK_STEP="AT:STEP"`` hook steps the daemon's wall clock by STEP seconds AT
seconds after it started."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from edgectl.config.loader import load_config
from edgectl.testing.hil import DaemonProcess, Emulator

from .support import EIGHT_PHASE, record_findings

pytestmark = pytest.mark.hil

# the EU's spring change of 2027: 01:00 UTC on Sunday 28 March, 02:00 CET → 03:00 CEST
DST_2027 = datetime(2027, 3, 28, 1, 0, tzinfo=UTC).timestamp()


def _run(daemon: DaemonProcess, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        assert daemon.process is not None and daemon.process.running(), (
            daemon.process.output()[-3000:] if daemon.process else "not started"
        )
        time.sleep(0.2)


def _end(sim: Emulator, daemon: DaemonProcess) -> dict[str, Any]:
    """The emulator first (its summary ends the record before the daemon is gone: no
    watchdog trip), then the daemon, killed — the hand-over to flash is tested elsewhere."""
    summary = sim.stop()
    if daemon.process is not None:
        daemon.process.kill()
    return summary


def _events(daemon: DaemonProcess, name: str) -> list[dict[str, Any]]:
    return [e for e in daemon.log_events() if e.get("event") == name]


@pytest.mark.parametrize("step_s", [pytest.param(3600.0, marks=pytest.mark.long), -3600.0])
def test_an_hour_step_shortens_nothing_and_raises_an_alarm(tmp_path: Path, step_s: float) -> None:
    config = load_config(EIGHT_PHASE)
    sim = Emulator(tmp_path, seed=3).start()
    env = {"EDGECTL_TEST_CLOCK_STEP": f"15:{step_s}"}
    daemon = DaemonProcess(tmp_path, EIGHT_PHASE, sim.url, env=env)
    try:
        daemon.start()
        _run(daemon, 30.0)
    finally:
        summary = _end(sim, daemon)
    steps = _events(daemon, "clock_step")
    assert len(steps) == 1 and abs(steps[0]["step_s"] - step_s) < 2.0, steps
    alarms = [a for e in _events(daemon, "clock_alarms") for a in e["alarms"]]
    assert any(a.startswith("clock:step:") for a in alarms), alarms
    assert _events(daemon, "late_tick") == []
    assert summary["mmu"]["tripped"] is False, summary["mmu"]
    findings = record_findings(config, sim.record_path, summary["conflicts"])
    assert findings == [], "\n".join(map(str, findings[:20]))
    assert summary["vehicles"]["served"] > 0


def test_a_dst_change_moves_the_schedule_not_the_cycle(tmp_path: Path) -> None:
    """In Europe/Berlin, the wall clock is stepped to 20 s before the spring change. The
    schedule (plan 1 actuated from 00:00, plan 2 coordinated from 03:00, local time) follows
    local time across the change: 00:00's entry, then 03:00's once 02:00 CET became
    03:00 CEST. The change itself is no clock step: one step seen, the injected one."""
    text = EIGHT_PHASE.read_text(encoding="utf-8")
    text += (
        '\n[[control.schedule]]\nat = "00:00"\nplan = 1\nmode = "actuated"\n'
        '\n[[control.schedule]]\nat = "03:00"\nplan = 2\nmode = "coordinated"\n'
    )
    path = tmp_path / "scheduled.toml"
    path.write_text(text, encoding="utf-8")
    config = load_config(path)
    at_s = 8.0
    step_s = (DST_2027 - 20.0) - (time.time() + at_s)
    sim = Emulator(tmp_path, seed=4).start()
    env = {"TZ": "Europe/Berlin", "EDGECTL_TEST_CLOCK_STEP": f"{at_s}:{step_s:.3f}"}
    daemon = DaemonProcess(tmp_path, path, sim.url, env=env)
    try:
        daemon.start()
        _run(daemon, 36.0)
    finally:
        summary = _end(sim, daemon)
    assert len(_events(daemon, "clock_step")) == 1  # the injected one; the DST change is none
    entries = [e["at"] for e in _events(daemon, "schedule_entry")]
    assert entries[-2:] == ["00:00", "03:00"], entries
    assert _events(daemon, "late_tick") == []
    assert summary["mmu"]["tripped"] is False, summary["mmu"]
    findings = record_findings(config, sim.record_path, summary["conflicts"])
    assert findings == [], "\n".join(map(str, findings[:20]))
