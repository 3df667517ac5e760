"""Property test: the real Controller under random priority requests (random movements, ETAs
past, near and far, levels, overlapping requests, check-out detectors that fire or never do,
timeouts, cancels) and random detector traffic, checked every tick by the INDEPENDENT checker
(:mod:`edgectl.testing.checker`): no conflicting greens, no short yellow or red clearance, no
min green truncated below ``control.preempt_min_green``, the kernel's monitor never had to
intervene; and no called phase waits longer than a bound *across* priority preempts (the
checker suspends its own starvation check during a preempt, so this test keeps its own clock).

``PRIORITY_EXAMPLES`` (default 8) examples per mode.
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
from edgectl.control.types import EventCode, Inputs, OperatingState
from edgectl.testing.checker import SafetyChecker
from tests.control.priority_support import StarvationClock, flicker
from tests.control.test_safety_properties import NEEDS_CYCLE, _dwell_phases, _example, junctions

EXAMPLES = int(os.environ.get("PRIORITY_EXAMPLES", "8"))
MODES = [Mode.ACTUATED, Mode.ADAPTIVE, Mode.COORDINATED, Mode.MAXPRESSURE]
IDS = ("a", "b", "c")
STATS = {"ticks": 0, "preempt_ticks": 0}  # printed with -s


@dataclass(frozen=True)
class Action:
    """At ``tick``: a request (phases, eta offset, level, detector, timeout) or a cancel."""

    tick: int
    request_id: str
    phases: tuple[int, ...] = ()  # empty: a cancel
    eta_in: float = 0.0
    level: int = 1
    detector: int | None = None
    timeout_s: float | None = None


@st.composite
def scenario(draw: st.DrawFn, mode: Mode) -> tuple[DaemonConfig, int | None, list[Action], int]:
    config = draw(junctions)
    plan_id: int | None = None
    if mode in NEEDS_CYCLE:
        cycled = [p.id for p in config.plans if p.coordination and p.coordination.cycle > 0]
        if not cycled:
            config = _example(0)
            cycled = [p.id for p in config.plans if p.coordination]
        plan_id = draw(st.sampled_from(cycled))
    control = config.control.model_copy(
        update={
            "preempt_max_presence_s": float(draw(st.sampled_from([20, 60, 180]))),
            "priority_flush_s": float(draw(st.integers(0, 12))),
            "priority_recovery_max_s": 600.0,
        }
    )
    config = config.model_copy(update={"control": control})
    detectors = [d.id for d in config.detectors]
    actions: list[Action] = []
    tick = 0
    for _ in range(draw(st.integers(1, 10))):
        tick += draw(st.sampled_from([1, 10, 100, 300, 900, 2000]))
        rid = draw(st.sampled_from(IDS))
        if draw(st.integers(0, 4)) == 0:
            actions.append(Action(tick, rid))
            continue
        actions.append(
            Action(
                tick,
                rid,
                _dwell_phases(draw, config),
                eta_in=float(draw(st.sampled_from([-5, 0, 5, 20, 40, 90, 200]))),
                level=draw(st.integers(1, 3)),
                detector=draw(st.sampled_from([None, *detectors])) if detectors else None,
                timeout_s=draw(st.sampled_from([None, 5.0, 30.0, 600.0])),
            )
        )
    return config, plan_id, actions, draw(st.integers(0, 2**32 - 1))


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
    bound = (
        2 * checker.phases.starvation_bound_s
        + config.control.preempt_max_presence_s
        + lead_max
        + 10.0
    )
    omitted = {p for plan in config.plans for p, t in plan.timing.items() if t.omit}
    starvation = StarvationClock(bound, omitted)
    presence: set[int] = set()
    pending = list(actions)
    end = (actions[-1].tick if actions else 0) + 4000
    history: list[str] = []
    for tick in range(end):
        t = tick / 10
        while pending and pending[0].tick == tick:
            a = pending.pop(0)
            history.append(f"t={t:.1f} {a}")
            if not a.phases:
                controller.cancel_priority(a.request_id)
            else:
                controller.request_priority(
                    PriorityRequest(
                        a.request_id,
                        a.phases,
                        eta=t + a.eta_in,
                        level=a.level,
                        checkout_detector=a.detector,
                        timeout_s=a.timeout_s,
                    )
                )
        flicker(rng, detectors, presence)
        out = controller.step(t, Inputs(presence=frozenset(presence)))
        STATS["ticks"] += 1
        STATS["preempt_ticks"] += out.state is OperatingState.PREEMPT
        story = f"\nactions: {history}\nplanner log: {controller.priority.log[-12:]}"
        findings = checker.feed(out, controller.last_requests)
        assert not findings, f"t={t:.1f}: {findings}{story}"
        codes = [e.code for e in out.events]
        assert EventCode.MONITOR_VIOLATION not in codes, f"monitor at t={t:.1f}{story}"
        starvation.check(out, t, story)


@pytest.mark.parametrize("mode", MODES, ids=lambda m: m.value)
def test_priority_is_safe(mode: Mode) -> None:
    STATS.update(ticks=0, preempt_ticks=0)

    @seed(zlib.crc32(b"priority" + mode.value.encode()))
    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(scenario(mode))
    def check(s: tuple[DaemonConfig, int | None, list[Action], int]) -> None:
        config, plan_id, actions, rng_seed = s
        run(config, mode, plan_id, actions, rng_seed)

    check()
    print(f"\npriority properties {mode.value}: {STATS}")
    assert STATS["preempt_ticks"] > 0  # the runs did exercise priority preempts
