"""The command stream: ``…/cmd`` in, ``…/cmd/response`` out.

Each message goes through the :mod:`edgectl.sync.commands` pipeline; the answer
``{"id", "ok", "error"?, "result"?, "duplicate"?, "ts", "seq"}`` is published to
``…/cmd/response`` and also to the MQTT 5 response topic with the correlation data when the
command has one. Each refusal (in the pipeline or by the handler) emits event
``201 COMMAND_REJECTED`` (param = :data:`~edgectl.sync.commands.REJECT_EVENT_PARAM`);
``202 COMMAND_APPLIED`` is the handler's to emit (it knows what it applied). An executed
``request_state`` makes the state stream publish at once.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

import aiomqtt

from edgectl.sync.commands import REJECT_EVENT_PARAM, CommandProcessor, Verdict
from edgectl.sync.link import Link
from edgectl.sync.publish import Publisher, SyncMetrics, payload_bytes

__all__ = ["EVENT_COMMAND_REJECTED", "CommandStream"]

EVENT_COMMAND_REJECTED = 201


class CommandStream:
    """Executes the centre's commands and answers them."""

    def __init__(
        self,
        processor: CommandProcessor,
        *,
        publisher: Publisher,
        response_topic: str,
        metrics: SyncMetrics,
        clock: Callable[[], datetime],
        log: Any,  # a bound structlog logger
        add_events: Callable[[Sequence[tuple[datetime, int, int]]], None],
        request_state: Callable[[], None],
    ) -> None:
        self._processor = processor
        self._publisher = publisher
        self._topic = response_topic
        self._metrics = metrics
        self._clock = clock
        self._log = log
        self._add_events = add_events
        self._request_state = request_state

    async def handle(self, link: Link, message: aiomqtt.Message) -> None:
        """Process one ``…/cmd`` message and publish the answer."""
        verdict = self._processor.process(payload_bytes(message.payload))
        self._account(verdict)
        body = dict(verdict.response)
        if verdict.duplicate:
            body["duplicate"] = True
        await self._publisher.publish(link, "cmd_response", self._topic, body)
        props = message.properties
        response_topic = getattr(props, "ResponseTopic", None) if props else None
        if link.v5 and isinstance(response_topic, str) and response_topic:
            correlation = getattr(props, "CorrelationData", None)
            await self._publisher.publish(
                link,
                "cmd_response",
                response_topic,
                body,
                correlation_data=correlation if isinstance(correlation, bytes) else None,
            )

    def _account(self, verdict: Verdict) -> None:
        command = verdict.command
        if verdict.duplicate:
            self._metrics.duplicates += 1
            self._log.info("command_duplicate", id=command.id if command else None)
            return
        if verdict.code is not None:
            self._metrics.rejected[verdict.code] += 1
            param = REJECT_EVENT_PARAM.get(verdict.code, 0)
            self._add_events([(self._clock(), EVENT_COMMAND_REJECTED, param)])
            self._log.info(
                "command_rejected",
                id=verdict.response.get("id"),
                code=verdict.code,
                type=command.type if command else None,
            )
            return
        if command is not None and verdict.executed:
            self._metrics.applied += 1
            if command.type == "request_state":
                self._request_state()
