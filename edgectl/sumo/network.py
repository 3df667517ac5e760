"""Derive each signalised junction's control model from a SUMO network.

For every traffic-light system (tls) of the network:

- **signal groups** are the tls link indices (one per controlled connection); each becomes a
  load-switch channel;
- **conflicts** come from SUMO's own junction logic: two groups conflict when their
  connections are foes in the junction's ``<request>`` table;
- **stages** (the phases of the generated configuration) are taken from the tls's default
  program — every green state minus its permissive movements (a ``g`` that is a foe of a
  ``G``) — or, when the network has no program, by clustering compatible groups; a group
  green in several stages becomes an overlap channel;
- **detectors**: every E1 loop on an incoming lane is assigned to the stages that serve that
  lane; a loop within 15 m of the stop line is a stop-bar presence loop, one further upstream
  an advance loop;
- **clearances** by the ITE formulas from the approach lane speeds and the crossing distance,
  clamped to the kernel bounds (yellow 3–6 s, red clearance 0–6 s); the bench then rounds
  them up to whole simulation steps (:func:`on_steps`), as SUMO shows a state for whole steps.

The result (:class:`JunctionModel`) turns into an :class:`edgectl.config.model.Config` with
one ring of stages and a barrier after each stage, so the daemon's own engine and safety
kernel run it unchanged. Nothing here imports libsumo; ``sumolib`` reads the net file.
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from edgectl.config.limits import ite_red_clear, ite_yellow
from edgectl.config.model import (
    Barrier,
    Channel,
    ChannelSource,
    Config,
    Control,
    Coordination,
    Detector,
    DetectorType,
    Intersection,
    Mode,
    Phase,
    PhaseTiming,
    Plan,
    Recall,
    Ring,
)

# NEMA protected lefts and the opposing through each turns across
OPPOSING = {1: 2, 5: 6, 3: 4, 7: 8}
STOP_BAR_ZONE_M = 15.0  # a loop closer than this to the stop line is a stop-bar loop
YELLOW_BOUNDS = (3.0, 6.0)
RED_CLEAR_BOUNDS = (0.0, 6.0)
MAX_STAGES = 16
MAX_CHANNELS = 32
MAX_DETECTORS = 64


def _clamp(x: float, bounds: tuple[float, float]) -> float:
    return min(max(x, bounds[0]), bounds[1])


def _round_up(x: float, step_s: float = 0.1) -> float:
    """Up to the next multiple of ``step_s`` (default the 0.1 s tick), as a clean decimal."""
    return round(math.ceil(round(x / step_s, 6)) * step_s, 6)


@dataclass(frozen=True, slots=True)
class SignalGroup:
    """One controlled connection (tls link index)."""

    index: int
    in_lane: str
    out_lane: str
    direction: str  # SUMO: s straight, l/L left, r/R right, t turnaround
    speed_kmh: float  # approach lane speed
    crossing_m: float  # stop line to far-side clearance point


@dataclass(frozen=True, slots=True)
class Loop:
    """An E1 induction loop on an incoming lane of the junction."""

    id: str  # SUMO detector id
    lane: str
    distance_m: float  # upstream of the stop line
    detector_id: int  # detector number in the generated config
    stages: tuple[int, ...]  # stage numbers (1-based) it calls

    @property
    def advance(self) -> bool:
        return self.distance_m > STOP_BAR_ZONE_M


@dataclass(frozen=True, slots=True)
class Stage:
    """A set of mutually compatible signal groups green together (a phase of the config)."""

    number: int  # 1-based; the NEMA phase number in the generated config
    groups: frozenset[int]
    green_s: float  # green of the default program (splits of fixed / sumo:static)
    min_green: float
    max_green: float
    yellow: float
    red_clear: float
    left_only: bool
    permissive: frozenset[int] = frozenset()  # groups green here only if they yield ('g')


@dataclass(frozen=True, slots=True)
class DualRing:
    """The NEMA eight-phase layout of a four-arm junction, when SUMO's conflicts allow one.

    Phase numbers follow NEMA: 2 / 6 the through (and right) movements of the two opposite
    main approaches, 5 / 1 their protected lefts (5 turns across 6's traffic, 1 across 2's);
    4 / 8 and 7 / 3 the same for the cross street. Ring 1 is 1-2-3-4, ring 2 is 5-6-7-8, with a
    barrier between the main street (1, 2, 5, 6) and the cross street. A missing left (no
    dedicated left movement) drops that phase.
    """

    phases: Mapping[int, frozenset[int]]  # NEMA phase → signal groups
    stage_of: Mapping[int, int]  # NEMA phase → the stage its groups come from (timing)

    @property
    def rings(self) -> tuple[tuple[int, ...], tuple[int, ...]]:
        return (
            tuple(p for p in (1, 2, 3, 4) if p in self.phases),
            tuple(p for p in (5, 6, 7, 8) if p in self.phases),
        )

    @property
    def barriers(self) -> tuple[tuple[int, ...], tuple[int, ...]]:
        return (
            tuple(p for p in (1, 2, 5, 6) if p in self.phases),
            tuple(p for p in (3, 4, 7, 8) if p in self.phases),
        )


@dataclass(frozen=True)
class JunctionModel:
    """Everything the bench knows about one signalised junction."""

    tls_id: str
    groups: tuple[SignalGroup, ...]
    conflicts: frozenset[tuple[int, int]]  # ordered pairs (a, b) and (b, a)
    stages: tuple[Stage, ...]
    loops: tuple[Loop, ...]
    neighbours_up: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    # upstream tls id → incoming lanes of this junction fed from it
    dual_ring: DualRing | None = None  # the NEMA layout, when the junction allows one

    @property
    def n_links(self) -> int:
        return len(self.groups)

    def group_stages(self, index: int) -> tuple[int, ...]:
        return tuple(s.number for s in self.stages if index in s.groups)

    def lane_stages(self, lane: str) -> tuple[int, ...]:
        return _lane_stages(lane, self.groups, self.stages)

    def state_for(
        self, green: Iterable[int], yellow: Iterable[int] = (), permissive: Iterable[int] = ()
    ) -> str:
        """The tls state string with these groups green (``permissive`` ones yielding, ``g``)
        and these yellow."""
        chars = ["r"] * self.n_links
        for i in yellow:
            chars[i] = "y"
        for i in green:
            chars[i] = "G"
        for i in permissive:
            if chars[i] == "G":
                chars[i] = "g"
        return "".join(chars)

    def yielding(self, green_phases: Iterable[int], *, dual_ring: bool = True) -> frozenset[int]:
        """Groups green under ``green_phases`` only permissively (none on a dual ring)."""
        if dual_ring and self.dual_ring is not None:
            return frozenset()
        stage = {st.number: st for st in self.stages}
        perm: set[int] = set()
        prot: set[int] = set()
        for p in green_phases:
            st = stage.get(p)
            if st is not None:
                perm |= st.permissive
                prot |= st.groups - st.permissive
        return frozenset(perm - prot)

    def arrows(self, *, dual_ring: bool = True) -> dict[int, int]:
        """Signal group → the phase it yields to under a flashing yellow arrow: on the dual
        ring, a protected left that SUMO's own program lets turn permissively (``g``) too
        becomes protected / permissive, yielding to the opposing through (1 to 2, 5 to 6,
        3 to 4, 7 to 8). The single ring shows permissive movements as SUMO does (``g``)."""
        dr = self.dual_ring if dual_ring else None
        if dr is None:
            return {}
        permissive = frozenset().union(*(st.permissive for st in self.stages))
        out: dict[int, int] = {}
        for left, opposing in OPPOSING.items():
            if left not in dr.phases or opposing not in dr.phases:
                continue
            if any(
                i in gs for p, gs in dr.phases.items() if p != opposing for i in dr.phases[opposing]
            ):
                continue  # an overlap carries the opposing green from elsewhere: no arrow
            for i in dr.phases[left] - dr.phases[opposing]:
                if i in permissive and not any(i in gs for p, gs in dr.phases.items() if p != left):
                    out[i] = opposing
        return out

    def cycle_s(self) -> float:
        return sum(s.green_s + s.yellow + s.red_clear for s in self.stages)

    def phase_groups(self, *, dual_ring: bool = True) -> dict[int, frozenset[int]]:
        """Phase number → signal groups of the configuration :meth:`to_config` builds."""
        if dual_ring and self.dual_ring is not None:
            return dict(self.dual_ring.phases)
        return {s.number: s.groups for s in self.stages}

    def lane_phases(self, lane: str, *, dual_ring: bool = True) -> tuple[int, ...]:
        """The phases of :meth:`to_config` that serve ``lane`` (what its loops call)."""
        if dual_ring and self.dual_ring is not None:
            links = {g.index for g in self.groups if g.in_lane == lane}
            phases = self.dual_ring.phases
            full = tuple(p for p in sorted(phases) if links and links <= phases[p])
            return full or tuple(p for p in sorted(phases) if links & phases[p])
        return self.lane_stages(lane)

    def to_config(self, mode: Mode, *, dual_ring: bool = True) -> Config:
        """The junction as an edgectl configuration running ``mode``: the NEMA dual ring when
        the junction has one (and ``dual_ring``), else one ring of the stages."""
        dr = self.dual_ring if dual_ring else None
        stage = {s.number: s for s in self.stages}
        groups_of = self.phase_groups(dual_ring=dual_ring)
        # timing of a dual-ring phase: that of the stage its groups come from, so concurrent
        # phases (1 with 5, 2 with 6 …) share clearances and the rings' splits add up
        timing_stage = {p: stage[dr.stage_of[p] if dr else p] for p in groups_of}
        phases = []
        for p, gs in sorted(groups_of.items()):
            lanes = sorted({self.groups[i].in_lane for i in gs})
            speed = max(self.groups[i].speed_kmh for i in gs)
            width = max(self.groups[i].crossing_m for i in gs)
            main = p in (2, 6) if dr else p == 1
            phases.append(
                Phase(
                    id=p,
                    name=f"phase {p}: " + " ".join(lanes)[:80],
                    startup=main,
                    main_street=main,
                    approach_speed_kmh=min(130.0, max(5.0, speed)),
                    intersection_width_m=min(150.0, width),
                )
            )
        arrows = self.arrows(dual_ring=dual_ring)
        channels = []
        for g in self.groups:
            parents = tuple(p for p, gs in sorted(groups_of.items()) if g.index in gs)
            if len(parents) == 1:
                channels.append(
                    Channel(
                        id=g.index + 1,
                        phase=parents[0],
                        permissive=arrows.get(g.index),
                        name=f"{g.in_lane}>{g.out_lane}",
                    )
                )
            else:
                channels.append(
                    Channel(
                        id=g.index + 1,
                        source=ChannelSource.OVERLAP,
                        phase=parents[0],
                        overlap_parents=parents,
                        name=f"{g.in_lane}>{g.out_lane}",
                    )
                )
        detectors = [
            Detector(
                id=loop.detector_id,
                type=DetectorType.ADVANCE if loop.advance else DetectorType.STOP_BAR,
                call_phases=self.lane_phases(loop.lane, dual_ring=dual_ring),
                distance_m=min(300.0, loop.distance_m),
            )
            for loop in self.loops
            if self.lane_phases(loop.lane, dual_ring=dual_ring)
        ]
        timing = {}
        splits = {}
        for p, st in sorted(timing_stage.items()):
            timing[p] = PhaseTiming(
                min_green=st.min_green,
                passage=2.5 if not st.left_only else 2.0,
                max1=st.max_green,
                max2=min(255.0, st.max_green * 1.5),
                yellow=st.yellow,
                red_clear=st.red_clear,
                recall=Recall.NONE,
            )
            splits[p] = round(st.green_s + st.yellow + st.red_clear, 1)
        for left in {p for p, gs in groups_of.items() if any(i in arrows for i in gs)}:
            # an arrow ends with its opposing phase: that phase clears for both movements
            opposing = OPPOSING[left]
            own, opp = timing[left], timing[opposing]
            timing[opposing] = opp.model_copy(
                update={
                    "yellow": max(own.yellow, opp.yellow),
                    "red_clear": max(own.red_clear, opp.red_clear),
                }
            )
        if dr is not None:
            rings = tuple(
                Ring(id=k, sequence=seq) for k, seq in enumerate(dr.rings, start=1) if seq
            )
            barriers = tuple(Barrier(phases=b) for b in dr.barriers if b)
            cycle = max(sum(splits[p] for p in seq) for seq in dr.rings if seq)
            coord_phases: tuple[int, ...] = tuple(p for p in (2, 6) if p in groups_of)
        else:
            numbers = tuple(sorted(groups_of))
            rings = (Ring(id=1, sequence=numbers),)
            barriers = tuple(Barrier(phases=(n,)) for n in numbers)
            cycle = sum(splits.values())
            coord_phases = (1,)
        plan = Plan(
            id=1,
            name="derived from SUMO",
            timing=timing,
            coordination=Coordination(
                cycle=round(cycle, 1),
                offset=0.0,
                coord_phases=coord_phases,
                splits=splits,
            ),
        )
        return Config(
            intersection=Intersection(id=_safe_id(self.tls_id), name=f"SUMO tls {self.tls_id}"),
            phases=tuple(phases),
            rings=rings,
            barriers=barriers,
            channels=tuple(channels),
            detectors=tuple(detectors),
            plans=(plan,),
            control=Control(mode=mode, plan=1, startup_flash=0.0, startup_all_red=2.0),
        )


def _safe_id(tls_id: str) -> str:
    s = re.sub(r"[^A-Za-z0-9_.-]", "_", tls_id)[:64]
    return s if s[:1].isalnum() else f"j{s}"[:64]


def _lane_stages(
    lane: str, groups: Sequence[SignalGroup], stages: Sequence[Stage]
) -> tuple[int, ...]:
    links = {g.index for g in groups if g.in_lane == lane}
    if not links:
        return ()
    full = tuple(s.number for s in stages if links <= s.groups)
    if full:
        return full
    return tuple(s.number for s in stages if links & s.groups)


# --------------------------------------------------------------------------- derivation


def derive_stages_from_states(
    states: Sequence[str],
    n_links: int,
    conflicts: frozenset[tuple[int, int]],
    *,
    permissive_lefts: bool = False,
) -> list[tuple[frozenset[int], frozenset[int]]]:
    """Stages from a tls program's green states: ``(groups, permissive)`` per stage.

    A ``G`` is a protected movement. A ``g`` that conflicts with nothing kept is protected
    too. One that conflicts is dropped when the program protects it in another phase (a
    left with its own lane and its own phase); otherwise (a left sharing its lane with the
    through and the right) it stays in the stage as a *permissive* movement, green but
    yielding, exactly as SUMO's own program runs it: a stage of its own would block the shared
    lane behind every waiting left-turner. With ``permissive_lefts`` a ``g`` protected in
    another phase stays permissive here too (protected / permissive, as netconvert's program
    runs it; the dual ring shows it as a flashing yellow arrow).
    """
    stages: list[tuple[frozenset[int], frozenset[int]]] = []
    protected_somewhere = {i for state in states for i, c in enumerate(state[:n_links]) if c == "G"}
    for state in states:
        prot = [i for i, c in enumerate(state[:n_links]) if c == "G"]
        perm = [i for i, c in enumerate(state[:n_links]) if c == "g"]
        kept: list[int] = []
        yielding: list[int] = []
        for i in prot + perm:
            if all((i, k) not in conflicts for k in kept):
                kept.append(i)
            elif i in perm and (permissive_lefts or i not in protected_somewhere):
                yielding.append(i)
        if kept:
            stages.append((frozenset(kept + yielding), frozenset(yielding)))
    unique: list[tuple[frozenset[int], frozenset[int]]] = []
    for st in stages:
        if st not in unique:
            unique.append(st)
    # a stage protecting a subset of what another protects is not needed
    unique = [st for st in unique if not any(st[0] - st[1] < o[0] - o[1] for o in unique)]
    covered = frozenset().union(*(g for g, _ in unique)) if unique else frozenset()
    missing = [i for i in range(n_links) if i not in covered]
    extra = [(g, frozenset[int]()) for g in cluster_compatible(missing, conflicts)]
    return unique + extra


def cluster_compatible(
    links: Sequence[int], conflicts: frozenset[tuple[int, int]]
) -> list[frozenset[int]]:
    """Greedy clustering of signal groups into conflict-free stages."""
    stages: list[set[int]] = []
    for i in links:
        for s in stages:
            if all((i, k) not in conflicts for k in s):
                s.add(i)
                break
        else:
            stages.append({i})
    return [frozenset(s) for s in stages]


def derive_network(net_path: str, *, permissive_lefts: bool = False) -> dict[str, JunctionModel]:
    """Read a net file (and its loops later, see :func:`attach_loops`) into junction models.

    ``permissive_lefts``: keep the permissive (``g``) turns of lefts the program also protects
    (see :func:`derive_stages_from_states`); by default they are protected only."""
    import sumolib

    net = sumolib.net.readNet(net_path, withPrograms=True, withFoes=True)
    models: dict[str, JunctionModel] = {}
    for tls in net.getTrafficLights():
        models[tls.getID()] = _derive_tls(net, tls, permissive_lefts=permissive_lefts)
    _link_neighbours(net, models)
    return models


def _derive_tls(net: Any, tls: Any, *, permissive_lefts: bool = False) -> JunctionModel:
    tls_id = tls.getID()
    by_index: dict[int, Any] = {}
    for in_lane, out_lane, index in tls.getConnections():
        by_index.setdefault(index, (in_lane, out_lane))
    n_links = max(by_index) + 1 if by_index else 0
    if n_links > MAX_CHANNELS:
        raise ValueError(f"tls {tls_id}: {n_links} signal groups, at most {MAX_CHANNELS}")
    # connection objects per tls index, for foes and direction
    conns: dict[int, list[Any]] = {i: [] for i in range(n_links)}
    for edge in tls.getEdges():
        for lane in edge.getLanes():
            for conn in lane.getOutgoing():
                if conn.getTLSID() == tls_id and conn.getTLLinkIndex() >= 0:
                    conns[conn.getTLLinkIndex()].append(conn)
    conflicts: set[tuple[int, int]] = set()
    for a in range(n_links):
        for b in range(n_links):
            if a == b:
                continue
            for ca in conns[a]:
                for cb in conns[b]:
                    if ca.getFrom().getToNode() is not cb.getFrom().getToNode():
                        continue
                    node = ca.getFrom().getToNode()
                    ia, ib = node.getLinkIndex(ca), node.getLinkIndex(cb)
                    if ia < 0 or ib < 0:
                        continue
                    if node.areFoes(ia, ib) or node.areFoes(ib, ia):
                        conflicts.add((a, b))
                        conflicts.add((b, a))
    frozen_conflicts = frozenset(conflicts)
    groups = []
    for i in range(n_links):
        in_lane, out_lane = by_index.get(i, (None, None))
        if in_lane is None:
            raise ValueError(f"tls {tls_id}: link index {i} controls no connection")
        direction = conns[i][0].getDirection() if conns[i] else "s"
        stop = in_lane.getShape()[-1]
        far = out_lane.getShape()[0]
        groups.append(
            SignalGroup(
                index=i,
                in_lane=in_lane.getID(),
                out_lane=out_lane.getID(),
                direction=direction,
                speed_kmh=in_lane.getSpeed() * 3.6,
                crossing_m=math.dist(stop[:2], far[:2]),
            )
        )
    programs = tls.getPrograms()
    states: list[str] = []
    greens: list[float] = []
    if programs:
        program = programs[sorted(programs)[0]]
        for ph in program.getPhases():
            if "G" in ph.state or "g" in ph.state:
                states.append(ph.state)
                greens.append(float(ph.duration))
    stage_sets = (
        derive_stages_from_states(
            states, n_links, frozen_conflicts, permissive_lefts=permissive_lefts
        )
        if states
        else [(g, frozenset[int]()) for g in cluster_compatible(range(n_links), frozen_conflicts)]
    )
    if len(stage_sets) > MAX_STAGES:
        raise ValueError(f"tls {tls_id}: {len(stage_sets)} stages, at most {MAX_STAGES}")
    stages = []
    for k, (s, yielding) in enumerate(stage_sets, start=1):
        # default-program green of the program phase this stage came from (best overlap)
        green = 20.0
        best = -1
        for st, dur in zip(states, greens, strict=True):
            ov = sum(1 for i in s if st[i] == "G")
            if ov > best:
                best, green = ov, dur
        left_only = all(groups[i].direction in ("l", "L", "t") for i in s)
        speed = max(groups[i].speed_kmh for i in s)
        width = max(groups[i].crossing_m for i in s)
        yellow = _round_up(_clamp(ite_yellow(speed), YELLOW_BOUNDS))
        red_clear = _round_up(_clamp(ite_red_clear(width, speed), RED_CLEAR_BOUNDS))
        min_green = 5.0 if left_only else 7.0
        max_green = 25.0 if left_only else 50.0
        stages.append(
            Stage(
                number=k,
                groups=s,
                green_s=max(min_green, green),
                min_green=min_green,
                max_green=max_green,
                yellow=yellow,
                red_clear=red_clear,
                left_only=left_only,
                permissive=yielding,
            )
        )
    headings: dict[str, float] = {}
    for in_lane, _out, _i in tls.getConnections():
        shape = in_lane.getShape()
        (x0, y0), (x1, y1) = shape[-2][:2], shape[-1][:2]
        headings[in_lane.getEdge().getID()] = math.atan2(y1 - y0, x1 - x0)
    edge_of = {g.index: net.getLane(g.in_lane).getEdge().getID() for g in groups}
    return JunctionModel(
        tls_id=tls_id,
        groups=tuple(groups),
        conflicts=frozen_conflicts,
        stages=tuple(stages),
        loops=(),
        dual_ring=derive_dual_ring(groups, frozen_conflicts, stages, edge_of, headings),
    )


def _opposite(a: float, b: float) -> bool:
    d = abs((a - b + math.pi) % (2 * math.pi) - math.pi)
    return d > math.pi - 0.6


def derive_dual_ring(
    groups: Sequence[SignalGroup],
    conflicts: frozenset[tuple[int, int]],
    stages: Sequence[Stage],
    edge_of: Mapping[int, str],
    headings: Mapping[str, float],
) -> DualRing | None:
    """The NEMA layout (see :class:`DualRing`) of a junction with two pairs of opposite
    approaches, or None when the junction has another shape or SUMO's conflicts forbid a
    concurrency the dual ring needs (then the bench runs the stages as one ring)."""
    edges = sorted({edge_of[g.index] for g in groups})
    if len(edges) != 4 or any(e not in headings for e in edges):
        return None
    first = edges[0]
    partner = [e for e in edges[1:] if _opposite(headings[first], headings[e])]
    if len(partner) != 1:
        return None
    pair_a: tuple[str, ...] = (first, partner[0])
    pair_b: tuple[str, ...] = tuple(e for e in edges if e not in pair_a)
    if not _opposite(headings[pair_b[0]], headings[pair_b[1]]):
        return None
    # the main street is the pair served by the first stage of SUMO's program
    main_edges = {edge_of[i] for i in stages[0].groups} if stages else set()
    if main_edges & set(pair_b) and not main_edges & set(pair_a):
        pair_a, pair_b = pair_b, pair_a
    lefts: dict[str, frozenset[int]] = {}
    throughs: dict[str, frozenset[int]] = {}
    for e in edges:
        mine = [g for g in groups if edge_of[g.index] == e]
        lefts[e] = frozenset(g.index for g in mine if g.direction in ("l", "L"))
        throughs[e] = frozenset(g.index for g in mine if g.direction not in ("l", "L"))
    for e in edges:
        left_lanes = {groups[i].in_lane for i in lefts[e]}
        through_lanes = {groups[i].in_lane for i in throughs[e]}
        if left_lanes & through_lanes:
            return None  # a left sharing its lane cannot have a protected phase of its own
    protected = frozenset().union(*(st.groups - st.permissive for st in stages))
    if any(
        i not in protected or i not in lefts[edge_of[i]] for st in stages for i in st.permissive
    ):
        # SUMO runs permissive movements here that no phase protects: keep its stages (a left
        # protected elsewhere too becomes a flashing yellow arrow, see JunctionModel.arrows)
        return None
    phases: dict[int, frozenset[int]] = {}
    for (a, b), (thr_a, thr_b, left_a, left_b) in (
        (pair_a, (2, 6, 5, 1)),
        (pair_b, (4, 8, 7, 3)),
    ):
        for number, gs in (
            (thr_a, throughs[a]),
            (thr_b, throughs[b]),
            (left_a, lefts[a]),
            (left_b, lefts[b]),
        ):
            if gs:
                phases[number] = gs
    if not all(p in phases for p in (2, 6, 4, 8)):
        return None

    def compatible(x: frozenset[int], y: frozenset[int]) -> bool:
        return not any((i, j) in conflicts for i in x for j in y if i != j)

    if not all(compatible(gs, gs) for gs in phases.values()):
        return None
    for r1, r2 in ((1, 5), (1, 6), (2, 5), (2, 6), (3, 7), (3, 8), (4, 7), (4, 8)):
        if r1 in phases and r2 in phases and not compatible(phases[r1], phases[r2]):
            return None
    stage_of: dict[int, int] = {}
    for p, gs in phases.items():
        best = max(stages, key=lambda st: (len(gs & (st.groups - st.permissive)), -st.number))
        if not gs & best.groups:
            return None
        stage_of[p] = best.number
    return DualRing(phases=phases, stage_of=stage_of)


def _link_neighbours(net: Any, models: dict[str, JunctionModel]) -> None:
    """Record, per junction, which incoming lanes come straight from an upstream tls."""
    for tls_id, model in list(models.items()):
        up: dict[str, list[str]] = {}
        for lane_id in sorted({g.in_lane for g in model.groups}):
            edge = net.getLane(lane_id).getEdge()
            src = edge.getFromNode()
            src_tls = src.getID() if src.getID() in models else None
            if src_tls is None:
                for other in models:
                    if src.getType() == "traffic_light" and other == src.getID():
                        src_tls = other
            if src_tls is not None and src_tls != tls_id:
                up.setdefault(src_tls, []).append(lane_id)
        object.__setattr__(model, "neighbours_up", {k: tuple(v) for k, v in up.items()})


def on_steps(model: JunctionModel, step_s: float) -> JunctionModel:
    """Yellow and red clearance rounded up to whole simulation steps.

    SUMO shows a signal state for whole steps: the bench hands it the controller's state at
    each step, so an interval of 3.3 s starting between two steps is seen by the drivers for
    3 or 4 steps depending on where it starts. Rounded up to a multiple of the step, every
    interval is seen for at least its configured length (SUMO's own programs already round
    a phase up to the next step), and never shorter than the kernel's minimum.
    """
    if step_s <= 0:
        return model
    stages = tuple(
        dataclasses.replace(
            st, yellow=_round_up(st.yellow, step_s), red_clear=_round_up(st.red_clear, step_s)
        )
        for st in model.stages
    )
    return dataclasses.replace(model, stages=stages)


def attach_loops(
    model: JunctionModel, loops: Iterable[tuple[str, str, float, float]]
) -> JunctionModel:
    """Assign E1 loops ``(id, lane, position, lane length)`` on the junction's incoming lanes."""
    in_lanes = {g.in_lane for g in model.groups}
    chosen = sorted(
        ((lid, lane, length - pos) for lid, lane, pos, length in loops if lane in in_lanes),
        key=lambda t: (t[1], t[2], t[0]),
    )
    result: list[Loop] = []
    for lid, lane, dist in chosen:
        stages = model.lane_stages(lane)
        if not stages or len(result) >= MAX_DETECTORS:
            continue
        result.append(
            Loop(id=lid, lane=lane, distance_m=dist, detector_id=len(result) + 1, stages=stages)
        )
    return dataclasses.replace(model, loops=tuple(result))
