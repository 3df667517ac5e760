"""Demand of each phase from its zone sensors, for the adaptive strategy. Pure.

A zone sensor (camera / radar, :class:`~edgectl.control.types.ZoneReading`) sees what the
loops can only estimate: every vehicle within ~150 m of the stop line, its distance and its
speed. :class:`ZoneDemand` turns the healthy zones of each phase into the SURTRAC clusters
the adaptive strategy schedules:

- **standing queue**: the halting vehicles (under :data:`HALTING_MPS`) and every vehicle
  within the reported queue length; they leave one saturation headway apart (per lane of
  the zone) after the start-up loss;
- **moving vehicles** of the object list: each arrives at the stop line after its distance
  over its speed, the speed floored at a share of the approach (free-flow) speed (a vehicle
  slowing for the red speeds up again on green), and leaves no sooner than one headway
  after the vehicle ahead of it in the zone;
- vehicles the zone counts but does not list (the object list is cut to ``max_objects``):
  halting ones join the standing queue, the others arrive from the zone's far end;
- **queue beyond the zone**: while the standing queue reaches the zone's far end in red,
  vehicles join it unseen at the phase's arrival rate (what the loops count).
- **missed vehicles**: a sensor misses a vehicle now and then for a frame; in red a standing
  queue only grows, so the largest standing count of the last :data:`RED_MEMORY_S` holds (in
  green the latest frame counts: the queue is leaving);
- **shared lanes**: a zone whose lanes feed several phases (a through lane carried by an
  overlap into the next stage, say) weighs its vehicles ``1 / phases`` in each phase's
  waiting count, so a stage does not win the choice on vehicles another stage serves as well
  (its departures and green need still count them whole).

Per lane, a failed zone (``view.zone_failed``) or a lane without a zone falls back to the
loops: the phase's loop estimate (:class:`~edgectl.control.strategies.maxpressure.LoopQueues`)
counts for the share of the phase's loop detectors that are not on a lane with a healthy
zone. A phase without a healthy zone is left to the loops alone (None), so a junction
without zone sensors is timed exactly as before.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from edgectl.config.model import Config, Zone
from edgectl.control.strategies.base import View
from edgectl.control.strategies.maxpressure import (
    SAT_HEADWAY_S,
    STARTUP_LOST_S,
    VEHICLE_SPACING_M,
)
from edgectl.control.types import ZoneReading

__all__ = [
    "AHEAD_SHARE",
    "COST_WEIGHT",
    "GROWTH",
    "HALTING_MPS",
    "HORIZON_S",
    "LaneDemand",
    "PhaseDemand",
    "ZoneDemand",
]

HALTING_MPS = 1.39  # under 5 km/h a vehicle stands (SUMO's and most sensors' threshold)
FREE_FLOW_SHARE = 0.8  # a moving vehicle reaches the stop line at least this fast (× approach)
MOVING_GREEN_S = 4.0  # a standing lane with nobody moving this far into green is blocked
AHEAD_SHARE = 1.5  # a red phase's queue: vehicles joining it within 1.5 lost times (a green called
# during a running green starts after that green's clearance and its own start-up)
HORIZON_S = 7.0  # arrivals from the zones weighed when extending a green (about 100 m)
COST_WEIGHT = 1.0  # the wait an extension imposes, weighed against what it serves
GROWTH = 1.0  # weight of the vehicles that arrive on held-up phases during an extension
DENSE_N = 2  # a moving queue: this many vehicles ...
DENSE_GAP = 1.5  # ... each within this many saturation headways of the one ahead
STALE_S = 2.0  # a reading older than this is timed from now (its own time is unreliable)
RED_MEMORY_S = 2.5  # in red a standing queue only grows: the largest count this recent holds
# (a sensor that misses a vehicle in one frame sees it in the next)


@dataclass(slots=True)
class LaneDemand:
    """One healthy zone's clusters: standing vehicles then arrivals (absolute times)."""

    headway: float  # saturation headway of the zone (its lanes side by side)
    standing: int = 0  # vehicles in the standing queue (listed or not)
    arrivals: list[float] = field(default_factory=list)  # stop-line arrivals, in order
    beyond: float = 0.0  # vehicles estimated queued beyond the zone's far end
    moving_in_queue: bool = False  # some vehicle of the standing queue area moves
    share: float = 1.0  # its vehicles' weight in a phase's waiting: 1 / the phases it feeds

    def waiting(self, start: float) -> float:
        """Vehicles a red until ``start`` delays: the standing queue, and every vehicle that
        arrives before its turn in the discharge of the queue ahead of it (it joins the
        queue) - the queue a green starting at ``start`` would find and serve."""
        h = self.headway
        n = self.standing + self.beyond
        last = start + (n - 1) * h
        for a in self.arrivals:
            if a >= last + h:
                break
            last += h
            n += 1
        return n

    def departures(self, start: float) -> list[float]:
        """Departure times if the lane is served from ``start`` (queue first, then in order
        of arrival, never closer than a headway)."""
        h = self.headway
        out: list[float] = []
        last = start - h
        for _ in range(round(self.standing + self.beyond)):
            last += h
            out.append(last)
        for a in self.arrivals:
            last = max(a, last + h)
            out.append(last)
        return out


def _dense(lane: LaneDemand, now: float) -> bool:
    """The next ``DENSE_N`` arrivals of the lane come a saturation headway or so apart,
    the first of them within one."""
    gap = lane.headway * DENSE_GAP
    last = now
    arr = lane.arrivals
    if len(arr) < DENSE_N:
        return False
    for a in arr[:DENSE_N]:
        if a - last > gap:
            return False
        last = a
    return True


@dataclass(slots=True)
class PhaseDemand:
    """The zone lanes of a phase, and the share of it still read from the loops."""

    lanes: list[LaneDemand]
    loop_share: float  # 0: zones see the whole phase; 1 would be loops alone


class ZoneDemand:
    """Per-phase zone demand, updated once per tick (see the module docstring)."""

    def __init__(self, config: Config) -> None:
        self.zones: dict[int, tuple[Zone, ...]] = {}
        self.loops: dict[int, frozenset[int]] = {}
        self.lanes_of: dict[int, int] = {}  # phase → lanes of its zones
        speeds = {p.id: p.approach_speed_kmh / 3.6 for p in config.phases}
        self.floor_mps = {p: max(1.0, v * FREE_FLOW_SHARE) for p, v in speeds.items()}
        for p in speeds:
            zs = tuple(z for z in config.zones if p in z.phases)
            if zs:
                self.zones[p] = zs
                self.lanes_of[p] = sum(z.lanes for z in zs)
            self.loops[p] = frozenset(d.id for d in config.detectors if p in d.call_phases)
        self._full_since: dict[int, float] = {}  # zone → when its queue reached the far end
        self._recent: dict[tuple[int, int], list[tuple[float, int]]] = {}  # (zone, phase) →
        # the standing counts of its last frames in red
        self.demand: dict[int, PhaseDemand] = {}

    @property
    def configured(self) -> bool:
        return bool(self.zones)

    def update(self, view: View, rate: dict[int, float]) -> None:
        """Rebuild every phase's demand from this tick's healthy zones; ``rate``: each
        phase's arrival rate (veh/s, from the loops) for the queue beyond a zone."""
        t = view.t
        readings = view.zones
        green = view.green_phases
        self.demand = {}
        for p, zs in self.zones.items():
            lanes: list[LaneDemand] = []
            seen: set[int] = set()
            for z in zs:
                r = readings.get(z.id)
                if r is None or view.zone_failed(z.id):
                    self._full_since.pop(z.id, None)
                    continue
                share = z.lanes / max(1, self.lanes_of[p])
                lanes.append(
                    self._lane(z, r, t, p, green=p in green, rate=rate.get(p, 0.0) * share)
                )
                seen.update(z.loops)
            if not lanes:
                continue  # loops alone
            phase_loops = self.loops[p]
            uncovered = len(phase_loops - seen) / len(phase_loops) if phase_loops else 0.0
            self.demand[p] = PhaseDemand(lanes, uncovered)

    def _lane(
        self, z: Zone, r: ZoneReading, t: float, p: int, *, green: bool, rate: float
    ) -> LaneDemand:
        lane = LaneDemand(headway=SAT_HEADWAY_S / z.lanes, share=1.0 / len(z.phases))
        base = r.t if t - STALE_S <= r.t <= t else t
        floor = self.floor_mps[p]
        queue_m = max(0.0, r.queue_m)
        standing = 0
        for distance, speed in r.objects:
            in_queue = speed < HALTING_MPS or distance <= queue_m
            if in_queue:
                standing += 1
                lane.moving_in_queue = lane.moving_in_queue or speed >= HALTING_MPS
            else:
                lane.arrivals.append(base + distance / max(speed, floor))
        listed_halting = sum(1 for _, v in r.objects if v < HALTING_MPS)
        unlisted = max(0, r.vehicles - len(r.objects))
        extra_halting = min(unlisted, max(0, r.halting - listed_halting))
        standing += extra_halting
        key = (z.id, p)
        if green:
            self._recent.pop(key, None)
        else:
            recent = [x for x in self._recent.get(key, []) if x[0] > t - RED_MEMORY_S]
            recent.append((t, standing))
            self._recent[key] = recent
            standing = max(n for _, n in recent)
        far = base + z.length_m / floor
        lane.arrivals.extend([far] * (unlisted - extra_halting))
        lane.arrivals.sort()
        lane.standing = standing
        # a standing queue reaching the far end of the zone: the rest of it is unseen
        full = queue_m >= z.length_m - VEHICLE_SPACING_M
        if not full:
            self._full_since.pop(z.id, None)
        elif not green:
            since = self._full_since.setdefault(z.id, t)
            lane.beyond = rate * (t - since)
        return lane

    # --- read side, per phase (None: loops alone) ---
    def phase(self, p: int) -> PhaseDemand | None:
        return self.demand.get(p)

    @staticmethod
    def discharging(d: PhaseDemand, green_for: float, now: float = 0.0) -> bool:
        """A lane of the phase still discharges a standing queue that moves (a lane where
        nobody moves well into green is blocked, and holding the green serves nobody), or
        a queue already moving: vehicles reaching the stop line one after the other at
        about the saturation headway (a queue longer than the zone, on its way)."""
        return any(
            (lane.standing >= 1 and (lane.moving_in_queue or green_for < MOVING_GREEN_S))
            or (DENSE_N > 0 and _dense(lane, now))
            for lane in d.lanes
        )

    @staticmethod
    def service_s(d: PhaseDemand, start: float) -> float:
        """Green the zone lanes need for the queue a green at ``start`` would find (the
        degree of saturation): the busiest lane's vehicles at its headway, plus the
        start-up loss."""
        need = max(lane.waiting(start) * lane.headway for lane in d.lanes)
        return need + STARTUP_LOST_S
