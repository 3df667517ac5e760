"""The command stream: ``…/cmd`` in, ``…/cmd/response`` out.

Each message goes through the :mod:`edgectl.sync.processor` pipeline; the answer
``{"id", "ok", "error"?, "result"?, "duplicate"?, "ts", "seq"}`` is published to
``…/cmd/response`` and also to the MQTT 5 response topic with the correlation data when the
command has one — unless that topic has a wildcard, is not valid, or lies under this
junction's own root (``…/state``, ``…/status``, ``…/cmd`` … — only a private topic under
``…/cmd/response/`` is allowed there): then the command is refused
(``bad_response_topic``, answered on ``…/cmd/response`` only) and nothing is executed.

One message never ends the session: whatever goes wrong while handling it (an answer that
cannot be encoded, a publish the client refuses) is logged (``command_message_failed``),
counted (``rejected["internal"]``) and answered where possible, and the next message is
handled. Only the loss of the connection itself propagates. Each refusal (in the pipeline or
by the handler) emits event
``201 COMMAND_REJECTED`` (param = :data:`~edgectl.sync.commands.REJECT_EVENT_PARAM`);
``202 COMMAND_APPLIED`` is the handler's to emit (it knows what it applied). An executed
``request_state`` makes the state stream publish at once.

With a command key every answer is signed (``kid``, ``sig``: HMAC-SHA256 over the JCS of the
whole answer but ``sig``, ``ts`` and ``seq`` included) with the key the command was verified
with — or, for a command that verified with none, the first key — so the centre can tell a
junction's answer from a forged one (:func:`edgectl.sync.signing.verify_response`).
:meth:`Publisher.publish <edgectl.sync.publish.Publisher.publish>` stamps and signs (``key=``).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any

import aiomqtt

from edgectl.errors import SyncError
from edgectl.sync.commands import REJECT_EVENT_PARAM, ErrorCode
from edgectl.sync.link import Link
from edgectl.sync.processor import CommandProcessor, Verdict
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
        root: str,
        metrics: SyncMetrics,
        clock: Callable[[], datetime],
        log: Any,  # a bound structlog logger
        add_events: Callable[[Sequence[tuple[datetime, int, int]]], None],
        request_state: Callable[[], None],
    ) -> None:
        self._processor = processor
        self._publisher = publisher
        self._topic = response_topic
        self._root = root
        self._metrics = metrics
        self._clock = clock
        self._log = log
        self._add_events = add_events
        self._request_state = request_state

    @property
    def processor(self) -> CommandProcessor:
        return self._processor

    async def handle(self, link: Link, message: aiomqtt.Message) -> None:
        """Process one ``…/cmd`` message and publish the answer; raises only SyncError for a
        connection that is lost."""
        try:
            await self._handle(link, message)
        except Exception as exc:
            if isinstance(exc, SyncError) and not link.is_connected:
                raise
            self._metrics.rejected[ErrorCode.INTERNAL.value] += 1
            self._log.exception("command_message_failed", error=str(exc)[:200])

    async def _handle(self, link: Link, message: aiomqtt.Message) -> None:
        props = message.properties
        response_topic = getattr(props, "ResponseTopic", None) if props else None
        reply_to: str | None = None
        refuse: tuple[str, str] | None = None
        if link.v5 and response_topic is not None:
            problem = self._bad_response_topic(response_topic)
            if problem:
                refuse = (ErrorCode.BAD_RESPONSE_TOPIC.value, problem)
            else:
                reply_to = response_topic
        verdict = self._processor.process(payload_bytes(message.payload), refuse=refuse)
        self._account(verdict)
        body = _encodable(verdict.response)
        if verdict.duplicate:
            body["duplicate"] = True
        keys = self._processor.keys
        key = verdict.key or (keys[0] if keys else None)
        await self._publisher.publish(link, "cmd_response", self._topic, body, key=key)
        if reply_to is not None:
            correlation = getattr(props, "CorrelationData", None)
            await self._publisher.publish(
                link,
                "cmd_response",
                reply_to,
                body,
                correlation_data=correlation if isinstance(correlation, bytes) else None,
                key=key,
            )

    def _bad_response_topic(self, topic: object) -> str:
        """Why ``topic`` may not be published to ("" = it may)."""
        if not isinstance(topic, str) or not topic:
            return "the response topic is empty"
        shown = _encodable({"t": topic[:80]})["t"]
        if "+" in topic or "#" in topic or "\0" in topic:
            return f"response topic {shown!r} has a wildcard or NUL"
        if topic.startswith("$"):
            return f"response topic {shown!r} is reserved ($)"
        try:
            if len(topic.encode("utf-8")) > 0xFFFF:
                return "the response topic is too long"
        except UnicodeEncodeError:
            return "the response topic is not valid UTF-8"
        if topic.startswith(self._topic + "/"):
            return ""  # a private reply topic under …/cmd/response/ (as `edgectl cmd` uses)
        if topic == self._root or topic.startswith(self._root + "/"):
            return f"response topic {shown!r} is one of this junction's own topics"
        return ""

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


def _encodable(body: Mapping[str, object]) -> dict[str, object]:
    """``body`` with every string UTF-8 encodable (lone surrogates replaced by ``?``)."""
    text = json.dumps(dict(body), ensure_ascii=False, default=str)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        text = text.encode("utf-8", "replace").decode("utf-8")
    value = json.loads(text)
    return value if isinstance(value, dict) else {}
