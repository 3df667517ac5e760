"""Priority requests in the bench, fed as a vehicle-to-centre GPS feed would feed them.

Only vehicles of vClass ``emergency`` and ``bus`` report, and only what such a feed carries:
their position along their route (metres), their speed and their route (the edges they will
drive, as their navigation knows it). Nothing about other traffic reaches the feed.

- **Emergency vehicles**: each gets a :class:`~edgectl.centre.route.GreenWave` over the
  signalised junctions of its route (the centre's library, unchanged); every ``fix_s`` its
  position and speed go in, and the wave's sends and cancels become each junction's
  :meth:`Controller.request_priority` / :meth:`Controller.cancel_priority` (the ETA converted
  to that controller's time), as the daemon applies the MQTT ``priority`` commands.
- **Buses**: transit signal priority. A bus checks in at a junction
  (:meth:`Controller.transit_checkin`) once it is within ``tsp_checkin_m`` of the stop line
  and has served every bus stop before it, and checks out (:meth:`Controller.transit_checkout`)
  once it has passed the stop line.

The movement at each junction (route edge in → route edge out) maps to the tls links of that
connection, and those to the phase of the junction's configuration that serves them (the
NEMA dual ring or the stages: :meth:`JunctionModel.phase_groups`).

Separately from the feed, the bench *measures* every priority vehicle at every junction it
crosses from SUMO itself (:meth:`vehicle.getNextTLS`): the signal it saw for its link at the
last step before the stop line, how long that had been green, and whether it halted on the
approach. With ``enabled=False`` (``--no-priority``) the same vehicles are tracked and
measured and nothing is sent.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

from edgectl.centre.route import Cancel, GreenWave, Route, RouteError, RouteStop, Send
from edgectl.sumo.controls import EdgectlJunction, JunctionControl
from edgectl.sumo.model import JunctionModel

__all__ = [
    "BUS",
    "EMERGENCY",
    "TSP_PLAN",
    "FeedParams",
    "Passage",
    "PriorityFeed",
    "dwell_phases",
    "movement_phase",
    "route_passages",
]

TSP_PLAN: Mapping[str, object] = {
    # the plan fields of transit signal priority a run with priority sets on every junction:
    # early green and extension bounds tuned on corridor and grid (docs/sumo-priority.md)
    "tsp_enabled": True,
    "tsp_max_early_s": 40.0,
    "tsp_max_extend_s": 20.0,
}
EMERGENCY = "emergency"
BUS = "bus"
HALT_MPS = 0.1


@dataclass(frozen=True, slots=True)
class FeedParams:
    """The priority mechanisms' parameters the bench uses (tuned for traffic reasons)."""

    fix_s: float = 1.0  # GPS fix period
    ahead: int = 3  # junctions ahead holding a request
    horizon_s: float = 120.0
    resend_s: float = 2.0
    timeout_s: float = 30.0
    min_speed_mps: float = 2.0
    free_flow: bool = True  # a queued vehicle's ETAs at the route's speed limit
    level: int = 1
    companion: bool = True  # dual ring: dwell with the compatible through (see dwell_phases)
    tsp_checkin_m: float = 300.0  # check in this far before the stop line (stops served)
    tsp_speed_share: float = 0.0  # a bus's ETA: at least this share of the speed limit
    emergency: bool = True  # feed the emergency vehicles' green waves
    transit: bool = True  # feed the buses' check-ins (TSP)


@dataclass(frozen=True, slots=True)
class Passage:
    """One signalised junction on a vehicle's route."""

    tls: str
    in_edge: str
    out_edge: str
    links: tuple[int, ...]  # tls link indices of the movement
    phase: int  # the phase serving it in the junction's configuration
    position_m: float  # the stop line, in the vehicle's route coordinate (odometer)
    limit_mps: float = 13.89  # the approach's speed limit


@dataclass(slots=True)
class _Crossing:
    """What the bench measured of one vehicle at one junction."""

    tls: str
    last_state: str = ""  # the link's signal at the last step before the stop line
    green_since: float | None = None  # the link green continuously since
    green_lead_s: float = 0.0  # how long it had been green when the vehicle crossed
    halted: bool = False  # stood still on the approach (not at a bus stop)
    crossed: bool = False


@dataclass(slots=True)
class _Tracked:
    vid: str
    vclass: str
    passages: tuple[Passage, ...]
    wave: GreenWave | None = None
    stops_m: tuple[float, ...] = ()  # bus stops' positions along the route
    next_fix: float = 0.0
    checked_in: set[int] = field(default_factory=set)
    checked_out: set[int] = field(default_factory=set)
    eta: dict[int, float] = field(default_factory=dict)  # passage → the ETA last checked in
    crossings: dict[int, _Crossing] = field(default_factory=dict)  # passage index → crossing
    seen_tls: str | None = None  # the tls of the last getNextTLS entry


def movement_phase(
    model: JunctionModel, links: Sequence[int], *, dual_ring: bool = True
) -> int | None:
    """The phase of the junction's configuration that serves ``links`` (a movement): the one
    holding most of them, protected where the stages say which are permissive."""
    if not links:
        return None
    wanted = set(links)
    permissive: dict[int, frozenset[int]] = {}
    if not (dual_ring and model.dual_ring is not None):
        permissive = {st.number: st.permissive for st in model.stages}
    best: tuple[int, int, int] | None = None
    phase: int | None = None
    for p, groups in sorted(model.phase_groups(dual_ring=dual_ring).items()):
        held = wanted & groups
        if not held:
            continue
        score = (len(held - permissive.get(p, frozenset())), len(held), -p)
        if best is None or score > best:
            best, phase = score, p
    return phase


# NEMA dual ring: the phase of the other ring, same side of the barrier, that can dwell with
# a priority phase: the opposing through for a through, the same approach's through for a
# protected left (it turns across the other through)
_COMPANION = {2: 6, 6: 2, 4: 8, 8: 4, 1: 6, 5: 2, 3: 8, 7: 4}


def dwell_phases(
    model: JunctionModel, phase: int, *, dual_ring: bool = True, companion: bool = True
) -> tuple[int, ...]:
    """The phases a priority request names for a movement served by ``phase``: on the dual
    ring with ``companion``, also the compatible through of the other ring, so the preempt
    dwell keeps that traffic moving instead of holding it red (one ring of stages: a stage
    already holds every movement compatible with it)."""
    dr = model.dual_ring if dual_ring else None
    other = _COMPANION.get(phase) if dr is not None and companion else None
    if dr is None or other is None or other not in dr.phases or phase not in dr.phases:
        return (phase,)
    return (phase, other)


def _route_id(vid: str) -> str:
    """A route id the centre's library accepts (a topic level, at most 60 characters)."""
    return re.sub(r"[+#/\x00]", "_", vid)[:60] or "vehicle"


def _movements(
    ls: ModuleType, models: Mapping[str, JunctionModel]
) -> dict[tuple[str, str], tuple[str, tuple[int, ...]]]:
    """(incoming edge, outgoing edge) → (tls, link indices) over every signalised junction."""
    out: dict[tuple[str, str], tuple[str, list[int]]] = {}
    for tls, m in models.items():
        for g in m.groups:
            key = (ls.lane.getEdgeID(g.in_lane), ls.lane.getEdgeID(g.out_lane))
            out.setdefault(key, (tls, []))[1].append(g.index)
    return {k: (tls, tuple(sorted(v))) for k, (tls, v) in out.items()}


def route_passages(
    ls: ModuleType,
    vid: str,
    movements: Mapping[tuple[str, str], tuple[str, tuple[int, ...]]],
    models: Mapping[str, JunctionModel],
    *,
    dual_ring: bool,
) -> tuple[Passage, ...]:
    """The signalised junctions on ``vid``'s route ahead, with their stop lines in the
    vehicle's odometer coordinate (``vehicle.getDistance``)."""
    edges = list(ls.vehicle.getRoute(vid))
    start = int(ls.vehicle.getRouteIndex(vid))
    odometer = float(ls.vehicle.getDistance(vid))
    out: list[Passage] = []
    for e_in, e_out in zip(edges[start:], edges[start + 1 :], strict=False):
        hit = movements.get((e_in, e_out))
        if hit is None:
            continue
        tls, links = hit
        phase = movement_phase(models[tls], links, dual_ring=dual_ring)
        if phase is None:
            continue
        length = float(ls.lane.getLength(f"{e_in}_0"))
        ahead = float(ls.vehicle.getDrivingDistance(vid, e_in, length))
        if ahead < 0:  # SUMO: not reachable on the route
            continue
        limit = float(ls.lane.getMaxSpeed(f"{e_in}_0"))
        out.append(Passage(tls, e_in, e_out, links, phase, odometer + ahead, limit))
    return tuple(out)


class PriorityFeed:
    """The bench's GPS feed of emergency vehicles and buses (see the module docstring)."""

    def __init__(
        self,
        ls: ModuleType,
        models: Mapping[str, JunctionModel],
        controls: Mapping[str, JunctionControl],
        *,
        dual_ring: bool = True,
        enabled: bool = True,
        params: FeedParams | None = None,
    ) -> None:
        self.ls = ls
        self.models = models
        self.controls = controls
        self.dual_ring = dual_ring
        self.params = params or FeedParams()
        edgectl = all(isinstance(c, EdgectlJunction) for c in controls.values())
        self.enabled = enabled and edgectl
        self.note = "" if edgectl or not enabled else "SUMO's own programs take no requests"
        self.tsp = self.enabled and all(
            hasattr(c.controller, "transit_checkin")
            for c in controls.values()
            if isinstance(c, EdgectlJunction)
        )
        self.movements = _movements(ls, models)
        self.vclass: dict[str, str] = {}  # every priority vehicle seen → its class
        self.tracked: dict[str, _Tracked] = {}
        self.done: list[_Tracked] = []
        self.counts: dict[str, int] = {
            "sent": 0,
            "updates": 0,
            "cancels": 0,
            "refused": 0,
            "routes_refused": 0,
            "honoured": 0,
            "late": 0,
            "tsp_checkins": 0,
            "tsp_updates": 0,
            "tsp_checkouts": 0,
            "tsp_refused": 0,
        }
        self._requested: set[tuple[str, str]] = set()  # (tls, request) sent at least once

    # --- the step -------------------------------------------------------------------------

    def after_step(self, t: float) -> None:
        """Called once per SUMO step, after every controller has advanced to ``t``."""
        ls = self.ls
        for vid in ls.simulation.getDepartedIDList():
            vclass = str(ls.vehicle.getVehicleClass(vid))
            if vclass in (EMERGENCY, BUS):
                self.vclass[vid] = vclass
                self._track(vid, vclass, t)
        for vid in ls.simulation.getArrivedIDList():
            tr = self.tracked.pop(vid, None)
            if tr is not None:
                self._finish(tr, t)
        for tr in self.tracked.values():
            self._measure(tr, t)
            if t + 1e-9 >= tr.next_fix:
                tr.next_fix = t + self.params.fix_s
                self._fix(tr, t)

    def close(self, t: float) -> None:
        for tr in list(self.tracked.values()):
            self._finish(tr, t)
        self.tracked.clear()

    # --- vehicles -------------------------------------------------------------------------

    def _track(self, vid: str, vclass: str, t: float) -> None:
        ls = self.ls
        passages = route_passages(ls, vid, self.movements, self.models, dual_ring=self.dual_ring)
        tr = _Tracked(vid, vclass, passages, next_fix=t)
        if vclass == EMERGENCY and passages:
            p = self.params
            speed = max(float(ls.lane.getMaxSpeed(f"{passages[0].in_edge}_0")), p.min_speed_mps)
            route = Route(
                _route_id(vid),
                tuple(
                    RouteStop(
                        x.tls,
                        dwell_phases(
                            self.models[x.tls],
                            x.phase,
                            dual_ring=self.dual_ring,
                            companion=p.companion,
                        ),
                        x.position_m,
                    )
                    for x in passages
                ),
                p.level,
            )
            try:
                tr.wave = GreenWave(
                    route,
                    ahead=p.ahead,
                    horizon_s=p.horizon_s,
                    resend_s=p.resend_s,
                    timeout_s=p.timeout_s,
                    min_speed_mps=p.min_speed_mps,
                    free_flow_mps=speed if p.free_flow else None,
                )
            except RouteError:  # e.g. a tls id that is no MQTT topic level: no wave for it
                self.counts["routes_refused"] += 1
        if vclass == BUS:
            odometer = float(ls.vehicle.getDistance(vid))
            stops = []
            for stop in ls.vehicle.getStops(vid):
                edge = ls.lane.getEdgeID(stop.lane)
                ahead = float(ls.vehicle.getDrivingDistance(vid, edge, float(stop.endPos)))
                if ahead >= 0:
                    stops.append(odometer + ahead)
            tr.stops_m = tuple(sorted(stops))
        self.tracked[vid] = tr

    def _fix(self, tr: _Tracked, t: float) -> None:
        """One GPS fix: position along the route and speed, to the wave / TSP."""
        if not self.enabled:
            return
        ls = self.ls
        position = float(ls.vehicle.getDistance(tr.vid))
        speed = float(ls.vehicle.getSpeed(tr.vid))
        if tr.wave is not None and self.params.emergency:
            self._apply(tr.wave.update(t, position, speed))
        if tr.vclass == BUS and self.tsp and self.params.transit:
            self._transit(tr, position, speed)

    def _finish(self, tr: _Tracked, t: float) -> None:
        if tr.wave is not None and self.enabled:
            self._apply(list(tr.wave.finish()))
        if tr.vclass == BUS and self.tsp:
            for i, ps in enumerate(tr.passages):
                if i in tr.checked_in and i not in tr.checked_out:
                    self._checkout(tr, i, ps)
        self.done.append(tr)

    # --- emergency vehicles -----------------------------------------------------------------

    def _apply(self, items: Sequence[Send | Cancel]) -> None:
        from edgectl.control.priority import PriorityRequest

        for item in items:
            control = self.controls.get(item.junction)
            if not isinstance(control, EdgectlJunction):
                continue
            if isinstance(item, Cancel):
                if control.controller.cancel_priority(item.request):
                    self.counts["cancels"] += 1
                continue
            key = (item.junction, item.request)
            request = PriorityRequest(
                id=item.request,
                phases=item.phases,
                eta=control.now + item.eta_s,  # the junction's own clock
                level=item.level,
                timeout_s=item.timeout_s,
            )
            try:
                answer = control.controller.request_priority(request)
            except ValueError:
                self.counts["refused"] += 1
                continue
            self.counts["updates" if key in self._requested else "sent"] += 1
            if key not in self._requested:
                self._requested.add(key)
                self.counts["honoured" if answer.honoured else "late"] += 1

    # --- buses ------------------------------------------------------------------------------

    def _transit(self, tr: _Tracked, position: float, speed: float) -> None:
        for i, ps in enumerate(tr.passages):
            if i in tr.checked_out:
                continue
            if i in tr.checked_in:
                if position >= ps.position_m:
                    self._checkout(tr, i, ps)
                    continue
                # still approaching: a new ETA when it moved (same id: an update)
                eta_s = self._bus_eta(ps, position, speed)
                control = self.controls[ps.tls]
                assert isinstance(control, EdgectlJunction)
                if abs(control.now + eta_s - tr.eta.get(i, 0.0)) > self.params.resend_s:
                    self._checkin(tr, i, ps, eta_s)
                break
            distance = ps.position_m - position
            if distance < 0:
                tr.checked_out.add(i)  # passed without a check-in (too close at departure)
                continue
            if distance > self.params.tsp_checkin_m:
                break  # the next junctions are further still
            if any(position < s <= ps.position_m for s in tr.stops_m):
                break  # a bus stop to serve first: its dwell makes any ETA meaningless
            self._checkin(tr, i, ps, self._bus_eta(ps, position, speed))
            break

    def _bus_eta(self, ps: Passage, position: float, speed: float) -> float:
        """Seconds to the stop line at the current speed, never slower than a share of the
        speed limit: a bus pulling out of a stop or creeping in a queue the junction is
        about to serve gets there sooner than its speed now says (updated every fix)."""
        floor = max(self.params.min_speed_mps, self.params.tsp_speed_share * ps.limit_mps)
        return max(0.0, ps.position_m - position) / max(speed, floor)

    def _checkin(self, tr: _Tracked, i: int, ps: Passage, eta_s: float) -> None:
        from edgectl.control import transit

        control = self.controls[ps.tls]
        assert isinstance(control, EdgectlJunction)
        request = transit.TransitRequest(
            id=f"{tr.vid}@{ps.tls}", phases=(ps.phase,), eta=control.now + eta_s
        )
        try:
            answer = control.controller.transit_checkin(request)
        except ValueError:
            answer = None
        if answer is None or not answer.accepted:
            self.counts["tsp_refused"] += 1
            tr.checked_out.add(i)
            return
        tr.eta[i] = request.eta or 0.0
        if i in tr.checked_in:
            self.counts["tsp_updates"] += 1
            return
        tr.checked_in.add(i)
        self.counts["tsp_checkins"] += 1

    def _checkout(self, tr: _Tracked, i: int, ps: Passage) -> None:
        control = self.controls[ps.tls]
        assert isinstance(control, EdgectlJunction)
        if control.controller.transit_checkout(f"{tr.vid}@{ps.tls}"):
            self.counts["tsp_checkouts"] += 1
        tr.checked_out.add(i)

    # --- measurement (SUMO's truth, not the feed) ------------------------------------------

    def _measure(self, tr: _Tracked, t: float) -> None:
        ls = self.ls
        upcoming = ls.vehicle.getNextTLS(tr.vid)
        nxt = str(upcoming[0][0]) if upcoming else None
        if tr.seen_tls is not None and nxt != tr.seen_tls:
            # the previous signal is behind the vehicle now: it crossed (a lane change only
            # changes the link index)
            idx = self._passage_index(tr, tr.seen_tls)
            if idx is not None and idx in tr.crossings:
                tr.crossings[idx].crossed = True
        tr.seen_tls = nxt
        if not upcoming:
            return
        tls, _link, _distance, state = upcoming[0]
        idx = self._passage_index(tr, str(tls))
        if idx is None:
            return
        c = tr.crossings.setdefault(idx, _Crossing(str(tls)))
        if c.crossed:
            return
        green = state in ("G", "g")
        if green and c.green_since is None:
            c.green_since = t
        elif not green:
            c.green_since = None
        c.last_state = str(state)
        c.green_lead_s = t - c.green_since if c.green_since is not None else 0.0
        if float(ls.vehicle.getSpeed(tr.vid)) < HALT_MPS and not ls.vehicle.isAtBusStop(tr.vid):
            c.halted = True

    def _passage_index(self, tr: _Tracked, tls: str) -> int | None:
        for i, ps in enumerate(tr.passages):
            if ps.tls == tls and i not in {k for k, c in tr.crossings.items() if c.crossed}:
                return i
        return None

    # --- the result -------------------------------------------------------------------------

    def summary(self) -> dict[str, Any]:
        """Counts of what was sent and, per class, what the vehicles met at the signals."""
        per: dict[str, dict[str, Any]] = {}
        for vclass in (EMERGENCY, BUS):
            crossings = [
                c
                for tr in [*self.done, *self.tracked.values()]
                if tr.vclass == vclass
                for c in tr.crossings.values()
                if c.crossed
            ]
            n = len(crossings)
            per[vclass] = {
                "vehicles": sum(1 for v in self.vclass.values() if v == vclass),
                "crossings": n,
                "green_at_stop_line": sum(1 for c in crossings if c.last_state in ("G", "g")),
                "halted": sum(1 for c in crossings if c.halted),
                "mean_green_lead_s": round(sum(c.green_lead_s for c in crossings) / n, 2)
                if n
                else 0.0,
            }
        return {
            "enabled": self.enabled,
            "tsp": self.tsp,
            "note": self.note,
            "params": {k: getattr(self.params, k) for k in FeedParams.__dataclass_fields__},
            **self.counts,
            "classes": per,
        }
