"""Max-pressure control from loop detectors, with the guards that make it usable.

Naive max pressure (switch to the phase with the largest queue every few seconds) is far worse
than actuated control: every switch costs a yellow, a red clearance and a start-up loss. This
one only *requests*; the engine still enforces min green, clearances and barriers:

- **queues from loops only** (:class:`LoopQueues`): vehicles between the advance loop
  (~40 m) and the stop bar = advance actuations in − stop-bar departures out, floored by the
  stop-bar presence, raised to the zone's capacity (plus the arrival rate times the blocked
  time; with ``FREE_RATE`` at least the rate counted in red while no queue covered the
  advance loops, which does not sink when the approach saturates; with ``SERVED_LANES`` only
  the share of it on lanes no green phase serves) when a standing queue
  covers the advance loop (occupied without a break; or, with
  ``COVER_BY_OCCUPANCY``, most of the last seconds: a queue creeping over it), and
  re-synchronised in green once every stop bar of the phase has shown a gap longer than a
  saturation headway (no standing queue left: only the vehicles seen moving over the advance
  loop remain). Only positive evidence resets the count (``KEEP_BLOCKED``, issue 19): a stop
  bar occupied for ``BAR_BLOCKED_S`` in green is blocked (a left-turner waiting for a gap),
  the gap after such a vehicle counts only after ``BLOCKED_GAP_S`` or once a vehicle passed
  moving, the re-synchronisation applies only while every stop bar shows its gap, and nothing
  is cleared while a stop bar is blocked; in green, advance actuations are vehicles of the
  queue beyond moving up until the estimate of that queue is used up (or the advance loops
  show a gap once the start-up wave has passed) — and, for max pressure (``beyond_grows``),
  vehicles keep joining that queue's back in green, so a green that ends before it has
  moved up leaves its rest in the next red's estimate.
  No vehicle positions from a simulator are used;
- **clearance-aware switching**: leave the green phase only when it has nothing left to serve
  or when the best competing phase's pressure exceeds the current one by more than what the
  competing phase could discharge during the lost time of the switch;
- **starvation guard**: a phase whose call has waited ``max_wait`` seconds is served next,
  ending the green unless the green phase's own queue is the larger
  (``MAXPRESSURE_GUARD_QUEUE``: cut, that queue would wait a whole turn more; the max green
  still ends it);
- **max green**: never longer than the plan's max 2 (max 1 when no max 2);
- **barriers**: once a ring's green is past its max green with its best next phase across
  the barrier, the other rings are not kept in their barrier group (they end their green
  when due and the engine takes every ring to the barrier), so no ring's phases can hold
  another ring's green — and the other group's calls — for ever;
- phases whose detectors failed get the engine's actuated behaviour (their own constant
  call, gap/max-out) — the strategy neither holds nor forces them off.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field

from edgectl.config.junction import barrier_groups
from edgectl.config.model import Config, DetectorType, Mode, Plan
from edgectl.control.strategies.base import View
from edgectl.control.types import NO_REQUESTS, Interval, Requests

__all__ = [
    "BEYOND_BY_CAPACITY",
    "COVER_BY_OCCUPANCY",
    "FREE_RATE",
    "KEEP_BLOCKED",
    "SERVED_LANES",
    "LoopQueues",
    "MaxPressure",
    "PhaseLoops",
    "lost_s",
    "max_green_s",
]

# keep a standing queue behind a blocked stop bar, reset the count only on positive evidence
# and keep the queue beyond the advance loop until it has moved up (issue 19); False: the
# estimator before it (the default of every LoopQueues built with ``keep_blocked=None``, so a
# bench can compare both)
KEEP_BLOCKED = True
# ... and take an advance loop occupied COVERED_OCCUPANCY of the last OCCUPANCY_WINDOW_S as
# covered by a standing queue: off by default, it made maxpressure worse on the saturated
# junction and changed nothing for adaptive (issue 19 bench, loops alone)
COVER_BY_OCCUPANCY = False
# with KEEP_BLOCKED: bound the queue beyond the advance loop by the count above the zone's
# capacity, as before (each stop-bar departure shrinks it). Off by default: the vehicles
# beyond are used up only as they cross the advance loop (better on saturated, turning and
# arterial, worse on the single-lane 'narrow' junction; issue 19 bench, loops alone)
BEYOND_BY_CAPACITY = False
# with KEEP_BLOCKED: the vehicles that join a queue covering the advance loop unseen arrive at
# the larger of the average rate and the rate counted in red while no advance loop was
# covered. The average (advance counts, or stop-bar departures) sinks when the approach is
# saturated, where the queue beyond the loop then grew faster than its estimate, cycle after
# cycle (issue 19, `narrow`: 660-810 veh/h measured against 930 veh/h of demand)
FREE_RATE = True
# with KEEP_BLOCKED: in green, vehicles keep joining the back of a queue that stands beyond the
# advance loop (at the rate of FREE_RATE) until that queue has moved up, so a green that ends
# before it has leaves the rest of it in the estimate of the next red. Off for the estimator's
# default (adaptive: issue 19 loops 0.78 -> 0.79 x sumo:actuated, the old matrix 0.829 ->
# 0.838), on for MaxPressure, whose pressure is the estimate itself (the old matrix 0.998 ->
# 0.963, `narrow` 1.30 -> 1.06 x sumo:actuated)
BEYOND_GROWS = False
MAXPRESSURE_BEYOND_GROWS = True
# max pressure's starvation guard does not cut a green whose queue is the longer (issue 19)
MAXPRESSURE_GUARD_QUEUE = True
# with KEEP_BLOCKED: the unseen vehicles joining a covered queue in red come only on the
# phase's lanes that no green phase serves (the share of its advance counts there, at least
# their share of its lanes), for the time such a green runs. A lane the phase shares with a
# green phase (an overlap: a T's through running in two stages) flows, and counting its rate
# as joining the queue had the estimate run ahead of the queue (issue 19, an unseen T,
# `tee_h104`: adaptive on loops 1.18 -> 1.04 x sumo:actuated). Not for adaptive with zone
# sensors, which reads the estimate by the share of a phase's lanes without a healthy zone
SERVED_LANES = True
SAT_HEADWAY_S = 2.0  # saturation headway per lane (1800 veh/h)
STARTUP_LOST_S = 2.0  # start-up lost time of a queue
VEHICLE_SPACING_M = 7.5  # jam spacing: length + gap
BLOCKED_S = 2.5  # an advance loop occupied this long is covered by a standing queue
CLEARED_S = 3.0  # a green phase with every loop quiet this long has no queue left
DISCHARGED_GAP_S = 2.5  # a stop-bar gap this long in green: the standing queue has gone
STARTUP_GAP_S = 4.0  # ... not counted in the first seconds of green (the queue starting up)
BAR_BLOCKED_S = 4.0  # a stop bar occupied this long in green: its lane is blocked (a
# left-turner waiting for a gap, spillback): a moving vehicle clears a point loop in ~1 s and
# the first of a standing queue within ~3 s of green
BAR_REFILL_S = 1.0  # a stop bar left this recently in green by a departing vehicle: the next
# one of a discharging queue rolls onto it (a stop-bar-only queue is not served yet)
BLOCKED_GAP_S = 8.0  # a stop-bar gap after a blocked occupancy counts only this long: the
# vehicles behind it may still stand (counts in − out stay the truth meanwhile)
OCCUPANCY_WINDOW_S = 5.0  # an advance loop's time-occupancy over this window ...
COVERED_OCCUPANCY = 0.7  # ... this high: a queue stands over it, flickering at each gap
START_WAVE_MPS = 5.0  # the start-up wave runs back through a standing queue at ~18 km/h
RATE_WINDOW_S = 120.0  # the arrival rate is counted over this window
RATE_MIN_WINDOW_S = 30.0  # ... and over at least this much at the start


@dataclass
class PhaseLoops:
    """The loops of one phase and the estimator's state for it."""

    phase: int
    stop_bar: list[int] = field(default_factory=list)
    advance: list[int] = field(default_factory=list)
    capacity: float = 0.0  # vehicles that fit between the advance loops and the stop bar
    travel_s: float = 3.0  # advance loop → stop bar at the approach speed
    wave_s: float = 8.0  # green start → a standing queue moves off over the advance loop
    count: float = 0.0  # vehicles estimated between the advance loop and the stop bar
    beyond: float = 0.0  # ... of which estimated queued upstream of the advance loop
    rate: float = 0.0  # arrival rate (veh/s) over the last RATE_WINDOW_S
    free_s: float = 0.0  # red time with no advance loop covered (a RATE_WINDOW_S window of it)
    free_n: float = 0.0  # advance actuations in that time
    arrivals: deque[float] = field(default_factory=deque)  # recent advance actuation times
    departed: deque[float] = field(default_factory=deque)  # stop-bar departures in the window
    last_activity: float = 0.0
    blocked_since: float | None = None
    blocked_base: float = 0.0
    # covered time in which the phase's lanes were served by a green phase (its share of
    # the lanes times the time): no vehicle joined the unseen queue there (SERVED_LANES)
    served_s: float = 0.0
    discharged: set[int] = field(default_factory=set)  # stop bars that showed a gap this green
    # stop bars whose latest occupancy this green was a vehicle standing on them (blocked)
    stuck: set[int] = field(default_factory=set)

    @property
    def lanes(self) -> int:
        return max(1, len(self.stop_bar) or len(self.advance))

    @property
    def free_rate(self) -> float:
        """Arrival rate (veh/s) counted in red while no queue covered an advance loop; 0
        until ``RATE_MIN_WINDOW_S`` of such time."""
        return self.free_n / self.free_s if self.free_s >= RATE_MIN_WINDOW_S else 0.0

    @property
    def join_rate(self) -> float:
        """Rate (veh/s) at which vehicles join a queue standing beyond the advance loop,
        unseen: the average, or the free-counted rate when that is higher (the average
        sinks when the approach saturates)."""
        return max(self.rate, self.free_rate)


class LoopQueues:
    """Per-phase queue estimates from stop-bar presence and advance counts, updated per tick."""

    def __init__(
        self,
        config: Config,
        *,
        keep_blocked: bool | None = None,
        cover_by_occupancy: bool | None = None,
        beyond_by_capacity: bool | None = None,
        free_rate: bool | None = None,
        beyond_grows: bool | None = None,
        served_lanes: bool | None = None,
    ) -> None:
        self.config = config
        self.keep_blocked = KEEP_BLOCKED if keep_blocked is None else keep_blocked
        self.cover_by_occupancy = (
            COVER_BY_OCCUPANCY if cover_by_occupancy is None else cover_by_occupancy
        )
        self.beyond_by_capacity = (
            BEYOND_BY_CAPACITY if beyond_by_capacity is None else beyond_by_capacity
        )
        self.count_free_rate = (FREE_RATE if free_rate is None else free_rate) and self.keep_blocked
        self.beyond_grows = (
            BEYOND_GROWS if beyond_grows is None else beyond_grows
        ) and self.keep_blocked
        self.served_lanes = (
            SERVED_LANES if served_lanes is None else served_lanes
        ) and self.keep_blocked
        self.phases: dict[int, PhaseLoops] = {p.id: PhaseLoops(p.id) for p in config.phases}
        speeds = {p.id: p.approach_speed_kmh / 3.6 for p in config.phases}
        self._det_phases: dict[int, tuple[int, ...]] = {}
        self._advance: set[int] = set()
        self._capacity: dict[int, float] = {}  # advance loop → vehicles between it and the bar
        self._lanes: dict[int, int] = {d.id: d.lanes for d in config.detectors}
        # advance loop → its actuations in the rate window (a phase's counts are its loops')
        self._adv_counted: dict[int, deque[float]] = {}
        for d in config.detectors:
            self._det_phases[d.id] = tuple(p for p in d.call_phases if p in self.phases)
            for p in self._det_phases[d.id]:
                pl = self.phases[p]
                if d.type is DetectorType.ADVANCE:
                    self._advance.add(d.id)
                    self._adv_counted.setdefault(d.id, deque())
                    pl.advance.append(d.id)
                    self._capacity[d.id] = d.lanes * max(1.0, d.distance_m / VEHICLE_SPACING_M)
                    pl.capacity += self._capacity[d.id]
                    pl.travel_s = max(1.0, d.distance_m / max(1.0, speeds[p]))
                    pl.wave_s = d.distance_m / START_WAVE_MPS
                else:
                    pl.stop_bar.append(d.id)
        self._prev_on: dict[int, bool] = dict.fromkeys(self._det_phases, False)
        self._prev_act: dict[int, int] = dict.fromkeys(self._det_phases, 0)
        self._rising: dict[int, int] = dict.fromkeys(self._det_phases, 0)
        self._on_since: dict[int, float] = {}
        self._off_since: dict[int, float] = {}
        # advance loops: (time, cumulative occupied s) samples over OCCUPANCY_WINDOW_S
        self._occupied: dict[int, float] = dict.fromkeys(self._advance, 0.0)
        self._occ_samples: dict[int, deque[tuple[float, float]]] = {
            d: deque() for d in self._advance
        }
        self._t: float | None = None
        self._t0: float | None = None
        self.call_since: dict[int, float] = {}
        self.green_since: dict[int, float] = {}
        self.red_since: dict[int, float] = {}  # when each phase last left green

    # --- read side ---
    def queue(self, p: int) -> float:
        """Vehicles waiting or approaching within the advance zone of phase ``p``."""
        return self.phases[p].count if p in self.phases else 0.0

    def failed(self, view: View, p: int) -> bool:
        """``p`` has a failed loop (or none at all): leave it to actuated behaviour."""
        pl = self.phases.get(p)
        if pl is None or not (pl.stop_bar or pl.advance):
            return True
        return any(view.detector_failed(d) for d in (*pl.stop_bar, *pl.advance))

    def approaching(self, p: int, now: float) -> list[float]:
        """Expected stop-bar arrival times of vehicles seen at the advance loop and moving."""
        pl = self.phases[p]
        return [a + pl.travel_s for a in pl.arrivals if a + pl.travel_s >= now]

    def blocked(self, p: int) -> bool:
        """``p`` is green and a vehicle stands on one of its stop bars for ``BAR_BLOCKED_S``
        or longer (a left-turner waiting for a gap, spillback): that lane is not served by
        holding the green (``keep_blocked`` only)."""
        pl = self.phases.get(p)
        if pl is None or self._t is None or p not in self.green_since:
            return False
        t, since = self._t, self.green_since[p]
        return any(
            self._prev_on[d] and t - max(self._on_since.get(d, t), since) >= BAR_BLOCKED_S
            for d in pl.stuck
        )

    def refilling(self, p: int) -> bool:
        """``p`` is green and one of its stop bars was left by a vehicle under
        ``BAR_REFILL_S`` ago: in a discharging queue the next vehicle rolls onto it within a
        second, so the bar's short gap does not mean the queue has gone."""
        pl = self.phases.get(p)
        if pl is None or self._t is None or p not in self.green_since:
            return False
        t, since = self._t, self.green_since[p]
        # _off_since holds a bar only while it is off
        offs = (self._off_since.get(d) for d in pl.stop_bar)
        return any(off is not None and since < off and t - off < BAR_REFILL_S for off in offs)

    def _bar_queue(self, pl: PhaseLoops, t: float) -> float:
        """A phase with stop-bar loops only, in red: each occupied bar is one vehicle seen,
        and behind it the queue the phase's arrival rate brings during the red, given one is
        there (Poisson: ``λr / (1 − e^−λr)`` per lane); an empty bar, nobody waits."""
        occupied = sum(1 for d in pl.stop_bar if self._prev_on[d])
        if not occupied:
            return 0.0
        red = t - self.red_since.get(pl.phase, self._t0 if self._t0 is not None else t)
        x = pl.rate / len(pl.stop_bar) * max(0.0, red)
        per_lane = x / -math.expm1(-x) if x > 1e-6 else 1.0
        return occupied * max(1.0, per_lane)

    def _unserved_share(self, pl: PhaseLoops, green: frozenset[int]) -> float:
        """Share of ``pl``'s arrivals on lanes no green phase serves (``served_lanes``): a
        lane shared with a green phase (an overlap: a through running in two stages) flows,
        and its vehicles join no queue. By the advance loops' recent counts, at least by
        lanes (a covered loop under-counts)."""
        if not self.served_lanes:
            return 1.0
        unserved = [d for d in pl.advance if not green.intersection(self._det_phases[d])]
        if len(unserved) == len(pl.advance):
            return 1.0
        lanes = sum(self._lanes[d] for d in unserved) / max(
            1, sum(self._lanes[d] for d in pl.advance)
        )
        counted = self._counted(pl.advance)
        if counted == 0:
            return lanes
        return max(lanes, self._counted(unserved) / counted)

    def _counted(self, loops: list[int]) -> int:
        """Actuations of these advance loops in the rate window."""
        return sum(len(self._adv_counted[d]) for d in loops)

    def waited(self, p: int, now: float) -> float:
        since = self.call_since.get(p)
        return 0.0 if since is None else now - since

    def covered(self, d: int, t: float) -> bool:
        """A standing queue covers advance loop ``d``: occupied ``BLOCKED_S`` without a break,
        or (``cover_by_occupancy``) occupied ``COVERED_OCCUPANCY`` of the last
        ``OCCUPANCY_WINDOW_S`` (a queue creeping over it shows short gaps between its
        vehicles)."""
        if t - self._on_since.get(d, t) >= BLOCKED_S:
            return True
        samples = self._occ_samples.get(d)
        if not self.cover_by_occupancy or not samples:
            return False
        t0, occupied0 = samples[0]
        if t - t0 < OCCUPANCY_WINDOW_S - 1e-6:
            return False
        return (self._occupied[d] - occupied0) / (t - t0) >= COVERED_OCCUPANCY

    # --- update, once per tick ---
    def update(self, view: View) -> None:
        t = view.t
        if self._t0 is None:
            self._t0 = t
        dt = 0.0 if self._t is None else max(0.0, t - self._t)
        self._t = t
        green = view.green_phases
        for p in list(self.green_since):
            if p not in green:
                del self.green_since[p]
                self.red_since[p] = t
        for p in green:
            self.green_since.setdefault(p, t)
        calls = view.calls
        for p in self.phases:
            if p in calls or (p not in green and self.phases[p].count >= 1.0):
                self.call_since.setdefault(p, t)
            elif p in green:
                self.call_since.pop(p, None)
        for d, phases in self._det_phases.items():
            on = view.detector_on(d)
            act = view.actuations(d)
            rising = max(0, act - self._prev_act[d])
            self._rising[d] = rising
            if rising and d in self._adv_counted:
                self._adv_counted[d].extend([t] * rising)
            falling = self._prev_on[d] and not on
            if self.cover_by_occupancy and d in self._advance:
                if self._prev_on[d]:
                    self._occupied[d] += dt
                samples = self._occ_samples[d]
                samples.append((t, self._occupied[d]))
                while len(samples) > 1 and samples[1][0] <= t - OCCUPANCY_WINDOW_S:
                    samples.popleft()
            self._prev_on[d], self._prev_act[d] = on, act
            on_since = self._on_since.get(d, t)
            if on:
                self._on_since.setdefault(d, t)
                self._off_since.pop(d, None)
            else:
                self._on_since.pop(d, None)
                self._off_since.setdefault(d, t)
            for p in phases:
                pl = self.phases[p]
                if on or rising:
                    pl.last_activity = t
                if d in self._advance:
                    if rising:
                        # a vehicle of the queue beyond the loop moving up was counted already
                        moved_up = min(
                            float(rising), pl.beyond if self.keep_blocked else pl.beyond // 1.0
                        )
                        pl.beyond -= moved_up
                        pl.count += rising - moved_up
                        pl.arrivals.extend([t] * rising)
                elif falling:  # a vehicle left the stop bar (in green, yellow or red)
                    pl.count = max(0.0, pl.count - 1.0)
                    pl.departed.append(t)
                    if self.keep_blocked and p in green:
                        # a vehicle that stood on the loop in green leaves the lane blocked
                        # behind it until one passes moving
                        if t - max(on_since, self.green_since[p]) >= BAR_BLOCKED_S:
                            pl.stuck.add(d)
                        else:
                            pl.stuck.discard(d)
        window = min(RATE_WINDOW_S, max(RATE_MIN_WINDOW_S, t - self._t0))
        for times in self._adv_counted.values():
            while times and times[0] < t - window:
                times.popleft()
        for p, pl in self.phases.items():
            while pl.departed and pl.departed[0] < t - window:
                pl.departed.popleft()
            # advance loops under-count while a standing queue covers them, stop bars miss
            # nothing that is served: the larger of the two is the better estimate
            pl.rate = max(self._counted(pl.advance), len(pl.departed)) / window
            while pl.arrivals and pl.arrivals[0] + pl.travel_s + 10.0 < t:
                pl.arrivals.popleft()
            waiting_at_bar = sum(1 for d in pl.stop_bar if self._prev_on[d])
            if p in green:
                self._update_green(p, pl, t, dt, waiting_at_bar)
            else:
                pl.discharged.clear()
                pl.stuck.clear()
                cover = [d for d in pl.advance if self.covered(d, t)]
                if self.count_free_rate and pl.advance and dt > 0.0 and not cover:
                    # arrivals counted in red while no queue covers an advance loop: the
                    # demand itself, not what the stop bars were able to serve (a window of
                    # RATE_WINDOW_S of such time; a covered loop keeps the last measure)
                    decay = math.exp(-dt / RATE_WINDOW_S)
                    pl.free_s = pl.free_s * decay + dt
                    pl.free_n = pl.free_n * decay + sum(self._rising[d] for d in pl.advance)
                if cover:
                    if pl.blocked_since is None:
                        pl.blocked_since = t
                        pl.served_s = 0.0
                        covered = sum(self._capacity[d] for d in cover)
                        pl.blocked_base = max(pl.count, covered)
                    else:
                        pl.served_s += (1.0 - self._unserved_share(pl, green)) * dt
                    # vehicles join the back of the queue unseen, at the join rate, on the
                    # lanes no green phase serves
                    joining_s = max(0.0, t - pl.blocked_since - pl.served_s)
                    target = pl.blocked_base + pl.join_rate * joining_s
                    if target > pl.count:
                        pl.beyond += target - pl.count
                        pl.count = target
                else:
                    pl.blocked_since = None
                if not pl.advance:
                    pl.count = self._bar_queue(pl, t)
                pl.count = max(pl.count, float(waiting_at_bar))
            pl.count = min(pl.count, 3.0 * pl.capacity + 20.0)
            if self.keep_blocked and not self.beyond_by_capacity:
                # part of the count; in green the stop bar serves the vehicles between the
                # loops first, and those beyond move up over the advance loop (not new
                # arrivals) — so no bound by the capacity here
                pl.beyond = min(pl.beyond, pl.count)
            else:
                pl.beyond = min(pl.beyond, max(0.0, pl.count - pl.capacity))

    def _update_green(
        self, p: int, pl: PhaseLoops, t: float, dt: float, waiting_at_bar: int
    ) -> None:
        """Phase ``p`` is green: counts in − out, re-synchronised only on positive evidence
        that the standing queue has gone (a gap at every stop bar, none of them blocked)."""
        pl.blocked_since = None
        green_since = self.green_since.get(p, t)
        if self.keep_blocked:
            for d in pl.stop_bar:
                if self._prev_on[d] and t - max(self._on_since.get(d, t), green_since) >= (
                    BAR_BLOCKED_S
                ):
                    # a vehicle stands on the stop bar in green: its lane is blocked, the
                    # vehicles behind it stay (and CLEARED_S cannot fire: the loop is busy)
                    pl.stuck.add(d)
                    pl.discharged.discard(d)
        if t - pl.last_activity >= CLEARED_S and not pl.stuck:
            pl.count = 0.0
        elif pl.stop_bar and not pl.advance:
            # stop bars alone: the queue estimated in red leaves one departure at a time
            # (counted above), and is gone after CLEARED_S without a vehicle
            pl.count = max(pl.count, float(waiting_at_bar))
        elif pl.stop_bar:
            # a gap only counts once the queue is moving: the second vehicle of a
            # standing queue reaches a stop-bar loop ~2.5 s after the first left it
            moving_from = green_since + STARTUP_GAP_S
            fresh = True  # every stop bar is in such a gap now
            for d in pl.stop_bar:
                off = max(self._off_since.get(d, t), moving_from)
                # after a blocked occupancy the vehicles behind may still stand: a longer gap
                need = BLOCKED_GAP_S if d in pl.stuck else DISCHARGED_GAP_S
                if t - off >= need:
                    pl.discharged.add(d)
                elif self.keep_blocked:
                    fresh = False
            if any(self.covered(d, t) for d in pl.advance):
                # a vehicle stands on an advance loop: the queue has not gone (a
                # stop-bar gap behind a left-turner waiting for a gap, say)
                pl.discharged.clear()
            if len(pl.discharged) == len(pl.stop_bar) and fresh:
                # every stop bar has shown a gap longer than a saturation headway
                # during this green (and, keep_blocked, shows it now): no standing queue is
                # left; what remains in the zone is moving (seen at the advance loop within a
                # travel time)
                moving = sum(1 for a in pl.arrivals if a >= t - pl.travel_s)
                pl.count = min(pl.count, float(moving))
        if self.beyond_grows and pl.beyond > 0.0 and pl.advance:
            # the queue beyond the advance loop still stands: new arrivals join its back
            grow = pl.join_rate * dt
            pl.beyond += grow
            pl.count += grow
        if self.keep_blocked and pl.beyond > 0.0 and pl.advance:
            # once the queue has had time to move off over the advance loops, a gap longer
            # than a saturation headway at each of them: nobody is left queued beyond
            wave_from = green_since + STARTUP_GAP_S + pl.wave_s
            if all(
                t - max(self._off_since.get(d, t), wave_from) >= DISCHARGED_GAP_S
                for d in pl.advance
            ):
                pl.beyond = 0.0


def max_green_s(view: View, p: int) -> float:
    """Phase ``p``'s longest green under the running plan (max 2, else max 1)."""
    t = view.plan.timing.get(p)
    if t is None:
        return 60.0
    return max(t.min_green, t.max2 if t.max2 is not None else t.max1)


def lost_s(view: View, p: int) -> float:
    """Time phase ``p`` loses at a change: yellow, red clearance and the start-up loss."""
    t = view.plan.timing.get(p)
    return (t.yellow + t.red_clear if t is not None else 5.0) + STARTUP_LOST_S


class MaxPressure:
    """Max-pressure strategy (see the module docstring)."""

    name = "maxpressure"

    def __init__(
        self, config: Config, plan: Plan | None = None, *, max_wait_s: float = 120.0
    ) -> None:
        self.config = config
        self.queues = LoopQueues(config, beyond_grows=MAXPRESSURE_BEYOND_GROWS)
        self.max_wait_s = max_wait_s
        self._group = barrier_groups(config)

    def pressure(self, view: View, p: int) -> float:
        if self.queues.failed(view, p):
            return 1.0 if p in view.calls else 0.0
        return self.queues.queue(p)

    def requests(self, view: View) -> Requests:
        q = self.queues
        q.update(view)
        t = view.t
        calls = frozenset(p for p in q.phases if p not in view.green_phases and q.queue(p) >= 1.0)
        hold: set[int] = set()
        force: set[int] = set()
        nxt: dict[int, int] = {}
        omit = view.operator.omit
        # each ring not in a change interval: its green phase (None: no phase) and its best next
        # phase
        rings: list[tuple[int, int | None, int | None]] = []
        for ring in self.config.rings:
            status = view.ring(ring.id)
            g = None if status is None else status.phase
            if g is not None and status is not None and status.interval is not Interval.GREEN:
                continue
            rings.append((ring.id, g, self._best(view, ring.sequence, g, calls, omit)))
        # a ring past its max green with its best phase across the barrier: every ring must
        # reach the barrier
        crossing = any(
            g is not None
            and best is not None
            and self._group[best] != self._group[g]
            and t - q.green_since.get(g, t) >= max_green_s(view, g)
            for _, g, best in rings
        )
        for ring_id, g, best in rings:
            if g is None:
                if best is not None:
                    nxt[ring_id] = best
                continue
            if best is None:
                continue  # nobody else wants the junction: rest
            if crossing and self._group[best] == self._group[g]:
                # another ring waits to cross the barrier: do not keep this ring in its group
                # (a phase of ours after another would hold that ring's green for ever, the
                # other barrier group starving); leave the order to the engine's barrier logic
                # and end this green once it is due
                if t - q.green_since.get(g, t) >= max_green_s(view, g):
                    force.add(g)
                continue
            nxt[ring_id] = best
            if q.failed(view, g):
                continue  # actuated fallback for a phase without working loops
            green_for = t - q.green_since.get(g, t)
            p_g, p_b = self.pressure(view, g), self.pressure(view, best)
            starving = q.waited(best, t) >= self.max_wait_s
            if starving and MAXPRESSURE_GUARD_QUEUE and p_g > p_b:
                starving = False  # the longer queue first: the pressure rule decides
            if green_for >= max_green_s(view, g) or starving:
                force.add(g)
                continue
            lanes_b = q.phases[best].lanes
            threshold = lanes_b * lost_s(view, g) / SAT_HEADWAY_S
            if p_g < 0.5 or p_b - p_g > threshold:
                force.add(g)
            else:
                hold.add(g)
        if not (calls or hold or force or nxt):
            return NO_REQUESTS
        return Requests(
            calls=calls, hold=frozenset(hold), force_off=frozenset(force), next_phase=nxt
        )

    def _best(
        self,
        view: View,
        sequence: tuple[int, ...],
        current: int | None,
        calls: frozenset[int],
        omit: frozenset[int],
    ) -> int | None:
        t = view.t
        q = self.queues
        cands = [
            p
            for p in sequence
            if p != current and p not in omit and (p in view.calls or p in calls)
        ]
        if not cands:
            return None
        starving = [p for p in cands if q.waited(p, t) >= self.max_wait_s]
        if starving:
            return max(starving, key=lambda p: q.waited(p, t))
        return max(cands, key=lambda p: (self.pressure(view, p), q.waited(p, t)))


def _register() -> None:
    from edgectl.control.strategies import register

    register(Mode.MAXPRESSURE, MaxPressure)


_register()
