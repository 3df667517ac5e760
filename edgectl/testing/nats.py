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

from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from edgectl.testing.broker import BrokerProcess, free_port

__all__ = [
    "NATS_SERVER",
    "SKIP_REASON",
    "ClusterNode",
    "NatsBroker",
    "NatsCluster",
    "nats_available",
]

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

    def __init__(
        self,
        *,
        start_timeout: float = 15.0,
        cluster: ClusterNode | None = None,
    ) -> None:
        super().__init__(start_timeout=start_timeout)
        self.client_port = 0  # the NATS protocol port; ``port`` is the MQTT one
        self.cluster = cluster

    def _configure(self, directory: Path) -> None:
        d = directory
        node = self.cluster
        self.port = node.mqtt_port if node else free_port()
        self.client_port = free_port()
        name = node.name if node else f"edgectl-test-{self.client_port}"
        text = (
            f'server_name: "{name}"\n'
            f'listen: "127.0.0.1:{self.client_port}"\n'
            f'jetstream {{\n  store_dir: "{d / "js"}"\n}}\n'
        )
        if node is None:
            text += f'mqtt {{\n  listen: "127.0.0.1:{self.port}"\n}}\n'
        else:
            routes = ", ".join(f'"nats-route://127.0.0.1:{p}"' for p in node.route_ports)
            text += (
                f'cluster {{\n  name: "{node.cluster}"\n'
                f'  listen: "127.0.0.1:{node.route_port}"\n  routes: [{routes}]\n}}\n'
                # sessions, retained messages and QoS 1 queues on every node: a client that
                # fails over to another node finds its session there
                f'mqtt {{\n  listen: "127.0.0.1:{self.port}"\n'
                f"  stream_replicas: {node.replicas}\n"
                f"  consumer_replicas: {node.replicas}\n}}\n"
            )
        (d / self.config_name).write_text(text)


@dataclass(frozen=True)
class ClusterNode:
    """One node's part of a cluster's configuration (ports chosen by :class:`NatsCluster`)."""

    name: str
    cluster: str
    mqtt_port: int
    route_port: int
    route_ports: tuple[int, ...]  # the other nodes' cluster ports
    replicas: int


class NatsCluster:
    """``size`` nats-servers in one cluster, JetStream replicated on all of them, each with
    an MQTT listener: kill the node a client is on and it fails over to another::

        with NatsCluster(3) as cluster:
            urls = cluster.urls          # one mqtt:// URL per node
            cluster.nodes[0].kill()      # SIGKILL, mid-run
    """

    def __init__(self, size: int = 3, *, start_timeout: float = 30.0) -> None:
        mqtt = [free_port() for _ in range(size)]
        routes = [free_port() for _ in range(size)]
        name = f"edgectl-{routes[0]}"
        self.nodes = [
            NatsBroker(
                start_timeout=start_timeout,
                cluster=ClusterNode(
                    name=f"{name}-n{i + 1}",
                    cluster=name,
                    mqtt_port=mqtt[i],
                    route_port=routes[i],
                    route_ports=tuple(p for j, p in enumerate(routes) if j != i),
                    replicas=size,
                ),
            )
            for i in range(size)
        ]

    @property
    def urls(self) -> list[str]:
        return [node.url for node in self.nodes]

    def start(self) -> None:
        for node in self.nodes:
            node.start()

    def close(self) -> None:
        for node in self.nodes:
            node.close()

    def __enter__(self) -> NatsCluster:
        try:
            self.start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
