"""Units of the safety kernel: conflict matrix, ITE helpers, monitor, config/plan validation."""

from __future__ import annotations

import copy
import tomllib
from pathlib import Path
from typing import Any

import pytest

from edgectl.cabinet.channels import ChannelState
from edgectl.config.junction import ConflictMatrix
from edgectl.config.limits import ite_red_clear, ite_yellow
from edgectl.config.model import Config, DaemonConfig, Plan
from edgectl.config.plans import validate_plan
from edgectl.config.validation import validate_config
from edgectl.control.monitor import ConflictMonitor
from edgectl.errors import Problem

EXAMPLES = Path(__file__).resolve().parents[2] / "edgectl" / "examples"
S = ChannelState


def doc(name: str = "eight_phase") -> dict[str, Any]:
    return tomllib.loads((EXAMPLES / f"{name}.toml").read_text())


def build(document: dict[str, Any]) -> DaemonConfig:
    return DaemonConfig.model_validate(document)


def errors(problems: list[Problem]) -> list[Problem]:
    return [p for p in problems if p.severity == "error"]


def paths(problems: list[Problem]) -> set[str]:
    return {p.path for p in errors(problems)}


@pytest.fixture(scope="module")
def eight() -> DaemonConfig:
    return build(doc())


@pytest.fixture(scope="module")
def two() -> DaemonConfig:
    return build(doc("two_phase"))


# --------------------------------------------------------------------------- ITE


def test_ite_yellow_flat_50kmh() -> None:
    # 1.0 + 13.889 / (2 * 3.05) = 3.277 s
    assert ite_yellow(50.0) == pytest.approx(3.277, abs=1e-3)


def test_ite_yellow_grade_uphill_shortens_downhill_lengthens() -> None:
    assert ite_yellow(60.0, 0.04) < ite_yellow(60.0) < ite_yellow(60.0, -0.04)
    # 1 + 16.667 / (6.1 - 2 * 0.04 * 9.81) = 1 + 16.667 / 5.3152
    assert ite_yellow(60.0, -0.04) == pytest.approx(1 + (60 / 3.6) / (6.1 - 0.7848), abs=1e-6)


def test_ite_yellow_parameters() -> None:
    assert ite_yellow(36.0, reaction_s=1.5, decel_mps2=5.0) == pytest.approx(1.5 + 10 / 10)


def test_ite_red_clear() -> None:
    # (22 + 6.1) / 13.889 = 2.023 s
    assert ite_red_clear(22.0, 50.0) == pytest.approx(2.0232, abs=1e-3)
    assert ite_red_clear(10.0, 36.0, vehicle_length_m=0.0) == pytest.approx(1.0)


@pytest.mark.parametrize("speed", [0.0, -5.0, float("nan"), float("inf")])
def test_ite_rejects_absurd_speed(speed: float) -> None:
    with pytest.raises(ValueError, match="speed"):
        ite_yellow(speed)
    with pytest.raises(ValueError, match="speed"):
        ite_red_clear(10.0, speed)


# --------------------------------------------------------------------------- conflict matrix


def test_matrix_eight_phase_phases(eight: Config) -> None:
    m = ConflictMatrix.from_config(eight)
    compatible = {(1, 5), (1, 6), (2, 5), (2, 6), (3, 7), (3, 8), (4, 7), (4, 8)}
    for a in range(1, 9):
        for b in range(1, 9):
            expected = a != b and (min(a, b), max(a, b)) not in compatible
            assert m.phases_conflict(a, b) is expected, (a, b)


def test_matrix_eight_phase_channels(eight: Config) -> None:
    m = ConflictMatrix.from_config(eight)
    assert not m.channels_conflict(2, 9)  # vehicle and ped of phase 2
    assert not m.channels_conflict(9, 11)  # ped 2 and ped 6
    assert m.channels_conflict(9, 4)  # ped 2 against vehicle 4
    assert m.channels_conflict(9, 10)  # ped 2 against ped 4
    assert m.channels_conflict(1, 2)  # same ring
    assert not m.channels_conflict(1, 1)
    pairs = m.conflicting_channel_pairs()
    assert pairs == sorted(pairs)
    assert all(a < b for a, b in pairs)
    assert (4, 9) in pairs
    assert (2, 9) not in pairs


def test_matrix_overrides_add_conflicts() -> None:
    d = doc()
    d["conflict_overrides"] = [[2, 6]]
    m = ConflictMatrix.from_config(build(d))
    assert m.phases_conflict(2, 6)
    assert m.channels_conflict(2, 6)
    assert m.channels_conflict(9, 11)


def test_matrix_overlap_conflicts_with_what_its_parents_conflict_with() -> None:
    d = doc()
    d["channels"].append({"id": 13, "source": "overlap", "phase": 1, "overlap_parents": [1, 2]})
    m = ConflictMatrix.from_config(build(d))
    assert not m.channels_conflict(13, 1)
    assert not m.channels_conflict(13, 2)
    assert not m.channels_conflict(13, 5)
    assert not m.channels_conflict(13, 6)
    assert m.channels_conflict(13, 3)
    assert m.channels_conflict(13, 8)
    assert m.channels_conflict(13, 12)  # ped 8


def test_matrix_two_phase(two: Config) -> None:
    m = ConflictMatrix.from_config(two)
    assert m.phases_conflict(2, 4)
    assert m.conflicting_channel_pairs() == [(1, 2), (1, 4), (2, 3), (3, 4)]


# --------------------------------------------------------------------------- monitor


class Driver:
    """Feeds two-phase frames to a monitor: channel 1 (phase 2), 2 (phase 4), 3/4 peds."""

    def __init__(self, config: Config) -> None:
        self.monitor = ConflictMonitor(config)
        self.plan = config.plan(1)
        self.t = 0.0
        self.frame = {1: S.FR, 2: S.FR, 3: S.OFF, 4: S.OFF}

    def hold(self, seconds: float, **states: ChannelState) -> list[str]:
        for name, state in states.items():
            self.frame[int(name[1:])] = state
        kinds: list[str] = []
        for _ in range(round(seconds * 10)):
            kinds += [v.kind for v in self.monitor.check(self.t, self.frame, self.plan)]
            self.t = round(self.t + 0.1, 1)
        return kinds


def clean_cycle(d: Driver) -> list[str]:
    kinds = d.hold(5.0)  # start-up flash
    kinds += d.hold(2.0, c1=S.R, c2=S.R, c3=S.DW, c4=S.DW)
    kinds += d.hold(7.0, c1=S.G, c3=S.W)
    kinds += d.hold(12.0, c3=S.FDW)
    kinds += d.hold(1.0, c3=S.DW)
    kinds += d.hold(4.0, c1=S.Y)
    kinds += d.hold(2.0, c1=S.R)
    kinds += d.hold(7.0, c2=S.G, c4=S.W)
    kinds += d.hold(17.0, c4=S.FDW)
    kinds += d.hold(3.5, c2=S.Y, c4=S.DW)
    kinds += d.hold(2.0, c2=S.R)
    kinds += d.hold(10.0, c1=S.G)
    return kinds


def test_monitor_clean_sequence(two: Config) -> None:
    assert clean_cycle(Driver(two)) == []


def test_monitor_conflict(two: Config) -> None:
    d = Driver(two)
    clean_cycle(d)
    violations = d.monitor.check(d.t, {1: S.G, 2: S.G, 3: S.DW, 4: S.DW}, d.plan)
    assert [(v.kind, v.channels) for v in violations if v.kind == "conflict"] == [
        ("conflict", (1, 2))
    ]


def test_monitor_conflict_ped_against_vehicle(two: Config) -> None:
    d = Driver(two)
    clean_cycle(d)
    assert "conflict" in d.hold(0.1, c4=S.W)


def test_monitor_flashing_frames_are_not_conflicts(two: Config) -> None:
    d = Driver(two)
    assert d.hold(1.0, c1=S.FY, c2=S.FR) == []


def test_monitor_green_to_red(two: Config) -> None:
    d = Driver(two)
    clean_cycle(d)
    assert d.hold(0.1, c1=S.R) == ["green_not_to_yellow"]


def test_monitor_short_yellow(two: Config) -> None:
    d = Driver(two)
    clean_cycle(d)
    kinds = d.hold(3.9, c1=S.Y)
    kinds += d.hold(0.1, c1=S.R)
    assert kinds == ["short_yellow"]


def test_monitor_yellow_to_green(two: Config) -> None:
    d = Driver(two)
    clean_cycle(d)
    d.hold(4.0, c1=S.Y)
    assert d.hold(0.1, c1=S.G) == ["yellow_to_green"]


def test_monitor_short_red_clear_before_conflicting_green(two: Config) -> None:
    d = Driver(two)
    clean_cycle(d)
    d.hold(4.0, c1=S.Y)
    d.hold(1.9, c1=S.R)  # red clear of phase 2 is 2.0 s
    assert d.hold(0.1, c2=S.G) == ["short_red_clear"]


def test_monitor_short_red_clear_before_conflicting_walk(two: Config) -> None:
    d = Driver(two)
    clean_cycle(d)
    d.hold(4.0, c1=S.Y)
    d.hold(1.0, c1=S.R)
    assert d.hold(0.1, c4=S.W) == ["short_red_clear"]


def test_monitor_walk_to_dont_walk(two: Config) -> None:
    d = Driver(two)
    clean_cycle(d)
    d.hold(4.0, c1=S.Y)
    d.hold(2.0, c1=S.R)
    d.hold(7.0, c2=S.G, c4=S.W)
    assert d.hold(0.1, c4=S.DW) == ["walk_not_to_ped_clear"]


def test_monitor_short_ped_clear(two: Config) -> None:
    d = Driver(two)
    clean_cycle(d)
    d.hold(4.0, c1=S.Y)
    d.hold(2.0, c1=S.R)
    d.hold(7.0, c2=S.G, c4=S.W)
    d.hold(16.9, c4=S.FDW)  # ped clear of phase 4 is 17 s
    assert d.hold(0.1, c4=S.DW) == ["short_ped_clear"]


def test_monitor_flash_entry_from_anything_is_allowed(two: Config) -> None:
    d = Driver(two)
    clean_cycle(d)
    d.hold(1.0, c1=S.G, c3=S.W)
    assert d.hold(3.0, c1=S.FR, c2=S.FR, c3=S.OFF, c4=S.OFF) == []


def test_monitor_flash_exit_must_go_through_red(two: Config) -> None:
    d = Driver(two)
    clean_cycle(d)
    d.hold(3.0, c1=S.FR, c2=S.FR, c3=S.OFF, c4=S.OFF)
    assert d.hold(0.1, c1=S.G) == ["flash_exit_not_red"]


def test_monitor_reset_makes_a_new_baseline(two: Config) -> None:
    d = Driver(two)
    clean_cycle(d)
    d.monitor.reset()
    assert d.hold(0.1, c1=S.R) == []  # baseline frame: no transition checks
    assert d.hold(0.1, c1=S.G) == []


def test_monitor_unknown_channel(two: Config) -> None:
    monitor = ConflictMonitor(two)
    kinds = [v.kind for v in monitor.check(0.0, {1: S.R, 99: S.R}, two.plan(1))]
    assert kinds == ["unknown_channel"]


def test_monitor_violation_carries_detail(two: Config) -> None:
    d = Driver(two)
    clean_cycle(d)
    d.hold(1.0, c1=S.Y)
    (v,) = d.monitor.check(d.t, {**d.frame, 1: S.R}, d.plan)
    assert v.kind == "short_yellow"
    assert v.channels == (1,)
    assert "1.00 s < 4.00 s" in v.detail
    assert v.t == pytest.approx(d.t)


# --------------------------------------------------------------------------- validate_config


def test_examples_are_valid(eight: Config, two: Config) -> None:
    assert errors(validate_config(eight)) == []
    assert errors(validate_config(two)) == []


def test_the_examples_meet_the_ite_clearances(eight: Config, two: Config) -> None:
    assert validate_config(eight) == []
    assert validate_config(two) == []


def test_a_red_clearance_short_for_the_declared_width_warns_with_ite(eight: Config) -> None:
    """The lefts clear 14 m in 1.5 s; across the full 22 m ITE asks 2.0 s."""
    wide = tuple(
        p.model_copy(update={"intersection_width_m": 22.0}) if p.id in (1, 3, 5, 7) else p
        for p in eight.phases
    )
    warnings = [
        p
        for p in validate_config(eight.model_copy(update={"phases": wide}))
        if p.severity == "warning"
    ]
    assert "plans[0].timing.1.red_clear" in {w.path for w in warnings}
    assert all("ITE" in w.message for w in warnings)


def test_duplicate_ids_are_named() -> None:
    d = doc()
    d["phases"][1]["id"] = 1
    d["channels"][3]["id"] = 1
    d["detectors"][2]["id"] = 2
    d["plans"][1]["id"] = 1
    d["rings"][1]["id"] = 1
    got = paths(validate_config(build(d)))
    assert {
        "phases[1].id",
        "channels[3].id",
        "detectors[2].id",
        "plans[1].id",
        "rings[1].id",
    } <= got


def test_ring_and_barrier_membership() -> None:
    d = doc()
    d["rings"][0]["sequence"] = [1, 2, 3, 4, 9]  # 9 undefined
    d["rings"][1]["sequence"] = [5, 6, 7]  # 8 in no ring
    d["barriers"][1]["phases"] = [3, 4, 7, 8, 2]  # 2 in two barriers
    problems = errors(validate_config(build(d)))
    messages = {(p.path, p.message) for p in problems}
    assert ("rings[0].sequence", "phase 9 is not defined in [[phases]]") in messages
    assert ("phases[7]", "phase 8 is in no ring") in messages
    assert any(p.path == "phases[1]" and "more than one barrier" in p.message for p in problems)


def test_phase_in_two_rings_and_no_barrier() -> None:
    d = doc()
    d["rings"][1]["sequence"] = [5, 6, 7, 8, 1]
    d["barriers"][0]["phases"] = [2, 5, 6]
    problems = errors(validate_config(build(d)))
    assert any(p.path == "phases[0]" and "more than one ring" in p.message for p in problems)
    assert any(p.path == "phases[0]" and "no barrier" in p.message for p in problems)


def test_ring_leaving_and_returning_to_a_barrier_group() -> None:
    d = doc()
    d["rings"][0]["sequence"] = [1, 3, 2, 4]
    problems = errors(validate_config(build(d)))
    assert [p.path for p in problems] == ["rings[0].sequence"]
    assert "consecutive" in problems[0].message


def test_ring_sequence_may_wrap_around_the_barrier() -> None:
    d = doc()
    d["rings"][0]["sequence"] = [2, 3, 4, 1]  # cyclic: 1 2 | 3 4
    assert errors(validate_config(build(d))) == []


def test_rings_crossing_barriers_in_different_orders() -> None:
    d = doc()
    d["phases"].append({"id": 9})
    d["phases"].append({"id": 10})
    d["rings"][0]["sequence"] = [1, 2, 3, 4, 9]
    d["rings"][1]["sequence"] = [5, 6, 10, 7, 8]
    d["barriers"].append({"phases": [9, 10]})
    for plan in d["plans"]:
        plan["timing"]["9"] = dict(plan["timing"]["1"])
        plan["timing"]["10"] = dict(plan["timing"]["1"])
        coord = plan.get("coordination")
        if coord:
            del plan["coordination"]
    problems = errors(validate_config(build(d)))
    assert [p.path for p in problems] == ["rings[1].sequence"]
    assert "same order" in problems[0].message


def test_references_of_channels_detectors_overrides() -> None:
    d = doc()
    d["channels"][0]["phase"] = 12
    d["channels"].append({"id": 13, "source": "pedestrian", "phase": 1})
    d["channels"].append({"id": 14, "source": "overlap", "phase": 1})
    d["channels"].append({"id": 15, "source": "overlap", "phase": 1, "overlap_parents": [1, 14]})
    d["detectors"][0]["call_phases"] = [1, 13]
    d["detectors"][1]["extend_phases"] = [15]
    d["conflict_overrides"] = [[2, 16], [3, 3]]
    problems = errors(validate_config(build(d)))
    got = {(p.path, p.message) for p in problems}
    assert ("channels[0].phase", "phase 12 is not defined") in got
    assert (
        "channels[12].phase",
        "pedestrian channel on phase 1, which has pedestrian = false",
    ) in got
    assert ("channels[13].overlap_parents", "an overlap channel needs parent phases") in got
    assert ("channels[14].overlap_parents", "phase 14 is not defined") in got
    assert ("detectors[0].call_phases", "phase 13 is not defined") in got
    assert ("detectors[1].extend_phases", "phase 15 is not defined") in got
    assert ("conflict_overrides[0]", "phase 16 is not defined") in got
    assert ("conflict_overrides[1]", "phase 3 cannot conflict with itself") in got
    assert len(problems) == 8


def test_startup_phases() -> None:
    d = doc()
    d["phases"][0]["startup"] = True  # phase 1, same ring as startup phase 2
    d["phases"][7]["startup"] = True  # phase 8, other barrier group
    problems = errors(validate_config(build(d)))
    msgs = [p.message for p in problems]
    assert any("both start-up phases of ring 1" in m for m in msgs)
    assert any("different barrier groups" in m for m in msgs)


def test_control_plan_and_schedule_plans_exist() -> None:
    d = doc()
    d["control"]["plan"] = 7
    d["control"]["schedule"] = [{"at": "07:00", "plan": 2}, {"at": "19:00", "plan": 9}]
    assert paths(validate_config(build(d))) == {"control.plan", "control.schedule[1].plan"}


def test_coordinated_mode_needs_a_cycle() -> None:
    d = doc()
    d["control"]["mode"] = "coordinated"
    d["control"]["schedule"] = [{"at": "07:00", "plan": 2, "mode": "fixed"}]
    assert paths(validate_config(build(d))) == {"control.mode"}


def test_every_plan_has_timing_for_every_phase() -> None:
    d = doc()
    del d["plans"][0]["timing"]["3"]
    d["plans"][1]["timing"]["11"] = dict(d["plans"][1]["timing"]["1"])
    problems = errors(validate_config(build(d)))
    got = {(p.path, p.message) for p in problems}
    assert ("plans[0].timing", "no timing for phase 3") in got
    assert ("plans[1].timing.11", "timing for phase 11, which is not defined") in got


# --------------------------------------------------------------------------- validate_plan


def plan_with(base: Plan, phase: int, **changes: Any) -> Plan:
    data = base.model_dump()
    data["timing"][phase].update(changes)
    return Plan.model_validate(data)


@pytest.mark.parametrize(
    ("changes", "path", "fragment"),
    [
        ({"yellow": 2.9}, "timing.2.yellow", "outside 3–6 s"),
        ({"yellow": 6.5}, "timing.2.yellow", "outside 3–6 s"),
        ({"red_clear": 6.1}, "timing.2.red_clear", "outside 0–6 s"),
        ({"min_green": 3.5, "max1": 40.0}, "timing.2.min_green", "below 4 s"),
        ({"max1": 9.0}, "timing.2.max1", "below min_green 10 s"),
        ({"max2": 9.0}, "timing.2.max2", "below min_green 10 s"),
        ({"walk": 6.0}, "timing.2.walk", "below 7 s unless walk_reduced"),
        ({"walk": 3.0, "walk_reduced": True}, "timing.2.walk", "below 4 s (walk_reduced)"),
        ({"ped_clear": 18.0}, "timing.2.ped_clear", "below 18.7 s (20 m at 1.07 m/s)"),
    ],
)
def test_plan_bounds(eight: Config, changes: dict[str, Any], path: str, fragment: str) -> None:
    plan = plan_with(eight.plan(1), 2, **changes)
    problems = errors(validate_plan(plan, eight))
    assert [p.path for p in problems] == [path]
    assert fragment in problems[0].message


def test_plan_reduced_walk_accepted(eight: Config) -> None:
    plan = plan_with(eight.plan(1), 2, walk=4.0, walk_reduced=True)
    assert errors(validate_plan(plan, eight)) == []


def test_plan_walk_not_checked_for_vehicle_only_phase(eight: Config) -> None:
    plan = plan_with(eight.plan(1), 1, walk=0.0, ped_clear=0.0)
    assert errors(validate_plan(plan, eight)) == []


def test_plan_every_bound_at_once(eight: Config) -> None:
    plan = plan_with(eight.plan(1), 4, yellow=2.0, red_clear=7.0, min_green=2.0, max1=1.0, walk=5.0)
    assert paths(validate_plan(plan, eight)) == {
        "timing.4.yellow",
        "timing.4.red_clear",
        "timing.4.min_green",
        "timing.4.max1",
        "timing.4.walk",
    }


def test_plan_ite_yellow_warning(eight: Config) -> None:
    plan = plan_with(eight.plan(1), 1, yellow=3.0)
    problems = validate_plan(plan, eight)
    assert errors(problems) == []
    assert any(
        p.path == "timing.1.yellow" and p.severity == "warning" and "3.3 s" in p.message
        for p in problems
    )


def coord_plan(config: Config, **changes: Any) -> Plan:
    data = copy.deepcopy(config.plan(2).model_dump())
    data["coordination"].update(changes)
    return Plan.model_validate(data)


def test_coordination_valid(eight: Config) -> None:
    assert errors(validate_plan(eight.plan(2), eight)) == []


def test_coordination_missing_split_and_ring_sum(eight: Config) -> None:
    splits = {1: 15.0, 2: 35.0, 3: 15.0, 4: 35.0, 5: 15.0, 6: 35.0, 7: 15.0}
    problems = errors(validate_plan(coord_plan(eight, splits=splits), eight))
    got = {(p.path, p.message) for p in problems}
    assert ("coordination.splits", "no split for phase 8") in got
    assert ("coordination.splits", "ring 2 splits sum to 65 s, the cycle is 100 s") in got
    assert any("barrier group 2 is not aligned" in m for _, m in got)


def test_coordination_barrier_alignment(eight: Config) -> None:
    splits = {1: 15.0, 2: 35.0, 3: 15.0, 4: 35.0, 5: 20.0, 6: 35.0, 7: 10.0, 8: 35.0}
    problems = errors(validate_plan(coord_plan(eight, splits=splits), eight))
    msgs = [p.message for p in problems]
    assert "barrier group 1 is not aligned across rings (ring 1: 50 s, ring 2: 55 s)" in msgs
    assert "barrier group 2 is not aligned across rings (ring 1: 50 s, ring 2: 45 s)" in msgs
    # 10 s is also below phase 7's min_green + yellow + red_clear = 10 s? exactly 10: fine
    assert len(problems) == 2


def test_coordination_split_too_short(eight: Config) -> None:
    splits = {1: 18.0, 2: 32.0, 3: 9.0, 4: 41.0, 5: 18.0, 6: 32.0, 7: 9.0, 8: 41.0}
    problems = errors(validate_plan(coord_plan(eight, splits=splits), eight))
    got = {(p.path, p.message) for p in problems}
    assert (
        "coordination.splits.3",
        "split 9 s is shorter than min_green + yellow + red_clear = 10 s",
    ) in got
    assert len(problems) == 2  # phases 3 and 7; 32 s covers walk+clear+Y+RC = 32 s


def test_coordination_ped_split(eight: Config) -> None:
    splits = {1: 19.0, 2: 31.0, 3: 15.0, 4: 35.0, 5: 19.0, 6: 31.0, 7: 15.0, 8: 35.0}
    problems = errors(validate_plan(coord_plan(eight, splits=splits), eight))
    assert [p.path for p in problems] == ["coordination.splits.2", "coordination.splits.6"]
    assert "walk + ped_clear + yellow + red_clear = 32 s" in problems[0].message


def test_coordination_offset_and_coord_phases(eight: Config) -> None:
    plan = coord_plan(eight, offset=100.0, coord_phases=(2, 1, 9))
    got = {(p.path, p.message) for p in errors(validate_plan(plan, eight))}
    assert ("coordination.offset", "offset 100 s must be below the cycle 100 s") in got
    assert ("coordination.coord_phases", "coordinated phase 9 is not defined") in got
    assert any("both in ring 1" in m for _, m in got)
    plan = coord_plan(eight, coord_phases=(2, 8))
    msgs = [p.message for p in errors(validate_plan(plan, eight))]
    assert msgs == ["coordinated phases [2, 8] are in different barrier groups"]


def test_coordination_nan_split_rejected(eight: Config) -> None:
    splits = dict.fromkeys(range(1, 9), 12.5)
    splits[4] = float("nan")
    problems = errors(validate_plan(coord_plan(eight, splits=splits), eight))
    assert any(p.path == "coordination.splits.4" and "non-negative" in p.message for p in problems)


def test_coordination_omitted_phase_needs_no_split(two: Config) -> None:
    data = two.plan(2).model_dump()
    data["timing"][4]["omit"] = True
    data["coordination"]["splits"] = {2: 60.0}
    assert errors(validate_plan(Plan.model_validate(data), two)) == []


def test_coordination_zero_cycle_is_free_only_without_splits(two: Config) -> None:
    data = two.plan(2).model_dump()
    data["coordination"]["cycle"] = 0.0
    problems = errors(validate_plan(Plan.model_validate(data), two))
    assert [p.path for p in problems] == ["coordination.cycle"]
    data["coordination"] = {"cycle": 0.0}
    assert errors(validate_plan(Plan.model_validate(data), two)) == []


def test_monitor_plan_change_during_yellow_owes_the_smaller_minimum(two: Config) -> None:
    d = Driver(two)
    clean_cycle(d)
    d.hold(4.0, c1=S.Y)  # plan 1: yellow 4 s
    longer = plan_with(two.plan(1), 2, yellow=5.0)
    assert d.monitor.check(d.t, {**d.frame, 1: S.R}, longer) == []


def test_overlaps_sharing_a_parent_may_be_green_together() -> None:
    """A T junction derived from SUMO: stage 1 keeps the east through (overlap of 1 and 2)
    and the west right turn (overlap of 1 and 3) green together, while stages 2 and 3
    conflict. The monitor must not call that state a conflict (it once fault-flashed the
    first green of such a junction)."""
    d = doc()
    d["channels"] += [
        {"id": 13, "source": "overlap", "phase": 1, "overlap_parents": [2, 3]},
        {"id": 14, "source": "overlap", "phase": 1, "overlap_parents": [2, 4]},
    ]
    m = ConflictMatrix.from_config(build(d))
    assert not m.channels_conflict(13, 14)  # both green while phase 2 times
    assert not m.channels_conflict(13, 5)  # 5 may time with 2 (other ring, same barrier)
    assert m.channels_conflict(13, 1)  # 1 conflicts with both 2 (ring) and 3 (barrier)
    assert m.channels_conflict(14, 3)  # 3 conflicts with 2 and 4 (same ring)
    assert not m.channels_conflict(14, 7)  # 7 may time with 4 (other ring, same barrier)


def test_a_green_in_the_frame_a_conflicting_yellow_ends_is_a_short_red_clearance(
    two: DaemonConfig,
) -> None:
    """Whatever the channel numbers: channel 1 turning green in the very frame channel 2 goes
    from yellow to red had no red clearance (the kernel and the independent checker once
    processed channels in id order and missed it)."""
    from edgectl.testing.checker import ChannelChecker, derive_channel_conflicts

    plan = two.plans[0]
    need = plan.timing[4].red_clear
    assert need > 0
    monitor = ConflictMonitor(two)
    checker = ChannelChecker(derive_channel_conflicts(two), {2: plan.timing[4].yellow}, {2: need})
    red = {1: S.R, 2: S.R, 3: S.DW, 4: S.DW}
    steps = [
        (0.0, red),
        (1.0, {**red, 2: S.G}),
        (20.0, {**red, 2: S.Y}),
        (30.0, {**red, 1: S.G}),  # 2: Y→R and 1: R→G in the same frame
    ]
    kernel = [v for t, f in steps for v in monitor.check(t, f, plan)]
    independent = [x for t, f in steps for x in checker.feed(t, f)]
    assert [(v.kind, v.channels) for v in kernel] == [("short_red_clear", (1, 2))]
    assert [(x.kind, x.channels) for x in independent] == [("short_red_clear", (1, 2))]
