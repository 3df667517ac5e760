"""The centre's side of MQTT in tests: a consumer that collects JSON messages.

A product helper (like ``trio.testing``): the sync tests, the daemon's end-to-end tests and
the soak all watch a junction through it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import aiomqtt

PREFIX = "citybrain"


class EventuallyTimeout(AssertionError):
    """A condition did not become true in time."""


async def eventually(
    predicate: Callable[[], bool],
    timeout: float = 10.0,  # noqa: ASYNC109 - a polling helper: the timeout is its point
    what: str = "condition",
) -> None:
    """Poll ``predicate`` until true; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise EventuallyTimeout(f"timed out after {timeout} s waiting for {what}")
        await asyncio.sleep(0.01)


@dataclass
class Received:
    topic: str
    payload: Any
    retain: bool
    properties: Any = None


class Consumer:
    """The centre's side in tests: subscribes and collects JSON messages."""

    def __init__(
        self,
        url: str,
        topics: str | list[str] = f"{PREFIX}/#",
        *,
        client_id: str | None = None,
        persistent: bool = False,
        protocol: aiomqtt.ProtocolVersion = aiomqtt.ProtocolVersion.V311,
    ) -> None:
        from edgectl.sync.link import parse_broker_url

        addr = parse_broker_url(url)
        self._host, self._port = addr.host, addr.port
        self._topics = [topics] if isinstance(topics, str) else topics
        self._client_id = client_id
        self._persistent = persistent
        self._protocol = protocol
        self.messages: list[Received] = []
        self.connected = asyncio.Event()

    def on(self, topic_suffix: str) -> list[Received]:
        return [m for m in self.messages if m.topic.endswith(topic_suffix)]

    async def run(self) -> None:
        """Collect until cancelled; reconnect (persistent session) when the broker restarts."""
        while True:
            try:
                v5 = self._protocol is aiomqtt.ProtocolVersion.V5
                async with aiomqtt.Client(
                    self._host,
                    self._port,
                    identifier=self._client_id,
                    clean_session=None if v5 else not self._persistent,
                    protocol=self._protocol,
                ) as client:
                    for t in self._topics:
                        await client.subscribe(t, qos=1)
                    self.connected.set()
                    async for msg in client.messages:
                        raw = msg.payload
                        text = raw.decode() if isinstance(raw, bytes | bytearray) else str(raw)
                        try:
                            payload = json.loads(text) if text else None
                        except ValueError:
                            payload = text
                        self.messages.append(
                            Received(str(msg.topic), payload, bool(msg.retain), msg.properties)
                        )
            except aiomqtt.MqttError:
                self.connected.clear()
                await asyncio.sleep(0.05)


@contextlib.asynccontextmanager
async def consuming(
    url: str, topics: str | list[str] = f"{PREFIX}/#", **kwargs: Any
) -> AsyncIterator[Consumer]:
    consumer = Consumer(url, topics, **kwargs)
    async with asyncio.TaskGroup() as tg:
        task = tg.create_task(consumer.run(), name="test[consumer]")
        try:
            async with asyncio.timeout(10):
                await consumer.connected.wait()
            yield consumer
        finally:
            task.cancel()
