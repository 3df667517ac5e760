"""A cabinet device on the field bus, with its own supervised task and health state.

Per control tick the control loop calls :meth:`CabinetDevice.tick`; the device's task reads
the whole input block in one request (detectors, push-buttons, MMU status, channel readback,
counters), publishes a :class:`CabinetSnapshot`, then waits briefly for the tick's output
frame and writes it with the heartbeat as one request. Failures never end the task: retryable
errors are retried within the tick, repeated failures take the device offline, and an offline
device reconnects with capped, jittered backoff. The loop never waits on a dead device for
longer than its read budget.

Health: ``online`` — no failure among the last requests; ``degraded`` — recent failures but
still answering; ``offline`` — disconnected or ``offline_after`` failures in a row.
"""

from __future__ import annotations

import asyncio
import enum
import time
from collections import deque
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TypeVar

import structlog

from edgectl.backoff import Backoff
from edgectl.cabinet.channels import ChannelState
from edgectl.cabinet.profile import DeviceProfile, load_profile
from edgectl.config.settings import Device, DeviceRole
from edgectl.errors import FatalFieldError, FieldError, RetryableFieldError
from edgectl.field.transport import RegisterIO, open_io
from edgectl.field.url import parse_url

log = structlog.get_logger("edgectl.field")
_T = TypeVar("_T")

HEARTBEAT_MODULO = 0x10000
MMU_RESET_MAGIC = 0xA5A5


class Health(enum.StrEnum):
    ONLINE = "online"
    DEGRADED = "degraded"
    OFFLINE = "offline"


@dataclass(frozen=True, slots=True)
class Block:
    address: int
    count: int


@dataclass(frozen=True, slots=True)
class CabinetMap:
    """Addresses of the registers the daemon uses (from the device profile)."""

    status: Block = Block(0, 1)
    mmu_fault: Block = Block(1, 1)
    mmu_fault_channels: Block = Block(2, 2)
    heartbeat_echo: Block = Block(4, 1)
    detector_presence: Block = Block(5, 4)
    ped_buttons: Block = Block(9, 1)
    channel_readback: Block = Block(10, 32)
    detector_counts: Block = Block(42, 64)
    uptime_s: Block = Block(106, 2)
    power_cycles: Block = Block(108, 1)
    channel_outputs: Block = Block(0, 32)  # holding
    heartbeat: Block = Block(32, 1)  # holding
    mmu_reset: Block = Block(33, 1)  # holding

    @classmethod
    def from_profile(cls, profile: DeviceProfile) -> CabinetMap:
        """The addresses named in a device profile (``edgectl.cabinet.profile``)."""
        regs = profile.registers

        def inp(name: str) -> Block:
            spec = regs.input_register(name)
            return Block(spec.address, spec.count)

        def hold(name: str) -> Block:
            spec = regs.holding_register(name)
            return Block(spec.address, spec.count)

        return cls(
            status=inp("status"),
            mmu_fault=inp("mmu_fault"),
            mmu_fault_channels=inp("mmu_fault_channels"),
            heartbeat_echo=inp("heartbeat_echo"),
            detector_presence=inp("detector_presence"),
            ped_buttons=inp("ped_buttons"),
            channel_readback=inp("channel_readback"),
            detector_counts=inp("detector_counts"),
            uptime_s=inp("uptime_s"),
            power_cycles=inp("power_cycles"),
            channel_outputs=hold("channel_outputs"),
            heartbeat=hold("heartbeat"),
            mmu_reset=hold("mmu_reset"),
        )

    @property
    def input_span(self) -> Block:
        blocks = (
            self.status,
            self.mmu_fault,
            self.mmu_fault_channels,
            self.heartbeat_echo,
            self.detector_presence,
            self.ped_buttons,
            self.channel_readback,
            self.detector_counts,
            self.uptime_s,
            self.power_cycles,
        )
        lo = min(b.address for b in blocks)
        hi = max(b.address + b.count for b in blocks)
        return Block(lo, hi - lo)

    @property
    def frame_contiguous(self) -> bool:
        end = self.channel_outputs.address + self.channel_outputs.count
        return self.heartbeat.address == end


@dataclass(frozen=True, slots=True)
class CabinetSnapshot:
    """One decoded read of the cabinet's input block."""

    t: float
    presence: frozenset[int]
    ped_buttons: frozenset[int]
    readback: Mapping[int, ChannelState]
    mmu_tripped: bool
    cabinet_flash: bool
    in_control: bool
    mmu_fault: int
    mmu_fault_channels: frozenset[int]
    heartbeat_echo: int
    counts: tuple[int, ...]
    uptime_s: int
    power_cycles: int


def _bits(words: list[int]) -> frozenset[int]:
    return frozenset(
        w * 16 + b + 1 for w, word in enumerate(words) for b in range(16) if word >> b & 1
    )


def decode_inputs(regs: list[int], cmap: CabinetMap, t: float) -> CabinetSnapshot:
    """Decode the input block; raise :class:`FrameError`-free values only (clamped)."""
    base = cmap.input_span.address

    def take(b: Block) -> list[int]:
        return regs[b.address - base : b.address - base + b.count]

    status = take(cmap.status)[0]
    readback: dict[int, ChannelState] = {}
    for i, code in enumerate(take(cmap.channel_readback)):
        try:
            readback[i + 1] = ChannelState(code)
        except ValueError:
            readback[i + 1] = ChannelState.OFF  # unknown code: treat as dark, caught by compare
    up = take(cmap.uptime_s)
    return CabinetSnapshot(
        t=t,
        presence=_bits(take(cmap.detector_presence)),
        ped_buttons=_bits(take(cmap.ped_buttons)),
        readback=readback,
        mmu_tripped=bool(status & 1),
        cabinet_flash=bool(status & 2),
        in_control=bool(status & 4),
        mmu_fault=take(cmap.mmu_fault)[0],
        mmu_fault_channels=_bits(take(cmap.mmu_fault_channels)),
        heartbeat_echo=take(cmap.heartbeat_echo)[0],
        counts=tuple(take(cmap.detector_counts)),
        uptime_s=up[0] | (up[1] << 16) if len(up) == 2 else up[0],
        power_cycles=take(cmap.power_cycles)[0],
    )


def encode_frame(frame: Mapping[int, ChannelState], channels: int) -> list[int]:
    return [int(frame.get(ch, ChannelState.OFF)) for ch in range(1, channels + 1)]


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
        offline_after: int = 5,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.spec = spec
        self.name = spec.name
        self.cmap = cmap or CabinetMap.from_profile(load_profile(spec.profile))
        self.reads_inputs = spec.role in (DeviceRole.CABINET, DeviceRole.DETECTORS)
        self.writes_outputs = spec.role in (DeviceRole.CABINET, DeviceRole.OUTPUTS)
        self._io = io or open_io(
            parse_url(spec.url), timeout=spec.timeout, gap=spec.inter_request_gap, name=spec.name
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
        self.on_health_change: Callable[[CabinetDevice, Health, Health], None] | None = None

    # --- the control loop's side -------------------------------------------------------

    def tick(self) -> None:
        """A new control tick: read now (if online)."""
        self._ticks += 1
        self._snapshot_ready.clear()
        self._tick.set()

    async def wait_snapshot(self) -> bool:
        """Wait (the caller bounds it) until this tick's snapshot is in."""
        if not self.reads_inputs or self.health is Health.OFFLINE:
            return False
        await self._snapshot_ready.wait()
        return True

    def submit(self, frame: Mapping[int, ChannelState]) -> None:
        """The tick's output frame; written with the heartbeat as one request."""
        self._heartbeat = (self._heartbeat + 1) % HEARTBEAT_MODULO
        regs = encode_frame(frame, self.cmap.channel_outputs.count)
        if self.cmap.frame_contiguous:
            regs.append(self._heartbeat)
        self._pending = regs
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
                        await self._connect()
                    await self._serve_tick()
                except FieldError as exc:
                    await self._failed(exc)
                except Exception as exc:  # a bug must not end field I/O for good
                    log.exception("device_task_error", device=self.name)
                    await self._failed(FatalFieldError(f"internal: {exc!r}", device=self.name))
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
        self._tick.clear()
        self._read_tick = self._ticks
        if self.reads_inputs:
            regs = await self._with_retries(self._read_block)
            snap = decode_inputs(regs, self.cmap, self._clock())
            self.snapshot = snap
            self.last_ok = snap.t
            self.stats.reads += 1
            self._ok()
            self._snapshot_ready.set()
        if self._pending_reset:
            await self._with_retries(
                lambda: self._io.write(self.cmap.mmu_reset.address, [MMU_RESET_MAGIC])
            )
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
            await self._with_retries(lambda: self._write_frame(regs_out))
            self.frames_written = seq
            if self._frame_tick > self._read_tick:
                # this frame belongs to a tick that went by without our read (the control
                # loop ran out of read budget and used an older snapshot); that tick's "read
                # now" is stale. Reading for it now would put every later read one tick early
                # and make every tick wait out its whole read budget: wait for the next tick.
                self._tick.clear()
            now = self._clock()
            self.last_write_ok = now
            self.stats.writes += 1
            if self.snapshot is not None:
                self.stats.last_latency_s = now - self.snapshot.t
            self._ok()

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
        self._consecutive_failures += 1
        self._recent.append(False)
        if self._consecutive_failures >= self._offline_after or not self._io.connected:
            self._set_health(Health.OFFLINE)
            await self._io.close()
            delay = self._backoff.next()
            log.warning(
                "device_offline", device=self.name, error=str(exc), retry_in_s=round(delay, 3)
            )
            await asyncio.sleep(delay)
        else:
            self._set_health(Health.DEGRADED)
            log.info("poll_failed", device=self.name, error=str(exc))

    def _set_health(self, health: Health) -> None:
        if health is self.health:
            return
        old, self.health = self.health, health
        log.info("device_health", device=self.name, old=old.value, new=health.value)
        if self.on_health_change is not None:
            self.on_health_change(self, old, health)


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
