"""Hardware-in-the-loop: the io-modules cabinet's slow units and stuck relays.

`edgectl run` against `firmware-sim --profile builtin:io-modules` with the per-unit faults a
real RS-485 line shows besides a dead module (that one is in test_io_modules_hil.py):

- a **slow detector module** answering later than the request timeout: its detectors fail
  (constant calls, the junction keeps running, no flash) and come back when it answers in
  time again;
- a **slow lamp module**: no frame delivered for ``OUTPUT_LOSS_S`` → flash, then recovery
  through all-red once it answers in time;
- a **stuck relay** (channel 2's green driver stays off while its writes are acknowledged):
  the readback shows what the relay did, not what was written → flash within
  ``READBACK_MISMATCH_TICKS`` reads of the first dark green, and back once the relay works.

Every run is checked on the emulator's record by the independent checker; the MMU never
trips for a conflict.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from edgectl.cabinet.channels import ChannelState
from edgectl.config.loader import load_config
from edgectl.daemon.supervisor import OUTPUT_LOSS_S, READBACK_MISMATCH_TICKS
from edgectl.testing.hil import DaemonProcess, Emulator

from .support import ROOT, greens_per_channel, record_findings

pytestmark = pytest.mark.hil

IO_MODULES = ROOT / "edgectl" / "examples" / "io_modules.toml"
FLASH = (ChannelState.FR.name, ChannelState.FY.name)
TICK_S = 0.1
READ_SLACK_S = 0.5  # a read pass, the emulator's record tick, a retry after a timeout


def _run(
    tmp_path: Path, faults: list[str], seconds: float, listen: str
) -> tuple[DaemonProcess, dict[str, object], list[tuple[float, int, str]]]:
    sim = Emulator(tmp_path, profile="builtin:io-modules", seed=11, faults=faults, listen=listen)
    sim.start()
    daemon = DaemonProcess(tmp_path, IO_MODULES, sim.url)
    try:
        daemon.start()
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            assert daemon.process is not None
            assert daemon.process.running(), daemon.process.output()[-3000:]
            time.sleep(0.2)
        assert daemon.stop() == 0, daemon.process.output()[-3000:] if daemon.process else ""
    finally:
        daemon.stop()
        summary = sim.stop()
    rows = sim.record()
    findings = record_findings(load_config(IO_MODULES), sim.record_path, summary["conflicts"])
    assert findings == [], "\n".join(map(str, findings[:20]))
    mmu = summary["mmu"]
    assert isinstance(mmu, dict)
    assert all(f["kind"] in ("watchdog", "power_cycle") for f in mmu["faults"]), mmu
    return daemon, summary, rows


def _events(daemon: DaemonProcess, name: str) -> list[dict[str, object]]:
    return [e for e in daemon.log_events() if e.get("event") == name]


def _first_flash(
    rows: list[tuple[float, int, str]], after: float, before: float = float("inf")
) -> float | None:
    return next((t for t, _, st in rows if after <= t < before and st in FLASH), None)


@pytest.mark.parametrize("listen", ["modbus+rtu://pty"])
def test_a_slow_detector_module_fails_its_detectors_without_flash(
    tmp_path: Path, listen: str
) -> None:
    # unit 1 (the detector inputs) answers 0.3 s late, past the 0.08 s timeout, 12..19 s
    daemon, summary, rows = _run(tmp_path, ["unit_slow:1=0.3@12+7"], 30.0, listen)

    failed = _events(daemon, "detectors_failed")
    assert failed and failed[0]["device"] == "cabinet-detectors", failed
    assert _events(daemon, "detectors_restored")
    assert not _events(daemon, "output_fault"), "a slow detector module flashed the junction"
    assert _first_flash(rows, after=8.0, before=27.0) is None  # the stop flashes at the end
    greens = greens_per_channel(rows, after=7.0)
    assert sum(greens.values()) >= 2, "the junction did not serve"
    vehicles = summary["vehicles"]
    assert isinstance(vehicles, dict) and vehicles["served"] > 0, vehicles


def test_a_slow_lamp_module_flashes_within_the_output_loss_time(tmp_path: Path) -> None:
    # unit 3 (channels 1-4) answers 0.5 s late from 14 s to 19 s: every write times out
    daemon, _summary, rows = _run(
        tmp_path, ["unit_slow:3=0.5@14+5"], 34.0, "modbus+tcp://127.0.0.1:0"
    )

    faults = _events(daemon, "output_fault")
    assert faults, "no output fault while the lamp module was slow"
    assert _events(daemon, "output_recovered")
    flash = _first_flash(rows, after=14.0)
    assert flash is not None, "no flash in the record"
    # the last frame reached the relays just before 14 s; lost after OUTPUT_LOSS_S
    assert flash <= 14.0 + OUTPUT_LOSS_S + READ_SLACK_S + 1.0, flash
    greens = greens_per_channel(rows, after=21.0)
    assert sum(greens.values()) >= 1, "no green after the lamp module answered again"


def test_a_stuck_green_relay_is_seen_on_readback_and_flashes(tmp_path: Path) -> None:
    # unit 3 coil 6 is channel 2's green driver (channel c green = coil 4(c-1)+2); stuck off
    # from the start until 20 s, so the first time phase 2 should show green it stays dark
    daemon, _summary, rows = _run(
        tmp_path, ["relay_stuck:3.6@0+20"], 36.0, "modbus+tcp://127.0.0.1:0"
    )

    faults = _events(daemon, "output_fault")
    assert faults and "readback" in str(faults[0]["reason"]), faults
    # the record shows the lamps: channel 2 dark (its green never lit) while the controller
    # timed its green, then the flash
    dark = next(
        (t for t, ch, st in rows if ch == 2 and st == ChannelState.OFF.name and t > 7.0), None
    )
    assert dark is not None and dark < 20.0, "channel 2 never went dark"
    flash = _first_flash(rows, after=dark)
    assert flash is not None
    assert flash - dark <= READBACK_MISMATCH_TICKS * TICK_S + READ_SLACK_S, (dark, flash)
    assert _events(daemon, "output_recovered")
    greens = greens_per_channel(rows, after=21.0)
    assert greens.get(2, 0) >= 1 or sum(greens.values()) >= 2, greens
