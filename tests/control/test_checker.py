"""The independent checker finds every kind of violation and passes clean timelines."""

from __future__ import annotations

import random
from collections.abc import Iterable
from pathlib import Path

import pytest

from edgectl.cabinet.channels import ChannelState
from edgectl.config.junction import ConflictMatrix
from edgectl.config.loader import load_config
from edgectl.config.model import DaemonConfig, Mode
from edgectl.control.types import (
    Inputs,
    Interval,
    OperatingState,
    Outputs,
    PedInterval,
    Requests,
    RingStatus,
)
from edgectl.testing.checker import (
    ChannelChecker,
    PhaseChecker,
    SafetyChecker,
    channel_minimums,
    check_record,
    check_timeline,
    derive_channel_conflicts,
    read_record,
)

EXAMPLES = Path(__file__).resolve().parents[2] / "edgectl" / "examples"
S = ChannelState
# two-phase example: channel 1 = phase 2, 2 = phase 4, 3 = ped 2, 4 = ped 4
CONFLICTS = [(1, 2), (1, 4), (2, 3), (3, 4)]
YELLOW = {1: 4.0, 2: 3.5}
RED = {1: 2.0, 2: 2.0}
PED = {3: 12.0, 4: 17.0}


@pytest.fixture(scope="module")
def two() -> DaemonConfig:
    return load_config(EXAMPLES / "two_phase.toml", environ={})


@pytest.fixture(scope="module")
def eight() -> DaemonConfig:
    return load_config(EXAMPLES / "eight_phase.toml", environ={})


class Timeline:
    """Builds a full-frame timeline at 0.1 s ticks."""

    def __init__(self) -> None:
        self.t = 0.0
        self.frame = {1: S.R, 2: S.R, 3: S.DW, 4: S.DW}
        self.frames: list[tuple[float, dict[int, ChannelState]]] = []

    def hold(self, seconds: float, **states: ChannelState) -> Timeline:
        for name, state in states.items():
            self.frame[int(name[1:])] = state
        for _ in range(round(seconds * 10)):
            self.frames.append((self.t, dict(self.frame)))
            self.t = round(self.t + 0.1, 1)
        return self

    def clean_cycle(self) -> Timeline:
        self.hold(2.0)
        self.hold(7.0, c1=S.G, c3=S.W).hold(12.0, c3=S.FDW).hold(1.0, c3=S.DW)
        self.hold(4.0, c1=S.Y).hold(2.0, c1=S.R)
        self.hold(7.0, c2=S.G, c4=S.W).hold(17.0, c4=S.FDW)
        self.hold(3.5, c2=S.Y, c4=S.DW).hold(2.0, c2=S.R)
        return self.hold(5.0, c1=S.G)

    def kinds(self, tolerance: float = 1e-3) -> list[str]:
        findings = check_timeline(self.frames, CONFLICTS, YELLOW, RED, PED, tolerance=tolerance)
        return [f.kind for f in findings]


# --------------------------------------------------------------------------- conflicts


def test_derived_conflicts_two_phase(two: DaemonConfig) -> None:
    assert sorted(derive_channel_conflicts(two)) == CONFLICTS


def test_derived_conflicts_agree_with_the_kernel(eight: DaemonConfig, two: DaemonConfig) -> None:
    for config in (eight, two):
        kernel = ConflictMatrix.from_config(config).conflicting_channel_pairs()
        assert sorted(derive_channel_conflicts(config)) == kernel


def test_derived_conflicts_overlap_and_override(eight: DaemonConfig) -> None:
    channels = [*eight.channels]
    data = eight.model_dump()
    data["channels"] = [c.model_dump() for c in channels] + [
        {"id": 13, "source": "overlap", "phase": 1, "overlap_parents": (1, 2)}
    ]
    data["conflict_overrides"] = [(2, 6)]
    config = DaemonConfig.model_validate(data)
    pairs = derive_channel_conflicts(config)
    assert (1, 13) not in pairs
    assert (2, 13) not in pairs
    assert (5, 13) not in pairs
    assert (3, 13) in pairs
    assert (2, 6) in pairs
    assert (9, 11) in pairs  # peds of 2 and 6 now conflict too


def test_channel_minimums(two: DaemonConfig) -> None:
    m = channel_minimums(two, two.plan(1))
    assert m.yellow == {1: 4.0, 2: 3.5, 3: 4.0, 4: 3.5}
    assert m.red_clear[1] == 2.0
    assert m.ped_clear[3] == 12.0
    assert m.ped_clear[4] == 17.0


# --------------------------------------------------------------------------- channel timelines


def test_clean_cycle_passes() -> None:
    assert Timeline().clean_cycle().kinds() == []


def test_conflicting_greens() -> None:
    tl = Timeline().clean_cycle().hold(0.3, c2=S.G)
    assert tl.kinds().count("conflict") == 3


def test_conflicting_walk_and_green() -> None:
    tl = Timeline().clean_cycle().hold(0.1, c4=S.W)
    assert "conflict" in tl.kinds()


def test_flashing_is_not_a_conflict() -> None:
    tl = Timeline().clean_cycle().hold(2.0, c1=S.FY, c2=S.FR, c3=S.OFF, c4=S.OFF)
    assert tl.kinds() == []


def test_green_not_ending_in_yellow() -> None:
    assert Timeline().clean_cycle().hold(0.1, c1=S.R).kinds() == ["green_not_to_yellow"]


def test_yellow_to_green() -> None:
    tl = Timeline().clean_cycle().hold(4.0, c1=S.Y).hold(0.1, c1=S.G)
    assert tl.kinds() == ["yellow_to_green"]


def test_short_yellow() -> None:
    tl = Timeline().clean_cycle().hold(3.8, c1=S.Y).hold(1.0, c1=S.R)
    assert tl.kinds() == ["short_yellow"]


def test_short_red_clear_before_conflicting_green() -> None:
    tl = Timeline().clean_cycle().hold(4.0, c1=S.Y).hold(1.5, c1=S.R).hold(0.1, c2=S.G)
    assert tl.kinds() == ["short_red_clear"]


def test_short_red_clear_before_conflicting_walk() -> None:
    tl = Timeline().clean_cycle().hold(4.0, c1=S.Y).hold(0.5, c1=S.R).hold(0.1, c4=S.W)
    assert tl.kinds() == ["short_red_clear"]


def test_walk_not_followed_by_ped_clear() -> None:
    tl = Timeline().hold(1.0).hold(7.0, c1=S.G, c3=S.W).hold(1.0, c3=S.DW)
    assert tl.kinds() == ["walk_not_to_ped_clear"]


def test_short_ped_clear() -> None:
    tl = Timeline().hold(1.0).hold(7.0, c1=S.G, c3=S.W).hold(11.0, c3=S.FDW).hold(1, c3=S.DW)
    assert tl.kinds() == ["short_ped_clear"]


def test_flash_entry_from_green_is_allowed_but_exit_must_be_red() -> None:
    tl = Timeline().clean_cycle().hold(5.0, c1=S.FR, c2=S.FR, c3=S.OFF, c4=S.OFF)
    assert tl.kinds() == []
    assert tl.hold(0.1, c1=S.G).kinds() == ["flash_exit_not_red"]


def test_flash_exit_through_red_is_clean() -> None:
    tl = Timeline().clean_cycle().hold(5.0, c1=S.FR, c2=S.FR, c3=S.OFF, c4=S.OFF)
    tl.hold(2.0, c1=S.R, c2=S.R, c3=S.DW, c4=S.DW).hold(5.0, c1=S.G)
    assert tl.kinds() == []


def test_tolerance_absorbs_jitter() -> None:
    tl = Timeline().clean_cycle().hold(3.9, c1=S.Y).hold(1.0, c1=S.R)
    assert tl.kinds(tolerance=0.15) == []
    assert tl.kinds() == ["short_yellow"]


def test_set_minimums_keeps_the_smaller_for_a_running_interval() -> None:
    checker = ChannelChecker(CONFLICTS, YELLOW, RED, PED)
    checker.feed(0.0, {1: S.G})
    checker.feed(1.0, {1: S.Y})
    checker.set_minimums({1: 6.0}, RED, PED)
    assert checker.feed(5.0, {1: S.R}) == []  # 4 s ≥ the 4 s in force when yellow began


def test_finding_is_readable() -> None:
    (finding,) = check_timeline(
        Timeline().clean_cycle().hold(1.0, c1=S.Y).hold(0.1, c1=S.R).frames,
        CONFLICTS,
        YELLOW,
        RED,
    )
    assert str(finding) == (
        f"t={finding.t:.1f}s short_yellow [channels 1]: yellow lasted 1.00 s, minimum 4.00 s"
    )


# --------------------------------------------------------------------------- records


def record_rows(frames: Iterable[tuple[float, dict[int, ChannelState]]]) -> list[list[str]]:
    rows: list[list[str]] = [["time_s", "channel", "state"]]
    last: dict[int, ChannelState] = {}
    for t, frame in frames:
        for ch, state in sorted(frame.items()):
            if last.get(ch) != state:
                rows.append([f"{t:.3f}", str(ch), state.name])
                last[ch] = state
    return rows


def test_check_record_file_clean_and_dirty(tmp_path: Path) -> None:
    clean = tmp_path / "clean.csv"
    clean.write_text("\n".join(",".join(r) for r in record_rows(Timeline().clean_cycle().frames)))
    assert check_record(clean, CONFLICTS, YELLOW, RED, PED) == []
    dirty = tmp_path / "dirty.csv"
    tl = Timeline().clean_cycle().hold(4.0, c1=S.Y).hold(1.0, c1=S.R).hold(1.0, c2=S.G)
    dirty.write_text("\n".join(",".join(r) for r in record_rows(tl.frames)) + "\n")
    findings = check_record(dirty, CONFLICTS, YELLOW, RED, PED)
    assert [(f.kind, f.channels) for f in findings] == [("short_red_clear", (2, 1))]


def test_check_record_rows_numeric_and_dicts() -> None:
    rows = [
        ["0.0", "1", "1"],
        ["0.0", "2", "1"],
        ["1.0", "1", "3"],
        ["1.0", "2", "3"],  # both green in the same instant
    ]
    findings = check_record(rows, CONFLICTS, YELLOW, RED)
    assert [f.kind for f in findings] == ["conflict"]
    dict_rows = [
        {"time_s": "0", "channel": "1", "state": "G"},
        {"time_s": "1", "channel": "1", "state": "R"},
    ]
    assert [f.kind for f in check_record(dict_rows, CONFLICTS, YELLOW, RED)] == [
        "green_not_to_yellow"
    ]


def test_check_record_out_of_order() -> None:
    rows = [["1.0", "1", "R"], ["0.5", "1", "G"]]
    assert [f.kind for f in check_record(rows, CONFLICTS, YELLOW, RED)] == ["record_out_of_order"]


@pytest.mark.parametrize(
    "row", [["x", "1", "R"], ["1", "one", "R"], ["1", "1", "PURPLE"], ["1", "1"], ["nan", "1", "R"]]
)
def test_read_record_rejects_malformed_rows(row: list[str]) -> None:
    with pytest.raises(ValueError, match="record row 1"):
        read_record([row])


# --------------------------------------------------------------------------- phase behaviour


def out(
    t: float,
    rings: list[tuple[int | None, Interval]],
    *,
    calls: Iterable[int] = (),
    state: OperatingState = OperatingState.NORMAL,
    mode: Mode = Mode.ACTUATED,
    plan: int = 1,
) -> Outputs:
    return Outputs(
        t=t,
        channels=(),
        rings=tuple(
            RingStatus(i + 1, p, iv, PedInterval.DONT_WALK, 0.0) for i, (p, iv) in enumerate(rings)
        ),
        state=state,
        mode=mode,
        plan=plan,
        flash_reason=None,
        alarms=frozenset(),
        calls=frozenset(calls),
        ped_calls=frozenset(),
        detectors=(),
    )


G, Y, RC = Interval.GREEN, Interval.YELLOW, Interval.RED_CLEAR


def run(
    checker: PhaseChecker,
    seconds: float,
    start: float,
    rings: list[tuple[int | None, Interval]],
    requests: Requests | None = None,
    **kw: object,
) -> tuple[float, list[str]]:
    kinds: list[str] = []
    t = start
    for _ in range(round(seconds * 10)):
        kinds += [f.kind for f in checker.feed(out(t, rings, **kw), requests)]  # type: ignore[arg-type]
        t = round(t + 0.1, 1)
    return t, kinds


def test_min_green_truncated(two: DaemonConfig) -> None:
    pc = PhaseChecker(two)
    t, kinds = run(pc, 9.0, 0.0, [(2, G)])  # min green of phase 2 is 10 s
    t, more = run(pc, 1.0, t, [(2, Y)])
    assert kinds + more == ["min_green_truncated"]


def test_min_green_served(two: DaemonConfig) -> None:
    pc = PhaseChecker(two)
    t, kinds = run(pc, 10.0, 0.0, [(2, G)])
    t, more = run(pc, 1.0, t, [(2, Y)])
    assert kinds + more == []


def test_preemption_may_truncate_to_preempt_min_green(two: DaemonConfig) -> None:
    pc = PhaseChecker(two)
    t, _ = run(pc, 2.0, 0.0, [(2, G)])
    t, kinds = run(pc, 2.0, t, [(2, G)], state=OperatingState.PREEMPT)
    t, more = run(pc, 1.0, t, [(2, Y)], state=OperatingState.PREEMPT)
    assert kinds + more == []  # 4 s = control.preempt_min_green
    pc = PhaseChecker(two)
    t, _ = run(pc, 1.0, 0.0, [(2, G)])
    t, kinds = run(pc, 2.0, t, [(2, G)], state=OperatingState.PREEMPT)
    t, more = run(pc, 1.0, t, [(2, Y)], state=OperatingState.PREEMPT)
    assert kinds + more == ["min_green_truncated"]


def test_flash_may_cut_green(two: DaemonConfig) -> None:
    pc = PhaseChecker(two)
    t, _ = run(pc, 2.0, 0.0, [(2, G)])
    _, kinds = run(pc, 1.0, t, [(None, Interval.RED)], state=OperatingState.FLASH)
    assert kinds == []


def test_max_green_exceeded_under_constant_demand(two: DaemonConfig) -> None:
    pc = PhaseChecker(two)
    # phase 2: max1 40 s; the call on 4 is there from the start
    _, kinds = run(pc, 41.0, 0.0, [(2, G)], calls=[4])
    assert kinds == ["max_green_exceeded"]
    pc = PhaseChecker(two)
    _, kinds = run(pc, 40.1, 0.0, [(2, G)], calls=[4])
    assert kinds == []


def test_max_timer_starts_with_the_conflicting_call(two: DaemonConfig) -> None:
    pc = PhaseChecker(two)
    t, kinds = run(pc, 100.0, 0.0, [(2, G)])  # resting in green: no demand
    t, more = run(pc, 40.0, t, [(2, G)], calls=[4])
    assert kinds + more == []
    _, more = run(pc, 1.0, t, [(2, G)], calls=[4])
    assert more == ["max_green_exceeded"]


def test_max_green_uses_max2_when_requested(two: DaemonConfig) -> None:
    data = two.model_dump()
    data["plans"][0]["timing"][2]["max2"] = 50.0
    config = DaemonConfig.model_validate(data)
    pc = PhaseChecker(config)
    _, kinds = run(pc, 45.0, 0.0, [(2, G)], Requests(max2=True), calls=[4])
    assert kinds == []


def test_hold_exempts_max_green(two: DaemonConfig) -> None:
    pc = PhaseChecker(two)
    _, kinds = run(pc, 60.0, 0.0, [(2, G)], Requests(hold=frozenset({2})), calls=[4])
    assert kinds == []


def test_max_green_not_checked_in_coordination(two: DaemonConfig) -> None:
    pc = PhaseChecker(two)
    _, kinds = run(pc, 60.0, 0.0, [(2, G)], calls=[4], mode=Mode.COORDINATED, plan=2)
    assert kinds == []


def test_omitted_call_is_not_demand(two: DaemonConfig) -> None:
    pc = PhaseChecker(two)
    _, kinds = run(pc, 60.0, 0.0, [(2, G)], Requests(omit=frozenset({4})), calls=[4])
    assert kinds == []


def test_barrier_wait_is_allowed(eight: DaemonConfig) -> None:
    pc = PhaseChecker(eight)
    # ring 1 phase 2 (max 40) waits at the barrier while ring 2 still times phase 6... then 5
    t, kinds = run(pc, 45.0, 0.0, [(2, G), (6, G)], calls=[4])
    assert sorted(kinds) == ["max_green_exceeded"] * 2  # both over max: neither excuses
    pc = PhaseChecker(eight)
    t, kinds = run(pc, 20.0, 0.0, [(2, G), (5, G)], calls=[4, 6])
    t, more = run(pc, 25.0, t, [(2, G), (6, G)], calls=[4])
    assert kinds + more == []  # phase 2 over max, waiting for 6 (whose max runs from 20 s)


def test_same_group_demand_does_not_excuse(eight: DaemonConfig) -> None:
    pc = PhaseChecker(eight)
    # phase 1 (max 20) with a call on phase 2 in its own ring and group: must max out
    _, kinds = run(pc, 21.0, 0.0, [(1, G), (6, G)], calls=[2])
    assert kinds == ["max_green_exceeded"]


def test_starvation(two: DaemonConfig) -> None:
    pc = PhaseChecker(two, starvation_bound_s=60.0)
    _, kinds = run(pc, 61.0, 0.0, [(2, G)], Requests(hold=frozenset({2})), calls=[4])
    assert kinds == []  # operator hold suspends it
    pc = PhaseChecker(two, starvation_bound_s=60.0)
    strategy_hold = Requests(hold=frozenset({2}))
    kinds = [
        f.kind
        for k in range(611)
        for f in pc.feed(out(k / 10, [(2, G)], calls=[4]), strategy_hold, operator=Requests())
    ]
    assert kinds == ["phase_starved"]


def test_served_phase_is_not_starved(two: DaemonConfig) -> None:
    pc = PhaseChecker(two, starvation_bound_s=60.0)
    t, kinds = run(pc, 35.0, 0.0, [(2, G)], calls=[4])
    t, more = run(pc, 10.0, t, [(4, G)], calls=[])
    t, more2 = run(pc, 35.0, t, [(2, G)], calls=[4])
    assert kinds + more + more2 == []


def test_starvation_restarts_on_mode_change(two: DaemonConfig) -> None:
    pc = PhaseChecker(two, starvation_bound_s=60.0)
    t, kinds = run(
        pc, 50.0, 0.0, [(2, G)], Requests(hold=frozenset({2})), calls=[4], mode=Mode.MANUAL
    )
    t, more = run(pc, 50.0, t, [(2, G)], calls=[4])
    assert kinds + more == []


def test_default_starvation_bound_is_finite(eight: DaemonConfig) -> None:
    bound = PhaseChecker(eight).starvation_bound_s
    assert 100.0 < bound < 2000.0


# --------------------------------------------------------------------------- a real run


@pytest.mark.parametrize("name", ["eight_phase", "two_phase"])
def test_controller_run_is_clean(name: str) -> None:
    config = load_config(EXAMPLES / f"{name}.toml", environ={})
    from edgectl.control.controller import Controller

    controller = Controller(config)
    checker = SafetyChecker(config)
    rng = random.Random(7)
    presence: set[int] = set()
    findings = []
    for k in range(6000):
        for det in config.detectors:
            if det.id in presence:
                if rng.random() < 0.3:
                    presence.discard(det.id)
            elif rng.random() < 0.03:
                presence.add(det.id)
        o = controller.step(k / 10, Inputs(presence=frozenset(presence)))
        findings += checker.feed(o, controller.last_requests, operator=Requests())
    assert findings == []
    assert controller.counters["greens"] > 20
