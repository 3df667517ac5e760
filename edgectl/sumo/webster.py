"""SUMO's own programs timed as a traffic engineer would: Webster from the scenario's demand.

The bench's peers ``sumo:static``, ``sumo:actuated`` and ``sumo:delay_based`` run the
derived stages (see :mod:`edgectl.sumo.stages`). Left with the network's default splits
(33 s through, 6 s protected left, whatever the demand) and default min / max greens they
are demand-blind and flatter every controller they are compared with. This module times
them from the scenario's own peak flows:

1. **Demand**: the ``<flow>`` elements of the scenario's route files (``from``/``to`` routed
   on the shortest path, or an explicit route; rates from ``period="exp(λ)"``,
   ``period``, ``vehsPerHour``, ``probability`` or ``number``), and its single
   ``<vehicle>`` / ``<trip>`` elements counted in 15-minute intervals, give, per time
   interval, the flow of every movement (incoming edge → outgoing edge) at every signalised
   junction. Route files without any demand are an error, not a timing for nobody.
2. **Lanes**: a movement's flow is spread over the lanes that have a connection for it,
   filling the least-loaded lane first (drivers balance their lanes).
3. **Critical flow ratios**: per lane and stage, the flow of the lane's signal groups that
   stage serves (a group served in k stages counts 1/k in each), over the saturation flow
   (:data:`SATURATION_VPH`, per lane), turning vehicles counted in through-car equivalents
   (HCM: a protected left 1 / 0.95, a right 1 / 0.85, a permissive left
   :data:`PERMISSIVE_LEFT_PCE`); a stage's ratio ``y`` is its busiest lane's, ``Y`` their
   sum. The peak is the interval with the largest ``Y``.
4. **Lost time** per stage followed by a clearance (HCM): start-up lost time
   (:data:`STARTUP_LOST_S`) plus yellow and red clearance, minus the part of the yellow
   drivers use (:data:`END_GAIN_S`); ``L`` is their sum.
5. **Webster**: cycle ``C0 = (1.5 L + 5) / (1 − Y)`` clamped to :data:`CYCLE_BOUNDS_S`
   (``Y`` capped at :data:`MAX_Y`), effective greens ``(C − L) · y / Y``, displayed greens
   from them, never under a stage's min green.

``sumo:static`` then runs these greens; ``sumo:actuated`` and ``sumo:delay_based`` the same
greens as their initial durations, the stage's min green as ``minDur``, and a max green
(``maxDur``) of :data:`ACTUATED_MAX_FACTOR` × the Webster green (never under the min +
5 s). Clearances are not touched. Nothing here imports libsumo; ``sumolib`` reads the net.

``python -m edgectl.sumo.webster SCENARIO.sumocfg [--out FILE]`` prints the timing per
junction and writes the three programs as a SUMO additional file (``<tlLogic>`` programs
``webster-static``, ``webster-actuated`` and ``webster-delay_based``) for plain ``sumo``
runs.
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import math
import re
import sys
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgectl.sumo.model import JunctionModel, Stage
from edgectl.sumo.result import BenchError, read_xml

__all__ = [
    "ACTUATED_MAX_FACTOR",
    "COUNT_INTERVAL_S",
    "CYCLE_BOUNDS_S",
    "END_GAIN_S",
    "LEFT_TURN_FACTOR",
    "MAX_Y",
    "PERMISSIVE_LEFT_PCE",
    "PROGRAM_KINDS",
    "RIGHT_TURN_FACTOR",
    "SATURATION_VPH",
    "STARTUP_LOST_S",
    "Movement",
    "WebsterTiming",
    "junction_demand",
    "read_flows",
    "scenario_route_files",
    "timed_models",
    "webster",
    "webster_cycle",
    "webster_timing",
    "write_programs",
]

SATURATION_VPH = 1800.0  # per lane, through vehicles
LEFT_TURN_FACTOR = 0.95  # HCM f_LT, a protected left
RIGHT_TURN_FACTOR = 0.85  # HCM f_RT
PERMISSIVE_LEFT_PCE = 2.0  # a left yielding to an opposing through, in through cars
STARTUP_LOST_S = 2.0  # HCM l1
END_GAIN_S = 2.0  # HCM e: the part of yellow + red clearance drivers still use
CYCLE_BOUNDS_S = (40.0, 150.0)
MAX_Y = 0.95  # above this the formula explodes: the cycle goes to its ceiling
ACTUATED_MAX_FACTOR = 1.5  # max green of the actuated / delay_based programs, × Webster's
PROGRAM_KINDS = ("static", "actuated", "delay_based")  # SUMO tlLogic types timed here
COUNT_INTERVAL_S = 900.0  # single vehicles are counted in 15-minute intervals (HCM's peak 15 min)


# ---------------------------------------------------------------- the textbook formula


def webster_cycle(lost_s: float, y_total: float) -> float:
    """Webster's optimum cycle ``(1.5 L + 5) / (1 − Y)``, unclamped (inf when Y ≥ 1)."""
    if y_total >= 1.0:
        return math.inf
    return (1.5 * lost_s + 5.0) / (1.0 - y_total)


def webster(
    ratios: Sequence[float],
    lost_s: float,
    *,
    cycle_bounds: tuple[float, float] = CYCLE_BOUNDS_S,
) -> tuple[float, tuple[float, ...]]:
    """Cycle and effective greens for critical flow ratios ``ratios`` and total lost time.

    The cycle is :func:`webster_cycle` (``Y`` capped at :data:`MAX_Y`) clamped to
    ``cycle_bounds``; the effective greens share ``C − L`` in proportion to ``y``."""
    y_total = sum(ratios)
    lo, hi = cycle_bounds
    cycle = min(max(webster_cycle(lost_s, min(y_total, MAX_Y)), lo), hi)
    usable = max(0.0, cycle - lost_s)
    if y_total <= 0:
        share = usable / len(ratios) if ratios else 0.0
        return cycle, tuple(share for _ in ratios)
    return cycle, tuple(usable * y / y_total for y in ratios)


# ---------------------------------------------------------------- demand


@dataclass(frozen=True, slots=True)
class _Flow:
    edges: tuple[str, ...] | None  # an explicit route
    origin: str | None
    dest: str | None
    begin: float
    end: float
    vph: float


@dataclass(frozen=True, slots=True)
class Movement:
    """Demand through one signalised junction: incoming edge → outgoing edge, veh/h."""

    in_edge: str
    out_edge: str
    vph: float


def scenario_route_files(cfg: Path, sumo_args: Sequence[str] = ()) -> list[Path]:
    """The route files SUMO will load: ``-r/--route-files`` in ``sumo_args`` (what the bench
    passes after ``--``) win over the ``.sumocfg``'s, resolved against it."""
    for i, a in enumerate(sumo_args):
        given = None
        if a in ("-r", "--route-files") and i + 1 < len(sumo_args):
            given = sumo_args[i + 1]
        elif a.startswith("--route-files="):
            given = a.split("=", 1)[1]
        if given is not None:
            return [Path(p.strip()).resolve() for p in given.split(",")]
    root = read_xml(cfg, "configuration")
    out: list[Path] = []
    for el in root.iter():
        if el.tag in ("route-files", "r") and el.get("value"):
            out += [(cfg.parent / p.strip()).resolve() for p in str(el.get("value")).split(",")]
    return out


_EXP = re.compile(r"exp\(\s*([0-9.eE+-]+)\s*\)")


def _rate_vph(el: ET.Element) -> float:
    begin = float(el.get("begin", "0"))
    end = float(el.get("end", "3600"))
    period = el.get("period")
    if period is not None:
        m = _EXP.fullmatch(period.strip())
        if m is not None:
            return float(m.group(1)) * 3600.0
        return 3600.0 / float(period) if float(period) > 0 else 0.0
    if el.get("vehsPerHour") is not None:
        return float(el.get("vehsPerHour", "0"))
    if el.get("probability") is not None:
        return float(el.get("probability", "0")) * 3600.0  # per 1 s step
    if el.get("number") is not None and end > begin:
        return float(el.get("number", "0")) * 3600.0 / (end - begin)
    return 0.0


def read_flows(route_files: Iterable[Path]) -> list[_Flow]:
    """The demand of the route files as flows: every ``<flow>``, and the single ``<vehicle>``
    and ``<trip>`` elements (``randomTrips.py``, a recorded day) counted per route in
    :data:`COUNT_INTERVAL_S` intervals of their departure, as a traffic engineer's counts
    are. A route is an explicit ``<route edges>`` inside the element, a ``route="id"`` of a
    ``<route>`` defined in the file, or ``from`` / ``to`` edges (routed on the shortest
    path). Vehicles of a ``<routeDistribution>`` and non-numeric departures are not
    counted."""
    flows: list[_Flow] = []
    counts: dict[tuple[tuple[str, ...] | None, str | None, str | None, int], int] = {}
    for path in route_files:
        root = read_xml(path, "route file")
        named = {
            r.get("id", ""): tuple(r.get("edges", "").split())
            for r in root.findall("route")
            if r.get("id")
        }
        for el in root.iter("flow"):
            try:
                begin, end = float(el.get("begin", "0")), float(el.get("end", "3600"))
                vph = _rate_vph(el)
            except ValueError as exc:  # SUMO refuses such a flow too
                raise BenchError(f"{path}: flow {el.get('id', '?')!r}: {exc}") from None
            if not all(math.isfinite(x) for x in (begin, end, vph)):
                raise BenchError(
                    f"{path}: flow {el.get('id', '?')!r}: a time or rate is not finite"
                )
            flows.append(
                _Flow(
                    edges=_edges_of(el, named),
                    origin=el.get("from"),
                    dest=el.get("to"),
                    begin=begin,
                    end=end,
                    vph=vph,
                )
            )
        for el in [*root.iter("vehicle"), *root.iter("trip")]:
            try:
                depart = float(el.get("depart", ""))
            except ValueError:
                continue  # "triggered", "containerTriggered", "now" ...: no time to count at
            if not math.isfinite(depart) or depart < 0.0:
                continue  # "nan", "inf", a negative time: SUMO refuses them too
            edges = _edges_of(el, named)
            if edges is None and (el.get("from") is None or el.get("to") is None):
                continue
            key = (edges, el.get("from"), el.get("to"), int(depart // COUNT_INTERVAL_S))
            counts[key] = counts.get(key, 0) + 1
    per_hour = 3600.0 / COUNT_INTERVAL_S
    for (edges, origin, dest, k), n in counts.items():  # in the files' order
        begin = k * COUNT_INTERVAL_S
        flows.append(_Flow(edges, origin, dest, begin, begin + COUNT_INTERVAL_S, n * per_hour))
    return flows


def _edges_of(el: ET.Element, named: Mapping[str, tuple[str, ...]]) -> tuple[str, ...] | None:
    """The explicit route of a flow / vehicle: nested ``<route edges>`` or ``route="id"``."""
    route = el.find("route")
    if route is not None:
        return tuple(route.get("edges", "").split()) or None
    ref = el.get("route")
    if ref is not None and ref in named:
        return named[ref] or None
    return None


def _route(net: Any, f: _Flow, cache: dict[tuple[str, str], tuple[str, ...]]) -> tuple[str, ...]:
    if f.edges is not None:
        return f.edges
    if f.origin is None or f.dest is None:
        return ()
    key = (f.origin, f.dest)
    if key not in cache:
        path, _cost = net.getShortestPath(net.getEdge(f.origin), net.getEdge(f.dest))
        cache[key] = tuple(e.getID() for e in path) if path else ()
    return cache[key]


def junction_demand(
    net: Any, flows: Sequence[_Flow], tls_ids: Iterable[str]
) -> dict[str, list[tuple[float, float, list[Movement]]]]:
    """Per tls: ``(begin, end, movements)`` for every interval between flow boundaries."""
    wanted = set(tls_ids)
    node_tls: dict[str, str] = {}
    for tls in net.getTrafficLights():
        if tls.getID() in wanted:
            for edge in tls.getEdges():
                node_tls[edge.getToNode().getID()] = tls.getID()
    cache: dict[tuple[str, str], tuple[str, ...]] = {}
    routed = [(f, _route(net, f, cache)) for f in flows if f.vph > 0]
    cuts = sorted({t for f, _ in routed for t in (f.begin, f.end)})
    out: dict[str, list[tuple[float, float, list[Movement]]]] = {k: [] for k in wanted}
    for t0, t1 in itertools.pairwise(cuts):
        per: dict[str, dict[tuple[str, str], float]] = {k: {} for k in wanted}
        for f, edges in routed:
            if not (f.begin <= t0 and f.end >= t1):
                continue
            for a, b in itertools.pairwise(edges):
                tls = node_tls.get(net.getEdge(a).getToNode().getID())
                if tls is None:
                    continue
                per[tls][(a, b)] = per[tls].get((a, b), 0.0) + f.vph
        for tls, moves in per.items():
            out[tls].append((t0, t1, [Movement(a, b, q) for (a, b), q in sorted(moves.items())]))
    return out


def _lane_flows(net: Any, movements: Sequence[Movement]) -> dict[tuple[str, str], float]:
    """``(in lane, out edge)`` → veh/h: each movement onto its lanes, least-loaded first."""
    load: dict[str, float] = {}
    out: dict[tuple[str, str], float] = {}
    options: list[tuple[Movement, list[str]]] = []
    for mv in movements:
        conns = net.getEdge(mv.in_edge).getConnections(net.getEdge(mv.out_edge))
        lanes = sorted({c.getFromLane().getID() for c in conns})
        if lanes:
            options.append((mv, lanes))
    # movements with fewer lane choices first, then water-fill each in small parcels
    for mv, lanes in sorted(options, key=lambda o: (len(o[1]), o[0].in_edge, o[0].out_edge)):
        parcels = max(1, math.ceil(mv.vph / 5.0))
        q = mv.vph / parcels
        for _ in range(parcels):
            lane = min(lanes, key=lambda ln: (load.get(ln, 0.0), ln))
            load[lane] = load.get(lane, 0.0) + q
            out[(lane, mv.out_edge)] = out.get((lane, mv.out_edge), 0.0) + q
    return out


# ---------------------------------------------------------------- timing a junction


@dataclass(frozen=True, slots=True)
class WebsterTiming:
    """Webster's timing of one junction's stages at its peak interval."""

    tls_id: str
    peak: tuple[float, float]  # the demand interval (s) it is timed for
    ratios: tuple[float, ...]  # critical flow ratio y per stage (stage order)
    lost_s: tuple[float, ...]  # lost time per stage
    cycle_s: float  # Webster's cycle (clamped)
    greens_s: tuple[float, ...]  # displayed greens per stage (≥ min green)
    max_greens_s: tuple[float, ...]  # the actuated / delay_based programs' max green per stage

    @property
    def y_total(self) -> float:
        return sum(self.ratios)


def _turn_equivalent(direction: str, *, permissive: bool) -> float:
    """Through-car equivalents of a turning vehicle (HCM saturation flow adjustments)."""
    if direction in ("l", "L", "t"):
        return PERMISSIVE_LEFT_PCE if permissive else 1.0 / LEFT_TURN_FACTOR
    if direction in ("r", "R"):
        return 1.0 / RIGHT_TURN_FACTOR
    return 1.0


def _stage_lost(stages: Sequence[Stage]) -> list[float]:
    n = len(stages)
    out = []
    for k, st in enumerate(stages):
        ending = st.groups - stages[(k + 1) % n].groups
        clearance = st.yellow + st.red_clear
        out.append(max(0.0, STARTUP_LOST_S + clearance - END_GAIN_S) if ending else 0.0)
    return out


def _stage_ratios(
    net: Any, model: JunctionModel, movements: Sequence[Movement]
) -> tuple[float, ...]:
    lane_q = _lane_flows(net, movements)
    group_q: dict[int, float] = {}
    for g in model.groups:
        out_edge = net.getLane(g.out_lane).getEdge().getID()
        group_q[g.index] = lane_q.get((g.in_lane, out_edge), 0.0)
    served = {g.index: sum(1 for st in model.stages if g.index in st.groups) for g in model.groups}
    ratios = []
    for st in model.stages:
        per_lane: dict[str, float] = {}
        for i in st.groups:
            g = model.groups[i]
            pce = _turn_equivalent(g.direction, permissive=i in st.permissive)
            q = group_q[i] * pce / max(1, served[i])
            per_lane[g.in_lane] = per_lane.get(g.in_lane, 0.0) + q
        ratios.append(max(per_lane.values(), default=0.0) / SATURATION_VPH)
    return tuple(ratios)


def webster_timing(
    net: Any, model: JunctionModel, demand: Sequence[tuple[float, float, list[Movement]]]
) -> WebsterTiming:
    """Time ``model``'s stages for the interval of ``demand`` with the largest ``Y``."""
    stages = model.stages
    lost = _stage_lost(stages)
    best: tuple[float, float, tuple[float, ...]] = (0.0, 0.0, tuple(0.0 for _ in stages))
    for t0, t1, moves in demand:
        ratios = _stage_ratios(net, model, moves)
        if sum(ratios) > sum(best[2]):
            best = (t0, t1, ratios)
    t0, t1, ratios = best
    cycle, effective = webster(ratios, sum(lost))
    greens = []
    for st, g, lost_k in zip(stages, effective, lost, strict=True):
        shown = g + (STARTUP_LOST_S - END_GAIN_S if lost_k > 0 else 0.0)
        greens.append(float(max(st.min_green, round(shown))))
    max_greens = tuple(
        float(max(st.min_green + 5.0, round(ACTUATED_MAX_FACTOR * g)))
        for st, g in zip(stages, greens, strict=True)
    )
    return WebsterTiming(
        tls_id=model.tls_id,
        peak=(t0, t1),
        ratios=ratios,
        lost_s=tuple(lost),
        cycle_s=cycle,
        greens_s=tuple(greens),
        max_greens_s=max_greens,
    )


def timed_models(
    cfg: Path,
    net_path: Path,
    models: Mapping[str, JunctionModel],
    *,
    sumo_args: Sequence[str] = (),
    route_files: Sequence[Path] | None = None,
) -> tuple[dict[str, JunctionModel], dict[str, WebsterTiming]]:
    """The models with every stage's green (and max green) timed by Webster for the scenario's
    peak demand (``route_files``, by default those of :func:`scenario_route_files`); the
    timings. Min greens and clearances are kept. A :class:`BenchError` when the files hold
    no demand: peers timed for nobody would be the demand-blind defaults in disguise."""
    import sumolib

    net = sumolib.net.readNet(str(net_path))
    files = list(route_files) if route_files is not None else scenario_route_files(cfg, sumo_args)
    flows = read_flows(files)
    if not any(f.vph > 0 for f in flows):
        names = ", ".join(str(p) for p in files) or "none"
        raise BenchError(
            f"no demand to time SUMO's programs by (route files: {names}): no <flow>,"
            " <vehicle> or <trip> with a route; use peer timing 'default'"
        )
    demand = junction_demand(net, flows, models)
    out: dict[str, JunctionModel] = {}
    timings: dict[str, WebsterTiming] = {}
    for tls_id, model in models.items():
        timing = webster_timing(net, model, demand.get(tls_id, []))
        stages = tuple(
            dataclasses.replace(st, green_s=g, max_green=mx)
            for st, g, mx in zip(model.stages, timing.greens_s, timing.max_greens_s, strict=True)
        )
        out[tls_id] = dataclasses.replace(model, stages=stages)
        timings[tls_id] = timing
    return out, timings


# ---------------------------------------------------------------- plain SUMO programs


def _program_xml(model: JunctionModel, kind: str) -> list[str]:
    m = model
    lines = [f'    <tlLogic id="{m.tls_id}" type="{kind}" programID="webster-{kind}" offset="0">']
    n = len(m.stages)
    for k, st in enumerate(m.stages):
        nxt = m.stages[(k + 1) % n]
        keep = st.groups & nxt.groups
        ending = st.groups - keep
        green = m.state_for(st.groups, permissive=st.permissive)
        extra = f' minDur="{st.min_green:g}" maxDur="{st.max_green:g}"' if kind != "static" else ""
        lines.append(f'        <phase duration="{st.green_s:g}" state="{green}"{extra}/>')
        if ending:
            held = st.permissive & keep
            yellow = m.state_for(keep, ending, held)
            lines.append(f'        <phase duration="{st.yellow:g}" state="{yellow}"/>')
            if st.red_clear > 0:
                red = m.state_for(keep, (), held)
                lines.append(f'        <phase duration="{st.red_clear:g}" state="{red}"/>')
    lines.append("    </tlLogic>")
    return lines


def write_programs(models: Mapping[str, JunctionModel], out: Path) -> Path:
    """The three Webster programs of every junction (static, actuated, delay_based) as one
    SUMO additional file."""
    lines = ["<additional>"]
    for model in models.values():
        for kind in PROGRAM_KINDS:
            lines += _program_xml(model, kind)
    lines.append("</additional>")
    out.write_text("\n".join(lines) + "\n")
    return out


def _step_length(cfg: Path) -> float:
    root = read_xml(cfg, "configuration")
    for el in root.iter("step-length"):
        return float(el.get("value", "1"))
    return 1.0  # SUMO's default


def main(argv: list[str] | None = None) -> int:
    from edgectl.sumo.network import derive_network, on_steps
    from edgectl.sumo.runner import scenario_net

    parser = argparse.ArgumentParser(description="Webster timing of a SUMO scenario's signals")
    parser.add_argument("scenario", type=Path, metavar="SCENARIO.sumocfg")
    parser.add_argument("--out", type=Path, default=None, help="write the tlLogic programs here")
    args = parser.parse_args(argv)
    cfg = args.scenario.resolve()
    net_path = scenario_net(cfg, [])
    step_s = _step_length(cfg)  # clearances as drivers see them, as in the bench
    derived = {k: on_steps(m, step_s) for k, m in derive_network(str(net_path)).items()}
    models, timings = timed_models(cfg, net_path, derived)
    for tls_id, t in timings.items():
        greens = ", ".join(f"{g:g}" for g in t.greens_s)
        mins = ", ".join(f"{st.min_green:g}" for st in models[tls_id].stages)
        maxes = ", ".join(f"{g:g}" for g in t.max_greens_s)
        ys = ", ".join(f"{y:.3f}" for y in t.ratios)
        print(
            f"{tls_id}: peak {t.peak[0]:g}-{t.peak[1]:g} s, y [{ys}] Y {t.y_total:.3f},"
            f" L {sum(t.lost_s):.1f} s, cycle {t.cycle_s:.1f} s, greens [{greens}] s,"
            f" actuated / delay_based min [{mins}] s, max [{maxes}] s"
        )
    if args.out is not None:
        print(write_programs(models, args.out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
