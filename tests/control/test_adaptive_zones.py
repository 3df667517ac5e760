"""The adaptive strategy's zone demand: clusters from a zone's object list, per-lane fallback
to the loops when a zone fails, and nothing at all without zones (the real Controller on the
example junctions)."""

from __future__ import annotations

from pathlib import Path

from edgectl.config.loader import load_config
from edgectl.config.model import Mode
from edgectl.control.controller import Controller
from edgectl.control.strategies.adaptive import Adaptive
from edgectl.control.strategies.adaptive_zones import LaneDemand
from edgectl.control.types import Inputs, ZoneReading

EXAMPLES = Path(__file__).resolve().parents[2] / "edgectl" / "examples"


def _reading(zone: int, frame: int, t: float) -> ZoneReading:
    # two standing at the stop line, one moving 60 m out at 13.9 m/s
    return ZoneReading(
        zone=zone,
        frame=frame,
        vehicles=3,
        halting=2,
        queue_m=11.5,
        mean_speed_mps=4.6,
        objects=((0.0, 0.0), (7.0, 0.0), (60.0, 13.9)),
        t=t,
    )


def _adaptive(name: str) -> tuple[Controller, Adaptive]:
    config = load_config(EXAMPLES / name)
    ctl = Controller(config, mode=Mode.ADAPTIVE)
    strategy = ctl._strategy
    assert isinstance(strategy, Adaptive)
    return ctl, strategy


def test_a_lane_discharges_its_queue_then_its_arrivals_a_headway_apart() -> None:
    lane = LaneDemand(headway=2.0, standing=2, arrivals=[1.0, 9.0])
    assert lane.departures(0.5) == [0.5, 2.5, 4.5, 9.0]
    # a red until 3 s: the two standing and the car arriving at 1 s (before its turn) wait;
    # the one at 9 s comes after the queue has gone
    assert lane.waiting(3.0) == 3
    assert lane.waiting(20.0) == 4


def test_without_zones_the_strategy_reads_only_its_loops() -> None:
    _, strategy = _adaptive("eight_phase.toml")
    assert strategy.zone_demand is None


def test_healthy_zones_give_the_demand_and_a_failed_zone_falls_back_to_its_loops() -> None:
    ctl, strategy = _adaptive("io_modules_zones.toml")
    zd = strategy.zone_demand
    assert zd is not None
    t = 0.0
    for n in range(1, 301):  # 30 s; zone 6 stops answering at 15 s
        zones = (2, 4, 6, 8) if t < 15.0 else (2, 4, 8)
        ctl.step(t, Inputs(zones=tuple(_reading(z, n, t) for z in zones)))
        if round(t, 1) == 10.0:
            seen = {p: zd.phase(p) for p in (2, 4, 6, 8)}
            assert all(d is not None and d.loop_share == 0.0 for d in seen.values())
            d2 = seen[2]
            assert d2 is not None
            (lane,) = d2.lanes
            assert lane.standing == 2  # the two halting, within the queue
            assert lane.headway == 1.0  # a two-lane zone discharges two at a time
            assert len(lane.arrivals) == 1 and 10.0 < lane.arrivals[0] <= 10.0 + 60.0 / 11.0
        t = round(t + 0.1, 1)
    assert zd.phase(6) is None  # its zone failed: phase 6 is timed from its loops alone
    assert zd.phase(2) is not None


def _flicker(zone: int, frame: int, t: float) -> ZoneReading:
    # the sensor misses the second standing vehicle in every other frame
    if frame % 2:
        return _reading(zone, frame, t)
    return ZoneReading(
        zone=zone,
        frame=frame,
        vehicles=2,
        halting=1,
        queue_m=4.0,
        mean_speed_mps=6.9,
        objects=((0.0, 0.0), (60.0, 13.9)),
        t=t,
    )


def test_a_vehicle_missed_in_one_frame_stays_in_a_red_queue_but_not_in_green() -> None:
    ctl, strategy = _adaptive("io_modules_zones.toml")
    zd = strategy.zone_demand
    assert zd is not None
    t = 0.0
    red_checked = green_checked = 0
    healthy = ready = False  # zones start failed, until their recovery hold-off has passed
    green: set[int] = set()
    for n in range(1, 601):
        ctl.step(t, Inputs(zones=tuple(_flicker(z, n, t) for z in (2, 4, 6, 8))))
        was_green, green = green, set(strategy.queues.green_since)
        ready, healthy = healthy, healthy or all(zd.phase(p) is not None for p in (2, 4, 6, 8))
        if ready:
            for p in (2, 4, 6, 8):
                d = zd.phase(p)
                assert d is not None
                (lane,) = d.lanes
                if p in green:
                    assert lane.standing == (2 if n % 2 else 1)  # the frame as it is
                    green_checked += 1
                elif p not in was_green:
                    assert lane.standing == 2  # the missed vehicle is still standing
                    red_checked += 1
        t = round(t + 0.1, 1)
    assert red_checked and green_checked


def test_a_zone_feeding_two_phases_counts_half_in_each_phase_s_waiting() -> None:
    # zone 2 re-wired to feed phases 2 and 6 (a lane both could serve, as an overlap's)
    base = load_config(EXAMPLES / "io_modules_zones.toml")
    zones = tuple(z.model_copy(update={"phases": (2, 6)}) if z.id == 2 else z for z in base.zones)
    config = base.model_copy(update={"zones": zones})
    ctl = Controller(config, mode=Mode.ADAPTIVE)
    strategy = ctl._strategy
    assert isinstance(strategy, Adaptive) and strategy.zone_demand is not None
    zd = strategy.zone_demand
    t = 0.0
    for n in range(1, 201):
        ctl.step(t, Inputs(zones=tuple(_reading(z, n, t) for z in (2, 4, 6, 8))))
        t = round(t + 0.1, 1)
    d6, d4 = zd.phase(6), zd.phase(4)
    assert d6 is not None and d4 is not None
    assert sorted(lane.share for lane in d6.lanes) == [0.5, 1.0]  # zone 2 shared, zone 6 own
    assert [lane.share for lane in d4.lanes] == [1.0]
    # phase 6 waits on its own zone's vehicles and half of the shared zone's
    view = ctl.view
    own = next(lane for lane in d6.lanes if lane.share == 1.0)
    shared = next(lane for lane in d6.lanes if lane.share == 0.5)
    start = view.t + 100.0  # every vehicle seen has arrived by then
    assert own.waiting(start) == shared.waiting(start) == 3
    assert d6.loop_share == 0.0
    assert strategy._queue(view, 6) == 3 + 0.5 * 3  # not 6


def test_a_queue_already_moving_keeps_its_green_like_a_standing_one() -> None:
    from edgectl.control.strategies.adaptive_zones import PhaseDemand, ZoneDemand

    # nobody stands (the queue reaches beyond the zone and is moving up), but the next four
    # arrive a saturation headway apart, the first within one: the green serves a queue
    moving = LaneDemand(headway=2.0, standing=0, arrivals=[10.5, 12.4, 14.6, 16.5, 30.0])
    assert ZoneDemand.discharging(PhaseDemand([moving], 0.0), green_for=20.0, now=10.0)
    # the same vehicles spread out (free flow): no queue to serve whole
    sparse = LaneDemand(headway=2.0, standing=0, arrivals=[10.5, 14.0, 18.0, 22.0])
    assert not ZoneDemand.discharging(PhaseDemand([sparse], 0.0), green_for=20.0, now=10.0)
    # a platoon still far off is not a queue being served now
    late = LaneDemand(headway=2.0, standing=0, arrivals=[15.0, 16.5, 18.0, 19.5])
    assert not ZoneDemand.discharging(PhaseDemand([late], 0.0), green_for=20.0, now=10.0)


def test_a_queue_moving_up_over_the_advance_loops_holds_a_zone_phase_too() -> None:
    """A zone that shows no queue (it missed vehicles, or the queue starts beyond its range)
    does not end a green while the advance loops count a queue moving up."""
    from types import SimpleNamespace
    from typing import cast

    from edgectl.control.strategies.adaptive_zones import PhaseDemand
    from edgectl.control.strategies.base import View

    _, strategy = _adaptive("io_modules_zones.toml")
    assert strategy.zone_demand is not None
    view = cast(View, SimpleNamespace(t=50.0))
    strategy.zone_demand.demand[2] = PhaseDemand([LaneDemand(headway=1.0)], 0.0)
    strategy.queues.green_since[2] = 30.0
    pl = strategy.queues.phases[2]  # two lanes over advance loop 9: 1 s per vehicle
    pl.arrivals.extend([46.0, 47.1, 48.0, 49.2])
    assert strategy._discharging(view, 2)
    pl.arrivals.clear()
    pl.arrivals.extend([40.0, 43.0, 46.0, 49.0])  # free flow, 3 s apart
    assert not strategy._discharging(view, 2)


def test_a_neighbour_s_projected_arrivals_count_only_on_lanes_the_zones_do_not_see() -> None:
    """Vehicles an upstream junction sends are in a zone's view before they reach the stop
    line: a phase whose zones cover it counts them once (from the zone), a phase on loops
    counts the projection, and a phase half on loops half of it."""
    from edgectl.control.strategies.adaptive_zones import PhaseDemand
    from edgectl.control.strategies.maxpressure import lost_s

    ctl, strategy = _adaptive("io_modules_zones.toml")
    zd = strategy.zone_demand
    assert zd is not None
    t = 0.0
    for n in range(1, 201):
        ctl.step(t, Inputs(zones=tuple(_reading(z, n, t) for z in (2, 4, 6, 8))))
        t = round(t + 0.1, 1)
    view = ctl.view
    d = zd.phase(4)
    assert d is not None and d.loop_share == 0.0
    p = 4 if 4 not in view.green_phases else 8
    lead = strategy.queues.phases[p].travel_s
    coming = [view.t + lead + 0.5, view.t + lead + 1.0]
    assert coming[-1] <= view.t + lost_s(view, p)  # both waiting when a green could start
    alone = strategy._waiting(view, p)
    assert alone >= 3  # what its zone shows
    strategy.expect(p, coming)
    assert strategy._waiting(view, p) == alone  # the zone sees them: counted once
    zd.demand[p] = PhaseDemand(zd.demand[p].lanes, 0.5)  # half the phase's lanes on loops
    half = strategy._waiting(view, p)
    strategy.expect(p, [])
    assert half - strategy._waiting(view, p) == 1.0  # half of the two

    ctl, loops = _adaptive("eight_phase.toml")  # no zones: the projection is all there is
    t = 0.0
    for _ in range(200):
        ctl.step(t, Inputs())
        t = round(t + 0.1, 1)
    view = ctl.view
    p = next(q for q in (4, 8) if q not in view.green_phases)
    lead = loops.queues.phases[p].travel_s
    before = loops._queue(view, p)
    loops.expect(p, [view.t + lead + 0.5, view.t + lead + 1.0])
    assert loops._waiting(view, p) == max(1.0, before + 2)
