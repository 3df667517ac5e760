"""The ``status`` stream: birth, will and death (retained), with a durable ``bdseq``.

At every connect the will ``{"online": false, "bdseq": n}`` is registered (the session
chooses ``bdseq``); after CONNACK :meth:`StatusStream.publish_birth` sends
``{"online": true, "bdseq", "version", "config_digest", "started_at", "ts", "seq"}``. An
accepted reload (:meth:`StatusStream.set_config_digest`) publishes the birth again with the
new digest (same ``bdseq``); a clean stop publishes ``{"online": false, "bdseq"}`` itself.
"""

from __future__ import annotations

import asyncio
from datetime import datetime

import aiomqtt

from edgectl.sync.clock import iso_ms
from edgectl.sync.link import Link
from edgectl.sync.publish import Publisher, dumps

__all__ = ["StatusStream"]


class StatusStream:
    """Birth and death of this junction's connection to the centre."""

    def __init__(
        self,
        *,
        publisher: Publisher,
        topic: str,
        version: str,
        config_digest: str,
        started_at: datetime,
    ) -> None:
        self._publisher = publisher
        self._topic = topic
        self.version = version
        self.config_digest = config_digest
        self.started_at = started_at
        self._wake = asyncio.Event()  # the birth is out of date (a new config digest)

    def set_config_digest(self, digest: str) -> None:
        """A reload was accepted: the next birth (or the current one again) carries it."""
        if digest == self.config_digest:
            return
        self.config_digest = digest
        self._wake.set()

    def will(self, bdseq: int) -> aiomqtt.Will:
        """What the broker publishes for us if the connection dies without a DISCONNECT."""
        body = {"online": False, "bdseq": bdseq}
        return aiomqtt.Will(topic=self._topic, payload=dumps(body), qos=1, retain=True)

    def birth(self, bdseq: int) -> dict[str, object]:
        return {
            "online": True,
            "bdseq": bdseq,
            "version": self.version,
            "config_digest": self.config_digest,
            "started_at": iso_ms(self.started_at),
        }

    async def publish_birth(self, link: Link, bdseq: int) -> None:
        """The birth of a new connection: it carries the digest of now."""
        self._wake.clear()
        await self._publisher.publish(link, "status", self._topic, self.birth(bdseq), retain=True)

    async def loop(self, link: Link, bdseq: int) -> None:
        """The birth again, same ``bdseq``, whenever the config digest changed."""
        while True:
            await self._wake.wait()
            await self.publish_birth(link, bdseq)

    async def publish_death(self, link: Link, bdseq: int) -> None:
        """``online: false`` on a clean stop (the will covers the other ends)."""
        body: dict[str, object] = {"online": False, "bdseq": bdseq}
        await self._publisher.publish(link, "status", self._topic, body, retain=True)
