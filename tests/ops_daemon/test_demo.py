"""``edgectl demo --duration 20``: emulator + embedded amqtt broker + daemon, as a newcomer runs
it (a subprocess, stdout not a TTY: the non-interactive path), checked against the emulator's
own summary and record in the demo's ``--workdir``."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import pytest

from edgectl.config.loader import load_config
from edgectl.testing.checker import channel_minimums, check_record
from edgectl.testing.hil import ManagedProcess

from .conftest import EIGHT_PHASE

pytestmark = pytest.mark.hil

SUMMARY = re.compile(
    r"^vehicles arrived (\d+), served (\d+), mean delay ([\d.]+) s; MMU (not tripped|TRIPPED.*)$"
)


def test_demo_runs_and_summarises(tmp_path: Path) -> None:
    workdir = tmp_path / "demo"
    argv = [sys.executable, "-m", "edgectl", "demo", "--duration", "20", "--workdir", str(workdir)]
    demo = ManagedProcess(argv, tmp_path / "demo.out")
    demo.start()
    try:
        code = demo.wait(90)
    finally:
        demo.stop()
    out = demo.output()
    assert code == 0, out[-3000:]

    lines = out.strip().splitlines()
    assert lines[0].startswith("edgectl demo: cabinet modbus+tcp://127.0.0.1:"), lines[0]
    assert "broker mqtt://127.0.0.1:" in lines[0]
    # the non-TTY view: a progress line every 5 s of controller time, into normal service
    progress = [line for line in lines if line.startswith("t=")]
    assert len(progress) >= 4, lines
    assert any(" normal " in line for line in progress), progress
    match = SUMMARY.match(lines[-1])
    assert match, lines[-1]
    arrived, served = int(match.group(1)), int(match.group(2))
    assert served > 0 and arrived >= served
    assert match.group(4) == "not tripped"

    # the emulator's own word agrees, and what the cabinet showed was safe
    summary = json.loads((workdir / "sim-summary.json").read_text(encoding="utf-8"))
    assert summary["mmu"]["tripped"] is False, summary["mmu"]
    assert summary["vehicles"]["served"] == served
    config = load_config(EIGHT_PHASE)
    mins = channel_minimums(config, config.plan(config.control.plan))
    findings = check_record(
        workdir / "sim-record.csv",
        [(a, b) for a, b in summary["conflicts"]],
        mins.yellow,
        mins.red_clear,
        mins.ped_clear,
        tolerance=0.03,
    )
    assert findings == [], findings[:10]
    # the daemon stopped cleanly: its log ends with daemon_stopped
    events = [
        json.loads(line[line.index("{") :])
        for line in (workdir / "daemon.log").read_text(encoding="utf-8").splitlines()
        if "{" in line
    ]
    assert events[-1]["event"] == "daemon_stopped", events[-3:]
    assert any(e["event"] == "mqtt_connected" for e in events)
