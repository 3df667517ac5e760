"""A tiny virtual-time driver for the controller, used by the engine/strategy tests."""

from __future__ import annotations

import copy
import tomllib
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from edgectl.cabinet.channels import ChannelState
from edgectl.config.model import Config, DaemonConfig, Mode
from edgectl.control.controller import Controller
from edgectl.control.types import (
    NO_REQUESTS,
    Directive,
    Event,
    Inputs,
    OperatingState,
    Outputs,
    Requests,
)
from edgectl.testing.checker import Finding, SafetyChecker

EXAMPLES = Path(__file__).resolve().parents[2] / "edgectl" / "examples"
_DOCS: dict[str, dict[str, Any]] = {}


def doc(name: str = "eight_phase") -> dict[str, Any]:
    if name not in _DOCS:
        _DOCS[name] = tomllib.loads((EXAMPLES / f"{name}.toml").read_text())
    return copy.deepcopy(_DOCS[name])


def make_config(
    name: str = "eight_phase", edit: Callable[[dict[str, Any]], None] | None = None
) -> DaemonConfig:
    d = doc(name)
    if edit is not None:
        edit(d)
    return DaemonConfig.model_validate(d)


def timing(d: dict[str, Any], phase: int, plan: int = 1) -> dict[str, Any]:
    plan_doc = next(p for p in d["plans"] if p["id"] == plan)
    result: dict[str, Any] = plan_doc["timing"][str(phase)]
    return result


class Driver:
    """Steps a Controller at 0.1 s; checks every tick with the independent checker."""

    def __init__(
        self,
        config: Config,
        *,
        mode: Mode | None = None,
        check: bool = True,
        max_modes: Iterable[Mode] = (Mode.ACTUATED,),
    ) -> None:
        self.config = config
        self.controller = Controller(config, mode=mode)
        self.tick = 0
        self.presence: set[int] = set()
        self.failed: set[int] = set()
        self.buttons: set[int] = set()
        self.requests: Requests = NO_REQUESTS
        self.outputs: list[Outputs] = []
        self.events: list[Event] = []
        self.checker = SafetyChecker(config, max_modes=max_modes) if check else None
        self.findings: list[Finding] = []
        self.vehicle_channel = {
            c.phase: c.id for c in config.channels if c.source.value == "vehicle"
        }
        self.ped_channel = {
            c.phase: c.id for c in config.channels if c.source.value == "pedestrian"
        }

    @property
    def t(self) -> float:
        return self.tick / 10

    @property
    def last(self) -> Outputs:
        return self.outputs[-1]

    def step(self, n: int = 1, *, directives: tuple[Directive, ...] = ()) -> Outputs:
        out: Outputs | None = None
        for i in range(n):
            inputs = Inputs(
                presence=frozenset(self.presence),
                failed_detectors=frozenset(self.failed),
                ped_buttons=frozenset(self.buttons),
                requests=self.requests,
                directives=directives if i == 0 else (),
            )
            out = self.controller.step(self.tick / 10, inputs)
            self._record(out)
            self.tick += 1
        assert out is not None
        return out

    def _record(self, out: Outputs) -> None:
        self.outputs.append(out)
        self.events.extend(out.events)
        if self.checker is not None:
            self.findings.extend(self.checker.feed(out, self.controller.last_requests))

    def state(self) -> OperatingState:
        return self.outputs[-1].state

    def run(self, seconds: float, **kw: Any) -> Outputs:
        return self.step(round(seconds * 10), **kw)

    def until(self, pred: Callable[[Outputs], bool], limit_s: float = 600.0) -> Outputs:
        for _ in range(round(limit_s * 10)):
            out = self.step()
            if pred(out):
                return out
        raise AssertionError(f"condition not reached within {limit_s} s (t={self.t})")

    def veh(self, phase: int, out: Outputs | None = None) -> ChannelState:
        return (out or self.last).frame[self.vehicle_channel[phase]]

    def ped(self, phase: int, out: Outputs | None = None) -> ChannelState:
        return (out or self.last).frame[self.ped_channel[phase]]

    def ev(self, code: int, param: int | None = None) -> list[float]:
        """Times of events with this code (and param)."""
        return [e.t for e in self.events if e.code == code and (param is None or e.param == param)]

    def green_starts(self, phase: int) -> list[float]:
        return self.ev(1, phase)

    def interval_lengths(self, phase: int, state: ChannelState) -> list[float]:
        """Durations of each completed run of ``state`` on the phase's vehicle channel."""
        ch = self.vehicle_channel[phase]
        runs: list[float] = []
        start: float | None = None
        for out in self.outputs:
            s = out.frame[ch]
            if s == state and start is None:
                start = out.t
            elif s != state and start is not None:
                runs.append(round(out.t - start, 3))
                start = None
        return runs
