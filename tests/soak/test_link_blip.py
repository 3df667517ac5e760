"""Regression (found by bench/soak.py): a Modbus link that drops for a moment flashed the junction.

Under 30 % corrupted frames pymodbus closes the TCP connection itself after three unanswered
requests; the device went OFFLINE for ~0.2 s until it reconnected, and the daemon put the
junction into flash at once (then ~8 s of flash and all-red to recover). Now an OFFLINE output
device holds the controller clock like an undelivered frame and only a link without a write for
``OUTPUT_LOSS_S`` (1 s) flashes. Here 0.5 s of garbled answers (pymodbus closes a TCP link on
the 5th unanswered request in a row, at the 80 ms timeout) close the link three times; the
record must show no flash and stay safe. Found with it: the readback check compared a stale
snapshot (reads failing) with frames written since and flashed for a mismatch not there.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from edgectl.config.loader import load_config
from edgectl.testing.checker import channel_minimums, check_record
from edgectl.testing.hil import DaemonProcess, Emulator

pytestmark = pytest.mark.hil

REPO = Path(__file__).resolve().parents[2]
EIGHT_PHASE = REPO / "edgectl" / "examples" / "eight_phase.toml"
BLIPS = (12.0, 17.0, 22.0)


def test_a_link_that_closes_and_reconnects_within_1s_does_not_flash(tmp_path: Path) -> None:
    sim = Emulator(tmp_path, seed=4, faults=[f"corrupt:1.0@{t}+0.5" for t in BLIPS])
    sim.start()
    daemon = DaemonProcess(tmp_path, EIGHT_PHASE, sim.url)
    try:
        daemon.start()
        deadline = time.monotonic() + 40.0
        while time.monotonic() < deadline and sim.process is not None:
            assert daemon.process is not None and daemon.process.running()
            rows = sim.record()
            if rows and rows[-1][0] > BLIPS[-1] + 4.0:
                break
            time.sleep(0.5)
        assert daemon.stop() == 0
    finally:
        daemon.stop()
        summary = sim.stop()
    events = [e.get("event") for e in daemon.log_events()]
    assert "device_offline" in events, "the blips did not close the link: test proves nothing"
    assert "output_fault" not in events
    started = min(t for t, _, st in sim.record() if st == "G")
    stray = [t for t, _, st in sim.record() if st in ("FR", "FY") and started < t < BLIPS[-1] + 4]
    assert stray == [], f"flash at {stray[:5]}"
    assert summary["mmu"]["faults"] == []
    config = load_config(EIGHT_PHASE)
    mins = channel_minimums(config, config.plan(config.control.plan))
    findings = check_record(
        sim.record_path,
        [(a, b) for a, b in summary["conflicts"]],
        mins.yellow,
        mins.red_clear,
        mins.ped_clear,
        tolerance=0.03,
    )
    assert findings == [], findings[:5]
