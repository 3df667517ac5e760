"""Hostile command messages (issue 21): one message never drops the session, sizes are capped
before any parsing, the signature comes first and binds the junction, the canonical form is
RFC 8785, and replay memory is by age."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiomqtt
import pytest
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from edgectl.sync.commands import MAX_CONTAINER_ITEMS
from edgectl.sync.outbox import Outbox
from edgectl.sync.processor import CommandProcessor
from edgectl.sync.signing import build_command, canonical_json
from edgectl.testing.mosquitto import MosquittoBroker
from tests.sync.conftest import IID, PREFIX, FakeHandler, consuming, eventually, make_service
from tests.sync.conftest import running as running_service

ROOT = f"{PREFIX}/{IID}"
KEY = b"fleet-key-0123456789abcdef"
NOW = datetime(2026, 11, 21, 6, 0, 0, tzinfo=UTC)


class Store:
    def __init__(self) -> None:
        self.data: dict[str, dict[str, object]] = {}

    def command_response(self, command_id: str) -> dict[str, object] | None:
        return self.data.get(command_id)

    def remember_command(self, command_id: str, response: Any, *, now: datetime) -> None:
        self.data[command_id] = dict(response)


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> datetime:
        return self.now


def _processor(handler: FakeHandler, *, key: bytes | None = KEY, **kw: Any) -> CommandProcessor:
    kw.setdefault("store", Store())
    kw.setdefault("clock", lambda: NOW)
    return CommandProcessor(handler=handler, key=key, max_age_s=60.0, target=IID, **kw)


def _signed(ctype: str, params: dict[str, Any], **kw: Any) -> dict[str, Any]:
    kw.setdefault("now", NOW)
    kw.setdefault("target", IID)
    return build_command(ctype, params, key=KEY, **kw)


def _v5(response_topic: str) -> Properties:
    props = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
    props.ResponseTopic = response_topic
    props.CorrelationData = b"corr"
    return props


# --- 1. per-message error isolation, through a real mosquitto -------------------------------


async def test_retained_hostile_commands_do_not_drop_the_session(
    broker: MosquittoBroker, tmp_path: Path, handler: FakeHandler
) -> None:
    """A lone surrogate in the id, a wildcard response topic, a response topic on the
    junction's own ``state``, each published RETAINED (a broker keeps one per topic: the
    first before the daemon connects, so an old daemon that dropped the session on it saw
    it again after every reconnect; the others while it runs)."""
    key_file = tmp_path / "cmd.key"
    key_file.write_bytes(KEY)
    service = make_service(broker.url, tmp_path / "state", handler, command_key_file=key_file)
    now = datetime.now(UTC)
    hostile: list[tuple[bytes, str | None]] = [
        (b'{"id": "\\ud800", "type": "hold", "params": {}}', None),
        (json.dumps(_signed("hold", {"phases": [2]}, now=now)).encode(), f"{ROOT}/+"),
        (json.dumps(_signed("place_call", {"phases": [4]}, now=now)).encode(), "centre/#"),
        (json.dumps(_signed("set_mode", {"mode": "flash"}, now=now)).encode(), f"{ROOT}/state"),
    ]

    async def publish(messages: list[tuple[bytes, str | None]]) -> None:
        async with aiomqtt.Client(
            "127.0.0.1", broker.port, protocol=aiomqtt.ProtocolVersion.V5
        ) as centre:
            for payload, reply_to in messages:
                await centre.publish(
                    f"{ROOT}/cmd",
                    payload,
                    qos=1,
                    retain=True,
                    properties=_v5(reply_to) if reply_to else None,
                )

    await publish(hostile[:1])
    async with (
        consuming(broker.url, [f"{ROOT}/cmd/response", f"{ROOT}/state"]) as c,
        running_service(service),
    ):
        await eventually(lambda: len(c.on("/cmd/response")) >= 1, what="the retained one")
        await publish(hostile[1:])
        await eventually(lambda: len(c.on("/cmd/response")) >= len(hostile), what="answers")
        good = _signed("request_state", {}, now=datetime.now(UTC), command_id="good-1")
        async with aiomqtt.Client("127.0.0.1", broker.port) as centre:
            await centre.publish(f"{ROOT}/cmd", json.dumps(good), qos=1)
        await eventually(
            lambda: any(m.payload.get("id") == "good-1" for m in c.on("/cmd/response")),
            what="the good command's answer",
        )
        assert service.connected
        metrics = service.metrics
        assert metrics.connects == 1  # never reconnected
        assert metrics.bdseq == 1
    answers = {m.payload["id"]: m.payload for m in c.on("/cmd/response")}
    assert answers["good-1"]["ok"] is True
    refused = [m.payload for m in c.on("/cmd/response") if m.payload.get("id") != "good-1"]
    assert len(refused) == len(hostile)
    codes = sorted(a["error"]["code"] for a in refused)
    assert codes == [
        "bad_response_topic",
        "bad_response_topic",
        "bad_response_topic",
        "malformed_json",
    ]
    # the lone surrogate's id was echoed encodably
    assert any(a["id"] == "?" for a in refused)
    # nothing published on the junction's own state topic but the state itself
    assert all("ok" not in m.payload for m in c.on("/state"))
    # only request_state ran: the refused commands changed nothing
    assert [cmd.type for cmd in handler.applied] == ["request_state"]
    assert metrics.rejected["bad_response_topic"] == 3


async def test_a_failing_message_is_counted_and_the_next_one_handled(
    broker: MosquittoBroker, tmp_path: Path, handler: FakeHandler
) -> None:
    """Any exception while handling one message (here: injected into publishing its answer)
    is logged and counted; the session carries on with the next message."""

    service = make_service(broker.url, tmp_path / "state", handler)
    # make the answer's publish raise inside the message handling
    original = service._commands._publisher.publish

    async def publish(link: Any, stream: str, topic: str, body: Any, **kw: Any) -> bool:
        if body.get("id") == "boom":
            raise RuntimeError("injected failure while answering")
        return await original(link, stream, topic, body, **kw)

    service._commands._publisher.publish = publish  # type: ignore[method-assign]
    async with consuming(broker.url, f"{ROOT}/cmd/response") as c, running_service(service):
        await eventually(lambda: service.connected)
        async with aiomqtt.Client("127.0.0.1", broker.port) as centre:
            for cid in ("boom", "after"):
                cmd = build_command("place_call", {"phases": [4]}, now=datetime.now(UTC))
                cmd["id"] = cid
                await centre.publish(f"{ROOT}/cmd", json.dumps(cmd), qos=1)
        await eventually(lambda: any(m.payload["id"] == "after" for m in c.messages))
        assert service.metrics.connects == 1
        assert service.metrics.rejected["internal"] == 1


# --- 2. size caps before any parsing ----------------------------------------------------------


def test_oversized_payload_refused_without_being_parsed(handler: FakeHandler) -> None:
    p = _processor(handler, max_bytes=2048)
    verdict = p.process(b"{" * 2049)  # not JSON either: parsing it would say malformed_json
    assert verdict.code == "too_large"


@pytest.mark.parametrize(
    "params",
    [
        {"phases": [2] * (MAX_CONTAINER_ITEMS + 1)},
        {"phases": [2], **{f"k{i}": i for i in range(MAX_CONTAINER_ITEMS + 1)}},
        {"phases": [2], "deep": json.loads("[" * 40 + "]" * 40)},
    ],
    ids=["long-array", "wide-object", "deep"],
)
def test_huge_arrays_and_objects_refused_before_the_schema(
    handler: FakeHandler, params: dict[str, Any]
) -> None:
    # correctly signed: only the container caps can refuse it before pydantic
    cmd = _signed("hold", params)
    verdict = _processor(handler).process(json.dumps(cmd).encode())
    assert verdict.code == "too_large", verdict.response
    assert handler.applied == []


async def test_a_packet_over_our_maximum_packet_size_never_reaches_us(
    broker: MosquittoBroker, tmp_path: Path, handler: FakeHandler
) -> None:
    service = make_service(broker.url, tmp_path / "state", handler)
    assert service.max_packet_size < 200_000
    async with consuming(broker.url, f"{ROOT}/cmd/response") as c, running_service(service):
        await eventually(lambda: service.connected)
        async with aiomqtt.Client(
            "127.0.0.1", broker.port, protocol=aiomqtt.ProtocolVersion.V5
        ) as centre:
            await centre.publish(f"{ROOT}/cmd", b"x" * 2_000_000, qos=1)
            good = build_command("place_call", {"phases": [4]}, now=datetime.now(UTC))
            await centre.publish(f"{ROOT}/cmd", json.dumps(good), qos=1)
        await eventually(lambda: len(c.messages) >= 1)
        assert service.connected
        metrics = service.metrics
    assert [m.payload["id"] for m in c.messages] == [good["id"]]
    assert metrics.connects == 1
    assert sum(metrics.rejected.values()) == 0  # the 2 MB packet was never even parsed


# --- 3. the signature first ---------------------------------------------------------------


def test_bad_signature_is_answered_before_schema_errors(handler: FakeHandler) -> None:
    cmd = _signed("hold", {"phases": "all", "bogus": [0, 17]})  # schema errors, signed right
    assert _processor(handler).process(json.dumps(cmd).encode()).code == "invalid_schema"
    forged = {**cmd, "sig": "0" * 64}
    assert _processor(handler).process(json.dumps(forged).encode()).code == "bad_signature"
    unsigned = {k: v for k, v in cmd.items() if k != "sig"}
    assert _processor(handler).process(json.dumps(unsigned).encode()).code == "unsigned"
    junk_sig = {**cmd, "sig": "ü" * 64, "type": "teleport", "issued_at": 7}
    assert _processor(handler).process(json.dumps(junk_sig).encode()).code == "bad_signature"


# --- 4. the signature binds the junction; RFC 8785 ------------------------------------------


def test_signed_commands_must_name_this_junction(handler: FakeHandler) -> None:
    other = _signed("hold", {"phases": [2]}, target="hz-0002")
    none = build_command("hold", {"phases": [2]}, now=NOW, key=KEY)
    mine = _signed("hold", {"phases": [2]})
    assert _processor(handler).process(json.dumps(other).encode()).code == "wrong_target"
    assert _processor(handler).process(json.dumps(none).encode()).code == "wrong_target"
    # retargeting a captured command breaks its signature
    moved = {**other, "target": IID}
    assert _processor(handler).process(json.dumps(moved).encode()).code == "bad_signature"
    assert _processor(handler).process(json.dumps(mine).encode()).ok
    assert [c.target for c in handler.applied] == [IID]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        # RFC 8785 §3.2.2.3 / appendix B number samples
        (1e21, "1e+21"),
        (1e20, "100000000000000000000"),
        (333333333.3333333, "333333333.3333333"),
        (1e-7, "1e-7"),
        (0.000001, "0.000001"),
        (-0.0, "0"),
        (4.5, "4.5"),
        (2.0, "2"),
        (5e-324, "5e-324"),
        (1.7976931348623157e308, "1.7976931348623157e+308"),
        (9007199254740991, "9007199254740991"),
    ],
)
def test_jcs_numbers(value: float, expected: str) -> None:
    assert canonical_json({"n": value}) == b'{"n":' + expected.encode() + b"}"


def test_jcs_sorts_by_utf16_code_units_and_escapes_like_ecmascript() -> None:
    # RFC 8785 §3.2.3: "\r" < "1" < "\u0080" < "\u00f6" < "\u20ac" < "😀" < "\ufb33"
    obj = {"\u20ac": 1, "\r": 2, "\ufb33": 3, "1": 4, "\U0001f600": 5, "\u0080": 6, "ö": 7}
    text = canonical_json(obj).decode()
    assert list(json.loads(text)) == ["\r", "1", "\u0080", "ö", "\u20ac", "😀", "\ufb33"]
    assert (
        canonical_json({"s": '\u2028\x7f\x1f"\\/'}) == '{"s":"\u2028\x7f\\u001f\\"\\\\/"}'.encode()
    )
    for bad in ({"n": float("nan")}, {"n": 2**53}, {"s": "\ud800"}):
        with pytest.raises(ValueError, match=r"NaN|safe range|surrogate"):
            canonical_json(bad)


# --- 5. replay memory by age --------------------------------------------------------------


def test_a_replay_after_a_thousand_other_commands_is_answered_not_executed(
    handler: FakeHandler, tmp_path: Path
) -> None:
    clock = Clock()
    outbox = Outbox(tmp_path, now=NOW)
    p = _processor(handler, clock=clock, store=outbox)
    old = json.dumps(_signed("set_mode", {"mode": "flash"}, command_id="old")).encode()
    assert p.process(old).executed
    for i in range(1200):
        other = _signed("place_call", {"phases": [4]}, command_id=f"c-{i}")
        assert p.process(json.dumps(other).encode()).executed
    clock.now = NOW + timedelta(seconds=45)  # still within its max age (60 s)
    replay = p.process(old)
    assert replay.duplicate and not replay.executed
    assert replay.response["id"] == "old" and replay.response["ok"] is True
    # and after a restart (a new processor on the same database)
    p2 = _processor(handler, clock=clock, store=outbox)
    assert p2.process(old).duplicate
    assert [c.type for c in handler.applied].count("set_mode") == 1
    outbox.close()
