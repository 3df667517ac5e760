"""Strategies only request: fixed, coordinated, manual, actuated, the registry and the View."""

from __future__ import annotations

import itertools
import random
from typing import Any

import pytest

from edgectl.cabinet.channels import ChannelState
from edgectl.config.model import Config, Mode, Plan
from edgectl.control import strategies
from edgectl.control.controller import Controller
from edgectl.control.strategies import (
    Fixed,
    View,
    get_strategy,
    in_window,
    register,
    split_windows,
)
from edgectl.control.types import NO_REQUESTS, EventCode, OperatingState, Requests, SetMode

from .engine_driver import Driver, make_config

E = EventCode
S = ChannelState


@pytest.fixture
def eight() -> Any:
    return make_config()


def driver(config: Config, mode: Mode, plan_id: int) -> Driver:
    d = Driver(config, mode=mode, max_modes=())
    d.controller = Controller(config, mode=mode, plan_id=plan_id)
    return d


def random_demand(d: Driver, seconds: float, seed: int = 2, p: float = 0.3) -> None:
    rng = random.Random(seed)
    for k in range(round(seconds * 10)):
        if k % 10 == 0:
            d.presence = {det for det in range(1, 13) if rng.random() < p}
        d.step()


def test_split_windows_of_the_example_plan(eight: Any) -> None:
    w = split_windows(eight, eight.plan(2))
    assert (w[2].start, w[2].force_off) == (0.0, 29.0)
    assert (w[3].start, w[3].force_off) == (35.0, 45.0)
    assert (w[4].start, w[4].force_off) == (50.0, 79.0)
    assert (w[1].start, w[1].force_off) == (85.0, 95.0)
    assert (w[5].start, w[7].start, w[8].start) == (85.0, 35.0, 50.0)
    assert w[2].coordinated and not w[4].coordinated
    assert split_windows(eight, eight.plan(1)) == {}


def test_in_window_wraps() -> None:
    assert in_window(95.0, 90.0, 10.0, 100.0)
    assert in_window(5.0, 90.0, 10.0, 100.0)
    assert not in_window(10.0, 90.0, 10.0, 100.0)
    assert in_window(3.0, 0.0, 29.0, 100.0) and not in_window(29.0, 0.0, 29.0, 100.0)


def test_fixed_greens_start_at_split_points(eight: Any) -> None:
    d = driver(eight, Mode.FIXED, 2)
    random_demand(d, 500.0)
    # after the first cycle (start-up transition) every green starts at its split point
    for phase, start in {2: 0.0, 6: 0.0, 3: 35.0, 7: 35.0, 4: 50.0, 8: 50.0, 1: 85.0}.items():
        starts = [t for t in d.green_starts(phase) if t >= 100.0]
        assert len(starts) == 4, (phase, starts)
        assert all(round(t % 100.0, 1) == start for t in starts), (phase, starts)
    twos = [t for t in d.green_starts(2) if t >= 100.0]
    assert [b - a for a, b in itertools.pairwise(twos)] == [100.0] * 3  # cycle
    # no actuation effect: every termination is a force-off, ped walks every cycle
    assert not d.ev(E.PHASE_GAP_OUT) and not d.ev(E.PHASE_MAX_OUT)
    assert len([t for t in d.ev(E.PED_BEGIN_WALK, 4) if t >= 100.0]) == 4
    assert d.last.cycle_time is not None
    assert d.findings == []


def test_coordinated_holds_coord_phase_and_forces_off_side_streets(eight: Any) -> None:
    d = driver(eight, Mode.COORDINATED, 2)
    random_demand(d, 600.0, p=0.35)
    windows = split_windows(eight, eight.plan(2))
    # side-street greens end by their force-off points
    for phase in (1, 3, 4, 5, 7, 8):
        for t in d.ev(E.PHASE_GREEN_TERMINATION, phase):
            if t < 100.0:
                continue
            c = round(t % 100.0, 1)
            assert c <= windows[phase].force_off + 0.05, (phase, t)
    # the coordinated phases are green through their whole window in every cycle
    for cycle in range(2, 6):
        for c in (0.5, 10.0, 28.5):
            out = d.outputs[round((cycle * 100 + c) * 10)]
            assert d.veh(2, out) is S.G and d.veh(6, out) is S.G, (cycle, c)
    assert d.findings == []


def test_coordinated_unused_time_returns_to_coord_phase(eight: Any) -> None:
    d = driver(eight, Mode.COORDINATED, 2)
    d.run(300.0)  # no demand at all
    assert d.green_starts(2) == [7.0]
    assert d.veh(2) is S.G


def test_manual_holds_until_operator_advances(eight: Any) -> None:
    d = Driver(eight, mode=Mode.MANUAL, max_modes=())
    d.run(8.0)
    d.presence.add(4)
    d.run(100.0)
    assert d.veh(2) is S.G  # held, with a call waiting on 4
    d.requests = Requests(force_off=frozenset({2, 6}))
    d.step()
    d.requests = NO_REQUESTS  # one tick is enough: the strategy latches it
    d.run(10.0)
    assert d.veh(4) is S.G
    d.run(100.0)
    assert d.veh(4) is S.G
    d.requests = Requests(next_phase={1: 2, 2: 6})
    d.step()
    d.requests = NO_REQUESTS
    d.run(10.0)
    assert d.veh(2) is S.G and d.veh(6) is S.G
    assert d.findings == []


def test_actuated_requests_nothing(eight: Any) -> None:
    c = Controller(eight)
    assert get_strategy(Mode.ACTUATED, eight, eight.plan(1)).requests(c.view) is NO_REQUESTS


def test_registry_register_and_fallback(eight: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(strategies, "_REGISTRY", dict(strategies._REGISTRY))
    strategies._REGISTRY.pop(Mode.ADAPTIVE, None)
    d = Driver(eight, mode=Mode.ADAPTIVE)
    d.run(1.0)
    assert "mode:fallback:adaptive" in d.last.alarms
    assert d.controller.mode is Mode.ADAPTIVE

    seen: list[float] = []

    class Probe:
        def __init__(self, config: Config, plan: Plan) -> None:
            pass

        def requests(self, view: View) -> Requests:
            seen.append(view.t)
            return Requests(hold=view.green_phases)

    register(Mode.ADAPTIVE, Probe)
    assert Mode.ADAPTIVE in strategies.registered()
    d.step(directives=(SetMode(Mode.ACTUATED),))
    d.step(directives=(SetMode(Mode.ADAPTIVE),))
    d.run(10.0)
    assert seen and "mode:fallback:adaptive" not in d.last.alarms


def test_view_exposes_what_strategies_read(eight: Any) -> None:
    d = Driver(eight)
    d.run(8.0)
    d.presence.add(4)
    d.run(1.0)
    v = d.controller.view
    assert v.t == pytest.approx(8.9)
    assert v.detector_on(4) and not v.detector_failed(4)
    assert v.actuations(4) == 1
    assert v.occupied_s(4) == pytest.approx(1.0)
    assert v.calls == frozenset({4})
    assert v.green_phases == frozenset({2, 6})
    assert v.time_in_interval(1) == pytest.approx(1.9)
    ring = v.ring(1)
    assert ring is not None and ring.phase == 2
    assert v.phase_ring(8) == 2 and v.phase_group(8) == 1
    assert v.phases_conflict(2, 4) and not v.phases_conflict(2, 6)
    assert v.plan.id == 1 and v.cycle_time() is None
    assert v.state is OperatingState.NORMAL
    assert isinstance(get_strategy(Mode.FIXED, eight, eight.plan(2)), Fixed)
