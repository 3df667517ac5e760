"""A flood of incoming messages (issue 21): the junction handles commands at a bounded rate,
drops the rest unanswered and counted, and still answers the centre once the flood ends."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from pathlib import Path

import aiomqtt
from hypothesis import given
from hypothesis import strategies as st

from edgectl.sync.ratelimit import TokenBucket, command_bucket
from edgectl.sync.signing import build_command
from edgectl.testing.mosquitto import MosquittoBroker
from tests.sync.conftest import IID, PREFIX, FakeHandler, consuming, eventually, make_service
from tests.sync.conftest import running as running_service

ROOT = f"{PREFIX}/{IID}"
KEY = b"rate-key-0123456789abcdef0123456789"


@given(
    rate=st.floats(1.0, 500.0),
    burst=st.floats(1.0, 1000.0),
    gaps=st.lists(st.floats(0.0, 0.5), min_size=1, max_size=400),
)
def test_a_bucket_never_lets_through_more_than_its_burst_and_rate(
    rate: float, burst: float, gaps: list[float]
) -> None:
    bucket = TokenBucket(rate=rate, burst=burst)
    now, taken = 0.0, 0
    for gap in gaps:
        now += gap
        taken += bucket.take(now)
    assert taken <= burst + rate * now + 1e-9


def test_a_bucket_refills_at_its_rate() -> None:
    bucket = command_bucket(20.0)
    assert bucket.burst == 40.0
    assert sum(bucket.take(0.0) for _ in range(100)) == 40  # the burst, then nothing
    assert not bucket.take(0.0)
    assert sum(bucket.take(1.0) for _ in range(100)) == 20  # one second's worth
    assert sum(bucket.take(100.0) for _ in range(100)) == 40  # never more than the burst


async def test_a_command_flood_is_cut_to_the_rate_and_the_centre_still_gets_through(
    broker: MosquittoBroker, tmp_path: Path, handler: FakeHandler
) -> None:
    key_file = tmp_path / "cmd.key"
    key_file.write_bytes(KEY)
    service = make_service(
        broker.url,
        tmp_path / "state",
        handler,
        command_key_file=key_file,
        max_commands_per_s=5.0,
    )
    flood = 600
    async with (
        consuming(broker.url, [f"{ROOT}/cmd/response"]) as centre,
        running_service(service),
    ):
        await eventually(lambda: service.connected, what="connected")
        async with aiomqtt.Client("127.0.0.1", broker.port) as attacker:
            for n in range(flood):
                await attacker.publish(f"{ROOT}/cmd", b'{"id": "x%d"}' % n, qos=0)
        await eventually(
            lambda: service.metrics.rejected["rate_limited"] > 0, what="the flood rate-limited"
        )
        await asyncio.sleep(2.5)  # the bucket refills (5/s, a burst of 10)
        good = build_command(
            "request_state", {}, now=datetime.now(UTC), key=KEY, target=IID, command_id="good"
        )
        async with aiomqtt.Client("127.0.0.1", broker.port) as centre_client:
            await centre_client.publish(f"{ROOT}/cmd", json.dumps(good), qos=1)
        await eventually(
            lambda: any(m.payload.get("id") == "good" for m in centre.on("/cmd/response")),
            what="the centre's command answered after the flood",
        )
        metrics = service.metrics
        assert service.connected and metrics.connects == 1
    answered = [m.payload for m in centre.on("/cmd/response") if m.payload.get("id") != "good"]
    dropped = metrics.rejected["rate_limited"] + metrics.rejected["inbox_full"]
    # everything the broker delivered was either answered or dropped and counted
    assert dropped > flood // 2
    assert len(answered) <= flood - metrics.rejected["rate_limited"]
    assert all(a["ok"] is False for a in answered)
    assert [c.type for c in handler.applied] == ["request_state"]
