"""LoopQueues keeps a standing queue behind a blocked stop bar (issue 19).

Pure unit tests: a scripted view (loop presence and counts, which phases are green) drives
:class:`~edgectl.control.strategies.maxpressure.LoopQueues` tick by tick on the eight-phase
example: phase 2 has stop-bar loop 2 (3 m) and advance loop 9 (40 m, two lanes), 2.9 s of
travel between them at 50 km/h.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import cast

import pytest

from edgectl.config.loader import load_config
from edgectl.config.model import Config
from edgectl.control.strategies import maxpressure
from edgectl.control.strategies.base import View
from edgectl.control.strategies.maxpressure import LoopQueues

EXAMPLES = Path(__file__).resolve().parents[2] / "edgectl" / "examples"
PHASE = 2
BAR = 2
ADVANCE = 9
TICK_S = 0.1


class ScriptedLoops:
    """The part of :class:`View` that LoopQueues reads, set by the test."""

    def __init__(self) -> None:
        self.t = 0.0
        self.green_phases: frozenset[int] = frozenset({4, 8})
        self.calls: frozenset[int] = frozenset()
        self.on: dict[int, bool] = {}
        self.counts: dict[int, int] = {}

    def detector_on(self, d: int) -> bool:
        return self.on.get(d, False)

    def actuations(self, d: int) -> int:
        return self.counts.get(d, 0)

    def detector_failed(self, d: int) -> bool:
        return False

    def set(self, d: int, on: bool) -> None:
        if on and not self.on.get(d, False):
            self.counts[d] = self.counts.get(d, 0) + 1
        self.on[d] = on


class Bench:
    """A LoopQueues and its scripted loops; events (time, detector, on) are played in order
    as the ticks reach them, and every tick's queue estimate of phase 2 is kept."""

    def __init__(
        self,
        *,
        keep_blocked: bool = True,
        cover_by_occupancy: bool = False,
        beyond_by_capacity: bool = False,
        free_rate: bool = True,
        beyond_grows: bool = False,
        config: Config | None = None,
    ) -> None:
        self.view = ScriptedLoops()
        self.queues = LoopQueues(
            config or load_config(EXAMPLES / "eight_phase.toml"),
            keep_blocked=keep_blocked,
            cover_by_occupancy=cover_by_occupancy,
            beyond_by_capacity=beyond_by_capacity,
            free_rate=free_rate,
            beyond_grows=beyond_grows,
        )
        self.events: list[tuple[float, int, bool]] = []
        self.trace: list[tuple[float, float]] = []
        self._tick = 0

    def vehicle(self, d: int, at: float, for_s: float) -> None:
        """A vehicle over loop ``d`` from ``at`` for ``for_s`` seconds."""
        self.events += [(at, d, True), (at + for_s, d, False)]

    def green(self, phases: set[int]) -> None:
        self.view.green_phases = frozenset(phases)

    def run(self, until: float) -> None:
        self.events.sort()
        while self._tick * TICK_S <= until + 1e-9:
            t = round(self._tick * TICK_S, 6)
            while self.events and self.events[0][0] <= t + 1e-9:
                _, d, on = self.events.pop(0)
                self.view.set(d, on)
            self.view.t = t
            self.queues.update(cast(View, self.view))
            self.trace.append((t, self.queues.queue(PHASE)))
            self._tick += 1

    def between(self, t0: float, t1: float) -> list[float]:
        return [q for t, q in self.trace if t0 <= t < t1]

    def at(self, t: float) -> float:
        return next(q for s, q in self.trace if s >= t - 1e-9)


def _queue_of_four_in_red(b: Bench) -> None:
    """Four vehicles cross the advance loop in red and queue (30 m: the advance loop stays
    clear); the first stands on the stop bar from 4 s."""
    for k in range(4):
        b.vehicle(ADVANCE, 1.0 + 2.0 * k, 0.4)
    b.vehicle(BAR, 4.0, 1000.0)  # ended below by the test
    b.run(19.9)
    assert b.at(19.9) == pytest.approx(4.0)


def _left_turner_then_gap(b: Bench) -> None:
    """Green at 20 s: the first vehicle (a left-turner waiting for a gap) stands on the stop
    bar until 32 s; the three behind it stand still for 6 s more (the stop bar shows a gap
    while they wait), then pass it moving, 2 s apart."""
    b.events.remove((1004.0, BAR, False))
    b.events.append((32.0, BAR, False))
    for k in range(3):
        b.vehicle(BAR, 38.0 + 2.0 * k, 0.8)
    b.green({PHASE, 6})
    b.run(50.0)


def test_a_gap_behind_a_blocking_left_turner_keeps_the_standing_queue() -> None:
    b = Bench()
    _queue_of_four_in_red(b)
    _left_turner_then_gap(b)
    # the stop bar is occupied from 20 s to 32 s: the four stay (CLEARED_S never fires)
    assert min(b.between(20.0, 32.0)) == pytest.approx(4.0)
    # the left-turner has gone; the three behind it still stand: counts in − out
    assert min(b.between(32.1, 38.0)) == pytest.approx(3.0)
    # then they pass, one by one
    assert b.at(38.9) == pytest.approx(2.0)
    assert b.at(42.9) == pytest.approx(0.0)


def test_the_old_estimator_dropped_that_queue() -> None:
    """The bug of issue 19, kept reachable with ``keep_blocked=False``: the stop-bar gap
    after the left-turner was taken for the end of the queue."""
    b = Bench(keep_blocked=False)
    _queue_of_four_in_red(b)
    _left_turner_then_gap(b)
    assert min(b.between(32.1, 38.0)) == 0.0


def test_a_left_turner_blocking_after_the_queue_has_gone_keeps_those_behind_it() -> None:
    """The queue of the green's start discharges (a gap at the stop bar), then a left-turner
    stops on the stop bar and two vehicles queue behind it: they are not forgotten once
    their travel time from the advance loop has passed."""
    b = Bench()
    b.green({PHASE, 6})
    b.vehicle(ADVANCE, 0.5, 0.4)
    b.vehicle(BAR, 3.4, 0.8)  # moving through
    b.run(12.0)
    assert b.at(12.0) == 0.0
    for k in range(3):
        b.vehicle(ADVANCE, 12.0 + 1.5 * k, 0.4)
    b.vehicle(BAR, 14.9, 20.0)  # the left-turner waits on the stop bar until 34.9 s
    b.run(34.0)
    assert min(b.between(17.0, 34.0)) == pytest.approx(3.0)


def test_a_moving_queue_still_resynchronises_on_a_gap() -> None:
    """Positive evidence still resets a count that drifted (a vehicle counted at the advance
    loop that changed to a lane of another phase): after the queue passed the stop bar
    moving and a gap followed, only vehicles seen moving remain."""
    b = Bench()
    for k in range(5):  # five counted, four reach this stop bar
        b.vehicle(ADVANCE, 1.0 + 2.0 * k, 0.4)
    b.vehicle(BAR, 4.0, 17.0)
    b.run(19.9)
    assert b.at(19.9) == pytest.approx(5.0)
    b.green({PHASE, 6})
    for k in range(3):
        b.vehicle(BAR, 23.0 + 2.0 * k, 0.8)
    b.run(33.0)
    assert b.at(27.9) == pytest.approx(1.0)  # the lane-changer, never served here
    assert b.at(33.0) == 0.0


@pytest.mark.parametrize("cover_by_occupancy", [True, False])
def test_a_queue_creeping_over_the_advance_loop_covers_it(cover_by_occupancy: bool) -> None:
    """In red, a queue creeping over the advance loop never occupies it 2.5 s without a break,
    but 80 % of the time: with ``cover_by_occupancy`` the queue reaches the advance loop (its
    capacity); without, only the vehicles counted over it."""
    b = Bench(cover_by_occupancy=cover_by_occupancy)
    b.vehicle(BAR, 3.0, 1000.0)
    for k in range(6):
        b.vehicle(ADVANCE, 0.5 + 1.0 * k, 0.4)
    b.run(10.0)
    assert b.at(10.0) == pytest.approx(6.0)
    for k in range(4):
        b.vehicle(ADVANCE, 10.0 + 2.5 * k, 2.0)
    b.run(20.0)
    capacity = b.queues.phases[PHASE].capacity
    assert capacity > 10.0
    if cover_by_occupancy:
        assert b.at(20.0) >= capacity
    else:
        assert b.at(20.0) == pytest.approx(10.0)


@pytest.mark.parametrize("beyond_by_capacity", [False, True])
def test_vehicles_moving_up_from_beyond_the_advance_loop_are_not_new_arrivals(
    beyond_by_capacity: bool,
) -> None:
    """A queue stood over the advance loop in red and grew beyond it at the arrival rate; in
    green, the advance loop's actuations are those vehicles moving up: once as many have left
    the stop bar as were estimated, nothing is left. (``beyond_by_capacity``, the bound of
    before, shrinks the queue beyond at each departure, then counts the vehicles moving up
    as new arrivals.)"""
    b = Bench(beyond_by_capacity=beyond_by_capacity)
    for k in range(12):  # 0.1 veh/s over two minutes
        b.vehicle(ADVANCE, 1.0 + 10.0 * k, 0.4)
    b.run(119.0)
    b.events = []
    b.view.set(ADVANCE, True)  # the queue stands over the advance loop
    b.run(150.0)
    pl = b.queues.phases[PHASE]
    estimated = b.at(150.0)
    assert pl.beyond >= 2.0  # grown at the rate while covered
    assert estimated >= pl.capacity + pl.beyond
    b.green({PHASE, 6})
    b.view.set(ADVANCE, False)
    n = round(estimated)
    for k in range(n):
        b.vehicle(BAR, 151.0 + 2.0 * k, 0.8)
    for k in range(round(pl.beyond)):
        b.vehicle(ADVANCE, 158.0 + 2.0 * k, 0.6)
    b.run(151.0 + 2.0 * n + 1.0)
    if beyond_by_capacity:
        assert b.at(151.0 + 2.0 * n + 1.0) > 1.5
    else:
        assert b.at(151.0 + 2.0 * n + 1.0) <= 1.0


@pytest.mark.parametrize("free_rate", [True, False])
def test_unseen_arrivals_come_at_the_rate_counted_while_the_advance_loop_was_free(
    free_rate: bool,
) -> None:
    """40 s of red with a vehicle over the free advance loop every 4 s (0.25 veh/s), then a
    queue covers it for 90 s: the vehicles that join the queue unseen are estimated at the
    rate counted while the loop was free, not at the window's average, which the covered
    time (no count) drags down to a third of it (``free_rate=False``, as before)."""
    b = Bench(free_rate=free_rate)
    for k in range(10):
        b.vehicle(ADVANCE, 2.0 + 4.0 * k, 0.4)
    b.run(40.0)
    pl = b.queues.phases[PHASE]
    assert pl.free_rate == (pytest.approx(0.25, rel=0.05) if free_rate else 0.0)
    b.view.set(ADVANCE, True)  # from 40 s a standing queue covers the advance loop
    b.run(130.0)
    assert pl.rate < 0.1  # the window's average: 10 counted in 120 s
    covered_s = 130.0 - 42.5  # covered after BLOCKED_S without a break
    if free_rate:
        assert pl.beyond == pytest.approx(0.25 * covered_s, rel=0.1)
    else:
        assert pl.beyond < 0.1 * covered_s
    assert b.at(130.0) == pytest.approx(pl.capacity + pl.beyond, abs=0.5)


SHARED_ADVANCE = 11  # phase 6's loops, here on a lane that phase 2 serves too
SHARED_BAR = 6


def _shared_lane_config() -> Config:
    """The eight-phase example with phase 6's loops (stop bar 6, advance 11) on a lane of
    phases 2 and 6: an overlap, as a T junction's through running in two stages."""
    config = load_config(EXAMPLES / "eight_phase.toml")
    detectors = tuple(
        d.model_copy(update={"call_phases": (PHASE, 6)})
        if d.id in (SHARED_ADVANCE, SHARED_BAR)
        else d
        for d in config.detectors
    )
    return config.model_copy(update={"detectors": detectors})


def _covered_growth(monkeypatch: pytest.MonkeyPatch, served_lanes: bool) -> float:
    """Phase 2 red, phase 6 green. Phase 2's own advance loop counts a vehicle every 4 s for
    40 s, then a queue covers it; the shared lane flows all along, a vehicle every 2 s over
    its advance loop and 3 s later over its stop bar. Returns how much phase 2's estimate
    grows over 70 s of the cover."""
    monkeypatch.setattr(maxpressure, "SERVED_LANES", served_lanes)
    b = Bench(config=_shared_lane_config())
    b.green({1, 6})
    for k in range(10):
        b.vehicle(ADVANCE, 2.0 + 4.0 * k, 0.4)
    for k in range(65):
        b.vehicle(SHARED_ADVANCE, 1.0 + 2.0 * k, 0.4)
        b.vehicle(SHARED_BAR, 4.0 + 2.0 * k, 0.4)
    b.run(40.0)
    b.view.set(ADVANCE, True)  # from 40 s a standing queue covers phase 2's own loop
    b.run(130.0)
    return b.at(130.0) - b.at(60.0)


def test_a_covered_queue_grows_only_with_the_lanes_no_green_serves(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Phase 2's own lane queues at 0.25 veh/s; its lane shared with the green phase 6
    carries 0.5 veh/s past both loops and joins no queue. Counting the whole phase's rate
    (``SERVED_LANES`` off) the estimate grows at three times the truth; counting only the
    lanes no green serves (half of the phase's lanes here) it grows at half that, and still
    not under the truth."""
    truth = 0.25 * 70.0
    whole = _covered_growth(monkeypatch, served_lanes=False)
    served = _covered_growth(monkeypatch, served_lanes=True)
    assert whole == pytest.approx(3.0 * truth, rel=0.15)
    assert served == pytest.approx(0.5 * whole, rel=0.1)
    assert served >= truth


def test_adaptive_with_zone_sensors_spreads_the_loop_estimate_over_every_lane() -> None:
    """With zones, adaptive reads a phase's loop estimate for its lanes without a healthy
    zone by their share of its loops, so the estimate must count every lane: the covered
    queue's growth is not narrowed to the lanes no green serves there."""
    from edgectl.control.strategies.adaptive import Adaptive

    loops_only = load_config(EXAMPLES / "eight_phase.toml")
    with_zones = load_config(EXAMPLES / "io_modules_zones.toml")
    assert with_zones.zones and not loops_only.zones
    assert Adaptive(loops_only).queues.served_lanes
    assert not Adaptive(with_zones).queues.served_lanes
    assert LoopQueues(with_zones).served_lanes


@pytest.mark.parametrize("beyond_grows", [True, False])
def test_a_green_too_short_for_the_queue_beyond_leaves_its_rest_and_new_arrivals(
    beyond_grows: bool,
) -> None:
    """The red of the test above (0.25 veh/s counted free for 40 s, then a queue covering
    the advance loop for 40 s), then 10 s of green in which the queue moves up, one vehicle
    over the advance loop and one over the stop bar every 2 s, and red again. The vehicles
    that joined the queue's back during that green stand beyond the loop with the rest of
    it: ``beyond_grows`` keeps them in the estimate; without it (adaptive's default) the
    queue beyond only shrinks in green."""
    b = Bench(beyond_grows=beyond_grows)
    for k in range(10):
        b.vehicle(ADVANCE, 2.0 + 4.0 * k, 0.4)
    b.run(40.0)
    b.view.set(ADVANCE, True)
    b.run(79.9)
    pl = b.queues.phases[PHASE]
    before, count_before = pl.beyond, pl.count
    assert before == pytest.approx(0.25 * (80.0 - 42.5), rel=0.1)
    b.green({PHASE, 6})
    b.view.set(ADVANCE, False)
    for k in range(5):
        b.vehicle(BAR, 80.5 + 2.0 * k, 0.8)
        b.vehicle(ADVANCE, 81.0 + 2.0 * k, 0.6)
    b.run(89.9)
    b.green({4, 8})
    b.run(90.0)
    joined = 0.25 * 10.0 if beyond_grows else 0.0  # arrivals in the green, at the free rate
    assert pl.beyond == pytest.approx(before - 5.0 + joined, abs=0.3)
    assert pl.count == pytest.approx(count_before - 5.0 + joined, abs=0.3)


def test_blocked_tells_while_a_vehicle_stands_on_the_stop_bar_in_green() -> None:
    b = Bench()
    _queue_of_four_in_red(b)
    assert not b.queues.blocked(PHASE)  # red: nothing to tell
    b.events.remove((1004.0, BAR, False))
    b.events.append((32.0, BAR, False))
    b.green({PHASE, 6})
    b.run(23.0)
    assert not b.queues.blocked(PHASE)  # the first of a queue starting up
    b.run(25.0)
    assert b.queues.blocked(PHASE)
    b.run(33.0)
    assert not b.queues.blocked(PHASE)  # it has left


def _left_served_then_red() -> Bench:
    """Phase 1 (a left: stop-bar loop 1, no advance loop) green for 60 s while 12 vehicles
    pass over its bar, 5 s apart; then its red starts (phases 2 and 6 green)."""
    b = Bench()
    b.green({1, 5})
    for k in range(12):
        b.vehicle(1, 2.0 + 5.0 * k, 0.5)
    b.run(59.9)
    b.green({2, 6})
    return b


def test_a_stop_bar_alone_counts_the_queue_its_arrival_rate_brings_in_red() -> None:
    b = _left_served_then_red()  # then a vehicle waits on the bar from 65 s
    b.vehicle(1, 65.0, 1000.0)
    b.run(100.0)
    q = b.queues
    rate = 12 / 100.0  # departures over the window (every tick since the start, ≥ 30 s)
    x = rate * 40.0  # ... times the red so far, one lane
    assert q.queue(1) == pytest.approx(x / -math.expm1(-x), rel=0.02)
    assert q.queue(1) > 4.0  # not the one vehicle the loop sees
    b.events = [(100.05, 1, False)]  # the bar empties: nobody is waiting
    b.run(100.5)
    assert q.queue(1) == 0.0


def test_adaptive_holds_a_green_while_its_advance_loops_count_a_queue_moving_up() -> None:
    from edgectl.control.strategies.adaptive import Adaptive

    strategy = Adaptive(load_config(EXAMPLES / "eight_phase.toml"))
    view = ScriptedLoops()
    view.t = 50.0
    pl = strategy.queues.phases[PHASE]  # two lanes over advance loop 9: 1 s per vehicle
    pl.arrivals.extend([46.0, 47.1, 48.0, 49.2])
    assert strategy._dense_advance(cast(View, view), PHASE)
    view.t = 52.0  # nobody for 2.8 s: the moving queue has ended
    assert not strategy._dense_advance(cast(View, view), PHASE)
    pl.arrivals.clear()
    pl.arrivals.extend([40.0, 43.0, 46.0, 49.0, 51.5])  # free flow, 3 s apart
    assert not strategy._dense_advance(cast(View, view), PHASE)


def test_a_stop_bar_alone_keeps_the_red_estimate_through_the_gaps_of_its_discharge() -> None:
    b = _left_served_then_red()
    b.vehicle(1, 65.0, 35.5)  # waits on the bar until the green at 100.5 s
    b.run(100.4)
    q = b.queues
    before = q.queue(1)
    assert before > 4.0
    b.green({1, 5})
    # the queue leaves 2.8 s apart (slow left turns): the bar is empty between vehicles
    for k in range(1, 4):
        b.vehicle(1, 100.5 + 2.8 * k, 0.6)
    b.run(108.0)  # three have left (one more is coming): the bar is empty, the queue is not
    assert q.queue(1) == pytest.approx(before - 3.0)
    b.run(115.0)  # four left, and nobody for more than CLEARED_S: the queue has gone
    assert q.queue(1) == 0.0


def test_a_stop_bar_alone_is_refilling_for_a_moment_after_each_departure_in_green() -> None:
    b = _left_served_then_red()
    b.vehicle(1, 65.0, 37.1)  # the first of the queue leaves the bar 2.1 s into green
    b.vehicle(1, 102.4, 1.6)  # the next rolls on 0.3 s later, leaves 1.6 s after
    b.run(100.4)
    q = b.queues
    assert not q.refilling(1)  # red: nothing to tell
    b.green({1, 5})
    b.run(102.15)
    assert q.refilling(1)  # the bar just emptied: the next of the queue is rolling on
    b.run(103.0)
    assert not q.refilling(1)  # on the bar: the count says so
    b.run(104.5)
    assert q.refilling(1)
    b.run(105.1)
    assert not q.refilling(1)  # empty for over BAR_REFILL_S: the queue may have gone


def test_a_stop_bar_empty_since_before_the_green_is_not_refilling() -> None:
    b = _left_served_then_red()
    b.run(100.4)
    b.green({1, 5})
    b.run(100.6)
    assert not b.queues.refilling(1)


def test_adaptive_serves_a_stop_bar_alone_queue_longer_than_its_red_estimate() -> None:
    """Eight vehicles discharge over the bar, each rolling on 0.3 s after the one ahead
    left: more than the red estimate (about five), so the count runs out mid-queue; the
    green is still held in each short gap, and not once the bar stays empty."""
    from edgectl.control.strategies.adaptive import Adaptive

    b = _left_served_then_red()
    b.vehicle(1, 65.0, 37.1)
    leaves = [102.1]
    for _ in range(7):
        on = leaves[-1] + 0.3
        b.vehicle(1, on, 1.6)
        leaves.append(on + 1.6)
    b.run(100.4)
    strategy = Adaptive(load_config(EXAMPLES / "eight_phase.toml"))
    strategy.queues = b.queues
    assert b.queues.queue(1) < len(leaves)
    b.green({1, 5})
    held: list[tuple[float, bool, float]] = []
    while b.view.t < leaves[-1] + 2.0:
        b.run(b.view.t + TICK_S)
        held.append((b.view.t, strategy._discharging(cast(View, b.view), 1), b.queues.queue(1)))
    during = [h for t, h, _ in held if t < leaves[-1] - 1e-6]
    assert all(during)
    assert any(q < 1.0 for t, _, q in held if t < leaves[-1])  # the count ran out first
    assert not any(h for t, h, _ in held if t >= leaves[-1] + 1.05)


def test_the_queue_beyond_grows_in_green_for_maxpressure_only() -> None:
    """``beyond_grows`` is MaxPressure's choice, not the estimator's default (adaptive's
    extension rules lost with it; docs/sumo-bench.md)."""
    from edgectl.control.strategies.adaptive import Adaptive
    from edgectl.control.strategies.maxpressure import MaxPressure

    config = load_config(EXAMPLES / "eight_phase.toml")
    assert MaxPressure(config).queues.beyond_grows
    assert not Adaptive(config).queues.beyond_grows
    assert not LoopQueues(config).beyond_grows
