"""Putting a daemon together: field devices, metrics, sd_notify and the MQTT link.

Used by ``edgectl run`` and ``edgectl demo`` so that both run exactly the same daemon.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import structlog

from edgectl import __version__
from edgectl.config.model import DaemonConfig
from edgectl.control.types import Outputs
from edgectl.daemon import Daemon, config_digest

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
    _errors_seen: dict[tuple[str, str], int] = field(default_factory=dict)

    def __call__(self, daemon: Daemon, out: Outputs) -> None:
        m = self.metrics
        for d in daemon.devices:
            m.set_device_health(d.name, d.health.value)
            for exc_name, count in d.stats.errors.items():
                kind = _ERROR_KINDS.get(exc_name, "exception")
                key = (d.name, exc_name)
                delta = count - self._errors_seen.get(key, 0)
                if delta > 0:
                    for _ in range(delta):
                        m.poll_error(d.name, kind)
                    self._errors_seen[key] = count
        for det in out.detectors:
            m.set_detector_fault(det.id, det.fault if det.failed else None)
        snap = daemon._output_snapshot()
        m.set_mmu_tripped(bool(snap and snap.mmu_tripped))
        m.set_mode(out.mode, out.plan)
        m.set_operating_state(out.state.value)
        sync = daemon.sync
        if sync is not None:
            m.set_mqtt_connected(bool(sync.connected))
            depth = getattr(sync, "outbox_depth", None)
            if isinstance(depth, int):
                m.set_outbox(depth)


def build_daemon(
    config: DaemonConfig, *, config_path: Path | None = None
) -> tuple[Daemon, list[Callable[[], None]]]:
    """A ready-to-run daemon and the closers of what it started outside its task group."""
    from edgectl.ops.metrics import Metrics
    from edgectl.ops.sdnotify import Notifier

    daemon = Daemon(config, config_path=config_path)
    closers: list[Callable[[], None]] = []
    daemon.notifier = Notifier.from_env()
    closers.append(daemon.notifier.close)
    metrics = Metrics(
        devices=[d.name for d in daemon.devices], detectors=[d.id for d in config.detectors]
    )
    daemon.metrics = metrics
    daemon.hooks.append(MetricsFeed(metrics))
    if config.daemon.metrics_listen:
        try:
            server = metrics.start_http(config.daemon.metrics_listen)
        except (OSError, ValueError) as exc:
            log.error("metrics_unavailable", listen=config.daemon.metrics_listen, error=str(exc))
        else:
            closers.append(server.close)
    if config.mqtt.url:
        daemon.sync = _build_sync(daemon, config, metrics)
    return daemon, closers


def _build_sync(daemon: Daemon, config: DaemonConfig, metrics: Any) -> Any:
    from edgectl.operator import DaemonCommandHandler
    from edgectl.sync.service import SyncService

    handler = DaemonCommandHandler(daemon, metrics=metrics)
    return SyncService(
        config.mqtt,
        intersection_id=config.intersection.id,
        state_dir=config.daemon.state_dir,
        handler=handler,
        version=__version__,
        config_digest=config_digest(config),
    )
