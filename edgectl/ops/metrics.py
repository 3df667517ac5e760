"""Prometheus metrics of the daemon, in a registry of their own.

Every name starts with ``edgectl_``. The registry is private to a :class:`Metrics` (not
prometheus_client's global one), so two daemons in one test process never share counters and
nothing a library registers globally leaks into the scrape.

=======================================  =========  ==========================================
metric                                   type       labels / meaning
=======================================  =========  ==========================================
``edgectl_tick_latency_seconds``         histogram  control tick: wake-up to frame written
``edgectl_late_ticks_total``             counter    ticks that overran their slot
``edgectl_poll_errors_total``            counter    ``device``, ``kind`` (timeout, unavailable,
                                                    frame, exception, …)
``edgectl_device_health``                gauge      ``device``, ``state`` one-hot
                                                    (online/degraded/offline)
``edgectl_outbox_depth``                 gauge      rows waiting for a PUBACK
``edgectl_outbox_dropped_total``         counter    rows dropped (oldest first) to bound it
``edgectl_mqtt_connected``               gauge      1 while the broker session is up
``edgectl_commands_total``               counter    ``result`` (accepted/rejected), ``code``
``edgectl_detector_faulted``             gauge      ``detector``: 1 while failed
``edgectl_detector_faults_total``        counter    ``detector``, ``fault``: faults raised
``edgectl_zone_faulted``                 gauge      ``zone``: 1 while the zone sensor zone is failed
``edgectl_zone_faults_total``            counter    ``zone``, ``fault``: zone faults raised
                                                    (no_data, stuck, implausible)
``edgectl_mmu_tripped``                  gauge      1 while the cabinet's MMU is latched
``edgectl_mode``                         stateset   ``edgectl_mode`` one-hot per control mode
``edgectl_operating_state``              stateset   start-up flash / all-red / normal / …
``edgectl_plan``                         gauge      the timing plan in effect
``edgectl_config_reloads_total``         counter    ``result`` (applied/rejected)
``edgectl_neighbour_messages_total``     counter    ``neighbour``, ``result``: outflow messages
                                                    of upstream junctions (accepted, or the
                                                    refusal code: stale, malformed_json, …)
``edgectl_sd_notify_failures_total``     counter    notifications the service manager missed
``edgectl_build_info``                   info       ``version``
=======================================  =========  ==========================================
"""

from __future__ import annotations

import ipaddress
import threading
from collections.abc import Iterable
from wsgiref.simple_server import WSGIServer

import structlog
from prometheus_client import (
    CollectorRegistry,
    Counter,
    Enum,
    Gauge,
    Histogram,
    Info,
    generate_latest,
    start_http_server,
)

from edgectl import __version__
from edgectl.config.model import Mode

log = structlog.get_logger("edgectl.ops")

#: Tick latency buckets, seconds: the tick is 0.1 s and the work in it should take 0.1–50 ms.
TICK_BUCKETS = (
    0.0001,
    0.00025,
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.02,
    0.035,
    0.05,
    0.075,
    0.1,
    0.25,
)
DEVICE_STATES = ("online", "degraded", "offline")
POLL_ERROR_KINDS = ("timeout", "unavailable", "frame", "exception")
OPERATING_STATES = ("startup_flash", "all_red", "normal", "preempt", "flash")


class Metrics:
    """All of the daemon's metrics. Create one per daemon; feed it from the shell.

    ``devices`` and ``detectors`` pre-create their labelled series at zero, so that a scrape
    shows every device and detector before the first error or fault (a Prometheus ``rate()``
    needs the zero).
    """

    def __init__(
        self,
        *,
        devices: Iterable[str] = (),
        detectors: Iterable[int] = (),
        neighbours: Iterable[str] = (),
        registry: CollectorRegistry | None = None,
    ) -> None:
        self.registry = CollectorRegistry(auto_describe=True) if registry is None else registry
        r = self.registry
        self._faulted: set[int] = set()
        self.tick_latency = Histogram(
            "edgectl_tick_latency_seconds",
            "Control tick duration, from wake-up to the output frame written",
            buckets=TICK_BUCKETS,
            registry=r,
        )
        self.late_ticks = Counter(
            "edgectl_late_ticks", "Control ticks that overran their slot", registry=r
        )
        self.poll_errors = Counter(
            "edgectl_poll_errors",
            "Failed Modbus requests per device and kind",
            ["device", "kind"],
            registry=r,
        )
        self.device_health = Gauge(
            "edgectl_device_health",
            "Field device health, one-hot over state (online/degraded/offline)",
            ["device", "state"],
            registry=r,
        )
        self.outbox_depth = Gauge(
            "edgectl_outbox_depth", "Messages in the outbox waiting for a PUBACK", registry=r
        )
        self.outbox_dropped = Counter(
            "edgectl_outbox_dropped",
            "Outbox messages dropped (oldest first) to keep it within its bounds",
            registry=r,
        )
        self.mqtt_connected = Gauge(
            "edgectl_mqtt_connected", "1 while connected to the MQTT broker", registry=r
        )
        self.commands = Counter(
            "edgectl_commands",
            "Remote commands by result (accepted/rejected) and code",
            ["result", "code"],
            registry=r,
        )
        self.detector_faulted = Gauge(
            "edgectl_detector_faulted", "1 while the detector is failed", ["detector"], registry=r
        )
        self.detector_faults = Counter(
            "edgectl_detector_faults",
            "Detector faults raised (no_activity, max_presence, erratic, lost)",
            ["detector", "fault"],
            registry=r,
        )
        self.zone_faulted = Gauge(
            "edgectl_zone_faulted", "1 while the zone sensor zone is failed", ["zone"], registry=r
        )
        self.zone_faults = Counter(
            "edgectl_zone_faults",
            "Zone sensor faults raised (no_data, stuck, implausible)",
            ["zone", "fault"],
            registry=r,
        )
        self._zones_faulted: set[int] = set()
        self.mmu_tripped = Gauge(
            "edgectl_mmu_tripped", "1 while the cabinet's conflict monitor is tripped", registry=r
        )
        self.mode = Enum(
            "edgectl_mode", "Control mode in effect", states=[m.value for m in Mode], registry=r
        )
        self.operating_state = Enum(
            "edgectl_operating_state",
            "What the controller is doing",
            states=list(OPERATING_STATES),
            registry=r,
        )
        self.plan = Gauge("edgectl_plan", "Timing plan in effect", registry=r)
        self.config_reloads = Counter(
            "edgectl_config_reloads",
            "SIGHUP reloads by result (applied/rejected)",
            ["result"],
            registry=r,
        )
        self.neighbour_messages = Counter(
            "edgectl_neighbour_messages",
            "Outflow messages of upstream neighbours by result (accepted or refusal code)",
            ["neighbour", "result"],
            registry=r,
        )
        self.sd_notify_failures = Counter(
            "edgectl_sd_notify_failures",
            "Notifications that could not be sent to the service manager",
            registry=r,
        )
        self.build = Info("edgectl_build", "edgectl build", registry=r)
        self.build.info({"version": __version__})
        for result in ("applied", "rejected"):
            self.config_reloads.labels(result=result)
        for device in devices:
            self.add_device(device)
        for detector in detectors:
            self.detector_faulted.labels(detector=str(detector)).set(0)
        for neighbour in neighbours:
            self.neighbour_messages.labels(neighbour=neighbour, result="accepted")

    # --- feeding -------------------------------------------------------------------------

    def add_device(self, device: str) -> None:
        """Create a device's series at zero (health unknown until the first poll)."""
        for kind in POLL_ERROR_KINDS:
            self.poll_errors.labels(device=device, kind=kind)
        for state in DEVICE_STATES:
            self.device_health.labels(device=device, state=state).set(0)

    def observe_tick(self, duration_s: float, *, late: bool = False) -> None:
        self.tick_latency.observe(duration_s)
        if late:
            self.late_ticks.inc()

    def poll_error(self, device: str, kind: str, count: int = 1) -> None:
        self.poll_errors.labels(device=device, kind=kind).inc(count)

    def set_device_health(self, device: str, state: str) -> None:
        """``state`` is ``online``, ``degraded`` or ``offline``; the others go to 0."""
        if state not in DEVICE_STATES:
            raise ValueError(f"unknown device state {state!r}; expected one of {DEVICE_STATES}")
        for s in DEVICE_STATES:
            self.device_health.labels(device=device, state=s).set(1 if s == state else 0)

    def set_outbox(self, depth: int) -> None:
        self.outbox_depth.set(depth)

    def outbox_drop(self, count: int = 1) -> None:
        self.outbox_dropped.inc(count)

    def set_mqtt_connected(self, connected: bool) -> None:
        self.mqtt_connected.set(1 if connected else 0)

    def command(self, *, accepted: bool, code: str = "") -> None:
        """Count one command; ``code`` is the refusal code (``ok`` when accepted)."""
        result = "accepted" if accepted else "rejected"
        self.commands.labels(result=result, code=code or ("ok" if accepted else "unknown")).inc()

    def set_detector_fault(self, detector: int, fault: str | None) -> None:
        """Set a detector's state; a new fault (``None`` → fault) is also counted."""
        if fault is not None and detector not in self._faulted:
            self.detector_faults.labels(detector=str(detector), fault=fault).inc()
        if fault is None:
            self._faulted.discard(detector)
        else:
            self._faulted.add(detector)
        self.detector_faulted.labels(detector=str(detector)).set(0 if fault is None else 1)

    def set_zone_fault(self, zone: int, fault: str | None) -> None:
        """Set a zone's state; a new fault (``None`` → fault) is also counted."""
        if fault is not None and zone not in self._zones_faulted:
            self.zone_faults.labels(zone=str(zone), fault=fault).inc()
        if fault is None:
            self._zones_faulted.discard(zone)
        else:
            self._zones_faulted.add(zone)
        self.zone_faulted.labels(zone=str(zone)).set(0 if fault is None else 1)

    def set_mmu_tripped(self, tripped: bool) -> None:
        self.mmu_tripped.set(1 if tripped else 0)

    def set_mode(self, mode: Mode | str, plan: int) -> None:
        self.mode.state(str(mode))
        self.plan.set(plan)

    def set_operating_state(self, state: str) -> None:
        self.operating_state.state(str(state))

    def config_reload(self, *, applied: bool) -> None:
        self.config_reloads.labels(result="applied" if applied else "rejected").inc()

    def neighbour_message(self, neighbour: str, result: str, count: int = 1) -> None:
        """Count outflow messages of ``neighbour``: ``accepted`` or the refusal code."""
        self.neighbour_messages.labels(neighbour=neighbour, result=result).inc(count)

    def render(self) -> bytes:
        """The text exposition format, as a scrape would return it."""
        return generate_latest(self.registry)

    # --- serving -------------------------------------------------------------------------

    def start_http(self, listen: str) -> MetricsServer:
        """Serve ``/metrics`` on ``host:port`` (port 0: an ephemeral port; see ``.port``).

        The server runs in a daemon thread (prometheus_client's WSGI server), so a scrape
        never competes with the control loop's event loop. Raises :class:`ValueError` for a
        malformed ``listen`` and :class:`OSError` when the address cannot be bound.
        """
        host, port = parse_listen(listen)
        if not ipaddress.ip_address(host).is_loopback:
            log.warning("metrics_not_loopback", listen=listen)
        server, thread = start_http_server(port, addr=host, registry=self.registry)
        bound = MetricsServer(server, thread)
        log.info("metrics_listening", url=bound.url)
        return bound


class MetricsServer:
    """A running metrics endpoint. ``close()`` stops it (idempotent)."""

    def __init__(self, server: WSGIServer, thread: threading.Thread) -> None:
        self._server = server
        self._thread = thread
        self._closed = False
        address = server.server_address
        self.host: str = str(address[0])
        self.port: int = int(address[1])

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/metrics"

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5.0)

    def __enter__(self) -> MetricsServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def parse_listen(listen: str) -> tuple[str, int]:
    """``host:port``, ``[v6]:port`` or ``:port`` (loopback) → (host, port)."""
    text = listen.strip()
    host, sep, port_text = text.rpartition(":")
    if not sep or not port_text.isdigit():
        raise ValueError(f"metrics listen address {listen!r}: expected host:port")
    port = int(port_text)
    if port > 65535:
        raise ValueError(f"metrics listen address {listen!r}: port out of range")
    host = host.removeprefix("[").removesuffix("]") or "127.0.0.1"
    if host == "localhost":
        host = "127.0.0.1"
    try:
        ipaddress.ip_address(host)
    except ValueError:
        raise ValueError(f"metrics listen address {listen!r}: host must be an IP address") from None
    return host, port
