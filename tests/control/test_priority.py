"""Emergency-vehicle priority (edgectl.control.priority): the planner's timing rule, resolution
by level then ETA, late answers, the three check-outs, recovery; and through the real
Controller, the vehicle's movement green at the ETA, checked by the independent checker."""

from __future__ import annotations

import random
import tomllib
from pathlib import Path

import pytest

from edgectl.config.loader import validate_document
from edgectl.config.model import DaemonConfig
from edgectl.control.controller import Controller
from edgectl.control.priority import (
    PRIORITY_INPUT,
    PriorityPlanner,
    PriorityRequest,
    clear_bound,
    lead_time,
)
from edgectl.control.types import Inputs, Interval, OperatingState, Outputs, Preempt
from edgectl.testing.checker import SafetyChecker

EXAMPLES = Path(__file__).resolve().parents[2] / "edgectl" / "examples"


def _config(name: str = "eight_phase", **control: object) -> DaemonConfig:
    doc = tomllib.loads((EXAMPLES / f"{name}.toml").read_text())
    doc.setdefault("control", {}).update(control)
    config, problems = validate_document(doc)
    assert config is not None, problems
    return config


def _greens(out: Outputs) -> set[int]:
    return {r.phase for r in out.rings if r.phase is not None and r.interval is Interval.GREEN}


ON = Preempt(PRIORITY_INPUT, True, (4, 8))
OFF = Preempt(PRIORITY_INPUT, False)


# --------------------------------------------------------------------------- the timing rule


def test_lead_is_the_worst_conflicting_clearance_plus_the_flush() -> None:
    config = _config(priority_flush_s=8.0)
    plan = config.plans[0]
    ped = {p.id for p in config.phases if p.pedestrian}
    pm = config.control.preempt_min_green
    worst = max(
        max(min(t.min_green, pm), t.ped_clear if p in ped else 0.0) + t.yellow + t.red_clear
        for p, t in plan.timing.items()
        if p not in (4, 8)
    )
    assert clear_bound(config, plan, (4, 8)) == pytest.approx(worst + 0.3)
    assert lead_time(config, plan, (4, 8)) == pytest.approx(worst + 0.3 + 8.0)


def test_per_phase_flush_takes_the_longest_of_the_movement() -> None:
    config = _config(priority_flush_s=5.0, priority_flush_phase_s={"8": 12.0})
    plan = config.plans[0]
    flush_48 = lead_time(config, plan, (4, 8)) - clear_bound(config, plan, (4, 8))
    assert flush_48 == pytest.approx(12.0)
    assert lead_time(config, plan, (4,)) - clear_bound(config, plan, (4,)) == pytest.approx(5.0)


def test_the_preempt_starts_at_eta_minus_lead_not_before() -> None:
    config = _config()
    plan = config.plans[0]
    planner = PriorityPlanner(config)
    lead = lead_time(config, plan, (4, 8))
    answer = planner.request(0.0, PriorityRequest("ev", (4, 8), eta=100.0), plan)
    assert answer.honoured
    assert answer.start == pytest.approx(100.0 - lead)
    assert answer.green_at <= 100.0 - config.control.priority_flush_s
    started = None
    for k in range(1000):
        t = k / 10
        if planner.step(t, frozenset(), None, plan):
            started = t
            break
    assert started is not None
    assert 100.0 - lead <= started < 100.0 - lead + 0.1 + 1e-9


def test_a_late_request_is_served_now_and_answered_late() -> None:
    config = _config()
    plan = config.plans[0]
    planner = PriorityPlanner(config)
    clear = clear_bound(config, plan, (4, 8))
    answer = planner.request(50.0, PriorityRequest("ev", (4, 8), eta=55.0), plan)
    assert not answer.honoured
    assert answer.green_at == pytest.approx(50.0 + clear)
    assert planner.step(50.0, frozenset(), None, plan) == (ON,)


# --------------------------------------------------------------------------- resolution


def test_level_wins_then_eta() -> None:
    config = _config()
    plan = config.plans[0]
    planner = PriorityPlanner(config)
    planner.request(0.0, PriorityRequest("low", (4, 8), eta=1.0, level=2), plan)
    planner.request(0.0, PriorityRequest("high", (2, 6), eta=5.0, level=1), plan)
    planner.request(0.0, PriorityRequest("high-later", (4, 8), eta=6.0, level=1), plan)
    assert planner.step(0.0, frozenset(), None, plan) == (Preempt(PRIORITY_INPUT, True, (2, 6)),)
    assert planner.active is not None and planner.active.request.id == "high"


def test_a_higher_level_takes_over_a_running_priority() -> None:
    config = _config()
    plan = config.plans[0]
    planner = PriorityPlanner(config)
    planner.request(0.0, PriorityRequest("bus", (4, 8), eta=1.0, level=3), plan)
    assert planner.step(0.0, frozenset(), None, plan) == (ON,)
    planner.request(1.0, PriorityRequest("ambulance", (2, 6), eta=2.0, level=1), plan)
    assert planner.step(1.0, frozenset(), None, plan) == (
        OFF,
        Preempt(PRIORITY_INPUT, True, (2, 6)),
    )
    # the same level does not take over (no flip-flop between equals)
    planner.request(2.0, PriorityRequest("fire", (4, 8), eta=2.5, level=1), plan)
    assert planner.step(2.0, frozenset(), None, plan) == ()
    answer = planner.answer(2.0, planner.requests["fire"], plan)
    assert not answer.honoured and "ambulance" in answer.reason


# --------------------------------------------------------------------------- check-out


def test_checkout_by_cancel_and_by_timeout() -> None:
    config = _config(priority_timeout_s=20.0)
    plan = config.plans[0]
    planner = PriorityPlanner(config)
    planner.request(0.0, PriorityRequest("a", (4, 8), eta=1.0), plan)
    assert planner.step(0.0, frozenset(), None, plan) == (ON,)
    assert planner.cancel("a") and not planner.cancel("a")
    assert planner.step(0.1, frozenset(), None, plan) == (OFF,)

    planner = PriorityPlanner(config)
    planner.request(0.0, PriorityRequest("b", (4, 8), eta=1.0, timeout_s=10.0), plan)
    assert planner.step(0.0, frozenset(), None, plan) == (ON,)
    assert planner.step(10.9, frozenset(), None, plan) == ()
    assert planner.step(11.0, frozenset(), None, plan) == (OFF,)


def test_never_held_past_max_presence() -> None:
    config = _config(preempt_max_presence_s=30.0, priority_timeout_s=600.0)
    plan = config.plans[0]
    planner = PriorityPlanner(config)
    planner.request(0.0, PriorityRequest("stuck", (4, 8), eta=1.0), plan)
    out = [(k / 10, planner.step(k / 10, frozenset(), None, plan)) for k in range(400)]
    changes = [(t, d) for t, d in out if d]
    assert changes[0] == (0.0, (ON,))
    assert changes[1][1] == (OFF,) and changes[1][0] < 30.0
    assert len(changes) == 2


def _run_until(controller: Controller, t0: float, t1: float, presence: set[int]) -> Outputs:
    out = controller.last
    for k in range(round(t0 * 10), round(t1 * 10)):
        out = controller.step(k / 10, Inputs(presence=frozenset(presence)))
    assert out is not None
    return out


def test_checkout_by_detector_only_once_the_movement_was_green() -> None:
    config = _config()
    controller = Controller(config)
    everything = {d.id for d in config.detectors}
    _run_until(controller, 0.0, 40.0, everything)
    detector = 9
    controller.request_priority(PriorityRequest("ev", (4, 8), eta=60.0, checkout_detector=9))
    # the detector is on all along before the green: no check-out then
    out = _run_until(controller, 40.0, 70.0, everything)
    assert out.state is OperatingState.PREEMPT and {4, 8} <= _greens(out)
    out = _run_until(controller, 70.0, 71.0, everything - {detector})
    assert out.state is OperatingState.PREEMPT
    out = _run_until(controller, 71.0, 72.0, everything)  # the vehicle crosses the detector
    assert out.state is OperatingState.NORMAL
    assert "ev" not in controller.priority.requests


def test_recovery_serves_the_delayed_phases_before_the_next_priority() -> None:
    config = _config()
    controller = Controller(config)
    everything = {d.id for d in config.detectors}
    _run_until(controller, 0.0, 40.0, everything)
    controller.request_priority(PriorityRequest("one", (4, 8), eta=45.0, timeout_s=5.0))
    _run_until(controller, 40.0, 51.0, everything)
    assert controller.last is not None and controller.last.state is OperatingState.NORMAL
    delayed = set(controller.priority.delayed)
    assert delayed  # every other phase is called
    controller.request_priority(PriorityRequest("two", (4, 8), eta=52.0, timeout_s=600.0))
    served: set[int] = set()
    t = 51.0
    while controller.state is not OperatingState.PREEMPT:
        out = _run_until(controller, t, t + 0.1, everything)
        served |= _greens(out)
        t += 0.1
        assert t < 51.0 + config.control.priority_recovery_max_s + 1.0
    assert delayed <= served


# --------------------------------------------------------------------------- simulate level


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("movement", [(4, 8), (2, 6), (1, 5), (3, 7)])
def test_the_movement_is_green_at_the_eta(seed: int, movement: tuple[int, int]) -> None:
    """Random traffic, a request with enough lead: green at (and before) the ETA, safely."""
    config = _config()
    rng = random.Random(seed * 31 + movement[0])
    controller = Controller(config)
    checker = SafetyChecker(config)
    detectors = [d.id for d in config.detectors]
    presence: set[int] = set()
    t_request = rng.uniform(20.0, 80.0)
    lead = lead_time(config, controller.plan, movement)
    eta = t_request + lead + rng.uniform(0.0, 60.0)
    asked = False
    green_at_eta = False
    for k in range(round((eta + 40.0) * 10)):
        t = k / 10
        if not asked and t >= t_request:
            answer = controller.request_priority(PriorityRequest("ev", movement, eta=eta))
            assert answer.honoured
            asked = True
        for d in detectors:
            if d in presence and rng.random() < 0.3:
                presence.discard(d)
            elif rng.random() < 0.03:
                presence.add(d)
        out = controller.step(t, Inputs(presence=frozenset(presence)))
        assert checker.feed(out, controller.last_requests) == []
        if abs(t - (eta - config.control.priority_flush_s)) < 0.05 or abs(t - eta) < 0.05:
            assert set(movement) <= _greens(out), f"t={t}: {out.rings}"
            green_at_eta = True
    assert green_at_eta
    assert controller.state is OperatingState.NORMAL  # released after the timeout
