"""The daemon publishes its stop-bar departures: emulator traffic, ``edgectl run``, mosquitto."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from edgectl.testing.consumer import consuming, eventually
from edgectl.testing.hil import DaemonProcess, Emulator
from edgectl.testing.mosquitto import SKIP_REASON, MosquittoBroker, mosquitto_available

from .support import EIGHT_PHASE

pytestmark = [
    pytest.mark.hil,
    pytest.mark.mqtt,
    pytest.mark.skipif(not mosquitto_available(), reason=SKIP_REASON),
]

IID = "hz-0001"  # edgectl/examples/eight_phase.toml
PUBLISHED = [1, 2, 5, 6]  # stop bars of the main street and its left turns


def outflow_config(tmp: Path) -> Path:
    cfg = tmp / "junction.toml"
    cfg.write_text(
        EIGHT_PHASE.read_text(encoding="utf-8")
        + f"\n[outflow]\nenabled = true\ndetectors = {PUBLISHED}\n"
        + '\n[[neighbours]]\nintersection = "hz-0000"\ndetectors = [2]\nphase = 2\n'
        + "travel_s = 20.0\n",
        encoding="utf-8",
    )
    return cfg


async def test_departures_of_the_emulated_traffic_are_published(
    tmp_path: Path, broker: MosquittoBroker
) -> None:
    sim = Emulator(tmp_path, seed=5)
    sim.start()
    daemon = DaemonProcess(tmp_path, outflow_config(tmp_path), sim.url, broker=broker.url)
    try:
        async with consuming(broker.url, f"citybrain/{IID}/outflow") as consumer:
            daemon.start()

            def messages() -> list[dict[str, Any]]:
                return [m.payload for m in consumer.messages]

            await eventually(lambda: len(messages()) >= 3, 90.0, "three outflow messages")
            assert not any(m.retain for m in consumer.messages)
            seqs = [m["seq"] for m in messages()]
            assert seqs == list(range(seqs[0], seqs[0] + len(seqs))), "seq +1 per message"
            departures = [d for m in messages() for d in m["departures"]]
            assert departures and all(m["departures"] for m in messages()), "never empty"
            assert {d["detector"] for d in departures} <= set(PUBLISHED)
            for m in messages():
                ts = datetime.fromisoformat(m["ts"])
                for d in m["departures"]:
                    at = datetime.fromisoformat(d["at"])
                    assert at <= ts and (ts - at).total_seconds() < 5.0, (d, m["ts"])
        assert daemon.stop() == 0
    finally:
        daemon.stop()
        sim.stop()
