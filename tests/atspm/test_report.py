"""``edgectl report``: numbers from a synthetic ATSPM log, and PNGs that are real images."""

from __future__ import annotations

import io
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from PIL import Image

from edgectl.atspm.analysis import analyse, phase_services
from edgectl.atspm.events import ReportError, parse_timestamp, read_events
from edgectl.cli import main

T0 = datetime(2026, 5, 4, 7, 0, 0)
YELLOW, RED_CLEAR = 4.0, 2.0


@dataclass(frozen=True)
class CyclePlan:
    g2: float
    g4: float
    end2: int  # termination event code of phase 2's green
    end4: int

    @property
    def length(self) -> float:
        return self.g2 + YELLOW + RED_CLEAR + self.g4 + YELLOW + RED_CLEAR


# phase 2 then phase 4; cycle lengths 62, 52, 66, 42 s
PLAN = [
    CyclePlan(30, 20, 6, 4),
    CyclePlan(25, 15, 4, 4),
    CyclePlan(30, 24, 6, 5),
    CyclePlan(20, 10, 4, 4),
]
CYCLE_STARTS = [sum(c.length for c in PLAN[:k]) for k in range(len(PLAN) + 1)]  # 0..222
# detector 9 → phase 2 (advance), detector 3 unmapped; seconds from T0
ARRIVALS_9 = [-5.0, 5.0, 29.9, 31.0, 40.0, 62.0, 90.0, 100.0]
ON_GREEN_9 = [5.0, 29.9, 62.0]  # -5 is before the first complete cycle


def stamp(t: float) -> str:
    return (T0 + timedelta(seconds=t)).isoformat(timespec="milliseconds")


def service(
    rows: list[tuple[float, int, int]], phase: int, start: float, green: float, term: int
) -> None:
    y = start + green
    rows += [
        (start, 1, phase),
        (y, term, phase),
        (y, 7, phase),
        (y, 8, phase),
        (y + YELLOW, 9, phase),
        (y + YELLOW, 10, phase),
        (y + YELLOW + RED_CLEAR, 11, phase),
    ]


def synthetic_rows() -> list[tuple[float, int, int]]:
    rows: list[tuple[float, int, int]] = [
        (-8.0, 8, 4),
        (-4.0, 10, 4),
        (-2.0, 11, 4),  # the log starts in phase 4's yellow
    ]
    for plan, start in zip(PLAN, CYCLE_STARTS, strict=False):
        service(rows, 2, start, plan.g2, plan.end2)
        rows.append((start + plan.g2 + YELLOW + RED_CLEAR, 31, 1))  # barrier termination
        service(rows, 4, start + plan.g2 + YELLOW + RED_CLEAR, plan.g4, plan.end4)
        rows.append((start + plan.length, 31, 2))
    rows.append((CYCLE_STARTS[-1], 1, 2))  # the log ends in phase 2's green
    for t in ARRIVALS_9:
        rows += [(t, 82, 9), (t + 0.4, 81, 9)]
    rows += [(7.0, 82, 3), (70.0, 82, 3)]
    return rows


def write_csv(
    path: Path,
    rows: list[tuple[float, int, int]],
    *,
    signal: str = "1001",
    header: str = "SignalId,Timestamp,EventCode,EventParam",
    sep: str = ",",
    extra: str = "",
) -> Path:
    lines = [header] if header else []
    # written out of time order, as exports sometimes are
    lines += [sep.join([signal, stamp(t), str(c), str(p)]) for t, c, p in reversed(rows)]
    path.write_text("\n".join(lines) + "\n" + extra)
    return path


@pytest.fixture
def events_csv(tmp_path: Path) -> Path:
    return write_csv(
        tmp_path / "events.csv",
        synthetic_rows(),
        extra=("\n1001,not-a-time,1,2\n1001,2026-05-04T07:00:01\n"),
    )


def test_split_and_arrivals_numbers(events_csv: Path) -> None:
    log = read_events(events_csv)
    assert log.signal == "1001"
    assert len(log.skipped) == 2
    assert log.skipped[1].startswith("line ")
    report = analyse(log, detector_phases={9: (2,)})

    assert report.cycle_reference == "phase 2"
    assert report.phases == (2, 4)
    assert [c.length for c in report.cycles] == [62, 52, 66, 42]
    assert [c.green(2) for c in report.cycles] == pytest.approx([30, 25, 30, 20])
    assert [c.green(4) for c in report.cycles] == pytest.approx([20, 15, 24, 10])
    terms4 = [s.termination for c in report.cycles for s in c.services[4]]
    assert terms4 == ["gap_out", "gap_out", "max_out", "gap_out"]
    terms2 = [s.termination for c in report.cycles for s in c.services[2]]
    assert terms2 == ["force_off", "gap_out", "force_off", "gap_out"]

    pa = report.arrivals[2]
    assert len(pa.arrivals) == 7
    t0 = T0.replace(tzinfo=UTC).timestamp()
    assert [round(a.t - t0, 3) for a in pa.arrivals if a.on_green] == ON_GREEN_9
    assert pa.on_green == 3
    assert pa.percent_on_green == pytest.approx(300 / 7)
    assert pa.green_ratio == pytest.approx(105 / 222)
    assert pa.platoon_ratio == pytest.approx((3 / 7) / (105 / 222))
    in_cycle = [(a.cycle, round(a.in_cycle, 3)) for a in pa.arrivals]
    assert in_cycle == [(0, 5.0), (0, 29.9), (0, 31.0), (0, 40.0), (1, 0.0), (1, 28.0), (1, 38.0)]


def test_cycles_at_barrier_terminations(events_csv: Path) -> None:
    report = analyse(read_events(events_csv), cycle_barrier=2)
    assert report.cycle_reference == "barrier 2"
    # barrier 2 ends cycles 0..3: three complete cycles between its four terminations
    assert [c.length for c in report.cycles] == [52, 66, 42]
    assert [c.green(2) for c in report.cycles] == pytest.approx([25, 30, 20])


def test_services_ignore_partial_greens_at_the_edges(events_csv: Path) -> None:
    services = phase_services(read_events(events_csv).events)
    assert len(services[4]) == 4  # the leading yellow without a green is not a service
    assert len(services[2]) == 5
    assert services[2][-1].yellow_start is None
    assert services[2][-1].green is None


def test_command_writes_valid_pngs_and_a_summary(
    events_csv: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    assert main(["report", str(events_csv), "--out", str(out), "--detector-phase", "9:2"]) == 0
    text = capsys.readouterr().out
    assert "4 complete cycles (cycle start: phase 2)" in text
    assert "skipped 2 malformed row(s)" in text
    assert "on green 3 (42.9 %)" in text
    assert "platoon ratio 0.91" in text
    for name in ("split_monitor.png", "purdue_phase2.png"):
        path = out / name
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        with Image.open(path) as image:
            image.verify()
        with Image.open(path) as image:
            assert image.format == "PNG"
            assert image.width >= 800
            assert len(image.convert("RGB").getcolors(1 << 16) or []) > 5  # not a blank page
    assert sorted(p.name for p in out.iterdir()) == ["purdue_phase2.png", "split_monitor.png"]


def test_tolerant_header_separator_and_bom(tmp_path: Path) -> None:
    path = write_csv(
        tmp_path / "e.csv",
        synthetic_rows(),
        header="\ufeffSignal ID;TIMESTAMP;Event Code;Event Param",
        sep=";",
    )
    log = read_events(path)
    assert not log.skipped
    assert len(analyse(log).cycles) == 4


def test_headerless_file(tmp_path: Path) -> None:
    log = read_events(write_csv(tmp_path / "e.csv", synthetic_rows(), header=""))
    assert len(log.events) == len(synthetic_rows())


def test_several_signals_need_a_choice(tmp_path: Path) -> None:
    path = tmp_path / "e.csv"
    write_csv(path, synthetic_rows())
    other = [f"2002,{stamp(1)},1,2"]
    path.write_text(path.read_text() + "\n".join(other) + "\n")
    with pytest.raises(ReportError, match=r"2 signals \(1001, 2002\): choose one with --signal"):
        read_events(path)
    assert read_events(path, signal="1001").signal == "1001"
    with pytest.raises(ReportError, match="no events for signal '3003'"):
        read_events(path, signal="3003")


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("", "empty file"),
        ("Foo,Bar\n1,2\n", "lacks EventCode, EventParam, SignalId, Timestamp"),
        (
            "SignalId,Timestamp,EventCode,EventParam\n1,yesterday,1,2\n",
            "no usable event rows .1 malformed; line 2",
        ),
        (f"SignalId,Timestamp,EventCode,EventParam\n1,{stamp(0)},82,9\n", "no phase green"),
        (f"SignalId,Timestamp,EventCode,EventParam\n1,{stamp(0)},1,2\n", "no complete cycle"),
    ],
)
def test_clear_errors(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "bad.csv"
    path.write_text(content)
    with pytest.raises(ReportError, match=message):
        analyse(read_events(path))


def test_command_reports_errors_with_exit_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["report", str(tmp_path / "missing.csv")]) == 1
    assert "cannot read" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["report", "x.csv", "--detector-phase", "nine:two"])
    assert "expected DETECTOR:PHASE" in capsys.readouterr().err


def test_read_from_a_stream() -> None:
    text = "SignalId,Timestamp,EventCode,EventParam\n7,2026-05-04T07:00:00Z,1,2\n"
    assert read_events(io.StringIO(text)).events[0].code == 1


def test_parse_timestamp_zones() -> None:
    naive = parse_timestamp("2026-05-04T07:00:00.100")
    assert parse_timestamp("2026-05-04 07:00:00.1") == naive
    assert parse_timestamp("2026-05-04T07:00:00.100Z") == naive
    assert parse_timestamp("2026-05-04T15:00:00.100+08:00") == naive
    with pytest.raises(ValueError, match="empty"):
        parse_timestamp(" ")


def test_detector_map_from_a_config(
    events_csv: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """eight_phase.toml maps advance detector 9 to phase 2 (and 10/11/12 to 4/6/8)."""
    example = Path(__file__).resolve().parents[2] / "edgectl" / "examples" / "eight_phase.toml"
    out = tmp_path / "out"
    assert main(["report", str(events_csv), "--out", str(out), "--config", str(example)]) == 0
    text = capsys.readouterr().out
    assert "phase 2 arrivals (detectors 9): 7, on green 3 (42.9 %)" in text
    assert (out / "purdue_phase2.png").exists()
    assert (out / "purdue_phase4.png").exists()  # detector 10: no arrivals, still drawn


def test_bad_config_is_a_clear_error(
    events_csv: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("[intersection]\n")
    assert main(["report", str(events_csv), "--config", str(bad)]) == 1
    assert "--config" in capsys.readouterr().err


def test_repeated_rows_are_dropped(tmp_path: Path) -> None:
    rows = synthetic_rows()
    log = read_events(write_csv(tmp_path / "e.csv", rows + rows[:10]))
    assert log.duplicates == 10
    assert len(log.events) == len(rows)
    report = analyse(log, detector_phases={9: (2,)})
    assert [c.length for c in report.cycles] == [62, 52, 66, 42]
    assert report.arrivals[2].on_green == 3


def test_report_of_a_simulated_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The project's own event export (``edgectl simulate --events-csv``) is a valid input."""
    root = Path(__file__).resolve().parents[2]
    events = tmp_path / "sim.csv"
    config = str(root / "edgectl" / "examples" / "eight_phase.toml")
    assert (
        main(
            [
                "simulate",
                config,
                "--duration",
                "600",
                "--seed",
                "3",
                "--events-csv",
                str(events),
                "--quiet",
            ]
        )
        == 0
    )
    capsys.readouterr()
    log = read_events(events)
    assert not log.skipped
    report = analyse(log, detector_phases={9: (2,), 10: (4,), 11: (6,), 12: (8,)})
    assert len(report.cycles) >= 3
    assert set(report.phases) == {1, 2, 3, 4, 5, 6, 7, 8}
    for c in report.cycles:
        # the two rings cross the barrier together: ring 1 and ring 2 greens + clearances
        # cannot exceed the cycle
        assert c.green(1) + c.green(2) <= c.length
        assert c.green(5) + c.green(6) <= c.length
    for pa in report.arrivals.values():
        assert pa.arrivals
        assert 0 < (pa.percent_on_green or 0) < 100
    out = tmp_path / "out"
    assert main(["report", str(events), "--out", str(out), "--config", config]) == 0
    assert sorted(p.name for p in out.iterdir()) == [
        "purdue_phase2.png",
        "purdue_phase4.png",
        "purdue_phase6.png",
        "purdue_phase8.png",
        "split_monitor.png",
    ]
