"""The ``events`` and ``telemetry`` streams: memory → SQLite outbox → broker, and the event log.

The control loop hands over events and telemetry (:meth:`Forwarder.add_events`,
:meth:`Forwarder.add_telemetry`: memory only, never blocks). Every ``events_batch_s`` the
batch task (:meth:`Forwarder.flush`) stores them in the outbox — the buffered events as one
``{"seq", "ts", "events": [[ts, code, param], …]}`` message, each telemetry payload as one
message — then records the same events in the event log
(:class:`~edgectl.sync.eventlog.EventStore`, for ``edgectl export-events``) and prunes it.
While connected, :meth:`Forwarder.pump` sends the stored rows in order (QoS 1) and deletes a
row only after its PUBACK; rows stored before the current connection carry
``"historical": true``. When the outbox bounds force a drop, the oldest go first, counted,
and an event ``206 OUTBOX_DROPPED`` (param = rows) is queued. The event log is secondary: a
failure there is logged (``event_log_write_failed``) and never holds up the outbox.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import structlog

from edgectl.config.settings import MqttSettings
from edgectl.errors import PublishRefused, SyncError
from edgectl.sync.clock import iso_ms
from edgectl.sync.eventlog import EventStore
from edgectl.sync.link import Link
from edgectl.sync.outbox import Outbox, OutboxRow
from edgectl.sync.publish import Publisher, SyncMetrics, Topics, dumps, wait_event

__all__ = [
    "EVENT_OUTBOX_DROPPED",
    "MAX_BUFFERED_EVENTS",
    "PUMP_BATCH",
    "Forwarder",
    "open_event_log",
]

log = structlog.get_logger("edgectl.sync")

EVENT_OUTBOX_DROPPED = 206
MAX_BUFFERED_EVENTS = 200_000  # in memory, if SQLite itself fails
PUMP_BATCH = 100  # outbox rows in flight at once


def open_event_log(
    settings: MqttSettings, state_dir: Path, *, intersection_id: str, now: datetime
) -> EventStore | None:
    """The event log ``[mqtt] event_log_*`` asks for, or None (off, or it cannot be opened:
    it is secondary, the junction still syncs without it, and says so in the log)."""
    if settings.event_log_max_age_s <= 0:
        return None
    try:
        return EventStore(
            state_dir,
            intersection_id=intersection_id,
            max_age_s=settings.event_log_max_age_s,
            max_rows=settings.event_log_max_rows,
            now=now,
        )
    except SyncError as exc:
        log.error("event_log_unavailable", intersection=intersection_id, error=str(exc))
        return None


class Forwarder:
    """Store-and-forward of events and telemetry. One owner: the sync service."""

    def __init__(
        self,
        outbox: Outbox,
        *,
        event_log: EventStore | None,
        publisher: Publisher,
        topics: Topics,
        metrics: SyncMetrics,
        clock: Callable[[], datetime],
        log: Any,  # a bound structlog logger
    ) -> None:
        self.outbox = outbox
        self.event_log = event_log
        self._publisher = publisher
        self._topics = topics
        self._metrics = metrics
        self._clock = clock
        self._log = log
        self.events: list[tuple[datetime, int, int]] = []  # not stored yet
        self.telemetry: list[dict[str, object]] = []
        self.closed = False
        self._wake = asyncio.Event()  # rows were stored
        self._idle = asyncio.Event()  # the pump has sent everything it could

    def add_events(self, events: Sequence[tuple[datetime, int, int]]) -> None:
        """Queue hi-res events ``(utc time, code, param)``; the oldest go beyond the cap."""
        self.events.extend(events)
        if len(self.events) > MAX_BUFFERED_EVENTS:
            excess = len(self.events) - MAX_BUFFERED_EVENTS
            del self.events[:excess]
            self._metrics.dropped += excess

    def add_telemetry(self, payload: Mapping[str, object]) -> None:
        self.telemetry.append(dict(payload))

    def flush(self) -> None:
        """Move buffered events/telemetry into the outbox (and the events into the event
        log); enforce the bounds. Raises SyncError when the outbox cannot be written."""
        if self.closed:
            return
        now = self._clock()
        wrote = False
        if self.events:
            events, self.events = self.events, []
            body: dict[str, object] = {
                "events": [[iso_ms(t), int(code), int(param)] for t, code, param in events]
            }
            try:
                self.outbox.append("events", body, now=now)
            except SyncError:
                self.events[:0] = events
                raise
            wrote = True
            self._record(events)
        while self.telemetry:
            try:
                self.outbox.append("telemetry", self.telemetry[0], now=now)
            except (TypeError, ValueError) as exc:  # not JSON-serialisable: a bug upstream
                self._log.error("telemetry_not_serialisable", error=str(exc))
            else:
                wrote = True
            self.telemetry.pop(0)
        dropped = self.outbox.enforce_bounds(now=now)
        if dropped:
            self._metrics.dropped += dropped
            self.events.append((now, EVENT_OUTBOX_DROPPED, min(dropped, 2**31 - 1)))
            self._log.warning("outbox_dropped", rows=dropped, total=self.outbox.dropped)
        self._prune(now)
        if wrote:
            self._wake.set()

    def _record(self, events: Sequence[tuple[datetime, int, int]]) -> None:
        if self.event_log is None:
            return
        try:
            self.event_log.record(events)
        except SyncError as exc:
            self._log.error("event_log_write_failed", events=len(events), error=str(exc))

    def _prune(self, now: datetime) -> None:
        if self.event_log is None:
            return
        try:
            self.event_log.prune(now)
        except SyncError as exc:
            self._log.error("event_log_prune_failed", error=str(exc))

    async def batch_loop(self, stop: asyncio.Event, period: float) -> None:
        """Flush every ``period`` until ``stop``."""
        while not stop.is_set():
            try:
                self.flush()
            except SyncError as exc:
                self._log.error("outbox_write_failed", error=str(exc))
            await wait_event(stop, period)

    async def drain(self) -> None:
        """One full pass of the pump over what is stored now (refused rows stay)."""
        self._idle.clear()
        self._wake.set()
        await self._idle.wait()

    def session_ended(self) -> None:
        """No pump any more: nobody waits for one in :meth:`drain`."""
        self._idle.set()

    async def pump(self, link: Link, connected_at: datetime) -> None:
        """Send the stored rows in order while connected; forget each on its PUBACK."""
        since = connected_at.timestamp()
        cursor = 0  # rows refused in this session stay behind the cursor
        while True:
            self._wake.clear()
            rows = self.outbox.pending(limit=PUMP_BATCH, after_id=cursor)
            if not rows:
                self._idle.set()
                await self._wake.wait()
                continue
            self._idle.clear()
            sent: list[tuple[OutboxRow, asyncio.Future[int], str]] = []
            for row in rows:
                topic = self._topics.events if row.stream == "events" else self._topics.telemetry
                payload = dict(row.payload)
                if row.created < since:
                    payload["historical"] = True
                sent.append((row, link.send(topic, dumps(payload), qos=1), topic))
            acked: list[int] = []
            try:
                for row, fut, topic in sent:
                    try:
                        await link.acked(fut, topic)
                    except PublishRefused as exc:
                        self._publisher.refused(row.stream, exc)
                    else:
                        acked.append(row.id)
                        self._metrics.published[row.stream] += 1
                    cursor = row.id
            finally:
                if acked:  # PUBACKed rows are forgotten even when the link drops mid-batch
                    self._forget(acked)

    def _forget(self, acked: list[int]) -> None:
        """Delete PUBACKed rows; when the disk cannot take even that (full), they stay and are
        sent again later (the centre sees a repeated ``seq``, never a gap), and the link
        stays up."""
        try:
            self.outbox.ack_many(acked)
        except SyncError as exc:
            self._log.error("outbox_ack_failed", rows=len(acked), error=str(exc))

    def close(self) -> None:
        """Close the outbox and the event log (after a last :meth:`flush`)."""
        self.closed = True
        if self.event_log is not None:
            try:
                self.event_log.close()
            except SyncError as exc:
                self._log.error("event_log_close_failed", error=str(exc))
        self.outbox.close()
