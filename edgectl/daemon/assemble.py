"""Putting a daemon together: field devices, metrics, sd_notify and the MQTT link.

Used by ``edgectl run`` and ``edgectl demo`` so that both run exactly the same daemon.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import structlog

from edgectl import __version__
from edgectl.config.model import DaemonConfig
from edgectl.control.types import Outputs
from edgectl.daemon.loop import Daemon
from edgectl.daemon.reload import config_digest

if TYPE_CHECKING:
    from edgectl.daemon.port import OperatorPort
    from edgectl.sync.service import SyncService

log = structlog.get_logger("edgectl.daemon")

_ERROR_KINDS = {
    "DeviceTimeout": "timeout",
    "DeviceUnavailable": "unavailable",
    "FrameError": "frame",
    "DeviceException": "exception",
}


@dataclass(slots=True)
class MetricsFeed:
    """Copies the daemon's state into the Prometheus metrics after every tick."""

    metrics: Any
    sync_every: int = 10  # ticks between reads of the sync counters (outbox depth is a COUNT)
    _errors_seen: dict[tuple[str, str], int] = field(default_factory=dict)
    _ticks: int = 0
    _dropped_seen: int = 0
    _applied_seen: int = 0
    _rejected_seen: dict[str, int] = field(default_factory=dict)
    _neighbour_seen: dict[tuple[str, str], int] = field(default_factory=dict)
    _notify_failures_seen: int = 0

    def __call__(self, daemon: Daemon, out: Outputs) -> None:
        m = self.metrics
        for name, report in daemon.reports.items():
            m.set_device_health(name, report.health.value)
            for exc_name, count in report.stats.errors.items():
                kind = _ERROR_KINDS.get(exc_name, "exception")
                key = (name, exc_name)
                delta = count - self._errors_seen.get(key, 0)
                if delta > 0:
                    for _ in range(delta):
                        m.poll_error(name, kind)
                    self._errors_seen[key] = count
        for det in out.detectors:
            m.set_detector_fault(det.id, det.fault if det.failed else None)
        for zone in out.zones:
            m.set_zone_fault(zone.id, zone.fault if zone.failed else None)
        snap = daemon.supervisor.output
        m.set_mmu_tripped(bool(snap and snap.mmu_tripped))
        m.set_mode(out.mode, out.plan)
        m.set_operating_state(out.state.value)
        failures = getattr(daemon.notifier, "failures", 0)
        if isinstance(failures, int) and failures > self._notify_failures_seen:
            m.sd_notify_failures.inc(failures - self._notify_failures_seen)
            self._notify_failures_seen = failures
        sync = daemon.sync
        self._ticks += 1
        if sync is not None and (self._ticks == 1 or self._ticks % self.sync_every == 0):
            self._feed_sync(sync.metrics)

    def _feed_sync(self, sm: Any) -> None:
        """Copy an :class:`edgectl.sync.service.SyncMetrics` snapshot: connection, outbox,
        and the commands counted since the last snapshot (accepted / rejected by code)."""
        m = self.metrics
        m.set_mqtt_connected(bool(sm.connected))
        if sm.outbox_depth >= 0:
            m.set_outbox(sm.outbox_depth)
        if sm.dropped > self._dropped_seen:
            m.outbox_drop(sm.dropped - self._dropped_seen)
            self._dropped_seen = sm.dropped
        for _ in range(sm.applied - self._applied_seen):
            m.command(accepted=True)
        self._applied_seen = max(self._applied_seen, sm.applied)
        for code, count in sm.rejected.items():
            for _ in range(count - self._rejected_seen.get(code, 0)):
                m.command(accepted=False, code=code)
            self._rejected_seen[code] = max(count, self._rejected_seen.get(code, 0))
        for (neighbour, result), count in sm.neighbour_messages.items():
            delta = count - self._neighbour_seen.get((neighbour, result), 0)
            if delta > 0:
                m.neighbour_message(neighbour, result, delta)
                self._neighbour_seen[(neighbour, result)] = count


def build_daemon(
    config: DaemonConfig,
    *,
    config_path: Path | None = None,
    config_loader: Callable[[], DaemonConfig] | None = None,
    hooks: Iterable[Callable[[Daemon, Outputs], None]] = (),
) -> tuple[Daemon, list[Callable[[], None]]]:
    """A ready-to-run daemon and the closers of what it started outside its task group.

    ``config_loader`` reads the file again on SIGHUP; ``hooks`` run after every tick, after
    the metrics feed."""
    from edgectl.control.controller import Controller
    from edgectl.daemon.port import OperatorPort
    from edgectl.field.buses import FieldBuses
    from edgectl.field.mapped import open_devices
    from edgectl.ops.metrics import Metrics
    from edgectl.ops.sdnotify import Notifier

    buses = FieldBuses()
    # a v2 profile's units become one or two devices (detectors apart): see field/mapped.py
    devices = open_devices(config.field.devices, buses=buses)
    closers: list[Callable[[], None]] = []
    notifier = Notifier.from_env()
    closers.append(notifier.close)
    metrics = Metrics(
        devices=[d.name for d in devices],
        detectors=[d.id for d in config.detectors],
        neighbours=sorted({n.intersection for n in config.neighbours}),
    )
    if config.daemon.metrics_listen:
        try:
            server = metrics.start_http(config.daemon.metrics_listen)
        except (OSError, ValueError) as exc:
            log.error("metrics_unavailable", listen=config.daemon.metrics_listen, error=str(exc))
        else:
            closers.append(server.close)
    port = OperatorPort(config, Controller(config))
    sync = _build_sync(port, config, metrics) if config.mqtt.url else None
    daemon = Daemon(
        config,
        config_path=config_path,
        config_loader=config_loader,
        devices=devices,
        buses=buses,
        port=port,
        sync=sync,
        notifier=notifier,
        metrics=metrics,
        hooks=[MetricsFeed(metrics), *hooks],
    )
    return daemon, closers


def _build_sync(port: OperatorPort, config: DaemonConfig, metrics: Any) -> SyncService:
    from edgectl.daemon.operator import DaemonCommandHandler
    from edgectl.sync.service import SyncService

    handler = DaemonCommandHandler(port, metrics=metrics)
    return SyncService(
        config.mqtt,
        intersection_id=config.intersection.id,
        state_dir=config.daemon.state_dir,
        handler=handler,
        version=__version__,
        config_digest=config_digest(config),
        neighbours=config.neighbours,
        outflow=config.outflow,
    )
