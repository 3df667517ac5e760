"""The hostile-message flood in CI (issue 21): ``python -m bench.fuzz_commands`` shortened to
5,000 messages at 1,000/s through a real mosquitto into ``edgectl run`` — no crash, no session
dropped, no late tick, bounded memory, the centre answered after the flood, a clean record.
The ≥ 100,000-message run is reported in docs/faults.md."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from edgectl.testing.mosquitto import SKIP_REASON, mosquitto_available

pytestmark = [
    pytest.mark.hil,
    pytest.mark.mqtt,
    pytest.mark.skipif(not mosquitto_available(), reason=SKIP_REASON),
]

REPO = Path(__file__).resolve().parents[2]


def test_a_flood_of_hostile_messages_changes_nothing(tmp_path: Path) -> None:
    out = tmp_path / "fuzz.json"
    argv = [
        sys.executable, "-m", "bench.fuzz_commands",
        "--messages", "5000", "--rate", "1000", "--seed", "7", "--json", str(out),
    ]  # fmt: skip
    proc = subprocess.run(argv, cwd=REPO, capture_output=True, text=True, timeout=180, check=False)
    assert out.exists(), proc.stdout[-3000:] + proc.stderr[-3000:]
    result = json.loads(out.read_text(encoding="utf-8"))
    assert result["daemon_alive_after"] and result["mqtt_sessions_lost"] == 0, result
    assert result["late_ticks"] == 0 and not result["mmu_tripped"], result
    assert result["checker_findings"] == [], result
    assert result["valid_answered_after_flood"] == "10 of 10", result
    assert result["ok_for_hostile"] == 0, result  # nothing executed that was not signed
    assert proc.returncode == 0, proc.stderr[-3000:]
