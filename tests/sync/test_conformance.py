"""One conformance suite, run against every broker we support: mosquitto (MQTT 5) and the
NATS MQTT gateway (MQTT 3.1.1, JetStream) — the core cases must hold on both."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

import aiomqtt
import pytest

from edgectl.sync.service import SyncService
from edgectl.sync.signing import build_command
from edgectl.testing import mosquitto, nats
from tests.sync.conftest import (
    IID,
    PREFIX,
    FakeHandler,
    consuming,
    eventually,
    make_service,
    running,
)

ROOT = f"{PREFIX}/{IID}"


class _Broker(Protocol):
    port: int

    @property
    def url(self) -> str: ...
    def stop(self, timeout: float = ...) -> None: ...
    def start(self) -> None: ...


@dataclass
class Target:
    name: str
    broker: _Broker
    protocol: str  # MqttSettings.protocol

    def service(self, state_dir: Path, handler: FakeHandler, **kw: Any) -> SyncService:
        return make_service(self.broker.url, state_dir, handler, protocol=self.protocol, **kw)


@pytest.fixture(params=["mosquitto", "nats"])
def target(request: pytest.FixtureRequest) -> Iterator[Target]:
    if request.param == "mosquitto":
        if not mosquitto.mosquitto_available():
            pytest.skip(mosquitto.SKIP_REASON)
        with mosquitto.MosquittoBroker(persistence=True) as b:
            yield Target("mosquitto", b, "5")
    else:
        if not nats.nats_available():
            pytest.skip(nats.SKIP_REASON)
        with nats.NatsBroker() as n:
            yield Target("nats", n, "3.1.1")


async def test_birth_state_will_and_rebirth(
    target: Target, tmp_path: Path, handler: FakeHandler
) -> None:
    service = target.service(tmp_path, handler)
    service.publish_state({"mode": "actuated", "plan": 1})
    async with running(service):
        await eventually(lambda: service.metrics.published["state"] >= 1)
        async with consuming(target.broker.url, [f"{ROOT}/status", f"{ROOT}/state"]) as c:
            await eventually(lambda: bool(c.on("/status")) and bool(c.on("/state")))
            assert c.on("/status")[0].retain
            assert c.on("/status")[0].payload["online"] is True
            assert c.on("/state")[0].payload["mode"] == "actuated"
            link = service._link
            assert link is not None
            link.abort()
            await eventually(
                lambda: any(m.payload == {"online": False, "bdseq": 1} for m in c.on("/status")),
                what="will",
            )
            await eventually(
                lambda: any(
                    m.payload.get("online") and m.payload["bdseq"] == 2 for m in c.on("/status")
                ),
                what="re-birth",
            )
    async with consuming(target.broker.url, f"{ROOT}/status") as c:
        await eventually(lambda: bool(c.messages))
        assert c.messages[-1].payload["online"] is False  # clean close, retained


async def test_outage_replay_no_gap(target: Target, tmp_path: Path, handler: FakeHandler) -> None:
    service = target.service(tmp_path, handler)
    n = 0
    async with (
        consuming(
            target.broker.url,
            [f"{ROOT}/events", f"{ROOT}/telemetry"],
            client_id=f"centre-{target.name}",
            persistent=True,
        ) as c,
        running(service),
    ):
        await eventually(lambda: service.connected)
        for _ in range(2):
            for step in range(40):
                service.add_events([(datetime.now(UTC), 82, n)])
                if n % 4 == 0:
                    service.add_telemetry({"n": n})
                n += 1
                if step == 15:
                    target.broker.stop()
                await asyncio.sleep(0.01)
            target.broker.start()
            await eventually(lambda: service.connected, timeout=15, what="reconnect")
        await eventually(lambda: service.metrics.outbox_depth == 0, timeout=15)
        await eventually(
            lambda: {e[2] for m in c.on("/events") for e in m.payload["events"]} >= set(range(n)),
            timeout=15,
            what="every event",
        )
    for stream in ("/events", "/telemetry"):
        seqs = {m.payload["seq"] for m in c.on(stream)}
        assert seqs == set(range(1, max(seqs) + 1)), f"gap in {stream}"
    assert any(m.payload.get("historical") for m in c.on("/events"))


async def test_command_round_trip(target: Target, tmp_path: Path, handler: FakeHandler) -> None:
    service = target.service(tmp_path, handler)
    async with consuming(target.broker.url, f"{ROOT}/cmd/response") as c, running(service):
        await eventually(lambda: service.connected)
        await eventually(lambda: service.metrics.published["status"] >= 1)
        async with aiomqtt.Client("127.0.0.1", target.broker.port) as centre:
            good = build_command("hold", {"phases": [2]}, now=datetime.now(UTC))
            await centre.publish(f"{ROOT}/cmd", json.dumps(good), qos=1)
            await centre.publish(f"{ROOT}/cmd", b"{broken", qos=1)
        await eventually(lambda: len(c.messages) == 2)
    answers = {m.payload["id"]: m.payload for m in c.messages}
    assert answers[good["id"]]["ok"] is True
    assert answers[None]["error"]["code"] == "malformed_json"
    assert [cmd.type for cmd in handler.applied] == ["hold"]
