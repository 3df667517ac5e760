"""``edgectl export-events``: the daemon's event log, through the sync service, as ATSPM CSV."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from edgectl.atspm.events import read_events
from edgectl.cli import main
from edgectl.sync.eventlog import EventStore
from edgectl.sync.service import SyncService
from tests.sync.conftest import IID, FakeHandler, settings

EXAMPLE = Path(__file__).resolve().parents[2] / "edgectl" / "examples" / "eight_phase.toml"
T0 = datetime(2026, 11, 21, 6, 0, 0, 137_000, tzinfo=UTC)
HEADER = "SignalId,Timestamp,EventCode,EventParam"


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


# a phase 2 service and a detector, as the control loop hands them over, tick by tick
TICKS = [
    [(at(0.0), 1, 2), (at(0.0), 1, 6)],
    [(at(3.4), 82, 9)],
    [(at(3.9), 81, 9)],
    [(at(17.2), 4, 2), (at(17.2), 7, 2), (at(17.2), 8, 2)],
    [(at(21.2), 9, 2), (at(21.2), 10, 2)],
    [(at(23.2), 11, 2)],
]


async def test_events_through_the_service_exported_exactly(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    service = SyncService(
        settings(""),
        intersection_id=IID,
        state_dir=tmp_path,
        handler=FakeHandler(),
        version="0.1.0-test",
        config_digest="sha256:abc",
        clock=lambda: at(30.0),  # the event log keeps a week back from the service's clock
    )
    for events in TICKS:
        service.add_events(events)
    service._forward.flush()  # what the batch task does every events_batch_s
    out = tmp_path / "phase2.csv"
    # while the service (the daemon) still holds the database open
    argv = ["export-events", "--state-dir", str(tmp_path), "-o", str(out)]
    rc = main([*argv, "--from", "2026-11-21T06:00:03.537Z", "--to", "2026-11-21T06:00:21.337"])
    await service.close()
    assert rc == 0
    assert out.read_text() == (
        f"{HEADER}\n"
        "hz-0001,2026-11-21 06:00:03.537,82,9\n"
        "hz-0001,2026-11-21 06:00:04.037,81,9\n"
        "hz-0001,2026-11-21 06:00:17.337,4,2\n"
        "hz-0001,2026-11-21 06:00:17.337,7,2\n"
        "hz-0001,2026-11-21 06:00:17.337,8,2\n"
    )  # --from is included, --to is not (the 21.337 events)
    assert capsys.readouterr().err == (
        "edgectl export-events: 5 events of hz-0001 to "
        f"{out} (the log holds 2026-11-21T06:00:00+00:00 to 2026-11-21T06:00:23+00:00)\n"
    )
    # the export is a valid input of `edgectl report`
    log = read_events(out)
    assert [(round(e.t - T0.timestamp(), 3), e.code) for e in log.events][:2] == [
        (3.4, 82),
        (3.9, 81),
    ]


def test_whole_log_to_stdout_with_config_and_signal(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    store = EventStore(tmp_path, intersection_id="old-id")
    for events in TICKS:
        store.record(events)
    store.close()
    monkeypatch.setenv("EDGECTL_DAEMON__STATE_DIR", str(tmp_path))
    assert main(["export-events", "--config", str(EXAMPLE)]) == 0
    rows = list(csv.reader(io.StringIO(capsys.readouterr().out)))
    assert rows[0] == HEADER.split(",")
    assert len(rows) == 1 + sum(map(len, TICKS))
    assert rows[1] == ["hz-0001", "2026-11-21 06:00:00.137", "1", "2"]  # the config's id
    assert rows[-1] == ["hz-0001", "2026-11-21 06:00:23.337", "11", "2"]
    assert main(["export-events", "--state-dir", str(tmp_path), "--from", "2026-11-21 07:00"]) == 0
    captured = capsys.readouterr()
    assert captured.out == f"{HEADER}\n"
    assert "0 events of old-id to stdout" in captured.err  # the id the log was written with
    assert main(["export-events", "--state-dir", str(tmp_path), "--signal", "1001", "-o", "-"]) == 0
    assert capsys.readouterr().out.splitlines()[1].startswith("1001,")
    # a zone is converted: 07:00:20+01:00 is 06:00:20 UTC
    argv = ["export-events", "--state-dir", str(tmp_path), "--from", "2026-11-21T07:00:20+01:00"]
    assert main(argv) == 0
    assert [r.split(",")[2] for r in capsys.readouterr().out.splitlines()[1:]] == ["9", "10", "11"]


def test_clear_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "x.csv"
    assert main(["export-events", "--state-dir", str(tmp_path), "-o", str(out)]) == 1
    assert f"no event log at {tmp_path / 'events.sqlite3'}" in capsys.readouterr().err
    assert not out.exists()
    argv = ["export-events", "--state-dir", str(tmp_path), "--from", "2026-11-21T07:00"]
    assert main([*argv, "--to", "2026-11-21T06:00"]) == 1
    assert "--to must be later than --from" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["export-events", "--from", "yesterday"])
    assert "expected an ISO 8601 time" in capsys.readouterr().err
    bad = tmp_path / "bad.toml"
    bad.write_text("[intersection]\n")
    assert main(["export-events", "--config", str(bad)]) == 1
    assert "--config" in capsys.readouterr().err
    EventStore(tmp_path, intersection_id="x").close()
    assert main(["export-events", "--state-dir", str(tmp_path), "-o", str(tmp_path / "no/x")]) == 1
    assert "cannot write" in capsys.readouterr().err
