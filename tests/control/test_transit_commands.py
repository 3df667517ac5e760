"""The ``tsp_checkin`` and ``tsp_checkout`` commands: schema, refusals with their codes
(unknown phase, TSP disabled in the plan or not on the phase, ETA out of range), the check-in
reaching the controller's TSP planner, and the whole pipeline (unsigned, replayed)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from pydantic import ValidationError

from edgectl.config.loader import load_config
from edgectl.config.model import DaemonConfig
from edgectl.control.controller import Controller
from edgectl.control.types import EventCode, Inputs
from edgectl.daemon.operator import DaemonCommandHandler
from edgectl.daemon.port import OperatorPort
from edgectl.errors import CommandError
from edgectl.sync.commands import COMMAND_ADAPTER, COMMAND_TYPES, Command, ErrorCode
from edgectl.sync.outbox import Outbox
from edgectl.sync.processor import CommandProcessor
from edgectl.sync.signing import Key, build_command

EIGHT_PHASE = Path(__file__).resolve().parents[2] / "edgectl" / "examples" / "eight_phase.toml"


def command(kind: str, **params: object) -> Command:
    raw = json.dumps(build_command(kind, params, now=datetime.now(UTC)))
    return COMMAND_ADAPTER.validate_json(raw)  # as the sync service reads it


def _port(**tsp: object) -> OperatorPort:
    config = load_config(EIGHT_PHASE, environ={})
    plans = tuple(p.model_copy(update={"tsp_enabled": True, **tsp}) for p in config.plans)
    config = config.model_copy(update={"plans": plans})
    assert isinstance(config, DaemonConfig)
    port = OperatorPort(config, Controller(config))
    for k in range(300):
        port.last = port.controller.step(k / 10, Inputs())
    return port


@pytest.fixture
def port() -> OperatorPort:
    return _port()


def test_the_types_and_codes_are_appended() -> None:
    assert COMMAND_TYPES[-2:] == ("tsp_checkin", "tsp_checkout")
    codes = [c.value for c in ErrorCode]
    assert codes[-3:] == ["unknown_phase", "tsp_disabled", "eta_out_of_range"]
    assert codes.index("bad_response_topic") == 13  # earlier positions unchanged


def test_schema() -> None:
    command("tsp_checkin", request="bus", phase=4)  # no ETA: fine
    for params in (
        {"request": "bus"},
        {"request": "bus", "phase": 4, "phases": [4]},
        {"request": "bus", "phase": 4, "eta_s": 5.0, "eta": "2026-01-01T00:00:00Z"},
        {"request": "", "phase": 4},
        {"request": "bus", "phase": 17},
        {"request": "bus", "phase": 4, "eta": "2026-01-01T00:00:00"},  # no zone
        {"request": "bus", "phase": 4, "checkout": {"timeout_s": 1}},
        {"request": "bus", "phase": "4"},
        {"request": "bus", "phase": 4, "colour": "red"},
    ):
        with pytest.raises(ValidationError):
            command("tsp_checkin", **params)
    with pytest.raises(ValidationError):
        command("tsp_checkout")


def test_a_checkin_reaches_the_planner_and_checks_out(port: OperatorPort) -> None:
    handler = DaemonCommandHandler(port)
    eta = datetime.now(UTC) + timedelta(seconds=20.0)
    result = handler.apply(
        command(
            "tsp_checkin",
            request="bus-7",
            phase=4,
            eta=eta.isoformat(),
            checkout={"detector": 10, "timeout_s": 60},
        )
    )
    assert result.data == {"request": "bus-7", "reason": ""}
    held = port.controller.transit.held["bus-7"].request
    assert held.phases == (4,) and held.checkout_detector == 10 and held.timeout_s == 60
    assert held.eta == pytest.approx(port.last.t + 20.0 if port.last else 0.0, abs=0.5)
    handler.apply(command("tsp_checkout", request="bus-7"))
    assert "bus-7" not in port.controller.transit.held
    with pytest.raises(CommandError) as info:
        handler.apply(command("tsp_checkout", request="bus-7"))
    assert info.value.code == "not_allowed"
    out = port.controller.step(30.0, Inputs())
    assert [e.code for e in out.events if e.code in (112, 115)] == [
        EventCode.TSP_CHECK_IN,
        EventCode.TSP_CHECK_OUT,
    ]


@pytest.mark.parametrize(
    ("params", "code"),
    [
        ({"phase": 12}, "unknown_phase"),
        ({"phases": [4, 9]}, "unknown_phase"),
        ({"phase": 4, "eta_s": -6.0}, "eta_out_of_range"),
        ({"phase": 4, "eta_s": 601.0}, "eta_out_of_range"),
        ({"phases": [2, 4]}, "not_allowed"),  # not one movement
        ({"phase": 4, "checkout": {"detector": 40}}, "not_allowed"),  # no such detector
    ],
)
def test_refusals(port: OperatorPort, params: dict[str, object], code: str) -> None:
    handler = DaemonCommandHandler(port)
    with pytest.raises(CommandError) as info:
        handler.apply(command("tsp_checkin", request="bus", **params))
    assert info.value.code == code
    assert not port.controller.transit.held


def test_eta_as_a_time_far_in_the_past_is_out_of_range(port: OperatorPort) -> None:
    handler = DaemonCommandHandler(port)
    eta = datetime.now(UTC) - timedelta(seconds=60)
    with pytest.raises(CommandError) as info:
        handler.apply(command("tsp_checkin", request="bus", phase=4, eta=eta.isoformat()))
    assert info.value.code == "eta_out_of_range"


def test_tsp_disabled_in_the_plan_or_not_on_the_phase() -> None:
    handler = DaemonCommandHandler(_port(tsp_enabled=False))
    with pytest.raises(CommandError) as info:
        handler.apply(command("tsp_checkin", request="bus", phase=4))
    assert info.value.code == "tsp_disabled"
    assert "disabled" in info.value.message
    port = _port(tsp_phases=(2, 6))
    handler = DaemonCommandHandler(port)
    with pytest.raises(CommandError) as info:
        handler.apply(command("tsp_checkin", request="bus", phase=4))
    assert info.value.code == "tsp_disabled"
    handler.apply(command("tsp_checkin", request="bus", phase=6))
    assert "bus" in port.controller.transit.held


# --------------------------------------------------------------------------- the pipeline

KEY = Key("k1", b"the-centre-key-of-hz-0001-32-bytes!!")


@pytest.fixture
def processor(tmp_path: Path) -> Iterator[tuple[CommandProcessor, OperatorPort]]:
    port = _port()
    outbox = Outbox(tmp_path)
    yield (
        CommandProcessor(
            handler=DaemonCommandHandler(port),
            store=outbox,
            clock=lambda: datetime.now(UTC),
            keys=(KEY,),
            max_age_s=60.0,
            target="hz-0001",
        ),
        port,
    )
    outbox.close()


def test_through_the_pipeline_signed_unsigned_replayed(
    processor: tuple[CommandProcessor, OperatorPort],
) -> None:
    proc, port = processor

    def send(body: dict[str, object], key: Key | None = KEY) -> dict[str, object]:
        cmd = build_command("tsp_checkin", body, now=datetime.now(UTC), key=key, target="hz-0001")
        return proc.process(json.dumps(cmd).encode()).response

    def code(response: dict[str, object]) -> object:
        error = response.get("error")
        return error.get("code") if isinstance(error, dict) else None

    assert code(send({"request": "bus", "phase": 4}, key=None)) == "unsigned"
    assert not port.controller.transit.held
    assert code(send({"request": "bus", "phase": 12})) == "unknown_phase"
    assert code(send({"request": "bus", "phase": 4, "eta_s": 900.0})) == "eta_out_of_range"
    signed = build_command(
        "tsp_checkin",
        {"request": "bus", "phase": 4},
        now=datetime.now(UTC),
        key=KEY,
        target="hz-0001",
    )
    first = proc.process(json.dumps(signed).encode())
    assert first.ok and first.executed
    port.controller.transit_checkout("bus")
    again = proc.process(json.dumps(signed).encode())  # a replay: the answer, not a re-run
    assert again.ok and not again.executed
    assert not port.controller.transit.held
