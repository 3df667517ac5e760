"""Controller.expect: projected arrivals reach the strategy that plans with them, across modes."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import pytest

from edgectl.config.model import Config, Mode, Plan
from edgectl.control import strategies
from edgectl.control.controller import Controller, ExpectsArrivals
from edgectl.control.strategies import Actuated, register
from edgectl.control.strategies.adaptive import Adaptive
from edgectl.control.types import Inputs, SetMode

from .engine_driver import make_config


class ArrivalProbe(Actuated):
    """Actuated control that records every ``expect`` it is given."""

    instances: list[ArrivalProbe] = []  # noqa: RUF012 - the test's record of strategy objects

    def __init__(self, config: Config, plan: Plan) -> None:
        super().__init__(config, plan)
        self.expected: dict[int, tuple[float, ...]] = {}  # the latest per phase
        self.history: list[tuple[int, tuple[float, ...]]] = []  # every call
        ArrivalProbe.instances.append(self)

    def expect(self, phase: int, arrivals: Iterable[float]) -> None:
        self.expected[phase] = tuple(arrivals)
        self.history.append((phase, self.expected[phase]))


@pytest.fixture
def probe_mode(monkeypatch: pytest.MonkeyPatch) -> Mode:
    """``maxpressure`` runs :class:`ArrivalProbe` for the test (the registry is restored)."""
    monkeypatch.setattr(strategies, "_REGISTRY", dict(strategies._REGISTRY))
    monkeypatch.setattr(ArrivalProbe, "instances", [])
    register(Mode.MAXPRESSURE, ArrivalProbe)
    return Mode.MAXPRESSURE


@pytest.fixture
def eight() -> Any:
    return make_config()


def test_the_strategy_property_and_the_protocol(eight: Any) -> None:
    adaptive = Controller(eight, mode=Mode.ADAPTIVE)
    assert isinstance(adaptive.strategy, Adaptive)
    assert isinstance(adaptive.strategy, ExpectsArrivals)
    assert not isinstance(Controller(eight, mode=Mode.ACTUATED).strategy, ExpectsArrivals)


def test_adaptive_takes_arrivals_actuated_does_not(eight: Any) -> None:
    assert Controller(eight, mode=Mode.ADAPTIVE).expect(4, [30.0, 12.0]) is True
    assert Controller(eight, mode=Mode.ACTUATED).expect(4, [12.0]) is False


def test_an_unknown_phase_is_a_caller_error(eight: Any) -> None:
    with pytest.raises(ValueError, match="phase 9"):
        Controller(eight, mode=Mode.ADAPTIVE).expect(9, [1.0])


def test_arrivals_are_sorted_and_an_empty_list_clears(eight: Any, probe_mode: Mode) -> None:
    c = Controller(eight, mode=probe_mode)
    probe = c.strategy
    assert isinstance(probe, ArrivalProbe)
    assert c.expect(4, [30.0, 12.0, 20.0])
    assert probe.expected == {4: (12.0, 20.0, 30.0)}
    assert c.expect(4, [])
    assert probe.expected == {4: ()}


def test_a_mode_change_hands_the_arrivals_to_the_new_strategy(eight: Any, probe_mode: Mode) -> None:
    c = Controller(eight, mode=Mode.ACTUATED)
    assert c.expect(4, [5.0, 40.0]) is False  # kept for a later mode
    assert c.expect(2, [60.0]) is False
    c.step(0.0, Inputs())
    t = 0.0
    for _ in range(100):  # 10 s: the arrival at 5.0 is in the past when the mode changes
        t = round(t + 0.1, 1)
        c.step(t, Inputs())
    c.step(round(t + 0.1, 1), Inputs(directives=(SetMode(probe_mode),)))
    probe = c.strategy
    assert isinstance(probe, ArrivalProbe)
    assert probe.expected == {4: (40.0,), 2: (60.0,)}
    # ... and again to the next object after a round trip through another mode
    c.step(round(t + 0.2, 1), Inputs(directives=(SetMode(Mode.ACTUATED),)))
    c.step(round(t + 0.3, 1), Inputs(directives=(SetMode(probe_mode),)))
    assert len(ArrivalProbe.instances) == 2
    assert ArrivalProbe.instances[-1].expected == {4: (40.0,), 2: (60.0,)}
