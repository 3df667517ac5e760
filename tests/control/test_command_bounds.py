"""Commands cannot starve a phase (issue 21), in virtual time with the real engine: a preempt
ends after its maximum presence (NTCIP 1202 ``preemptMaxPresence``), and holds keep a green
at most ``hold_max_s`` after a conflicting call arrived."""

from __future__ import annotations

from typing import Any

from edgectl.cabinet.channels import ChannelState as S
from edgectl.control.types import EventCode as E
from edgectl.control.types import OperatingState, Preempt, Requests
from tests.control.engine_driver import Driver, make_config


def _config(**control: Any) -> Any:
    def edit(d: dict[str, Any]) -> None:
        d["control"].update(control)

    return make_config(edit=edit)


def clean(d: Driver) -> None:
    assert d.findings == []
    assert d.controller.counters["violations"] == 0


def test_a_preempt_held_on_ends_after_max_presence_and_the_junction_serves_calls() -> None:
    d = Driver(_config(preempt_max_presence_s=60.0))
    d.run(8.0)
    d.step(directives=(Preempt(1, True, (2, 6)),))  # on at t = 8.0, never released
    d.run(30.0)
    assert d.state() is OperatingState.PREEMPT
    d.presence.add(4)  # a call waiting on the side street
    d.run(31.0)  # t = 69.1: max presence (60 s) passed at t = 68.0
    assert d.ev(E.PREEMPT_MAX_PRESENCE_EXCEEDED, 1) == [68.0]
    assert d.ev(E.PREEMPT_EXIT) == [68.0]
    assert any("preempt 1 max presence" in a for a in d.last.alarms)
    d.run(20.0)
    assert d.state() is OperatingState.NORMAL
    assert d.green_starts(4), "the side street was served"
    # the input is still "on": re-asserting it is disregarded until it goes off
    d.step(directives=(Preempt(1, True, (2, 6)),))
    d.run(5.0)
    assert d.state() is OperatingState.NORMAL
    assert len(d.ev(E.PREEMPT_CALL_ON, 1)) == 1
    # off, then on again: a new preempt
    d.step(directives=(Preempt(1, False),))
    assert not any("preempt 1" in a for a in d.last.alarms)
    d.step(directives=(Preempt(1, True, (2, 6)),))
    assert d.state() is OperatingState.PREEMPT
    clean(d)


def test_the_default_max_presence_is_180s() -> None:
    d = Driver(make_config())
    d.run(8.0)
    d.step(directives=(Preempt(2, True, ()),))
    d.run(179.0)
    assert d.state() is OperatingState.PREEMPT
    d.run(2.0)
    assert d.ev(E.PREEMPT_MAX_PRESENCE_EXCEEDED, 2) == [188.0]
    clean(d)


def test_renewed_holds_cannot_starve_a_called_phase() -> None:
    d = Driver(_config(hold_max_s=60.0))
    d.requests = Requests(hold=frozenset({2, 6}))  # renewed every tick, for ever
    d.run(8.0)
    d.presence.add(4)  # side street called from t = 8.0 on, and it stays called
    d.run(200.0)
    assert d.ev(E.HOLD_LIMIT_REACHED, 2), "the hold was ignored once the bound passed"
    starts = d.green_starts(4)
    assert starts, "phase 4 was served despite the holds"
    first_wait = starts[0] - 8.0
    assert first_wait <= 60.0 + 4.0 + 2.0 + 1.0  # bound + yellow + red clearance (+ a tick)
    # every green of the held phases is bounded too: 2 gets green again and is cut again
    assert len(d.ev(E.HOLD_LIMIT_REACHED, 2)) >= 2
    # a hold still works below the bound (no conflicting call: rest in green as long as asked)
    assert d.ev(E.PHASE_HOLD_ACTIVE, 2)
    clean(d)


def test_a_hold_below_the_bound_is_still_honoured() -> None:
    d = Driver(_config(hold_max_s=120.0))
    d.requests = Requests(hold=frozenset({2}))
    d.run(8.0)
    d.presence.add(4)
    d.run(100.0)
    assert d.veh(2) is S.G  # held past max 40, below the 120 s bound
    assert not d.ev(E.HOLD_LIMIT_REACHED)
    clean(d)
