"""SyncService against a real mosquitto: birth/death, state, outbox replay, outages."""

from __future__ import annotations

import asyncio
import json
import re
import socket
from datetime import UTC, datetime
from pathlib import Path

import aiomqtt
import pytest

from edgectl.sync.signing import build_command
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

TS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
ROOT = f"{PREFIX}/{IID}"


def state(mode: str = "actuated", phase: int = 2, elapsed: float = 0.0) -> dict[str, object]:
    return {
        "mode": mode,
        "plan": 1,
        "rings": [{"ring": 1, "phase": phase, "interval": "green", "elapsed": elapsed}],
        "alarms": [],
    }


async def test_birth_retained_status_and_state(
    broker: MosquittoBroker, tmp_path: Path, handler: FakeHandler
) -> None:
    service = make_service(broker.url, tmp_path, handler)
    service.publish_state(state())
    async with running(service):
        await eventually(lambda: service.connected and service.metrics.published["state"] >= 1)
        # a consumer arriving later gets the retained birth and state
        async with consuming(broker.url, [f"{ROOT}/status", f"{ROOT}/state"]) as c:
            await eventually(lambda: bool(c.on("/status")) and bool(c.on("/state")))
            status = c.on("/status")[0]
            assert status.retain
            assert status.payload["online"] is True
            assert status.payload["bdseq"] == 1
            assert status.payload["version"] == "0.1.0-test"
            assert status.payload["config_digest"] == "sha256:abc"
            assert TS.match(status.payload["started_at"])
            assert TS.match(status.payload["ts"])
            assert isinstance(status.payload["seq"], int)
            st = c.on("/state")[0]
            assert st.retain
            assert st.payload["mode"] == "actuated"
            assert TS.match(st.payload["ts"])

            # an interval change is published at once; a ticking timer alone is not a change
            n = len(c.on("/state"))
            service.publish_state(state(elapsed=0.1))
            service.publish_state(state(phase=6))
            await eventually(
                lambda: any(m.payload["rings"][0]["phase"] == 6 for m in c.on("/state"))
            )
            assert len(c.on("/state")) == n + 1
            # ... and the state is refreshed at least every state_interval_s (1 s here)
            await eventually(lambda: len(c.on("/state")) >= n + 2, timeout=3.0)


async def test_will_on_abrupt_loss_then_rebirth(
    broker: MosquittoBroker, tmp_path: Path, handler: FakeHandler
) -> None:
    service = make_service(broker.url, tmp_path, handler)
    async with consuming(broker.url, f"{ROOT}/status") as c, running(service):
        await eventually(lambda: any(m.payload.get("online") for m in c.messages))
        link = service._link
        assert link is not None
        link.abort()  # the TCP connection vanishes without DISCONNECT: the broker sends the will
        await eventually(
            lambda: any(m.payload == {"online": False, "bdseq": 1} for m in c.messages),
            what="the will",
        )
        # the service reconnects by itself with a fresh client and a new bdseq
        await eventually(
            lambda: any(m.payload.get("online") and m.payload["bdseq"] == 2 for m in c.messages),
            what="re-birth",
        )
        assert service.metrics.connects == 2
        # commands still arrive: the new client subscribed again
        async with (
            consuming(broker.url, f"{ROOT}/cmd/response") as r,
            aiomqtt.Client("127.0.0.1", broker.port) as centre,
        ):
            cmd = build_command("request_state", {}, now=datetime.now(UTC))
            await centre.publish(f"{ROOT}/cmd", json.dumps(cmd), qos=1)
            await eventually(lambda: any(m.payload["id"] == cmd["id"] for m in r.messages))


async def test_clean_close_publishes_offline(
    broker: MosquittoBroker, tmp_path: Path, handler: FakeHandler
) -> None:
    service = make_service(broker.url, tmp_path, handler)
    async with running(service):
        await eventually(lambda: service.connected)
    async with consuming(broker.url, f"{ROOT}/status") as c:
        await eventually(lambda: bool(c.messages))
        last = c.messages[-1]
        assert last.retain
        assert last.payload["online"] is False
        assert last.payload["bdseq"] == 1
        assert TS.match(last.payload["ts"])


async def test_events_and_telemetry_through_outbox(
    broker: MosquittoBroker, tmp_path: Path, handler: FakeHandler
) -> None:
    service = make_service(broker.url, tmp_path, handler)
    t0 = datetime(2026, 11, 21, 5, 0, 0, 123000, tzinfo=UTC)
    async with (
        consuming(broker.url, [f"{ROOT}/events", f"{ROOT}/telemetry"]) as c,
        running(service),
    ):
        await eventually(lambda: service.connected)
        service.add_events([(t0, 1, 2), (t0, 8, 2)])
        service.add_telemetry({"period_s": 60, "detectors": {"1": {"volume": 12}}})
        await eventually(lambda: bool(c.on("/events")) and bool(c.on("/telemetry")))
        ev = c.on("/events")[0].payload
        assert ev["seq"] == 1
        assert ev["events"] == [
            ["2026-11-21T05:00:00.123Z", 1, 2],
            ["2026-11-21T05:00:00.123Z", 8, 2],
        ]
        assert "historical" not in ev
        assert TS.match(ev["ts"])
        tel = c.on("/telemetry")[0].payload
        assert tel["seq"] == 1
        assert tel["detectors"] == {"1": {"volume": 12}}
        await eventually(lambda: service.metrics.outbox_depth == 0)


async def test_outbox_replayed_historical_and_seq_survives_restart(
    broker: MosquittoBroker, tmp_path: Path, handler: FakeHandler
) -> None:
    t0 = datetime.now(UTC)
    # 1) no broker reachable: events and telemetry are stored
    port = broker.port
    broker.stop()
    offline = make_service(f"mqtt://127.0.0.1:{port}", tmp_path, handler)
    async with running(offline):
        for i in range(5):
            offline.add_events([(t0, 43, i)])
            offline.add_telemetry({"n": i})
            await asyncio.sleep(0.12)  # spans several event batches (events_batch_s = 0.1)
        await eventually(lambda: offline.metrics.outbox_depth >= 6)
    depth = offline.metrics.outbox_depth
    assert offline.metrics.bdseq == 1  # failed connects do not use up bdseq numbers
    # 2) a new service instance on the same state directory, broker back: replay in order
    broker.start()
    async with consuming(broker.url, [f"{ROOT}/events", f"{ROOT}/telemetry"]) as c:
        service = make_service(broker.url, tmp_path, handler)
        async with running(service):
            await eventually(lambda: len(c.on("/events")) + len(c.on("/telemetry")) >= depth)
            service.add_events([(t0, 44, 99)])
            service.add_telemetry({"n": 99})
            await eventually(lambda: any(m.payload.get("n") == 99 for m in c.on("/telemetry")))
            await eventually(
                lambda: any(e[1:] == [44, 99] for m in c.on("/events") for e in m.payload["events"])
            )
    tel = [m.payload for m in c.on("/telemetry")]
    assert [p["seq"] for p in tel] == list(range(1, 7))
    assert [p["n"] for p in tel] == [0, 1, 2, 3, 4, 99]
    assert all(p["historical"] is True for p in tel[:5])
    assert "historical" not in tel[5]
    evs = [m.payload for m in c.on("/events")]
    assert [p["seq"] for p in evs] == list(range(1, len(evs) + 1))
    assert all(p.get("historical") for p in evs[:-1])
    assert [e[2] for p in evs for e in p["events"] if e[1] == 43] == [0, 1, 2, 3, 4]


async def test_broker_outages_lose_nothing(
    persistent_broker: MosquittoBroker, tmp_path: Path, handler: FakeHandler
) -> None:
    broker = persistent_broker
    service = make_service(broker.url, tmp_path, handler)
    sent_events = 0
    sent_tel = 0
    async with (
        consuming(
            broker.url, [f"{ROOT}/events", f"{ROOT}/telemetry"], client_id="centre", persistent=True
        ) as c,
        running(service),
    ):
        await eventually(lambda: service.connected)
        for outage in range(3):
            for phase_of_run in ("up", "down"):
                for _ in range(30):
                    service.add_events([(datetime.now(UTC), 82, sent_events)])
                    sent_events += 1
                    if sent_events % 5 == 0:
                        service.add_telemetry({"i": sent_tel})
                        sent_tel += 1
                    await asyncio.sleep(0.01)  # the control loop's pace, not a wait
                if phase_of_run == "up":
                    broker.stop()
            assert not service.connected or outage >= 0
            broker.start()
            await eventually(lambda: service.connected, what="reconnect")
        await eventually(lambda: service.metrics.outbox_depth == 0, timeout=15)
        await eventually(lambda: len(c.on("/telemetry")) >= sent_tel, timeout=15)
        await eventually(
            lambda: sum(len(m.payload["events"]) for m in c.on("/events")) >= sent_events,
            timeout=15,
        )
    ev_seqs = {m.payload["seq"] for m in c.on("/events")}
    assert ev_seqs == set(range(1, max(ev_seqs) + 1)), "a gap in events seq"
    tel_seqs = {m.payload["seq"] for m in c.on("/telemetry")}
    assert tel_seqs == set(range(1, sent_tel + 1)), "a gap in telemetry seq"
    params = {e[2] for m in c.on("/events") for e in m.payload["events"] if e[1] == 82}
    assert params == set(range(sent_events))
    assert any(m.payload.get("historical") for m in c.on("/events")), "nothing replayed"
    assert service.metrics.connects >= 4


async def _outage_run(
    broker: MosquittoBroker,
    tmp_path: Path,
    handler: FakeHandler,
    *,
    outages: int,
    outage_s: float,
    up_s: float,
) -> dict[str, float]:
    """Feed the service at the control loop's pace while the broker goes away ``outages``
    times for ``outage_s``; check every seq arrives, and that the feeding never blocked."""
    service = make_service(broker.url, tmp_path, handler)
    loop = asyncio.get_running_loop()
    worst_call = 0.0
    worst_tick = 0.0
    n = 0
    tick = 0.1

    async def feed(seconds: float) -> None:
        nonlocal n, worst_call, worst_tick
        end = loop.time() + seconds
        while loop.time() < end:
            t_start = loop.time()
            service.add_events([(datetime.now(UTC), 82, n), (datetime.now(UTC), 81, n)])
            if n % 10 == 0:
                service.add_telemetry({"i": n})
            service.publish_state(state(phase=2 + 4 * ((n // 20) % 2), elapsed=n * 0.1))
            worst_call = max(worst_call, loop.time() - t_start)
            n += 1
            await asyncio.sleep(tick)
            worst_tick = max(worst_tick, loop.time() - t_start - tick)

    async with (
        consuming(
            broker.url,
            [f"{ROOT}/events", f"{ROOT}/telemetry"],
            client_id="centre-long",
            persistent=True,
        ) as c,
        running(service),
    ):
        await eventually(lambda: service.connected)
        for _ in range(outages):
            await feed(up_s)
            broker.stop()
            await feed(outage_s)
            broker.start()
        await feed(up_s)
        await eventually(lambda: service.metrics.outbox_depth == 0, timeout=30)
        await eventually(
            lambda: len({e[2] for m in c.on("/events") for e in m.payload["events"]}) >= n,
            timeout=30,
            what="every event",
        )
    ev_seqs = {m.payload["seq"] for m in c.on("/events")}
    assert ev_seqs == set(range(1, max(ev_seqs) + 1))
    tel_seqs = {m.payload["seq"] for m in c.on("/telemetry")}
    assert tel_seqs == set(range(1, max(tel_seqs) + 1))
    assert any(m.payload.get("historical") for m in c.on("/telemetry"))
    assert worst_call < 0.005, f"a call into the service took {worst_call * 1000:.1f} ms"
    return {"ticks": n, "worst_call_ms": worst_call * 1000, "worst_tick_late_ms": worst_tick * 1000}


async def test_feeding_never_blocks_during_outage(
    persistent_broker: MosquittoBroker, tmp_path: Path, handler: FakeHandler
) -> None:
    result = await _outage_run(
        persistent_broker, tmp_path, handler, outages=2, outage_s=1.0, up_s=0.5
    )
    print("outage run:", result)


@pytest.mark.long
async def test_three_30s_outages_lose_nothing(
    persistent_broker: MosquittoBroker, tmp_path: Path, handler: FakeHandler
) -> None:
    result = await _outage_run(
        persistent_broker, tmp_path, handler, outages=3, outage_s=30.0, up_s=5.0
    )
    print("long outage run:", result)


async def test_close_is_prompt_while_a_connect_hangs(tmp_path: Path, handler: FakeHandler) -> None:
    # a "broker" that accepts TCP but never answers CONNECT
    with socket.socket() as black_hole:
        black_hole.bind(("127.0.0.1", 0))
        black_hole.listen(8)
        port = black_hole.getsockname()[1]
        service = make_service(f"mqtt://127.0.0.1:{port}", tmp_path, handler)
        loop = asyncio.get_running_loop()
        async with asyncio.TaskGroup() as tg:
            task = tg.create_task(service.run())
            await asyncio.sleep(0.2)  # let it start connecting (nothing to poll for: it hangs)
            service.add_events([(datetime.now(UTC), 1, 2)])
            t0 = loop.time()
            await service.close(timeout=1.0)
            assert loop.time() - t0 < 1.5
            assert task.done()
    assert not service.connected
    assert service.metrics.outbox_depth == 1  # kept for the next start
