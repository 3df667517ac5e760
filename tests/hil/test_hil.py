"""Hardware-in-the-loop: `edgectl run` against `firmware-sim`, both real processes.

Everything asserted here comes from the emulator — its record of what the load switches
showed and its summary — not from the daemon's own word, except where the daemon's reaction
itself is the point (an alarm raised within 2 s).
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from edgectl.config.model import DaemonConfig
from edgectl.testing.hil import DaemonProcess, Emulator

from .support import EIGHT_PHASE, greens_per_channel, record_findings

pytestmark = pytest.mark.hil

STARTUP_S = 7.0  # start-up flash 5 s + all-red 2 s (edgectl/examples/eight_phase.toml)
LEFT_CHANNELS = (1, 3, 5, 7)


def _demand(tmp: Path, until: float, multiplier: float) -> Path:
    path = tmp / "demand.csv"
    path.write_text(f"time_s,multiplier\n0,{multiplier}\n{until},0\n", encoding="utf-8")
    return path


def _run_for(seconds: float, *procs: DaemonProcess) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        for p in procs:
            assert p.process is not None
            assert p.process.running(), p.process.output()[-3000:]
        time.sleep(0.2)


@pytest.mark.parametrize("listen", ["modbus+tcp://127.0.0.1:0", "modbus+rtu://pty"])
def test_traffic_is_served_safely(tmp_path: Path, eight_phase: DaemonConfig, listen: str) -> None:
    demand = _demand(tmp_path, until=20.0, multiplier=2.0)
    sim = Emulator(tmp_path, listen=listen, seed=7, extra=["--demand", str(demand)])
    sim.start()
    daemon = DaemonProcess(tmp_path, EIGHT_PHASE, sim.url)
    try:
        daemon.start()
        _run_for(75.0, daemon)
        assert daemon.stop() == 0, daemon.process.output()[-3000:] if daemon.process else ""
    finally:
        daemon.stop()
        summary = sim.stop()

    # the MMU never tripped; every vehicle that arrived was served
    assert summary["mmu"]["tripped"] is False, summary["mmu"]
    assert summary["mmu"]["faults"] == []
    vehicles = summary["vehicles"]
    assert vehicles["arrived"] >= 10, vehicles
    assert vehicles["served"] == vehicles["arrived"], vehicles
    assert vehicles["served_flash"] == 0, vehicles  # on the controller's greens, not the flash
    assert vehicles["in_queue"] == 0

    # no conflict, every green → yellow ≥ plan → red clearance ≥ plan (independent checker)
    findings = record_findings(eight_phase, sim.record_path, summary["conflicts"])
    assert findings == [], "\n".join(map(str, findings[:20]))

    # phases were served in response to calls: every movement with arrivals got green; a
    # left turn nobody asked for (no recall) was skipped
    greens = greens_per_channel(sim.record(), after=STARTUP_S)
    for mid, mv in summary["movements"].items():
        ch = mv["channel"]
        if mv["arrived"] > 0:
            assert greens.get(ch, 0) >= 1, f"{mid} had {mv['arrived']} arrivals, never green"
        elif ch in LEFT_CHANNELS:
            assert greens.get(ch, 0) == 0, f"{mid} had no arrivals but channel {ch} went green"

    # the clean stop handed over in flash and did not trip the MMU watchdog afterwards
    last = {ch: st for _, ch, st in sim.record()}
    assert all(st in ("FR", "FY", "OFF") for st in last.values()), last


def _log(daemon: DaemonProcess, event: str) -> list[dict[str, object]]:
    return [e for e in daemon.log_events() if e.get("event") == event]


def test_faults_are_survived(tmp_path: Path, eight_phase: DaemonConfig) -> None:
    """One session, faults in turn: each reaction asserted, MMU state asserted."""
    faults = [
        "drop:0.3@12+5",  # lossy link: retried, no flash
        "delay:0.03@18+4",  # slow answers within the timeout
        "corrupt:0.3@23+4",  # garbled frames: typed errors, retried
        "chatter:4@28+25",  # erratic detector → failed → constant call on phase 4
        "silent@56+3",  # the cabinet goes silent: fail-safe calls, flash, then recovery
        "power_cycle@78",  # registers reset, cabinet in start-up flash: take over again
    ]
    demand = _demand(tmp_path, until=200.0, multiplier=1.0)
    sim = Emulator(tmp_path, seed=3, faults=faults, extra=["--demand", str(demand)])
    sim.start()
    daemon = DaemonProcess(tmp_path, EIGHT_PHASE, sim.url)
    try:
        daemon.start()
        _run_for(100.0, daemon)
        assert daemon.stop() == 0
    finally:
        daemon.stop()
        summary = sim.stop()
    rows = sim.record()

    # the emulator saw every injected fault, and the wire faults really hit requests
    kinds = {str(f).split(":")[0].split("@")[0] for f in summary["faults_injected"]}
    assert {"drop", "delay", "corrupt", "chatter", "silent", "power_cycle"} <= kinds, kinds
    wire = summary["wire"]
    assert wire["dropped"] > 0 and wire["delayed"] > 0 and wire["corrupted"] > 0, wire

    # the MMU tripped only where a fault demanded flash: the watchdog during the silence
    for fault in summary["mmu"]["faults"]:
        assert fault["kind"] == "watchdog", fault
        assert 56.0 <= fault["t"] <= 61.0, fault

    # lossy, slow and corrupt links did not flash the junction
    flash_times = sorted({t for t, _, st in rows if st == "FR" and t > STARTUP_S + 1})
    assert not [t for t in flash_times if t < 55.0], flash_times[:5]

    # the silence: detectors failed (alarm) within 2 s, flash, then back to service
    lost = _log(daemon, "output_fault")
    assert lost, "no output fault logged for the silent cabinet"
    failed = _log(daemon, "detectors_failed")
    assert failed, "the silent cabinet's detectors were never failed"
    assert failed[0]["detectors"] == [d.id for d in eight_phase.detectors]
    assert float(str(failed[0]["silent_for_s"])) <= 2.0, failed[0]  # fail-safe calls within 2 s
    recovered = _log(daemon, "output_recovered")
    assert recovered, "the daemon never recovered from the silence"
    greens_after_silence = [t for t, ch, st in rows if st == "G" and 59.0 < t < 78.0]
    assert greens_after_silence, "no green between the end of the silence and the power cycle"
    assert min(greens_after_silence) - 59.0 <= 12.0  # recovery through all-red within 12 s

    # the power cycle: cabinet in start-up flash, then taken over again and green again
    greens_after_cycle = [t for t, ch, st in rows if st == "G" and t > 78.0]
    assert greens_after_cycle, "no green after the power cycle"

    # the chattering detector was diagnosed and its phase kept being served (fail-safe call)
    faults_logged = [e for e in daemon.log_events() if e.get("event") == "detector_fault"]
    assert any(e.get("detector") == 4 for e in faults_logged), faults_logged[:3]
    greens = [t for t, ch, st in rows if ch == 4 and st == "G" and 30.0 < t < 56.0]
    assert greens, "phase 4 not served while its detector was failed"

    # and through all of it: no conflict, no short yellow, no skipped red clearance
    findings = record_findings(eight_phase, sim.record_path, summary["conflicts"])
    assert findings == [], "\n".join(map(str, findings[:20]))
