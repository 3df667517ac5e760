"""``edgectl report EVENTS.csv``: the pictures traffic engineers read, from a hi-res event log.

Input is an ATSPM-style CSV, ``SignalId,Timestamp,EventCode,EventParam`` (Indiana hi-res
enumerations; ``Timestamp`` ISO 8601, with or without a zone — naive times are taken as
they are written, a zone is converted to UTC). Parsing is tolerant: header names in any
case/spacing (``SignalID``, ``Event Code``…), ``,``/``;``/tab separators, a byte-order mark,
blank lines; malformed rows are skipped and counted, and the first few are named.

Output, as PNG files in ``--out``:

- ``split_monitor.png`` — green time per phase per cycle, one panel per phase, each point
  coloured by how the green ended (gap-out 4, max-out 5, force-off 6).
- ``purdue_phase{P}.png`` — a Purdue coordination diagram per phase with mapped detectors:
  for every cycle, the detector arrivals (code 82 on a detector mapped to the phase) at
  their time in the cycle, over the phase's green / yellow / red bands; the title gives the
  percent arrivals on green (an arrival counts as on green when it falls in
  ``[begin green, begin yellow)``) and the platoon ratio (percent on green ÷ g/C).

Cycles start at each begin-green (code 1) of the cycle phase: ``--cycle-phase``, by default
phase 2 (the NEMA main-street through phase, usually coordinated) or, when phase 2 never
shows, the lowest phase that does. ``--cycle-barrier B`` cuts at each barrier termination
(code 31, param ``B``) instead; it is also the fallback when the cycle phase has fewer than
two greens. Only complete cycles count; a phase's green belongs to the cycle it began in.

Detectors map to phases with ``--detector-phase D:P`` (repeatable, ``D:P1+P2`` for several
phases) and/or ``--config FILE``, which maps every advance detector (or every detector when
there is none) to its call phases.

A short text summary goes to stdout. Exit 0 on success, 1 when the log cannot be used.
"""

from __future__ import annotations

import argparse
import bisect
import csv
import io
import itertools
import re
import statistics
import sys
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from edgectl.errors import EdgectlError

BEGIN_GREEN = 1
GAP_OUT = 4
MAX_OUT = 5
FORCE_OFF = 6
BEGIN_YELLOW = 8
BEGIN_RED_CLEAR = 10
END_RED_CLEAR = 11
BARRIER_TERMINATION = 31
DETECTOR_ON = 82

TERMINATIONS = {GAP_OUT: "gap_out", MAX_OUT: "max_out", FORCE_OFF: "force_off"}
#: How long after a begin-yellow a termination event may still be logged for that green.
_TERMINATION_SLACK_S = 0.2
_MAX_NAMED_PROBLEMS = 5


class ReportError(EdgectlError):
    """The event log cannot be turned into a report (unreadable, empty, ambiguous)."""


# --- reading --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class HiResEvent:
    t: float  # seconds since the epoch (naive timestamps read as UTC)
    code: int
    param: int


@dataclass(frozen=True, slots=True)
class EventLog:
    signal: str
    events: tuple[HiResEvent, ...]  # sorted by time, file order kept for equal times
    rows: int  # data rows read
    skipped: tuple[str, ...]  # one "line N: reason" per malformed row
    duplicates: int = 0  # exact repeats (same time, code, param) dropped

    @property
    def start(self) -> float:
        return self.events[0].t

    @property
    def end(self) -> float:
        return self.events[-1].t


_COLUMNS = {
    "signalid": "signal",
    "signal": "signal",
    "timestamp": "ts",
    "time": "ts",
    "eventcode": "code",
    "code": "code",
    "eventparam": "param",
    "param": "param",
    "eventparameter": "param",
}


def _normalise(header: str) -> str:
    return re.sub(r"[^a-z]", "", header.lower())


def parse_timestamp(text: str) -> float:
    """ISO 8601 → epoch seconds; naive times are read as UTC. Raises ValueError."""
    value = text.strip()
    if not value:
        raise ValueError("empty timestamp")
    stamp = datetime.fromisoformat(value)
    if stamp.tzinfo is None:
        stamp = stamp.replace(tzinfo=UTC)
    return stamp.timestamp()


def read_events(source: str | Path | io.TextIOBase, *, signal: str | None = None) -> EventLog:
    """Read an ATSPM CSV (see the module docstring). Raises :class:`ReportError`."""
    if isinstance(source, io.TextIOBase):
        text = source.read()
        name = "<stream>"
    else:
        name = str(source)
        try:
            text = Path(source).read_text(encoding="utf-8-sig")
        except OSError as exc:
            raise ReportError(f"{name}: cannot read: {exc.strerror or exc}") from exc
        except UnicodeDecodeError as exc:
            raise ReportError(f"{name}: not UTF-8 text (byte {exc.start})") from exc
    text = text.removeprefix("\ufeff")
    lines = text.splitlines()
    first = next((line for line in lines if line.strip()), "")
    if not first:
        raise ReportError(f"{name}: empty file")
    delimiter = max((",", ";", "\t"), key=first.count)
    reader = csv.reader(lines, delimiter=delimiter)
    header = next(reader)
    columns = {_COLUMNS[n]: i for i, n in enumerate(map(_normalise, header)) if n in _COLUMNS}
    body: Iterable[list[str]] = reader
    if len(columns) < 4:
        if len(header) >= 4 and _looks_like_row(header):
            columns = {"signal": 0, "ts": 1, "code": 2, "param": 3}  # no header line
            body = [header, *reader]
        else:
            missing = {"signal", "ts", "code", "param"} - columns.keys()
            names = {
                "signal": "SignalId",
                "ts": "Timestamp",
                "code": "EventCode",
                "param": "EventParam",
            }
            raise ReportError(
                f"{name}: header {header!r} lacks {', '.join(sorted(names[m] for m in missing))}"
                " (expected SignalId,Timestamp,EventCode,EventParam)"
            )
    by_signal: dict[str, list[tuple[float, int, HiResEvent]]] = defaultdict(list)
    skipped: list[str] = []
    rows = 0
    width = max(columns.values()) + 1
    for row in body:
        if not any(cell.strip() for cell in row):
            continue
        rows += 1
        line_no = reader.line_num
        if len(row) < width:
            skipped.append(f"line {line_no}: {len(row)} fields, expected {width}")
            continue
        try:
            t = parse_timestamp(row[columns["ts"]])
            code = int(float(row[columns["code"]]))
            param = int(float(row[columns["param"]]))
        except ValueError as exc:
            skipped.append(f"line {line_no}: {exc}")
            continue
        sid = row[columns["signal"]].strip()
        by_signal[sid].append((t, len(by_signal[sid]), HiResEvent(t, code, param)))
    if not by_signal:
        detail = f"; {skipped[0]}" if skipped else ""
        raise ReportError(f"{name}: no usable event rows ({len(skipped)} malformed{detail})")
    if signal is None:
        if len(by_signal) > 1:
            raise ReportError(
                f"{name}: events of {len(by_signal)} signals ({', '.join(sorted(by_signal))}):"
                " choose one with --signal"
            )
        signal = next(iter(by_signal))
    elif signal not in by_signal:
        raise ReportError(
            f"{name}: no events for signal {signal!r} (found {', '.join(sorted(by_signal))})"
        )
    ordered = [e for _, _, e in sorted(by_signal[signal], key=lambda x: (x[0], x[1]))]
    events = tuple(dict.fromkeys(ordered))  # exports repeat rows; keep the first of each
    return EventLog(
        signal=signal,
        events=events,
        rows=rows,
        skipped=tuple(skipped),
        duplicates=len(ordered) - len(events),
    )


def _looks_like_row(cells: Sequence[str]) -> bool:
    try:
        parse_timestamp(cells[1])
        int(cells[2])
    except ValueError:
        return False
    return True


# --- analysis (pure) ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Service:
    """One green of a phase, with the yellow and red clearance that followed it."""

    phase: int
    green_start: float
    yellow_start: float | None = None
    red_clear_start: float | None = None
    red_clear_end: float | None = None
    termination: str | None = None  # gap_out | max_out | force_off

    @property
    def green(self) -> float | None:
        return None if self.yellow_start is None else self.yellow_start - self.green_start

    @property
    def yellow_end(self) -> float | None:
        return self.red_clear_start


@dataclass(frozen=True, slots=True)
class Cycle:
    index: int
    start: float
    end: float
    services: Mapping[int, tuple[Service, ...]]  # phase → greens that began in this cycle

    @property
    def length(self) -> float:
        return self.end - self.start

    def green(self, phase: int) -> float:
        """Green seconds of ``phase`` that began in this cycle (0 when it was skipped)."""
        return sum(s.green or 0.0 for s in self.services.get(phase, ()))


@dataclass(frozen=True, slots=True)
class Arrival:
    t: float
    detector: int
    cycle: int
    in_cycle: float  # seconds since the cycle began
    on_green: bool


@dataclass(frozen=True, slots=True)
class PhaseArrivals:
    phase: int
    detectors: tuple[int, ...]
    arrivals: tuple[Arrival, ...]
    green_s: float  # total green of the phase in the complete cycles
    cycle_s: float  # total length of the complete cycles

    @property
    def on_green(self) -> int:
        return sum(a.on_green for a in self.arrivals)

    @property
    def percent_on_green(self) -> float | None:
        return 100.0 * self.on_green / len(self.arrivals) if self.arrivals else None

    @property
    def green_ratio(self) -> float | None:
        return self.green_s / self.cycle_s if self.cycle_s > 0 else None

    @property
    def platoon_ratio(self) -> float | None:
        pog, gc = self.percent_on_green, self.green_ratio
        return None if pog is None or not gc else (pog / 100.0) / gc


@dataclass(frozen=True, slots=True)
class Report:
    signal: str
    start: float
    end: float
    cycle_reference: str  # "phase 2" / "barrier 1"
    phases: tuple[int, ...]  # every phase that showed green
    services: Mapping[int, tuple[Service, ...]]
    cycles: tuple[Cycle, ...]
    arrivals: Mapping[int, PhaseArrivals] = field(default_factory=dict)


def phase_services(events: Iterable[HiResEvent]) -> dict[int, tuple[Service, ...]]:
    """Every green of every phase, from begin green / yellow / red clear events.

    A green cut off by the start of the log (a yellow with no green before it) is ignored;
    one cut off by its end has ``yellow_start=None``.
    """
    open_: dict[int, dict[str, Any]] = {}
    done: dict[int, list[Service]] = defaultdict(list)
    last_closed: dict[int, Service] = {}

    def close(phase: int) -> None:
        fields = open_.pop(phase)
        service = Service(phase=phase, **fields)
        done[phase].append(service)
        last_closed[phase] = service

    for e in events:
        p = e.param
        if e.code == BEGIN_GREEN:
            if p in open_:
                close(p)
            open_[p] = {"green_start": e.t}
        elif e.code in TERMINATIONS:
            if p in open_ and open_[p].get("termination") is None:
                open_[p]["termination"] = TERMINATIONS[e.code]
            elif p in last_closed and last_closed[p].termination is None:
                prev = last_closed[p]  # logged just after the green was closed
                if prev.yellow_start is not None and e.t - prev.yellow_start <= (
                    _TERMINATION_SLACK_S
                ):
                    fixed = Service(
                        phase=p,
                        green_start=prev.green_start,
                        yellow_start=prev.yellow_start,
                        red_clear_start=prev.red_clear_start,
                        red_clear_end=prev.red_clear_end,
                        termination=TERMINATIONS[e.code],
                    )
                    done[p][-1] = last_closed[p] = fixed
        elif e.code == BEGIN_YELLOW and p in open_:
            open_[p].setdefault("yellow_start", e.t)
        elif e.code == BEGIN_RED_CLEAR and p in open_:
            open_[p].setdefault("red_clear_start", e.t)
        elif e.code == END_RED_CLEAR and p in open_:
            open_[p]["red_clear_end"] = e.t
            close(p)
    for p in list(open_):
        close(p)
    return {p: tuple(s) for p, s in sorted(done.items())}


def cycle_boundaries(
    events: Sequence[HiResEvent],
    services: Mapping[int, Sequence[Service]],
    *,
    cycle_phase: int | None = None,
    cycle_barrier: int | None = None,
) -> tuple[str, list[float]]:
    """Where cycles begin: (description, sorted times). See the module docstring."""
    if cycle_barrier is not None:
        times = [e.t for e in events if e.code == BARRIER_TERMINATION and e.param == cycle_barrier]
        return f"barrier {cycle_barrier}", times
    if cycle_phase is None:
        cycle_phase = 2 if 2 in services else min(services, default=0)
    times = [s.green_start for s in services.get(cycle_phase, ())]
    if len(times) < 2:
        barriers = sorted({e.param for e in events if e.code == BARRIER_TERMINATION})
        if barriers:
            b = barriers[0]
            return f"barrier {b}", [
                e.t for e in events if e.code == BARRIER_TERMINATION and e.param == b
            ]
    return f"phase {cycle_phase}", times


def analyse(
    log: EventLog,
    *,
    detector_phases: Mapping[int, Sequence[int]] | None = None,
    cycle_phase: int | None = None,
    cycle_barrier: int | None = None,
) -> Report:
    """Cycles, green per phase per cycle, and arrivals on green. Pure; raises ReportError."""
    services = phase_services(log.events)
    if not services:
        raise ReportError(
            f"signal {log.signal}: no phase green (event code 1) in the log: nothing to draw"
        )
    reference, bounds = cycle_boundaries(
        log.events, services, cycle_phase=cycle_phase, cycle_barrier=cycle_barrier
    )
    if len(bounds) < 2:
        raise ReportError(
            f"signal {log.signal}: fewer than two cycle starts ({reference}): no complete "
            "cycle; choose another --cycle-phase or --cycle-barrier"
        )
    cycles: list[Cycle] = []
    for i, (start, end) in enumerate(itertools.pairwise(bounds)):
        in_cycle = {
            p: tuple(s for s in ss if start <= s.green_start < end) for p, ss in services.items()
        }
        cycles.append(Cycle(i, start, end, {p: ss for p, ss in in_cycle.items() if ss}))

    arrivals: dict[int, PhaseArrivals] = {}
    by_phase: dict[int, list[int]] = defaultdict(list)
    for det, phases in sorted((detector_phases or {}).items()):
        for p in phases:
            by_phase[p].append(det)
    first, last = bounds[0], bounds[-1]
    for phase, dets in sorted(by_phase.items()):
        greens = sorted(
            (s.green_start, s.yellow_start)
            for s in services.get(phase, ())
            if s.yellow_start is not None
        )
        green_starts = [g0 for g0, _ in greens]
        found: list[Arrival] = []
        for e in log.events:
            if e.code != DETECTOR_ON or e.param not in dets or not first <= e.t < last:
                continue
            k = _cycle_index(bounds, e.t)
            g = bisect.bisect_right(green_starts, e.t) - 1
            on_green = g >= 0 and e.t < greens[g][1]
            found.append(Arrival(e.t, e.param, k, e.t - bounds[k], on_green))
        arrivals[phase] = PhaseArrivals(
            phase=phase,
            detectors=tuple(dets),
            arrivals=tuple(found),
            green_s=sum(c.green(phase) for c in cycles),
            cycle_s=last - first,
        )
    return Report(
        signal=log.signal,
        start=log.start,
        end=log.end,
        cycle_reference=reference,
        phases=tuple(services),
        services=services,
        cycles=tuple(cycles),
        arrivals=arrivals,
    )


def _cycle_index(bounds: Sequence[float], t: float) -> int:
    return bisect.bisect_right(bounds, t) - 1


# --- pictures -------------------------------------------------------------------------------

_TERMINATION_COLOURS = {
    "gap_out": "#2ca02c",
    "max_out": "#d62728",
    "force_off": "#1f77b4",
    None: "#7f7f7f",
}


def _when(t: float) -> datetime:
    return datetime.fromtimestamp(t, UTC).replace(tzinfo=None)


def _figure(width: float, height: float) -> Any:
    try:
        from matplotlib.figure import Figure
    except ModuleNotFoundError as exc:
        raise ReportError(
            "edgectl report draws with matplotlib, which is not installed: "
            "pip install matplotlib (or the project's 'sumo' extra)"
        ) from exc
    return Figure(figsize=(width, height), layout="constrained")


def draw_split_monitor(report: Report, path: Path) -> Path:
    phases = report.phases
    fig = _figure(10.0, 1.0 + 1.6 * len(phases))
    axes = fig.subplots(len(phases), 1, sharex=True, squeeze=False)[:, 0]
    for ax, phase in zip(axes, phases, strict=True):
        points = [
            (c, s) for c in report.cycles for s in c.services.get(phase, ()) if s.green is not None
        ]
        for term, colour in _TERMINATION_COLOURS.items():
            chosen = [(c, s) for c, s in points if s.termination == term]
            if chosen:
                ax.scatter(
                    [_when(c.start) for c, _ in chosen],
                    [s.green or 0.0 for _, s in chosen],
                    s=14,
                    color=colour,
                    label=(term or "unknown").replace("_", "-"),
                )
        ax.set_ylabel(f"phase {phase}\ngreen (s)")
        ax.set_ylim(0, 1.15 * max((s.green or 0.0 for _, s in points), default=1.0))
        ax.grid(alpha=0.3)
        if points:
            ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize="x-small")
    axes[-1].set_xlabel("cycle start (UTC)")
    fig.suptitle(
        f"Split monitor — signal {report.signal}, {len(report.cycles)} cycles "
        f"(cycle start: {report.cycle_reference})"
    )
    fig.savefig(path, format="png", dpi=100)
    return path


def draw_purdue(report: Report, phase: int, path: Path) -> Path:
    pa = report.arrivals[phase]
    fig = _figure(10.0, 5.0)
    ax = fig.subplots()
    from matplotlib.collections import PolyCollection
    from matplotlib.dates import AutoDateLocator, ConciseDateFormatter, date2num

    def band(colour: str, label: str, rects: list[tuple[float, float, float, float]]) -> None:
        """One collection of (x0, x1, y0, y1) rectangles: thousands of cycles stay fast."""
        if rects:
            verts = [[(x0, y0), (x1, y0), (x1, y1), (x0, y1)] for x0, x1, y0, y1 in rects]
            ax.add_collection(
                PolyCollection(verts, facecolors=colour, edgecolors="none", label=label)
            )

    def num(t: float) -> float:
        return float(date2num(_when(t)))  # type: ignore[no-untyped-call]

    x = {c.index: (num(c.start), num(c.end)) for c in report.cycles}
    band("#f4b6b6", "red", [(*x[c.index], 0.0, c.length) for c in report.cycles])
    greens, yellows = [], []
    for c in report.cycles:
        for s in c.services.get(phase, ()):
            if s.yellow_start is None:
                continue
            yellow_end = s.red_clear_start or (s.yellow_start + 3.0)
            greens.append((*x[c.index], s.green_start - c.start, s.yellow_start - c.start))
            yellows.append((*x[c.index], s.yellow_start - c.start, yellow_end - c.start))
    band("#9fd89f", "green", greens)
    band("#f7e27a", "yellow", yellows)
    if pa.arrivals:  # at the time they happened, at their position in the cycle
        ax.scatter(
            [num(a.t) for a in pa.arrivals],
            [a.in_cycle for a in pa.arrivals],
            s=6,
            color="black",
            label="arrival",
            zorder=3,
        )
    locator = AutoDateLocator()  # type: ignore[no-untyped-call]
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(ConciseDateFormatter(locator))  # type: ignore[no-untyped-call]
    ax.set_xlim(x[report.cycles[0].index][0], x[report.cycles[-1].index][1])
    ax.set_ylim(0, 1.02 * max(c.length for c in report.cycles))
    ax.set_ylabel("time in cycle (s)")
    ax.set_xlabel("time (UTC)")
    pog = pa.percent_on_green
    ratio = pa.platoon_ratio
    ax.set_title(
        f"Purdue coordination diagram — signal {report.signal}, phase {phase} "
        f"(detectors {', '.join(map(str, pa.detectors))})\n"
        + (
            f"{pog:.1f} % of {len(pa.arrivals)} arrivals on green"
            if pog is not None
            else "no arrivals"
        )
        + (f", platoon ratio {ratio:.2f}" if ratio is not None else "")
    )
    ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize="small")
    fig.savefig(path, format="png", dpi=100)
    return path


# --- text -----------------------------------------------------------------------------------


def summary(report: Report, log: EventLog) -> str:
    lengths = [c.length for c in report.cycles]
    out = [
        f"signal {report.signal}: {_when(report.start).isoformat()} to "
        f"{_when(report.end).isoformat()}, {len(log.events)} events, {len(report.cycles)} "
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


# --- command line ---------------------------------------------------------------------------


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


__all__ = [
    "Arrival",
    "Cycle",
    "EventLog",
    "HiResEvent",
    "PhaseArrivals",
    "Report",
    "ReportError",
    "Service",
    "analyse",
    "draw_purdue",
    "draw_split_monitor",
    "phase_services",
    "read_events",
    "summary",
]
