"""The outflow stream: this junction's departures out, its neighbours' departures in.

Only with ``[outflow] enabled``: the departures given to :meth:`OutflowStream.add` since the
last message go out on ``…/outflow`` (QoS 0, not retained, never through the outbox) every
``period_s`` while there are any. ``{prefix}/{neighbour}/outflow`` of every configured
``[[neighbours]]`` junction is subscribed (QoS 0) at every connect; what arrives goes to the
:class:`~edgectl.sync.outflow.NeighbourInbox` the control loop reads. The message formats and
checks are :mod:`edgectl.sync.outflow`'s. With ``keys`` (``[mqtt] outflow_key_file``) what goes
out is signed with the first key and what comes in must be signed by one of them;
:meth:`OutflowStream.set_keys` replaces them (a reload re-read the file).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from edgectl.config.model import Neighbour, Outflow
from edgectl.errors import SyncError
from edgectl.sync.link import Link
from edgectl.sync.outflow import NeighbourInbox, OutflowBuffer, outflow_body
from edgectl.sync.publish import Publisher, Topics, payload_bytes, wait_event
from edgectl.sync.signing import Key

__all__ = ["OutflowStream"]


class OutflowStream:
    """Departures for the downstream neighbours; the upstream neighbours' departures."""

    def __init__(
        self,
        *,
        outflow: Outflow | None,
        neighbours: Sequence[Neighbour],
        publisher: Publisher,
        topics: Topics,
        clock: Callable[[], datetime],
        log: Any,  # a bound structlog logger
        keys: Sequence[Key] = (),
    ) -> None:
        self.outflow = outflow if outflow is not None and outflow.enabled else None
        self.departures = OutflowBuffer()
        self.inbox = NeighbourInbox(neighbours)
        self.inbox.keys = tuple(keys)
        self._publisher = publisher
        self._topic = topics.outflow
        self._clock = clock
        self._log = log
        self._neighbour_topics = {topics.outflow_of(i): i for i in self.inbox.intersections}

    @property
    def keys(self) -> tuple[Key, ...]:
        return self.inbox.keys

    def set_keys(self, keys: Sequence[Key]) -> None:
        """Sign and check with ``keys`` from now on (a rotation of ``outflow_key_file``)."""
        self.inbox.keys = tuple(keys)

    def add(self, departures: Sequence[tuple[datetime, int]]) -> None:
        """Queue stop-bar departures; ignored when ``[outflow]`` is off."""
        if self.outflow is not None:
            self.departures.add(departures)

    async def subscribe(self, link: Link) -> None:
        """A neighbour's topic the broker refuses (an ACL) costs that neighbour only, never
        the link to the centre; a lost connection shows at the next publish anyway."""
        for topic, neighbour in self._neighbour_topics.items():
            try:
                await link.subscribe(topic, qos=0)
            except SyncError as exc:
                self._log.error("neighbour_subscribe_failed", neighbour=neighbour, error=str(exc))

    def receive(self, topic: str, payload: object) -> bool:
        """Hand a neighbour's message to the inbox; False when ``topic`` is not one of theirs."""
        neighbour = self._neighbour_topics.get(topic)
        if neighbour is None:
            return False
        self.inbox.receive(neighbour, payload_bytes(payload), now=self._clock())
        return True

    async def loop(self, link: Link, stop: asyncio.Event) -> None:
        """Publish the new departures every period; nothing when there are none."""
        if self.outflow is None:
            return
        while not await wait_event(stop, self.outflow.period_s):
            if not self.departures:
                continue
            departures = self.departures.take(self._clock())
            if departures:
                body = outflow_body(departures)
                key = self.keys[0] if self.keys else None
                await self._publisher.publish(link, "outflow", self._topic, body, qos=0, key=key)
