"""Adaptive control of a protected / permissive left (flashing yellow arrow).

A left with an arrow turns, yielding, while the opposing through is green. The adaptive
strategy leaves a short left queue to that permissive turn and calls the protected left phase
only for a long queue or a long wait — or when nothing would give it a permissive turn, or its
loops have failed (actuated fallback). Driven through the daemon's Controller, with the kernel
watching: the omission is a request like any other.
"""

from __future__ import annotations

from collections.abc import Callable

from edgectl.config.model import (
    Barrier,
    Channel,
    Config,
    Control,
    Detector,
    DetectorType,
    Intersection,
    Mode,
    Phase,
    PhaseTiming,
    Plan,
    Ring,
)
from edgectl.control.controller import Controller
from edgectl.control.strategies.adaptive import ARROW_QUEUE, ARROW_WAIT_S
from edgectl.control.types import EventCode, Inputs

LEFT, OPPOSING, CROSS, OWN = 1, 2, 3, 4
# detectors: phase p has a stop bar (id p) and an advance loop (id 10 + p)
STOP = {p: p for p in (LEFT, OPPOSING, CROSS, OWN)}
ADVANCE = {p: 10 + p for p in (LEFT, OPPOSING, CROSS, OWN)}


def _config(*, arrow: bool = True) -> Config:
    """Ring 1: 1 (left) 2 (opposing through) | 3; ring 2: 4 beside 1 and 2."""
    timing = {
        LEFT: PhaseTiming(min_green=5, max1=20, yellow=3.0, red_clear=1.0),
        OPPOSING: PhaseTiming(min_green=7, max1=40, yellow=3.5, red_clear=1.5),
        CROSS: PhaseTiming(min_green=7, max1=30, yellow=3.5, red_clear=1.5),
        OWN: PhaseTiming(min_green=7, max1=40, yellow=3.5, red_clear=1.5),
    }
    detectors = [Detector(id=STOP[p], call_phases=(p,)) for p in STOP] + [
        Detector(id=ADVANCE[p], type=DetectorType.ADVANCE, call_phases=(p,), distance_m=40.0)
        for p in ADVANCE
    ]
    return Config(
        intersection=Intersection(id="fya-adaptive"),
        phases=tuple(Phase(id=p, startup=p in (OPPOSING, OWN)) for p in (1, 2, 3, 4)),
        rings=(Ring(id=1, sequence=(LEFT, OPPOSING, CROSS)), Ring(id=2, sequence=(OWN,))),
        barriers=(Barrier(phases=(LEFT, OPPOSING, OWN)), Barrier(phases=(CROSS,))),
        channels=(
            Channel(id=1, phase=LEFT, permissive=OPPOSING if arrow else None),
            Channel(id=2, phase=OPPOSING),
            Channel(id=3, phase=CROSS),
            Channel(id=4, phase=OWN),
        ),
        detectors=tuple(detectors),
        plans=(Plan(id=1, timing=timing),),
        control=Control(mode=Mode.ADAPTIVE, startup_flash=0.0, startup_all_red=2.0),
    )


Traffic = Callable[[float], set[int]]


def _passing(period_s: float, phase: int, *, offset: float = 0.0) -> Traffic:
    """A vehicle every ``period_s`` over the advance loop, then the stop bar 3 s later."""

    def on(t: float) -> set[int]:
        out = set()
        if (t - offset) % period_s < 0.4:
            out.add(ADVANCE[phase])
        if (t - offset - 3.0) % period_s < 0.4:
            out.add(STOP[phase])
        return out

    return on


def _lefts(arrive_at: float, n: int) -> Traffic:
    """``n`` left-turners over the advance loop from ``arrive_at``, then one waiting on the
    stop bar for a gap that never comes (the opposing traffic is steady)."""

    def on(t: float) -> set[int]:
        out = set()
        k = (t - arrive_at) / 1.5
        if 0 <= k < n and k % 1 < 0.3:
            out.add(ADVANCE[LEFT])
        if t >= arrive_at + 4.0:
            out.add(STOP[LEFT])
        return out

    return on


def _run(
    config: Config,
    traffic: list[Traffic],
    seconds: float,
    failed: frozenset[int] = frozenset(),
) -> dict[int, list[float]]:
    """Green starts per phase over ``seconds`` of ``traffic``; the kernel must stay quiet."""
    ctl = Controller(config)
    starts: dict[int, list[float]] = {p: [] for p in (1, 2, 3, 4)}
    for k in range(1, round(seconds * 10) + 1):
        t = round(k * 0.1, 1)
        on: set[int] = set()
        for f in traffic:
            on |= f(t)
        out = ctl.step(t, Inputs(presence=frozenset(on), failed_detectors=failed))
        for e in out.events:
            if e.code == EventCode.PHASE_BEGIN_GREEN:
                starts[e.param].append(t)
        assert not any(a.startswith("monitor") for a in out.alarms)
    assert ctl.counters["violations"] == 0
    return starts


BUSY = [_passing(2.5, OPPOSING), _passing(2.5, OWN, offset=1.0), _passing(9.0, CROSS, offset=4)]
ARRIVE = 30.0


def test_a_short_left_queue_turns_on_its_arrow_until_it_has_waited_too_long() -> None:
    starts = _run(_config(), [*BUSY, _lefts(ARRIVE, 2)], ARRIVE + ARROW_WAIT_S + 90.0)
    protected = [t for t in starts[LEFT] if t > ARRIVE]
    assert starts[CROSS], "the cross street was served meanwhile"
    assert protected, "the left is served protected in the end"
    # not before its wait ran out: until then it had its arrow with the opposing green
    assert protected[0] >= ARRIVE + ARROW_WAIT_S


def test_without_an_arrow_the_same_left_is_served_protected_at_once() -> None:
    starts = _run(_config(arrow=False), [*BUSY, _lefts(ARRIVE, 2)], ARRIVE + 60.0)
    protected = [t for t in starts[LEFT] if t > ARRIVE]
    assert protected and protected[0] < ARRIVE + ARROW_WAIT_S


def test_a_long_left_queue_gets_its_protected_phase() -> None:
    n = round(ARROW_QUEUE) + 2
    starts = _run(_config(), [*BUSY, _lefts(ARRIVE, n)], ARRIVE + 90.0)
    protected = [t for t in starts[LEFT] if t > ARRIVE]
    assert protected and protected[0] < ARRIVE + ARROW_WAIT_S


def test_a_left_with_no_opposing_traffic_to_turn_through_is_not_left_waiting() -> None:
    """With nothing to call the opposing through, no arrow would ever flash for the left: it
    is served protected like any other phase."""
    traffic = [_passing(2.5, OWN, offset=1.0), _passing(9.0, CROSS, offset=4), _lefts(ARRIVE, 2)]
    starts = _run(_config(), traffic, ARRIVE + 60.0)
    protected = [t for t in starts[LEFT] if t > ARRIVE]
    assert protected and protected[0] < ARRIVE + ARROW_WAIT_S


def test_a_left_with_failed_loops_falls_back_to_actuated_service() -> None:
    failed = frozenset({STOP[LEFT], ADVANCE[LEFT]})
    traffic = [*BUSY, _lefts(ARRIVE, 2)]
    starts = _run(_config(), traffic, ARRIVE + 60.0, failed)
    protected = [t for t in starts[LEFT] if t > ARRIVE]
    assert protected and protected[0] < ARRIVE + ARROW_WAIT_S
