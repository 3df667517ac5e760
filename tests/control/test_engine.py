"""Behaviour of the NEMA timing engine, driven through the Controller in virtual time.

Every run is also fed to the independent checker (``edgectl.testing.checker``); each test
ends by asserting it found nothing. Timings are those of plan 1 of
``edgectl/examples/eight_phase.toml``:
phases 2/6 min 10 s (min recall), 4/8 min 10 s, yellow 4 s, red clear 2 s, walk 7 s, ped
clear 19 s; lefts 1/3/5/7 min 5 s, yellow 3.5 s, red clear 1.5 s, detector delay 2 s.
Start-up: flash 0–5 s, all-red 5–7 s, phases 2 and 6 green at 7.0 s.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from edgectl.cabinet.channels import ChannelState
from edgectl.config.model import Mode
from edgectl.control.engine import Engine
from edgectl.control.types import (
    EnterFlash,
    EventCode,
    ExitFlash,
    FlashReason,
    Inputs,
    Interval,
    OperatingState,
    Preempt,
    Requests,
    SetMode,
    SetPlan,
)

from .engine_driver import Driver, make_config, timing

S = ChannelState
E = EventCode


@pytest.fixture
def eight() -> Any:
    return make_config()


def call(d: Driver, det: int, seconds: float = 0.5) -> None:
    """Occupy a detector for a while (then release it)."""
    d.presence.add(det)
    d.run(seconds)
    d.presence.discard(det)


def clean(d: Driver) -> None:
    assert d.findings == []
    assert d.controller.counters["violations"] == 0


def test_startup_flash_all_red_then_startup_phases(eight: Any) -> None:
    d = Driver(eight)
    out = d.step()
    assert out.state is OperatingState.STARTUP_FLASH
    assert all(s is S.FR for ch, s in out.channels if ch <= 8)
    assert all(s is S.OFF for ch, s in out.channels if ch > 8)
    assert d.ev(E.UNIT_FLASH_STATUS_CHANGE, 1) == [0.0]
    d.run(4.9)
    assert d.state() is OperatingState.STARTUP_FLASH
    d.step()  # t = 5.0
    assert d.state() is OperatingState.ALL_RED
    assert all(s in (S.R, S.DW) for _, s in d.last.channels)
    assert d.ev(E.UNIT_FLASH_STATUS_CHANGE, 0) == [5.0]
    d.run(1.9)
    assert d.state() is OperatingState.ALL_RED
    d.step()  # t = 7.0
    assert d.state() is OperatingState.NORMAL
    assert d.veh(2) is S.G and d.veh(6) is S.G
    assert {p for p in range(1, 9) if d.veh(p) is S.G} == {2, 6}
    assert d.green_starts(2) == [7.0] and d.green_starts(6) == [7.0]
    clean(d)


def test_gap_out_at_min_skips_uncalled_and_dual_entry(eight: Any) -> None:
    d = Driver(eight)
    d.run(8.0)
    call(d, 4)  # a call on 4 only
    d.run(30.0)
    # 2/6 have no extension: gap out at the end of min green (7 + 10)
    assert d.ev(E.PHASE_GAP_OUT, 2) == [17.0] and d.ev(E.PHASE_GAP_OUT, 6) == [17.0]
    assert d.ev(E.PHASE_BEGIN_YELLOW, 2) == [17.0]
    assert d.ev(E.PHASE_BEGIN_RED_CLEAR, 2) == [21.0]
    assert d.ev(E.BARRIER_TERMINATION) == [23.0]
    assert d.green_starts(4) == [23.0]
    assert d.green_starts(8) == [23.0]  # dual entry: ring 2 has no call in the group
    assert d.green_starts(3) == [] and d.green_starts(7) == []  # uncalled: skipped
    assert d.interval_lengths(2, S.Y) == [4.0]
    assert d.ev(E.PHASE_CALL_REGISTERED, 4) == [8.0]
    clean(d)


def test_max_out_with_continuous_demand_and_simultaneous_gap_out(eight: Any) -> None:
    d = Driver(eight)
    d.run(7.0)
    d.presence.add(2)  # extends 2 for ever
    d.run(1.0)
    call(d, 4)  # conflicting call at 8.0: max timer of 2 starts
    d.run(50.0)
    assert d.ev(E.PHASE_MAX_OUT, 2) == [48.0]  # 8 + max1 40
    # 6 gapped out at 17 but waits green at the barrier for ring 1 (simultaneous gap-out)
    assert d.ev(E.PHASE_GAP_OUT, 6) == [48.0]
    assert d.ev(E.PHASE_BEGIN_YELLOW, 6) == [48.0]
    assert d.green_starts(4) == [54.0]
    clean(d)


def test_max2_request(eight: Any) -> None:
    d = Driver(eight)
    d.requests = Requests(max2=True)
    d.run(7.0)
    d.presence.add(2)
    d.run(1.0)
    call(d, 4)
    d.run(60.0)
    assert d.ev(E.PHASE_MAX_OUT, 2) == [63.0]  # 8 + max2 55
    clean(d)


def test_force_off_after_min_green(eight: Any) -> None:
    d = Driver(eight)
    d.run(7.0)
    d.presence |= {2, 6}
    d.run(1.0)
    call(d, 4)
    d.requests = Requests(force_off=frozenset({2, 6}))  # asked early: waits for min green
    d.run(15.0)
    assert d.ev(E.PHASE_FORCE_OFF, 2) == [17.0]
    assert d.ev(E.PHASE_FORCE_OFF, 6) == [17.0]
    assert d.ev(E.PHASE_BEGIN_YELLOW, 2) == [17.0]
    clean(d)


def test_ring_transition_within_group_is_independent(eight: Any) -> None:
    d = Driver(eight)
    d.run(8.0)
    d.presence |= {3, 4, 7, 8}
    d.run(3.0)  # 3 and 7 need 2 s (detector delay)
    d.presence -= {3, 4, 8}
    d.run(40.0)
    assert d.green_starts(3) == [23.0] and d.green_starts(7) == [23.0]
    assert d.ev(E.PHASE_GAP_OUT, 3) == [28.0]  # min 5, no extension
    assert d.green_starts(4) == [33.0]  # after 3.5 yellow + 1.5 red clear
    assert d.veh(7, d.outputs[330]) is S.G  # ring 2 still timing 7
    assert d.ev(E.PHASE_MAX_OUT, 7) == [43.0]  # 7 extended by its detector to max 20
    clean(d)


def test_rest_in_green_without_calls(eight: Any) -> None:
    d = Driver(eight)
    d.run(300.0)
    assert d.ev(E.PHASE_BEGIN_YELLOW) == []
    assert d.veh(2) is S.G and d.veh(6) is S.G
    clean(d)


def test_rest_in_red(eight: Any) -> None:
    def edit(doc: dict[str, Any]) -> None:
        doc["control"]["rest_in_red"] = True
        for p in (2, 6):
            timing(doc, p)["recall"] = "none"

    d = Driver(make_config(edit=edit))
    d.run(30.0)
    assert d.ev(E.PHASE_GAP_OUT, 2) == [17.0]
    assert all(d.veh(p) is S.R for p in range(1, 9))
    d.run(20.0)  # t = 50
    call(d, 4)
    d.run(5.0)
    assert d.green_starts(4) == [50.0]
    clean(d)


def test_max_recall_runs_to_max(eight: Any) -> None:
    def edit(doc: dict[str, Any]) -> None:
        timing(doc, 4)["recall"] = "max"

    d = Driver(make_config(edit=edit))
    d.run(80.0)
    # 4 is called by its recall, green at 23.0, never gaps out: max 30 s (2/6 on min recall)
    assert d.green_starts(4) == [23.0, 75.0]  # 53 + 4 + 2, then 2/6 min 10 s + 4 + 2
    assert d.ev(E.PHASE_MAX_OUT, 4) == [53.0]
    clean(d)


def test_soft_recall_returns_when_nothing_else_is_called(eight: Any) -> None:
    def edit(doc: dict[str, Any]) -> None:
        for p in (2, 6):
            timing(doc, p)["recall"] = "soft"

    d = Driver(make_config(edit=edit))
    d.run(8.0)
    call(d, 4)
    d.run(60.0)
    assert d.green_starts(4) == [23.0]
    assert d.ev(E.PHASE_GAP_OUT, 4) == [33.0]  # soft call on 2/6 once 4's call is served
    assert d.green_starts(2) == [7.0, 39.0]
    clean(d)


def test_no_recall_rests_on_the_side_street(eight: Any) -> None:
    def edit(doc: dict[str, Any]) -> None:
        for p in (2, 6):
            timing(doc, p)["recall"] = "none"

    d = Driver(make_config(edit=edit))
    d.run(8.0)
    call(d, 4)
    d.run(100.0)
    assert d.green_starts(2) == [7.0]
    assert d.veh(4) is S.G
    clean(d)


def test_ped_recall_walks_every_cycle(eight: Any) -> None:
    def edit(doc: dict[str, Any]) -> None:
        timing(doc, 4)["recall"] = "ped"

    d = Driver(make_config(edit=edit))
    d.run(200.0)
    walks = d.ev(E.PED_BEGIN_WALK, 4)
    assert walks[:2] == [23.0, 71.0]  # 23 + 26 (walk + ped clear) + 6, 2/6 10 + 6
    assert len(walks) >= 3
    clean(d)


def test_ped_service_walk_clear_dont_walk(eight: Any) -> None:
    d = Driver(eight)
    d.run(8.0)
    d.buttons.add(4)
    d.step()
    d.buttons.clear()
    assert d.ev(E.PED_CALL_REGISTERED, 4) == [8.0]
    d.run(60.0)
    assert d.green_starts(4) == [23.0]
    assert d.ev(E.PED_BEGIN_WALK, 4) == [23.0]
    assert d.ev(E.PED_BEGIN_CLEAR, 4) == [30.0]
    assert d.ev(E.PED_BEGIN_DONT_WALK, 4) == [49.0]
    # min green stretched to walk + ped clear; yellow no earlier than the end of ped clear
    assert d.ev(E.PHASE_BEGIN_YELLOW, 4) == [49.0]
    ped = [d.ped(4, o) for o in d.outputs]
    assert ped[229] is S.DW and ped[230] is S.W and ped[300] is S.FDW and ped[490] is S.DW
    assert d.ped(8, d.outputs[300]) is S.DW  # no ped call on 8
    clean(d)


def test_omit_request(eight: Any) -> None:
    d = Driver(eight)
    d.requests = Requests(omit=frozenset({4}))
    d.run(8.0)
    call(d, 4)
    d.run(60.0)
    assert d.green_starts(4) == []
    assert d.ev(E.PHASE_OMIT_ON, 4) == [0.0] or d.ev(E.PHASE_OMIT_ON, 4)
    d.requests = Requests()
    d.run(30.0)
    assert d.ev(E.PHASE_OMIT_OFF, 4)
    assert d.green_starts(4) == [d.ev(E.PHASE_OMIT_OFF, 4)[0] + 6.0]
    clean(d)


def test_hold_prevents_gap_and_max_out(eight: Any) -> None:
    d = Driver(eight)
    d.requests = Requests(hold=frozenset({2}))
    d.run(8.0)
    call(d, 4)
    d.run(100.0)
    assert d.veh(2) is S.G  # held far beyond max 40
    assert d.ev(E.PHASE_HOLD_ACTIVE, 2)
    d.requests = Requests()
    d.step()
    assert d.ev(E.PHASE_HOLD_RELEASED, 2)
    assert d.veh(2) is S.Y and d.veh(6) is S.Y
    clean(d)


def test_next_phase_chooses_phases_beyond_the_barrier(eight: Any) -> None:
    d = Driver(eight)
    d.run(8.0)
    d.presence |= {3, 4, 7, 8}
    d.run(3.0)
    d.presence.clear()
    d.requests = Requests(next_phase={1: 4, 2: 8})
    d.run(20.0)
    assert d.green_starts(4) == [23.0] and d.green_starts(8) == [23.0]
    assert d.green_starts(3) == [] and d.green_starts(7) == []
    clean(d)


def test_preempt_truncates_walk_never_clearances(eight: Any) -> None:
    d = Driver(eight)
    d.run(8.0)
    d.buttons.add(4)
    call(d, 4)
    d.buttons.clear()
    d.until(lambda o: d.veh(4, o) is S.G)
    assert d.t == pytest.approx(23.1)
    d.run(1.9)  # t = 25.0, walking
    d.step(directives=(Preempt(1, True, (2, 6)),))
    assert d.ev(E.PREEMPT_CALL_ON, 1) == [25.0]
    assert d.ev(E.PREEMPT_ENTRY_STARTED, 1) == [25.0]
    assert d.ev(E.PED_BEGIN_CLEAR, 4) == [25.0]  # walk truncated to ped clear
    assert d.ped(4) is S.FDW
    d.run(40.0)
    assert d.ev(E.PED_BEGIN_DONT_WALK, 4) == [44.0]  # ped clear ran in full (19 s)
    assert d.ev(E.PHASE_BEGIN_YELLOW, 4) == [44.0]
    assert d.ev(E.PHASE_BEGIN_YELLOW, 8) == [27.0]  # dual entry 8: preempt min green 4 s
    assert d.green_starts(2) == [7.0, 50.0]  # full yellow 4 + red clear 2
    assert d.ev(E.PREEMPT_BEGIN_DWELL) == [50.0]
    assert d.state() is OperatingState.PREEMPT
    d.step(directives=(Preempt(1, False),))
    assert d.ev(E.PREEMPT_CALL_OFF, 1) and d.ev(E.PREEMPT_EXIT)
    assert d.state() is OperatingState.NORMAL
    d.run(5.0)
    assert d.veh(2) is S.G
    clean(d)


def test_preempt_truncates_min_green_to_preempt_minimum(eight: Any) -> None:
    d = Driver(eight)
    d.run(8.0)
    call(d, 4)
    d.run(14.6)  # t = 23.1, 4 green since 23.0
    d.step(directives=(Preempt(2, True, ()),))  # all-red dwell
    d.run(15.0)
    assert d.ev(E.PHASE_BEGIN_YELLOW, 4) == [27.0]  # min 10 truncated to 4
    assert d.interval_lengths(4, S.Y) == [4.0]
    assert all(d.veh(p) is S.R for p in range(1, 9))
    assert d.ev(E.PREEMPT_BEGIN_DWELL) == [33.0]
    clean(d)


def test_plan_change_applies_at_the_barrier(eight: Any) -> None:
    plan2 = eight.plan(2)
    d = Driver(eight)
    d.run(8.0)
    call(d, 4)
    d.step(directives=(SetPlan(plan2),))
    assert d.last.plan == 1
    d.run(20.0)
    assert d.ev(E.COORD_PATTERN_CHANGE, 2) == [23.0]
    assert d.outputs[229].plan == 1 and d.outputs[230].plan == 2
    clean(d)


def test_commanded_flash_clears_then_flashes_and_exits(eight: Any) -> None:
    d = Driver(eight)
    d.run(10.0)
    d.step(directives=(SetMode(Mode.FLASH),))
    assert d.veh(2) is S.G  # min green is never cut by a commanded flash
    d.run(15.0)
    assert d.ev(E.PHASE_BEGIN_YELLOW, 2) == [17.0]
    assert d.interval_lengths(2, S.Y) == [4.0]
    assert d.ev(E.UNIT_FLASH_STATUS_CHANGE, 1) == [0.0, 23.0]
    assert d.state() is OperatingState.FLASH
    assert d.last.flash_reason is FlashReason.COMMAND
    assert d.last.mode is Mode.FLASH
    assert all(s is S.FR for ch, s in d.last.channels if ch <= 8)
    d.step(directives=(SetMode(Mode.ACTUATED),))  # t = 25.1
    assert d.state() is OperatingState.ALL_RED
    d.run(2.0)
    assert d.state() is OperatingState.NORMAL
    assert d.green_starts(2) == [7.0, 27.1]
    assert d.ev(E.MODE_CHANGE)
    clean(d)


def test_fault_flash_is_immediate_and_exit_waits_for_recovery(eight: Any) -> None:
    d = Driver(eight)
    d.run(10.0)
    d.step(directives=(EnterFlash(FlashReason.FAULT, "stuck"),))
    assert d.state() is OperatingState.FLASH
    assert all(s is S.FR for ch, s in d.last.channels if ch <= 8)
    assert "flash:fault:stuck" in d.last.alarms
    d.step(directives=(ExitFlash(),))  # too early: latched until min_recovery_flash (5 s)
    d.run(3.0)
    assert d.state() is OperatingState.FLASH
    d.run(1.9)  # t = 15.0
    assert d.state() is OperatingState.ALL_RED
    assert not any(a.startswith("flash:") for a in d.last.alarms)
    d.run(2.0)
    assert d.state() is OperatingState.NORMAL and d.veh(2) is S.G
    clean(d)


def test_yellow_main_flash(eight: Any) -> None:
    def edit(doc: dict[str, Any]) -> None:
        doc["control"]["flash_mode"] = "yellow_main"

    d = Driver(make_config(edit=edit))
    out = d.step()
    frame = out.frame
    assert frame[2] is S.FY and frame[6] is S.FY and frame[4] is S.FR and frame[9] is S.OFF


def test_skipped_and_repeated_ticks_never_shorten_intervals(eight: Any) -> None:
    engine = Engine(eight)
    t = 0.0
    frames: list[tuple[float, S]] = []
    for k in range(400):
        now = round(t, 1)
        presence = frozenset({4}) if 80 <= k < 85 else frozenset()
        out = engine.step(now, Inputs(presence=presence))
        frames.append((now, out.frame[2]))
        t += 0.5 if k % 7 == 3 else (0.0 if k % 11 == 5 else 0.1)
    yellow = [now for now, s in frames if s is S.Y]
    assert yellow
    assert max(yellow) - min(yellow) >= 4.0 - 0.5  # observed samples: first..last
    start = min(yellow)
    after = next(now for now, s in frames if now > start and s is not S.Y)
    assert after - start >= 4.0


def test_outputs_carry_rings_calls_detectors(eight: Any) -> None:
    d = Driver(eight)
    d.run(8.0)
    d.presence.add(4)
    out = d.step()
    assert out.calls == frozenset({4})
    assert [r.ring for r in out.rings] == [1, 2]
    assert out.rings[0].phase == 2 and out.rings[0].interval is Interval.GREEN
    assert out.rings[0].elapsed == pytest.approx(1.0)
    assert next(s for s in out.detectors if s.id == 4).on
    assert len(out.channels) == 12
    assert [e.code for e in out.events] == [E.DETECTOR_ON, E.PHASE_CALL_REGISTERED]


def test_overlap_follows_parents_with_their_clearance() -> None:
    def edit(doc: dict[str, Any]) -> None:
        doc["channels"].append(
            {"id": 13, "source": "overlap", "phase": 1, "overlap_parents": [1, 2]}
        )

    config = make_config(edit=edit)
    d = Driver(config)
    d.run(8.0)
    d.presence |= {1, 4}
    d.run(3.0)  # 1 needs 2 s of presence
    d.presence.clear()
    d.run(100.0)
    ov = [o.frame[13] for o in d.outputs]
    two = [d.veh(2, o) for o in d.outputs]
    # green with phase 2 from 7.0, then yellow and red clearance exactly with phase 2
    assert ov[70] is S.G and two[70] is S.G
    y = d.ev(E.PHASE_BEGIN_YELLOW, 2)[0]
    k = round(y * 10)
    assert ov[k - 1] is S.G and ov[k] is S.Y and two[k] is S.Y
    assert ov[k + 40] is S.R and two[k + 40] is S.R
    # phase 4 (conflicting) starts only after the overlap's red clearance
    assert d.green_starts(4)[0] >= y + 6.0
    clean(d)


def test_next_phase_requests_cannot_starve_a_call() -> None:
    d = Driver(make_config())
    d.run(8.0)
    call(d, 4)
    # a strategy keeps asking for 2/6 next: honoured only until 4's call is overdue
    d.requests = Requests(next_phase={1: 2, 2: 6}, force_off=frozenset({2, 6}))
    d.run(400.0)
    assert d.green_starts(4)
    limit = d.controller.engine.starve_after / 10
    assert d.green_starts(4)[0] <= 8.0 + limit + 20.0


def test_controller_flashes_in_the_same_tick_on_a_monitor_violation() -> None:
    from edgectl.control.controller import Controller

    class Broken:
        kind = "conflict"
        channels = (2, 4)
        detail = "test"

    class Monitor:
        def __init__(self) -> None:
            self.calls = 0

        def check(self, t: float, frame: Any, plan: Any) -> list[Any]:
            self.calls += 1
            return [Broken()] if t == 7.0 else []  # the start-up greens

        def reset(self) -> None:
            pass

    c = Controller(make_config(), monitor=Monitor())
    out = None
    for k in range(71):
        out = c.step(k / 10, Inputs())
    assert out is not None and out.t == 7.0
    assert out.state is OperatingState.FLASH
    assert out.flash_reason is FlashReason.FAULT
    assert all(s is S.FR for ch, s in out.channels if ch <= 8)
    assert "monitor:conflict" in out.alarms
    assert [e.param for e in out.events if e.code == E.MONITOR_VIOLATION] == [2]
    assert E.UNIT_FLASH_STATUS_CHANGE in [e.code for e in out.events]
    assert c.counters["violations"] == 1


def test_controller_starting_in_flash_mode() -> None:
    d = Driver(make_config(), mode=Mode.FLASH)
    d.run(20.0)
    assert d.state() is OperatingState.FLASH
    assert d.last.flash_reason is FlashReason.COMMAND
    d.step(directives=(SetMode(Mode.ACTUATED),))
    d.run(2.0)
    assert d.state() is OperatingState.NORMAL
    assert d.veh(2) is S.G
    clean(d)


def test_plan_change_applies_at_rest_when_no_barrier_is_crossed() -> None:
    """A junction resting in its main-street green with no other demand never crosses a
    barrier; the new plan must still take effect (rest is a safe point)."""
    from edgectl.config.loader import load_config
    from edgectl.control.controller import Controller
    from edgectl.control.types import EventCode, Inputs, SetPlan

    config = load_config(
        Path(__file__).resolve().parents[2] / "edgectl" / "examples" / "eight_phase.toml"
    )
    ctl = Controller(config)
    t = 0.0
    for _ in range(300):  # start-up, then rest in 2/6 green with no calls anywhere
        ctl.step(t, Inputs())
        t = round(t + 0.1, 1)
    out = ctl.step(t, Inputs(directives=(SetPlan(config.plan(2)),)))
    changes = [e for e in out.events if e.code == EventCode.COORD_PATTERN_CHANGE]
    for _ in range(5):
        t = round(t + 0.1, 1)
        changes += [
            e for e in ctl.step(t, Inputs()).events if e.code == EventCode.COORD_PATTERN_CHANGE
        ]
    assert [e.param for e in changes] == [2]
    assert ctl.plan.id == 2


def test_engine_package_pins_its_public_names() -> None:
    import edgectl.control.engine as engine_package

    assert engine_package.__all__ == ["Engine", "PhaseTimes", "mode_code"]
    assert all(hasattr(engine_package, name) for name in engine_package.__all__)
