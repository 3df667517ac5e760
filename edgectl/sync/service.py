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

The service is a facade over its streams, under ``{prefix}/{intersection_id}/``:

- ``status`` (QoS 1, retained) — birth, will and death with a durable ``bdseq``
  (:mod:`edgectl.sync.status`); the ``bdseq`` is bumped per connection here.
- ``state`` (QoS 1, retained) — the latest ``publish_state``, on change and at least every
  ``state_interval_s`` (:mod:`edgectl.sync.state`).
- ``events`` / ``telemetry`` (QoS 1, through the SQLite outbox, durable per-stream ``seq``,
  replayed with ``"historical": true``, bounded with ``206 OUTBOX_DROPPED``); every event is
  also kept in the event log for ``edgectl export-events`` (:mod:`edgectl.sync.forward`,
  :mod:`edgectl.sync.outbox`, :mod:`edgectl.sync.eventlog`). A corrupt outbox moved aside at
  start is reported as event 206 with param 0 and in :attr:`SyncMetrics.outbox_recovered_from`.
- ``cmd`` → ``cmd/response`` (:mod:`edgectl.sync.respond` over the
  :mod:`edgectl.sync.processor` pipeline; refusals emit ``201 COMMAND_REJECTED``).
- ``outflow`` out and the neighbours' ``outflow`` in (:mod:`edgectl.sync.neighbours`).

A publish the broker refuses (MQTT 5 PUBACK ≥ 0x80, e.g. an ACL deny) is logged
(``publish_refused``) and counted; such an outbox row is kept and retried on the next
connection. The link reconnects with capped jittered backoff and a fresh client each time.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from pathlib import Path

import structlog

from edgectl.backoff import Backoff
from edgectl.config.model import Neighbour, Outflow
from edgectl.config.settings import MqttSettings
from edgectl.errors import SyncError
from edgectl.sync.clock import utc_now
from edgectl.sync.commands import FUTURE_SKEW_S, Command, CommandHandler, CommandResult
from edgectl.sync.forward import EVENT_OUTBOX_DROPPED, Forwarder, open_event_log
from edgectl.sync.incoming import Incoming
from edgectl.sync.link import BrokerTurns, Link, LinkConfig, open_link, redact_url
from edgectl.sync.neighbours import OutflowStream
from edgectl.sync.outbox import Outbox
from edgectl.sync.outflow import MAX_OUTFLOW_BYTES, NeighbourInbox
from edgectl.sync.processor import CommandProcessor
from edgectl.sync.publish import Publisher, SyncMetrics, Topics, wait_event
from edgectl.sync.respond import CommandStream
from edgectl.sync.signing import Key, read_key_files
from edgectl.sync.state import STATE_VOLATILE_KEYS, StateStream
from edgectl.sync.status import StatusStream

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

PACKET_OVERHEAD = 4096
"""Room above the largest payload we accept for the topic, properties and fixed header."""


class _Stopping(Exception):
    """Internal: ends a session's TaskGroup when the service stops."""


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
        if settings.command_key_file is None and not settings.allow_unsigned_commands:
            # what check-config refuses, refused here too for callers that build the
            # service themselves: an unkeyed junction obeys anyone who can publish
            raise SyncError(
                "no [mqtt] command_key_file: commands would be accepted unsigned "
                "(set allow_unsigned_commands = true on a test bench only)"
            )
        self.settings = settings
        self.topics = Topics(settings.prefix, intersection_id)
        self.intersection_id = intersection_id
        self._clock = clock
        self.started_at = clock()
        self._log = log.bind(intersection=intersection_id)
        self._outbox = Outbox(
            state_dir,
            max_rows=settings.outbox_max_rows,
            max_age_s=settings.outbox_max_age_s,
            max_bytes=settings.outbox_max_bytes,
            # a command id is remembered for as long as its command could be accepted
            command_log_age_s=settings.command_max_age_s + FUTURE_SKEW_S + 60.0,
            now=self.started_at,
        )
        self._metrics = SyncMetrics(bdseq=self._outbox.counter("bdseq"))
        publisher = Publisher(metrics=self._metrics, clock=clock, log=self._log)
        self._forward = Forwarder(
            self._outbox,
            event_log=open_event_log(
                settings, state_dir, intersection_id=intersection_id, now=self.started_at
            ),
            publisher=publisher,
            topics=self.topics,
            metrics=self._metrics,
            clock=clock,
            log=self._log,
        )
        if self._outbox.recovered_from is not None:
            self._metrics.outbox_recovered_from = str(self._outbox.recovered_from)
            # the stored rows were lost with the corrupt file: say so (param 0 = unknown count)
            self._forward.add_events([(self.started_at, EVENT_OUTBOX_DROPPED, 0)])
        self._status = StatusStream(
            publisher=publisher,
            topic=self.topics.status,
            version=version,
            config_digest=config_digest,
            started_at=self.started_at,
        )
        self._state = StateStream(
            publisher=publisher, topic=self.topics.state, interval_s=settings.state_interval_s
        )
        command_keys, outflow_keys = self.read_keys(settings)
        processor = CommandProcessor(
            handler=handler,
            store=self._outbox,
            clock=clock,
            keys=command_keys,
            max_age_s=settings.command_max_age_s,
            max_bytes=settings.max_command_bytes,
            target=intersection_id,
        )
        self._commands = CommandStream(
            processor,
            publisher=publisher,
            response_topic=self.topics.cmd_response,
            root=self.topics.root,
            metrics=self._metrics,
            clock=clock,
            log=self._log,
            add_events=self._forward.add_events,
            request_state=self._state.force,
        )
        self._outflow = OutflowStream(
            outflow=outflow,
            neighbours=neighbours,
            publisher=publisher,
            topics=self.topics,
            clock=clock,
            log=self._log,
            keys=outflow_keys,
        )
        self._incoming = Incoming(
            command_topic=self.topics.cmd,
            commands=self._commands,
            outflow=self._outflow,
            metrics=self._metrics,
            max_commands_per_s=settings.max_commands_per_s,
            log=self._log,
        )
        # lifecycle
        self._stop = asyncio.Event()
        self._stopped = asyncio.Event()
        self._running = False
        self._closed = False
        self._link: Link | None = None
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
        m.neighbour_messages = self._outflow.inbox.results.copy()
        if dropped := self._incoming.dropped["neighbour_messages"]:
            m.neighbour_messages[("*", "rate_limited")] = dropped
        m.outflow_dropped = self._outflow.departures.dropped
        if not self._closed:
            try:
                m.outbox_depth = self._outbox.depth
            except SyncError:
                m.outbox_depth = -1
        return m

    @property
    def max_packet_size(self) -> int:
        """The largest MQTT packet the broker may send us (MQTT 5 ``MaximumPacketSize``): the
        largest message we accept — a command, a neighbour's outflow — plus room for the
        topic, properties and header. A larger one is dropped by the broker, never read."""
        return max(self.settings.max_command_bytes, MAX_OUTFLOW_BYTES) + PACKET_OVERHEAD

    @property
    def version(self) -> str:
        return self._status.version

    @property
    def config_digest(self) -> str:
        return self._status.config_digest

    def publish_state(self, state: Mapping[str, object]) -> None:
        """Latest wins; published retained on change and at least every state_interval_s."""
        self._state.publish(state)

    def add_events(self, events: Sequence[tuple[datetime, int, int]]) -> None:
        """Queue hi-res events ``(utc time, code, param)``; batched every events_batch_s."""
        self._forward.add_events(events)

    def add_telemetry(self, payload: Mapping[str, object]) -> None:
        """Queue one telemetry message (stored at the next batch, then sent via the outbox)."""
        self._forward.add_telemetry(payload)

    def add_departures(self, departures: Sequence[tuple[datetime, int]]) -> None:
        """Queue stop-bar departures ``(utc time, detector)`` for the next ``outflow``
        message; ignored when ``[outflow]`` is off."""
        self._outflow.add(departures)

    def set_config_digest(self, digest: str) -> None:
        """The configuration now running (an accepted reload): the retained birth is published
        again with it while connected, and every later birth carries it."""
        self._status.set_config_digest(digest)

    @staticmethod
    def read_keys(settings: MqttSettings) -> tuple[tuple[Key, ...], tuple[Key, ...]]:
        """The command and outflow keys the files of ``settings`` hold now (see
        :func:`edgectl.sync.signing.read_key_files`)."""
        return read_key_files(settings.command_key_file, settings.outflow_key_file)

    def set_keys(self, command: tuple[Key, ...], outflow: tuple[Key, ...]) -> None:
        """Use these keys from the next message on (a reload re-read the key files: a key
        rotation). Non-blocking; a file that had keys keeps having some (read_keys)."""
        if command:
            self._commands.processor.set_keys(command)
        self._outflow.set_keys(outflow)
        self._log.info(
            "keys_loaded",
            command_key_ids=[k.kid for k in command],
            outflow_key_ids=[k.kid for k in outflow],
        )

    @property
    def inbox(self) -> NeighbourInbox:
        """The configured neighbours' departures (read by the control loop)."""
        return self._outflow.inbox

    async def run(self) -> None:
        """Connect, reconnect, publish and execute commands until cancelled or closed."""
        if self._running:
            raise RuntimeError("SyncService.run() is already running")
        self._running = True
        self._stopped.clear()
        try:
            async with asyncio.TaskGroup() as tg:
                tg.create_task(
                    self._forward.batch_loop(self._stop, self.settings.events_batch_s),
                    name="edgectl[sync:batch]",
                )
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
                self._forward.flush()
            self._stopped.set()

    async def close(self, timeout: float = 3.0) -> None:  # noqa: ASYNC109 - the contract
        """Clean stop: flush buffers, send the outbox as far as ``timeout`` allows, publish
        ``online: false``, disconnect, close the databases. Idempotent."""
        if self._closed:
            return
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        try:
            self._forward.flush()
        except SyncError as exc:
            self._log.error("outbox_flush_failed", error=str(exc))
        link = self._link
        if link is not None and self._running:
            try:
                async with asyncio.timeout(max(deadline - loop.time() - 0.5, 0.1)):
                    await self._forward.drain()
            except TimeoutError:
                self._log.warning("outbox_not_drained_at_close", depth=self._outbox.depth)
            if link.is_connected:
                try:
                    async with asyncio.timeout(max(deadline - loop.time(), 0.2)):
                        await self._status.publish_death(link, self._metrics.bdseq)
                except (TimeoutError, SyncError) as exc:
                    self._log.warning("death_not_published", error=str(exc))
        self._stop.set()
        if self._running:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(max(deadline - loop.time(), 1.0)):
                    await self._stopped.wait()
        self._closed = True
        self._metrics.outbox_depth = self._outbox.depth
        self._forward.close()

    # ------------------------------------------------------------------ the link

    async def _link_loop(self) -> None:
        if not self.settings.url:
            self._log.info("mqtt_disabled")
            await self._stop.wait()
            return
        backoff = Backoff(self.settings.backoff_initial, self.settings.backoff_max)
        brokers = BrokerTurns((self.settings.url, *self.settings.failover_urls))
        while not self._stop.is_set():
            url = brokers.next()
            connects = self._metrics.connects
            began = asyncio.get_running_loop().time()
            try:
                config = LinkConfig.from_settings(
                    self.settings,
                    client_id=f"edgectl-{self.intersection_id}",
                    url=url,
                    max_packet_size=self.max_packet_size,
                )
                await self._session(config, backoff)
            except SyncError as exc:
                self._log.warning("mqtt_link_down", broker=redact_url(url), error=str(exc))
            except Exception:  # noqa: BLE001 - a bug in one session must not end the sync for good
                self._log.exception("sync_session_failed")
            if self._stop.is_set():
                break
            lasted = asyncio.get_running_loop().time() - began
            if brokers.back_off(lasted if self._metrics.connects != connects else None):
                await wait_event(self._stop, backoff.next())

    async def _session(self, config: LinkConfig, backoff: Backoff) -> None:
        # a bdseq is used up once a connection with its will was accepted; a failed attempt
        # leaves it for the next one
        bdseq = self._unused_bdseq or self._outbox.bump("bdseq")
        self._unused_bdseq = bdseq
        self._metrics.bdseq = bdseq
        will = self._status.will(bdseq)
        async with open_link(config, will=will, on_disconnect_error=self._disconnect_error) as link:
            self._unused_bdseq = None
            backoff.reset()
            connected_at = self._clock()
            self._metrics.connects += 1
            self._log.info(
                "mqtt_connected",
                broker=f"{config.address.host}:{config.address.port}",
                bdseq=bdseq,
                protocol=config.protocol.value,
            )
            try:
                await link.subscribe(self.topics.cmd, qos=1)
                await self._outflow.subscribe(link)
                self._link = link
                await self._status.publish_birth(link, bdseq)
                async with asyncio.TaskGroup() as tg:
                    tg.create_task(self._status.loop(link, bdseq), name="edgectl[sync:status]")
                    tg.create_task(
                        self._forward.pump(link, connected_at), name="edgectl[sync:outbox]"
                    )
                    tg.create_task(self._state.loop(link), name="edgectl[sync:state]")
                    tg.create_task(self._incoming.loop(link), name="edgectl[sync:messages]")
                    if self._outflow.outflow is not None:
                        tg.create_task(
                            self._outflow.loop(link, self._stop), name="edgectl[sync:outflow]"
                        )
            except* SyncError as eg:
                raise eg.exceptions[0] from None
            finally:
                self._link = None
                self._metrics.disconnects += 1
                self._forward.session_ended()

    def _disconnect_error(self, exc: Exception) -> None:
        self._log.debug("mqtt_disconnect_error", error=str(exc))

    async def _until_stop(self) -> None:
        await self._stop.wait()
        raise _Stopping
