"""Local priority inputs (``[[priority_inputs]]``): a receiver wired to the cabinet as a
detector input; its actuation becomes a priority request (a preempt) or a TSP check-in, its
check-out detector checks the vehicle out; validated against the junction."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import pytest

from edgectl.config.loader import validate_document
from edgectl.config.model import DaemonConfig
from edgectl.control.types import EventCode, Inputs, Interval, OperatingState, Outputs
from tests.control.test_transit import Run

EXAMPLES = Path(__file__).resolve().parents[2] / "edgectl" / "examples"
EV_RECEIVER = 20  # the optical preempt receiver's contact, detector input 20
BUS_RECEIVER = 21  # the bus transponder reader
CHECKOUT = 22  # a far-side check-out loop of the receiver


def _doc(**inputs: Any) -> dict[str, Any]:
    doc = tomllib.loads((EXAMPLES / "eight_phase.toml").read_text())
    doc["detectors"] += [{"id": d} for d in (EV_RECEIVER, BUS_RECEIVER, CHECKOUT)]
    for plan in doc["plans"]:
        plan["tsp_enabled"] = True
    doc["priority_inputs"] = inputs.get(
        "priority_inputs",
        [
            {
                "detector": EV_RECEIVER,
                "kind": "emergency",
                "phases": [4, 8],
                "eta_s": 40.0,
                "checkout_detector": CHECKOUT,
            },
            {"detector": BUS_RECEIVER, "kind": "transit", "phases": [4], "eta_s": 15.0},
        ],
    )
    return doc


def _config(**inputs: Any) -> DaemonConfig:
    config, problems = validate_document(_doc(**inputs))
    assert config is not None, problems
    return config


def _greens(out: Outputs) -> set[int]:
    return {r.phase for r in out.rings if r.phase is not None and r.interval is Interval.GREEN}


def test_an_emergency_input_is_a_priority_request_checked_out_by_its_detector() -> None:
    run = Run(_config())
    run.presence = {2, 6}
    run.run(30.0)
    run.presence = {2, 6, EV_RECEIVER}  # the vehicle's emitter is seen
    run.tick()
    t_on = run.t - 0.1
    held = run.controller.priority.requests["input-20"]
    assert held.phases == (4, 8) and held.eta == pytest.approx(t_on + 40.0)
    assert held.checkout_detector == CHECKOUT
    out = run.until(lambda o: o.state is OperatingState.PREEMPT and {4, 8} <= _greens(o))
    assert run.t <= t_on + 40.0 - run.config.control.priority_flush_s + 0.2
    run.presence = {2, 6, CHECKOUT}  # it passes the check-out loop: released
    out = run.until(lambda o: o.state is OperatingState.NORMAL, 5.0)
    assert "input-20" not in run.controller.priority.requests
    assert out.state is OperatingState.NORMAL


def test_a_steady_input_is_one_actuation() -> None:
    run = Run(_config())
    run.run(20.0)
    run.presence = {EV_RECEIVER}
    run.run(1.0)
    eta = run.controller.priority.requests["input-20"].eta
    run.run(5.0)
    assert run.controller.priority.requests["input-20"].eta == eta  # no new actuation


def test_a_transit_input_is_a_tsp_checkin() -> None:
    run = Run(_config())
    run.presence = {2, 6}
    run.run(30.0)
    run.presence = {2, 6, BUS_RECEIVER}
    run.tick()
    t_on = run.t - 0.1
    held = run.controller.transit.held["input-21"].request
    assert held.phases == (4,) and held.eta == pytest.approx(t_on + 15.0)
    checkins = run.codes({EventCode.TSP_CHECK_IN})
    assert [(c, p) for _, c, p in checkins] == [(112, 4)]
    assert checkins[0][0] == pytest.approx(t_on)


def test_a_failed_receiver_actuates_nothing() -> None:
    run = Run(_config())
    run.run(20.0)
    c = run.controller
    out = c.step(run.t, Inputs(presence=frozenset({EV_RECEIVER}), failed_detectors=frozenset({20})))
    assert out is not None
    assert "input-20" not in c.priority.requests


@pytest.mark.parametrize(
    ("entry", "path"),
    [
        ({"detector": 40, "kind": "transit", "phases": [4]}, "priority_inputs[0].detector"),
        ({"detector": 21, "kind": "transit", "phases": [12]}, "priority_inputs[0].phases"),
        ({"detector": 21, "kind": "transit", "phases": [2, 4]}, "priority_inputs[0].phases"),
        (
            {"detector": 21, "kind": "emergency", "phases": [4], "checkout_detector": 41},
            "priority_inputs[0].checkout_detector",
        ),
    ],
)
def test_validation_names_unknown_detectors_and_phases(entry: dict[str, Any], path: str) -> None:
    config, problems = validate_document(_doc(priority_inputs=[entry]))
    assert config is None
    assert any(p.path == path for p in problems), problems


def test_schema_refuses_an_unknown_kind_and_a_second_input_on_one_detector() -> None:
    config, problems = validate_document(
        _doc(priority_inputs=[{"detector": 21, "kind": "tram", "phases": [4]}])
    )
    assert config is None and problems
    twice = [
        {"detector": 21, "kind": "transit", "phases": [4]},
        {"detector": 21, "kind": "emergency", "phases": [4]},
    ]
    config, problems = validate_document(_doc(priority_inputs=twice))
    assert config is None
    assert any(p.path == "priority_inputs[1].detector" for p in problems), problems
