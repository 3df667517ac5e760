"""The coordination reference and the cycle clock's transitions (pure, virtual time)."""

from __future__ import annotations

from typing import Any

import pytest

from edgectl.config.loader import validate_document
from edgectl.config.model import Config, Mode
from edgectl.control.controller import Controller
from edgectl.control.coordination import (
    IN_STEP_TOLERANCE_S,
    CycleClock,
    CycleTerms,
    Transition,
    cycle_terms,
    reference_seconds,
    target_position,
)
from edgectl.control.types import EventCode, Inputs, SetPlan

from .engine_driver import make_config

TICK = 0.1


@pytest.fixture
def eight() -> Any:
    return make_config()


def terms(cycle: float = 100.0, offset: float = 0.0, ref: float = 0.0) -> CycleTerms:
    return CycleTerms(
        cycle=cycle,
        offset=offset,
        reference_s=ref,
        coord_end=29.0,
        shortway=0.2,
        dwell_max=0.2 * cycle,
    )


def run(clock: CycleClock, t0: float, seconds: float, sync0: float, tt: CycleTerms) -> float:
    """Step ``clock`` for ``seconds`` with the shared clock running in step with ``now``;
    return the time (controller) at which the transition ended (inf if it did not)."""
    ended = float("inf")
    for k in range(round(seconds / TICK) + 1):
        now = t0 + k * TICK
        before = clock.transition
        clock.step(now, sync0 + k * TICK, tt)
        if before is not None and clock.transition is None and ended == float("inf"):
            ended = now
    return ended


# --------------------------------------------------------------------- reference arithmetic


def test_reference_seconds() -> None:
    assert reference_seconds("00:00") == 0.0
    assert reference_seconds("06:30") == 6 * 3600 + 30 * 60
    assert reference_seconds("23:59:59") == 86399.0
    for bad in ("24:00", "7:00", "12:60", "12:00:60", "noon", "12"):
        with pytest.raises(ValueError, match="sync reference"):
            reference_seconds(bad)


def test_target_counts_from_reference_and_offset() -> None:
    assert target_position(0.0, 0.0, 0.0, 100.0) == 0.0
    assert target_position(86400.0 + 130.0, 0.0, 20.0, 100.0) == pytest.approx(10.0)
    # a reference of 00:00:30 moves cycle zero 30 s later
    assert target_position(86400.0 + 30.0, 30.0, 0.0, 100.0) == pytest.approx(0.0)


# --------------------------------------------------------------------- the cycle clock


def test_start_up_picks_up_at_once_and_ends_at_cycle_zero() -> None:
    clock = CycleClock()
    tt = terms()
    assert clock.step(0.0, 1234.5, tt) == pytest.approx(34.5)
    assert clock.transition is Transition.IMMEDIATE
    ended = run(clock, 0.0, 100.0, 1234.5, tt)
    assert ended == pytest.approx(65.5, abs=0.15)  # at the next cycle zero
    assert clock.transition is None


def test_small_differences_are_followed_never_backwards() -> None:
    clock = CycleClock()
    tt = terms()
    clock.step(0.0, 10.0, tt)
    clock.step(0.1, 10.1 + 0.3, tt)  # a small forward jump: followed
    assert clock.position == pytest.approx(10.4)
    clock.step(0.2, 10.2, tt)  # the shared clock went back 0.3 s: the cycle waits
    assert clock.position == pytest.approx(10.4)
    assert clock.transition is not Transition.SHORTWAY and clock.transition is not Transition.DWELL


@pytest.mark.parametrize("step_s", [30.0, -30.0, 12.0, -12.0, 49.0, -49.0])
def test_a_clock_step_ends_in_a_bounded_transition(step_s: float) -> None:
    clock = CycleClock()
    tt = terms()
    run(clock, 0.0, 150.0, 0.0, tt)  # in step
    assert clock.transition is None
    positions: list[float] = []
    t0, sync0 = 150.1, 150.1 + step_s
    clock.step(t0, sync0, tt)
    assert clock.transition in (Transition.SHORTWAY, Transition.DWELL)
    kind = clock.transition
    ended = float("inf")
    prev = clock.position
    for k in range(1, 6000):
        now = t0 + k * TICK
        clock.step(now, sync0 + k * TICK, tt)
        assert clock.position is not None and prev is not None
        advance = (clock.position - prev) % 100.0
        assert advance <= TICK * 1.2 + 1e-9  # never faster than shortway allows
        positions.append(advance)
        prev = clock.position
        if clock.transition is None:
            ended = now - t0
            break
    # the shorter way: forward (shortway) when the clock jumped ahead by less than ~half
    if step_s in (12.0, 30.0):
        assert kind is Transition.SHORTWAY
    if step_s in (-12.0, -30.0):
        assert kind is Transition.DWELL
    assert ended <= 6 * 100.0, ended
    assert (
        abs(
            ((clock.position or 0.0) - target_position(sync0 + ended, 0.0, 0.0, 100.0) + 50) % 100
            - 50
        )
        < 1e-6
    )


def test_dwell_is_bounded_per_cycle() -> None:
    clock = CycleClock()
    tt = terms()
    run(clock, 0.0, 100.0, 0.0, tt)
    sync0 = 100.1 - 45.0
    stopped = 0.0
    for k in range(1000):  # 100 s: one cycle of real time
        before = clock.position
        clock.step(100.1 + k * TICK, sync0 + k * TICK, tt)
        if before == clock.position:
            stopped += TICK
    assert stopped <= 0.2 * 100.0 + TICK


def test_shortway_is_capped_by_minimum_service(eight: Config) -> None:
    tt = cycle_terms(eight, eight.plan(2))
    assert tt is not None
    assert tt.cycle == 100.0 and tt.coord_end == 29.0
    # phase 4: split 35, walk + ped clear + yellow + red = 7 + 19 + 6 = 32 → 35/32 − 1
    assert tt.shortway == pytest.approx(35 / 32 - 1)
    assert tt.dwell_max == 20.0
    assert tt.reference_s == 0.0


def test_plan_sync_reference_overrides_the_global_one(eight: Config) -> None:
    doc = eight.model_dump(mode="json", exclude_none=True)
    doc["control"]["sync_reference"] = "06:00"
    doc["plans"][1]["coordination"]["sync_reference"] = "06:00:30"
    config, problems = validate_document(doc)
    assert config is not None, problems
    tt = cycle_terms(config, config.plan(2))
    assert tt is not None and tt.reference_s == 6 * 3600 + 30
    doc["plans"][1]["coordination"].pop("sync_reference")
    config, _ = validate_document(doc)
    assert config is not None
    tt = cycle_terms(config, config.plan(2))
    assert tt is not None and tt.reference_s == 6 * 3600


@pytest.mark.parametrize("value", ["24:00", "6:00", "06:00:99", "noon"])
def test_a_bad_sync_reference_is_a_config_error(eight: Config, value: str) -> None:
    doc = eight.model_dump(mode="json", exclude_none=True)
    doc["plans"][1]["coordination"]["sync_reference"] = value
    config, problems = validate_document(doc)
    assert config is None
    assert any("plans" in str(p) and "sync_reference" in str(p) for p in problems), problems
    doc = eight.model_dump(mode="json", exclude_none=True)
    doc["control"]["sync_reference"] = value
    config, problems = validate_document(doc)
    assert config is None
    assert any("control.sync_reference" in str(p) for p in problems), problems


def test_controller_reports_transitions(eight: Config) -> None:
    """Event 150 at each change of the coordination state, and ``Outputs.transition``."""
    c = Controller(eight, mode=Mode.COORDINATED, plan_id=2)
    events: list[tuple[float, int]] = []
    transitions: set[str | None] = set()
    for k in range(8000):
        sync = k * TICK + (30.0 if k >= 2000 else 0.0)  # the clock steps +30 s at 200 s
        out = c.step(k * TICK, Inputs(sync_s=sync))
        transitions.add(out.transition)
        events += [
            (e.t, e.param) for e in out.events if e.code == EventCode.COORD_CYCLE_STATE_CHANGE
        ]
    assert events[0] == (0.0, 6)  # pick-up at start
    assert events[1][1] == 1  # in step at the first cycle zero
    # the step: the shorter way is a dwell here (70 s at 20 s a cycle, against 30 s of shortway
    # at 6.1 s a cycle: phase 4's pedestrian service caps the shortway at 35/32 − 1)
    assert events[2] == (200.0, 4)
    assert events[3][1] == 1 and events[3][0] < 200.0 + 6 * 100
    assert {"immediate", "dwell", None} <= transitions


def test_plan_change_walks_to_the_new_offset(eight: Config) -> None:
    c = Controller(eight, mode=Mode.COORDINATED, plan_id=2)
    plan = eight.plan(2)
    assert plan.coordination is not None
    moved = plan.model_copy(
        update={"coordination": plan.coordination.model_copy(update={"offset": 40.0})}
    )
    kinds: list[int] = []
    for k in range(6000):
        directives = (SetPlan(moved),) if k == 1500 else ()
        out = c.step(k * TICK, Inputs(sync_s=k * TICK, directives=directives))
        kinds += [e.param for e in out.events if e.code == EventCode.COORD_CYCLE_STATE_CHANGE]
    assert 3 in kinds or 4 in kinds
    assert kinds[-1] == 1
    assert c.view.cycle_time() == pytest.approx((599.9 - 40.0) % 100.0, abs=IN_STEP_TOLERANCE_S)


def test_an_early_return_yields_at_the_force_off_point(eight: Config) -> None:
    """Phase 4 maxes out and nothing else is called: the coordinated phase comes back early
    (71 s) and still yields at its force-off point (29 s), not after its minimum."""
    c = Controller(eight, mode=Mode.COORDINATED, plan_id=2)
    yellows: list[float] = []
    greens: list[float] = []
    for k in range(6000):
        out = c.step(k * TICK, Inputs(presence=frozenset({4}), sync_s=k * TICK))
        for e in out.events:
            if e.param == 2 and e.code == EventCode.PHASE_BEGIN_YELLOW:
                yellows.append(round(e.t % 100.0, 1))
            if e.param == 2 and e.code == EventCode.PHASE_BEGIN_GREEN:
                greens.append(round(e.t % 100.0, 1))
    assert len(yellows) >= 5
    assert set(yellows[1:]) == {29.0}, yellows
    assert set(greens[1:]) == {71.0}, greens  # early: phase 4 maxed out at 65 s
