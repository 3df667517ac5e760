"""Zone sensors in the SUMO bench: E2 lane-area detectors feed the controller's zones.

Every E2 ``laneAreaDetector`` on an incoming lane of a signalised junction is one zone sensor
zone of that lane (:class:`~edgectl.config.model.Zone`: the phases the lane calls, the lane's
E1 loops as its fallback, its length from the stop line). After every SUMO step
:class:`ZoneFeed` reads each zone and hands the junction's controller what the field's zone
sensor gives (:class:`~edgectl.control.types.ZoneReading`, ``Inputs.zones``, as the daemon
does in :mod:`edgectl.daemon.zones`): vehicles in the zone, halting vehicles (under
:data:`HALTING_MPS`), the queue from the stop line, the mean speed, and the object list —
each vehicle's distance to the stop line and speed, nearest first, cut to the zone's
``max_objects``; no ids, routes or destinations. The controller's
:class:`~edgectl.control.zones.ZoneBank` diagnoses them as in the field.

Readings are causal: a step's measurement reaches the controller's ticks of the next step
(a sensor latency of up to one step), never the ticks that led to it.

:class:`ZoneDegrade` makes the sensors worse, for robustness runs: a range cap, Gaussian
noise on distances and speeds, vehicles missed at random in each frame, whole frames
dropped, and dead zones (a seeded draw per junction) that never report — the controller
fails those ``no_data`` and its strategies use the lane's loops.
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from types import ModuleType
from typing import Any

from edgectl.config.model import Zone
from edgectl.control.types import ZoneReading
from edgectl.sumo.model import JunctionModel

__all__ = [
    "HALTING_MPS",
    "MAX_ZONES",
    "ZONE_MAX_OBJECTS",
    "SumoZone",
    "ZoneDegrade",
    "ZoneFeed",
    "zones_of",
]

HALTING_MPS = 1.39  # SUMO's E2 halting threshold (5 km/h)
QUEUE_GAP_M = 12.0  # a gap this long behind a vehicle ends the queue
ZONE_MAX_OBJECTS = 30  # a 150 m zone holds about 20 queued vehicles
MAX_ZONES = 32


@dataclass(frozen=True, slots=True)
class ZoneDegrade:
    """How much worse than SUMO's ground truth the zone sensors are.

    ``range_m``: nothing beyond this distance from the stop line is seen (the zone is cut
    to it); ``noise_m`` / ``noise_mps``: standard deviation of the error on each object's
    distance / speed; ``miss``: probability a vehicle is missing from a frame;
    ``dropout``: probability a zone's whole frame is lost; ``dead``: zones per junction
    that never report; ``seed``: of every random draw.
    """

    range_m: float | None = None
    noise_m: float = 0.0
    noise_mps: float = 0.0
    miss: float = 0.0
    dropout: float = 0.0
    dead: int = 0
    seed: int = 0

    @classmethod
    def parse(cls, text: str) -> ZoneDegrade:
        """``"range=80,miss=0.1,dead=1"`` (keys: range, noise, speed_noise, miss, dropout,
        dead, seed); an empty string degrades nothing."""
        alias = {"range": "range_m", "noise": "noise_m", "speed_noise": "noise_mps"}
        keys = ", ".join([*alias, "miss", "dropout", "dead", "seed"])
        known = {f.name for f in fields(cls)}
        kwargs: dict[str, Any] = {}
        for part in filter(None, (p.strip() for p in text.split(","))):
            key, sep, value = part.partition("=")
            name = alias.get(key.strip(), key.strip())
            if not sep or name not in known:
                raise ValueError(f"zone degradation {part!r}: use KEY=VALUE, keys {keys}")
            integer = name in ("dead", "seed")
            try:
                kwargs[name] = int(value) if integer else float(value)
            except ValueError:
                kind = "an integer" if integer else "a number"
                raise ValueError(f"zone degradation {part!r}: {key.strip()} takes {kind}") from None
        d = cls(**kwargs)
        if not (0.0 <= d.miss <= 1.0 and 0.0 <= d.dropout <= 1.0):
            raise ValueError("zone degradation: miss and dropout are probabilities")
        if d.range_m is not None and not d.range_m > 0:  # inf: no cap
            raise ValueError("zone degradation: range must be positive")
        if not (0 <= d.noise_m < math.inf and 0 <= d.noise_mps < math.inf) or d.dead < 0:
            raise ValueError(
                "zone degradation: noise is finite and neither it nor dead is negative"
            )
        return d

    @property
    def active(self) -> bool:
        return self != ZoneDegrade(seed=self.seed)


@dataclass(frozen=True, slots=True)
class SumoZone:
    """One E2 detector as a zone of a junction."""

    detector: str  # SUMO E2 id
    lane: str
    lane_length_m: float  # the stop line is at this lane position
    zone: Zone  # the controller's configuration of the zone


def zones_of(
    ls: ModuleType,
    models: Mapping[str, JunctionModel],
    *,
    dual_ring: bool = True,
    degrade: ZoneDegrade | None = None,
) -> dict[str, tuple[SumoZone, ...]]:
    """The scenario's E2 detectors on signalised incoming lanes, per tls (none: empty)."""
    lane_tls = {g.in_lane: tls for tls, m in models.items() for g in m.groups}
    found: dict[str, list[tuple[str, str, float, float]]] = {}
    for det in sorted(ls.lanearea.getIDList()):
        lane = ls.lanearea.getLaneID(det)
        tls = lane_tls.get(lane)
        if tls is None:
            continue
        lane_length = float(ls.lane.getLength(lane))
        start = float(ls.lanearea.getPosition(det))
        found.setdefault(tls, []).append((det, lane, lane_length, lane_length - start))
    cap = degrade.range_m if degrade is not None else None
    out: dict[str, tuple[SumoZone, ...]] = {}
    for tls, dets in found.items():
        model = models[tls]
        zones: list[SumoZone] = []
        for det, lane, lane_length, reach in sorted(dets, key=lambda d: (d[1], d[0])):
            phases = model.lane_phases(lane, dual_ring=dual_ring)
            if not phases or len(zones) >= MAX_ZONES:
                continue
            loops = tuple(loop.detector_id for loop in model.loops if loop.lane == lane)
            length = min(reach, cap) if cap is not None else reach
            zone = Zone(
                id=len(zones) + 1,
                phases=phases,
                lane=lane[:32],
                lanes=1,
                length_m=round(max(1.0, min(length, 1000.0)), 1),
                loops=loops,
                max_objects=ZONE_MAX_OBJECTS,
            )
            zones.append(SumoZone(det, lane, lane_length, zone))
        if zones:
            out[tls] = tuple(zones)
    return out


class ZoneFeed:
    """Reads every zone after each SUMO step and hands the readings to the junctions.

    ``targets``: tls id → an object with a ``zones`` attribute (the bench's
    :class:`~edgectl.sumo.controls.EdgectlJunction`) set to the junction's readings."""

    def __init__(
        self,
        zones: Mapping[str, Sequence[SumoZone]],
        targets: Mapping[str, Any],
        degrade: ZoneDegrade | None = None,
    ) -> None:
        self.zones = {k: tuple(v) for k, v in zones.items()}
        self.targets = targets
        self.degrade = degrade or ZoneDegrade()
        self.rng = random.Random(self.degrade.seed)
        self.dead: set[str] = set()
        for tls in sorted(self.zones):
            dets = [z.detector for z in self.zones[tls]]
            self.dead |= set(self.rng.sample(dets, min(self.degrade.dead, len(dets))))
        self.frame = 0
        self.readings = 0
        self.dropped = 0

    def after_step(self, ls: ModuleType, t: float) -> None:
        """Measure every zone at simulation time ``t`` (just stepped to)."""
        self.frame += 1
        for tls, zones in self.zones.items():
            out: list[ZoneReading] = []
            for z in zones:
                if z.detector in self.dead:
                    continue
                if self.degrade.dropout and self.rng.random() < self.degrade.dropout:
                    self.dropped += 1
                    continue
                out.append(self.read(ls, z, t))
            self.readings += len(out)
            target = self.targets.get(tls)
            if target is not None:
                target.zones = tuple(out)

    def read(self, ls: ModuleType, z: SumoZone, t: float) -> ZoneReading:
        """One zone's measurement now: what a zone sensor reports, nothing more."""
        d = self.degrade
        seen: list[tuple[float, float, float]] = []  # distance, speed, vehicle length
        for vid in ls.lanearea.getLastStepVehicleIDs(z.detector):
            distance = z.lane_length_m - float(ls.vehicle.getLanePosition(vid))
            speed = float(ls.vehicle.getSpeed(vid))
            if d.miss and self.rng.random() < d.miss:
                continue
            if d.noise_m:
                distance += self.rng.gauss(0.0, d.noise_m)
            if d.noise_mps:
                speed += self.rng.gauss(0.0, d.noise_mps)
            distance = min(max(0.0, distance), z.zone.length_m)
            if d.range_m is not None and distance >= d.range_m:
                continue
            seen.append((distance, max(0.0, speed), float(ls.vehicle.getLength(vid))))
        seen.sort()
        halting = sum(1 for _, v, _ in seen if v < HALTING_MPS)
        # the queue: back of the farthest halting vehicle in the line of vehicles standing
        # or creeping from the stop line (a gap over QUEUE_GAP_M ends the line)
        queue = back = 0.0
        for distance, speed, length in seen:
            if distance - back > QUEUE_GAP_M:
                break
            back = distance + length
            if speed < HALTING_MPS:
                queue = back
        mean = sum(v for _, v, _ in seen) / len(seen) if seen else 0.0
        objects = tuple((round(dist, 1), round(v, 1)) for dist, v, _ in seen)
        return ZoneReading(
            zone=z.zone.id,
            frame=self.frame,
            vehicles=len(seen),
            halting=halting,
            queue_m=round(min(queue, z.zone.length_m), 1),
            mean_speed_mps=round(mean, 2) if math.isfinite(mean) else 0.0,
            objects=objects[: z.zone.max_objects],
            t=t,
        )

    def summary(self) -> dict[str, Any]:
        return {
            "zones": sum(len(v) for v in self.zones.values()),
            "frames": self.frame,
            "readings": self.readings,
            "dropped_frames": self.dropped,
            "dead": sorted(self.dead),
        }
