"""Hardware-in-the-loop in both cabinet profiles: `edgectl run` against `firmware-sim`.

The same bar for the one-unit cabinet (``cabinet-v1``: builtin:nema-cabinet with
eight_phase.toml) and for the cabinet of five commodity I/O modules (builtin:io-modules with
io_modules.toml, five unit ids behind one TCP port or on one RTU pty), checked on the
emulator's own record and summary by the independent checker: no conflict, no short yellow
or red clearance, the MMU never tripped, the vehicles served. Then per-unit faults of the
io-modules cabinet: a dead detector module (fail-safe calls, no flash), a dead lamp module
(flash within the documented time), and recovery through all-red.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from edgectl.config.loader import load_config
from edgectl.testing.hil import DaemonProcess, Emulator

from .support import EIGHT_PHASE, ROOT, greens_per_channel, record_findings

pytestmark = pytest.mark.hil

IO_MODULES = ROOT / "edgectl" / "examples" / "io_modules.toml"
PROFILES = {
    "cabinet-v1": ("builtin:nema-cabinet", EIGHT_PHASE),
    "io-modules": ("builtin:io-modules", IO_MODULES),
}
STARTUP_S = 7.0  # start-up flash 5 s + all-red 2 s


def _run_for(seconds: float, daemon: DaemonProcess) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        assert daemon.process is not None
        assert daemon.process.running(), daemon.process.output()[-3000:]
        time.sleep(0.2)


@pytest.mark.parametrize("listen", ["modbus+tcp://127.0.0.1:0", "modbus+rtu://pty"])
@pytest.mark.parametrize(
    "cabinet",
    [
        # the cabinet-v1 half is tests/hil/test_hil.py::test_traffic_is_served_safely (the
        # same seed, demand, duration and checks, TCP and pty): here under -m long only
        pytest.param("cabinet-v1", marks=pytest.mark.long),
        "io-modules",
    ],
)
def test_both_profiles_are_served_safely(tmp_path: Path, cabinet: str, listen: str) -> None:
    profile, config_path = PROFILES[cabinet]
    config = load_config(config_path)
    demand = tmp_path / "demand.csv"
    demand.write_text("time_s,multiplier\n0,2.0\n20,0\n", encoding="utf-8")  # as test_hil
    sim = Emulator(
        tmp_path, listen=listen, profile=profile, seed=7, extra=["--demand", str(demand)]
    )
    sim.start()
    daemon = DaemonProcess(tmp_path, config_path, sim.url)
    try:
        daemon.start()
        _run_for(75.0, daemon)
        assert daemon.stop() == 0, daemon.process.output()[-3000:] if daemon.process else ""
    finally:
        daemon.stop()
        summary = sim.stop()

    assert summary["mmu"]["tripped"] is False, summary["mmu"]
    vehicles = summary["vehicles"]
    assert vehicles["arrived"] >= 10, vehicles
    assert vehicles["served"] == vehicles["arrived"], vehicles
    assert vehicles["served_flash"] == 0, vehicles  # on the controller's greens, not the flash
    assert vehicles["in_queue"] == 0
    findings = record_findings(config, sim.record_path, summary["conflicts"])
    assert findings == [], "\n".join(map(str, findings[:20]))
    greens = greens_per_channel(sim.record(), after=STARTUP_S)
    for mid, mv in summary["movements"].items():
        if mv["arrived"] > 0:
            assert greens.get(mv["channel"], 0) >= 1, f"{mid}: {mv['arrived']} arrivals, no green"
    expected_units = 5 if cabinet == "io-modules" else 1
    assert len(summary["devices"]) == expected_units, summary["devices"]
    last = {ch: st for _, ch, st in sim.record()}
    assert all(st in ("FR", "FY", "OFF") for st in last.values()), last


def _events(daemon: DaemonProcess, name: str) -> list[dict[str, object]]:
    return [e for e in daemon.log_events() if e.get("event") == name]


def test_per_unit_faults_of_the_io_modules_cabinet(tmp_path: Path) -> None:
    """A dead detector module (unit 1, 20..26 s): its detectors fail (constant calls), the
    junction keeps running. A dead lamp module (unit 4, 34..37 s): flash within the
    documented time (output lost > 1 s), then recovery through all-red once it answers."""
    config = load_config(IO_MODULES)
    sim = Emulator(
        tmp_path,
        profile="builtin:io-modules",
        seed=5,
        faults=["unit_dead:1@20+6", "unit_dead:4@34+3"],
    )
    sim.start()
    daemon = DaemonProcess(tmp_path, IO_MODULES, sim.url)
    try:
        daemon.start()
        _run_for(55.0, daemon)
        assert daemon.stop() == 0, daemon.process.output()[-3000:] if daemon.process else ""
    finally:
        daemon.stop()
        summary = sim.stop()

    failed = _events(daemon, "detectors_failed")
    assert failed and failed[0]["device"] == "cabinet-detectors", failed
    assert _events(daemon, "detectors_restored")
    faults = _events(daemon, "output_fault")
    assert faults and "cabinet" in str(faults[0]["reason"]), faults
    assert _events(daemon, "output_recovered")
    # ground truth: the record shows the flash, and only what the checker allows
    rows = sim.record()
    flashed = [t for t, _, st in rows if 34.0 <= t <= 40.0 and st in ("FR", "FY")]
    assert flashed, "no flash in the record while the lamp module was dead"
    findings = record_findings(config, sim.record_path, summary["conflicts"])
    assert findings == [], "\n".join(map(str, findings[:20]))
    assert summary["mmu"]["faults"] == [] or all(
        f["kind"] in ("watchdog", "power_cycle") for f in summary["mmu"]["faults"]
    ), summary["mmu"]
    greens = greens_per_channel(rows, after=40.0)
    assert sum(greens.values()) >= 1, "no green after the recovery"
