"""Zone sensor diagnostics: measurements → healthy zones, faults and recovery. Pure.

Each tick the controller hands the field's zone measurements
(:class:`~edgectl.control.types.ZoneReading`, one per zone that said something) to
:meth:`ZoneBank.update`. Per zone (thresholds in :class:`~edgectl.config.model.Zone`):

- **no data**: no measurement for ``no_data_s`` (the unit is silent, or its counter reads 0
  and the field left the zone out);
- **stuck**: the measurement counter has not advanced for ``stuck_s`` (a frozen video
  processor keeps answering with its last picture);
- **implausible**: measurements that cannot be true for ``implausible_s``: more vehicles than
  ``lanes × length_m / jam_spacing_m``, more halting than vehicles, more objects than
  vehicles, a queue longer than the zone, a mean or object speed over ``max_speed_kmh``, an
  object beyond the zone.

Any of them fails the zone (event 220 ``ZONE_FAULT`` with the zone as parameter, alarm
``zone:failed:…``): strategies no longer see it in ``view.zones`` and use the lane's loops,
as they do without zones. A failed zone returns (event 221 ``ZONE_RESTORED``) after
``recovery_s`` of clean measurements; a zone starts failed and comes up the same way (its
first 221), and one that never delivers is reported ``no_data`` after ``no_data_s``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from types import MappingProxyType

from edgectl.config.model import Zone
from edgectl.control.types import EventCode, ZoneReading, ZoneStatus

__all__ = ["ZoneBank", "implausible"]

_TICKS_PER_S = 10
_QUEUE_SLACK_M = 7.5  # a queue (or an object) may end a vehicle length beyond the zone


def _ticks(seconds: float) -> int:
    return max(0, math.ceil(seconds * _TICKS_PER_S - 1e-6))


def implausible(zone: Zone, r: ZoneReading) -> str | None:
    """Why a measurement cannot be true of ``zone``, or None."""
    limit = zone.lanes * zone.length_m / zone.jam_spacing_m
    vmax = zone.max_speed_kmh / 3.6
    reach = zone.length_m + _QUEUE_SLACK_M
    if r.vehicles > limit + 1:
        return f"vehicles {r.vehicles} > {limit:.0f}"
    if r.halting > r.vehicles:
        return f"halting {r.halting} > vehicles {r.vehicles}"
    if len(r.objects) > r.vehicles:
        return f"objects {len(r.objects)} > vehicles {r.vehicles}"
    if r.queue_m > reach:
        return f"queue {r.queue_m} m > zone {zone.length_m:g} m"
    if r.mean_speed_mps > vmax:
        return f"mean speed {r.mean_speed_mps} m/s > {vmax:.1f}"
    for distance, speed in r.objects:
        if distance > reach or speed > vmax:
            return f"object at {distance} m, {speed} m/s"
    return None


class _Zone:
    __slots__ = (
        "bad_since",
        "cfg",
        "clean_since",
        "failed",
        "fault",
        "frame",
        "frame_since",
        "last_data",
        "reading",
        "why",
    )

    def __init__(self, cfg: Zone, start: int) -> None:
        self.cfg = cfg
        self.failed = True  # until its first clean measurements
        self.fault: str | None = None
        self.why = ""  # what made it implausible (for the log)
        self.reading: ZoneReading | None = None
        self.last_data = start
        self.frame: int | None = None
        self.frame_since = start
        self.bad_since: int | None = None
        self.clean_since: int | None = None


class ZoneBank:
    """Every zone of a junction (see the module docstring). Call :meth:`update` once a tick."""

    def __init__(self, zones: Sequence[Zone]) -> None:
        self._configs = tuple(sorted(zones, key=lambda z: z.id))
        self._zones: dict[int, _Zone] = {}
        self._started = False
        self.healthy: Mapping[int, ZoneReading] = MappingProxyType({})
        self.statuses: tuple[ZoneStatus, ...] = tuple(
            ZoneStatus(id=z.id, failed=True) for z in self._configs
        )

    @property
    def configured(self) -> bool:
        return bool(self._configs)

    @property
    def ids(self) -> tuple[int, ...]:
        return tuple(z.id for z in self._configs)

    def config(self, zone: int) -> Zone:
        """The configuration of ``zone`` (KeyError if it has none)."""
        for z in self._configs:
            if z.id == zone:
                return z
        raise KeyError(zone)

    def is_failed(self, zone: int) -> bool:
        """True for a failed zone, one not (yet) healthy, and one that is not configured."""
        z = self._zones.get(zone)
        return z is None or z.failed

    def fault(self, zone: int) -> str | None:
        z = self._zones.get(zone)
        return None if z is None else z.fault

    def why(self, zone: int) -> str:
        """What the zone's last implausible measurement was (for the log)."""
        z = self._zones.get(zone)
        return "" if z is None else z.why

    @property
    def failed(self) -> frozenset[int]:
        """Zones failed with a fault (not those still coming up)."""
        return frozenset(i for i, z in self._zones.items() if z.failed and z.fault is not None)

    def update(self, tick: int, readings: Iterable[ZoneReading]) -> list[tuple[int, int]]:
        """Advance to ``tick`` with this tick's measurements; the events ``(code, zone)``."""
        if not self._started:
            self._started = True
            self._zones = {z.id: _Zone(z, tick) for z in self._configs}
        events: list[tuple[int, int]] = []
        zones = self._zones
        for r in readings:
            z = zones.get(r.zone)
            if z is None:
                continue
            z.reading = r
            z.last_data = tick
            if r.frame != z.frame:
                z.frame = r.frame
                z.frame_since = tick
            why = implausible(z.cfg, r) if z.cfg.implausible_s else None
            if why is None:
                z.bad_since = None
            else:
                z.why = why
                if z.bad_since is None:
                    z.bad_since = tick
        healthy: dict[int, ZoneReading] = {}
        for z in zones.values():
            problem = self._problem(z, tick)
            if not z.failed:
                if problem is not None:
                    z.failed, z.fault, z.clean_since = True, problem, None
                    events.append((EventCode.ZONE_FAULT, z.cfg.id))
                elif z.reading is not None:
                    healthy[z.cfg.id] = z.reading
                continue
            if problem is not None:
                if z.fault is None:
                    events.append((EventCode.ZONE_FAULT, z.cfg.id))
                z.fault, z.clean_since = problem, None
                continue
            if z.bad_since is not None or z.reading is None:
                z.clean_since = None
                continue
            if z.clean_since is None:
                z.clean_since = tick
            if tick - z.clean_since >= _ticks(z.cfg.recovery_s):
                z.failed, z.fault, z.clean_since = False, None, None
                events.append((EventCode.ZONE_RESTORED, z.cfg.id))
                healthy[z.cfg.id] = z.reading
        self.healthy = MappingProxyType(healthy)
        self.statuses = tuple(
            ZoneStatus(id=i, failed=z.failed, fault=z.fault, reading=z.reading)
            for i, z in zones.items()
        )
        return events

    @staticmethod
    def _problem(z: _Zone, tick: int) -> str | None:
        cfg = z.cfg
        if tick - z.last_data >= _ticks(cfg.no_data_s):
            return "no_data"
        if z.reading is None:
            return None  # nothing yet, and not for long
        if cfg.stuck_s and tick - z.frame_since >= _ticks(cfg.stuck_s):
            return "stuck"
        if (
            cfg.implausible_s
            and z.bad_since is not None
            and tick - z.bad_since >= _ticks(cfg.implausible_s)
        ):
            return "implausible"
        return None
