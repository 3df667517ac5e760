"""``edgectl report EVENTS.csv``: the pictures traffic engineers read, from a hi-res event log.

Input is an ATSPM CSV, ``SignalId,Timestamp,EventCode,EventParam``, read tolerantly by
:func:`edgectl.atspm.events.read_events` (e.g. one written by ``edgectl export-events`` or
``edgectl simulate --events-csv``); the analysis is :mod:`edgectl.atspm.analysis`, the
pictures :mod:`edgectl.atspm.plots`.

Output, as PNG files in ``--out``:

- ``split_monitor.png`` — green time per phase per cycle, one panel per phase, each point
  coloured by how the green ended (gap-out 4, max-out 5, force-off 6).
- ``purdue_phase{P}.png`` — a Purdue coordination diagram per phase with mapped detectors:
  for every cycle, the detector arrivals (code 82 on a detector mapped to the phase) at
  their time in the cycle, over the phase's green / yellow / red bands; the title gives the
  percent arrivals on green (an arrival counts as on green when it falls in
  ``[begin green, begin yellow)``) and the platoon ratio (percent on green ÷ g/C).

Cycles start at each begin-green (code 1) of ``--cycle-phase`` (default 2, or the lowest
phase that shows), or at each termination of ``--cycle-barrier B`` (code 31).

Detectors map to phases with ``--detector-phase D:P`` (repeatable, ``D:P1+P2`` for several
phases) and/or ``--config FILE``, which maps every advance detector (or every detector when
there is none) to its call phases.

A short text summary goes to stdout. Exit 0 on success, 1 when the log cannot be used.
"""

from __future__ import annotations

import argparse
import re
import statistics
import sys
from datetime import UTC, datetime
from pathlib import Path

from edgectl.atspm.analysis import Report, analyse
from edgectl.atspm.events import EventLog, ReportError, read_events

_MAX_NAMED_PROBLEMS = 5


def _when(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).replace(tzinfo=None).isoformat()


# --- text ---


def summary(report: Report, log: EventLog) -> str:
    lengths = [c.length for c in report.cycles]
    out = [
        f"signal {report.signal}: {_when(report.start)} to "
        f"{_when(report.end)}, {len(log.events)} events, {len(report.cycles)} "
        f"complete cycles (cycle start: {report.cycle_reference}), cycle mean "
        f"{statistics.fmean(lengths):.1f} s (min {min(lengths):.1f}, max {max(lengths):.1f})",
    ]
    if log.duplicates:
        out.append(f"dropped {log.duplicates} duplicate event row(s)")
    if log.skipped:
        out.append(
            f"skipped {len(log.skipped)} malformed row(s) of {log.rows}: "
            + "; ".join(log.skipped[:_MAX_NAMED_PROBLEMS])
            + ("; …" if len(log.skipped) > _MAX_NAMED_PROBLEMS else "")
        )
    out.append("phase  served  green mean   min    max   gap-out  max-out  force-off")
    for p in report.phases:
        greens = [s for c in report.cycles for s in c.services.get(p, ()) if s.green is not None]
        values = [s.green or 0.0 for s in greens]
        terms = [s.termination for s in greens]
        if values:
            out.append(
                f"{p:>5}  {len(values):>6}  {statistics.fmean(values):>10.1f}  "
                f"{min(values):>5.1f}  {max(values):>5.1f}  {terms.count('gap_out'):>7}  "
                f"{terms.count('max_out'):>7}  {terms.count('force_off'):>9}"
            )
        else:
            out.append(f"{p:>5}  {0:>6}  {'-':>10}")
    for pa in report.arrivals.values():
        pog, gc, pr = pa.percent_on_green, pa.green_ratio, pa.platoon_ratio
        out.append(
            f"phase {pa.phase} arrivals (detectors {', '.join(map(str, pa.detectors))}): "
            f"{len(pa.arrivals)}, on green {pa.on_green}"
            + (f" ({pog:.1f} %)" if pog is not None else "")
            + (f", g/C {gc:.2f}" if gc is not None else "")
            + (f", platoon ratio {pr:.2f}" if pr is not None else "")
        )
    return "\n".join(out)


# --- command line ---


def _detector_phase(text: str) -> tuple[int, tuple[int, ...]]:
    match = re.fullmatch(r"\s*(\d+)\s*:\s*(\d+(?:\s*\+\s*\d+)*)\s*", text)
    if not match:
        raise argparse.ArgumentTypeError(
            f"{text!r}: expected DETECTOR:PHASE (e.g. 9:2, or 9:2+6 for two phases)"
        )
    phases = tuple(int(p) for p in match.group(2).split("+"))
    return int(match.group(1)), phases


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "events",
        metavar="EVENTS.csv",
        type=Path,
        help="ATSPM CSV: SignalId,Timestamp,EventCode,EventParam",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=Path(),
        metavar="DIR",
        help="directory for the PNG files (created; default: .)",
    )
    parser.add_argument(
        "--detector-phase",
        type=_detector_phase,
        action="append",
        default=[],
        metavar="D:P",
        help="map detector D to phase P (repeatable; D:P1+P2)",
    )
    parser.add_argument(
        "--config",
        type=Path,
        metavar="FILE",
        help="take the detector → phase map from this edgectl config",
    )
    parser.add_argument("--signal", metavar="ID", help="signal to report when the log has several")
    group = parser.add_mutually_exclusive_group()
    group.add_argument(
        "--cycle-phase",
        type=int,
        metavar="P",
        help="cycles start at this phase's begin green (default 2)",
    )
    group.add_argument(
        "--cycle-barrier",
        type=int,
        metavar="B",
        help="cycles start at each termination of barrier B (event 31)",
    )


def _config_detectors(path: Path) -> dict[int, tuple[int, ...]]:
    from edgectl.config.loader import load_config
    from edgectl.config.model import DetectorType
    from edgectl.errors import ConfigError

    try:
        config = load_config(path)
    except ConfigError as exc:
        raise ReportError(f"--config {path}: {exc}") from exc
    advance = [d for d in config.detectors if d.type is DetectorType.ADVANCE]
    return {d.id: tuple(d.call_phases) for d in (advance or config.detectors) if d.call_phases}


def run(args: argparse.Namespace) -> int:
    try:
        mapping: dict[int, tuple[int, ...]] = {}
        if args.config is not None:
            mapping.update(_config_detectors(args.config))
        mapping.update(dict(args.detector_phase))
        log = read_events(args.events, signal=args.signal)
        report = analyse(
            log,
            detector_phases=mapping,
            cycle_phase=args.cycle_phase,
            cycle_barrier=args.cycle_barrier,
        )
        out: Path = args.out
        try:
            out.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ReportError(f"--out {out}: cannot create: {exc.strerror or exc}") from exc
        from edgectl.atspm.plots import draw_purdue, draw_split_monitor

        written = [draw_split_monitor(report, out / "split_monitor.png")]
        written += [draw_purdue(report, p, out / f"purdue_phase{p}.png") for p in report.arrivals]
    except ReportError as exc:
        print(f"edgectl report: {exc}", file=sys.stderr)
        return 1
    print(summary(report, log))
    if not mapping:
        print("no detector mapped to a phase: no Purdue diagram (use --detector-phase D:P)")
    for path in written:
        print(f"wrote {path}")
    return 0
