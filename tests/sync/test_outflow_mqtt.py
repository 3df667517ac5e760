"""Outflow over a real mosquitto: what a junction publishes, and what it takes from neighbours."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiomqtt
from structlog.testing import capture_logs

from edgectl.config.model import Neighbour, Outflow
from edgectl.errors import SyncError
from edgectl.sync.clock import iso_ms
from edgectl.sync.outflow import MAX_OUTFLOW_BYTES
from edgectl.sync.service import SyncService
from edgectl.sync.signing import build_command
from edgectl.testing.mosquitto import MosquittoBroker
from tests.sync.conftest import (
    IID,
    PREFIX,
    FakeHandler,
    consuming,
    eventually,
    running,
    settings,
)

ROOT = f"{PREFIX}/{IID}"
J1 = Neighbour(intersection="J1", detectors=(2, 6), phase=4, travel_s=24.0)


def make(
    url: str,
    state_dir: Path,
    handler: FakeHandler,
    *,
    neighbours: tuple[Neighbour, ...] = (),
    outflow: Outflow | None = None,
) -> SyncService:
    return SyncService(
        settings(url),
        intersection_id=IID,
        state_dir=state_dir,
        handler=handler,
        version="0.1.0-test",
        config_digest="sha256:abc",
        neighbours=neighbours,
        outflow=outflow,
    )


@dataclass
class Raw:
    """A subscriber that keeps QoS and the retain flag (the consumer keeps only JSON)."""

    messages: list[aiomqtt.Message] = field(default_factory=list)

    def payloads(self) -> list[dict[str, object]]:
        return [json.loads(bytes(m.payload)) for m in self.messages]


@contextlib.asynccontextmanager
async def subscribed(broker: MosquittoBroker, topic: str) -> AsyncIterator[Raw]:
    raw = Raw()
    async with aiomqtt.Client("127.0.0.1", broker.port) as client:
        await client.subscribe(topic, qos=1)

        async def collect() -> None:
            async for message in client.messages:
                raw.messages.append(message)

        async with asyncio.TaskGroup() as tg:
            task = tg.create_task(collect(), name="test[subscriber]")
            try:
                yield raw
            finally:
                task.cancel()


async def test_departures_are_published_qos0_not_retained_and_only_when_new(
    broker: MosquittoBroker, tmp_path: Path, handler: FakeHandler
) -> None:
    service = make(broker.url, tmp_path, handler, outflow=Outflow(enabled=True, period_s=0.2))
    t0 = datetime.now(UTC)
    async with subscribed(broker, f"{ROOT}/outflow") as sub, running(service):
        await eventually(lambda: service.connected)
        service.add_departures([(t0, 2), (t0 + timedelta(milliseconds=300), 6)])
        await eventually(lambda: len(sub.messages) == 1, 5.0, "the first outflow message")
        first = sub.messages[0]
        assert first.qos == 0 and not first.retain
        body = sub.payloads()[0]
        assert body["seq"] == 1 and isinstance(body["ts"], str)
        assert body["departures"] == [
            {"detector": 2, "at": iso_ms(t0)},
            {"detector": 6, "at": iso_ms(t0 + timedelta(milliseconds=300))},
        ]
        service.add_departures([(datetime.now(UTC), 2)])
        await eventually(lambda: len(sub.messages) == 2, 5.0, "the second outflow message")
        assert sub.payloads()[1]["seq"] == 2
        assert len(sub.payloads()[1]["departures"]) == 1  # type: ignore[arg-type]
        # nothing new: nothing published, while the state goes out every second (> 5 periods)
        service.publish_state({"mode": "actuated"})
        states = service.metrics.published["state"]
        await eventually(lambda: service.metrics.published["state"] >= states + 2, 5.0)
        assert len(sub.messages) == 2
        assert service.metrics.published["outflow"] == 2
        assert service.metrics.outbox_depth == 0, "outflow never goes through the outbox"


async def test_nothing_is_published_when_the_feature_is_off(
    broker: MosquittoBroker, tmp_path: Path, handler: FakeHandler
) -> None:
    service = make(broker.url, tmp_path, handler, outflow=Outflow(enabled=False))
    async with subscribed(broker, f"{ROOT}/outflow") as sub, running(service):
        await eventually(lambda: service.connected)
        service.add_departures([(datetime.now(UTC), 2)])
        service.publish_state({"mode": "actuated"})
        await eventually(lambda: service.metrics.published["state"] >= 2, 5.0)
        assert sub.messages == [] and service.metrics.published["outflow"] == 0


async def test_neighbour_outflow_is_received_and_bad_input_only_counted(
    broker: MosquittoBroker, tmp_path: Path, handler: FakeHandler
) -> None:
    service = make(broker.url, tmp_path, handler, neighbours=(J1,))

    async def publish(topic: str, payload: bytes) -> None:
        async with aiomqtt.Client("127.0.0.1", broker.port) as upstream:
            await upstream.publish(topic, payload, qos=0)

    def good(detector: int, ago_s: float, seq: int) -> bytes:
        now = datetime.now(UTC)
        dep = {"detector": detector, "at": iso_ms(now - timedelta(seconds=ago_s))}
        return json.dumps({"ts": iso_ms(now), "seq": seq, "departures": [dep]}).encode()

    topic = f"{PREFIX}/J1/outflow"
    async with consuming(broker.url, f"{ROOT}/cmd/response") as c, running(service):
        await eventually(lambda: service.connected)
        inbox = service.inbox
        await publish(topic, good(2, 1.0, 1))
        await eventually(lambda: inbox.pending() == {"J1": 1}, 5.0, "a departure from J1")

        stale = json.dumps({"ts": "2020-01-01T00:00:00.000Z", "seq": 2, "departures": []})
        # over our outflow limit, under the MaximumPacketSize the broker enforces for us
        oversized = b"{" + b" " * (MAX_OUTFLOW_BYTES + 100) + b"}"
        for bad in (b"\x00garbage", b"[]", stale.encode(), oversized):
            await publish(topic, bad)
        await publish(f"{PREFIX}/J9/outflow", good(2, 1.0, 1))  # not a neighbour of ours
        await publish(topic, good(6, 0.5, 3))
        await eventually(lambda: inbox.pending() == {"J1": 2}, 5.0, "the next good one")

        expected = {"accepted": 2, "malformed_json": 1, "invalid_schema": 1, "stale": 1}
        expected["too_large"] = 1
        counted = service.metrics.neighbour_messages
        assert {r: n for (i, r), n in counted.items() if i == "J1"} == expected
        assert {i for i, _ in counted} == {"J1"}
        # the link is alive and still serves commands
        cmd = build_command("request_state", {}, now=datetime.now(UTC))
        async with aiomqtt.Client("127.0.0.1", broker.port) as centre:
            await centre.publish(f"{ROOT}/cmd", json.dumps(cmd), qos=1)
        await eventually(lambda: any(m.payload["id"] == cmd["id"] for m in c.messages), 5.0)

        # the subscription is made again at every connect
        broker.stop()
        await eventually(lambda: not service.connected, 5.0)
        broker.start()
        await eventually(lambda: service.connected, 10.0)
        await publish(topic, good(2, 0.2, 4))
        await eventually(lambda: counted_accepted(service) == 3, 5.0, "outflow after reconnect")


def counted_accepted(service: SyncService) -> int:
    return service.metrics.neighbour_messages[("J1", "accepted")]


class RefusingLink:
    """Subscribes like a broker whose ACL refuses one topic (SUBACK 0x87): some brokers do
    (mosquitto grants the subscription and filters the messages instead)."""

    def __init__(self, refused: str) -> None:
        self.refused = refused
        self.subscribed: list[str] = []

    async def subscribe(self, topic: str, qos: int = 1) -> None:
        if topic == self.refused:
            raise SyncError(f"subscribe to {topic} refused (0x87)")
        self.subscribed.append(topic)


async def test_a_refused_neighbour_subscription_costs_that_neighbour_only(
    tmp_path: Path, handler: FakeHandler
) -> None:
    j2 = Neighbour(intersection="J2", detectors=(1,), phase=8, travel_s=12.0)
    service = make("mqtt://127.0.0.1:1", tmp_path, handler, neighbours=(J1, j2))
    link = RefusingLink(f"{PREFIX}/J1/outflow")
    with capture_logs() as logs:
        await service._outflow.subscribe(link)  # type: ignore[arg-type]
    assert link.subscribed == [f"{PREFIX}/J2/outflow"]
    assert [(e["event"], e["neighbour"]) for e in logs] == [("neighbour_subscribe_failed", "J1")]
    await service.close()
