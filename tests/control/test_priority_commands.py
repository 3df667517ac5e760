"""The ``priority`` and ``priority_cancel`` commands: schema, the handler's refusals, the
answer (honoured or late, with the green time), and the request reaching the controller."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from pydantic import ValidationError

from edgectl.config.loader import load_config
from edgectl.control.controller import Controller
from edgectl.control.priority import lead_time
from edgectl.control.types import Inputs, Interval, OperatingState
from edgectl.daemon.operator import DaemonCommandHandler
from edgectl.daemon.port import OperatorPort
from edgectl.errors import CommandError
from edgectl.sync.commands import COMMAND_ADAPTER, Command
from edgectl.sync.signing import build_command

EIGHT_PHASE = Path(__file__).resolve().parents[2] / "edgectl" / "examples" / "eight_phase.toml"


def command(kind: str, **params: object) -> Command:
    raw = json.dumps(build_command(kind, params, now=datetime.now(UTC)))
    return COMMAND_ADAPTER.validate_json(raw)  # as the sync service reads it


@pytest.fixture
def port() -> OperatorPort:
    config = load_config(EIGHT_PHASE, environ={})
    port = OperatorPort(config, Controller(config))
    for k in range(300):
        port.last = port.controller.step(k / 10, Inputs())
    return port


def test_schema_wants_one_movement_and_one_eta() -> None:
    for params in (
        {"request": "ev", "eta_s": 30.0},
        {"request": "ev", "phase": 4},
        {"request": "ev", "phase": 4, "phases": [4, 8], "eta_s": 30.0},
        {"request": "ev", "phase": 4, "eta_s": 30.0, "eta": "2026-01-01T00:00:00Z"},
        {"request": "ev", "phase": 4, "eta_s": 9999.0},
        {"request": "ev", "phase": 4, "eta_s": 30.0, "level": 0},
        {"request": "ev", "phase": 4, "eta_s": 30.0, "checkout": {"timeout_s": 1}},
        {"request": "ev", "phase": 4, "eta": "2026-01-01T00:00:00"},  # no zone
    ):
        with pytest.raises(ValidationError):
            command("priority", **params)


def test_an_honoured_request_and_its_cancel(port: OperatorPort) -> None:
    handler = DaemonCommandHandler(port)
    lead = lead_time(port.config, port.controller.plan, (4, 8))
    eta = datetime.now(UTC) + timedelta(seconds=lead + 20.0)
    result = handler.apply(
        command(
            "priority",
            request="ev-1",
            phases=[4, 8],
            eta=eta.isoformat(),
            checkout={"detector": 9},
        )
    )
    assert result.data is not None and result.data["honoured"] is True
    assert (
        float(str(result.data["green_in_s"]))
        <= lead + 20.0 - port.config.control.priority_flush_s + 0.5
    )
    assert "ev-1" in port.controller.priority.requests
    handler.apply(command("priority_cancel", request="ev-1"))
    assert "ev-1" not in port.controller.priority.requests
    with pytest.raises(CommandError, match="no priority request"):
        handler.apply(command("priority_cancel", request="ev-1"))


def test_a_late_request_is_served_and_answered_late(port: OperatorPort) -> None:
    handler = DaemonCommandHandler(port)
    result = handler.apply(command("priority", request="ev-2", phase=2, eta_s=3.0))
    assert result.data is not None and result.data["honoured"] is False
    controller = port.controller
    for k in range(300, 600):
        port.last = controller.step(k / 10, Inputs())
        if any(r.phase == 2 and r.interval is Interval.GREEN for r in port.last.rings):
            break
    assert controller.state is OperatingState.PREEMPT
    assert k / 10 - 30.0 <= float(str(result.data["green_in_s"])) + 0.1


@pytest.mark.parametrize(
    ("params", "match"),
    [
        ({"request": "x", "phases": [4, 2], "eta_s": 60.0}, "cannot be green together"),
        ({"request": "x", "phases": [4, 3], "eta_s": 60.0}, "cannot be green together"),
        ({"request": "x", "phase": 9, "eta_s": 60.0}, "no such phase"),
        ({"request": "x", "phase": 4, "eta": "2020-01-01T00:00:00Z"}, "in the past"),
        ({"request": "x", "phase": 4, "eta": "2099-01-01T00:00:00Z"}, "ahead"),
        ({"request": "x", "phase": 4, "eta_s": 60.0, "checkout": {"detector": 60}}, "detector"),
    ],
)
def test_bad_requests_are_refused(
    port: OperatorPort, params: dict[str, object], match: str
) -> None:
    with pytest.raises(CommandError, match=match):
        DaemonCommandHandler(port).apply(command("priority", **params))
    assert not port.controller.priority.requests
