"""Detector processing: delay, extend, carry-over, queue limit, counters, diagnostics."""

from __future__ import annotations

from typing import Any

import pytest

from edgectl.cabinet.channels import ChannelState
from edgectl.config.model import Config, Detector
from edgectl.control.detectors import DetectorBank, to_ticks
from edgectl.control.types import EventCode, Requests

from .engine_driver import Driver, make_config

E = EventCode


def bank_with(**fields: Any) -> tuple[DetectorBank, Config]:
    def edit(doc: dict[str, Any]) -> None:
        doc["detectors"] = [{"id": 1, "call_phases": [4], **fields}]

    config = make_config(edit=edit)
    return DetectorBank(config), config


class Feed:
    """Drive one detector bank tick by tick."""

    def __init__(self, bank: DetectorBank, green: dict[int, int] | None = None) -> None:
        self.bank = bank
        self.tick = 0
        self.green = green or {}
        self.events: list[tuple[float, int, int]] = []
        self.calling: list[bool] = []
        self.extending: list[bool] = []

    def run(self, seconds: float, on: bool, failed: frozenset[int] = frozenset()) -> None:
        for _ in range(round(seconds * 10)):
            raw: list[tuple[int, int]] = []
            self.bank.update(
                self.tick, frozenset({1}) if on else frozenset(), failed, self.green, raw
            )
            self.events += [(self.tick / 10, c, p) for c, p in raw]
            self.calling.append(4 in self.bank.calling)
            self.extending.append(4 in self.bank.extending)
            self.tick += 1

    def codes(self, code: int) -> list[float]:
        return [t for t, c, _ in self.events if c == code]


def test_to_ticks_rounds_up() -> None:
    assert to_ticks(3.5) == 35
    assert to_ticks(3.55) == 36
    assert to_ticks(0.0) == 0
    assert to_ticks(3.0000001) == 30


def test_delay_needs_continuous_presence() -> None:
    bank, _ = bank_with(delay=2.0)
    f = Feed(bank)
    f.run(1.5, on=True)
    f.run(1.0, on=False)
    assert not any(f.calling)
    f.run(2.5, on=True)  # on from 2.5 s: calls from 4.5 s
    first = f.calling.index(True)
    assert first / 10 == pytest.approx(4.5)
    assert f.codes(E.DETECTOR_ON) == [0.0, 2.5]
    assert f.codes(E.DETECTOR_OFF) == [1.5]


def test_extend_stretches_while_green_only() -> None:
    bank, _ = bank_with(extend=2.0)
    f = Feed(bank, green={4: 0})
    f.run(1.0, on=True)
    f.run(3.0, on=False)
    assert f.extending[:30] == [True] * 30  # 1 s on + 2 s stretch
    assert not any(f.extending[30:])
    assert not any(f.calling[10:])  # the call output is not stretched


def test_carryover_stretches_call_and_extension() -> None:
    bank, _ = bank_with(carryover=1.5)
    f = Feed(bank)
    f.run(0.5, on=True)
    f.run(3.0, on=False)
    assert f.calling[:20] == [True] * 20
    assert not any(f.calling[20:])


def test_queue_limit_stops_extension() -> None:
    bank, _ = bank_with(queue_limit=5.0)
    f = Feed(bank, green={4: 0})
    f.run(10.0, on=True)
    assert f.extending[:50] == [True] * 50
    assert not any(f.extending[50:])


def test_counters_actuations_and_occupancy() -> None:
    bank, _ = bank_with()
    f = Feed(bank)
    for _ in range(3):
        f.run(0.4, on=True)
        f.run(0.6, on=False)
    assert bank.actuations(1) == 3
    assert bank.occupied_ticks(1, f.tick) == 12
    f.run(0.5, on=True)
    assert bank.occupied_ticks(1, f.tick - 1) == 17  # live: counts this tick


def test_max_presence_fault_and_restore() -> None:
    bank, _ = bank_with(max_presence_min=1)
    f = Feed(bank)
    f.run(61.0, on=True)
    assert f.codes(E.DETECTOR_FAULT_SHORTED_LOOP) == [60.0]
    assert bank.fault(1) == "max_presence"
    assert next(s for s in bank.statuses if s.id == 1).failed
    f.run(1.0, on=False)
    assert f.codes(E.DETECTOR_RESTORED) == [61.0]
    assert bank.fault(1) is None
    assert not f.calling[-1]


def test_no_activity_fault_places_constant_call() -> None:
    bank, _ = bank_with(no_activity_min=1)
    f = Feed(bank)
    f.run(65.0, on=False)
    assert f.codes(E.DETECTOR_FAULT_WATCHDOG) == [60.0]
    assert f.calling[-1]  # fail-safe: constant call
    f.run(0.1, on=True)
    assert f.codes(E.DETECTOR_RESTORED) == [65.0]


def test_erratic_counts_fault_and_restore() -> None:
    bank, _ = bank_with(erratic_counts_per_min=5)
    f = Feed(bank)
    for _ in range(6):  # 6 actuations within a minute
        f.run(0.1, on=True)
        f.run(0.1, on=False)
    f.run(1.0, on=False)
    assert len(f.codes(E.DETECTOR_FAULT_EXCESSIVE_CHANGE)) == 1
    assert bank.fault(1) == "erratic"
    f.run(61.0, on=False)
    assert len(f.codes(E.DETECTOR_RESTORED)) == 1
    assert bank.fault(1) is None


def test_zero_disables_diagnostics() -> None:
    bank, _ = bank_with()
    f = Feed(bank)
    f.run(700.0, on=True)
    assert bank.fault(1) is None
    assert not f.codes(E.DETECTOR_FAULT_SHORTED_LOOP)


def test_field_failure_lost_and_restored() -> None:
    bank, _ = bank_with()
    f = Feed(bank)
    f.run(1.0, on=False, failed=frozenset({1}))
    assert f.codes(E.DETECTOR_FAULT_OTHER) == [0.0]
    assert bank.fault(1) == "lost" and all(f.calling)
    f.run(1.0, on=False)
    assert f.codes(E.DETECTOR_RESTORED) == [1.0]


def test_detector_model_defaults() -> None:
    d = Detector(id=3, call_phases=(2,))
    assert d.extends == (2,)


def test_failed_detector_constant_call_phase_maxes_out() -> None:
    d = Driver(make_config())
    d.run(8.0)
    d.failed.add(4)  # detector 4 lost: constant call and extension on phase 4
    d.run(80.0)
    assert d.green_starts(4)[0] == 23.0
    assert d.ev(E.PHASE_MAX_OUT, 4)[0] == 53.0  # runs to max 30 s
    assert any(s.id == 4 and s.failed and s.fault == "lost" for s in d.last.detectors)
    assert any(a.startswith("detector:failed:4") for a in d.last.alarms)
    d.failed.clear()
    d.run(1.0)
    assert not any(s.failed for s in d.last.detectors)
    assert d.findings == []


def test_variable_initial_extends_min_green() -> None:
    def edit(doc: dict[str, Any]) -> None:
        t = doc["plans"][0]["timing"]["4"]
        t["added_initial"] = 2.0
        t["max_initial"] = 14.0

    d = Driver(make_config(edit=edit))
    d.run(8.0)
    for _ in range(6):  # 6 actuations while 4 is red: 12 s initial (> min 10)
        d.presence.add(4)
        d.run(0.3)
        d.presence.discard(4)
        d.run(0.3)
    d.requests = Requests()
    d.run(40.0)
    assert d.green_starts(4) == [23.0]
    assert d.ev(E.PHASE_BEGIN_YELLOW, 4) == [35.0]
    assert d.veh(4, d.outputs[340]) is ChannelState.G
    assert d.findings == []
