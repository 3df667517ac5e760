"""A fleet on a broker cluster (issue 21): three NATS servers with JetStream replicated on all
of them and an MQTT listener each; the junction is given all three URLs. The node it is
connected to is killed (SIGKILL) mid-run: it fails over to another, no ``events`` or
``telemetry`` seq is lost at the centre, and commands are still answered."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import aiomqtt
import pytest

from edgectl.sync.signing import build_command
from edgectl.testing.nats import NatsCluster, nats_available
from tests.sync.conftest import IID, PREFIX, FakeHandler, consuming, eventually, make_service
from tests.sync.conftest import running as running_service

pytestmark = pytest.mark.skipif(not nats_available(), reason="nats-server is not installed")

ROOT = f"{PREFIX}/{IID}"
KEY = b"cluster-key-0123456789abcdef012345"


async def _usable(port: int) -> None:
    """A node's MQTT gateway answers a subscription (JetStream has a leader: ~15 s)."""
    deadline = asyncio.get_running_loop().time() + 60.0
    while True:
        try:
            async with aiomqtt.Client("127.0.0.1", port, timeout=3) as client:
                await client.subscribe("edgectl/ready", qos=1, timeout=3)
                return
        except aiomqtt.MqttError:
            if asyncio.get_running_loop().time() > deadline:
                raise
            await asyncio.sleep(0.5)


@pytest.fixture
def cluster() -> Iterator[NatsCluster]:
    with NatsCluster(3) as c:
        yield c


async def test_the_node_in_use_is_killed_and_nothing_is_lost(
    cluster: NatsCluster, tmp_path: Path, handler: FakeHandler
) -> None:
    for node in cluster.nodes:
        await _usable(node.port)
    key_file = tmp_path / "cmd.key"
    key_file.write_bytes(KEY)
    first, *others = cluster.urls
    service = make_service(
        first,
        tmp_path / "state",
        handler,
        protocol="3.1.1",
        failover_urls=tuple(others),
        command_key_file=key_file,
    )
    centre_url = others[0]
    sent = 0
    async with (
        consuming(
            centre_url,
            [f"{ROOT}/events", f"{ROOT}/telemetry", f"{ROOT}/cmd/response"],
            client_id="centre-cluster",
            persistent=True,
        ) as centre,
        running_service(service),
    ):
        await eventually(lambda: service.connected, timeout=30, what="connected to node 1")
        connects = service.metrics.connects
        assert service.metrics.disconnects == 0
        for step in range(60):
            service.add_events([(datetime.now(UTC), 82, sent)])
            if step % 5 == 0:
                service.add_telemetry({"n": sent})
            sent += 1
            if step == 20:
                cluster.nodes[0].kill()  # the node the junction is on, mid-run
            await asyncio.sleep(0.05)
        await eventually(
            lambda: service.connected and service.metrics.connects > connects,
            timeout=60,
            what="failed over to another node",
        )
        await eventually(lambda: service.metrics.outbox_depth == 0, timeout=60, what="drained")
        await eventually(
            lambda: (
                {e[2] for m in centre.on("/events") for e in m.payload["events"]}
                >= set(range(sent))
            ),
            timeout=30,
            what="every event at the centre",
        )
        # commands still answered, sent through the third node
        cmd = build_command(
            "request_state", {}, now=datetime.now(UTC), key=KEY, target=IID, command_id="c1"
        )
        async with aiomqtt.Client("127.0.0.1", cluster.nodes[2].port) as client:
            await client.publish(f"{ROOT}/cmd", json.dumps(cmd), qos=1)
        await eventually(
            lambda: any(m.payload.get("id") == "c1" for m in centre.on("/cmd/response")),
            timeout=20,
            what="the command answered after the fail-over",
        )
    for stream in ("/events", "/telemetry"):
        seqs = {m.payload["seq"] for m in centre.on(stream)}
        assert seqs == set(range(1, max(seqs) + 1)), f"gap in {stream}"
    answer = next(m.payload for m in centre.on("/cmd/response") if m.payload.get("id") == "c1")
    assert answer["ok"] is True
    assert service.metrics.disconnects >= 1  # the session on the killed node ended
    assert [c.type for c in handler.applied] == ["request_state"]
