"""The traffic on the approaches: a pure, seeded model stepped in (virtual) time.

Per movement (a lane group served by one channel):

- vehicles enter ``entry_m`` upstream of the stop line (Poisson arrivals at the movement's rate
  times the demand multiplier) and travel at the free-flow speed;
- they discharge across the stop line at the saturation headway ``3600 / (s · lanes)`` once
  the channel shows green, the first after the start-up lost time; queued vehicles may still
  leave during the first ``yellow_use_s`` of yellow. Under flashing red they leave after a
  stop at a 4 s headway, under flashing yellow without stopping; under red they wait;
- a vehicle's delay is its actual stop-line time minus its free-flow stop-line time.

Detectors are occupied by modelled vehicles: a 4.5 m vehicle over a 2 m loop at its speed, a
vehicle stopped at the stop line keeps the stop-bar loop occupied, and a queue that reaches
back to an advance loop keeps that one occupied too.

Nothing here reads a clock or does I/O: ``step(now, dt, signals)`` advances the model from
``now`` to ``now + dt``.
"""

from __future__ import annotations

import bisect
import math
import random
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

from edgectl.cabinet.channels import ChannelState
from edgectl.cabinet.profile import CabinetDetector, DetectorPosition, Movement, PedestrianButton

__all__ = ["MovementStats", "TrafficModel"]

_EXIT_SPEED_MS = 4.0  # speed of a vehicle leaving from a stop, over the stop-bar loop
_FLASH_RED_HEADWAY_S = 4.0  # all-way-stop headway under flashing red
_FLASH_RED_STOP_S = 2.0
_LOOP_GAP_S = 0.3  # the next queued vehicle rolls onto the stop-bar loop this long after
_ENTRY_MARGIN_M = 100.0

RateFunction = Callable[[float, str], float]
"""(time, movement id) → arrivals in veh/h (schedule × demand already applied)."""


@dataclass(slots=True)
class _Vehicle:
    t_enter: float
    t_ff: float  # free-flow time at the stop line
    loop_on: float  # when it occupies the stop-bar loop (if it reaches the head)


@dataclass(slots=True)
class MovementStats:
    arrived: int = 0
    served: int = 0
    served_flash: int = 0  # of ``served``: left under flashing red, not on a controller's green
    delay_sum_s: float = 0.0
    delay_max_s: float = 0.0

    @property
    def delay_s_mean(self) -> float:
        return self.delay_sum_s / self.served if self.served else 0.0


@dataclass(slots=True)
class _Movement:
    spec: Movement
    speed_ms: float
    entry_m: float
    headway_s: float
    rng: random.Random
    queue: deque[_Vehicle] = field(default_factory=deque)
    next_arrival: float = math.inf
    rate_vph: float = -1.0
    last_dep: float = -math.inf
    last_clear: float = -math.inf  # when the last departed vehicle left the stop-bar loop
    green_start: float | None = None
    yellow_start: float | None = None
    state: ChannelState = ChannelState.OFF
    stats: MovementStats = field(default_factory=MovementStats)
    departures: list[tuple[float, float]] = field(default_factory=list)  # (t_dep, delay)


class TrafficModel:
    """Vehicles and pedestrians of one junction.

    ``rate`` overrides the arrival rate (veh/h) per movement and time; by default each
    movement's ``rate_vph`` times ``demand`` (a multiplier, 1.0 = the profile's rates).
    ``keep_departures`` keeps every (departure time, delay) per movement (tests, analysis).
    """

    def __init__(
        self,
        movements: Iterable[Movement],
        detectors: Iterable[CabinetDetector] = (),
        pedestrians: Iterable[PedestrianButton] = (),
        *,
        seed: int = 0,
        rate: RateFunction | None = None,
        keep_departures: bool = False,
    ) -> None:
        self._rate = rate
        self.demand = 1.0
        self._keep = keep_departures
        self._detectors = tuple(detectors)
        self._peds = tuple(pedestrians)
        self._ped_rng = random.Random(f"{seed}:peds")
        self._ped_next = [math.inf] * len(self._peds)
        self._ped_pressed: set[int] = set()
        self._ped_started = False
        self._movements: dict[str, _Movement] = {}
        reach = {d.movement: d.distance_m for d in self._detectors}
        for spec in movements:
            speed = spec.speed_kmh / 3.6
            self._movements[spec.id] = _Movement(
                spec=spec,
                speed_ms=speed,
                entry_m=reach.get(spec.id, 0.0) + _ENTRY_MARGIN_M,
                headway_s=3600.0 / (spec.saturation_vph_per_lane * spec.lanes),
                rng=random.Random(f"{seed}:{spec.id}"),
            )

    # ---- queries --------------------------------------------------------------------------

    @property
    def movement_ids(self) -> tuple[str, ...]:
        return tuple(self._movements)

    def stats(self, movement: str) -> MovementStats:
        return self._movements[movement].stats

    def departures(self, movement: str) -> list[tuple[float, float]]:
        """(departure time, delay) of every served vehicle (only with ``keep_departures``)."""
        return self._movements[movement].departures

    def on_approach(self, movement: str) -> int:
        """Vehicles that arrived and have not crossed the stop line yet."""
        return len(self._movements[movement].queue)

    def waits(self, movement: str, now: float) -> list[float]:
        """How long each vehicle still on the approach has waited at ``now``: ``now`` minus
        its free-flow stop-line time, for those past it (the delay they have so far)."""
        return [now - v.t_ff for v in self._movements[movement].queue if v.t_ff < now]

    def longest_wait(self, movement: str, now: float) -> float:
        """How long the longest-waiting vehicle still on the approach has waited at ``now``
        (0 when nobody is waiting)."""
        m = self._movements[movement]
        return max(0.0, now - m.queue[0].t_ff) if m.queue else 0.0

    def delay_s_mean_with_waiting(self, now: float, movement: str | None = None) -> float:
        """Mean delay over the vehicles served and those still waiting at ``now`` (counted
        with the delay they have so far, a lower bound), of one movement or of all: vehicles
        a controller leaves waiting count against it, where :attr:`delay_s_mean` (served
        only) would not see them."""
        total = 0.0
        n = 0
        for mid, m in self._movements.items():
            if movement is not None and mid != movement:
                continue
            waits = self.waits(mid, now)
            total += m.stats.delay_sum_s + sum(waits)
            n += m.stats.served + len(waits)
        return total / n if n else 0.0

    def queue_length(self, movement: str, now: float) -> int:
        """Vehicles that reached the stop line (free-flow) but have not crossed it."""
        m = self._movements[movement]
        return sum(1 for v in m.queue if v.t_ff <= now)

    def positions(self, movement: str, now: float) -> list[tuple[float, float]]:
        """(distance upstream of the stop line m, speed m/s) of every vehicle on the approach
        at ``now``, nearest first. The model keeps a point queue, so positions are derived:
        the queued vehicles (past their free-flow stop-line time) stand ``jam_spacing_m``
        apart per lane from the stop line; the others travel at the free-flow speed, and
        one that would be inside the standing queue has joined its back."""
        m = self._movements[movement]
        lanes = m.spec.lanes
        jam = m.spec.jam_spacing_m
        out: list[tuple[float, float]] = []
        standing = 0
        for v in m.queue:
            slot = (standing // lanes) * jam
            if v.t_ff <= now or (v.t_ff - now) * m.speed_ms <= slot:
                out.append((slot, 0.0))
                standing += 1
            else:
                out.append(((v.t_ff - now) * m.speed_ms, m.speed_ms))
        return sorted(out)

    @property
    def arrived(self) -> int:
        return sum(m.stats.arrived for m in self._movements.values())

    @property
    def served(self) -> int:
        return sum(m.stats.served for m in self._movements.values())

    @property
    def served_flash(self) -> int:
        return sum(m.stats.served_flash for m in self._movements.values())

    @property
    def delay_s_mean(self) -> float:
        served = self.served
        total = sum(m.stats.delay_sum_s for m in self._movements.values())
        return total / served if served else 0.0

    # ---- stepping -------------------------------------------------------------------------

    def step(self, now: float, dt: float, signals: Mapping[int, ChannelState]) -> frozenset[int]:
        """Advance from ``now`` to ``now + dt`` under ``signals`` (channel → what it shows).

        Returns the phases whose pedestrian push-button was pressed in this step.
        """
        end = now + dt
        for m in self._movements.values():
            state = signals.get(m.spec.channel, ChannelState.R)
            self._signal(m, now, state)
            self._arrivals(m, now, end)
            self._discharge(m, now, end)
        return self._pedestrians(now, end)

    def _signal(self, m: _Movement, now: float, state: ChannelState) -> None:
        if state != m.state:
            if state == ChannelState.G:
                m.green_start = now
            elif state == ChannelState.Y:
                m.yellow_start = now
            if state not in (ChannelState.G, ChannelState.Y):
                m.green_start = None
            m.state = state

    def _current_rate(self, m: _Movement, now: float) -> float:
        if self._rate is not None:
            return max(0.0, self._rate(now, m.spec.id))
        return m.spec.rate_vph * max(0.0, self.demand)

    def _arrivals(self, m: _Movement, now: float, end: float) -> None:
        rate = self._current_rate(m, now)
        if rate != m.rate_vph:  # memoryless: redraw from now when the rate changes
            m.rate_vph = rate
            m.next_arrival = now + m.rng.expovariate(rate / 3600.0) if rate > 0 else math.inf
        travel = m.entry_m / m.speed_ms
        while m.next_arrival < end:
            t = m.next_arrival
            m.queue.append(_Vehicle(t_enter=t, t_ff=t + travel, loop_on=math.inf))
            m.stats.arrived += 1
            m.next_arrival = t + m.rng.expovariate(m.rate_vph / 3600.0)

    def _departure_time(self, m: _Movement, v: _Vehicle) -> float | None:
        """Earliest stop-line time of the head vehicle under the current signal, or None."""
        state = m.state
        if state in (ChannelState.G, ChannelState.Y):
            td = max(v.t_ff, m.last_dep + m.headway_s)
            if m.green_start is not None:
                td = max(td, m.green_start + m.spec.startup_lost_s)
            if state == ChannelState.Y:
                if m.yellow_start is None or td >= m.yellow_start + m.spec.yellow_use_s:
                    return None
                if m.green_start is None:
                    return None
            return td
        if state == ChannelState.FY:
            return max(v.t_ff, m.last_dep + m.headway_s)
        if state == ChannelState.FR:
            headway = max(m.headway_s, _FLASH_RED_HEADWAY_S)
            return max(v.t_ff + _FLASH_RED_STOP_S, m.last_dep + headway)
        return None

    def _discharge(self, m: _Movement, now: float, end: float) -> None:
        loop = self._stop_loop_m(m.spec.id)
        while m.queue:
            head = m.queue[0]
            if head.loop_on == math.inf:
                head.loop_on = max(head.t_ff - loop / m.speed_ms, m.last_clear + _LOOP_GAP_S)
            if head.t_ff >= end:
                return
            td = self._departure_time(m, head)
            if td is None or td >= end:
                return
            td = max(td, now)
            m.queue.popleft()
            delay = max(0.0, td - head.t_ff)
            stopped = delay > 0.5
            clear = (
                m.spec.vehicle_length_m / _EXIT_SPEED_MS
                if stopped
                else m.spec.vehicle_length_m / m.speed_ms
            )
            m.last_dep = td
            m.last_clear = td + clear
            m.stats.served += 1
            if m.state == ChannelState.FR:
                m.stats.served_flash += 1
            m.stats.delay_sum_s += delay
            m.stats.delay_max_s = max(m.stats.delay_max_s, delay)
            if self._keep:
                m.departures.append((td, delay))

    def _stop_loop_m(self, movement: str) -> float:
        for d in self._detectors:
            if d.movement == movement and d.position == DetectorPosition.STOP_BAR:
                return d.loop_length_m
        return 2.0

    def _pedestrians(self, now: float, end: float) -> frozenset[int]:
        if not self._ped_started:
            self._ped_started = True
            for i, p in enumerate(self._peds):
                self._ped_next[i] = (
                    now + self._ped_rng.expovariate(p.rate_per_h / 3600.0)
                    if p.rate_per_h > 0
                    else math.inf
                )
        pressed: set[int] = set()
        for i, p in enumerate(self._peds):
            while self._ped_next[i] < end:
                pressed.add(p.phase)
                self._ped_next[i] += self._ped_rng.expovariate(p.rate_per_h / 3600.0)
        return frozenset(pressed)

    # ---- detectors ------------------------------------------------------------------------

    def presence(self, now: float) -> frozenset[int]:
        """Ids of the detectors a vehicle occupies at ``now``."""
        on: set[int] = set()
        for d in self._detectors:
            m = self._movements.get(d.movement)
            if m is not None and self._occupied(m, d, now):
                on.add(d.id)
        return frozenset(on)

    def _occupied(self, m: _Movement, d: CabinetDetector, now: float) -> bool:
        v = m.speed_ms
        length = m.spec.vehicle_length_m
        if d.position == DetectorPosition.STOP_BAR:
            if now < m.last_clear:
                return True
            return bool(m.queue) and m.queue[0].loop_on <= now
        # advance loop at distance_m upstream: free-flow passages ...
        pass_before = (d.distance_m + d.loop_length_m) / v  # front reaches loop
        pass_after = (d.distance_m - length) / v  # rear leaves loop
        lo = bisect.bisect_left(m.queue, now + pass_after, key=lambda x: x.t_ff)
        hi = bisect.bisect_right(m.queue, now + pass_before, key=lambda x: x.t_ff)
        if hi > lo:
            return True
        # ... and a stationary queue reaching back over the loop
        queued = bisect.bisect_right(m.queue, now, key=lambda x: x.t_ff)
        return queued * m.spec.jam_spacing_m / m.spec.lanes > d.distance_m
