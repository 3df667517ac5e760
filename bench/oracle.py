"""A clairvoyant controller: what could any controller save on a junction, at best?

Research code of the bench (``python -m bench.sumo_oracle``), not part of the product: it
cheats on purpose, so no daemon may ever run it.

The acceptance target of the adaptive strategy is a ratio to SUMO's actuated control. Whether
a ratio is reachable at all depends on the junction: its stages, minimum greens, clearances
and demand. This controller estimates the reachable time loss from above by cheating every
way a real one cannot:

- it sees every vehicle in the network (position and speed), not two loops per lane;
- it knows the future: before each decision it saves SUMO's state and *simulates* each option
  (extend the green, or end it for each other stage) over a horizon, with the real vehicles
  that will arrive, and keeps the option whose simulated future loses the least time.

It is a *rollout* controller (one-step look-ahead over base policies): after each option the
simulated future is driven by a perfect-information queue-clearing policy (hold a stage while
a vehicle stands on or approaches its lanes within ``near`` m, then serve the stage with the
most such vehicles), one simulation per ``near`` in :data:`NEAR_M`, and the best counts. A
rollout does at least as well as its base policies; it is not the optimum, so its time loss is
an estimate of what is reachable, not a bound.

With ``sensing="loops"`` it plans with what the junction's loops could know instead, to split
what a real controller loses by not seeing from what it loses by not planning:

- before each rollout the vehicles no loop could have seen are taken out of the saved state:
  every vehicle due to depart within the horizon, every vehicle upstream of an approach, and every
  moving vehicle on an approach lane farther from the stop line than its farthest loop (the
  standing queue behind the zone stays: a covered advance loop tells a controller of it);
- in their place come vehicles drawn at random at the demand of the last ``RATE_WINDOW_S``
  (per origin and destination: generous, as loops count an approach, not where its vehicles
  go), entering over the horizon and spread over the unseen part of each approach;
- every option is tried on the same ``samples`` draws (common random numbers), and the one
  with the least summed loss is kept.

It keeps every rule the real controllers keep: the derived stages only, minimum and maximum
green, yellow and red clearance on whole steps, movements common to two stages green through
the change.

Mechanics: SUMO restores a saved state faithfully only for vehicles it has already loaded, and
not together with its random number generators (``--save-state.rng`` loses vehicles of
flows, SUMO 1.28), so a run first writes the seed's demand as explicit vehicles
(:func:`explicit_routes`), loads them all at once (``--route-steps 0``), and simulates the
futures without driver imperfection (``sigma`` 0); the real timeline keeps it. Time loss is
each vehicle's ``timeLoss`` when last seen, which matches the tripinfo mean the bench reports
to 0.01 s on a run without look-ahead.
"""

from __future__ import annotations

import bisect
import math
import os
import random
import subprocess
import tempfile
import time
import xml.etree.ElementTree as ET
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from types import ModuleType
from typing import Any

from edgectl.sumo._env import binary, load_libsumo
from edgectl.sumo.network import JunctionModel, derive_network, on_steps

__all__ = ["NEAR_M", "SENSING", "OracleResult", "explicit_routes", "run_oracle"]

HORIZON_S = 60.0  # how far each option's future is simulated
DECIDE_EVERY_S = 1.0  # a decision (extend, or end for another stage) at most this often
NEAR_M = (25.0, 40.0, 60.0)  # the base policies: a stage is held for vehicles this close
QUEUED_MPS = 2.0  # slower than this counts as queued, wherever on the lane
LEFT_OVER_S = 10.0  # each vehicle still halted at the horizon's end costs this much more
MAX_SIM_S = 86400.0
SENSING = ("all", "loops")  # every vehicle and the real future; or what the loops could know
SAMPLES = 3  # loop sensing: random futures each option is tried on
RATE_WINDOW_S = 180.0  # loop sensing: the demand drawn is that of this trailing window
UNSEEN_SPEED_MPS = 13.9  # loop sensing: vehicles drawn on the unseen approach move this fast
UNSEEN_GAP_M = 10.0  # ... and start at least this far behind the zone the loops cover
RATE_MIN_S = 60.0  # ... the demand is counted over at least this much time at the start
QUEUE_GAP_M = 12.0  # a standing vehicle this close behind the queue belongs to it


@dataclass(frozen=True, slots=True)
class OracleResult:
    scenario: str
    seed: int
    time_loss_s: float  # mean over every vehicle that entered
    vehicles: int
    decisions: int
    switches: int
    wall_s: float
    sensing: str = "all"
    signal_states: tuple[tuple[float, str], ...] = ()  # (time, tls state) when recorded


@dataclass(frozen=True, slots=True)
class _Trip:
    """One vehicle of the demand: when it departs, its id, type and route."""

    depart: float
    id: str
    type: str
    edges: tuple[str, ...]


# a vehicle drawn for a loop-sensing rollout: route id, type, departure time, and where on its
# first edge it starts (None: at the edge's start, at ``depart``)
_Drawn = tuple[str, str, float, float | None]


@dataclass(frozen=True, slots=True)
class _Signal:
    stage: int  # index into the model's stages
    interval: str  # "G", "Y" (yellow) or "R" (red clearance) of the change to ``to``
    since: float
    to: int = -1


def _sumo(cfg: Path, seed: int) -> list[str]:
    return [binary("sumo"), "-c", str(cfg), "--seed", str(seed), "--no-step-log", "true"]


def explicit_routes(cfg: Path, seed: int, out: Path) -> Path:
    """The demand of ``cfg`` under ``seed`` as explicit vehicles, sorted by departure.

    SUMO runs the scenario once (its own tls programs) writing every vehicle's route and
    departure; the vehicle types of the scenario's route files are copied in front."""
    raw = out / f"{cfg.stem}_s{seed}.raw.xml"
    subprocess.run(
        [*_sumo(cfg, seed), "--vehroute-output", str(raw)],
        check=True,
        capture_output=True,
    )
    types: list[ET.Element] = []
    # the user's own local scenario files, and SUMO's output
    for node in ET.parse(cfg).getroot().iter("route-files"):
        for name in node.get("value", "").split(","):
            types += ET.parse(cfg.parent / name.strip()).getroot().findall("vType")
    vehicles = ET.parse(raw).getroot().findall("vehicle")
    vehicles.sort(key=lambda v: float(v.get("depart", "0")))
    root = ET.Element("routes")
    for v in vehicles:
        v.attrib.pop("arrival", None)
    root.extend(types + vehicles)
    path = out / f"{cfg.stem}_s{seed}.rou.xml"
    ET.ElementTree(root).write(path, encoding="unicode")
    raw.unlink()
    return path


class _Rollout:
    """The rollout controller: clairvoyant, or with loop sensing when ``samples`` > 0."""

    def __init__(
        self,
        ls: ModuleType,
        model: JunctionModel,
        *,
        horizon_s: float,
        near_m: tuple[float, ...],
        demand: tuple[_Trip, ...] = (),
        zone_m: dict[str, float] | None = None,
        samples: int = 0,
        seed: int = 0,
    ) -> None:
        self.ls = ls
        self.m = model
        self.stages = model.stages
        self.horizon_s = horizon_s
        self.near_m = near_m
        self.step_s = float(ls.simulation.getDeltaT())
        self.lanes = sorted({g.in_lane for g in model.groups})
        self.length = {ln: float(ls.lane.getLength(ln)) for ln in self.lanes}
        self.vmax = {ln: float(ls.lane.getMaxSpeed(ln)) for ln in self.lanes}
        # the lanes a stage serves: every movement of the lane green (a shared lane whose
        # through is red is blocked by its first through vehicle: not served)
        moves: dict[str, set[int]] = {}
        for g in model.groups:
            moves.setdefault(g.in_lane, set()).add(g.index)
        self.served = [
            frozenset(ln for ln, gs in moves.items() if gs <= st.groups) for st in self.stages
        ]
        self.green = [model.state_for(st.groups, permissive=st.permissive) for st in self.stages]
        self.change: dict[tuple[int, int], tuple[str, str]] = {}
        for a, sa in enumerate(self.stages):
            for b, sb in enumerate(self.stages):
                if a != b:
                    keep = sa.groups & sb.groups
                    held = sa.permissive & keep
                    self.change[a, b] = (
                        model.state_for(keep, sa.groups - keep, held),
                        model.state_for(keep, (), held),
                    )
        self.vtypes = list(ls.vehicletype.getIDList())
        self.sigma = {v: float(ls.vehicletype.getImperfection(v)) for v in self.vtypes}
        # loop sensing (``samples`` > 0): the demand, a route per path, what the loops cover
        self.samples = samples
        self.demand = demand
        self.departs = [trip.depart for trip in demand]  # sorted, as the demand is
        self.zone_m = zone_m or {}
        self.rng = random.Random(seed)
        self.approaches = {ls.lane.getEdgeID(ln) for ln in self.lanes}
        self.edge_zone: dict[str, float] = {}
        for ln, reach in self.zone_m.items():
            edge = ls.lane.getEdgeID(ln)
            self.edge_zone[edge] = max(self.edge_zone.get(edge, 0.0), reach)
        self.route_of: dict[tuple[str, ...], str] = {}
        self.unseen_m: dict[str, float] = {}  # first edge of a path → its part no loop covers
        if samples:
            for trip in demand:
                if trip.edges not in self.route_of:
                    self.route_of[trip.edges] = f"oracle-route-{len(self.route_of)}"
                    ls.route.add(self.route_of[trip.edges], list(trip.edges))
                    first = trip.edges[0]
                    self.unseen_m[first] = float(ls.lane.getLength(f"{first}_0")) - (
                        self.edge_zone.get(first, 0.0) + UNSEEN_GAP_M
                    )

    # --- signal timing, the same rules as the bench's controllers ---
    def state(self, s: _Signal) -> str:
        if s.interval == "G":
            return self.green[s.stage]
        yellow, red = self.change[s.stage, s.to]
        return yellow if s.interval == "Y" else red

    def timed(self, s: _Signal, t: float) -> _Signal:
        st = self.stages[s.stage]
        if s.interval == "Y" and t - s.since >= st.yellow - 1e-6:
            s = replace(s, interval="R", since=t)
        if s.interval == "R" and t - s.since >= st.red_clear - 1e-6:
            s = _Signal(stage=s.to, interval="G", since=t)
        return s

    def may_end(self, s: _Signal, t: float) -> bool:
        return s.interval == "G" and t - s.since >= self.stages[s.stage].min_green - 1e-6

    def must_end(self, s: _Signal, t: float) -> bool:
        return t - s.since >= self.stages[s.stage].max_green - 1e-6

    # --- the base policy: perfect-information queue clearing ---
    def _near(self, near_m: float) -> dict[str, int]:
        ls = self.ls
        out: dict[str, int] = {}
        for ln in self.lanes:
            n = 0
            for v in ls.lane.getLastStepVehicleIDs(ln):
                if (
                    self.length[ln] - ls.vehicle.getLanePosition(v) <= near_m
                    or ls.vehicle.getSpeed(v) < QUEUED_MPS
                ):
                    n += 1
            out[ln] = n
        return out

    def base(self, s: _Signal, t: float, near_m: float) -> _Signal:
        if not self.may_end(s, t):
            return s
        near = self._near(near_m)
        here = self.served[s.stage]
        # what another stage would serve that this one does not
        wants = {
            k: sum(near[ln] for ln in lanes - here)
            for k, lanes in enumerate(self.served)
            if k != s.stage
        }
        waiting = [k for k, n in wants.items() if n > 0]
        if not waiting:
            return s  # rest in green
        k = max(waiting, key=lambda k: wants[k])
        # hold for what only this stage serves, up to its maximum green
        if not self.must_end(s, t) and sum(near[ln] for ln in here - self.served[k]) > 0:
            return s
        return _Signal(stage=s.stage, interval="Y", since=t, to=k)

    # --- loop sensing: what no loop saw is taken out, random vehicles put in ---
    def _rates(self, t: float) -> dict[tuple[str, ...], tuple[float, str]]:
        """Path → (vehicles per second over the trailing window, vehicle type)."""
        since = max(0.0, t - RATE_WINDOW_S)
        span = max(RATE_MIN_S, t - since)
        counts: dict[tuple[str, ...], tuple[int, str]] = {}
        lo, hi = bisect.bisect_right(self.departs, since), bisect.bisect_right(self.departs, t)
        for trip in self.demand[lo:hi]:
            n, _ = counts.get(trip.edges, (0, trip.type))
            counts[trip.edges] = (n + 1, trip.type)
        return {edges: (n / span, vtype) for edges, (n, vtype) in counts.items()}

    def _draw(self, rates: dict[tuple[str, ...], tuple[float, str]], t: float) -> list[_Drawn]:
        """One random future at ``rates``: vehicles entering over the horizon, and spread
        over the part of each approach no loop covers."""
        out: list[_Drawn] = []
        for edges, (rate, vtype) in rates.items():
            route = self.route_of[edges]
            unseen = self.unseen_m[edges[0]]
            if unseen > 0:
                for _ in range(self._poisson(rate * unseen / UNSEEN_SPEED_MPS)):
                    out.append((route, vtype, t, self.rng.uniform(0.0, unseen)))
            at = t + self.rng.expovariate(rate)
            while at <= t + self.horizon_s:
                out.append((route, vtype, at, None))
                at += self.rng.expovariate(rate)
        return out

    def _poisson(self, mean: float) -> int:
        n, p, floor = 0, self.rng.random(), math.exp(-mean)
        while p > floor:
            n += 1
            p *= self.rng.random()
        return n

    def _hide(self, t: float) -> None:
        """Take out of the simulation what the loops could not have seen at ``t``."""
        ls = self.ls
        # due to depart within the horizon (those after it never matter)
        lo = bisect.bisect_right(self.departs, t)
        hi = bisect.bisect_right(self.departs, t + self.horizon_s)
        for trip in self.demand[lo:hi]:
            ls.vehicle.remove(trip.id)
        for v in ls.vehicle.getIDList():
            route = ls.vehicle.getRoute(v)
            here = int(ls.vehicle.getRouteIndex(v))
            if any(e in self.approaches for e in route[here + 1 :]):
                ls.vehicle.remove(v)  # upstream of an approach
        for ln in self.lanes:
            length = self.length[ln]
            zone = self.zone_m.get(ln, 0.0)
            back = length - zone  # the back of what the loops account for
            vehicles = sorted(
                ls.lane.getLastStepVehicleIDs(ln), key=lambda v: -ls.vehicle.getLanePosition(v)
            )
            for v in vehicles:
                pos = float(ls.vehicle.getLanePosition(v))
                standing = float(ls.vehicle.getSpeed(v)) < QUEUED_MPS
                if pos >= length - zone:
                    if standing:
                        back = min(back, pos - float(ls.vehicle.getLength(v)))
                elif standing and back - pos <= QUEUE_GAP_M:
                    back = pos - float(ls.vehicle.getLength(v))  # the standing queue behind
                else:
                    ls.vehicle.remove(v)

    def _insert(self, drawn: list[_Drawn]) -> None:
        for i, (route, vtype, depart, pos) in enumerate(drawn):
            where = {} if pos is None else {"departPos": f"{pos:.1f}"}
            self.ls.vehicle.add(
                f"oracle-drawn-{i}",
                route,
                typeID=vtype,
                depart="now" if pos is not None else f"{depart:.2f}",
                departLane="best",
                departSpeed="max",
                **where,
            )

    # --- look-ahead ---
    def _lost_now(self) -> float:
        ls = self.ls
        lost = 0.0
        for ln in self.lanes:
            n = ls.lane.getLastStepVehicleNumber(ln)
            if n:
                lost += n * max(0.0, 1.0 - ls.lane.getLastStepMeanSpeed(ln) / self.vmax[ln])
        return lost

    def rollout(
        self, state_file: str, s: _Signal, t: float, near_m: float, drawn: list[_Drawn] | None
    ) -> float:
        """Time lost on the junction's approaches over the horizon after choosing ``s``
        (``drawn``: loop sensing, in this random future)."""
        ls = self.ls
        ls.simulation.loadState(state_file)
        for v in self.vtypes:
            ls.vehicletype.setImperfection(v, 0.0)
        if drawn is not None:
            self._hide(t)
            self._insert(drawn)
        lost = 0.0
        now = t
        while now < t + self.horizon_s - 1e-6:
            ls.trafficlight.setRedYellowGreenState(self.m.tls_id, self.state(s))
            ls.simulationStep()
            now = float(ls.simulation.getTime())
            lost += self._lost_now() * self.step_s
            s = self.base(self.timed(s, now), now, near_m)
        halted = sum(int(ls.lane.getLastStepHaltingNumber(ln)) for ln in self.lanes)
        return lost + LEFT_OVER_S * halted

    def decide(self, state_file: str, s: _Signal, t: float) -> _Signal:
        options: list[_Signal] = [] if self.must_end(s, t) else [s]
        options += [
            _Signal(stage=s.stage, interval="Y", since=t, to=k)
            for k in range(len(self.stages))
            if k != s.stage
        ]
        ls = self.ls
        ls.simulation.saveState(state_file)
        rates = self._rates(t) if self.samples else {}
        futures = [self._draw(rates, t) for _ in range(self.samples)] if self.samples else [None]
        best: tuple[float, _Signal] | None = None
        for option in options:
            cost = sum(
                min(self.rollout(state_file, option, t, n, f) for n in self.near_m) for f in futures
            )
            if best is None or cost < best[0] - 1e-9:
                best = (cost, option)
        ls.simulation.loadState(state_file)
        for v in self.vtypes:
            ls.vehicletype.setImperfection(v, self.sigma[v])
        assert best is not None
        return best[1]


def run_oracle(
    cfg: Path,
    seed: int,
    *,
    routes: Path | None = None,
    horizon_s: float = HORIZON_S,
    near_m: tuple[float, ...] = NEAR_M,
    until_s: float = MAX_SIM_S,
    permissive_lefts: bool = False,
    sensing: str = "all",
    samples: int = SAMPLES,
    loop_reach_m: float | None = None,
    record: bool = False,
) -> OracleResult:
    """Run the clairvoyant controller on a one-junction scenario under ``seed``'s demand
    (``routes``: that demand from :func:`explicit_routes`, written here when not given).
    ``sensing``: ``"all"`` (every vehicle, the real future) or ``"loops"`` (what the loops
    could know, each option tried on ``samples`` random futures; ``loop_reach_m``: as if the
    farthest loop of every approach lane lay this far from its stop line, instead of where
    the scenario's loops are)."""
    if sensing not in SENSING:
        raise ValueError(f"sensing {sensing!r}: one of {', '.join(SENSING)}")
    if sensing == "loops" and samples < 1:
        raise ValueError("loop sensing needs at least one random future per decision")
    models = derive_network(
        str(next(cfg.parent.glob("*.net.xml"))), permissive_lefts=permissive_lefts
    )
    if len(models) != 1:
        raise ValueError(f"{cfg}: the clairvoyant controller runs one junction, not {len(models)}")
    if any(m.dual_ring is not None for m in models.values()):
        # edgectl runs such a junction on the NEMA dual ring, which serves combinations the
        # stages cannot (a left with its own through): the stages would bound nothing
        raise ValueError(
            f"{cfg}: the clairvoyant controller runs stages; this junction has a dual ring"
        )
    ls = load_libsumo()
    wall0 = time.perf_counter()
    states: list[tuple[float, str]] = []
    with tempfile.TemporaryDirectory(prefix="edgectl-oracle-") as tmp:
        if routes is None:
            routes = explicit_routes(cfg, seed, Path(tmp))
        state_file = os.path.join(tmp, "state.xml")
        ls.start([*_sumo(cfg, seed), "--route-files", str(routes), "--route-steps", "0"])
        try:
            step_s = float(ls.simulation.getDeltaT())
            (model,) = (on_steps(m, step_s) for m in models.values())
            loops = sensing == "loops"
            oracle = _Rollout(
                ls,
                model,
                horizon_s=horizon_s,
                near_m=near_m,
                demand=_demand(routes) if loops else (),
                zone_m=_zones(ls, loop_reach_m) if loops else None,
                samples=samples if loops else 0,
                seed=seed,
            )
            lost: dict[str, float] = {}
            s = _Signal(stage=0, interval="G", since=float(ls.simulation.getTime()))
            t = float(ls.simulation.getTime())
            last = -1e9
            decisions = switches = 0
            while ls.simulation.getMinExpectedNumber() > 0 and t < until_s:
                s = oracle.timed(s, t)
                if oracle.may_end(s, t) and t - last >= DECIDE_EVERY_S - 1e-6:
                    last = t
                    decisions += 1
                    s = oracle.decide(state_file, s, t)
                    switches += s.interval == "Y"
                state = oracle.state(s)
                if record:
                    states.append((t, state))
                ls.trafficlight.setRedYellowGreenState(model.tls_id, state)
                ls.simulationStep()
                t = float(ls.simulation.getTime())
                for v in ls.vehicle.getIDList():
                    lost[v] = float(ls.vehicle.getTimeLoss(v))
        finally:
            ls.close()
    return OracleResult(
        scenario=cfg.stem,
        seed=seed,
        time_loss_s=round(sum(lost.values()) / len(lost), 2) if lost else 0.0,
        vehicles=len(lost),
        decisions=decisions,
        switches=switches,
        wall_s=round(time.perf_counter() - wall0, 1),
        sensing=sensing,
        signal_states=tuple(states),
    )


def _demand(routes: Path) -> tuple[_Trip, ...]:
    """The vehicles of an :func:`explicit_routes` file, by departure."""
    trips = []
    for v in ET.parse(routes).getroot().iter("vehicle"):
        route = v.find("route")
        edges = tuple((route.get("edges", "") if route is not None else "").split())
        if edges:
            trips.append(
                _Trip(float(v.get("depart", "0")), v.get("id", ""), v.get("type", ""), edges)
            )
    trips.sort(key=lambda trip: trip.depart)
    return tuple(trips)


def _zones(ls: ModuleType, reach_m: float | None = None) -> dict[str, float]:
    """Lane → how far from its stop line the farthest loop on it lies (what loops cover);
    with ``reach_m``, that far on every lane with a loop (at most the lane's length)."""
    out: dict[str, float] = {}
    for d in ls.inductionloop.getIDList():
        lane = ls.inductionloop.getLaneID(d)
        length = float(ls.lane.getLength(lane))
        reach = length - float(ls.inductionloop.getPosition(d))
        if reach_m is not None:
            reach = min(length, reach_m)
        out[lane] = max(out.get(lane, 0.0), reach)
    return out


def oracle_summary(result: OracleResult) -> dict[str, Any]:
    """The JSON-friendly fields of ``result`` (without the recorded states)."""
    out = asdict(result)
    del out["signal_states"]
    return out
