"""Property test: the real Controller under random TSP check-ins and check-outs (random
movements, ETAs none, past, near and far, check-out detectors that fire or never do, missing
check-outs, timeouts) mixed with random emergency priority requests (overlapping, cancelled)
and random detector traffic, with random TSP bounds in the plans; checked every tick by the
INDEPENDENT checker (:mod:`edgectl.testing.checker`): no conflicting greens, no short yellow
or red clearance, no min green truncated (below ``preempt_min_green`` under a preempt), the
kernel's monitor never intervened; and no called phase waits longer than a bound across
preempts and TSP holds (this test keeps its own clock, as the checker pauses its own during
preempts and holds).

``TSP_EXAMPLES`` (default 6) examples per mode; ``-s`` prints the ticks run.
"""

from __future__ import annotations

import os
import random
import zlib
from dataclasses import dataclass

import pytest
from hypothesis import HealthCheck, Phase, given, seed, settings
from hypothesis import strategies as st

from edgectl.config.model import DaemonConfig, Mode
from edgectl.control.controller import Controller
from edgectl.control.priority import PriorityRequest, lead_time
from edgectl.control.transit import TransitRequest
from edgectl.control.types import EventCode, Inputs, OperatingState
from edgectl.testing.checker import SafetyChecker
from tests.control.priority_support import StarvationClock, flicker
from tests.control.test_safety_properties import NEEDS_CYCLE, _dwell_phases, _example, junctions

EXAMPLES = int(os.environ.get("TSP_EXAMPLES", "6"))
MODES = [Mode.ACTUATED, Mode.COORDINATED, Mode.FIXED, Mode.ADAPTIVE, Mode.MAXPRESSURE]
BUSES = ("b1", "b2", "b3")
EVS = ("ev1", "ev2")
STATS = {"ticks": 0, "preempt_ticks": 0, "tsp_adjustments": 0, "checkins": 0}


@dataclass(frozen=True)
class Action:
    """At ``tick``: ``kind`` "tsp" (a check-in), "tsp_out", "ev" (a request) or "ev_cancel"."""

    tick: int
    kind: str
    request_id: str
    phases: tuple[int, ...] = ()
    eta_in: float | None = None
    detector: int | None = None
    timeout_s: float | None = None
    level: int = 1


Scenario = tuple[DaemonConfig, int | None, list[Action], int]


@st.composite
def scenario(draw: st.DrawFn, mode: Mode) -> Scenario:
    config = draw(junctions)
    plan_id: int | None = None
    if mode in NEEDS_CYCLE:
        cycled = [p.id for p in config.plans if p.coordination and p.coordination.cycle > 0]
        if not cycled:
            config = _example(0)
            cycled = [p.id for p in config.plans if p.coordination]
        plan_id = draw(st.sampled_from(cycled))
    tsp = {
        "tsp_enabled": True,
        "tsp_max_extend_s": float(draw(st.sampled_from([0, 5, 10, 30, 60]))),
        "tsp_max_early_s": float(draw(st.sampled_from([0, 5, 10, 30, 60]))),
        "tsp_lockout_cycles": draw(st.integers(0, 3)),
        "tsp_timeout_s": float(draw(st.sampled_from([5, 30, 120]))),
    }
    plans = tuple(p.model_copy(update=tsp) for p in config.plans)
    control = config.control.model_copy(
        update={
            "preempt_max_presence_s": float(draw(st.sampled_from([20, 60, 180]))),
            "priority_recovery_max_s": 600.0,
        }
    )
    config = config.model_copy(update={"plans": plans, "control": control})
    detectors = [d.id for d in config.detectors]
    actions: list[Action] = []
    tick = 0
    for _ in range(draw(st.integers(1, 14))):
        tick += draw(st.sampled_from([1, 10, 50, 150, 400, 900]))
        kind = draw(st.sampled_from(["tsp", "tsp", "tsp", "tsp_out", "ev", "ev_cancel"]))
        if kind == "tsp_out":
            actions.append(Action(tick, kind, draw(st.sampled_from(BUSES))))
        elif kind == "ev_cancel":
            actions.append(Action(tick, kind, draw(st.sampled_from(EVS))))
        else:
            ids = BUSES if kind == "tsp" else EVS
            etas = [None, -5.0, 0.0, 5.0, 15.0, 40.0, 120.0] if kind == "tsp" else [0, 20, 90]
            eta = draw(st.sampled_from(etas))
            actions.append(
                Action(
                    tick,
                    kind,
                    draw(st.sampled_from(ids)),
                    _dwell_phases(draw, config),
                    eta_in=None if eta is None else float(eta),
                    detector=draw(st.sampled_from([None, *detectors])) if detectors else None,
                    timeout_s=draw(st.sampled_from([None, 5.0, 30.0, 300.0])),
                    level=draw(st.integers(1, 3)),
                )
            )
    return config, plan_id, actions, draw(st.integers(0, 2**32 - 1))


def _apply(controller: Controller, a: Action, t: float) -> None:
    if a.kind == "tsp":
        controller.transit_checkin(
            TransitRequest(
                a.request_id,
                a.phases,
                eta=None if a.eta_in is None else t + a.eta_in,
                timeout_s=a.timeout_s,
                checkout_detector=a.detector,
            )
        )
        STATS["checkins"] += 1
    elif a.kind == "tsp_out":
        controller.transit_checkout(a.request_id)
    elif a.kind == "ev":
        controller.request_priority(
            PriorityRequest(
                a.request_id,
                a.phases,
                eta=t + (a.eta_in or 0.0),
                level=a.level,
                checkout_detector=a.detector,
                timeout_s=a.timeout_s,
            )
        )
    else:
        controller.cancel_priority(a.request_id)


def run(
    config: DaemonConfig, mode: Mode, plan_id: int | None, actions: list[Action], rng_seed: int
) -> None:
    controller = Controller(config, mode=mode, plan_id=plan_id)
    checker = SafetyChecker(
        config, max_modes=frozenset({Mode.ACTUATED, Mode.ADAPTIVE, Mode.MAXPRESSURE})
    )
    rng = random.Random(rng_seed)
    detectors = [d.id for d in config.detectors]
    lead_max = max(lead_time(config, p, ()) for p in config.plans)
    extend_max = max(p.tsp_max_extend_s for p in config.plans)
    bound = (
        2 * checker.phases.starvation_bound_s
        + config.control.preempt_max_presence_s
        + lead_max
        + 2 * extend_max
        + 10.0
    )
    omitted = {p for plan in config.plans for p, t in plan.timing.items() if t.omit}
    starvation = StarvationClock(bound, omitted)
    presence: set[int] = set()
    pending = list(actions)
    end = (actions[-1].tick if actions else 0) + 3000
    history: list[str] = []
    for tick in range(end):
        t = tick / 10
        while pending and pending[0].tick == tick:
            a = pending.pop(0)
            history.append(f"t={t:.1f} {a}")
            _apply(controller, a, t)
        flicker(rng, detectors, presence)
        out = controller.step(t, Inputs(presence=frozenset(presence)))
        STATS["ticks"] += 1
        STATS["preempt_ticks"] += out.state is OperatingState.PREEMPT
        story = (
            f"\nactions: {history}\ntsp log: {controller.transit.log[-12:]}"
            f"\npriority log: {controller.priority.log[-8:]}"
        )
        findings = checker.feed(out, controller.last_requests)
        assert not findings, f"t={t:.1f}: {findings}{story}"
        codes = [e.code for e in out.events]
        assert EventCode.MONITOR_VIOLATION not in codes, f"monitor at t={t:.1f}{story}"
        adjusted = EventCode.TSP_EARLY_GREEN in codes or EventCode.TSP_EXTEND_GREEN in codes
        STATS["tsp_adjustments"] += adjusted
        if adjusted:
            assert not controller.priority.busy, f"TSP during a priority at t={t:.1f}{story}"
        starvation.check(out, t, story)


@pytest.mark.parametrize("mode", MODES, ids=lambda m: m.value)
def test_tsp_with_priority_is_safe(mode: Mode) -> None:
    STATS.update(ticks=0, preempt_ticks=0, tsp_adjustments=0, checkins=0)

    @seed(zlib.crc32(b"transit" + mode.value.encode()))
    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(scenario(mode))
    def check(s: Scenario) -> None:
        config, plan_id, actions, rng_seed = s
        run(config, mode, plan_id, actions, rng_seed)

    check()
    print(f"\ntransit properties {mode.value}: {STATS}")
    assert STATS["tsp_adjustments"] > 0  # the runs did exercise TSP adjustments
