"""Neighbour coordination in the daemon: departures out, projected arrivals in.

Two daemons in one event loop on a real mosquitto: the upstream junction ``J1`` reads its
detectors from an in-process register bank (``memory://``) and publishes its stop-bar
departures; the downstream junction ``J2`` turns them into projected arrivals that its
strategy receives through ``Controller.expect`` on the control loop.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiomqtt
import pytest

from edgectl.config.loader import load_config, validate_document
from edgectl.config.model import DaemonConfig, Mode
from edgectl.control import strategies
from edgectl.control.controller import Controller
from edgectl.control.strategies import register
from edgectl.control.types import Inputs, Outputs, SetMode
from edgectl.daemon.assemble import build_daemon
from edgectl.daemon.loop import Daemon
from edgectl.daemon.neighbours import outflow_detectors, stop_bar_departures
from edgectl.field.memory import MemoryIO
from edgectl.sync.clock import iso_ms
from edgectl.sync.service import SyncService
from edgectl.testing.consumer import consuming, eventually
from edgectl.testing.mosquitto import MosquittoBroker
from tests.control.test_controller_expect import ArrivalProbe
from tests.daemon.conftest import running

ROOT = Path(__file__).resolve().parents[2]
EIGHT_PHASE = ROOT / "edgectl" / "examples" / "eight_phase.toml"
PRESENCE = 5  # input register of detectors 1..16 (builtin:nema-cabinet)
READBACK = 10  # input register of channel 1's readback


def configure(base: DaemonConfig, **sections: Any) -> DaemonConfig:
    """``base`` with some sections replaced, validated exactly as a file would be."""
    document = base.model_dump(mode="json")
    document.update(sections)
    config, problems = validate_document(document)
    assert config is not None, problems
    return config


@pytest.fixture
def eight() -> DaemonConfig:
    return load_config(EIGHT_PHASE, environ={})


# --- which detectors, which edges --------------------------------------------------------


def test_published_detectors_are_the_list_or_every_stop_bar(eight: DaemonConfig) -> None:
    assert outflow_detectors(eight) == frozenset(), "off by default"
    every = configure(eight, outflow={"enabled": True})
    assert outflow_detectors(every) == frozenset(range(1, 9))  # 9..12 are advance loops
    listed = configure(eight, outflow={"enabled": True, "detectors": [2, 6]})
    assert outflow_detectors(listed) == {2, 6}


def test_a_departure_is_a_falling_edge_of_a_working_detector(eight: DaemonConfig) -> None:
    c = Controller(eight)
    wall = datetime(2026, 11, 21, 6, 0, tzinfo=UTC)
    published = frozenset({1, 2, 6})
    c.step(0.0, Inputs(presence=frozenset({1, 2, 6, 7})))
    out = c.step(0.1, Inputs(presence=frozenset({1})))  # 2, 6 and 7 leave
    assert stop_bar_departures(out, published, wall) == [(wall, 2), (wall, 6)]
    # the card goes silent: presence vanishes with it, and no vehicle left
    out = c.step(0.2, Inputs(presence=frozenset(), failed_detectors=frozenset(range(1, 13))))
    assert any(ev.code == 81 and ev.param == 1 for ev in out.events)
    assert stop_bar_departures(out, published, wall) == []


# --- two daemons on a real broker --------------------------------------------------------


@pytest.fixture
def probe_adaptive(monkeypatch: pytest.MonkeyPatch) -> None:
    """``adaptive`` runs :class:`ArrivalProbe` in this test (the registry is restored)."""
    monkeypatch.setattr(strategies, "_REGISTRY", dict(strategies._REGISTRY))
    monkeypatch.setattr(ArrivalProbe, "instances", [])
    register(Mode.ADAPTIVE, ArrivalProbe)


def junction(
    base: DaemonConfig, iid: str, broker: MosquittoBroker, state_dir: Path, **sections: Any
) -> DaemonConfig:
    mqtt = {
        "url": broker.url,
        "state_interval_s": 1.0,
        "events_batch_s": 0.2,
        "allow_unsigned_commands": True,
    }
    daemon = {"state_dir": str(state_dir), "metrics_listen": ""}
    return configure(base, intersection={"id": iid}, mqtt=mqtt, daemon=daemon, **sections)


def mirror_readback(io: MemoryIO) -> Callable[[Daemon, Outputs], None]:
    """The load switches show what they are told (the register bank has no cabinet)."""

    def hook(_daemon: Daemon, out: Outputs) -> None:
        for ch, state in out.channels:
            io.input_registers[READBACK + ch - 1] = int(state)

    return hook


async def test_departures_upstream_become_arrivals_downstream(
    eight: DaemonConfig, broker: MosquittoBroker, tmp_path: Path, probe_adaptive: None
) -> None:
    bank = f"j1-{uuid.uuid4().hex[:8]}"
    field = {"devices": [{"name": "cabinet", "url": f"memory://{bank}"}]}
    up_config = junction(
        eight,
        "J1",
        broker,
        tmp_path / "j1",
        field=field,
        outflow={"enabled": True, "detectors": [2, 6], "period_s": 0.5},
    )
    down_config = junction(
        eight,
        "J2",
        broker,
        tmp_path / "j2",
        control={**eight.control.model_dump(mode="json"), "mode": "adaptive"},
        neighbours=[
            {"intersection": "J1", "detectors": [2], "phase": 4, "travel_s": 24.0},
            {"intersection": "J1", "detectors": [6], "phase": 8, "travel_s": 3.0},
        ],
    )
    up, up_closers = build_daemon(up_config)
    down, down_closers = build_daemon(down_config)
    io = up.buses.bank(bank)
    up.hooks.append(mirror_readback(io))

    def probe() -> ArrivalProbe:
        strategy = down.controller.strategy
        assert isinstance(strategy, ArrivalProbe)
        return strategy

    async def pulse(detector: int) -> None:
        """A vehicle over a stop bar: on until the daemon saw it, then off."""
        io.input_registers[PRESENCE] |= 1 << (detector - 1)
        await eventually(lambda: on(up, detector), 5.0, f"detector {detector} on")
        io.input_registers[PRESENCE] &= ~(1 << (detector - 1))
        await eventually(lambda: not on(up, detector), 5.0, f"detector {detector} off")

    try:
        async with consuming(broker.url, "citybrain/J1/outflow") as outflow, running(up, down):
            await eventually(lambda: up.ready and link(up).connected, 20.0, "J1 up")
            await eventually(lambda: down.ready and link(down).connected, 20.0, "J2 up")

            await pulse(1)  # a stop bar J1 does not publish
            await pulse(2)  # → J2's phase 4 in 24 s
            await pulse(6)  # → J2's phase 8 in 3 s

            def sent() -> list[dict[str, Any]]:
                return [d for m in outflow.messages for d in m.payload["departures"]]

            await eventually(lambda: len(sent()) == 2, 10.0, "two departures published")
            await eventually(lambda: bool(probe().expected.get(4)), 10.0, "arrival on 4")
            wall, t = datetime.now(UTC), down.clock.t
            assert sorted(d["detector"] for d in sent()) == [2, 6]
            left = datetime.fromisoformat(next(d["at"] for d in sent() if d["detector"] == 2))
            (arrival,) = probe().expected[4]
            # controller_now + (at + travel − wall_now), within a tick or two of scheduling
            assert arrival == pytest.approx(t + 24.0 - (wall - left).total_seconds(), abs=0.5)
            assert all(m.payload["seq"] == i + 1 for i, m in enumerate(outflow.messages))

            # a mode change hands the projections to the new strategy object
            down.directives.append(SetMode(Mode.ACTUATED))
            await eventually(lambda: down.controller.mode is Mode.ACTUATED, 5.0)
            down.directives.append(SetMode(Mode.ADAPTIVE))
            await eventually(lambda: len(ArrivalProbe.instances) == 2, 5.0, "a new strategy")
            assert probe() is ArrivalProbe.instances[1]
            assert probe().expected[4] == pytest.approx((arrival,), abs=0.1)

            published = float(len(outflow.messages))  # J2 heard what the consumer heard
            # rubbish on the neighbour's topic is counted; the junction runs on
            async with aiomqtt.Client("127.0.0.1", broker.port) as rogue:
                await rogue.publish("citybrain/J1/outflow", b"\x00not json", qos=0)
                ts = iso_ms(datetime.now(UTC) + timedelta(days=365))
                future = {"ts": ts, "seq": 1, "departures": []}
                await rogue.publish("citybrain/J1/outflow", json.dumps(future), qos=0)

            def refused(code: str) -> int:
                return int(link(down).metrics.neighbour_messages[("J1", code)])

            await eventually(
                lambda: refused("malformed_json") == 1 and refused("future") == 1,
                5.0,
                "refusals counted",
            )
            ticks = down.ticks
            await eventually(lambda: down.ticks > ticks + 5, 5.0, "J2 keeps ticking")
            assert probe().expected[4] == pytest.approx((arrival,), abs=0.1), "no change"
            # ... and reaches the Prometheus metrics (copied from the sync counters every 1 s)
            series = 'edgectl_neighbour_messages_total{neighbour="J1",result="%s"} %s'
            await eventually(
                lambda: series % ("malformed_json", "1.0") in down.metrics.render().decode(),
                5.0,
                "refusals in the metrics",
            )
            assert series % ("accepted", published) in down.metrics.render().decode()

            # the 3 s link: its arrival passes and J1 says nothing more: no projection left
            assert any(p == 8 and times for i in ArrivalProbe.instances for p, times in i.history)
            await eventually(lambda: probe().expected.get(8) == (), 10.0, "phase 8 aged out")
    finally:
        for close in (*up_closers, *down_closers):
            close()


def link(daemon: Daemon) -> SyncService:
    """The daemon's MQTT link (these daemons all have one)."""
    assert daemon.sync is not None
    return daemon.sync


def on(daemon: Daemon, detector: int) -> bool:
    last = daemon.last
    return last is not None and any(d.id == detector and d.on for d in last.detectors)
