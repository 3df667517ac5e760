"""A real NATS server with its MQTT gateway, for tests: Debian's ``/usr/sbin/nats-server``.

NATS speaks MQTT 3.1.1 only (QoS 0/1, retained messages and wills stored in JetStream), so it
proves the sync layer runs on a clustered engine and not only on mosquitto::

    with NatsBroker() as nats:
        settings = MqttSettings(url=nats.url, protocol="3.1.1")

A :class:`edgectl.testing.broker.BrokerProcess` like
:class:`edgectl.testing.mosquitto.MosquittoBroker`: a generated config (``server_name``,
``jetstream``, ``mqtt { listen }``) in a private temporary directory, free loopback ports,
``stop()``/``start()`` on the same ports (JetStream keeps retained messages and sessions across
a restart), kill by PID at exit.
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from edgectl.testing.broker import BrokerProcess, free_port

__all__ = ["NATS_SERVER", "SKIP_REASON", "NatsBroker", "nats_available"]

NATS_SERVER = Path("/usr/sbin/nats-server")
SKIP_REASON = "nats-server is not installed (/usr/sbin/nats-server); run the project's setup script"


def nats_available() -> bool:
    return NatsBroker.available()


class NatsBroker(BrokerProcess):
    """One nats-server with JetStream and an MQTT listener on loopback."""

    program: ClassVar[Path] = NATS_SERVER
    skip_reason: ClassVar[str] = SKIP_REASON
    config_name: ClassVar[str] = "nats.conf"
    log_name: ClassVar[str] = "nats.log"
    poll_s: ClassVar[float] = 0.02
    stop_timeout: ClassVar[float] = 10.0

    def __init__(self, *, start_timeout: float = 15.0) -> None:
        super().__init__(start_timeout=start_timeout)
        self.client_port = 0  # the NATS protocol port; ``port`` is the MQTT one

    def _configure(self, directory: Path) -> None:
        d = directory
        self.port = free_port()
        self.client_port = free_port()
        (d / self.config_name).write_text(
            f'server_name: "edgectl-test-{self.client_port}"\n'
            f'listen: "127.0.0.1:{self.client_port}"\n'
            f'jetstream {{\n  store_dir: "{d / "js"}"\n}}\n'
            f'mqtt {{\n  listen: "127.0.0.1:{self.port}"\n}}\n'
        )
