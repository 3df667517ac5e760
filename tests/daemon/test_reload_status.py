"""A reload the daemon accepts reaches the centre: the retained ``…/status`` birth is published
again with the new ``config_digest`` (same ``bdseq``); a refused one changes nothing.

The daemon is built as ``edgectl run`` builds it
(:func:`edgectl.daemon.assemble.build_daemon`), reads an in-process register bank
(``memory://``) and talks to a real mosquitto; the reload is requested exactly as the SIGHUP
handler requests it (:meth:`Daemon.request_reload`).
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest

from edgectl.config.loader import load_config, validate_document
from edgectl.config.model import DaemonConfig
from edgectl.daemon.assemble import build_daemon
from edgectl.daemon.loop import Daemon
from edgectl.daemon.reload import config_digest
from edgectl.sync.service import SyncService
from edgectl.testing.consumer import Consumer, consuming, eventually
from edgectl.testing.mosquitto import MosquittoBroker
from tests.daemon.conftest import running

ROOT = Path(__file__).resolve().parents[2]
EIGHT_PHASE = ROOT / "edgectl" / "examples" / "eight_phase.toml"
STATUS = "citybrain/hz-0001/status"


def configure(base: DaemonConfig, **sections: Any) -> DaemonConfig:
    """``base`` with some sections replaced (merged), validated exactly as a file would be."""
    document = base.model_dump(mode="json")
    for name, values in sections.items():
        document[name] = {**document.get(name, {}), **values}
    config, problems = validate_document(document)
    assert config is not None, problems
    return config


@pytest.fixture
def config(tmp_path: Path) -> DaemonConfig:
    bank = f"reload-{uuid.uuid4().hex[:8]}"
    return configure(
        load_config(EIGHT_PHASE, environ={}),
        # the url is the broker's in the tests that connect
        mqtt={
            "url": "mqtt://127.0.0.1:1",
            "backoff_initial": 0.05,
            "backoff_max": 0.3,
            "allow_unsigned_commands": True,
        },
        daemon={"state_dir": str(tmp_path / "state"), "metrics_listen": ""},
        field={"devices": [{"name": "cabinet", "url": f"memory://{bank}"}]},
    )


async def reload(daemon: Daemon, new: DaemonConfig) -> None:
    """What SIGHUP does, and wait until the control loop has dealt with it."""
    daemon.reloader.loader = lambda: new
    daemon.request_reload()
    await eventually(lambda: not daemon._reload_requested, 5.0, "the reload handled")


def link(daemon: Daemon) -> SyncService:
    """The daemon's MQTT link (these daemons all have one)."""
    assert daemon.sync is not None
    return daemon.sync


def births(consumer: Consumer) -> list[dict[str, Any]]:
    return [m.payload for m in consumer.on("/status") if m.payload.get("online") is True]


async def test_accepted_reload_republishes_the_status_with_the_new_digest(
    config: DaemonConfig, broker: MosquittoBroker
) -> None:
    config = configure(config, mqtt={"url": broker.url})
    plan2 = configure(config, control={"plan": 2})
    refused = configure(plan2, field={"detector_loss_s": 2.0})  # needs a restart
    coordinated = configure(plan2, control={"mode": "coordinated"})
    digests = [config_digest(c) for c in (config, plan2, refused, coordinated)]
    assert len(set(digests)) == 4, "the test needs four different files"
    daemon, closers = build_daemon(config)
    try:
        async with running(daemon):
            async with consuming(broker.url, STATUS) as centre:
                await eventually(lambda: bool(births(centre)), 20.0, "the birth")
                (birth,) = births(centre)
                assert birth["config_digest"] == config_digest(config)

                await reload(daemon, refused)
                assert daemon.config is config
                await reload(daemon, plan2)
                assert daemon.config is plan2
                await eventually(lambda: len(births(centre)) == 2, 5.0, "the birth again")
                again = births(centre)[1]
                assert again["config_digest"] == config_digest(plan2)
                assert again["bdseq"] == birth["bdseq"], "the same connection"
                assert again["seq"] > birth["seq"] and again["ts"] >= birth["ts"]
                assert {k: again[k] for k in ("version", "started_at")} == {
                    k: birth[k] for k in ("version", "started_at")
                }
                # nothing for the refused file: only the two births went out
                assert [m.payload["config_digest"] for m in centre.on("/status")] == [
                    config_digest(config),
                    config_digest(plan2),
                ]

            # it is the retained message: a centre subscribing now reads the new digest
            async with consuming(broker.url, STATUS) as late:
                await eventually(lambda: bool(late.messages), 5.0, "the retained status")
                (retained,) = late.messages
                assert retained.retain and retained.payload == again

            # accepted while the broker is down: the next connection's birth carries it
            broker.stop()
            await eventually(lambda: not link(daemon).connected, 10.0, "the link down")
            await reload(daemon, coordinated)
            assert daemon.config is coordinated
            broker.start()
            async with consuming(broker.url, STATUS) as centre:
                await eventually(lambda: bool(births(centre)), 20.0, "the birth after the outage")
                after = births(centre)[0]
                assert after["config_digest"] == config_digest(coordinated)
                assert after["bdseq"] > birth["bdseq"], "a new connection"
    finally:
        for close in closers:
            close()


async def test_refused_reload_keeps_the_digest(config: DaemonConfig) -> None:
    """No broker needed: what the sync service will publish, before and after each reload."""
    daemon, closers = build_daemon(config)
    try:
        assert link(daemon).config_digest == config_digest(config)
        refused = configure(config, field={"detector_loss_s": 2.0})
        assert daemon.apply_reload(refused) is False
        assert link(daemon).config_digest == config_digest(config)
        plan2 = configure(config, control={"plan": 2})
        assert daemon.apply_reload(plan2) is True
        assert link(daemon).config_digest == config_digest(plan2)
    finally:
        await link(daemon).close()
        for close in closers:
            close()
