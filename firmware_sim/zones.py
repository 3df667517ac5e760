"""Emulated zone sensors (camera / radar) over the traffic model. Pure, seeded.

Each ``[[cabinet.zones]]`` of a profile is the zone of one movement's lanes from the stop
line to ``length_m`` upstream. The sensor measures ``rate_hz`` times a second: it sees the
vehicles of the traffic model (:meth:`~firmware_sim.traffic.TrafficModel.positions`) within
its range (``min(range_m, length_m)``), misses each one with probability ``miss`` in each
measurement, adds Gaussian noise (``noise`` m to distances, ``noise`` m/s to speeds), and
reports (:class:`~edgectl.cabinet.zones.ZoneFrame`): the vehicles seen, those halting (under
0.5 m/s), the queue (the back of the farthest halting vehicle, a vehicle length behind its
front), the mean speed and the object list, nearest first. Every measurement advances the
zone's counter (the measurement's number since start: 1..65535, then 1 again).

Faults (``--fault``)::

    zone_dead:N@START+DUR    zone N reports no measurement (counter 0, every value 0)
    zone_stuck:N@START+DUR   zone N repeats its last measurement, counter included
"""

from __future__ import annotations

import math
import random
import re
from collections.abc import Sequence
from dataclasses import dataclass

from edgectl.cabinet.profile import CabinetZone, Movement
from edgectl.cabinet.zones import HALTING_SPEED_MPS, ZoneFrame
from firmware_sim.traffic import TrafficModel

__all__ = ["ZoneFault", "ZoneSensors", "ZoneSettings", "is_zone_fault", "parse_zone_fault"]

_ZONE_FAULT = re.compile(
    r"^(?P<kind>zone_dead|zone_stuck):(?P<zone>\d{1,2})"
    r"(?:@(?P<start>[0-9.]{1,12})(?:\+(?P<dur>[0-9.]{1,12}))?)?$"
)


@dataclass(frozen=True, slots=True)
class ZoneFault:
    kind: str  # zone_dead | zone_stuck
    zone: int
    start: float = 0.0
    duration: float = math.inf

    def active(self, now: float) -> bool:
        return self.start <= now < self.start + self.duration

    def __str__(self) -> str:
        text = f"{self.kind}:{self.zone}@{self.start:g}"
        return text + ("" if self.duration == math.inf else f"+{self.duration:g}")


def is_zone_fault(text: str) -> bool:
    return text.strip().startswith("zone_")


def parse_zone_fault(text: str) -> ZoneFault:
    """Parse ``zone_dead:N[@S[+D]]`` or ``zone_stuck:N[@S[+D]]``; ValueError says why not."""
    m = _ZONE_FAULT.match(text.strip())
    if m is None:
        raise ValueError(
            f"bad zone fault {text[:60]!r}: zone_dead:N[@S[+D]] or zone_stuck:N[@S[+D]]"
        )
    try:
        start = float(m["start"] or 0)
        duration = float(m["dur"]) if m["dur"] else math.inf
    except ValueError:
        raise ValueError(f"bad number in {text[:60]!r}") from None
    zone = int(m["zone"])
    if not 1 <= zone <= 32:
        raise ValueError(f"zone 1..32: {text[:60]!r}")
    return ZoneFault(m["kind"], zone, start, duration)


@dataclass(frozen=True, slots=True)
class ZoneSettings:
    """How the emulated sensors see (``firmware-sim --zone-range/--zone-noise/--zone-miss``)."""

    range_m: float = math.inf  # detection range from the stop line (capped by the zone)
    noise: float = 0.0  # std of distance (m) and speed (m/s) noise
    miss: float = 0.0  # probability a vehicle is missed in one measurement
    rate_hz: float = 10.0  # measurements per second

    def __post_init__(self) -> None:
        if not self.range_m > 0.0:
            raise ValueError(f"zone range {self.range_m} m: > 0")
        if not 0.0 <= self.noise <= 10.0:
            raise ValueError(f"zone noise {self.noise}: 0..10")
        if not 0.0 <= self.miss <= 1.0:
            raise ValueError(f"zone miss {self.miss}: 0..1")
        if not 0.1 <= self.rate_hz <= 100.0:
            raise ValueError(f"zone rate {self.rate_hz} Hz: 0.1..100")


class ZoneSensors:
    """The zone sensors of one cabinet, measuring the traffic model."""

    def __init__(
        self,
        zones: Sequence[CabinetZone],
        movements: Sequence[Movement],
        traffic: TrafficModel,
        *,
        settings: ZoneSettings = ZoneSettings(),
        faults: Sequence[ZoneFault] = (),
        seed: int = 0,
    ) -> None:
        self.zones = tuple(zones)
        self.settings = settings
        self.faults = tuple(faults)
        known = {z.id for z in self.zones}
        for f in self.faults:
            if f.zone not in known:
                raise ValueError(f"fault {f}: no zone {f.zone} in the profile's cabinet")
        self._movements = {m.id: m for m in movements}
        self._traffic = traffic
        self._rng = {z.id: random.Random(f"{seed}:zone:{z.id}") for z in self.zones}
        self._index = -1
        self._frames: dict[int, ZoneFrame] = {}
        self.measurements = 0

    def _fault(self, kind: str, zone: int, now: float) -> bool:
        return any(f.kind == kind and f.zone == zone and f.active(now) for f in self.faults)

    def frames(self, now: float) -> tuple[ZoneFrame, ...]:
        """What the sensors report at ``now``: the latest measurement, made at most one
        measurement period ago (each period is measured once, so reads within it agree)."""
        index = math.floor(now * self.settings.rate_hz + 1e-9)
        if index != self._index:
            self._index = index
            for z in self.zones:
                self._frames[z.id] = self._measure(z, now)
            self.measurements += 1
        return tuple(self._frames[z.id] for z in self.zones)

    def _measure(self, zone: CabinetZone, now: float) -> ZoneFrame:
        if self._fault("zone_dead", zone.id, now):
            return ZoneFrame(zone=zone.id, frame=0)
        last = self._frames.get(zone.id)
        if last is not None and self._fault("zone_stuck", zone.id, now):
            return last
        rng = self._rng[zone.id]
        s = self.settings
        reach = min(s.range_m, zone.length_m)
        movement = self._movements[zone.movement]
        seen: list[tuple[float, float]] = []
        for true_distance, true_speed in self._traffic.positions(zone.movement, now):
            if true_distance > reach:
                break
            if s.miss and rng.random() < s.miss:
                continue
            distance, speed = true_distance, true_speed
            if s.noise:
                distance += rng.gauss(0.0, s.noise)
                speed += rng.gauss(0.0, s.noise)
            seen.append((round(min(max(distance, 0.0), reach), 1), round(max(speed, 0.0), 1)))
        seen.sort()
        halting = [d for d, v in seen if v < HALTING_SPEED_MPS]
        queue = max(halting) + movement.vehicle_length_m if halting else 0.0
        return ZoneFrame(
            zone=zone.id,
            frame=self._index % 0xFFFF + 1,  # the measurement's number: 1..65535, then 1
            vehicles=len(seen),
            halting=len(halting),
            queue_m=round(min(queue, zone.length_m), 1),
            speed_mps=round(sum(v for _, v in seen) / len(seen), 1) if seen else 0.0,
            objects=tuple(seen),
        )
