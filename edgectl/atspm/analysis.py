"""What traffic engineers read from a hi-res event log: phase services, cycles, arrivals.

Pure: functions of an :class:`~edgectl.atspm.events.EventLog`, no I/O.

- A **service** is one green of a phase with the yellow and red clearance that followed it
  (codes 1, 8, 10, 11), and how the green ended (gap-out 4, max-out 5, force-off 6).
- **Cycles** start at each begin-green (code 1) of the cycle phase: by default phase 2 (the
  NEMA main-street through phase, usually coordinated) or, when phase 2 never shows, the
  lowest phase that does. ``cycle_barrier=B`` cuts at each barrier termination (code 31,
  param ``B``) instead; it is also the fallback when the cycle phase has fewer than two
  greens. Only complete cycles count; a phase's green belongs to the cycle it began in. The
  green per phase per cycle is the split monitor's data.
- **Arrivals** are detector on events (code 82) of detectors mapped to a phase; one counts as
  on green when it falls in ``[begin green, begin yellow)`` of that phase. Percent arrivals on
  green and the platoon ratio (percent on green ÷ g/C) are the Purdue diagram's figures.
"""

from __future__ import annotations

import bisect
import itertools
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace

from edgectl.atspm.events import EventLog, HiResEvent, ReportError
from edgectl.control.types import EventCode

__all__ = [
    "TERMINATIONS",
    "Arrival",
    "Cycle",
    "PhaseArrivals",
    "Report",
    "Service",
    "analyse",
    "cycle_boundaries",
    "phase_services",
]

TERMINATIONS = {
    EventCode.PHASE_GAP_OUT: "gap_out",
    EventCode.PHASE_MAX_OUT: "max_out",
    EventCode.PHASE_FORCE_OFF: "force_off",
}
#: How long after a begin-yellow a termination event may still be logged for that green.
_TERMINATION_SLACK_S = 0.2


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


class _Open:
    """A green not closed yet: its interval starts as they are seen."""

    __slots__ = ("green_start", "red_clear_start", "termination", "yellow_start")

    def __init__(self, green_start: float) -> None:
        self.green_start = green_start
        self.yellow_start: float | None = None
        self.red_clear_start: float | None = None
        self.termination: str | None = None

    def close(self, phase: int, red_clear_end: float | None = None) -> Service:
        return Service(
            phase=phase,
            green_start=self.green_start,
            yellow_start=self.yellow_start,
            red_clear_start=self.red_clear_start,
            red_clear_end=red_clear_end,
            termination=self.termination,
        )


def phase_services(events: Iterable[HiResEvent]) -> dict[int, tuple[Service, ...]]:
    """Every green of every phase, from begin green / yellow / red clear events.

    A green cut off by the start of the log (a yellow with no green before it) is ignored;
    one cut off by its end has ``yellow_start=None``.
    """
    open_: dict[int, _Open] = {}
    done: dict[int, list[Service]] = defaultdict(list)

    def close(phase: int, red_clear_end: float | None = None) -> None:
        done[phase].append(open_.pop(phase).close(phase, red_clear_end))

    for e in events:
        p = e.param
        if e.code == EventCode.PHASE_BEGIN_GREEN:
            if p in open_:
                close(p)
            open_[p] = _Open(e.t)
        elif e.code in TERMINATIONS:
            term = TERMINATIONS[EventCode(e.code)]
            if p in open_ and open_[p].termination is None:
                open_[p].termination = term
            elif done.get(p) and done[p][-1].termination is None:
                prev = done[p][-1]  # logged just after the green was closed
                if prev.yellow_start is not None and e.t - prev.yellow_start <= (
                    _TERMINATION_SLACK_S
                ):
                    done[p][-1] = replace(prev, termination=term)
        elif p in open_:
            green = open_[p]
            if e.code == EventCode.PHASE_BEGIN_YELLOW and green.yellow_start is None:
                green.yellow_start = e.t
            elif e.code == EventCode.PHASE_BEGIN_RED_CLEAR and green.red_clear_start is None:
                green.red_clear_start = e.t
            elif e.code == EventCode.PHASE_END_RED_CLEAR:
                close(p, e.t)
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

    def barrier_times(barrier: int) -> list[float]:
        return [
            e.t for e in events if e.code == EventCode.BARRIER_TERMINATION and e.param == barrier
        ]

    if cycle_barrier is not None:
        return f"barrier {cycle_barrier}", barrier_times(cycle_barrier)
    if cycle_phase is None:
        cycle_phase = 2 if 2 in services else min(services, default=0)
    times = [s.green_start for s in services.get(cycle_phase, ())]
    if len(times) < 2:
        barriers = sorted({e.param for e in events if e.code == EventCode.BARRIER_TERMINATION})
        if barriers:
            return f"barrier {barriers[0]}", barrier_times(barriers[0])
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
    by_phase: dict[int, list[int]] = defaultdict(list)
    for det, phases in sorted((detector_phases or {}).items()):
        for p in phases:
            by_phase[p].append(det)
    arrivals = {
        phase: _arrivals(
            log.events, phase, dets, services=services.get(phase, ()), bounds=bounds, cycles=cycles
        )
        for phase, dets in sorted(by_phase.items())
    }
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


def _arrivals(
    events: Sequence[HiResEvent],
    phase: int,
    detectors: Sequence[int],
    *,
    services: Sequence[Service],
    bounds: Sequence[float],
    cycles: Sequence[Cycle],
) -> PhaseArrivals:
    """The arrivals of ``phase``'s detectors within the complete cycles."""
    greens = sorted((s.green_start, s.yellow_start) for s in services if s.yellow_start is not None)
    green_starts = [g0 for g0, _ in greens]
    first, last = bounds[0], bounds[-1]
    found: list[Arrival] = []
    for e in events:
        if e.code != EventCode.DETECTOR_ON or e.param not in detectors or not first <= e.t < last:
            continue
        k = bisect.bisect_right(bounds, e.t) - 1
        g = bisect.bisect_right(green_starts, e.t) - 1
        on_green = g >= 0 and e.t < greens[g][1]
        found.append(Arrival(e.t, e.param, k, e.t - bounds[k], on_green))
    return PhaseArrivals(
        phase=phase,
        detectors=tuple(detectors),
        arrivals=tuple(found),
        green_s=sum(c.green(phase) for c in cycles),
        cycle_s=last - first,
    )
