"""A cabinet device on the field bus, with its own supervised task and health state.

Per control tick the control loop calls :meth:`CabinetDevice.tick`; the device's task reads
the whole input block in one request (detectors, push-buttons, MMU status, channel readback,
counters) and publishes a :class:`DeviceReport`, then waits briefly for the tick's output
frame and writes it with the heartbeat as one request. Failures never end the task: retryable
errors are retried within the tick, repeated failures take the device offline, and an offline
device reconnects with capped, jittered backoff. The loop never waits on a dead device for
longer than its read budget.

After every read (good or failed), every write and every fall offline the device replaces
``device.report``: a frozen :class:`DeviceReport` of plain values — when, what the read
decoded or why it failed, the latest good read, health, the last write, the MMU, the
counters. The control loop reads it; nothing in it changes afterwards.

Health: ``online`` — no failure among the last requests; ``degraded`` — recent failures but
still answering; ``offline`` — disconnected or ``offline_after`` failures in a row.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TypeVar

import structlog

from edgectl.backoff import Backoff
from edgectl.cabinet.channels import ChannelState
from edgectl.cabinet.profile import load_profile
from edgectl.cabinet.registers import (
    HEARTBEAT_MODULO,
    MMU_RESET_MAGIC,
    CabinetMap,
    CabinetSnapshot,
    decode_inputs,
    encode_frame,
)
from edgectl.config.settings import Device, DeviceRole
from edgectl.errors import FatalFieldError, FieldError, RetryableFieldError
from edgectl.field.buses import FieldBuses, open_io
from edgectl.field.report import DeviceReport, DeviceStatsReport, Health
from edgectl.field.transport import RegisterIO
from edgectl.field.url import parse_url

__all__ = [
    "CabinetDevice",
    "DeviceStats",
    "await_written",
]

log = structlog.get_logger("edgectl.field")
_T = TypeVar("_T")


@dataclass(slots=True)
class DeviceStats:
    reads: int = 0
    writes: int = 0
    errors: dict[str, int] = field(default_factory=dict)
    reconnects: int = 0
    last_error: str = ""
    last_latency_s: float = 0.0  # snapshot read → frame written


class CabinetDevice:
    """One field device (detectors and/or outputs) with its supervised task."""

    def __init__(
        self,
        spec: Device,
        cmap: CabinetMap | None = None,
        *,
        io: RegisterIO | None = None,
        buses: FieldBuses | None = None,
        offline_after: int = 5,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.spec = spec
        self.name = spec.name
        self.cmap = cmap or CabinetMap.from_profile(load_profile(spec.profile))
        self.reads_inputs = spec.role in (DeviceRole.CABINET, DeviceRole.DETECTORS)
        self.writes_outputs = spec.role in (DeviceRole.CABINET, DeviceRole.OUTPUTS)
        # a device of zone sensors only (edgectl.field.mapped): it reads, but the control loop
        # neither waits for it nor takes detectors from it; a silent one fails its zones only
        self.zone_sensor = False
        self._io = io or open_io(
            parse_url(spec.url),
            buses=buses if buses is not None else FieldBuses(),
            timeout=spec.timeout,
            gap=spec.inter_request_gap,
            name=spec.name,
        )
        self._clock = clock
        self._offline_after = offline_after
        self._backoff = Backoff(spec.backoff_initial, spec.backoff_max)
        self._recent: deque[bool] = deque(maxlen=20)
        self._consecutive_failures = 0
        self.health = Health.OFFLINE
        self.stats = DeviceStats()
        self.snapshot: CabinetSnapshot | None = None
        self.last_ok: float | None = None  # clock time of the last successful read
        self.last_write_ok: float | None = None
        self._tick = asyncio.Event()
        self._snapshot_ready = asyncio.Event()
        self._frame_ready = asyncio.Event()
        self._pending: list[int] | None = None
        self.frames_submitted = 0  # sequence number of the latest submitted frame
        self.frames_written = 0  # ... of the latest frame the device confirmed written
        self._pending_reset = False
        self._heartbeat = 0
        # tick bookkeeping: which control tick the latest read served, which one the pending
        # frame belongs to (see _serve_tick: a tick that passed without our read is dropped)
        self._ticks = 0
        self._read_tick = 0
        self._frame_tick = 0
        # what the next report says about the latest read and write
        self._writing = False
        self._inputs: CabinetSnapshot | None = None
        self._read_error = ""
        self._write_error = ""
        self._written: tuple[int, ...] = ()
        self._waiters: list[tuple[int, asyncio.Future[DeviceReport]]] = []
        self._idle = asyncio.Event()  # between ticks: nothing of ours on the link
        self._idle.set()
        self.report = DeviceReport(device=self.name)

    # --- the control loop's side -------------------------------------------------------

    def tick(self) -> int:
        """A new control tick: read now (if online). Returns the tick's number."""
        self._ticks += 1
        self._snapshot_ready.clear()
        self._tick.set()
        return self._ticks

    async def wait_snapshot(self) -> bool:
        """Wait (the caller bounds it) until this tick's snapshot is in."""
        if not self.reads_inputs or self.health is Health.OFFLINE:
            return False
        await self._snapshot_ready.wait()
        return True

    async def wait_report(self, tick: int) -> DeviceReport:
        """The first report whose read served ``tick`` or a later one, good or failed (the
        caller bounds the wait). An offline or outputs-only device answers at once with its
        latest report."""
        if self._answers(tick):
            return self.report
        waiter: asyncio.Future[DeviceReport] = asyncio.get_running_loop().create_future()
        entry = (tick, waiter)
        self._waiters.append(entry)
        try:
            return await waiter
        finally:
            self._waiters.remove(entry)

    async def wait_idle(self) -> None:
        """Until the device has done what its latest tick asked (its read, and the frame
        write that follows it): it holds no request on its link (the caller bounds it)."""
        await self._idle.wait()

    def submit(self, frame: Mapping[int, ChannelState]) -> None:
        """The tick's output frame; written with the heartbeat as one request."""
        self._heartbeat = (self._heartbeat + 1) % HEARTBEAT_MODULO
        self._pending = self._encode(frame)
        self.frames_submitted += 1
        self._frame_tick = self._ticks
        self._frame_ready.set()

    def request_mmu_reset(self) -> None:
        self._pending_reset = True

    # --- the device's own task -----------------------------------------------------------

    async def run(self) -> None:
        """Serve ticks forever; never return, never die on an exception."""
        try:
            while True:
                try:
                    if not self._io.connected:
                        self._writing = False  # a failed connect fails the next read
                        await self._connect()
                    await self._serve_tick()
                except FieldError as exc:
                    await self._failed(exc)
                except Exception as exc:  # a bug must not end field I/O for good
                    log.exception("device_task_error", device=self.name)
                    await self._failed(FatalFieldError(f"internal: {exc!r}", device=self.name))
                self._idle.set()
        finally:
            await self._io.close()

    async def close(self) -> None:
        await self._io.close()

    async def _connect(self) -> None:
        self.stats.reconnects += 1
        await self._io.connect()
        log.info("device_connected", device=self.name, url=self.spec.url)

    async def _serve_tick(self) -> None:
        await self._tick.wait()
        self._idle.clear()
        self._tick.clear()
        self._read_tick = self._ticks
        self._writing = False
        if self.reads_inputs:
            snap = await self._read_inputs()
            self.snapshot = self._inputs = snap
            self._read_error = ""
            self.last_ok = snap.t
            self.stats.reads += 1
            self._ok()
            self._publish()
            self._snapshot_ready.set()
        self._writing = True
        if self._pending_reset:
            await self._reset_mmu()
            self._pending_reset = False
            log.warning("mmu_reset_sent", device=self.name)
        if self.writes_outputs:
            try:
                async with asyncio.timeout(self.spec.timeout * 2):
                    await self._frame_ready.wait()
            except TimeoutError:
                return
            self._frame_ready.clear()
            regs_out = self._pending
            seq = self.frames_submitted
            if regs_out is None:
                return
            await self._write_pending(regs_out)
            self.frames_written = seq
            if self._frame_tick > self._read_tick:
                # this frame belongs to a tick that went by without our read (the control
                # loop ran out of read budget and used an older snapshot); that tick's "read
                # now" is stale. Reading for it now would put every later read one tick early
                # and make every tick wait out its whole read budget: wait for the next tick.
                self._tick.clear()
            now = self._clock()
            self.last_write_ok = now
            self._written = tuple(regs_out)
            self._write_error = ""
            self.stats.writes += 1
            if self.snapshot is not None:
                self.stats.last_latency_s = now - self.snapshot.t
            self._ok()
            self._publish()

    # --- what the register map decides (a v2 profile's device overrides these) -----------

    def _encode(self, frame: Mapping[int, ChannelState]) -> list[int]:
        """The frame (and the heartbeat, when it follows the channels) as registers."""
        regs = encode_frame(frame, self.cmap.channel_outputs.count)
        if self.cmap.frame_contiguous:
            regs.append(self._heartbeat)
        return regs

    async def _read_inputs(self) -> CabinetSnapshot:
        """The tick's read: the whole input block in one request, decoded."""
        regs = await self._with_retries(self._read_block)
        return decode_inputs(regs, self.cmap, self._clock())

    async def _write_pending(self, regs: list[int]) -> None:
        """The tick's write: the frame of :meth:`_encode` (retried as one request)."""
        await self._with_retries(lambda: self._write_frame(regs))

    async def _reset_mmu(self) -> None:
        await self._with_retries(
            lambda: self._io.write(self.cmap.mmu_reset.address, [MMU_RESET_MAGIC])
        )

    async def _read_block(self) -> list[int]:
        span = self.cmap.input_span
        return await self._io.read_input(span.address, span.count)

    async def _write_frame(self, regs: list[int]) -> None:
        await self._io.write(self.cmap.channel_outputs.address, regs)
        if not self.cmap.frame_contiguous:
            await self._io.write(self.cmap.heartbeat.address, [self._heartbeat])

    async def _with_retries(self, request: Callable[[], Awaitable[_T]]) -> _T:
        attempt = 0
        while True:
            try:
                return await request()
            except RetryableFieldError as exc:
                attempt += 1
                self._count(exc)
                if attempt > self.spec.retries or not self._io.connected:
                    raise

    def _count(self, exc: FieldError) -> None:
        kind = type(exc).__name__
        self.stats.errors[kind] = self.stats.errors.get(kind, 0) + 1
        self.stats.last_error = str(exc)

    def _ok(self) -> None:
        self._consecutive_failures = 0
        self._recent.append(True)
        self._backoff.reset()
        self._set_health(Health.ONLINE if all(self._recent) else Health.DEGRADED)

    async def _failed(self, exc: FieldError) -> None:
        if not isinstance(exc, RetryableFieldError):
            self._count(exc)
        if self._writing:
            self._write_error = f"{type(exc).__name__}: {exc}"
        else:
            self._inputs = None
            self._read_error = f"{type(exc).__name__}: {exc}"
        self._consecutive_failures += 1
        self._recent.append(False)
        if self._consecutive_failures >= self._offline_after or not self._io.connected:
            self._set_health(Health.OFFLINE)
            await self._io.close()
            self._publish()
            delay = self._backoff.next()
            log.warning(
                "device_offline", device=self.name, error=str(exc), retry_in_s=round(delay, 3)
            )
            await asyncio.sleep(delay)
        else:
            self._set_health(Health.DEGRADED)
            self._publish()
            log.info("poll_failed", device=self.name, error=str(exc))

    def _set_health(self, health: Health) -> None:
        if health is self.health:
            return
        old, self.health = self.health, health
        log.info("device_health", device=self.name, old=old.value, new=health.value)

    # --- the report ------------------------------------------------------------------------

    def _publish(self) -> None:
        """Replace :attr:`report` with what the device knows now; wake who waits for it."""
        stats = self.stats
        self.report = report = DeviceReport(
            device=self.name,
            seq=self.report.seq + 1,
            t=self._clock(),
            tick=self._read_tick,
            health=self.health,
            connected=self._io.connected,
            inputs=self._inputs,
            error=self._read_error,
            snapshot=self.snapshot,
            last_ok=self.last_ok,
            last_write_ok=self.last_write_ok,
            write_error=self._write_error,
            frames_submitted=self.frames_submitted,
            frames_written=self.frames_written,
            written=self._written,
            mmu_reset_pending=self._pending_reset,
            stats=DeviceStatsReport(
                reads=stats.reads,
                writes=stats.writes,
                reconnects=stats.reconnects,
                errors=MappingProxyType(dict(stats.errors)),
                last_error=stats.last_error,
                last_latency_s=stats.last_latency_s,
            ),
        )
        for tick, waiter in self._waiters:
            if not waiter.done() and self._answers(tick):
                waiter.set_result(report)

    def _answers(self, tick: int) -> bool:
        """Whether the latest report is the one a wait for ``tick`` gets (reports are made
        only once a read has ended, so one of tick ``n`` is the end of that tick's read)."""
        return not self.reads_inputs or self.health is Health.OFFLINE or self.report.tick >= tick


async def await_written(devices: Sequence[CabinetDevice], tick_s: float) -> list[str]:
    """Wait until every online device has written the frame last submitted to it, for at
    most twice the slowest one's timeout (plus a tick); returns the names of those that did
    not. A device still writing an older frame when the last one came skips that tick's read
    and waits for the next tick: the ones not done are ticked again every ``tick_s``."""
    final = {d: d.frames_submitted for d in devices if d.health is not Health.OFFLINE}
    loop = asyncio.get_running_loop()
    deadline = loop.time() + max((2.0 * d.spec.timeout for d in final), default=0.0) + tick_s
    while True:
        left = [
            d
            for d, seq in final.items()
            if d.frames_written < seq and d.health is not Health.OFFLINE
        ]
        if not left or loop.time() >= deadline:
            return sorted(d.name for d in left)
        await asyncio.sleep(tick_s)
        for d in left:
            d.tick()
