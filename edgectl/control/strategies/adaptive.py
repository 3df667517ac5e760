"""Adaptive control: a rolling-horizon, delay-minimising schedule from loops and zone sensors.

What it borrows and from where:

- **SURTRAC** (Smith et al., CMU): treat the traffic each phase will see as a sequence of
  *clusters* — the standing queue (which discharges at the saturation headway after a start-up
  loss) followed by the vehicles seen moving over the advance loop (arriving at the stop bar
  one travel time later) and, in a network, the projected outflow of the upstream neighbour —
  and decide, re-planned every tick, whether extending the current green serves enough of those
  clusters to pay for the delay it imposes on everyone waiting elsewhere;
- **SCATS**: the degree of saturation of each phase (its queue against what its lanes can
  discharge) sets how much green a phase is worth; no fixed cycle, phases with nothing to
  serve are skipped.

The decision, once per tick. For a green phase ``g``:

- while ``g`` still discharges a standing queue (a stop bar has not yet shown a gap longer
  than a saturation headway after the start-up, or a vehicle stands on an advance loop), or
  a queue already moving up (its advance loops count the last ``DENSE_N`` vehicles about a
  saturation headway apart, the latest just now: a queue longer than the loops can see, on
  its way), hold it: a queue cut short waits a whole red more (a lane behind a stop bar
  blocked by a vehicle waiting for a gap is not held for). A phase with stop-bar loops
  alone is held while its red estimate lasts (one departure at a time) and while its bar,
  just left by a vehicle, is about to be taken by the next of the queue
  (:meth:`~edgectl.control.strategies.maxpressure.LoopQueues.refilling`);
- then build ``g``'s departure schedule over a short horizon from its clusters and, for every
  candidate extension ``τ`` (up to each scheduled departure), compare the benefit — each
  vehicle served at ``d ≤ τ`` instead of after the red ``R`` that switching now would start
  (the lost times plus the green the other demanded phases need, ring by ring):
  ``R − (d − t)`` — with the cost: every vehicle waiting on the phases held up, and those
  arriving there during the coming red, waits ``τ`` longer; so do ``g``'s own vehicles
  arriving in that red (it starts ``τ`` later), counted in proportion to the junction's
  spare capacity ``1 − Y`` (``Y``, the critical flow ratio, from the measured rates): with
  capacity to spare an extension pays only for vehicles coming faster than ``g``'s average
  flow, and the cycle stays short; near saturation, where each change's lost time costs
  capacity, they do not count. Hold while some extension pays.

Starvation guard: once a held-up phase has waited ``MAX_WAIT_S`` it is chosen next, extensions
weigh the wait they impose twice, and a discharging queue is no longer held whole — unless it
is longer than the starving phases' queue (cut, it would wait a whole red more, beyond the
guard's bound itself; near saturation cutting the longest queue for a short one grows every
queue from cycle to cycle). The engine's max green still ends such a green.

Which phases are held up, and who decides, follows the ring-and-barrier structure:

- a ring with another phase to serve on this side of the barrier (later in its sequence)
  decides alone, against that phase;
- rings with nothing more on this side leave it together: their greens are held while any
  other ring still serves this side, and otherwise held or forced off as one, the departures
  of all of them weighed against every phase waiting beyond the barrier (both rings);
- a ring never goes back to a phase it has served on this side (a second clearance for
  nothing) and starts a new side with its first phase that has demand (lefts lead); the
  choice between phases of a ring is the best ratio of waiting vehicles (weighted by how long
  they have waited) to the green plus lost time they need.

On a single ring with a barrier after every phase (the SUMO bench's stages) this is one
decision per green against every other phase.

Protected / permissive lefts (a channel with a flashing yellow arrow, ``Channel.permissive``):
a left turn that may go, yielding, while the opposing through is green does not need its
protected phase for every car. The strategy omits that phase while the left's queue is short
(under ``ARROW_QUEUE``) and has waited less than ``ARROW_WAIT_S``, as long as the opposing
phase is green or called (so an arrow will flash); past either bound, or with its loops failed,
the protected phase is called as any other.

Zone sensors (camera / radar, ``[[zones]]``; :mod:`edgectl.control.strategies.adaptive_zones`):
a phase with healthy zones (``view.zones``) takes its clusters from them instead of the
loops — the standing queue is the halting vehicles (and everyone within the reported queue),
leaving a saturation headway apart per lane after the start-up loss; the moving vehicles of
the object list arrive at distance / speed (the speed floored at 0.8 × the approach speed)
and queue behind the vehicle ahead; a queue reaching the zone's far end in red grows beyond
it at the loops' arrival rate. The same clusters set the phase's waiting vehicles (those a
red delays: the standing queue and the arrivals joining it within 1.5 lost times), its
green need (the busiest lane's queue at its headway: the degree of saturation) and so the
phase choice; an extension weighs the zone departures within ``HORIZON_S`` of that module
(7 s) against the wait it imposes, including on the vehicles arriving on the held-up phases
meanwhile; a standing queue that moves is served whole (one where nobody moves 4 s into
green is blocked and not held for), and so is a queue already moving (the next vehicles
reaching the stop line about a saturation headway apart, in the zone or over the advance
loops: a zone that misses vehicles or ends before the queue does shows gaps the queue does
not have). Per lane, a zone that failed (``view.zone_failed``) — or a lane without a zone —
counts through the loops for its share of the phase's loop detectors; a phase without a
healthy zone, and a junction without zones, is timed exactly as on loops alone. (Projected
arrivals from neighbours are not added to zone lanes: the zone sees them as they come.)

Neighbour coordination: :meth:`Adaptive.expect` takes projected arrivals on a phase (an
upstream junction's discharge plus the link travel time). They join the phase's clusters
(extension) and count as waiting when they arrive before a green started now could begin
(choice). The bench feeds it by direct calls (``run_bench(coordinate=True)``, ``edgectl
bench sumo --coordinate``); the daemon feeds it from the neighbours' MQTT outflow messages
(``edgectl.sync.outflow``). On our arterial it did not win yet (see ``docs/sumo-bench.md``),
so the bench leaves it off by default.
"""

from __future__ import annotations

from collections.abc import Iterable

from edgectl.config.model import Config, Mode, Plan
from edgectl.control.strategies import adaptive_zones
from edgectl.control.strategies.adaptive_zones import PhaseDemand, ZoneDemand
from edgectl.control.strategies.base import View
from edgectl.control.strategies.maxpressure import (
    SAT_HEADWAY_S,
    STARTUP_LOST_S,
    LoopQueues,
    lost_s,
    max_green_s,
)
from edgectl.control.types import NO_REQUESTS, Interval, Requests

__all__ = ["Adaptive"]

HORIZON_S = 12.0  # how far ahead an extension is evaluated
MAX_WAIT_S = 100.0  # starvation guard
WAIT_WEIGHT_S = 60.0  # a vehicle that has waited this long counts double when choosing
ARRIVAL_WEIGHT = 0.5  # share of the coming red that vehicles arriving meanwhile wait
ARROW_QUEUE = 8.0  # a left with a flashing yellow arrow gets its protected phase from this queue
ARROW_WAIT_S = 60.0  # ... or once its queue has waited this long
DENSE_LOOPS = True
GUARD_QUEUE = True  # the starvation guard does not cut a longer queue than the starving one
OWN_WEIGHT = 1.0  # the phase's own arrivals in the coming red wait an extension too (x 1 - Y)


class Adaptive:
    """Schedule-driven adaptive strategy (see the module docstring)."""

    name = "adaptive"

    def __init__(
        self,
        config: Config,
        plan: Plan | None = None,
        *,
        horizon_s: float = HORIZON_S,
        max_wait_s: float = MAX_WAIT_S,
    ) -> None:
        self.config = config
        # with zone sensors a phase's loop estimate stands for its lanes without a healthy
        # zone by their share of its loops: it must spread over all of them
        self.queues = LoopQueues(config, served_lanes=False if config.zones else None)
        self.horizon_s = horizon_s
        self.max_wait_s = max_wait_s
        self._expected: dict[int, list[float]] = {}
        # left phases with a flashing yellow arrow: phase → the opposing phase it yields to
        self._arrow: dict[int, int] = {
            c.phase: c.permissive for c in config.channels if c.permissive is not None
        }
        self._arrow_since: dict[int, float] = {}
        self._advance_lanes = {  # lanes over each phase's advance loops
            p: sum(d.lanes for d in config.detectors if d.id in pl.advance)
            for p, pl in self.queues.phases.items()
            if pl.advance
        }
        # zone sensors: per-phase demand from the healthy zones (None: loops alone)
        self.zone_demand = ZoneDemand(config) if config.zones else None

    # --- neighbour coordination ---
    def expect(self, phase: int, arrivals: Iterable[float]) -> None:
        """Projected stop-bar arrival times on ``phase`` (controller time), e.g. an upstream
        neighbour's planned discharge plus the link travel time. Replaces earlier ones."""
        self._expected[phase] = sorted(arrivals)

    # --- model ---
    def _min_green(self, view: View, p: int) -> float:
        t = view.plan.timing.get(p)
        return t.min_green if t is not None else 5.0

    def _headway(self, p: int) -> float:
        return SAT_HEADWAY_S / self.queues.phases[p].lanes

    def _soon(self, view: View, p: int) -> float:
        """Projected arrivals on ``p`` (from the neighbour) before a green started now
        could begin: they will be waiting by then. Lanes with a healthy zone see them
        themselves (within a lost time they are well inside the zone): only the share of
        ``p`` read from its loops counts them."""
        t = view.t
        lead = self.queues.phases[p].travel_s if self.queues.phases[p].advance else 0.0
        until = t + lost_s(view, p)
        d = self._zones(p)
        share = 1.0 if d is None else d.loop_share
        return share * sum(1 for a in self._expected.get(p, ()) if t + lead < a <= until)

    def _waiting(self, view: View, p: int) -> float:
        """Vehicles on ``p`` that a red delays (at least one for a registered call)."""
        n = self._queue(view, p) + self._soon(view, p)
        if p in view.calls or n >= 1.0:
            return max(n, 1.0)
        return 0.0

    def _service(self, view: View, p: int) -> float:
        """Green that ``p`` needs to discharge what it has (degree of saturation → green)."""
        n = self._waiting(view, p)
        d = self._zones(p)
        if d is None:
            return max(self._min_green(view, p), n * self._headway(p) + STARTUP_LOST_S)
        # SCATS degree of saturation per lane: the busiest zone lane sets the green
        need = ZoneDemand.service_s(d, view.t + lost_s(view, p))
        if d.loop_share > 0.0:
            loops = self.queues.queue(p) * self._headway(p) + STARTUP_LOST_S
            need = max(need, loops)
        return max(self._min_green(view, p), need)

    # --- zone sensors (edgectl.control.strategies.adaptive_zones) ---
    def _zones(self, p: int) -> PhaseDemand | None:
        """``p``'s demand from its healthy zones, or None: loops alone."""
        return self.zone_demand.phase(p) if self.zone_demand is not None else None

    def _queue(self, view: View, p: int) -> float:
        """Vehicles waiting on ``p`` (zones: standing, and arriving before a green started
        now could begin; lanes on loops: the loop estimate for their share)."""
        d = self._zones(p)
        if d is None:
            return self.queues.queue(p)
        start = view.t + lost_s(view, p) * adaptive_zones.AHEAD_SHARE
        n = sum(lane.waiting(start) * lane.share for lane in d.lanes)
        return n + d.loop_share * self.queues.queue(p)

    def _discharging(self, view: View, g: int) -> bool:
        """``g`` still discharges a standing queue (no gap at every stop bar yet, vehicles
        left): a queue is served whole - cutting it leaves vehicles a whole red more."""
        d = self._zones(g)
        if d is not None:
            green_for = view.t - self.queues.green_since.get(g, view.t)
            if ZoneDemand.discharging(d, green_for, view.t):
                return True
        # a queue moving up over the advance loops, with zones too: a zone that misses
        # vehicles, or ends before the queue does, can show a gap the queue does not have
        if DENSE_LOOPS and self._dense_advance(view, g):
            return True
        if d is not None and d.loop_share <= 0.0:
            return False
        pl = self.queues.phases[g]
        if not pl.stop_bar or len(pl.discharged) == len(pl.stop_bar):
            return False
        if self.queues.blocked(g) and set(pl.stop_bar) - pl.discharged <= pl.stuck:
            return False  # the lanes still to go stand behind a blocked stop bar
        if not pl.advance and self.queues.refilling(g):
            return True  # stop bars alone: the next queued vehicle is rolling onto the bar
        moving = len(self.queues.approaching(g, view.t))
        return self.queues.queue(g) - moving >= 1.0

    def _dense_advance(self, view: View, g: int) -> bool:
        """The advance loops of ``g`` count a queue moving up: the last ``DENSE_N`` vehicles
        crossed them about a saturation headway apart (per lane), the latest just now."""
        pl = self.queues.phases[g]
        n = adaptive_zones.DENSE_N
        if not pl.advance or n <= 0 or len(pl.arrivals) < n:
            return False
        gap = SAT_HEADWAY_S / self._advance_lanes.get(g, 1) * adaptive_zones.DENSE_GAP
        last = view.t
        for a in reversed(list(pl.arrivals)[-n:]):
            if last - a > gap:
                return False
            last = a
        return True

    def _departures(self, view: View, g: int) -> list[float]:
        """Departure times of ``g``'s clusters if it stays green (queue, then moving, then
        projected arrivals from the neighbour); zone lanes from their own clusters."""
        d = self._zones(g)
        if d is None:
            return self._loop_departures(view, g)
        t = view.t
        green_for = t - self.queues.green_since.get(g, t)
        start = t + max(0.0, STARTUP_LOST_S - green_for)
        until = t + min(self.horizon_s, adaptive_zones.HORIZON_S)
        out = [x for lane in d.lanes for x in lane.departures(start) if x <= until]
        if d.loop_share > 0.0:
            out += self._loop_departures(view, g, d.loop_share)
        return sorted(out)

    def _loop_departures(self, view: View, g: int, share: float = 1.0) -> list[float]:
        """Departures from the loops' clusters; ``share`` of the phase's lanes (< 1: the
        rest has zones): that share of the vehicles, at that share of the discharge rate."""
        q = self.queues
        t = view.t
        h = self._headway(g)
        moving = q.approaching(g, t)
        # projected arrivals not yet over the advance loop (those are counted already)
        lead = q.phases[g].travel_s if q.phases[g].advance else 0.0
        expected = [a for a in self._expected.get(g, ()) if t + lead < a <= t + self.horizon_s]
        queued = max(0.0, q.queue(g) - len(moving))
        if share < 1.0:
            h /= share
            queued *= share
            moving = [a for i, a in enumerate(moving) if int((i + 1) * share) > int(i * share)]
            expected = []
        out: list[float] = []
        last = t
        for _ in range(round(queued)):
            last = last + h
            out.append(last)
        for a in sorted(moving + expected):
            last = max(a, last + h)
            out.append(last)
        return [d for d in out if d <= t + self.horizon_s]

    def _extension_pays(
        self, view: View, greens: list[int], others: list[int], weight: float, *, zones: bool
    ) -> bool:
        """Does holding ``greens`` (one per ring) serve enough to pay for the wait it imposes
        on ``others``? Departures of all ``greens`` count: on a dual ring the rings cross the
        barrier together, so the side is extended or left as a whole."""
        t = view.t
        deps = sorted(d for g in greens for d in self._departures(view, g))
        if not deps:
            return False
        waiting = sum(self._waiting(view, p) for p in others)
        rate = sum(self.queues.phases[p].rate for p in others)
        # the red that switching now starts: the other phases ring by ring (the rings of a
        # dual ring serve theirs side by side), each with its lost time
        per_ring: dict[int, float] = {}
        for p in others:
            r = view.phase_ring(p)
            per_ring[r] = per_ring.get(r, 0.0) + lost_s(view, p) + self._service(view, p)
        red = max(lost_s(view, g) for g in greens) + max(per_ring.values(), default=0.0)
        # the held phases' own vehicles arriving in the coming red wait as long again (the
        # red starts later), counted in proportion to the junction's spare capacity
        spare = max(0.0, 1.0 - self._flow_ratio(view))
        own = sum(self.queues.phases[g].rate for g in greens) * OWN_WEIGHT * spare
        benefit = 0.0
        for d in deps:
            tau = d - t
            # served at d instead of after the whole red that switching now would start
            benefit += max(0.0, red - tau)
            later = rate * red * ARRIVAL_WEIGHT + own * max(0.0, red - tau)
            cost = weight * tau * (waiting + later)
            if zones:
                # with zones the extension weighed is long enough for the vehicles arriving
                # on the held-up phases meanwhile to count: each waits half of it on average
                cost += weight * adaptive_zones.GROWTH * rate * tau * tau / 2.0
            if benefit > cost:
                return True
        return False

    def _score(self, view: View, p: int) -> float:
        w = self._waiting(view, p) * (1.0 + self.queues.waited(p, view.t) / WAIT_WEIGHT_S)
        return w / (lost_s(view, p) + self._service(view, p))

    # --- the strategy ---
    def requests(self, view: View) -> Requests:
        q = self.queues
        q.update(view)
        t = view.t
        green = view.green_phases
        if self.zone_demand is not None:
            self.zone_demand.update(view, {p: pl.rate for p, pl in q.phases.items()})
        calls = frozenset(p for p in q.phases if p not in green and self._queue(view, p) >= 1.0)
        hold: set[int] = set()
        force: set[int] = set()
        nxt: dict[int, int] = {}
        skip = self._permissive_enough(view)  # lefts left to their arrow: omitted here
        omit = view.operator.omit | skip
        last: list[int] = []  # green phases of rings with nothing more on this side
        busy = False  # some ring still has phases to serve on this side
        for ring in self.config.rings:
            status = view.ring(ring.id)
            current = status.phase if status is not None else None
            order = ring.sequence
            # later on this side of the barrier, or beyond it: the engine runs a ring's phases
            # in sequence between barriers; going back costs a second clearance
            cands = [
                p
                for p in order
                if p not in omit
                and p != current
                and (p in view.calls or p in calls)
                and (
                    current is None
                    or view.phase_group(p) != view.phase_group(current)
                    or order.index(p) > order.index(current)
                )
            ]
            best = self._best(view, cands)
            if best is not None:
                side = view.phase_group(best)
                if current is None or side != view.phase_group(current):
                    # entering a side (across the barrier, or from red) the ring starts with the
                    # first phase in its sequence that has demand (lead lefts): a phase before
                    # ``best`` would otherwise wait a whole cycle, as the ring never goes back
                    best = next(p for p in order if p in cands and view.phase_group(p) == side)
            if best is not None:
                nxt[ring.id] = best
            if status is None or status.phase is None or status.interval is not Interval.GREEN:
                if status is not None and status.phase is not None:
                    busy = True  # between two phases of this side
                continue
            g = status.phase
            if q.failed(view, g):
                busy = True  # actuated fallback: the engine times it
                continue
            side = view.phase_group(g)
            local = [p for p in cands if view.phase_group(p) == side]
            green_for = t - q.green_since.get(g, t)
            if green_for >= max_green_s(view, g):
                force.add(g)
                busy = busy or bool(local)
            elif local:
                # the ring moves on within this side of the barrier: its own decision
                busy = True
                (hold if self._keep(view, [g], local) else force).add(g)
            else:
                last.append(g)  # done on this side: the rings leave it together
        if last:
            beyond = self._held_up(view, last[0])
            if not beyond:
                pass  # nobody waits beyond the barrier: rest (or move on within the side)
            elif busy:
                hold.update(last)  # another ring still serves this side: keep serving too
            else:
                (hold if self._keep(view, last, beyond) else force).update(last)
        if not (calls or hold or force or nxt or skip):
            return NO_REQUESTS
        return Requests(
            calls=calls,
            hold=frozenset(hold),
            force_off=frozenset(force),
            omit=skip,
            next_phase=nxt,
        )

    def _permissive_enough(self, view: View) -> frozenset[int]:
        """Left phases with a flashing yellow arrow left to their permissive turn: omitted
        while their queue is short and has not waited long, provided the opposing phase they
        yield to is green or has demand (else no arrow would ever flash for them). The wait
        restarts whenever the queue empties (served by the arrow, or nobody there)."""
        q = self.queues
        t = view.t
        green = view.green_phases
        out: set[int] = set()
        for p, n in self._arrow.items():
            if p in green or self._queue(view, p) < 1.0 or q.failed(view, p):
                self._arrow_since.pop(p, None)  # failed loops: actuated service, no omission
                continue
            since = self._arrow_since.setdefault(p, t)
            opposing = n in green or n in view.calls or self._queue(view, n) >= 1.0
            if opposing and self._queue(view, p) < ARROW_QUEUE and t - since < ARROW_WAIT_S:
                out.add(p)
        return frozenset(out)

    def _keep(self, view: View, greens: list[int], others: list[int]) -> bool:
        """Hold ``greens`` (one per ring) against ``others``? While a standing queue still
        discharges, yes (unless someone starves with more waiting); then while the extension
        pays."""
        t = view.t
        starving = [p for p in others if self.queues.waited(p, t) >= self.max_wait_s]
        if any(self._discharging(view, g) for g in greens):
            if not starving:
                return True
            # the guard serves the starving first, unless it would cut a standing queue
            # longer than theirs: that queue would wait a whole red more, longer than the
            # guard bounds, and its next green would have even more to serve
            mine = sum(self._queue(view, g) for g in greens)
            if GUARD_QUEUE and mine > sum(self._waiting(view, p) for p in starving):
                return True
        weight = 2.0 if starving else 1.0
        zones = any(self._zones(g) is not None for g in greens)
        if zones:
            weight *= adaptive_zones.COST_WEIGHT
        return self._extension_pays(view, greens, others, weight, zones=zones)

    def _flow_ratio(self, view: View) -> float:
        """The junction's critical flow ratio ``Y`` from the measured arrival rates: per
        barrier group the larger ring's sum of the phases' rate × saturation headway."""
        groups: dict[int, dict[int, float]] = {}  # barrier group → ring → its flow ratio
        for p, pl in self.queues.phases.items():
            rings = groups.setdefault(view.phase_group(p), {})
            r = view.phase_ring(p)
            rings[r] = rings.get(r, 0.0) + pl.rate * self._headway(p)
        return sum(max(rings.values()) for rings in groups.values())

    def _held_up(self, view: View, g: int) -> list[int]:
        """Who waits beyond the barrier while the side of ``g`` is held: the called phases
        of every ring there (the rings cross the barrier together)."""
        side = view.phase_group(g)
        return sorted(
            p
            for p in self.queues.phases
            if view.phase_group(p) != side
            and p not in view.operator.omit
            and (p in view.calls or self._queue(view, p) >= 1.0)
        )

    def _best(self, view: View, cands: list[int]) -> int | None:
        if not cands:
            return None
        t = view.t
        q = self.queues
        starving = [p for p in cands if q.waited(p, t) >= self.max_wait_s]
        if starving:
            return max(starving, key=lambda p: q.waited(p, t))
        return max(cands, key=lambda p: (self._score(view, p), q.waited(p, t)))


def _register() -> None:
    from edgectl.control.strategies import register

    register(Mode.ADAPTIVE, Adaptive)


_register()
