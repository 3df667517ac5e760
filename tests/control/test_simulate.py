"""``edgectl simulate`` and the ATSPM CSV export."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime
from pathlib import Path

import pytest

from edgectl.atspm.events import atspm_csv, describe, format_timestamp, write_atspm_csv
from edgectl.cli import main
from edgectl.control.types import Event, EventCode

EXAMPLES = Path(__file__).resolve().parents[2] / "edgectl" / "examples"


def test_format_timestamp_tenths() -> None:
    epoch = datetime(2026, 11, 21, 6, 0, tzinfo=UTC)
    assert format_timestamp(0.0, epoch) == "2026-11-21 06:00:00.0"
    assert format_timestamp(61.3, epoch) == "2026-11-21 06:01:01.3"
    assert format_timestamp(0.05, epoch) == "2026-11-21 06:00:00.0"  # round half to even


def test_atspm_csv_rows() -> None:
    events = [Event(7.0, 1, 2), Event(17.0, 4, 2), Event(17.0, 8, 2)]
    text = atspm_csv(events, signal_id="hz-0001", epoch=datetime(2026, 1, 1, tzinfo=UTC))
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0] == ["SignalId", "Timestamp", "EventCode", "EventParam"]
    assert rows[1] == ["hz-0001", "2026-01-01 00:00:07.0", "1", "2"]
    assert rows[2] == ["hz-0001", "2026-01-01 00:00:17.0", "4", "2"]
    assert len(rows) == 4
    buf = io.StringIO()
    assert write_atspm_csv(events, buf, signal_id="x", header=False) == 3
    assert describe(EventCode.PHASE_GAP_OUT) == "PHASE_GAP_OUT" and describe(999) == "999"


def test_simulate_default_config_prints_timeline_and_summary(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)  # the default config is found relative to the package too
    csv_path = tmp_path / "events.csv"
    rc = main(["simulate", "--duration", "240", "--seed", "4", "--events-csv", str(csv_path)])
    out = capsys.readouterr().out
    assert rc == 0
    lines = out.splitlines()
    assert lines[0].startswith("# edgectl simulate: hz-0001")
    assert "      0.0          flash on (startup_flash)" in lines
    assert "      7.0  ring 1  phase 2  green" in lines
    assert "      7.0  ring 2  phase 6  green" in lines
    assert any("yellow     (gap-out)" in ln or "yellow     (max-out)" in ln for ln in lines)
    assert any("barrier -> group 2" in ln for ln in lines)
    assert "# summary" in lines
    assert "  monitor          0 violation(s)" in lines
    rows = list(csv.reader(io.StringIO(csv_path.read_text())))
    assert rows[0] == ["SignalId", "Timestamp", "EventCode", "EventParam"]
    assert {r[2] for r in rows[1:]} >= {"1", "8", "10", "82", "81", "173"}


def test_simulate_is_deterministic_and_modes(capsys: pytest.CaptureFixture[str]) -> None:
    cfg = str(EXAMPLES / "eight_phase.toml")
    assert main(["simulate", cfg, "--duration", "120", "--seed", "9"]) == 0
    first = capsys.readouterr().out
    assert main(["simulate", cfg, "--duration", "120", "--seed", "9"]) == 0
    assert capsys.readouterr().out == first
    assert main(["simulate", cfg, "--duration", "250", "--mode", "fixed", "-q"]) == 0
    fixed = capsys.readouterr().out
    assert "mode fixed" in fixed and "force-off" in fixed
    assert main(["simulate", str(EXAMPLES / "two_phase.toml"), "--duration", "60"]) == 0
    assert "hz-0002" in capsys.readouterr().out
    assert main(["simulate", cfg, "--mode", "coordinated", "--plan", "2", "-q"]) == 0
    assert "plan 2" in capsys.readouterr().out
    assert main(["simulate", cfg, "--plan", "9"]) == 2


def test_simulate_bad_config(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("[intersection]\nid = 'x'\n")
    assert main(["simulate", str(bad)]) == 1
    assert "bad.toml" in capsys.readouterr().err
    assert main(["simulate", str(tmp_path / "missing.toml")]) == 1
