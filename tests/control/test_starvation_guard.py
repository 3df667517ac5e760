"""The starvation guards of the adaptive and max-pressure strategies: a phase that has waited
their bound ends a green that still has a queue to serve, unless that queue is longer than
the starving one (the real Controller on the eight-phase example junction; the loops' queue
estimates are set on the strategy directly)."""

from __future__ import annotations

from pathlib import Path

import pytest

from edgectl.config.loader import load_config
from edgectl.config.model import Mode
from edgectl.control.controller import Controller
from edgectl.control.strategies import adaptive, maxpressure
from edgectl.control.strategies.adaptive import Adaptive
from edgectl.control.strategies.maxpressure import MaxPressure
from edgectl.control.types import Inputs

EXAMPLES = Path(__file__).resolve().parents[2] / "edgectl" / "examples"


def _keeps(green_queue: float, starving_queue: float, *, waited: float) -> bool:
    """Does the green of phase 2, its queue standing at the stop bar, hold against phase 4
    once phase 4 has waited ``waited`` s?"""
    ctl = Controller(load_config(EXAMPLES / "eight_phase.toml"), mode=Mode.ADAPTIVE)
    strategy = ctl._strategy
    assert isinstance(strategy, Adaptive) and strategy.zone_demand is None
    t = 0.0
    for _ in range(200):  # 20 s without traffic
        ctl.step(t, Inputs())
        t = round(t + 0.1, 1)
    view = ctl.view
    q = strategy.queues
    q.phases[2].count = green_queue  # no stop bar has shown a gap yet: it discharges
    q.phases[4].count = starving_queue
    q.green_since[2] = view.t - 30.0
    q.call_since[4] = view.t - waited
    assert strategy._discharging(view, 2)
    return strategy._keep(view, [2], [4])


def test_a_discharging_queue_is_held_while_nobody_starves() -> None:
    assert _keeps(10.0, 30.0, waited=60.0)


def test_the_guard_cuts_a_queue_shorter_than_the_starving_one() -> None:
    assert not _keeps(10.0, 30.0, waited=adaptive.MAX_WAIT_S + 1.0)


def test_the_guard_does_not_cut_a_queue_longer_than_the_starving_one(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert _keeps(40.0, 30.0, waited=adaptive.MAX_WAIT_S + 1.0)
    monkeypatch.setattr(adaptive, "GUARD_QUEUE", False)  # the guard as it was: cut
    assert not _keeps(40.0, 30.0, waited=adaptive.MAX_WAIT_S + 1.0)


def _max_pressure_forces(green_queue: float, starving_queue: float) -> bool:
    """Does max pressure end phase 2's green (20 s old) for phase 4, waiting 130 s (its
    guard: 120 s)?"""
    ctl = Controller(load_config(EXAMPLES / "eight_phase.toml"), mode=Mode.MAXPRESSURE)
    strategy = ctl._strategy
    assert isinstance(strategy, MaxPressure)
    t = 0.0
    for _ in range(300):  # 30 s without traffic: the junction rests on 2 and 6
        ctl.step(t, Inputs())
        t = round(t + 0.1, 1)
    view = ctl.view
    assert {2, 6} <= view.green_phases
    q = strategy.queues
    q.update = lambda view: None  # type: ignore[method-assign]  # keep the estimates set here
    q.phases[2].count = green_queue
    q.phases[4].count = starving_queue
    q.green_since[2] = view.t - 20.0
    q.call_since[4] = view.t - 130.0
    requests = strategy.requests(view)
    assert requests.next_phase.get(1) == 4  # the starving phase is served next either way
    return 2 in requests.force_off


def test_max_pressure_s_guard_cuts_a_shorter_queue_but_not_a_longer_one(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert _max_pressure_forces(3.0, 5.0)
    assert not _max_pressure_forces(20.0, 5.0)
    monkeypatch.setattr(maxpressure, "MAXPRESSURE_GUARD_QUEUE", False)  # as it was: cut
    assert _max_pressure_forces(20.0, 5.0)
