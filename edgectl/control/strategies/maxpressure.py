"""Max-pressure control from loop detectors, with the guards that make it usable.

Naive max pressure (switch to the phase with the largest queue every few seconds) is far worse
than actuated control: every switch costs a yellow, a red clearance and a start-up loss. This
one only *requests*; the engine still enforces min green, clearances and barriers:

- **queues from loops only** (:class:`LoopQueues`): vehicles between the advance loop
  (~40 m) and the stop bar = advance actuations in − stop-bar departures out, floored by the
  stop-bar presence, raised to the zone's capacity (plus the arrival rate times the blocked
  time) when a standing queue covers the advance loop, and re-synchronised in green once every
  stop bar of the phase has shown a gap longer than a saturation headway (no standing queue
  left: only the vehicles seen moving over the advance loop remain).
  No vehicle positions from a simulator are used;
- **clearance-aware switching**: leave the green phase only when it has nothing left to serve
  or when the best competing phase's pressure exceeds the current one by more than what the
  competing phase could discharge during the lost time of the switch;
- **starvation guard**: a phase whose call has waited ``max_wait`` seconds is served next;
- **max green**: never longer than the plan's max 2 (max 1 when no max 2);
- **barriers**: once a ring's green is past its max green with its best next phase across
  the barrier, the other rings are not kept in their barrier group (they end their green
  when due and the engine takes every ring to the barrier), so no ring's phases can hold
  another ring's green — and the other group's calls — for ever;
- phases whose detectors failed get the engine's actuated behaviour (their own constant
  call, gap/max-out) — the strategy neither holds nor forces them off.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from edgectl.config.junction import barrier_groups
from edgectl.config.model import Config, DetectorType, Mode, Plan
from edgectl.control.strategies.base import View
from edgectl.control.types import NO_REQUESTS, Interval, Requests

__all__ = ["LoopQueues", "MaxPressure", "PhaseLoops", "lost_s", "max_green_s"]

SAT_HEADWAY_S = 2.0  # saturation headway per lane (1800 veh/h)
STARTUP_LOST_S = 2.0  # start-up lost time of a queue
VEHICLE_SPACING_M = 7.5  # jam spacing: length + gap
BLOCKED_S = 2.5  # an advance loop occupied this long is covered by a standing queue
CLEARED_S = 3.0  # a green phase with every loop quiet this long has no queue left
DISCHARGED_GAP_S = 2.5  # a stop-bar gap this long in green: the standing queue has gone
STARTUP_GAP_S = 4.0  # ... not counted in the first seconds of green (the queue starting up)
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
    count: float = 0.0  # vehicles estimated between the advance loop and the stop bar
    beyond: float = 0.0  # ... of which estimated queued upstream of the advance loop
    rate: float = 0.0  # arrival rate (veh/s) over the last RATE_WINDOW_S
    arrivals: deque[float] = field(default_factory=deque)  # recent advance actuation times
    counted: deque[float] = field(default_factory=deque)  # advance actuations in the window
    departed: deque[float] = field(default_factory=deque)  # stop-bar departures in the window
    last_activity: float = 0.0
    blocked_since: float | None = None
    blocked_base: float = 0.0
    discharged: set[int] = field(default_factory=set)  # stop bars that showed a gap this green

    @property
    def lanes(self) -> int:
        return max(1, len(self.stop_bar) or len(self.advance))


class LoopQueues:
    """Per-phase queue estimates from stop-bar presence and advance counts, updated per tick."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.phases: dict[int, PhaseLoops] = {p.id: PhaseLoops(p.id) for p in config.phases}
        speeds = {p.id: p.approach_speed_kmh / 3.6 for p in config.phases}
        self._det_phases: dict[int, tuple[int, ...]] = {}
        self._advance: set[int] = set()
        self._capacity: dict[int, float] = {}  # advance loop → vehicles between it and the bar
        for d in config.detectors:
            self._det_phases[d.id] = tuple(p for p in d.call_phases if p in self.phases)
            for p in self._det_phases[d.id]:
                pl = self.phases[p]
                if d.type is DetectorType.ADVANCE:
                    self._advance.add(d.id)
                    pl.advance.append(d.id)
                    self._capacity[d.id] = d.lanes * max(1.0, d.distance_m / VEHICLE_SPACING_M)
                    pl.capacity += self._capacity[d.id]
                    pl.travel_s = max(1.0, d.distance_m / max(1.0, speeds[p]))
                else:
                    pl.stop_bar.append(d.id)
        self._prev_on: dict[int, bool] = dict.fromkeys(self._det_phases, False)
        self._prev_act: dict[int, int] = dict.fromkeys(self._det_phases, 0)
        self._on_since: dict[int, float] = {}
        self._off_since: dict[int, float] = {}
        self._t: float | None = None
        self._t0: float | None = None
        self.call_since: dict[int, float] = {}
        self.green_since: dict[int, float] = {}

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

    def waited(self, p: int, now: float) -> float:
        since = self.call_since.get(p)
        return 0.0 if since is None else now - since

    # --- update, once per tick ---
    def update(self, view: View) -> None:
        t = view.t
        if self._t0 is None:
            self._t0 = t
        self._t = t
        green = view.green_phases
        for p in list(self.green_since):
            if p not in green:
                del self.green_since[p]
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
            falling = self._prev_on[d] and not on
            self._prev_on[d], self._prev_act[d] = on, act
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
                        moved_up = min(float(rising), pl.beyond // 1.0)
                        pl.beyond -= moved_up
                        pl.count += rising - moved_up
                        pl.arrivals.extend([t] * rising)
                        pl.counted.extend([t] * rising)
                elif falling:  # a vehicle left the stop bar (in green, yellow or red)
                    pl.count = max(0.0, pl.count - 1.0)
                    pl.departed.append(t)
        window = min(RATE_WINDOW_S, max(RATE_MIN_WINDOW_S, t - self._t0))
        for p, pl in self.phases.items():
            for times in (pl.counted, pl.departed):
                while times and times[0] < t - window:
                    times.popleft()
            # advance loops under-count while a standing queue covers them, stop bars miss
            # nothing that is served: the larger of the two is the better estimate
            pl.rate = max(len(pl.counted), len(pl.departed)) / window
            while pl.arrivals and pl.arrivals[0] + pl.travel_s + 10.0 < t:
                pl.arrivals.popleft()
            waiting_at_bar = sum(1 for d in pl.stop_bar if self._prev_on[d])
            if p in green:
                pl.blocked_since = None
                if t - pl.last_activity >= CLEARED_S:
                    pl.count = 0.0
                elif pl.stop_bar and not pl.advance:
                    pl.count = float(waiting_at_bar)
                elif pl.stop_bar:
                    # a gap only counts once the queue is moving: the second vehicle of a
                    # standing queue reaches a stop-bar loop ~2.5 s after the first left it
                    moving_from = self.green_since.get(p, t) + STARTUP_GAP_S
                    for d in pl.stop_bar:
                        off = max(self._off_since.get(d, t), moving_from)
                        if t - off >= DISCHARGED_GAP_S:
                            pl.discharged.add(d)
                    if any(t - self._on_since.get(d, t) >= BLOCKED_S for d in pl.advance):
                        # a vehicle stands on an advance loop: the queue has not gone (a
                        # stop-bar gap behind a left-turner waiting for a gap, say)
                        pl.discharged.clear()
                    if len(pl.discharged) == len(pl.stop_bar):
                        # every stop bar has shown a gap longer than a saturation headway
                        # during this green: no standing queue is left; what remains in the
                        # zone is moving (seen at the advance loop within a travel time)
                        moving = sum(1 for a in pl.arrivals if a >= t - pl.travel_s)
                        pl.count = min(pl.count, float(moving))
            else:
                pl.discharged.clear()
                blocked = any(t - self._on_since.get(d, t) >= BLOCKED_S for d in pl.advance)
                if blocked:
                    if pl.blocked_since is None:
                        pl.blocked_since = t
                        covered = sum(
                            self._capacity[d]
                            for d in pl.advance
                            if t - self._on_since.get(d, t) >= BLOCKED_S
                        )
                        pl.blocked_base = max(pl.count, covered)
                    # vehicles join the back of the queue unseen, at the average rate
                    target = pl.blocked_base + pl.rate * (t - pl.blocked_since)
                    if target > pl.count:
                        pl.beyond += target - pl.count
                        pl.count = target
                else:
                    pl.blocked_since = None
                if not pl.advance:
                    pl.count = float(waiting_at_bar)
                pl.count = max(pl.count, float(waiting_at_bar))
            pl.count = min(pl.count, 3.0 * pl.capacity + 20.0)
            pl.beyond = min(pl.beyond, max(0.0, pl.count - pl.capacity))


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
        self.queues = LoopQueues(config)
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
            if green_for >= max_green_s(view, g) or q.waited(best, t) >= self.max_wait_s:
                force.add(g)
                continue
            p_g, p_b = self.pressure(view, g), self.pressure(view, best)
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
