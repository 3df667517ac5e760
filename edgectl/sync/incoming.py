"""What comes in over the link: commands and the neighbours' outflow, each kind at a bounded
rate (:mod:`edgectl.sync.ratelimit`), one message never able to end the session."""

from __future__ import annotations

import asyncio
from collections import Counter

import structlog

from edgectl.sync.link import Link
from edgectl.sync.neighbours import OutflowStream
from edgectl.sync.publish import SyncMetrics
from edgectl.sync.ratelimit import TokenBucket, command_bucket
from edgectl.sync.respond import CommandStream

NEIGHBOUR_MESSAGES_PER_S = 50.0
"""Incoming messages other than commands (the neighbours' outflow, about one a second each)."""
RATE_LOG_S = 10.0


class Incoming:
    """The session's message loop: commands to :class:`CommandStream`, the rest to the
    neighbours' inbox; over their rate, dropped unanswered and counted."""

    def __init__(
        self,
        *,
        command_topic: str,
        commands: CommandStream,
        outflow: OutflowStream,
        metrics: SyncMetrics,
        max_commands_per_s: float,
        log: structlog.stdlib.BoundLogger,
    ) -> None:
        self.command_topic = command_topic
        self.commands = commands
        self.outflow = outflow
        self.metrics = metrics
        self.max_commands_per_s = max_commands_per_s
        self.log = log
        self.dropped: Counter[str] = Counter()  # "commands", "neighbour_messages"
        self._logged_at = float("-inf")

    async def loop(self, link: Link) -> None:
        clock = asyncio.get_running_loop().time
        commands = command_bucket(self.max_commands_per_s)
        others = TokenBucket(rate=NEIGHBOUR_MESSAGES_PER_S, burst=2 * NEIGHBOUR_MESSAGES_PER_S)
        inbox_full = self.metrics.rejected["inbox_full"]
        async for message in link.messages():
            if link.inbox_dropped:
                self.metrics.rejected["inbox_full"] = inbox_full + link.inbox_dropped
            topic = str(message.topic)
            is_command = topic == self.command_topic
            if not (commands if is_command else others).take(clock()):
                self._rate_limited(is_command, clock())
                continue
            if is_command:
                await self.commands.handle(link, message)  # isolates its own failures
                continue
            try:
                self.outflow.receive(topic, message.payload)
            except Exception as exc:  # one message must never end the session
                self.metrics.rejected["internal"] += 1
                self.log.exception("message_failed", topic=topic[:200], error=str(exc)[:200])

    def _rate_limited(self, command: bool, now: float) -> None:
        """A message over its rate: counted, logged at most every ``RATE_LOG_S``."""
        if command:
            self.metrics.rejected["rate_limited"] += 1
            self.dropped["commands"] += 1
        else:
            self.dropped["neighbour_messages"] += 1
        if now - self._logged_at >= RATE_LOG_S:
            self._logged_at = now
            self.log.warning(
                "incoming_rate_limited",
                commands=self.dropped["commands"],
                neighbour_messages=self.dropped["neighbour_messages"],
            )
