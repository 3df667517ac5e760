"""Bad priority requests through the whole command pipeline — the sync layer's processor
(size, JSON, signature, target, schema, expiry, duplicate ids, backed by the real SQLite
store) in front of the daemon's handler and a real Controller — are refused with their codes,
and change nothing. The route tool's own commands pass the same pipeline."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from edgectl.centre.route import Cancel, GreenWave, Route, RouteStop, Send
from edgectl.commands.priority import command_for
from edgectl.config.loader import load_config
from edgectl.control.controller import Controller
from edgectl.control.types import Inputs
from edgectl.daemon.operator import DaemonCommandHandler
from edgectl.daemon.port import OperatorPort
from edgectl.sync.outbox import Outbox
from edgectl.sync.processor import CommandProcessor, Verdict
from edgectl.sync.signing import Key, build_command, sign

EIGHT_PHASE = Path(__file__).resolve().parents[2] / "edgectl" / "examples" / "eight_phase.toml"
IID = "hz-0001"
KEY = Key("k1", b"the-centre-key-of-hz-0001-32-bytes!!")


class Junction:
    """The daemon's command path, without the MQTT transport: processor → handler → the
    controller, with the clock moved by hand for expiry."""

    def __init__(self, state_dir: Path) -> None:
        config = load_config(EIGHT_PHASE, environ={})
        self.port = OperatorPort(config, Controller(config))
        for k in range(300):
            self.port.last = self.port.controller.step(k / 10, Inputs())
        self.outbox = Outbox(state_dir)
        self.offset = timedelta(0)
        self.processor = CommandProcessor(
            handler=DaemonCommandHandler(self.port),
            store=self.outbox,
            clock=lambda: datetime.now(UTC) + self.offset,
            keys=(KEY,),
            max_age_s=60.0,
            target=IID,
        )

    def send(self, command: dict[str, object] | bytes) -> Verdict:
        raw = command if isinstance(command, bytes) else json.dumps(command).encode()
        return self.processor.process(raw)

    @property
    def held(self) -> set[str]:
        return set(self.port.controller.priority.requests)


@pytest.fixture
def junction(tmp_path: Path) -> Iterator[Junction]:
    j = Junction(tmp_path)
    yield j
    j.outbox.close()


def priority(
    params: dict[str, object] | None = None,
    *,
    key: Key | None = KEY,
    target: str | None = IID,
    **more: object,
) -> dict[str, object]:
    body = {"request": "amb-1", **(params or {}), **more}
    return build_command("priority", body, now=datetime.now(UTC), key=key, target=target)


def refused(verdict: Verdict) -> tuple[str | None, str]:
    assert not verdict.ok and not verdict.executed, verdict.response
    error = verdict.response.get("error")
    assert isinstance(error, dict)
    return verdict.code, str(error.get("message"))


@pytest.mark.parametrize(
    ("params", "code", "message"),
    [
        ({"phase": 9, "eta_s": 60.0}, "not_allowed", "no such phase"),  # no such approach
        ({"phases": [4, 2], "eta_s": 60.0}, "not_allowed", "cannot be green together"),
        ({"phase": 4, "eta_s": 60.0, "checkout": {"detector": 60}}, "not_allowed", "detector"),
        ({"phase": 17, "eta_s": 60.0}, "invalid_schema", "phase"),
        ({"phases": [1, 2, 3, 4, 5], "eta_s": 60.0}, "invalid_schema", "phases"),
        ({"phase": 4, "eta": "2020-01-01T00:00:00Z"}, "not_allowed", "in the past"),
        ({"phase": 4, "eta_s": -1.0}, "invalid_schema", "eta_s"),
        ({"phase": 4, "eta": "2099-01-01T00:00:00Z"}, "not_allowed", "ahead"),
        ({"phase": 4, "eta_s": 601.0}, "invalid_schema", "eta_s"),
        ({"phase": 4}, "invalid_schema", "eta"),
        ({"phase": 4, "eta_s": 60.0, "level": 10}, "invalid_schema", "level"),
    ],
)
def test_bad_requests_are_refused_with_their_codes(
    junction: Junction, params: dict[str, object], code: str, message: str
) -> None:
    got_code, got_message = refused(junction.send(priority(params)))
    assert got_code == code
    assert message in got_message
    assert junction.held == set()


def test_an_eta_just_past_is_still_served_and_answered_late(junction: Junction) -> None:
    eta = datetime.now(UTC) - timedelta(seconds=2)  # within the 5 s clock skew allowance
    verdict = junction.send(priority(phase=4, eta=eta.isoformat()))
    assert verdict.ok, verdict.response
    result = verdict.response["result"]
    assert isinstance(result, dict) and result["honoured"] is False and result["reason"]


def test_unsigned_forged_and_misdirected_requests_are_refused(junction: Junction) -> None:
    assert refused(junction.send(priority(key=None, phase=4, eta_s=60.0)))[0] == "unsigned"
    forged = priority(key=Key("k1", b"not-the-junction-key-but-32-bytes-x"), phase=4, eta_s=60)
    assert refused(junction.send(forged))[0] == "bad_signature"
    tampered = priority(phase=4, eta_s=60.0)
    tampered["params"] = {**tampered["params"], "eta_s": 5.0}  # type: ignore[dict-item]
    assert refused(junction.send(tampered))[0] == "bad_signature"
    unknown_kid = priority(key=Key("k9", KEY.secret), phase=4, eta_s=60.0)
    assert refused(junction.send(unknown_kid))[0] == "bad_signature"
    # captured at another junction, or sent without naming one
    assert refused(junction.send(priority(target="hz-0002", phase=4, eta_s=60)))[0] == (
        "wrong_target"
    )
    assert refused(junction.send(priority(target=None, phase=4, eta_s=60.0)))[0] == ("wrong_target")
    assert junction.held == set()


def test_a_replayed_request_is_not_executed_again(junction: Junction) -> None:
    captured = priority(phase=4, eta_s=120.0)
    first = junction.send(captured)
    assert first.ok and first.executed
    assert junction.held == {"amb-1"}
    cancel = build_command(
        "priority_cancel", {"request": "amb-1"}, now=datetime.now(UTC), key=KEY, target=IID
    )
    assert junction.send(cancel).ok
    assert junction.held == set()
    # the same message again (a replay by anyone who captured it): the original answer,
    # marked duplicate, and the vehicle that checked out is not requested again
    replay = junction.send(captured)
    assert replay.duplicate and not replay.executed
    assert replay.response["result"] == first.response["result"]
    assert junction.held == set()
    # a replay after the junction's memory of it would have lapsed is too old to accept
    junction.offset = timedelta(seconds=61)
    late = junction.send(captured)
    assert refused(late)[0] in ("expired", "stale")
    assert junction.held == set()


def test_an_expired_or_stale_request_is_refused(junction: Junction) -> None:
    old = build_command(
        "priority",
        {"request": "amb-2", "phase": 4, "eta_s": 60.0},
        now=datetime.now(UTC) - timedelta(seconds=90),
        key=KEY,
        target=IID,
        expires_in_s=None,
    )
    assert refused(junction.send(old))[0] == "stale"
    expired = build_command(
        "priority",
        {"request": "amb-3", "phase": 4, "eta_s": 60.0},
        now=datetime.now(UTC) - timedelta(seconds=40),
        key=KEY,
        target=IID,
        expires_in_s=30.0,
    )
    assert refused(junction.send(expired))[0] == "expired"
    future = build_command(
        "priority",
        {"request": "amb-4", "phase": 4, "eta_s": 60.0},
        now=datetime.now(UTC) + timedelta(seconds=120),
        key=KEY,
        target=IID,
    )
    assert refused(junction.send(future))[0] == "future"
    assert junction.held == set()


def test_a_cancel_of_a_request_not_held_is_refused(junction: Junction) -> None:
    cancel = build_command(
        "priority_cancel", {"request": "nobody"}, now=datetime.now(UTC), key=KEY, target=IID
    )
    code, message = refused(junction.send(cancel))
    assert code == "not_allowed" and "no priority request" in message


def test_the_route_tools_commands_pass_the_pipeline(junction: Junction) -> None:
    route = Route("amb-9", (RouteStop(IID, (4, 8), 500.0), RouteStop("hz-0002", (2,), 900.0)))
    wave = GreenWave(route)
    now = datetime.now(UTC)
    sent = [i for i in wave.update(0.0, 0.0, 10.0) if i.junction == IID]
    assert len(sent) == 1
    verdict = junction.send(command_for(sent[0], now=now, key=KEY, expires_in_s=30.0))
    assert verdict.ok and verdict.executed, verdict.response
    result = verdict.response["result"]
    assert isinstance(result, dict) and result["honoured"] is True
    assert junction.held == {"amb-9@hz-0001"}
    # a fix with a UTC time: the absolute ETA (``eta``) instead of ``eta_s``
    slower = [i for i in wave.update(10.0, 50.0, 5.0) if isinstance(i, Send)]
    assert slower and slower[0].request == "amb-9@hz-0001"
    absolute = command_for(
        slower[0],
        now=now,
        key=KEY,
        expires_in_s=30.0,
        arrival_at=now + timedelta(seconds=slower[0].eta_s),
    )
    params = absolute["params"]
    assert isinstance(params, dict) and "eta" in params and "eta_s" not in params
    assert junction.send(absolute).ok
    assert junction.port.controller.priority.requests["amb-9@hz-0001"].eta > 30.0 + 80.0
    # passing the stop line: the check-out
    cancels = [i for i in wave.update(20.0, 501.0, 10.0) if isinstance(i, Cancel)]
    assert cancels == [Cancel(IID, "amb-9@hz-0001")]
    assert junction.send(command_for(cancels[0], now=now, key=KEY, expires_in_s=30.0)).ok
    assert junction.held == set()


def test_a_signature_covers_the_whole_command() -> None:
    # the pipeline's check, not ours: the route tool signs exactly what it publishes
    cmd = command_for(
        GreenWave(Route("r", (RouteStop(IID, (2,), 100.0),))).update(0.0, 0.0, 10.0)[0],
        now=datetime.now(UTC),
        key=KEY,
        expires_in_s=30.0,
    )
    assert cmd["sig"] == sign(cmd, KEY.secret)
    assert cmd["kid"] == "k1" and cmd["target"] == IID
