"""The daemon: the composition root that feeds the pure control core from the field.

One root :class:`asyncio.TaskGroup` holds every task, each named:

- ``edgectl[poll:NAME]`` — one per field device (:class:`~edgectl.field.device.CabinetDevice`);
- ``edgectl[control]`` — the 10 Hz control loop below;
- ``edgectl[sync]`` — the MQTT link (when configured);
- ``edgectl[stop]`` — waits for SIGTERM/SIGINT and winds everything down safely.

A control tick, on a fixed 0.1 s grid (no drift; a late tick is counted and logged, and the
next one goes back on the grid — missed slots are not run in a burst):

1. tell every device a tick began and wait, within a read budget, for the detector devices'
   reads; then take each device's latest report (:class:`~edgectl.field.report.DeviceReport`,
   immutable);
2. step the field supervisor (:mod:`edgectl.daemon.supervisor`, pure): the controller time
   of the tick, the detector inputs (a silent detector device fails its detectors), flash on
   output loss, readback mismatch, MMU or cabinet flash, and the way back;
3. ``Controller.step`` — the strategy's requests, the engine, the software conflict monitor;
4. hand the frame to the output devices (written with the heartbeat as one request);
5. publish (:mod:`edgectl.daemon.publish`): systemd, metrics, logs, the MQTT link.
6. zone sensors (camera / radar devices, if any): told to read once the other devices are
   done with the tick (:meth:`Daemon._read_zones`); their measurements go to the controller
   with the next tick's inputs (:mod:`edgectl.daemon.zones`).

The wall clock is read once per tick through :class:`~edgectl.daemon.clock.SharedClock`: the
shared clock of coordination (``Inputs.sync_s``), the tick's wall time (events, telemetry,
the time-of-day schedule) and the clock's health (alarms ``clock:unsynchronised`` and
``clock:step:…``); the loop itself ticks on the monotonic clock.

The collaborators — the devices, the operator port shared with the command handler, the sync
service, sd_notify and the metrics — are given to the constructor
(:func:`edgectl.daemon.assemble.build_daemon` builds them as ``edgectl run`` runs them).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import structlog

from edgectl import __version__
from edgectl.config import limits
from edgectl.config.model import DaemonConfig, Plan
from edgectl.config.settings import Device, DeviceRole
from edgectl.control.controller import Controller
from edgectl.control.telemetry import TelemetryAggregator
from edgectl.control.types import (
    Directive,
    EnterFlash,
    FlashReason,
    Inputs,
    OperatingState,
    Outputs,
)
from edgectl.daemon.clock import ClockReading, SharedClock
from edgectl.daemon.clock import from_env as shared_clock_from_env
from edgectl.daemon.latency import LATENCY_SUMMARY_TICKS, WriteLatency
from edgectl.daemon.neighbours import NeighbourFeed
from edgectl.daemon.port import OperatorPort
from edgectl.daemon.publish import Publisher
from edgectl.daemon.reload import Reloader, reload_problems
from edgectl.daemon.schedule import SCHEDULE_CHECK_TICKS, ScheduleFollower
from edgectl.daemon.supervisor import DeliveryClock, FieldSupervisor, Note, Supervision
from edgectl.daemon.zones import zone_readings
from edgectl.field.buses import FieldBuses
from edgectl.field.device import CabinetDevice, await_written
from edgectl.field.report import DeviceReport, Health

if TYPE_CHECKING:
    from collections import deque

    from edgectl.sync.service import SyncService

log = structlog.get_logger("edgectl.daemon")

#: the zone sensors' read starts at the latest this far into the tick (in ticks), once the
#: frame is written (:meth:`Daemon._read_zones`)
ZONE_READ_BY = 0.7

#: Test hook (tests/ops_daemon): block the event loop when the controller clock reaches
#: ``EDGECTL_TEST_WEDGE_AFTER_S`` (it starts at READY), for ``EDGECTL_TEST_WEDGE_FOR_S`` seconds
#: (default 10), so a test can prove that ``WATCHDOG=1`` stops when the loop wedges. Read
#: only by the control loop.
TEST_WEDGE_AFTER_ENV = "EDGECTL_TEST_WEDGE_AFTER_S"
TEST_WEDGE_FOR_ENV = "EDGECTL_TEST_WEDGE_FOR_S"

Hook = Callable[["Daemon", Outputs], None]


def _test_wedge() -> tuple[float | None, float]:
    try:
        after = float(os.environ[TEST_WEDGE_AFTER_ENV])
        wedge_for = float(os.environ.get(TEST_WEDGE_FOR_ENV, "10"))
    except (KeyError, ValueError):
        return None, 0.0
    return after, wedge_for


def handover_limit_s(plan: Plan) -> float:
    """Longest a safe hand-over to flash (:func:`edgectl.config.limits.handover_limit_s`)."""
    return limits.handover_limit_s(plan.timing.values())


def _log_note(note: Note) -> None:
    getattr(log, note.level)(note.event, **note.fields)


class Daemon:
    """``edgectl run``: the control loop and the tasks around it."""

    def __init__(
        self,
        config: DaemonConfig,
        *,
        config_path: Path | None = None,
        config_loader: Callable[[], DaemonConfig] | None = None,
        devices: Sequence[CabinetDevice] | None = None,
        buses: FieldBuses | None = None,
        port: OperatorPort | None = None,
        sync: SyncService | None = None,
        notifier: Any = None,
        metrics: Any = None,
        hooks: Iterable[Hook] = (),
        clock: Callable[[], float] = time.monotonic,
        wall_clock: SharedClock | None = None,
    ) -> None:
        self.port = port if port is not None else OperatorPort(config, Controller(config))
        if self.port.config is not config:
            raise ValueError("the operator port must hold the daemon's configuration")
        self.controller = self.port.controller
        self.buses = buses if buses is not None else FieldBuses()
        self.devices = list(
            devices
            if devices is not None
            else [CabinetDevice(d, buses=self.buses) for d in config.field.devices]
        )
        # detector devices: the tick waits for their reads; zone sensors (camera / radar)
        # are read too, but never waited for, and a silent one fails only its zones
        self.readers = [d for d in self.devices if d.reads_inputs and not d.zone_sensor]
        self.zone_devices = [d for d in self.devices if d.zone_sensor]
        self._zone_ticks: dict[str, int] = {}  # zone device → the number of its last read
        self.zone_reads_skipped = 0  # ticks whose zone read was left for a later one
        self._zone_read_at = -1e9  # when the zone devices were last told to read
        self.writers = [d for d in self.devices if d.writes_outputs]
        self.sync = sync
        self.notifier = notifier  # edgectl.ops.sdnotify.Notifier
        self.metrics = metrics  # edgectl.ops.metrics.Metrics
        self.hooks: list[Hook] = list(hooks)  # called after every tick
        self._clock = clock
        self.wall_clock = wall_clock if wall_clock is not None else shared_clock_from_env()
        self._clock_reading: ClockReading | None = None
        self._clock_alarms: tuple[str, ...] = ()
        self.supervisor = FieldSupervisor(
            tick=config.field.tick,
            detectors=[d.id for d in config.detectors],
            channels=[c.id for c in config.channels],
            detector_loss_s=config.field.detector_loss_s,
            readers=[d.name for d in self.readers],
            writers=[d.name for d in self.writers],
        )
        self.publisher = Publisher(
            config, port=self.port, sync=sync, notifier=notifier, metrics=metrics
        )
        self.reloader = Reloader(
            self.port, self.publisher, config_path=config_path, loader=config_loader
        )
        self.neighbours = NeighbourFeed(self.controller, sync.inbox if sync is not None else None)
        self.write_latency = WriteLatency()
        self.port.reports = {d.name: d.report for d in self.devices}
        self.started_at = datetime.now(UTC)
        self.ticks = 0
        self.late_ticks = 0
        self._stop = asyncio.Event()
        self._reload_requested = False
        self.schedule = ScheduleFollower(self.port)
        self._tick_wall = self.started_at

    # --- what the port, the supervisor and the publisher hold ------------------------------

    @property
    def config(self) -> DaemonConfig:
        """The configuration in force (a reload replaces it)."""
        return self.port.config

    @property
    def directives(self) -> deque[Directive]:
        """Directives for the next tick (commands, reload, schedule)."""
        return self.port.directives

    @property
    def last(self) -> Outputs | None:
        return self.port.last

    @property
    def reports(self) -> Mapping[str, DeviceReport]:
        """The devices' reports the last tick ran on."""
        return self.port.reports

    @property
    def ready(self) -> bool:
        return self.supervisor.ready

    @property
    def clock(self) -> DeliveryClock:
        return self.supervisor.clock

    @property
    def telemetry(self) -> TelemetryAggregator:
        return self.publisher.telemetry

    # --- lifecycle ---------------------------------------------------------------------

    def request_stop(self) -> None:
        self._stop.set()

    def request_reload(self) -> None:
        self._reload_requested = True

    def reload_problems(self, new: DaemonConfig) -> list[str]:
        """Why ``new`` cannot replace the running configuration without a restart."""
        return reload_problems(self.config, new)

    def apply_reload(self, new: DaemonConfig) -> bool:
        return self.reloader.apply(new)

    def _reload(self) -> None:
        self.reloader.reload()

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
            log.info("tick_latency_summary", final=True, **self.write_latency.histogram.summary())
            log.info(
                "daemon_stopped",
                ticks=self.ticks,
                late_ticks=self.late_ticks,
                **({"zone_reads_skipped": self.zone_reads_skipped} if self.zone_devices else {}),
            )
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
            self._read_wall_clock()
            reports = await self._read(read_budget)
            field = self.supervisor.step(self._clock(), reports, slots=1 + skipped)
            t = field.t
            if self._stop.is_set() and stopping_since is None:
                stopping_since = t
                log.info("shutdown_begin", t=t)
                self.directives.append(EnterFlash(FlashReason.COMMAND, "shutdown"))
                self.publisher.stopping()
            out, became_ready = self._step(field, reports)
            self._after_tick(t, out, loop.time() - started, late > tick / 2, became_ready)
            if self.zone_devices:
                await self._read_zones(t0 + (n + ZONE_READ_BY) * tick - loop.time())
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

    async def _read(self, budget: float) -> dict[str, DeviceReport]:
        """A tick began: every device's latest report, the detector devices' reads of this
        tick included when they come within ``budget``."""
        if self.port.mmu_reset:  # an operator's mmu_reset, written before this tick's frame
            self.port.mmu_reset = False
            for d in self.writers:
                d.request_mmu_reset()
        ticks = [(d, d.tick()) for d in self.devices if not d.zone_sensor]
        waiting = [
            d.wait_report(n)
            for d, n in ticks
            if d.reads_inputs and not d.zone_sensor and d.report.health is not Health.OFFLINE
        ]
        if waiting:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(budget):
                    # one device (the usual cabinet) is awaited in this task: gather would
                    # wrap it in a task of its own, one more loop pass before the frame
                    await (waiting[0] if len(waiting) == 1 else asyncio.gather(*waiting))
        return {d.name: d.report for d in self.devices}

    async def _read_zones(self, budget: float) -> None:
        """The zone sensors are read, at most every ``field.zone_poll_s``, once the other
        devices have done this tick's reads and writes, if that happens within ``budget``
        s: on a shared RS-485 line their long reads then fill the idle rest of the tick. A
        zone read that would start later is left for a later tick (zone data a tick older),
        and so is one whose previous read has not ended: a zone read in front of a frame
        makes it late, a late frame holds the controller's clock and, on a slow line, starves
        the MMU's watchdog (bench/field_bench.py saw it trip at 38400 baud)."""
        now = self._clock()
        if now - self._zone_read_at < self.config.field.zone_poll_s - 0.01:
            return
        if budget <= 0:
            self.zone_reads_skipped += 1
            return
        others = [d for d in self.devices if not d.zone_sensor and d.health is not Health.OFFLINE]
        try:
            async with asyncio.timeout(budget):
                for d in others:
                    await d.wait_idle()
        except TimeoutError:
            self.zone_reads_skipped += 1
            return
        for d in self.zone_devices:
            if d.report.tick < self._zone_ticks.get(d.name, 0) and d.health is not Health.OFFLINE:
                self.zone_reads_skipped += 1  # still reading the last time's
                continue
            self._zone_ticks[d.name] = d.tick()
        self._zone_read_at = now

    def _step(self, field: Supervision, reports: dict[str, DeviceReport]) -> tuple[Outputs, bool]:
        """Supervision decided: the controller's step and the frame to the output devices.
        True when this tick made the daemon ready."""
        for note in field.notes:
            _log_note(note)
        if field.mmu_reset:
            for d in self.writers:
                d.request_mmu_reset()
        self.port.reports = reports
        self.port.field_fault = self.supervisor.fault
        t = field.t
        if self._reload_requested:
            self._reload_requested = False
            self.reloader.reload()
        if self.ticks % SCHEDULE_CHECK_TICKS == 0:
            self.follow_schedule(self._tick_wall.astimezone())
        self.neighbours.feed(self.ticks, t, self._tick_wall)
        inputs = Inputs(
            presence=field.presence,
            failed_detectors=field.failed_detectors,
            ped_buttons=field.ped_buttons,
            requests=self.port.requests.take(t),
            directives=(*field.directives, *self.port.take_directives()),
            sync_s=self._clock_reading.sync_s if self._clock_reading is not None else None,
            zones=zone_readings(self.config.zones, reports.values(), now=self._clock(), t=t),
        )
        out = self.controller.step(t, inputs)
        frame = out.frame
        submitted_at: float | None = None
        for d in self.writers:
            if reports[d.name].health is not Health.OFFLINE:
                d.submit(frame)
                submitted_at = self._clock()
        self.port.last = out
        became_ready = self.supervisor.sent(out, submitted_at=submitted_at)
        self.write_latency.sample(reports[d.name] for d in self.writers)
        if self.ticks and self.ticks % LATENCY_SUMMARY_TICKS == 0:
            log.info("tick_latency_summary", final=False, **self.write_latency.histogram.summary())
        return out, became_ready

    def _after_tick(
        self, t: float, out: Outputs, duration: float, late: bool, became_ready: bool
    ) -> None:
        self.publisher.tick(
            t,
            out,
            wall=self._tick_wall,
            ticks=self.ticks,
            duration=duration,
            late=late,
            ready=self.ready,
            became_ready=became_ready,
        )
        for hook in self.hooks:
            hook(self, out)
        self.ticks += 1

    def _read_wall_clock(self) -> None:
        """The tick's wall time and shared clock; clock alarms when its health changed."""
        reading = self.wall_clock.read()
        self._clock_reading = reading
        self._tick_wall = datetime.fromtimestamp(reading.wall, UTC)
        if reading.step_s is not None:
            log.warning("clock_step", step_s=round(reading.step_s, 3))
        if reading.alarms != self._clock_alarms:
            self._clock_alarms = reading.alarms
            for prefix in ("clock:unsynchronised", "clock:step"):
                text = next((a for a in reading.alarms if a.startswith(prefix)), None)
                self.controller.set_alarm(prefix, text)
            log.warning("clock_alarms", alarms=list(reading.alarms), synced=reading.synchronised)

    def follow_schedule(self, local_now: datetime) -> None:
        """Time-of-day plans (:mod:`edgectl.daemon.schedule`)."""
        self.schedule.follow(local_now)

    def handover_limit_s(self) -> float:
        return handover_limit_s(self.controller.plan)


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
