"""What a junction publishes is signed: answers on ``…/cmd/response`` (with the key the command
was verified with) and, with ``[mqtt] outflow_key_file``, its outflow; a junction with that
setting refuses neighbour outflow that is unsigned or badly signed. Over a real mosquitto.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiomqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from edgectl.config.model import Neighbour, Outflow
from edgectl.sync.clock import iso_ms
from edgectl.sync.service import SyncService
from edgectl.sync.signing import Key, build_command, parse_keys, sign_with, verify_response
from edgectl.testing.mosquitto import MosquittoBroker
from tests.sync.conftest import IID, PREFIX, FakeHandler, consuming, eventually, running, settings
from tests.sync.test_outflow_mqtt import subscribed

ROOT = f"{PREFIX}/{IID}"
K1 = Key("k1", b"k1-secret-0123456789abcdef0123456789")
K2 = Key("k2", b"k2-secret-0123456789abcdef0123456789")
OUTFLOW = Key("art-7", b"arterial-7-0123456789abcdef0123456789")
J1 = Neighbour(intersection="J1", detectors=(2, 6), phase=4, travel_s=24.0)


def key_file(path: Path, *keys: Key) -> Path:
    path.write_bytes(b"".join(k.kid.encode() + b":" + k.secret + b"\n" for k in keys))
    path.chmod(0o600)
    return path


def make(url: str, tmp_path: Path, handler: FakeHandler, **kw: object) -> SyncService:
    neighbours = kw.pop("neighbours", ())
    outflow = kw.pop("outflow", None)
    return SyncService(
        settings(url, **kw),
        intersection_id=IID,
        state_dir=tmp_path / "state",
        handler=handler,
        version="0.1.0-test",
        config_digest="sha256:abc",
        neighbours=neighbours,  # type: ignore[arg-type]
        outflow=outflow,  # type: ignore[arg-type]
    )


# --- responses -----------------------------------------------------------------------------


def test_verify_response_checks_everything_but_sig() -> None:
    answer = sign_with({"id": "c-1", "ok": True, "ts": "2026-11-21T06:00:00.000Z", "seq": 3}, K2)
    assert answer["kid"] == "k2"
    assert verify_response(answer, (K1, K2))
    assert verify_response(answer, K2.secret)  # a raw key, as a centre may hold it
    assert not verify_response(answer, (K1,))
    for field, value in (("ok", False), ("seq", 4), ("ts", "2026-11-21T06:00:01.000Z")):
        assert not verify_response({**answer, field: value}, (K1, K2)), field
    assert not verify_response({k: v for k, v in answer.items() if k != "sig"}, (K1, K2))
    assert not verify_response({**answer, "kid": "k1"}, (K1, K2))  # the kid is signed too


async def test_answers_are_signed_with_the_verifying_key(
    broker: MosquittoBroker, tmp_path: Path, handler: FakeHandler
) -> None:
    keys = key_file(tmp_path / "cmd.keys", K1, K2)
    service = make(broker.url, tmp_path, handler, command_key_file=keys)
    private = f"{ROOT}/cmd/response/abc123"
    async with (
        consuming(broker.url, f"{ROOT}/cmd/response/#") as centre,
        running(service),
    ):
        await eventually(lambda: service.connected)
        now = datetime.now(UTC)
        by_k2 = build_command("request_state", {}, now=now, key=K2, target=IID, command_id="a")
        by_k1 = build_command("request_state", {}, now=now, key=K1, target=IID, command_id="b")
        forged = build_command("request_state", {}, now=now, key=b"x" * 40, target=IID)
        forged["id"] = "c"
        props = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
        props.ResponseTopic = private
        props.CorrelationData = b"a"
        async with aiomqtt.Client(
            "127.0.0.1", broker.port, protocol=aiomqtt.ProtocolVersion.V5
        ) as c:
            await c.publish(f"{ROOT}/cmd", json.dumps(by_k2), qos=1, properties=props)
            for cmd in (by_k1, forged):
                await c.publish(f"{ROOT}/cmd", json.dumps(cmd), qos=1)
        await eventually(lambda: len(centre.messages) == 4, 10.0, "four answers")
    answers = {(str(m.topic), m.payload["id"]): m.payload for m in centre.messages}
    for topic in (f"{ROOT}/cmd/response", private):
        a = answers[(topic, "a")]
        assert a["ok"] is True and a["kid"] == "k2", a
        assert verify_response(a, (K1, K2)) and not verify_response(a, (K1,))
    b = answers[(f"{ROOT}/cmd/response", "b")]
    assert b["ok"] is True and b["kid"] == "k1" and verify_response(b, (K1, K2))
    # a refusal of a forged command is signed too (with the first key): a real refusal
    c = answers[(f"{ROOT}/cmd/response", "c")]
    assert c["error"]["code"] == "bad_signature" and c["kid"] == "k1"
    assert verify_response(c, (K1, K2))
    # a forged answer does not pass
    assert not verify_response({**b, "ok": False}, (K1, K2))


async def test_unkeyed_bench_answers_stay_unsigned(
    broker: MosquittoBroker, tmp_path: Path, handler: FakeHandler
) -> None:
    service = make(broker.url, tmp_path, handler)  # allow_unsigned_commands (conftest)
    async with consuming(broker.url, f"{ROOT}/cmd/response") as centre, running(service):
        await eventually(lambda: service.connected)
        cmd = build_command("request_state", {}, now=datetime.now(UTC))
        async with aiomqtt.Client("127.0.0.1", broker.port) as c:
            await c.publish(f"{ROOT}/cmd", json.dumps(cmd), qos=1)
        await eventually(lambda: len(centre.messages) == 1, 5.0)
    (answer,) = [m.payload for m in centre.messages]
    assert answer["ok"] is True and "sig" not in answer and "kid" not in answer


# --- outflow -------------------------------------------------------------------------------


async def test_outflow_is_signed_with_the_outflow_key(
    broker: MosquittoBroker, tmp_path: Path, handler: FakeHandler
) -> None:
    keys = key_file(tmp_path / "outflow.keys", OUTFLOW)
    service = make(
        broker.url,
        tmp_path,
        handler,
        outflow_key_file=keys,
        outflow=Outflow(enabled=True, period_s=0.2),
    )
    t0 = datetime.now(UTC)
    async with subscribed(broker, f"{ROOT}/outflow") as sub, running(service):
        await eventually(lambda: service.connected)
        service.add_departures([(t0, 2)])
        await eventually(lambda: len(sub.messages) == 1, 5.0, "the outflow message")
    (body,) = sub.payloads()
    assert body["departures"] == [{"detector": 2, "at": iso_ms(t0)}]
    assert body["kid"] == "art-7" and verify_response(body, (OUTFLOW,))
    assert not verify_response({**body, "seq": 99}, (OUTFLOW,))


def _outflow(seq: int, key: Key | None, detector: int = 2) -> bytes:
    now = datetime.now(UTC)
    dep = {"detector": detector, "at": iso_ms(now - timedelta(seconds=1))}
    body: dict[str, object] = {"ts": iso_ms(now), "seq": seq, "departures": [dep]}
    return json.dumps(sign_with(body, key) if key else body).encode()


async def test_a_keyed_junction_refuses_unsigned_and_forged_outflow(
    broker: MosquittoBroker, tmp_path: Path, handler: FakeHandler
) -> None:
    # the arterial's key being rotated: the old and the new key both verify
    new = Key("art-8", b"arterial-8-0123456789abcdef0123456789")
    keys = key_file(tmp_path / "outflow.keys", OUTFLOW, new)
    service = make(broker.url, tmp_path, handler, outflow_key_file=keys, neighbours=(J1,))
    topic = f"{PREFIX}/J1/outflow"
    stranger = Key("art-7", b"not-the-arterial-key-0123456789abcdef")
    async with running(service):
        await eventually(lambda: service.connected)
        async with aiomqtt.Client("127.0.0.1", broker.port) as upstream:
            for payload in (
                _outflow(1, None),  # unsigned
                _outflow(2, stranger),  # a key of the same id, not ours
                _outflow(3, OUTFLOW),
                _outflow(4, new, detector=6),
            ):
                await upstream.publish(topic, payload, qos=0)
        await eventually(
            lambda: sum(service.metrics.neighbour_messages.values()) == 4, 5.0, "four messages"
        )
        assert dict(service.metrics.neighbour_messages) == {
            ("J1", "unsigned"): 1,
            ("J1", "bad_signature"): 1,
            ("J1", "accepted"): 2,
        }
        assert service.inbox.pending() == {"J1": 2}


async def test_an_unkeyed_junction_takes_outflow_signed_or_not(
    broker: MosquittoBroker, tmp_path: Path, handler: FakeHandler
) -> None:
    service = make(broker.url, tmp_path, handler, neighbours=(J1,))
    async with running(service):
        await eventually(lambda: service.connected)
        async with aiomqtt.Client("127.0.0.1", broker.port) as upstream:
            await upstream.publish(f"{PREFIX}/J1/outflow", _outflow(1, None), qos=0)
            await upstream.publish(f"{PREFIX}/J1/outflow", _outflow(2, OUTFLOW, 6), qos=0)
        accepted = ("J1", "accepted")
        await eventually(lambda: service.metrics.neighbour_messages[accepted] == 2, 5.0)


def test_parse_keys_roundtrip_of_the_test_files(tmp_path: Path) -> None:
    path = key_file(tmp_path / "k", K1, K2)
    assert parse_keys(path.read_bytes()) == (K1, K2)
