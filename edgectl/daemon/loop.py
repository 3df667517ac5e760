"""The daemon: the composition root that feeds the pure control core from the field.

One root :class:`asyncio.TaskGroup` holds every task, each named:

- ``edgectl[poll:NAME]`` — one per field device (:class:`~edgectl.field.device.CabinetDevice`);
- ``edgectl[control]`` — the 10 Hz control loop below;
- ``edgectl[sync]`` — the MQTT link (when configured);
- ``edgectl[stop]`` — waits for SIGTERM/SIGINT and winds everything down safely.

A control tick, on a fixed 0.1 s grid (no drift; a late tick is counted and logged, and the
next one goes back on the grid — missed slots are not run in a burst):

1. ask every device for its input block and wait for the answers within a read budget;
2. turn them into :class:`~edgectl.control.types.Inputs` — a detector device silent for longer
   than ``field.detector_loss_s`` fails its detectors (constant calls, the NTCIP fail-safe);
3. ``Controller.step`` — the strategy's requests, the engine, the software conflict monitor;
4. hand the frame to the output devices (written with the heartbeat as one request);
5. compare the readback of the previous frame; watch output loss and the MMU; feed the
   watchdog, the metrics and the MQTT link.

Neighbour coordination (``[outflow]``, ``[[neighbours]]``, :mod:`edgectl.sync.outflow`): after
a tick, the falling edges of the published stop-bar detectors (not failed ones) go to the
sync service as departures stamped with the tick's wall time. Before a tick, the control loop
turns the neighbours' departures the sync service has received into projected arrivals in
controller time and hands them to the controller (``Controller.expect``) — on this side, so
the strategy never changes under a running tick — whenever a message brought new departures,
and every second anyway so that the past ones age out.

Output device lost, readback mismatch, MMU tripped or cabinet flash → the engine goes to
flash with an alarm. When the output device is back and healthy, and an MMU latch was caused
by the loss of communication (watchdog or power cycle, never a conflict), the daemon resets
it and leaves flash through the engine's all-red start-up sequence.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import signal
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import structlog

from edgectl import __version__
from edgectl.cabinet.channels import ChannelState
from edgectl.config.model import DaemonConfig, DetectorType, Mode, ScheduleEntry
from edgectl.config.settings import Device, DeviceRole
from edgectl.control.controller import Controller
from edgectl.control.telemetry import TelemetryAggregator
from edgectl.control.types import (
    Directive,
    EnterFlash,
    EventCode,
    ExitFlash,
    FlashReason,
    Inputs,
    OperatingState,
    Outputs,
    Requests,
    SetMode,
    SetPlan,
)
from edgectl.field.device import CabinetDevice, CabinetSnapshot, Health, await_written

log = structlog.get_logger("edgectl.daemon")

READBACK_MISMATCH_TICKS = 3
SCHEDULE_CHECK_TICKS = 100  # the time-of-day schedule is looked at every 10 s
OUTPUT_LOSS_S = 1.0
RECOVERY_HEALTHY_S = 1.0
MMU_AUTO_RESET_FAULTS = frozenset({4, 5})  # watchdog, power cycle: caused by the link, not traffic
MMU_RESET_INTERVAL_S = 3.0
LATENCY_SUMMARY_TICKS = 3000  # a tick_latency_summary log line every 5 min at 10 Hz
STATUS_REFRESH_TICKS = 50  # STATUS= on every change, and every 5 s anyway
NEIGHBOUR_REFRESH_TICKS = 10  # projected arrivals re-handed every 1 s (past ones age out)

#: Test hook (tests/ops_daemon): block the event loop when the controller clock reaches
#: ``EDGECTL_TEST_WEDGE_AFTER_S`` (it starts at READY), for ``EDGECTL_TEST_WEDGE_FOR_S`` seconds
#: (default 10), so a test can prove that ``WATCHDOG=1`` stops when the loop wedges. Read
#: only by the control loop.
TEST_WEDGE_AFTER_ENV = "EDGECTL_TEST_WEDGE_AFTER_S"
TEST_WEDGE_FOR_ENV = "EDGECTL_TEST_WEDGE_FOR_S"


def _test_wedge() -> tuple[float | None, float]:
    try:
        after = float(os.environ[TEST_WEDGE_AFTER_ENV])
        wedge_for = float(os.environ.get(TEST_WEDGE_FOR_ENV, "10"))
    except (KeyError, ValueError):
        return None, 0.0
    return after, wedge_for


_LOGGED_EVENTS = frozenset(
    {
        EventCode.UNIT_FLASH_STATUS_CHANGE,
        EventCode.MONITOR_VIOLATION,
        EventCode.MODE_CHANGE,
        EventCode.COORD_PATTERN_CHANGE,
        EventCode.PREEMPT_CALL_ON,
        EventCode.PREEMPT_EXIT,
    }
)


def outflow_detectors(config: DaemonConfig) -> frozenset[int]:
    """The detectors whose departures this junction publishes (none when ``[outflow]`` is
    off): the configured list, or every stop-bar detector."""
    if not config.outflow.enabled:
        return frozenset()
    if config.outflow.detectors:
        return frozenset(config.outflow.detectors)
    return frozenset(d.id for d in config.detectors if d.type is DetectorType.STOP_BAR)


def stop_bar_departures(
    out: Outputs, detectors: frozenset[int], at: datetime
) -> list[tuple[datetime, int]]:
    """A tick's departures ``(at, detector)``: the falling edges of ``detectors``. A failed
    detector's edges are not vehicles (its card went silent and took its presence with it)."""
    edges = [
        ev.param for ev in out.events if ev.code == EventCode.DETECTOR_OFF and ev.param in detectors
    ]
    if not edges:
        return []
    failed = {d.id for d in out.detectors if d.failed}
    return [(at, det) for det in edges if det not in failed]


def config_digest(config: DaemonConfig) -> str:
    return hashlib.sha256(config.model_dump_json().encode()).hexdigest()[:16]


@dataclass(slots=True)
class OperatorRequests:
    """Requests placed by commands, each with an expiry on the controller clock."""

    hold: dict[int, float] = field(default_factory=dict)
    omit: dict[int, float] = field(default_factory=dict)
    force_off: dict[int, float] = field(default_factory=dict)
    calls: set[int] = field(default_factory=set)
    ped_calls: set[int] = field(default_factory=set)

    def take(self, t: float) -> Requests:
        for table in (self.hold, self.omit, self.force_off):
            for phase in [p for p, until in table.items() if until <= t]:
                del table[phase]
        req = Requests(
            calls=frozenset(self.calls),
            ped_calls=frozenset(self.ped_calls),
            hold=frozenset(self.hold),
            omit=frozenset(self.omit),
            force_off=frozenset(self.force_off),
        )
        self.calls.clear()
        self.ped_calls.clear()
        return req


@dataclass(slots=True)
class LinkWatch:
    """Failure bookkeeping of the field side, per tick."""

    mismatch_ticks: int = 0
    output_fault: str = ""  # why the daemon put the junction into flash ("" = none)
    healthy_since: float | None = None
    last_mmu_reset: float = -1e9
    prev_frames: deque[dict[int, ChannelState]] = field(default_factory=lambda: deque(maxlen=2))
    readback_t: float | None = None  # time of the snapshot the readback was last checked on
    power_cycles: int | None = None


@dataclass(slots=True)
class DeliveryClock:
    """The controller's clock: it advances only while frames reach the cabinet on time.

    The engine times every interval in ticks from the moment it decides it; drivers see an
    interval from the moment the cabinet *receives* its frame. If the frame that starts a
    yellow arrives late (a retried write) and the next one on time, the yellow shown is
    shorter than the engine counted. So a frame delivered later than the link's usual latency
    (the minimum over recent frames) plus ``threshold`` — or not yet delivered — stalls the
    clock for a tick: the sequence shifts and every interval shown lasts at least as long as
    the engine timed it. A stall streak is capped (``max_stall``); by then a link that stopped
    delivering has been declared lost and the junction is in flash.
    """

    tick: float
    threshold: float = 0.02
    max_stall: int = 10
    ticks: int = 0
    stalls: int = 0
    _streak: int = 0
    _latencies: deque[float] = field(default_factory=lambda: deque(maxlen=50))

    @property
    def t(self) -> float:
        return round(self.ticks * self.tick, 3)

    def advance(self, slots: int, latency: float | None) -> float:
        """Move on by ``slots`` ticks unless the last frame (``latency`` s to deliver, ``inf``
        when not delivered, ``None`` when there was nothing to deliver) was late."""
        late = False
        if latency is not None:
            baseline = min(self._latencies, default=latency)
            late = latency > baseline + self.threshold
            if latency != float("inf"):
                self._latencies.append(latency)
        if late and self._streak < self.max_stall:
            self._streak += 1
            self.stalls += 1
            return self.t
        if late:
            self._latencies.clear()  # the link got slower for good: a new baseline
        self._streak = 0
        self.ticks += slots
        return self.t


@dataclass(slots=True)
class LatencyHistogram:
    """Field latency (detector frame read → output frame written) in 0.1 ms bins up to 100 ms.

    O(1) per sample and bounded memory, so the control loop can afford it every tick; the
    quantiles are exact to the bin width. Logged as ``tick_latency_summary`` every
    ``LATENCY_SUMMARY_TICKS`` ticks and at exit (what ``bench/daemon_bench.py`` reads).
    """

    bin_s: float = 0.0001
    bins: list[int] = field(default_factory=lambda: [0] * 1001)  # last bin: ≥ 100 ms
    count: int = 0
    max_s: float = 0.0
    sum_s: float = 0.0

    def add(self, seconds: float) -> None:
        i = min(int(seconds / self.bin_s), len(self.bins) - 1)
        self.bins[max(i, 0)] += 1
        self.count += 1
        self.sum_s += seconds
        self.max_s = max(self.max_s, seconds)

    def quantile(self, q: float) -> float:
        """Upper edge of the bin holding the ``q`` quantile (0 when empty)."""
        if self.count == 0:
            return 0.0
        rank = max(1, int(q * self.count + 0.999999))
        seen = 0
        for i, n in enumerate(self.bins):
            seen += n
            if seen >= rank:
                return min((i + 1) * self.bin_s, self.max_s)
        return self.max_s

    def summary(self) -> dict[str, float | int]:
        mean = self.sum_s / self.count if self.count else 0.0
        return {
            "n": self.count,
            "p50_ms": round(self.quantile(0.5) * 1000, 2),
            "p99_ms": round(self.quantile(0.99) * 1000, 2),
            "max_ms": round(self.max_s * 1000, 2),
            "mean_ms": round(mean * 1000, 3),
        }


class Daemon:
    """``edgectl run``."""

    def __init__(
        self,
        config: DaemonConfig,
        *,
        config_path: Path | None = None,
        devices: list[CabinetDevice] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.config = config
        self.config_path = config_path
        self._clock = clock
        self.controller = Controller(config)
        self.devices = (
            devices if devices is not None else [CabinetDevice(d) for d in config.field.devices]
        )
        self.readers = [d for d in self.devices if d.reads_inputs]
        self.writers = [d for d in self.devices if d.writes_outputs]
        self.operator = OperatorRequests()
        self.directives: deque[Directive] = deque()
        self.link = LinkWatch()
        self.telemetry = TelemetryAggregator(config, tick=config.field.tick)
        self.started_at = datetime.now(UTC)
        self.ticks = 0
        self.late_ticks = 0
        self.last: Outputs | None = None
        self.ready = False
        self._stop = asyncio.Event()
        self._stopped = asyncio.Event()
        self._reload_requested = False
        self._pending_config: DaemonConfig | None = None
        # SIGHUP re-reads the file through this (``edgectl run`` re-applies its command-line
        # overrides in it); None: ``load_config(config_path)``
        self.config_loader: Callable[[], DaemonConfig] | None = None
        self._last_status = ""
        self.hooks: list[Callable[[Daemon, Outputs], None]] = []  # after every tick
        self.on_stop: list[Callable[[], Any]] = []
        self.sync: Any = None  # edgectl.sync.service.SyncService when MQTT is configured
        self.metrics: Any = None
        self.notifier: Any = None
        self._last_state_key: tuple[object, ...] | None = None
        self._last_telemetry_t = 0.0
        self._stale: set[str] = set()  # reader devices whose detectors are failed
        self._schedule_entry: ScheduleEntry | None = None
        self.clock = DeliveryClock(config.field.tick)
        self._submitted_at: float | None = None  # when the last frame went to the devices
        self._tick_wall = self.started_at
        self.latency = LatencyHistogram()
        self._writes_seen: dict[str, int] = {}
        self._outflow_detectors = outflow_detectors(config)
        self._neighbours_fed: tuple[int, int] | None = None  # (inbox version, tick)

    # --- lifecycle ---------------------------------------------------------------------

    def request_stop(self) -> None:
        self._stop.set()

    def request_reload(self) -> None:
        self._reload_requested = True

    async def run(self) -> int:
        loop = asyncio.get_running_loop()
        for sig, handler in (
            (signal.SIGTERM, self.request_stop),
            (signal.SIGINT, self.request_stop),
            (signal.SIGHUP, self.request_reload),
        ):
            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                loop.add_signal_handler(sig, handler)
        log.info(
            "daemon_start",
            version=__version__,
            intersection=self.config.intersection.id,
            devices=[d.name for d in self.devices],
            mode=self.controller.mode.value,
        )
        try:
            async with asyncio.TaskGroup() as tg:
                poll_tasks = [
                    tg.create_task(d.run(), name=f"edgectl[poll:{d.name}]") for d in self.devices
                ]
                sync_task = None
                if self.sync is not None:
                    sync_task = tg.create_task(self.sync.run(), name="edgectl[sync]")
                control = tg.create_task(self._control_loop(), name="edgectl[control]")
                await control
                for task in poll_tasks:
                    task.cancel()
                if self.sync is not None:
                    with contextlib.suppress(Exception):
                        await self.sync.close(timeout=3.0)
                if sync_task is not None:
                    sync_task.cancel()
        finally:
            for d in self.devices:
                with contextlib.suppress(Exception):
                    await d.close()
            for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
                with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                    loop.remove_signal_handler(sig)
            log.info("tick_latency_summary", final=True, **self.latency.summary())
            log.info("daemon_stopped", ticks=self.ticks, late_ticks=self.late_ticks)
        return 0

    # --- the control loop --------------------------------------------------------------

    async def _control_loop(self) -> None:
        loop = asyncio.get_running_loop()
        tick = self.config.field.tick
        read_budget = min(0.06, tick * 0.6)
        t0 = loop.time()
        n = 0
        stopping_since: float | None = None
        wedge_at, wedge_for = _test_wedge()
        while True:
            if wedge_at is not None and self.clock.t >= wedge_at:
                wedge_at = None
                log.warning("test_wedge", seconds=wedge_for)
                time.sleep(wedge_for)  # noqa: ASYNC251 - the test hook: wedge the event loop
            target = t0 + n * tick
            delay = target - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            started = loop.time()
            late = started - target
            skipped = 0
            if late > tick / 2:
                self.late_ticks += 1
                skipped = int(late // tick)
                log.warning("late_tick", tick=n, late_ms=round(late * 1000, 1), skipped=skipped)
                n += skipped
            stalls = self.clock.stalls
            if self.ready:
                t = self.clock.advance(1 + skipped, self._delivery_latency())
            else:
                # the start-up sequence (flash, then all-red) is timed from the moment the
                # field answers: an unreachable cabinet must not shorten what drivers see
                t = self.clock.t
            if self.clock.stalls != stalls:
                log.info("frame_late_clock_held", t=t, stalls=self.clock.stalls)
            self._tick_wall = datetime.now(UTC)
            for d in self.devices:
                d.tick()
            waiting = [d.wait_snapshot() for d in self.readers if d.health is not Health.OFFLINE]
            if waiting:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(read_budget):
                        await asyncio.gather(*waiting)
            if self._stop.is_set() and stopping_since is None:
                stopping_since = t
                log.info("shutdown_begin", t=t)
                self.directives.append(EnterFlash(FlashReason.COMMAND, "shutdown"))
                if self.notifier is not None:
                    self.notifier.stopping()
            if self._reload_requested:
                self._reload_requested = False
                self._reload()
            if self.ticks % SCHEDULE_CHECK_TICKS == 0:
                self.follow_schedule(datetime.now().astimezone())
            self._feed_neighbours(t)
            inputs = self._inputs(t)
            out = self.controller.step(t, inputs)
            frame = out.frame
            self._submitted_at = None
            for d in self.writers:
                if d.health is not Health.OFFLINE:
                    d.submit(frame)
                    self._submitted_at = self._clock()
            self.link.prev_frames.append(frame)
            self._watch_field(t, out)
            self._record_latency()
            self._after_tick(t, out, loop.time() - started, late > tick / 2)
            self.ticks += 1
            n += 1
            if stopping_since is not None and (
                out.state is OperatingState.FLASH or t - stopping_since > self.handover_limit_s()
            ):
                # the flash frame has been handed over: wait (bounded) until every output
                # device online has written it; a slow link (a serial line under load) may
                # still be busy with the previous tick's frame
                unconfirmed = await await_written(self.writers, tick)
                if unconfirmed:
                    log.warning("shutdown_frame_unconfirmed", devices=unconfirmed)
                return

    def _record_latency(self) -> None:
        """Sample each output device's latest read → write latency once per write."""
        for d in self.writers:
            writes = d.stats.writes
            if writes != self._writes_seen.get(d.name, 0):
                self._writes_seen[d.name] = writes
                self.latency.add(d.stats.last_latency_s)
        if self.ticks and self.ticks % LATENCY_SUMMARY_TICKS == 0:
            log.info("tick_latency_summary", final=False, **self.latency.summary())

    def _delivery_latency(self) -> float | None:
        """How long the last frame took to reach the output devices (``inf``: not yet)."""
        if any(d.health is Health.OFFLINE and d.last_write_ok is not None for d in self.writers):
            # an output link dropped (e.g. the Modbus client closed it after a few lost
            # answers): nothing is delivered, so hold the clock as for a late frame — capped
            # at max_stall, by when the output-loss rule (no write for 1 s) has flashed
            return float("inf")
        if self._submitted_at is None:
            return None
        worst: float | None = None
        for d in self.writers:
            if d.health is Health.OFFLINE:
                continue
            done = d.last_write_ok
            latency = (
                float("inf")
                if done is None or done < self._submitted_at
                else done - self._submitted_at
            )
            worst = latency if worst is None else max(worst, latency)
        return worst

    def follow_schedule(self, local_now: datetime) -> None:
        """Time-of-day plans: act when the entry in force changes (and at start-up), so an
        operator's ``set_plan`` holds until the schedule's next boundary."""
        from edgectl.control.schedule import entry_in_force

        entry = entry_in_force(self.config.control.schedule, local_now)
        if entry is None or entry == self._schedule_entry:
            return
        self._schedule_entry = entry
        plan = self.config.plan(entry.plan)
        if plan.id != self.controller.plan.id:
            self.directives.append(SetPlan(plan))
        mode = entry.mode
        if mode in (Mode.FIXED, Mode.COORDINATED) and (
            plan.coordination is None or plan.coordination.cycle <= 0
        ):
            log.error("schedule_mode_refused", at=entry.at, mode=mode.value, plan=plan.id)
            mode = None
        if mode is not None and mode is not self.controller.mode:
            self.directives.append(SetMode(mode))
        log.info("schedule_entry", at=entry.at, plan=plan.id, mode=mode.value if mode else None)

    def handover_limit_s(self) -> float:
        """Longest a safe hand-over to flash can take: a green that just started must run its
        minimum (or walk + pedestrian clearance), then yellow and red clearance."""
        plan = self.controller.plan
        worst = 0.0
        for timing in plan.timing.values():
            green = max(timing.min_green, timing.walk + timing.ped_clear)
            worst = max(worst, green + timing.yellow + timing.red_clear)
        return worst + 2.0

    # --- neighbours ----------------------------------------------------------------------

    def _feed_neighbours(self, t: float) -> None:
        """Hand the neighbours' projected arrivals to the controller (see the docstring)."""
        inbox = getattr(self.sync, "inbox", None)
        if inbox is None or not inbox.phases:
            return
        fed = self._neighbours_fed
        if (
            fed is not None
            and fed[0] == inbox.version
            and self.ticks - fed[1] < NEIGHBOUR_REFRESH_TICKS
        ):
            return
        self._neighbours_fed = (inbox.version, self.ticks)
        projected = inbox.projections(wall_now=self._tick_wall, controller_now=t)
        for phase, arrivals in projected.items():
            self.controller.expect(phase, arrivals)

    # --- inputs --------------------------------------------------------------------------

    def _inputs(self, t: float) -> Inputs:
        now = self._clock()
        presence: set[int] = set()
        peds: set[int] = set()
        failed: set[int] = set()
        all_detectors = {d.id for d in self.config.detectors}
        for d in self.readers:
            snap = d.snapshot
            fresh = d.last_ok is not None and now - d.last_ok <= self.config.field.detector_loss_s
            if snap is None or not fresh:
                if self.ready or d.last_ok is not None:
                    failed |= all_detectors
                    if d.name not in self._stale:
                        self._stale.add(d.name)
                        silent = now - d.last_ok if d.last_ok is not None else None
                        log.error(
                            "detectors_failed",
                            device=d.name,
                            detectors=sorted(all_detectors),
                            silent_for_s=None if silent is None else round(silent, 2),
                            t=t,
                        )
                continue
            if d.name in self._stale:
                self._stale.discard(d.name)
                log.warning("detectors_restored", device=d.name, t=t)
            presence |= snap.presence
            peds |= snap.ped_buttons
        directives: list[Directive] = []
        while self.directives:
            directives.append(self.directives.popleft())
        return Inputs(
            presence=frozenset(presence & all_detectors),
            failed_detectors=frozenset(failed),
            ped_buttons=frozenset(peds),
            requests=self.operator.take(t),
            directives=tuple(directives),
        )

    # --- field supervision ---------------------------------------------------------------

    def _output_snapshot(self) -> CabinetSnapshot | None:
        for d in self.writers:
            if d.snapshot is not None:
                return d.snapshot
        return None

    def _watch_field(self, t: float, out: Outputs) -> None:
        """Output loss, readback, MMU and recovery; adds flash directives for the next tick."""
        now = self._clock()
        lost = [
            d
            for d in self.writers
            if (d.last_write_ok is not None or self.ready)
            # OFFLINE alone is not a loss: a link that reconnects within OUTPUT_LOSS_S (the
            # clock is held meanwhile, see _delivery_latency) must not flash the junction
            and (d.last_write_ok is None or now - d.last_write_ok > OUTPUT_LOSS_S)
        ]
        snap = self._output_snapshot()
        fault = ""
        if lost:
            fault = "output device lost: " + ",".join(d.name for d in lost)
        elif snap is not None and now - snap.t <= OUTPUT_LOSS_S:
            if snap.mmu_tripped:
                fault = f"mmu tripped (fault {snap.mmu_fault})"
            elif snap.cabinet_flash and out.state in (
                OperatingState.NORMAL,
                OperatingState.PREEMPT,
            ):
                fault = "cabinet in flash"
            elif self.link.power_cycles is not None and snap.power_cycles != self.link.power_cycles:
                fault = "cabinet power cycled"
            else:
                fault = self._check_readback(snap, out)
            self.link.power_cycles = snap.power_cycles
        if fault:
            self.link.healthy_since = None
            if not self.link.output_fault:
                self.link.output_fault = fault
                reason = FlashReason.MMU if fault.startswith("mmu") else FlashReason.OUTPUT_LOST
                log.error("output_fault", reason=fault, t=t)
                self.directives.append(EnterFlash(reason, fault))
            self._maybe_reset_mmu(now, snap)
            return
        if not self.link.output_fault:
            return
        # recovering: healthy I/O for a while, then leave flash through all-red
        if self.link.healthy_since is None:
            self.link.healthy_since = now
        elif (
            now - self.link.healthy_since >= RECOVERY_HEALTHY_S
            and out.state is OperatingState.FLASH
        ):
            log.warning("output_recovered", was=self.link.output_fault, t=t)
            self.link.output_fault = ""
            self.link.mismatch_ticks = 0
            self.directives.append(ExitFlash())

    def _maybe_reset_mmu(self, now: float, snap: CabinetSnapshot | None) -> None:
        if snap is None or not snap.mmu_tripped or snap.mmu_fault not in MMU_AUTO_RESET_FAULTS:
            return
        if any(d.health is Health.OFFLINE for d in self.writers):
            return
        if now - self.link.last_mmu_reset < MMU_RESET_INTERVAL_S:
            return
        self.link.last_mmu_reset = now
        log.warning("mmu_auto_reset", fault=snap.mmu_fault)
        for d in self.writers:
            d.request_mmu_reset()

    def _check_readback(self, snap: CabinetSnapshot, out: Outputs) -> str:
        if snap.t == self.link.readback_t:
            # no read since the last check (reads failing): this snapshot predates the frames
            # written since, so comparing it again would count a mismatch that is not there
            return ""
        self.link.readback_t = snap.t
        if snap.cabinet_flash or not self.link.prev_frames or len(self.link.prev_frames) < 2:
            self.link.mismatch_ticks = 0
            return ""
        channels = [c.id for c in self.config.channels]
        shown = {ch: snap.readback.get(ch, ChannelState.OFF) for ch in channels}
        if any(all(shown[ch] == f.get(ch) for ch in channels) for f in self.link.prev_frames):
            self.link.mismatch_ticks = 0
            return ""
        self.link.mismatch_ticks += 1
        if self.link.mismatch_ticks >= READBACK_MISMATCH_TICKS:
            bad = [ch for ch in channels if shown[ch] != self.link.prev_frames[-1].get(ch)]
            return f"readback mismatch on channels {bad}"
        return ""

    # --- after the tick: readiness, watchdog, publishing, metrics ------------------------

    def _after_tick(self, t: float, out: Outputs, duration: float, late: bool) -> None:
        self.last = out
        if not self.ready and out.state in (
            OperatingState.STARTUP_FLASH,
            OperatingState.ALL_RED,
            OperatingState.NORMAL,
        ):
            polled = all(d.snapshot is not None for d in self.readers)
            if polled:
                self.ready = True
                log.info("ready", t=t, state=out.state.value)
                if self.notifier is not None:
                    self._last_status = self.status_line()
                    self.notifier.ready(self._last_status)
        if self.notifier is not None and not self.ready:
            # what `systemctl status` shows while the start waits for the field
            links = " ".join(f"{d.name}={d.health.value}" for d in self.devices)
            line = f"starting: waiting for the field {links}".strip()
            if line != self._last_status:
                self._last_status = line
                self.notifier.status(line)
        elif self.notifier is not None and not late:
            self.notifier.watchdog()
            line = self.status_line()
            if line != self._last_status or self.ticks % STATUS_REFRESH_TICKS == 0:
                self._last_status = line
                self.notifier.status(line)
        if self.metrics is not None:
            self.metrics.observe_tick(duration, late=late)
        self.telemetry.add(out)
        for ev in out.events:
            if ev.code in _LOGGED_EVENTS:
                log.info("event", code=ev.code, param=ev.param, t=ev.t)
            elif (
                EventCode.DETECTOR_FAULT_OTHER
                <= ev.code
                <= EventCode.DETECTOR_FAULT_EXCESSIVE_CHANGE
            ):
                log.warning("detector_fault", detector=ev.param, code=ev.code, t=ev.t)
            elif ev.code == EventCode.DETECTOR_RESTORED:
                log.info("detector_restored", detector=ev.param, t=ev.t)
        if self.sync is not None:
            if out.events:
                self.sync.add_events([(self._tick_wall, e.code, e.param) for e in out.events])
                if self._outflow_detectors:
                    departures = stop_bar_departures(out, self._outflow_detectors, self._tick_wall)
                    if departures:
                        self.sync.add_departures(departures)
            key = self._state_key(out)
            if key != self._last_state_key:
                self._last_state_key = key
                self.sync.publish_state(self.state_payload(out))
            period = self.config.mqtt.telemetry_period_s
            if t - self._last_telemetry_t >= period:
                self._last_telemetry_t = t
                self.sync.add_telemetry(self.telemetry.take(t))
        for hook in self.hooks:
            hook(self, out)

    def _state_key(self, out: Outputs) -> tuple[object, ...]:
        return (
            out.state,
            out.mode,
            out.plan,
            out.alarms,
            tuple((r.ring, r.phase, r.interval, r.ped) for r in out.rings),
            tuple((d.id, d.failed) for d in out.detectors),
            tuple(d.health for d in self.devices),
        )

    def status_line(self) -> str:
        out = self.last
        mode = out.mode.value if out else self.controller.mode.value
        plan = out.plan if out else "-"
        links = " ".join(f"{d.name}={d.health.value}" for d in self.devices)
        state = out.state.value if out else "starting"
        return f"mode={mode} plan={plan} state={state} {links}".strip()

    def state_payload(self, out: Outputs) -> dict[str, object]:
        return {
            "mode": out.mode.value,
            "plan": out.plan,
            "state": out.state.value,
            "flash_reason": out.flash_reason.value if out.flash_reason else None,
            "rings": [
                {
                    "ring": r.ring,
                    "phase": r.phase,
                    "interval": r.ped.value
                    if r.ped.value in ("walk", "ped_clear")
                    and r.interval is not None
                    and r.interval.value == "green"
                    else r.interval.value,
                    "vehicle_interval": r.interval.value,
                    "ped": r.ped.value,
                    "time_in_interval": round(r.elapsed, 1),
                }
                for r in out.rings
            ],
            "channels": {str(ch): st.name for ch, st in out.channels},
            "detectors": {
                str(d.id): {"on": d.on, "health": "failed" if d.failed else "ok", "fault": d.fault}
                for d in out.detectors
            },
            "calls": sorted(out.calls),
            "alarms": sorted(out.alarms),
            "devices": {d.name: d.health.value for d in self.devices},
        }

    # --- configuration reload ------------------------------------------------------------

    def _reload(self) -> None:
        """SIGHUP: validate the file again; a good one is applied at a safe point.

        Follows systemd's reload protocol: ``RELOADING=1`` first, ``READY=1`` once the new
        configuration is accepted or refused (the old one keeps running when refused).
        """
        from edgectl.config.loader import load_config
        from edgectl.errors import ConfigError

        if self.notifier is not None:
            self.notifier.reloading("reloading configuration")
        new: DaemonConfig | None = None
        try:
            if self.config_loader is not None:
                new = self.config_loader()
            elif self.config_path is not None:
                new = load_config(self.config_path)
            else:
                log.warning("reload_ignored", reason="no config file")
        except ConfigError as exc:
            self._reload_rejected([str(p) for p in exc.problems], param=0)
        except (OSError, ValueError) as exc:  # an override that no longer fits the file
            self._reload_rejected([str(exc)], param=0)
        if new is not None:
            self._pending_config = new
            self.apply_reload(new)
        if self.notifier is not None:
            self.notifier.ready(self.status_line())

    def reload_problems(self, new: DaemonConfig) -> list[str]:
        """Why ``new`` cannot replace the running configuration without a restart."""
        old = self.config
        problems = [
            f"[{name}] changed: restart required"
            for name in (
                "phases",
                "rings",
                "barriers",
                "channels",
                "detectors",
                "field",
                "mqtt",
                "outflow",
                "neighbours",
            )
            if getattr(new, name) != getattr(old, name)
        ]
        if new.intersection.id != old.intersection.id:
            problems.append("intersection.id changed: restart required")
        keep = {"log_level", "log_levels"}
        if new.daemon.model_dump(exclude=keep) != old.daemon.model_dump(exclude=keep):
            problems.append("[daemon] changed (other than log levels): restart required")
        return problems

    def apply_reload(self, new: DaemonConfig) -> bool:
        """Apply a validated configuration: the plan at the engine's next barrier, the mode
        at once, log levels at once. False (and nothing applied) when it needs a restart."""

        problems = self.reload_problems(new)
        if problems:
            self._reload_rejected(problems, param=1)
            return False
        if (new.daemon.log_level, new.daemon.log_levels) != (
            self.config.daemon.log_level,
            self.config.daemon.log_levels,
        ):
            from edgectl.logs import set_levels

            set_levels(new.daemon.log_level, new.daemon.log_levels)
        plan = new.plan(new.control.plan)
        self.directives.append(SetPlan(plan))
        if new.control.mode is not self.controller.mode:
            self.directives.append(SetMode(new.control.mode))
        self.config = new
        if self.sync is not None:  # the centre sees which configuration runs (…/status)
            self.sync.set_config_digest(config_digest(new))
        log.info("reload_accepted", plan=plan.id, mode=new.control.mode.value)
        self._emit(EventCode.CONFIG_RELOADED, plan.id)
        if self.metrics is not None:
            self.metrics.config_reload(applied=True)
        return True

    def _reload_rejected(self, problems: list[str], *, param: int) -> None:
        log.error("reload_rejected", problems=problems)
        self._emit(EventCode.CONFIG_REJECTED, param)
        if self.metrics is not None:
            self.metrics.config_reload(applied=False)

    def _emit(self, code: int, param: int) -> None:
        if self.sync is not None:
            self.sync.add_events([(datetime.now(UTC), code, param)])


def default_device(url: str) -> Device:
    return Device(name="cabinet", url=url, role=DeviceRole.CABINET)


def with_field_url(config: DaemonConfig, url: str) -> DaemonConfig:
    """``--field URL``: override the URL of the single cabinet device (or add one)."""
    devices = config.field.devices
    if len(devices) > 1:
        raise ValueError("--field needs a config with at most one device")
    dev = devices[0].model_copy(update={"url": url}) if devices else default_device(url)
    Device.model_validate(dev.model_dump())  # re-validate the URL
    field_settings = config.field.model_copy(update={"devices": (dev,)})
    return config.model_copy(update={"field": field_settings})


def initial_mode(config: DaemonConfig) -> Mode:
    return config.control.mode
