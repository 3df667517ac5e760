"""What the daemon tells the outside after every tick.

systemd (``READY=1`` once the field has answered, ``STATUS=``, ``WATCHDOG=1`` on every tick
that was on time), the Prometheus tick metrics, the log (flash, monitor, mode, plan, preempt
and detector-fault events), the telemetry aggregate, and — when MQTT is configured — the sync
service: the tick's events, the departures of the published stop-bar detectors, the state
when it changed (or a command asked for it) and the telemetry every period.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import structlog

from edgectl.config.model import DaemonConfig
from edgectl.control.telemetry import TelemetryAggregator
from edgectl.control.types import EventCode, Outputs
from edgectl.daemon.neighbours import outflow_detectors, stop_bar_departures
from edgectl.field.report import DeviceReport

if TYPE_CHECKING:
    from edgectl.daemon.port import OperatorPort
    from edgectl.sync.service import SyncService

log = structlog.get_logger("edgectl.daemon")

STATUS_REFRESH_TICKS = 50  # STATUS= on every change, and every 5 s anyway

_LOGGED_EVENTS = frozenset(
    {
        EventCode.UNIT_FLASH_STATUS_CHANGE,
        EventCode.MONITOR_VIOLATION,
        EventCode.MODE_CHANGE,
        EventCode.COORD_PATTERN_CHANGE,
        EventCode.COORD_CYCLE_STATE_CHANGE,
        EventCode.PREEMPT_CALL_ON,
        EventCode.PREEMPT_EXIT,
    }
)


def links(reports: Mapping[str, DeviceReport]) -> str:
    """``cabinet=online detectors=offline``: each device's health."""
    return " ".join(f"{name}={r.health.value}" for name, r in reports.items())


def state_payload(out: Outputs, reports: Mapping[str, DeviceReport]) -> dict[str, object]:
    """The retained ``…/state`` message."""
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
        "devices": {name: r.health.value for name, r in reports.items()},
        "cycle_time": out.cycle_time,
        "transition": out.transition,
        **({"zones": zones_payload(out)} if out.zones else {}),
    }


def zones_payload(out: Outputs) -> dict[str, dict[str, object]]:
    """The zone sensors in ``…/state``: health and the latest measurement's counts."""
    payload: dict[str, dict[str, object]] = {}
    for z in out.zones:
        r = z.reading
        payload[str(z.id)] = {
            "health": "failed" if z.failed else "ok",
            "fault": z.fault,
            "vehicles": None if r is None else r.vehicles,
            "halting": None if r is None else r.halting,
            "queue_m": None if r is None else r.queue_m,
            "mean_speed_mps": None if r is None else r.mean_speed_mps,
        }
    return payload


def _state_key(out: Outputs, reports: Mapping[str, DeviceReport]) -> tuple[object, ...]:
    return (
        out.state,
        out.mode,
        out.plan,
        out.alarms,
        out.transition,
        tuple((r.ring, r.phase, r.interval, r.ped) for r in out.rings),
        tuple((d.id, d.failed) for d in out.detectors),
        tuple((z.id, z.failed) for z in out.zones),
        tuple(r.health for r in reports.values()),
    )


class Publisher:
    """Publishes each tick (see the module docstring) and the daemon's own events."""

    def __init__(
        self,
        config: DaemonConfig,
        *,
        port: OperatorPort,
        sync: SyncService | None = None,
        notifier: Any = None,
        metrics: Any = None,
    ) -> None:
        self.port = port
        self.sync = sync
        self.notifier = notifier  # edgectl.ops.sdnotify.Notifier
        self.metrics = metrics  # edgectl.ops.metrics.Metrics
        self.telemetry = TelemetryAggregator(config, tick=config.field.tick)
        self._telemetry_period = config.mqtt.telemetry_period_s
        self._outflow = outflow_detectors(config)
        self._last_status = ""
        self._last_state_key: tuple[object, ...] | None = None
        self._last_telemetry_t = 0.0

    def status_line(self) -> str:
        out = self.port.last
        mode = out.mode.value if out else self.port.controller.mode.value
        plan = out.plan if out else "-"
        state = out.state.value if out else "starting"
        return f"mode={mode} plan={plan} state={state} {links(self.port.reports)}".strip()

    def emit(self, code: int, param: int) -> None:
        """One of the daemon's own events (a reload), to the centre at once."""
        if self.sync is not None:
            self.sync.add_events([(datetime.now(UTC), code, param)])

    # --- systemd ---------------------------------------------------------------------------

    def stopping(self) -> None:
        if self.notifier is not None:
            self.notifier.stopping()

    def reloading(self) -> None:
        if self.notifier is not None:
            self.notifier.reloading("reloading configuration")

    def reloaded(self, *, applied: bool, digest: str | None = None) -> None:
        """A reload was handled (``digest``: of the configuration now in force)."""
        if self.metrics is not None:
            self.metrics.config_reload(applied=applied)
        if digest is not None and self.sync is not None:  # the centre sees it (…/status)
            self.sync.set_config_digest(digest)

    def reload_over(self) -> None:
        if self.notifier is not None:
            self.notifier.ready(self.status_line())

    # --- after a tick ----------------------------------------------------------------------

    def tick(
        self,
        t: float,
        out: Outputs,
        *,
        wall: datetime,
        ticks: int,
        duration: float,
        late: bool,
        ready: bool,
        became_ready: bool,
    ) -> None:
        """After tick number ``ticks`` (controller time ``t``, wall time ``wall``)."""
        if became_ready:
            log.info("ready", t=t, state=out.state.value)
            if self.notifier is not None:
                self._last_status = self.status_line()
                self.notifier.ready(self._last_status)
        if self.notifier is not None:
            self._notify(ticks, late=late, ready=ready)
        if self.metrics is not None:
            self.metrics.observe_tick(duration, late=late)
        self.telemetry.add(out)
        _log_events(out)
        if self.sync is not None:
            self._to_sync(self.sync, t, out, wall)

    def _notify(self, ticks: int, *, late: bool, ready: bool) -> None:
        if not ready:
            # what `systemctl status` shows while the start waits for the field
            line = f"starting: waiting for the field {links(self.port.reports)}".strip()
            if line != self._last_status:
                self._last_status = line
                self.notifier.status(line)
        elif not late:
            self.notifier.watchdog()
            line = self.status_line()
            if line != self._last_status or ticks % STATUS_REFRESH_TICKS == 0:
                self._last_status = line
                self.notifier.status(line)

    def _to_sync(self, sync: SyncService, t: float, out: Outputs, wall: datetime) -> None:
        port = self.port
        if port.events:  # what commands emitted since the last tick
            sync.add_events(port.events)
            port.events = []
        if out.events:
            sync.add_events([(wall, e.code, e.param) for e in out.events])
            if self._outflow:
                departures = stop_bar_departures(out, self._outflow, wall)
                if departures:
                    sync.add_departures(departures)
        if port.state is not None:  # a command asked for it
            sync.publish_state(port.state)
            port.state = None
        key = _state_key(out, port.reports)
        if key != self._last_state_key:
            self._last_state_key = key
            sync.publish_state(state_payload(out, port.reports))
        if t - self._last_telemetry_t >= self._telemetry_period:
            self._last_telemetry_t = t
            sync.add_telemetry(self.telemetry.take(t))


def _log_events(out: Outputs) -> None:
    for ev in out.events:
        if ev.code in _LOGGED_EVENTS:
            log.info("event", code=ev.code, param=ev.param, t=ev.t)
        elif EventCode.DETECTOR_FAULT_OTHER <= ev.code <= EventCode.DETECTOR_FAULT_EXCESSIVE_CHANGE:
            log.warning("detector_fault", detector=ev.param, code=ev.code, t=ev.t)
        elif ev.code == EventCode.DETECTOR_RESTORED:
            log.info("detector_restored", detector=ev.param, t=ev.t)
        elif ev.code in (EventCode.ZONE_FAULT, EventCode.ZONE_RESTORED):
            _log_zone(out, ev.code, ev.param, ev.t)


def _log_zone(out: Outputs, code: int, zone: int, t: float) -> None:
    status = next((z for z in out.zones if z.id == zone), None)
    r = status.reading if status is not None else None
    seen = (
        {}
        if r is None
        else {
            "vehicles": r.vehicles,
            "halting": r.halting,
            "queue_m": r.queue_m,
            "mean_speed_mps": r.mean_speed_mps,
            "objects": len(r.objects),
            "frame": r.frame,
        }
    )
    if code == EventCode.ZONE_FAULT:
        fault = status.fault if status is not None else None
        log.warning("zone_failed", zone=zone, fault=fault, t=t, **seen)
    else:
        log.info("zone_ok", zone=zone, t=t, **seen)
