"""The daemon and the centre: a real mosquitto, the daemon and the emulator as processes.

What the centre sees is checked at a consumer; what drivers saw is checked in the emulator's
record. Commands are signed with the configured key, as in the field.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiomqtt
import pytest

from edgectl.sync.signing import build_command
from edgectl.testing.consumer import Consumer, consuming, eventually
from edgectl.testing.hil import DaemonProcess, Emulator, read_record
from edgectl.testing.mosquitto import SKIP_REASON, MosquittoBroker, mosquitto_available

from .support import EIGHT_PHASE, record_findings

pytestmark = [
    pytest.mark.hil,
    pytest.mark.mqtt,
    pytest.mark.skipif(not mosquitto_available(), reason=SKIP_REASON),
]

IID = "hz-0001"
KEY = b"a-test-key-of-the-centre-32-bytes-long"


def keyed_config(tmp: Path) -> Path:
    key = tmp / "command.key"
    key.write_bytes(KEY + b"\n")
    os.chmod(key, 0o600)
    cfg = tmp / "junction.toml"
    cfg.write_text(
        EIGHT_PHASE.read_text(encoding="utf-8")
        + f'\n[mqtt]\ncommand_key_file = "{key}"\nstate_interval_s = 2.0\n'
        + "telemetry_period_s = 5.0\n",
        encoding="utf-8",
    )
    return cfg


class Centre:
    """Sends signed commands and reads the answers."""

    def __init__(self, broker: MosquittoBroker, consumer: Consumer) -> None:
        self.broker = broker
        self.consumer = consumer

    async def send(self, ctype: str, key: bytes | None = KEY, **params: Any) -> dict[str, Any]:
        return await self.send_obj(
            build_command(ctype, params, now=datetime.now(UTC), key=key, target=IID)
        )

    async def send_obj(self, cmd: dict[str, Any], raw: bytes | None = None) -> dict[str, Any]:
        import json

        host, port = self.broker.url.removeprefix("mqtt://").split(":")
        async with aiomqtt.Client(host, int(port)) as client:
            await client.publish(
                f"citybrain/{IID}/cmd", raw if raw is not None else json.dumps(cmd), qos=1
            )
        cid = cmd.get("id")

        def answered() -> bool:
            return any(
                m.payload.get("id") == cid
                for m in self.consumer.on("/cmd/response")
                if isinstance(m.payload, dict)
            )

        await eventually(answered, 10.0, f"answer to {cmd.get('type')}")
        return next(
            m.payload
            for m in self.consumer.on("/cmd/response")
            if isinstance(m.payload, dict) and m.payload.get("id") == cid
        )

    def state(self) -> dict[str, Any]:
        states = [m.payload for m in self.consumer.on(f"{IID}/state")]
        return states[-1] if states else {}


async def wait_state(centre: Centre, key: str, value: Any, within: float) -> None:
    await eventually(lambda: centre.state().get(key) == value, within, f"state {key}={value}")


def green_spans(rows: list[tuple[float, int, str]], channel: int) -> list[tuple[float, float]]:
    spans: list[tuple[float, float]] = []
    start: float | None = None
    for t, ch, st in rows:
        if ch != channel:
            continue
        if st == "G" and start is None:
            start = t
        elif st != "G" and start is not None:
            spans.append((start, t))
            start = None
    if start is not None:
        spans.append((start, float("inf")))
    return spans


@pytest.fixture
async def session(
    tmp_path: Path, persistent_broker: MosquittoBroker
) -> AsyncIterator[tuple[Emulator, DaemonProcess, Centre]]:
    demand = tmp_path / "demand.csv"
    demand.write_text("time_s,multiplier\n0,0\n", encoding="utf-8")  # no traffic: calls are ours
    sim = Emulator(tmp_path, seed=11, extra=["--demand", str(demand)])
    sim.start()
    daemon = DaemonProcess(tmp_path, keyed_config(tmp_path), sim.url, broker=persistent_broker.url)
    try:
        async with consuming(persistent_broker.url, "citybrain/#") as consumer:
            daemon.start()
            centre = Centre(persistent_broker, consumer)
            await wait_state(centre, "state", "normal", 30.0)
            yield sim, daemon, centre
    finally:
        daemon.stop()
        sim.stop()


async def test_every_command_type_is_applied_and_visible(
    session: tuple[Emulator, DaemonProcess, Centre], tmp_path: Path
) -> None:
    sim, daemon, centre = session
    assert daemon.process is not None

    def rows() -> list[tuple[float, int, str]]:
        return read_record(sim.record_path)

    sim_now = sim.now

    # place_call: a left turn nobody drove up to gets served
    assert (await centre.send("place_call", phases=[3]))["ok"]
    await eventually(lambda: bool(green_spans(rows(), 3)), 40.0, "channel 3 green after a call")

    # hold: phase 4 (with its dual entry 8) stays green well past its 10 s minimum
    assert (await centre.send("hold", phases=[4, 8], duration_s=60.0))["ok"]
    assert (await centre.send("place_call", phases=[4]))["ok"]
    await eventually(lambda: bool(green_spans(rows(), 4)), 40.0, "channel 4 green")
    t_green = green_spans(rows(), 4)[0][0]
    await eventually(lambda: sim_now() > t_green + 16.0, 30.0, "16 s into the held green")
    assert green_spans(rows(), 4)[0][1] == float("inf"), "held phase 4 terminated early"

    # force_off: the held green ends now (yellow within a second or two)
    t_cmd = sim_now()
    assert (await centre.send("force_off", phases=[4, 8]))["ok"]
    await eventually(lambda: green_spans(rows(), 4)[0][1] != float("inf"), 10.0, "force-off")
    assert green_spans(rows(), 4)[0][1] - t_cmd < 3.0

    # omit: a called phase is not served while omitted, and is once the omit is cleared
    assert (await centre.send("omit", phases=[7], duration_s=60.0))["ok"]
    assert (await centre.send("place_call", phases=[7]))["ok"]
    t_omit = sim_now()
    await eventually(lambda: sim_now() > t_omit + 25.0, 40.0, "25 s of omit")
    assert not green_spans(rows(), 7), "omitted phase 7 was served"
    assert (await centre.send("omit", phases=[]))["ok"]
    await eventually(lambda: bool(green_spans(rows(), 7)), 60.0, "phase 7 served after the omit")

    # preempt: the dwell phases 2 and 6 get green and stay there while the call lasts
    assert (await centre.send("preempt", input=1, active=True, phases=[2, 6]))["ok"]
    await eventually(
        lambda: bool(green_spans(rows(), 2)) and green_spans(rows(), 2)[-1][1] == float("inf"),
        30.0,
        "preempt dwell on 2",
    )
    assert (await centre.send("preempt", input=1, active=False))["ok"]

    # set_plan: the coordinated plan is accepted (applied at the next barrier: event 131)
    assert (await centre.send("set_plan", plan=2))["ok"]
    await eventually(
        lambda: any(
            any(code == 131 and param == 2 for _, code, param in m.payload.get("events", []))
            for m in centre.consumer.on(f"{IID}/events")
            if isinstance(m.payload, dict)
        ),
        90.0,
        "event 131 (plan change) on …/events",
    )

    # request_state: the answer carries the state
    answer = await centre.send("request_state")
    assert answer["ok"] and answer["result"]["mode"] == "actuated"

    # set_mode flash: the junction goes to flash through its clearances, then comes back
    assert (await centre.send("set_mode", mode="flash"))["ok"]
    await eventually(
        lambda: (
            {st for t, ch, st in rows() if ch in (1, 2, 3, 4, 5, 6, 7, 8) and t > sim_now() - 0.5}
            <= {"FR"}
            and any(st == "FR" for _, _, st in rows()[-12:])
        ),
        40.0,
        "flash",
    )
    t_flash = sim_now()
    assert (await centre.send("set_mode", mode="actuated"))["ok"]
    await eventually(
        lambda: any(st == "G" and t > t_flash for t, _, st in rows()), 40.0, "green after flash"
    )

    # refused: unsafe plan, unknown phase, unsigned, bad signature, expired — nothing changes
    bad_plan = {
        "id": 9,
        "timing": {
            str(p): {"min_green": 5, "max1": 20, "yellow": 2.0, "red_clear": 1.0}
            for p in range(1, 9)
        },
    }
    refused = {
        "unsafe": await centre.send("set_plan", plan=bad_plan),
        "not_allowed": await centre.send("place_call", phases=[13]),
        "unsigned": await centre.send("hold", key=None, phases=[2]),
        "bad_signature": await centre.send("hold", key=b"not-the-key", phases=[2]),
    }
    expired = build_command(
        "hold",
        {"phases": [2]},
        now=datetime.now(UTC) - timedelta(hours=1),
        key=KEY,
        expires_in_s=60.0,
        target=IID,
    )
    refused["expired"] = await centre.send_obj(expired)
    for code, answer in refused.items():
        assert answer["ok"] is False, (code, answer)
        assert answer["error"]["code"] in (code, "invalid_schema"), (code, answer)

    # a duplicate id is answered again and not executed twice
    cmd = build_command("place_call", {"phases": [1]}, now=datetime.now(UTC), key=KEY, target=IID)
    first = await centre.send_obj(cmd)
    await centre.send_obj(cmd)

    def answers() -> list[dict[str, Any]]:
        return [
            m.payload
            for m in centre.consumer.on("/cmd/response")
            if isinstance(m.payload, dict) and m.payload.get("id") == cmd["id"]
        ]

    await eventually(lambda: len(answers()) >= 2, 10.0, "the second answer")
    assert first["ok"]
    assert answers()[1]["ok"] and answers()[1].get("duplicate") is True

    # through all of it: nothing unsafe reached the load switches, the MMU never tripped
    daemon.stop()
    summary = sim.stop()
    assert summary["mmu"]["faults"] == [], summary["mmu"]
    from edgectl.config.loader import load_config

    findings = record_findings(load_config(EIGHT_PHASE), sim.record_path, summary["conflicts"])
    assert findings == [], "\n".join(map(str, findings[:10]))


async def test_birth_will_restart_and_clean_stop(
    tmp_path: Path, persistent_broker: MosquittoBroker
) -> None:
    sim = Emulator(tmp_path, seed=2)
    sim.start()
    daemon = DaemonProcess(tmp_path, keyed_config(tmp_path), sim.url, broker=persistent_broker.url)
    try:
        async with consuming(persistent_broker.url, "citybrain/#") as consumer:

            def status() -> list[dict[str, Any]]:
                return [m.payload for m in consumer.on(f"{IID}/status")]

            daemon.start()
            await eventually(lambda: any(s.get("online") for s in status()), 20.0, "birth")
            birth = next(s for s in status() if s.get("online"))
            await eventually(lambda: bool(consumer.on(f"{IID}/events")), 20.0, "events")

            # a late subscriber gets the retained status and state at once
            async with consuming(persistent_broker.url, f"citybrain/{IID}/+") as late:
                await eventually(
                    lambda: (
                        {m.topic.rsplit("/", 1)[-1] for m in late.messages if m.retain}
                        >= {"status", "state"}
                    ),
                    10.0,
                    "retained status and state",
                )

            # kill -9: the broker publishes the will with the same bdseq
            assert daemon.process is not None
            daemon.process.kill()
            await eventually(
                lambda: any(s == {"online": False, "bdseq": birth["bdseq"]} for s in status()),
                15.0,
                "the will",
            )
            seqs_before = {m.payload["seq"] for m in consumer.on(f"{IID}/events")}

            # restarted with the same state directory: a new bdseq, events seq continues
            daemon.start()
            await eventually(
                lambda: any(s.get("online") and s["bdseq"] == birth["bdseq"] + 1 for s in status()),
                20.0,
                "re-birth",
            )
            await eventually(
                lambda: (
                    max(m.payload["seq"] for m in consumer.on(f"{IID}/events"))
                    > max(seqs_before) + 2
                ),
                30.0,
                "events after restart",
            )
            # SIGTERM: the daemon itself says goodbye
            daemon.process.send(signal.SIGTERM)
            assert daemon.process.wait(45) == 0
            await eventually(
                lambda: status()[-1].get("online") is False and "ts" in status()[-1],
                10.0,
                "clean online:false",
            )
            seqs = sorted({m.payload["seq"] for m in consumer.on(f"{IID}/events")})
            assert seqs == list(range(1, seqs[-1] + 1)), "events seq has a gap"
    finally:
        daemon.stop()
        sim.stop()


async def test_broker_outage_loses_nothing(
    tmp_path: Path, persistent_broker: MosquittoBroker
) -> None:
    sim = Emulator(tmp_path, seed=4)
    sim.start()
    daemon = DaemonProcess(tmp_path, keyed_config(tmp_path), sim.url, broker=persistent_broker.url)
    consumer_id = "centre-outage-test"
    try:
        async with consuming(
            persistent_broker.url, "citybrain/#", client_id=consumer_id, persistent=True
        ) as consumer:
            daemon.start()
            await eventually(lambda: len(consumer.on(f"{IID}/events")) >= 3, 30.0, "events")
            await asyncio.to_thread(persistent_broker.stop)
            t_down = time.monotonic()
            await asyncio.sleep(30.0)
            await asyncio.to_thread(persistent_broker.start)
            outage = (t_down, time.monotonic())
            await eventually(
                lambda: any(m.payload.get("historical") for m in consumer.on(f"{IID}/events")),
                40.0,
                "replayed events",
            )
            await asyncio.sleep(8.0)  # a few live batches and telemetry after the replay
            events = [m.payload for m in consumer.on(f"{IID}/events")]
            seqs = sorted({e["seq"] for e in events})
            assert seqs == list(range(1, seqs[-1] + 1)), f"events seq gap: {seqs}"
            assert any(e.get("historical") for e in events)
            telemetry = sorted({m.payload["seq"] for m in consumer.on(f"{IID}/telemetry")})
            assert telemetry and telemetry == list(range(1, telemetry[-1] + 1)), telemetry
    finally:
        daemon.stop()
        summary = sim.stop()
    # control went on without a hitch during the outage: service, no flash, no MMU fault
    rows = read_record(sim.record_path)
    start = rows[0][0]
    greens_in_outage = [t for t, _, st in rows if st == "G" and 15.0 < t - start < 15.0 + 30.0]
    assert greens_in_outage, "no green while the broker was down"
    assert summary["mmu"]["faults"] == []
    assert outage[1] - outage[0] >= 30.0
