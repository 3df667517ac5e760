"""Commands through a real mosquitto: responses, MQTT 5 response topic, duplicates, refusals."""

from __future__ import annotations

import json
import random
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiomqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from edgectl.sync.signing import build_command, sign
from edgectl.testing.mosquitto import MosquittoBroker
from tests.sync.conftest import (
    IID,
    PREFIX,
    FakeHandler,
    consuming,
    eventually,
    make_service,
    running,
)
from tests.sync.test_commands import VALID_PARAMS

ROOT = f"{PREFIX}/{IID}"
KEY = b"fleet-key"


def _resigned(cmd: dict[str, object]) -> dict[str, object]:
    return {**cmd, "sig": sign(cmd, KEY)}


def _props(response_topic: str, correlation: bytes) -> Properties:
    props = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
    props.ResponseTopic = response_topic
    props.CorrelationData = correlation
    return props


async def test_every_command_type_over_mqtt5_with_response_topic(
    broker: MosquittoBroker, tmp_path: Path, handler: FakeHandler
) -> None:
    key_file = tmp_path / "cmd.key"
    key_file.write_bytes(KEY + b"\n")
    service = make_service(broker.url, tmp_path / "state", handler, command_key_file=key_file)
    reply_to = f"centre/replies/{uuid.uuid4().hex[:8]}"
    async with (
        consuming(
            broker.url, [f"{ROOT}/cmd/response", reply_to], protocol=aiomqtt.ProtocolVersion.V5
        ) as c,
        running(service),
    ):
        await eventually(lambda: service.connected)
        async with aiomqtt.Client(
            "127.0.0.1", broker.port, protocol=aiomqtt.ProtocolVersion.V5
        ) as centre:
            for ctype, params in VALID_PARAMS.items():
                cmd = build_command(
                    ctype,
                    params,
                    now=datetime.now(UTC),
                    key=KEY,
                    command_id=f"c-{ctype}",
                    target=IID,
                )
                await centre.publish(
                    f"{ROOT}/cmd",
                    json.dumps(cmd),
                    qos=1,
                    properties=_props(reply_to, f"corr-{ctype}".encode()),
                )
        await eventually(lambda: len(c.on(reply_to)) == len(VALID_PARAMS))
        await eventually(lambda: len(c.on("/cmd/response")) == len(VALID_PARAMS))
    assert [cmd.type for cmd in handler.applied] == list(VALID_PARAMS)
    for m in c.on(reply_to):
        assert m.payload["ok"] is True, m.payload
        ctype = m.payload["id"].removeprefix("c-")
        assert m.properties.CorrelationData == f"corr-{ctype}".encode()
        assert isinstance(m.payload["seq"], int)
        assert m.payload["ts"].endswith("Z")
    assert service.metrics.applied == len(VALID_PARAMS)


async def test_bad_duplicate_and_unsigned_commands_over_mqtt(
    broker: MosquittoBroker, tmp_path: Path, handler: FakeHandler
) -> None:
    key_file = tmp_path / "cmd.key"
    key_file.write_bytes(KEY)
    service = make_service(broker.url, tmp_path / "state", handler, command_key_file=key_file)
    now = datetime.now(UTC)
    good = build_command("hold", {"phases": [2]}, now=now, key=KEY, command_id="dup", target=IID)
    bad: list[tuple[bytes, str]] = [
        (b"{", "malformed_json"),
        (b"x" * 20_000, "too_large"),  # over max_command_bytes, under the packet cap
        (json.dumps(_resigned({**good, "type": "teleport"})).encode(), "unknown_type"),
        (
            json.dumps(_resigned({**good, "params": {"phases": "all"}})).encode(),
            "invalid_schema",
        ),
        (
            json.dumps(build_command("hold", {"phases": [2]}, now=now, command_id="u")).encode(),
            "unsigned",
        ),
        (json.dumps({**good, "id": "other"}).encode(), "bad_signature"),
    ]
    async with consuming(broker.url, f"{ROOT}/#") as c, running(service):
        await eventually(lambda: service.connected)
        async with aiomqtt.Client("127.0.0.1", broker.port) as centre:
            for payload, _ in bad:
                await centre.publish(f"{ROOT}/cmd", payload, qos=1)
            await centre.publish(f"{ROOT}/cmd", json.dumps(good), qos=1)
            await centre.publish(f"{ROOT}/cmd", json.dumps(good), qos=1)
        await eventually(lambda: len(c.on("/cmd/response")) == len(bad) + 2)
        # the refusals are also events (201 COMMAND_REJECTED)
        await eventually(
            lambda: (
                sum(1 for m in c.on("/events") for e in m.payload["events"] if e[1] == 201)
                == len(bad)
            )
        )
    answers = [m.payload for m in c.on("/cmd/response")]
    codes = [a["error"]["code"] for a in answers[: len(bad)]]
    assert codes == [code for _, code in bad]
    assert all(a["ok"] is False for a in answers[: len(bad)])
    first, second = answers[-2], answers[-1]
    assert first["ok"] is True
    assert second["ok"] is True
    assert second["duplicate"] is True
    assert len(handler.applied) == 1
    assert dict(service.metrics.rejected) == {code: 1 for _, code in bad}
    assert service.metrics.duplicates == 1


async def test_commands_over_mqtt_311(
    broker: MosquittoBroker, tmp_path: Path, handler: FakeHandler
) -> None:
    service = make_service(broker.url, tmp_path, handler, protocol="3.1.1")
    async with consuming(broker.url, f"{ROOT}/cmd/response") as c, running(service):
        await eventually(lambda: service.connected)
        async with aiomqtt.Client("127.0.0.1", broker.port) as centre:
            cmd: dict[str, Any] = build_command(
                "place_call", {"phases": [4]}, now=datetime.now(UTC)
            )
            await centre.publish(f"{ROOT}/cmd", json.dumps(cmd), qos=1)
        await eventually(lambda: bool(c.messages))
    assert c.messages[0].payload["id"] == cmd["id"]
    assert c.messages[0].payload["ok"] is True
    assert handler.applied[0].type == "place_call"


def _bad_payloads(n: int, seed: int = 5) -> list[bytes]:
    """``n`` deterministic bad commands: wrong types, unknown types, unsafe values, bad or
    missing signatures, expired/stale/future, garbage, huge payloads."""
    rng = random.Random(seed)
    now = datetime.now(UTC)
    junk: list[object] = [
        None,
        True,
        -1,
        10**20,
        3.5,
        "",
        "x" * 300,
        [],
        {},
        [1, "a"],
        {"a": {"b": None}},
    ]
    out: list[bytes] = []
    while len(out) < n:
        ctype = rng.choice(list(VALID_PARAMS))
        cmd = build_command(
            ctype, VALID_PARAMS[ctype], now=now, key=KEY, command_id=f"bad-{len(out)}", target=IID
        )
        kind = rng.randrange(8)
        if kind == 0:  # a field of the wrong type (signature no longer matches either)
            cmd[rng.choice(["id", "type", "issued_at", "params", "expires_at"])] = rng.choice(junk)
        elif kind == 1:
            cmd["type"] = rng.choice(["reboot", "SET_MODE", "set-mode", "hold "])
        elif kind == 2:  # params with a bogus key or out-of-range phase, re-signed
            params = cmd["params"]
            assert isinstance(params, dict)
            cmd["params"] = {**params, rng.choice(["bogus", "phases"]): [0, 17]}
            cmd.pop("sig")
            cmd["sig"] = sign(cmd, KEY)
        elif kind == 3:
            cmd.pop("sig")
        elif kind == 4:
            cmd["sig"] = sign(cmd, b"wrong-key")
        elif kind == 5:  # expired / stale / future, correctly signed
            shift = rng.choice([-3600.0, 3600.0])
            cmd = build_command(
                ctype,
                VALID_PARAMS[ctype],
                now=now + timedelta(seconds=shift),
                key=KEY,
                expires_in_s=None,
                target=IID,
            )
        elif kind == 6:
            out.append(bytes(rng.randrange(256) for _ in range(rng.randrange(1, 40))))
            continue
        else:
            out.append(b"[" * 10_000 + b"]" * 10_000)  # too large and absurdly nested
            continue
        out.append(json.dumps(cmd).encode())
    return out


async def test_hundreds_of_bad_commands_refused_junction_unaffected(
    broker: MosquittoBroker, tmp_path: Path, handler: FakeHandler
) -> None:
    key_file = tmp_path / "cmd.key"
    key_file.write_bytes(KEY)
    # every one parsed and answered: the rate limit (test_ratelimit.py) raised out of the way
    service = make_service(
        broker.url,
        tmp_path / "state",
        handler,
        command_key_file=key_file,
        max_commands_per_s=1000.0,
    )
    payloads = _bad_payloads(300)
    async with consuming(broker.url, f"{ROOT}/cmd/response") as c, running(service):
        await eventually(lambda: service.connected)
        async with aiomqtt.Client("127.0.0.1", broker.port) as centre:
            for payload in payloads:
                await centre.publish(f"{ROOT}/cmd", payload, qos=1)
        await eventually(lambda: len(c.messages) == len(payloads), timeout=30)
        assert service.connected  # nothing crashed the link
    assert handler.applied == []
    codes = Counter(m.payload["error"]["code"] for m in c.messages)
    assert all(m.payload["ok"] is False for m in c.messages)
    assert set(codes) <= {
        "malformed_json",
        "too_large",
        "invalid_schema",
        "unknown_type",
        "bad_signature",
        "unsigned",
        "stale",
        "future",
        "expired",
    }
    assert len(codes) >= 7, codes
    assert sum(service.metrics.rejected.values()) == len(payloads)
