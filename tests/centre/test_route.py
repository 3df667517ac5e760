"""The green wave's planner (edgectl.centre.route): ETAs, the junctions ahead within the
horizon, re-sends, cancels when a stop line is passed, finish, a stopped vehicle, and the
route file's problems. Pure: time is passed in."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from pathlib import Path

import pytest

from edgectl.centre.route import (
    MAX_ETA_S,
    MAX_REQUEST_ID,
    Cancel,
    GreenWave,
    Route,
    RouteError,
    RouteStop,
    Send,
    load_route,
    parse_route,
    request_id,
)
from edgectl.sync.commands import COMMAND_ADAPTER, MAX_PRIORITY_ETA_S, PriorityCommand
from edgectl.sync.signing import build_command

CORRIDOR = Route(
    "amb-17",
    (
        RouteStop("j1", (4, 8), 300.0),
        RouteStop("j2", (2,), 700.0),
        RouteStop("j3", (6,), 1100.0),
        RouteStop("j4", (2, 6), 1600.0),
        RouteStop("j5", (4,), 2000.0),
    ),
)


def sends(items: list[Send | Cancel]) -> list[Send]:
    return [i for i in items if isinstance(i, Send)]


def cancels(items: list[Send | Cancel]) -> list[Cancel]:
    return [i for i in items if isinstance(i, Cancel)]


def test_the_contract_bounds_match_the_junctions() -> None:
    assert MAX_ETA_S == MAX_PRIORITY_ETA_S
    field = PriorityCommand.model_fields["params"].annotation.model_fields["request"]  # type: ignore[union-attr]
    assert any(getattr(m, "max_length", None) == MAX_REQUEST_ID for m in field.metadata)


def test_a_send_is_a_valid_priority_command() -> None:
    wave = GreenWave(CORRIDOR)
    for item in wave.update(0.0, 0.0, 10.0):
        assert isinstance(item, Send)
        raw = build_command("priority", item.params(), now=datetime.now(UTC), target=item.junction)
        parsed = COMMAND_ADAPTER.validate_python(raw)
        assert isinstance(parsed, PriorityCommand)
        assert parsed.params.movement == item.phases
        assert parsed.params.request == item.request
        assert parsed.params.eta_s == pytest.approx(item.eta_s, abs=0.05)
        assert parsed.params.checkout.timeout_s == 30.0
    cancel = Cancel("j1", "amb-17@j1")
    assert COMMAND_ADAPTER.validate_python(
        build_command("priority_cancel", cancel.params(), now=datetime.now(UTC))
    )


def test_etas_are_distance_over_speed_for_the_next_junctions_within_the_horizon() -> None:
    wave = GreenWave(CORRIDOR, ahead=3, horizon_s=120.0)
    first = wave.update(0.0, 0.0, 10.0)
    assert [(s.junction, s.eta_s) for s in sends(first)] == [
        ("j1", 30.0),
        ("j2", 70.0),
        ("j3", 110.0),
    ]
    assert all(s.level == 1 and s.timeout_s == 30.0 for s in sends(first))
    assert wave.etas() == {
        "amb-17@j1": 30.0,
        "amb-17@j2": 70.0,
        "amb-17@j3": 110.0,
        "amb-17@j4": 160.0,
        "amb-17@j5": 200.0,
    }
    # at constant speed nothing moves: no re-send
    for t in range(1, 30):
        assert wave.update(float(t), 10.0 * t, 10.0) == []


def test_ahead_limits_the_junctions_holding_a_request() -> None:
    wave = GreenWave(CORRIDOR, ahead=2, horizon_s=600.0)
    assert [s.junction for s in sends(wave.update(0.0, 0.0, 10.0))] == ["j1", "j2"]
    out = wave.update(31.0, 310.0, 10.0)  # j1 passed: j3 becomes one of the two ahead
    assert cancels(out) == [Cancel("j1", "amb-17@j1")]
    assert [s.junction for s in sends(out)] == ["j3"]
    assert set(wave.held) == {"amb-17@j2", "amb-17@j3"}


def test_the_horizon_holds_back_far_junctions_until_they_come_near() -> None:
    wave = GreenWave(CORRIDOR, ahead=5, horizon_s=60.0)
    assert [s.junction for s in sends(wave.update(0.0, 0.0, 10.0))] == ["j1"]
    assert wave.update(5.0, 50.0, 10.0) == []
    out = wave.update(10.0, 100.0, 10.0)  # j2's ETA is 60 s now
    assert [(s.junction, s.eta_s) for s in sends(out)] == [("j2", 60.0)]


def test_a_resend_when_the_arrival_moved_by_more_than_resend_s() -> None:
    route = Route("r", (RouteStop("j1", (2,), 1000.0),))
    wave = GreenWave(route, resend_s=2.0, resend_fraction=0.0, speed_tau_s=0.0)
    assert sends(wave.update(0.0, 0.0, 10.0))[0].eta_s == 100.0  # arrival at t=100
    # slightly slower: arrival 0 + 10 + 900/9.9 = 100.9, within 2 s: no update
    assert wave.update(10.0, 100.0, 9.9) == []
    # much slower: arrival 20 + 800/8 = 120: updated under the same request id
    out = wave.update(20.0, 200.0, 8.0)
    assert out == [Send("j1", "r@j1", (2,), 100.0, 1, 30.0)]
    assert wave.held["r@j1"].eta_s == 100.0
    assert wave.held_arrival("r@j1") == 120.0
    # faster again: arrival 30 + 700/10 = 100, 20 s earlier than the last send
    assert sends(wave.update(30.0, 300.0, 10.0))[0].eta_s == 70.0


def test_a_later_arrival_far_away_waits_for_resend_fraction_an_earlier_one_does_not() -> None:
    route = Route("r", (RouteStop("j1", (2,), 1000.0),))
    wave = GreenWave(route, resend_s=2.0, resend_fraction=0.1, speed_tau_s=0.0)
    wave.update(0.0, 0.0, 10.0)  # arrival at t=100, ETA 100 s
    # 8 s later (ETA 98 s): under 10 % of the ETA, no update
    assert wave.update(10.0, 100.0, 900.0 / 98.0) == []
    # 12 s later (ETA 102 s): over 10 %, updated
    assert sends(wave.update(20.0, 200.0, 800.0 / 92.0))[0].eta_s == pytest.approx(92.0)
    # 3 s earlier: the junction must start sooner, updated at once
    assert sends(wave.update(30.0, 300.0, 700.0 / 79.0))[0].eta_s == pytest.approx(79.0)
    with pytest.raises(KeyError):
        wave.held_arrival("r@nowhere")


def test_the_speed_is_smoothed() -> None:
    route = Route("r", (RouteStop("j1", (2,), 1000.0),))
    wave = GreenWave(route, speed_tau_s=3.0, resend_s=1000.0)
    wave.update(0.0, 0.0, 10.0)
    wave.update(1.0, 10.0, 0.0)  # one fix of 0 m/s (a GPS glitch) moves the speed a third
    assert wave.speed() == pytest.approx(10.0 * math.exp(-1.0 / 3.0))
    for t in range(2, 30):
        wave.update(float(t), 10.0, 0.0)
    assert wave.speed() == wave.min_speed_mps  # a lasting stop brings it down to the floor


def test_passing_a_stop_line_cancels_its_request_and_never_resends_it() -> None:
    wave = GreenWave(CORRIDOR)
    wave.update(0.0, 0.0, 10.0)
    assert wave.update(29.0, 299.0, 10.0) == []
    assert wave.update(30.0, 300.0, 10.0)[0] == Cancel("j1", "amb-17@j1")
    assert wave.passed == 1
    # a position fix that jumps back (GPS noise) does not bring the passed stop back
    assert all(c.junction != "j1" for c in wave.update(31.0, 295.0, 10.0))
    assert "amb-17@j1" not in wave.held


def test_checkout_m_counts_the_stop_passed_only_that_far_past_its_line() -> None:
    wave = GreenWave(CORRIDOR, checkout_m=20.0)
    wave.update(0.0, 0.0, 10.0)
    assert cancels(wave.update(31.0, 310.0, 10.0)) == []
    assert cancels(wave.update(32.0, 320.0, 10.0)) == [Cancel("j1", "amb-17@j1")]


def test_a_jump_past_several_stops_cancels_each_one_held() -> None:
    wave = GreenWave(CORRIDOR)
    wave.update(0.0, 0.0, 10.0)
    out = wave.update(80.0, 800.0, 10.0)  # a fix lost for a minute
    assert cancels(out) == [Cancel("j1", "amb-17@j1"), Cancel("j2", "amb-17@j2")]
    assert [s.junction for s in sends(out)] == ["j4", "j5"]  # j3 is held: no move, no send
    assert out.index(Cancel("j2", "amb-17@j2")) < out.index(sends(out)[0])  # cancels first
    assert set(wave.held) == {"amb-17@j3", "amb-17@j4", "amb-17@j5"}


def test_finish_cancels_everything_held_and_ends_the_wave() -> None:
    wave = GreenWave(CORRIDOR)
    wave.update(0.0, 0.0, 10.0)
    wave.update(41.0, 410.0, 10.0)  # j1 passed, j4 within the horizon
    assert wave.finish() == [
        Cancel("j2", "amb-17@j2"),
        Cancel("j3", "amb-17@j3"),
        Cancel("j4", "amb-17@j4"),
    ]
    assert wave.finished and wave.held == {}
    assert wave.update(40.0, 400.0, 10.0) == []
    assert wave.finish() == []
    # the log holds every send and cancel with the time of its update
    assert [type(item).__name__ for _, item in wave.log].count("Cancel") == 4


def test_a_stopped_vehicle_has_finite_etas_and_far_ones_are_not_sent() -> None:
    wave = GreenWave(CORRIDOR, min_speed_mps=2.0, horizon_s=120.0)
    out = wave.update(0.0, 0.0, 0.0)
    assert [(s.junction, s.eta_s) for s in sends(out)] == []  # 300 m at 2 m/s: 150 s
    assert wave.etas()["amb-17@j1"] == 150.0
    out = wave.update(1.0, 100.0, 0.0)  # 200 m: 100 s, within the horizon
    assert [(s.junction, s.eta_s) for s in sends(out)] == [("j1", 100.0)]


def test_a_queued_vehicle_uses_the_free_flow_speed() -> None:
    wave = GreenWave(CORRIDOR, min_speed_mps=2.0, free_flow_mps=12.5, speed_tau_s=0.0)
    wave.update(0.0, 0.0, 0.5)  # waiting in a queue
    assert wave.speed() == 12.5
    assert wave.etas()["amb-17@j1"] == 24.0
    # moving off: still queued until back at 0.8 × the free-flow speed (while it accelerates
    # the free-flow ETA is the closer one)
    wave.update(1.0, 1.0, 5.0)
    assert wave.speed() == 12.5
    wave.update(2.0, 10.0, 9.9)
    assert wave.speed() == 12.5
    wave.update(3.0, 20.0, 10.5)
    assert wave.speed() == 10.5


def test_without_free_flow_a_queued_vehicle_moves_at_the_floor_until_it_is_going() -> None:
    wave = GreenWave(CORRIDOR, min_speed_mps=2.0, speed_tau_s=0.0)
    wave.update(0.0, 0.0, 0.0)
    assert wave.speed() == 2.0
    wave.update(1.0, 1.0, 2.9)  # hysteresis: 1.5 × the floor to leave the queue
    assert wave.speed() == 2.0
    wave.update(2.0, 4.0, 3.1)
    assert wave.speed() == 3.1


def test_a_held_request_whose_eta_cannot_be_said_is_cancelled_then_sent_again() -> None:
    route = Route("r", (RouteStop("j1", (2,), 2000.0),))
    wave = GreenWave(route, horizon_s=MAX_ETA_S, min_speed_mps=1.0, speed_tau_s=0.0)
    assert sends(wave.update(0.0, 0.0, 10.0))[0].eta_s == 200.0
    assert wave.update(1.0, 10.0, 0.0) == [Cancel("j1", "r@j1")]  # 1990 s at 1 m/s
    assert sends(wave.update(2.0, 20.0, 10.0))[0].eta_s == 198.0


def test_old_fixes_are_ignored_and_bad_numbers_refused() -> None:
    wave = GreenWave(CORRIDOR)
    wave.update(10.0, 0.0, 10.0)
    assert wave.update(9.0, 500.0, 10.0) == []  # out of order: nothing passed
    assert wave.passed == 0
    for bad in (math.nan, math.inf):
        with pytest.raises(ValueError, match="finite"):
            wave.update(11.0, bad, 10.0)
        with pytest.raises(ValueError, match="finite"):
            wave.update(bad, 1.0, 10.0)


def test_request_ids_are_stable_per_route_and_junction() -> None:
    loop = Route(
        "bus-5",
        (
            RouteStop("a", (2,), 100.0),
            RouteStop("b", (4,), 400.0),
            RouteStop("a", (6,), 900.0),
        ),
        level=3,
    )
    wave = GreenWave(loop, horizon_s=600.0)
    assert wave.request_ids == ("bus-5@a", "bus-5@b", "bus-5@a#2")
    assert {s.level for s in sends(wave.update(0.0, 0.0, 10.0))} == {3}
    assert request_id("r", "j") == request_id("r", "j")
    # any printable route id (a SUMO vehicle id, say), however long: ids fit the contract
    odd = GreenWave(Route("flow/emergency#3." * 6, CORRIDOR.stops))
    assert all(len(r) <= MAX_REQUEST_ID for r in odd.request_ids)
    assert len(set(odd.request_ids)) == len(CORRIDOR.stops)
    long_id = request_id("r" * 60, "junction-" * 4)
    assert len(long_id) == MAX_REQUEST_ID
    assert long_id != request_id("r" * 60, "junction-" * 4 + "x")


def test_bad_options_are_refused_by_name() -> None:
    with pytest.raises(RouteError) as err:
        GreenWave(CORRIDOR, ahead=0, horizon_s=900.0, timeout_s=1.0, min_speed_mps=0.0, resend_s=-1)
    paths = {p.path for p in err.value.problems}
    assert paths == {"ahead", "horizon_s", "timeout_s", "min_speed_mps", "resend_s"}


GOOD = """
id = "amb-17"
level = 2
[[stops]]
junction = "hz-0001"
phases = [4, 8]
position_m = 350.0
[[stops]]
junction = "hz-0002"
phase = 2
position_m = 820
"""


def test_a_route_file_is_read(tmp_path: Path) -> None:
    path = tmp_path / "route.toml"
    path.write_text(GOOD, encoding="utf-8")
    assert load_route(path) == Route(
        "amb-17",
        (RouteStop("hz-0001", (4, 8), 350.0), RouteStop("hz-0002", (2,), 820.0)),
        level=2,
    )


def test_every_problem_of_a_route_file_is_named(tmp_path: Path) -> None:
    bad = """
id = "amb\\u0000"
level = 0
colour = "red"
[[stops]]
junction = "hz+1"
phases = [4, 4, 17]
position_m = 350.0
[[stops]]
phase = 2
phases = [2]
position_m = "far"
[[stops]]
junction = "hz-0003"
phase = true
position_m = 100.0
speed = 3
[[stops]]
junction = "hz-0004"
phase = 2
position_m = 300.0
"""
    with pytest.raises(RouteError) as err:
        parse_route(bad, source="bad.toml")
    found = {(p.path, p.message.split(" ")[0]) for p in err.value.problems}
    assert {path for path, _ in found} >= {
        "colour",
        "id",
        "level",
        "stops[0].junction",
        "stops[0].phases",
        "stops[1]",
        "stops[1].junction",
        "stops[1].position_m",
        "stops[2].phases",
        "stops[2].speed",
        "stops[3].position_m",  # 300 m is not after 350 m
    }
    assert "bad.toml" in str(err.value)
    messages = " | ".join(str(p) for p in err.value.problems)
    assert "17 is not a phase number" in messages
    assert "names a phase twice" in messages
    assert "exactly one of phase and phases" in messages
    assert "driving order" in messages

    for text, where in (
        ("id = 'x'", "stops"),
        ("id = 'x'\nstops = []", "stops"),
        ("stops = []", "id"),
        ("id = 'x'\nlevel = 'high'\n[[stops]]\njunction='a'\nphase=2\nposition_m=1", "level"),
        ("id = [", ""),
    ):
        with pytest.raises(RouteError) as err:
            parse_route(text)
        assert where in {p.path for p in err.value.problems}
    with pytest.raises(RouteError, match="cannot read"):
        load_route(tmp_path / "missing.toml")
