"""What every stream of the sync service shares: topics, counters, and publishing with ts/seq.

Each stream (:mod:`~edgectl.sync.status`, :mod:`~edgectl.sync.state`,
:mod:`~edgectl.sync.forward`, :mod:`~edgectl.sync.respond`, :mod:`~edgectl.sync.neighbours`)
publishes through one :class:`Publisher`, which stamps ``ts`` and a per-stream ``seq``,
counts what was published or refused (MQTT 5 PUBACK ≥ 0x80) in :class:`SyncMetrics`, and
logs a refusal (``publish_refused``) without raising it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from edgectl.errors import PublishRefused
from edgectl.sync.clock import iso_ms
from edgectl.sync.link import Link
from edgectl.sync.signing import Key, sign_with

__all__ = ["Publisher", "SyncMetrics", "Topics", "dumps", "payload_bytes", "wait_event"]


@dataclass(frozen=True, slots=True)
class Topics:
    prefix: str
    intersection_id: str

    @property
    def root(self) -> str:
        return f"{self.prefix}/{self.intersection_id}"

    @property
    def status(self) -> str:
        return f"{self.root}/status"

    @property
    def state(self) -> str:
        return f"{self.root}/state"

    @property
    def events(self) -> str:
        return f"{self.root}/events"

    @property
    def telemetry(self) -> str:
        return f"{self.root}/telemetry"

    @property
    def cmd(self) -> str:
        return f"{self.root}/cmd"

    @property
    def cmd_response(self) -> str:
        return f"{self.root}/cmd/response"

    @property
    def outflow(self) -> str:
        return f"{self.root}/outflow"

    def outflow_of(self, intersection_id: str) -> str:
        """A neighbour's outflow topic."""
        return f"{self.prefix}/{intersection_id}/outflow"


@dataclass
class SyncMetrics:
    """Counters of the sync layer (a snapshot from :attr:`SyncService.metrics`)."""

    connected: bool = False
    connects: int = 0
    disconnects: int = 0
    published: Counter[str] = field(default_factory=Counter)  # by stream: events, state…
    refused: Counter[str] = field(default_factory=Counter)  # PUBACK >= 0x80, by stream
    dropped: int = 0  # outbox rows dropped by the bounds
    rejected: Counter[str] = field(default_factory=Counter)  # commands refused, by code
    applied: int = 0  # commands executed by the handler
    duplicates: int = 0
    outbox_depth: int = 0
    outbox_recovered_from: str | None = None  # a corrupt database moved aside at start
    bdseq: int = 0
    # outflow messages received, by (neighbour, "accepted" or the refusal code)
    neighbour_messages: Counter[tuple[str, str]] = field(default_factory=Counter)
    outflow_dropped: int = 0  # departures too old to publish, or pushed out while waiting


def payload_bytes(raw: object) -> bytes:
    """An incoming message's payload as bytes, whatever aiomqtt handed over."""
    if isinstance(raw, str):
        return raw.encode()
    if isinstance(raw, bytes | bytearray):
        return bytes(raw)
    return b"" if raw is None else str(raw).encode()


def dumps(obj: Mapping[str, object]) -> bytes:
    """Compact UTF-8 JSON, as every message is sent."""
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False, default=str).encode()


async def wait_event(event: asyncio.Event, timeout: float) -> bool:  # noqa: ASYNC109
    """Wait for ``event`` at most ``timeout`` s; True when it is set."""
    if event.is_set():
        return True
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(max(timeout, 0.0)):
            await event.wait()
    return event.is_set()


class Publisher:
    """Publishes the messages that do not go through the outbox, with ``ts`` and ``seq``.

    ``seq`` is per stream and per process (``status``, ``state``, ``cmd_response``,
    ``outflow``); the outbox keeps the durable ``seq`` of ``events`` and ``telemetry``.
    """

    def __init__(
        self,
        *,
        metrics: SyncMetrics,
        clock: Callable[[], datetime],
        log: Any,  # a bound structlog logger
    ) -> None:
        self.metrics = metrics
        self._clock = clock
        self._log = log
        self._seq: Counter[str] = Counter()

    async def publish(
        self,
        link: Link,
        stream: str,
        topic: str,
        body: Mapping[str, object],
        *,
        qos: int = 1,
        retain: bool = False,
        correlation_data: bytes | None = None,
        key: Key | None = None,
    ) -> bool:
        """Publish ``body`` with ts/seq (and, with a ``key``, ``kid``/``sig`` over all of it:
        answers and outflow are signed); False when the broker refused it. ``ValueError`` for
        a signed body that has no canonical form (a NaN): the caller isolates it."""
        self._seq[stream] += 1
        payload: dict[str, object] = {**body, "ts": iso_ms(self._clock()), "seq": self._seq[stream]}
        if key is not None:
            payload = sign_with(payload, key)
        try:
            await link.publish(
                topic, dumps(payload), qos=qos, retain=retain, correlation_data=correlation_data
            )
        except PublishRefused as exc:
            self.refused(stream, exc)
            return False
        self.metrics.published[stream] += 1
        return True

    def refused(self, stream: str, exc: PublishRefused) -> None:
        """Count and log a publish the broker refused."""
        self.metrics.refused[stream] += 1
        self._log.error(
            "publish_refused", topic=exc.topic, reason_code=exc.reason_code, error=str(exc)
        )
