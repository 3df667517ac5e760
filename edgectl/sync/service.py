"""The sync service: keeps the centre in step with the junction over MQTT (SPEC §7).

The daemon owns one :class:`SyncService` and talks to it only through this interface::

    class CommandHandler(Protocol):
        def apply(self, command: Command) -> CommandResult: ...   # sync, fast, never blocks;
                                                                 # may raise CommandError(code, msg)
    class SyncService:
        def __init__(self, settings: MqttSettings, *, intersection_id: str, state_dir: Path,
                     handler: CommandHandler, version: str, config_digest: str,
                     clock: Callable[[], datetime] = utc_now) -> None
        async def run(self) -> None                  # until cancelled or close(); in the TaskGroup
        def publish_state(self, state: Mapping[str, object]) -> None        # non-blocking
        def add_events(self, events: Sequence[tuple[datetime, int, int]]) -> None  # non-blocking
        def add_telemetry(self, payload: Mapping[str, object]) -> None     # non-blocking
        def add_departures(self, departures: Sequence[tuple[datetime, int]]) -> None  # idem
        def set_config_digest(self, digest: str) -> None  # non-blocking; a reload was accepted
        async def close(self, timeout: float = 3.0) -> None   # online:false, flush outbox
        connected: bool;  metrics: SyncMetrics;  inbox: NeighbourInbox

Nothing the control loop calls waits on the broker or on SQLite: the calls above only touch
in-memory buffers; the service's own tasks (``edgectl[sync:*]``) write SQLite and publish.

What is published, under ``{prefix}/{intersection_id}/``:

- ``status`` (QoS 1, retained): the will ``{"online": false, "bdseq": n}`` is registered at
  every connect with a ``bdseq`` bumped (durably) per connection; after CONNACK the birth
  ``{"online": true, "bdseq", "version", "config_digest", "started_at", "ts", "seq"}``; a clean
  :meth:`SyncService.close` publishes ``{"online": false, "bdseq", "ts", "seq"}`` itself.
  :meth:`SyncService.set_config_digest` (an accepted reload) publishes the birth again with
  the new digest (same ``bdseq``, new ``ts``/``seq``), or leaves it to the next connection's.
- ``state`` (QoS 1, retained): the latest ``publish_state`` mapping plus ``ts``/``seq``, at
  connect, on every change and at least every ``state_interval_s``. Keys in
  :data:`STATE_VOLATILE_KEYS` (at any depth: ``elapsed``, ``time_in_interval`` …) do not count
  as a change, so a ticking timer does not publish at 10 Hz.
- ``events`` / ``telemetry`` (QoS 1, through the SQLite outbox): events are batched every
  ``events_batch_s`` into ``{"seq", "ts", "events": [[ts, code, param], …]}``; each telemetry
  payload is one message. ``seq`` is per stream, +1 per message, durable. A row is deleted
  only after its PUBACK; rows stored before the current connection (or not acknowledged in an
  earlier one) are replayed in order with ``"historical": true``. When the bounds force a
  drop, the oldest go first, counted, and an event ``206 OUTBOX_DROPPED`` (param = rows) is
  queued; a corrupt database moved aside at start is reported the same way with param 0
  (unknown count) and in :attr:`SyncMetrics.outbox_recovered_from`.
- ``outflow`` (QoS 0, not retained, never through the outbox; only with ``[outflow] enabled``):
  the departures given to :meth:`SyncService.add_departures` since the last message,
  ``{"departures": [{"detector", "at"}, …], "ts", "seq"}``, every ``[outflow] period_s`` while
  there are any (see :mod:`edgectl.sync.outflow`).
- ``{prefix}/{neighbour}/outflow`` of every configured ``[[neighbours]]`` junction (subscribed,
  QoS 0, at every connect) → :class:`~edgectl.sync.outflow.NeighbourInbox`, which the daemon
  reads on its control loop; a refused message is logged (``outflow_rejected``) and counted
  in :attr:`SyncMetrics.neighbour_messages`.
- ``cmd`` (subscribed, QoS 1, re-subscribed at every connect) → :mod:`edgectl.sync.commands`
  pipeline → ``cmd/response`` ``{"id", "ok", "error"?, "result"?, "duplicate"?, "ts", "seq"}``,
  and also to the MQTT 5 response topic with the correlation data when the command has one.
  Each refusal (in the pipeline or by the handler) emits event ``201 COMMAND_REJECTED``
  (param = :data:`REJECT_EVENT_PARAM`); ``202 COMMAND_APPLIED`` is the handler's to emit
  (it knows what it applied), so the service does not add it.

A publish the broker refuses (MQTT 5 PUBACK ≥ 0x80, e.g. an ACL deny) is logged
(``publish_refused``) and counted; such an outbox row is kept and retried on the next
connection. The link reconnects with capped jittered backoff and a fresh client each time.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import aiomqtt
import structlog

from edgectl.backoff import Backoff
from edgectl.config.model import Neighbour, Outflow
from edgectl.config.settings import MqttSettings
from edgectl.errors import PublishRefused, SyncError
from edgectl.sync.clock import iso_ms, utc_now
from edgectl.sync.commands import (
    REJECT_EVENT_PARAM,
    Command,
    CommandHandler,
    CommandProcessor,
    CommandResult,
    Verdict,
    read_key,
)
from edgectl.sync.link import Link, LinkConfig, open_link
from edgectl.sync.outbox import Outbox, OutboxRow
from edgectl.sync.outflow import NeighbourInbox, OutflowBuffer, outflow_body

__all__ = [
    "STATE_VOLATILE_KEYS",
    "Command",
    "CommandHandler",
    "CommandResult",
    "SyncMetrics",
    "SyncService",
    "Topics",
]

log = structlog.get_logger("edgectl.sync")

EVENT_COMMAND_REJECTED = 201
EVENT_OUTBOX_DROPPED = 206

STATE_VOLATILE_KEYS = frozenset(
    {"ts", "seq", "elapsed", "time_in_interval", "cycle_time", "uptime_s", "now"}
)
"""Keys ignored (at any depth) when deciding whether the state changed."""

MAX_BUFFERED_EVENTS = 200_000  # in memory, if SQLite itself fails
PUMP_BATCH = 100  # outbox rows in flight at once


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


class _Stopping(Exception):
    """Internal: ends a session's TaskGroup when the service stops."""


def _strip_volatile(value: object) -> object:
    if isinstance(value, Mapping):
        return {k: _strip_volatile(v) for k, v in value.items() if k not in STATE_VOLATILE_KEYS}
    if isinstance(value, list | tuple):
        return [_strip_volatile(v) for v in value]
    return value


def _payload_bytes(raw: object) -> bytes:
    if isinstance(raw, str):
        return raw.encode()
    if isinstance(raw, bytes | bytearray):
        return bytes(raw)
    return b"" if raw is None else str(raw).encode()


def _dumps(obj: Mapping[str, object]) -> bytes:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False, default=str).encode()


async def _wait_event(event: asyncio.Event, timeout: float) -> bool:  # noqa: ASYNC109
    """Wait for ``event`` at most ``timeout`` s; True when it is set."""
    if event.is_set():
        return True
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(max(timeout, 0.0)):
            await event.wait()
    return event.is_set()


class SyncService:
    """MQTT sync with the centre. See the module docstring for the contract."""

    def __init__(
        self,
        settings: MqttSettings,
        *,
        intersection_id: str,
        state_dir: Path,
        handler: CommandHandler,
        version: str,
        config_digest: str,
        neighbours: Sequence[Neighbour] = (),
        outflow: Outflow | None = None,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self.settings = settings
        self.topics = Topics(settings.prefix, intersection_id)
        self.intersection_id = intersection_id
        self.version = version
        self.config_digest = config_digest
        self._clock = clock
        self.started_at = clock()
        self._log = log.bind(intersection=intersection_id)
        self._outbox = Outbox(
            state_dir,
            max_rows=settings.outbox_max_rows,
            max_age_s=settings.outbox_max_age_s,
            now=self.started_at,
        )
        self._metrics = SyncMetrics(bdseq=self._outbox.counter("bdseq"))
        if self._outbox.recovered_from is not None:
            self._metrics.outbox_recovered_from = str(self._outbox.recovered_from)
        key = read_key(settings.command_key_file) if settings.command_key_file else None
        self._processor = CommandProcessor(
            handler=handler,
            store=self._outbox,
            clock=clock,
            key=key,
            max_age_s=settings.command_max_age_s,
        )
        # in-memory buffers filled by the control loop
        self._events: list[tuple[datetime, int, int]] = []
        if self._outbox.recovered_from is not None:
            # the stored rows were lost with the corrupt file: say so (param 0 = unknown count)
            self._events.append((self.started_at, EVENT_OUTBOX_DROPPED, 0))
        self._telemetry: list[dict[str, object]] = []
        self._outflow = outflow if outflow is not None and outflow.enabled else None
        self._departures = OutflowBuffer()
        self._inbox = NeighbourInbox(neighbours)
        self._neighbour_topics = {self.topics.outflow_of(i): i for i in self._inbox.intersections}
        self._state: dict[str, object] | None = None
        self._state_key: object = None
        self._state_changed = False
        # wake-ups and lifecycle
        self._state_wake = asyncio.Event()
        self._status_wake = asyncio.Event()  # the birth is out of date (a new config digest)
        self._outbox_wake = asyncio.Event()
        self._outbox_idle = asyncio.Event()
        self._stop = asyncio.Event()
        self._stopped = asyncio.Event()
        self._running = False
        self._closed = False
        self._link: Link | None = None
        self._connected_at: datetime | None = None
        self._seq: Counter[str] = Counter()  # status/state/response seq (per process)
        self._unused_bdseq: int | None = None

    # ------------------------------------------------------------------ the daemon's API

    @property
    def connected(self) -> bool:
        return self._link is not None and self._link.is_connected

    @property
    def metrics(self) -> SyncMetrics:
        """A snapshot of the counters (``outbox_depth`` costs one COUNT(*): read it at scrape
        time, not every tick)."""
        m = self._metrics
        m.connected = self.connected
        m.neighbour_messages = self._inbox.results.copy()
        m.outflow_dropped = self._departures.dropped
        if not self._closed:
            try:
                m.outbox_depth = self._outbox.depth
            except SyncError:
                m.outbox_depth = -1
        return m

    def publish_state(self, state: Mapping[str, object]) -> None:
        """Latest wins; published retained on change and at least every state_interval_s."""
        snapshot = dict(state)
        key = _strip_volatile(snapshot)
        self._state = snapshot
        if key != self._state_key:
            self._state_key = key
            self._state_changed = True
            self._state_wake.set()

    def add_events(self, events: Sequence[tuple[datetime, int, int]]) -> None:
        """Queue hi-res events ``(utc time, code, param)``; batched every events_batch_s."""
        self._events.extend(events)
        if len(self._events) > MAX_BUFFERED_EVENTS:
            excess = len(self._events) - MAX_BUFFERED_EVENTS
            del self._events[:excess]
            self._metrics.dropped += excess

    def add_telemetry(self, payload: Mapping[str, object]) -> None:
        """Queue one telemetry message (stored at the next batch, then sent via the outbox)."""
        self._telemetry.append(dict(payload))

    def add_departures(self, departures: Sequence[tuple[datetime, int]]) -> None:
        """Queue stop-bar departures ``(utc time, detector)`` for the next ``outflow``
        message; ignored when ``[outflow]`` is off."""
        if self._outflow is not None:
            self._departures.add(departures)

    def set_config_digest(self, digest: str) -> None:
        """The configuration now running (an accepted reload): the retained birth is published
        again with it while connected, and every later birth carries it."""
        if digest == self.config_digest:
            return
        self.config_digest = digest
        self._status_wake.set()

    @property
    def inbox(self) -> NeighbourInbox:
        """The configured neighbours' departures (read by the control loop)."""
        return self._inbox

    async def run(self) -> None:
        """Connect, reconnect, publish and execute commands until cancelled or closed."""
        if self._running:
            raise RuntimeError("SyncService.run() is already running")
        self._running = True
        self._stopped.clear()
        try:
            async with asyncio.TaskGroup() as tg:
                tg.create_task(self._batch_loop(), name="edgectl[sync:batch]")
                tg.create_task(self._link_loop(), name="edgectl[sync:link]")
                # close() sets _stop: this ends the group, cancelling a connect in progress too;
                # a live session's link still disconnects cleanly (DISCONNECT, no will)
                tg.create_task(self._until_stop(), name="edgectl[sync:stop]")
        except* _Stopping:
            pass
        finally:
            self._running = False
            self._link = None
            with contextlib.suppress(SyncError):
                self._flush_buffers()
            self._stopped.set()

    async def close(self, timeout: float = 3.0) -> None:  # noqa: ASYNC109 - the contract
        """Clean stop: flush buffers, send the outbox as far as ``timeout`` allows, publish
        ``online: false``, disconnect, close the database. Idempotent."""
        if self._closed:
            return
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        try:
            self._flush_buffers()
        except SyncError as exc:
            self._log.error("outbox_flush_failed", error=str(exc))
        link = self._link
        if link is not None and self._running:
            try:
                async with asyncio.timeout(max(deadline - loop.time() - 0.5, 0.1)):
                    await self._drain()
            except TimeoutError:
                self._log.warning("outbox_not_drained_at_close", depth=self._outbox.depth)
            if link.is_connected:
                body: dict[str, object] = {"online": False, "bdseq": self._metrics.bdseq}
                try:
                    async with asyncio.timeout(max(deadline - loop.time(), 0.2)):
                        await self._publish(link, "status", self.topics.status, body, retain=True)
                except (TimeoutError, SyncError) as exc:
                    self._log.warning("death_not_published", error=str(exc))
        self._stop.set()
        if self._running:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(max(deadline - loop.time(), 1.0)):
                    await self._stopped.wait()
        self._closed = True
        self._metrics.outbox_depth = self._outbox.depth
        self._outbox.close()

    # ------------------------------------------------------------------ internals

    async def _drain(self) -> None:
        """One full pass of the pump over what is stored now (refused rows stay)."""
        self._outbox_idle.clear()
        self._outbox_wake.set()
        await self._outbox_idle.wait()

    def _flush_buffers(self) -> None:
        """Move buffered events/telemetry into the outbox; enforce its bounds."""
        if self._closed:
            return
        now = self._clock()
        wrote = False
        if self._events:
            events, self._events = self._events, []
            body: dict[str, object] = {
                "events": [[iso_ms(t), int(code), int(param)] for t, code, param in events]
            }
            try:
                self._outbox.append("events", body, now=now)
            except SyncError:
                self._events[:0] = events
                raise
            wrote = True
        while self._telemetry:
            try:
                self._outbox.append("telemetry", self._telemetry[0], now=now)
            except (TypeError, ValueError) as exc:  # not JSON-serialisable: a bug upstream
                self._log.error("telemetry_not_serialisable", error=str(exc))
            else:
                wrote = True
            self._telemetry.pop(0)
        dropped = self._outbox.enforce_bounds(now=now)
        if dropped:
            self._metrics.dropped += dropped
            self._events.append((now, EVENT_OUTBOX_DROPPED, min(dropped, 2**31 - 1)))
            self._log.warning("outbox_dropped", rows=dropped, total=self._outbox.dropped)
        if wrote:
            self._outbox_wake.set()

    async def _batch_loop(self) -> None:
        period = self.settings.events_batch_s
        while not self._stop.is_set():
            try:
                self._flush_buffers()
            except SyncError as exc:
                self._log.error("outbox_write_failed", error=str(exc))
            await _wait_event(self._stop, period)

    async def _link_loop(self) -> None:
        if not self.settings.url:
            self._log.info("mqtt_disabled")
            await self._stop.wait()
            return
        backoff = Backoff(self.settings.backoff_initial, self.settings.backoff_max)
        while not self._stop.is_set():
            try:
                config = LinkConfig.from_settings(
                    self.settings, client_id=f"edgectl-{self.intersection_id}"
                )
                await self._session(config, backoff)
            except SyncError as exc:
                self._log.warning("mqtt_link_down", error=str(exc))
            except Exception:  # noqa: BLE001 - a bug in one session must not end the sync for good
                self._log.exception("sync_session_failed")
            if self._stop.is_set():
                break
            await _wait_event(self._stop, backoff.next())

    async def _session(self, config: LinkConfig, backoff: Backoff) -> None:
        # a bdseq is used up once a connection with its will was accepted; a failed attempt
        # leaves it for the next one
        bdseq = self._unused_bdseq or self._outbox.bump("bdseq")
        self._unused_bdseq = bdseq
        self._metrics.bdseq = bdseq
        will = aiomqtt.Will(
            topic=self.topics.status,
            payload=_dumps({"online": False, "bdseq": bdseq}),
            qos=1,
            retain=True,
        )
        async with open_link(config, will=will, on_disconnect_error=self._disconnect_error) as link:
            self._unused_bdseq = None
            backoff.reset()
            self._connected_at = self._clock()
            self._metrics.connects += 1
            self._log.info(
                "mqtt_connected",
                broker=config.address.host,
                bdseq=bdseq,
                protocol=config.protocol.value,
            )
            try:
                await link.subscribe(self.topics.cmd, qos=1)
                await self._subscribe_neighbours(link)
                self._link = link
                self._status_wake.clear()  # this birth carries the digest of now
                await self._publish(
                    link, "status", self.topics.status, self._birth(bdseq), retain=True
                )
                async with asyncio.TaskGroup() as tg:
                    tg.create_task(self._status_loop(link, bdseq), name="edgectl[sync:status]")
                    tg.create_task(self._pump(link), name="edgectl[sync:outbox]")
                    tg.create_task(self._state_loop(link), name="edgectl[sync:state]")
                    tg.create_task(self._message_loop(link), name="edgectl[sync:messages]")
                    if self._outflow is not None:
                        tg.create_task(
                            self._outflow_loop(link, self._outflow.period_s),
                            name="edgectl[sync:outflow]",
                        )
            except* SyncError as eg:
                raise eg.exceptions[0] from None
            finally:
                self._link = None
                self._metrics.disconnects += 1
                self._outbox_idle.set()

    def _disconnect_error(self, exc: Exception) -> None:
        self._log.debug("mqtt_disconnect_error", error=str(exc))

    async def _until_stop(self) -> None:
        await self._stop.wait()
        raise _Stopping

    def _birth(self, bdseq: int) -> dict[str, object]:
        return {
            "online": True,
            "bdseq": bdseq,
            "version": self.version,
            "config_digest": self.config_digest,
            "started_at": iso_ms(self.started_at),
        }

    async def _publish(
        self,
        link: Link,
        stream: str,
        topic: str,
        body: Mapping[str, object],
        *,
        qos: int = 1,
        retain: bool = False,
        correlation_data: bytes | None = None,
    ) -> bool:
        """Publish a non-outbox message with ts/seq; False when the broker refused it."""
        self._seq[stream] += 1
        payload = {**body, "ts": iso_ms(self._clock()), "seq": self._seq[stream]}
        try:
            await link.publish(
                topic, _dumps(payload), qos=qos, retain=retain, correlation_data=correlation_data
            )
        except PublishRefused as exc:
            self._refused(stream, exc)
            return False
        self._metrics.published[stream] += 1
        return True

    def _refused(self, stream: str, exc: PublishRefused) -> None:
        self._metrics.refused[stream] += 1
        self._log.error(
            "publish_refused", topic=exc.topic, reason_code=exc.reason_code, error=str(exc)
        )

    async def _status_loop(self, link: Link, bdseq: int) -> None:
        """The birth again, same ``bdseq``, whenever :meth:`set_config_digest` changed it."""
        while True:
            await self._status_wake.wait()
            self._status_wake.clear()
            await self._publish(link, "status", self.topics.status, self._birth(bdseq), retain=True)

    # --- outbox pump ---

    async def _pump(self, link: Link) -> None:
        connected_at = (self._connected_at or self._clock()).timestamp()
        cursor = 0  # rows refused in this session stay behind the cursor
        while True:
            self._outbox_wake.clear()
            rows = self._outbox.pending(limit=PUMP_BATCH, after_id=cursor)
            if not rows:
                self._outbox_idle.set()
                await self._outbox_wake.wait()
                continue
            self._outbox_idle.clear()
            sent: list[tuple[OutboxRow, asyncio.Future[int], str]] = []
            for row in rows:
                topic = self.topics.events if row.stream == "events" else self.topics.telemetry
                payload = dict(row.payload)
                if row.created < connected_at:
                    payload["historical"] = True
                sent.append((row, link.send(topic, _dumps(payload), qos=1), topic))
            acked: list[int] = []
            try:
                for row, fut, topic in sent:
                    try:
                        await link.acked(fut, topic)
                    except PublishRefused as exc:
                        self._refused(row.stream, exc)
                    else:
                        acked.append(row.id)
                        self._metrics.published[row.stream] += 1
                    cursor = row.id
            finally:
                if acked:  # PUBACKed rows are forgotten even when the link drops mid-batch
                    self._outbox.ack_many(acked)

    # --- state ---

    async def _state_loop(self, link: Link) -> None:
        loop = asyncio.get_running_loop()
        interval = self.settings.state_interval_s
        last = -math.inf
        force = True  # full state at every connect
        while True:
            self._state_wake.clear()
            now = loop.time()
            if self._state is not None and (force or self._state_changed or now - last >= interval):
                state, self._state_changed, force = self._state, False, False
                last = now
                await self._publish(link, "state", self.topics.state, state, retain=True)
                continue
            timeout = interval - (now - last) if self._state is not None else interval
            await _wait_event(self._state_wake, timeout)

    def _force_state(self) -> None:
        self._state_changed = True
        self._state_wake.set()

    # --- outflow (neighbour coordination) ---

    async def _outflow_loop(self, link: Link, period: float) -> None:
        """Publish the new departures every period; nothing when there are none."""
        while not await _wait_event(self._stop, period):
            if not self._departures:
                continue
            departures = self._departures.take(self._clock())
            if departures:
                body = outflow_body(departures)
                await self._publish(link, "outflow", self.topics.outflow, body, qos=0)

    async def _subscribe_neighbours(self, link: Link) -> None:
        """A neighbour's topic the broker refuses (an ACL) costs that neighbour only, never
        the link to the centre; a lost connection shows at the next publish anyway."""
        for topic, neighbour in self._neighbour_topics.items():
            try:
                await link.subscribe(topic, qos=0)
            except SyncError as exc:
                self._log.error("neighbour_subscribe_failed", neighbour=neighbour, error=str(exc))

    # --- incoming: commands and the neighbours' outflow ---

    async def _message_loop(self, link: Link) -> None:
        async for message in link.messages():
            topic = str(message.topic)
            if topic == self.topics.cmd:
                await self._command(link, message)
            elif topic in self._neighbour_topics:
                data = _payload_bytes(message.payload)
                self._inbox.receive(self._neighbour_topics[topic], data, now=self._clock())

    async def _command(self, link: Link, message: aiomqtt.Message) -> None:
        data = _payload_bytes(message.payload)
        verdict = self._processor.process(data)
        self._account(verdict)
        body = dict(verdict.response)
        if verdict.duplicate:
            body["duplicate"] = True
        await self._publish(link, "cmd_response", self.topics.cmd_response, body)
        props = message.properties
        response_topic = getattr(props, "ResponseTopic", None) if props else None
        if link.v5 and isinstance(response_topic, str) and response_topic:
            correlation = getattr(props, "CorrelationData", None)
            await self._publish(
                link,
                "cmd_response",
                response_topic,
                body,
                correlation_data=correlation if isinstance(correlation, bytes) else None,
            )

    def _account(self, verdict: Verdict) -> None:
        now = self._clock()
        command = verdict.command
        if verdict.duplicate:
            self._metrics.duplicates += 1
            self._log.info("command_duplicate", id=command.id if command else None)
            return
        if verdict.code is not None:
            self._metrics.rejected[verdict.code] += 1
            self._events.append(
                (now, EVENT_COMMAND_REJECTED, REJECT_EVENT_PARAM.get(verdict.code, 0))
            )
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
                self._force_state()
