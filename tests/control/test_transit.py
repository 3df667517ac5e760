"""Transit signal priority (edgectl.control.transit) through the real Controller: refusals,
green extension, early green, the bounds (max extension, max early, never below min green),
the lockout per N cycles, coordination kept (cycle length and offset), none while an
emergency priority is active, check-out by detector / centre / timeout, events 112–115; every
tick checked by the independent checker."""

from __future__ import annotations

import itertools
import random
import tomllib
from collections.abc import Iterable
from pathlib import Path

import pytest

from edgectl.config.loader import validate_document
from edgectl.config.model import DaemonConfig, Mode
from edgectl.control.controller import Controller
from edgectl.control.priority import PriorityRequest
from edgectl.control.strategies.base import split_windows
from edgectl.control.transit import TransitRequest, coordinated_extend_bound
from edgectl.control.types import Event, EventCode, Inputs, Interval, Outputs, Requests
from edgectl.testing.checker import SafetyChecker

EXAMPLES = Path(__file__).resolve().parents[2] / "edgectl" / "examples"
TSP_CODES = {
    EventCode.TSP_CHECK_IN,
    EventCode.TSP_EARLY_GREEN,
    EventCode.TSP_EXTEND_GREEN,
    EventCode.TSP_CHECK_OUT,
}


def _config(mode: str = "actuated", plan: int = 1, **tsp: object) -> DaemonConfig:
    doc = tomllib.loads((EXAMPLES / "eight_phase.toml").read_text())
    doc["control"].update(mode=mode, plan=plan)
    for p in doc["plans"]:
        p.update({"tsp_enabled": True, **tsp})
    config, problems = validate_document(doc)
    assert config is not None, problems
    return config


def _greens(out: Outputs | None) -> set[int]:
    if out is None:
        return set()
    return {r.phase for r in out.rings if r.phase is not None and r.interval is Interval.GREEN}


class Run:
    """The real controller driven tick by tick, every output checked independently."""

    def __init__(self, config: DaemonConfig, *, mode: Mode | None = None) -> None:
        self.config = config
        self.controller = Controller(config, mode=mode)
        self.checker = SafetyChecker(config)
        self.k = 0
        self.events: list[Event] = []
        self.presence: set[int] = set()
        self.calls: frozenset[int] = frozenset()
        self.peds: frozenset[int] = frozenset()

    @property
    def t(self) -> float:
        return self.k / 10

    def tick(self) -> Outputs:
        out = self.controller.step(
            self.t,
            Inputs(
                presence=frozenset(self.presence),
                ped_buttons=self.peds,
                requests=Requests(calls=self.calls) if self.calls else Requests(),
            ),
        )
        assert self.checker.feed(out, self.controller.last_requests) == [], self.t
        self.events.extend(out.events)
        self.k += 1
        return out

    def run(self, seconds: float) -> Outputs:
        out = self.tick()
        for _ in range(round(seconds * 10) - 1):
            out = self.tick()
        return out

    def until(self, cond: object, limit: float = 400.0) -> Outputs:
        assert callable(cond)
        out = self.tick()
        end = self.t + limit
        while not cond(out):
            assert self.t < end, "condition never met"
            out = self.tick()
        return out

    def codes(self, codes: Iterable[int], since: float = 0.0) -> list[tuple[float, int, int]]:
        wanted = set(codes)
        return [(e.t, e.code, e.param) for e in self.events if e.code in wanted and e.t >= since]

    def green_span(self, phase: int) -> tuple[float, float]:
        """Start and end (first yellow) of the phase's current or last green."""
        starts = [
            e.t for e in self.events if e.code == EventCode.PHASE_BEGIN_GREEN and e.param == phase
        ]
        start = starts[-1]
        ends = [
            e.t
            for e in self.events
            if e.code == EventCode.PHASE_BEGIN_YELLOW and e.param == phase and e.t > start
        ]
        return start, (ends[0] if ends else float("inf"))


# --------------------------------------------------------------------------- refusals


def test_refusals_disabled_phase_not_enabled_eta_out_of_range() -> None:
    run = Run(_config(tsp_enabled=False))
    run.run(20.0)
    c = run.controller
    answer = c.transit_checkin(TransitRequest("b", (4,)))
    assert not answer.accepted and answer.code == "disabled"
    assert not c.transit.held
    run = Run(_config(tsp_phases=[2, 6]))
    run.run(20.0)
    c = run.controller
    answer = c.transit_checkin(TransitRequest("b", (4,)))
    assert (answer.accepted, answer.code) == (False, "phase_not_enabled")
    assert c.transit_checkin(TransitRequest("b", (2,))).accepted
    for eta in (run.t - 6.0, run.t + 601.0):
        answer = c.transit_checkin(TransitRequest("late", (2,), eta=eta))
        assert (answer.accepted, answer.code) == (False, "eta_out_of_range")
    with pytest.raises(ValueError, match="phase"):
        c.transit_checkin(TransitRequest("x", (9,)))
    with pytest.raises(ValueError, match="detector"):
        c.transit_checkin(TransitRequest("x", (2,), checkout_detector=40))
    assert not c.transit_checkout("nobody")


def test_unknown_tsp_phase_in_a_plan_is_a_config_error() -> None:
    doc = tomllib.loads((EXAMPLES / "eight_phase.toml").read_text())
    doc["plans"][0]["tsp_phases"] = [4, 12]
    config, problems = validate_document(doc)
    assert config is None
    assert any("tsp_phases" in str(p) for p in problems)


# --------------------------------------------------------------------------- free modes


def _phase4_green(run: Run) -> Outputs:
    """Phase 4 just turned green (its call only), phase 2 calling across the barrier."""
    run.presence = {2, 4}
    out = run.until(lambda o: 4 in _greens(o))
    run.presence = {2}
    return out


def test_green_extension_holds_the_bus_phase_up_to_max_extend() -> None:
    # the same junction without TSP: phase 4 gaps out after its minimum
    base = Run(_config())
    base.run(10.0)
    _phase4_green(base)
    start = base.t
    base.until(lambda o: 4 not in _greens(o))
    plain = base.t - start
    assert plain < 13.0

    run = Run(_config(tsp_max_extend_s=10.0))
    run.run(10.0)
    _phase4_green(run)
    run.run(1.0)
    t_in = run.t
    answer = run.controller.transit_checkin(TransitRequest("bus", (4,), eta=t_in + 8.0))
    assert answer.accepted and answer.reason == ""
    run.until(lambda o: 4 not in _greens(o))
    start, end = run.green_span(4)
    # held until ETA + 3 s grace, capped by max extend from the decision
    assert end == pytest.approx(min(t_in + 10.0, t_in + 8.0 + 3.0), abs=0.25)
    assert end - start > plain
    got = run.codes(TSP_CODES)
    assert [(c, p) for _, c, p in got] == [(112, 4), (114, 4)]
    assert all(t == pytest.approx(t_in, abs=0.15) for t, _, _ in got)


def test_no_extension_for_a_bus_further_than_max_extend() -> None:
    run = Run(_config(tsp_max_extend_s=5.0))
    run.run(10.0)
    _phase4_green(run)
    run.controller.transit_checkin(TransitRequest("bus", (4,), eta=run.t + 30.0))
    run.until(lambda o: 4 not in _greens(o))
    assert EventCode.TSP_EXTEND_GREEN not in {c for _, c, _ in run.codes(TSP_CODES)}


def _main_street_busy(run: Run) -> None:
    """Phases 2 and 6 just green and extended by constant traffic (they would run to max)."""
    run.presence = {4, 8}
    run.until(lambda o: 4 in _greens(o))
    run.presence = {2, 6, 9, 11}
    run.until(lambda o: {2, 6} <= _greens(o) and o.rings[0].elapsed >= 1.0)


@pytest.mark.parametrize("early", [10.0, 60.0])
def test_early_green_ends_conflicting_greens_early_never_below_min(early: float) -> None:
    config = _config(tsp_max_early_s=early)
    run = Run(config)
    run.run(30.0)
    _main_street_busy(run)
    run.controller.transit_checkin(TransitRequest("bus", (4,), eta=run.t + 20.0))
    run.until(lambda o: 4 in _greens(o))
    start, end = run.green_span(2)
    timing = run.controller.plan.timing[2]
    length = end - start
    # forced off at max1 − early after its start, never below its minimum green
    assert length == pytest.approx(max(timing.min_green, timing.max1 - early), abs=0.25)
    assert length >= timing.min_green
    assert [(c, p) for _, c, p in run.codes(TSP_CODES)][:2] == [(112, 4), (113, 4)]
    forced = run.codes({EventCode.PHASE_FORCE_OFF})
    assert forced and forced[-1][2] in (2, 6)


def test_early_green_never_cuts_a_walk_or_its_pedestrian_clearance() -> None:
    config = _config(tsp_max_early_s=60.0)
    run = Run(config)
    run.run(30.0)
    run.presence = {4, 8}
    run.until(lambda o: 4 in _greens(o))
    run.presence = {2, 6, 9, 11}
    run.peds = frozenset({2})  # a pedestrian call: 2's next green times walk + ped clear
    run.until(lambda o: 2 in _greens(o) and o.rings[0].elapsed >= 1.0)
    run.peds = frozenset()
    run.controller.transit_checkin(TransitRequest("bus", (4,)))
    run.until(lambda o: 4 in _greens(o))
    start, end = run.green_span(2)
    timing = run.controller.plan.timing[2]
    assert end - start >= timing.walk + timing.ped_clear - 0.05


def test_lockout_at_most_once_per_n_cycles_per_approach() -> None:
    config = _config(tsp_lockout_cycles=2, tsp_max_extend_s=5.0)
    run = Run(config)
    run.run(10.0)
    adjustments: list[float] = []
    cycle_of: list[int] = []
    for n in range(6):
        _phase4_green(run)
        run.run(0.5)
        answer = run.controller.transit_checkin(TransitRequest(f"bus{n}", (4,), eta=run.t + 2.0))
        assert answer.accepted
        locked = "locked out" in answer.reason
        before = len(run.codes({EventCode.TSP_EXTEND_GREEN}))
        run.until(lambda o: 4 not in _greens(o))
        made = len(run.codes({EventCode.TSP_EXTEND_GREEN})) > before
        assert made != locked, (n, answer)
        if made:
            adjustments.append(run.t)
            cycle_of.append(run.controller.transit.cycles[1])
        run.controller.transit_checkout(f"bus{n}")
    assert len(adjustments) == 3  # cycles n, n+2, n+4 out of six consecutive ones
    assert all(b - a >= 2 for a, b in itertools.pairwise(cycle_of))


def test_no_tsp_while_an_emergency_priority_is_active() -> None:
    run = Run(_config())
    run.run(20.0)
    c = run.controller
    c.request_priority(PriorityRequest("ev", (2, 6), eta=run.t + 5.0, timeout_s=20.0))
    run.run(1.0)
    answer = c.transit_checkin(TransitRequest("bus", (4,)))
    assert answer.accepted and "emergency" in answer.reason
    since = run.t
    while c.priority.busy:
        run.tick()
        assert run.t < since + 400
    adjusted = run.codes({EventCode.TSP_EARLY_GREEN, EventCode.TSP_EXTEND_GREEN})
    assert adjusted == []  # nothing while the priority (and its recovery) ran
    run.presence = {2, 6, 9, 11}
    run.until(lambda o: 4 in _greens(o))
    assert run.codes({EventCode.TSP_EARLY_GREEN, EventCode.TSP_EXTEND_GREEN}, since)


def test_checkout_by_detector_only_while_the_bus_phase_shows_green() -> None:
    run = Run(_config())
    run.run(10.0)
    run.presence = {2, 6}
    run.until(lambda o: 2 in _greens(o))
    c = run.controller
    c.transit_checkin(TransitRequest("bus", (4,), checkout_detector=10))
    run.presence = {2, 6, 10}  # on while phase 4 is red: no check-out
    run.run(1.0)
    run.presence = {2, 6}
    run.run(1.0)
    assert "bus" in c.transit.held
    run.until(lambda o: 4 in _greens(o))
    run.presence = {2, 6, 10}
    run.run(0.3)
    assert "bus" not in c.transit.held
    (t_out, code, phase), *more = run.codes({EventCode.TSP_CHECK_OUT})
    assert (code, phase, more) == (115, 4, [])
    assert t_out == pytest.approx(run.t - 0.2, abs=0.15)


def test_checkout_by_the_centre_and_by_timeout() -> None:
    run = Run(_config(tsp_timeout_s=20.0))
    run.run(10.0)
    c = run.controller
    c.transit_checkin(TransitRequest("one", (8,)))
    c.transit_checkin(TransitRequest("two", (4,), eta=run.t + 10.0, timeout_s=5.0))
    t0 = run.t
    run.run(1.0)
    assert c.transit_checkout("one")
    assert not c.transit_checkout("one")
    run.run(20.0)
    outs = run.codes({EventCode.TSP_CHECK_OUT})
    assert [(p) for _, _, p in outs] == [8, 4]
    assert outs[1][0] == pytest.approx(t0 + 15.0, abs=0.15)
    assert not c.transit.held


# --------------------------------------------------------------------------- coordinated


def _coord_run(seed: int, *, tsp: bool, **params: object) -> tuple[Run, list[bool]]:
    """Coordinated plan 2 under random traffic, random bus check-ins on 2, 3 and 4 (when
    ``tsp``); returns the run and, for every cycle, whether the coordinated phases 2 and 6
    were green 0.5 s after cycle zero (the offset on the shared clock)."""
    config = _config("coordinated", 2, tsp_enabled=tsp, tsp_lockout_cycles=1, **params)
    run = Run(config)
    rng = random.Random(seed)
    detectors = [d.id for d in config.detectors]
    c = run.controller
    at_zero: list[bool] = []
    n = 0
    for _ in range(round(1500.0 * 10)):
        if tsp and rng.random() < 0.004:
            n += 1
            phase = rng.choice([2, 3, 4])
            eta = run.t + rng.choice([0.0, 5.0, 12.0, 25.0, 40.0])
            c.transit_checkin(TransitRequest(f"b{n}", (phase,), eta=eta, timeout_s=10.0))
        for d in detectors:
            if d in run.presence:
                if rng.random() < 0.25:
                    run.presence.discard(d)
            elif rng.random() < 0.05:
                run.presence.add(d)
        out = run.tick()
        if out.cycle_time is not None and 0.5 <= out.cycle_time < 0.6:
            at_zero.append({2, 6} <= _greens(out))
    return run, at_zero


@pytest.mark.parametrize("seed", range(3))
def test_coordinated_tsp_keeps_the_cycle_and_offset(seed: int) -> None:
    run, at_zero = _coord_run(seed, tsp=True)
    made = {c for _, c, _ in run.codes(TSP_CODES)}
    assert {112, 113, 115} <= made, made
    assert run.controller.cycle_clock.transition is None
    # every cycle after the pick-up: the coordinated phases green at cycle zero, whatever
    # TSP did in the cycle before (the cycle recovers within itself)
    assert len(at_zero) >= 14
    assert all(at_zero[1:]), at_zero
    # the run without TSP, for reference: the same
    _, base = _coord_run(seed, tsp=False)
    assert all(base[1:]), base


def _at_cycle(run: Run, c: float, limit: float = 300.0) -> Outputs:
    return run.until(
        lambda o: o.cycle_time is not None and c <= o.cycle_time < c + 0.1 and o.t > 150.0,
        limit,
    )


def test_coordinated_extension_moves_the_force_off_within_the_bound() -> None:
    config = _config("coordinated", 2, tsp_max_extend_s=10.0)
    run = Run(config)
    run.presence = {2, 3, 4, 6, 7, 8, 10}  # phase 4 (after 3) runs to its force-off point
    _at_cycle(run, 70.0)
    c = run.controller
    c.transit_checkin(TransitRequest("bus", (4,), eta=run.t + 11.0))  # c = 81: past FO 79
    t_in = run.t
    out = run.until(lambda o: 4 not in _greens(o))
    assert out.cycle_time is not None
    # extended past its force-off point (79) up to the bound (5 s: phase 1 keeps its min)
    assert 79.5 < out.cycle_time <= 84.2
    ext = run.codes({EventCode.TSP_EXTEND_GREEN})
    assert len(ext) == 1 and ext[0][0] == pytest.approx(t_in + 9.0, abs=0.2)
    # the coordinated phases are green at cycle zero again
    out = _at_cycle(run, 0.5)
    assert {2, 6} <= _greens(out)


def test_coordinated_early_green_ends_the_coordinated_phases_up_to_max_early() -> None:
    config = _config("coordinated", 2, tsp_max_early_s=10.0)
    run = Run(config)
    run.presence = {2, 6, 9, 11, 4, 8}
    _at_cycle(run, 10.0)
    c = run.controller
    c.transit_checkin(TransitRequest("bus", (4,), eta=run.t + 15.0))
    out = run.until(lambda o: 4 in _greens(o))
    assert out.cycle_time is not None
    # 2 and 6 forced off from 29 − 10 = 19 on (after yellow and red, 6 s): 4 from about 25
    # instead of 35 (phase 3 is skipped in this cycle)
    assert 24.9 <= out.cycle_time <= 26.0
    assert [(code, p) for _, code, p in run.codes(TSP_CODES)][:2] == [(112, 4), (113, 4)]
    out = _at_cycle(run, 0.5)
    assert {2, 6} <= _greens(out)


def test_coordinated_extension_bound_leaves_the_next_phases_their_minimum() -> None:
    config = _config("coordinated", 2)
    plan = config.plan(2)
    windows = split_windows(config, plan)
    # phase 4 (35 s split) → phase 1 (15 s split, 5 s clearance, 5 s min): 5 s of slack
    assert coordinated_extend_bound(config, plan, 4) == pytest.approx(5.0)
    # the coordinated phase 2 → phase 3 (15 s, min 5): 5 s; ring 2 after the barrier: 7, 5 s
    assert coordinated_extend_bound(config, plan, 2) == pytest.approx(5.0)
    # phase 1 is followed by the coordinated phase: no extension at all
    assert coordinated_extend_bound(config, plan, 1) == 0.0
    assert windows[4].force_off == pytest.approx(79.0)


def test_no_extension_when_another_ring_goes_straight_to_its_coordinated_phase() -> None:
    config = _config("coordinated", 2)
    plan = config.plan(2)
    assert plan.coordination is not None
    splits = {**plan.coordination.splits, 5: 0.0, 6: 50.0}  # ring 2: 8 → 6 across the barrier
    plan = plan.model_copy(
        update={"coordination": plan.coordination.model_copy(update={"splits": splits})}
    )
    assert coordinated_extend_bound(config, plan, 4) == 0.0
    assert coordinated_extend_bound(config, plan, 2) == pytest.approx(5.0)
