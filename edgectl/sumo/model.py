"""The model of one signalised junction and the edgectl configuration it becomes.

:class:`JunctionModel` holds what :mod:`edgectl.sumo.network` derives from the net file
(signal groups, conflicts, stages, loops, the NEMA layout when there is one);
:meth:`JunctionModel.to_config` turns it into an :class:`edgectl.config.model.Config` with
the dual ring, or one ring of stages and a barrier after each stage, so the daemon's own
engine and safety kernel run it unchanged.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

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
from edgectl.control.strategies.maxpressure import (
    SAT_HEADWAY_S,
    STARTUP_LOST_S,
    VEHICLE_SPACING_M,
)

__all__ = [
    "OPPOSING",
    "STOP_BAR_ZONE_M",
    "DualRing",
    "JunctionModel",
    "Loop",
    "SignalGroup",
    "Stage",
]

# NEMA protected lefts and the opposing through each turns across
OPPOSING = {1: 2, 5: 6, 3: 4, 7: 8}
STOP_BAR_ZONE_M = 15.0  # a loop closer than this to the stop line is a stop-bar loop


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
        """The stages that serve ``lane`` (all its groups if any does, else some)."""
        return _serving(self._lane_links(lane), ((s.number, s.groups) for s in self.stages))

    def _lane_links(self, lane: str) -> frozenset[int]:
        return frozenset(g.index for g in self.groups if g.in_lane == lane)

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
            phases = self.dual_ring.phases
            return _serving(self._lane_links(lane), ((p, phases[p]) for p in sorted(phases)))
        return self.lane_stages(lane)

    def _queue_limit(self, loop: Loop, *, dual_ring: bool) -> float:
        """A stop-bar loop on a lane where a vehicle may stand waiting for a gap during a
        phase the loop extends (a movement that only yields there: a permissive left
        sharing the lane) extends only while the queue stored up to the lane's advance loop
        leaves (NTCIP queue limit: the start-up loss and a saturation headway per vehicle
        of that stretch); later the advance loop alone extends. Without it a left-turner
        standing on the bar holds the green to its maximum while the lane behind it stands
        (the engineer's setting for such a lane; 0: no limit)."""
        if loop.advance:
            return 0.0
        advance = [x.distance_m for x in self.loops if x.lane == loop.lane and x.advance]
        if not advance:
            return 0.0
        lane_groups = {g.index for g in self.groups if g.in_lane == loop.lane}
        phases = self.lane_phases(loop.lane, dual_ring=dual_ring)
        if not any(lane_groups & self.yielding([p], dual_ring=dual_ring) for p in phases):
            return 0.0
        stored = min(advance) / VEHICLE_SPACING_M
        return round(STARTUP_LOST_S + stored * SAT_HEADWAY_S, 1)

    def to_config(self, mode: Mode, *, dual_ring: bool = True) -> Config:
        """The junction as an edgectl configuration running ``mode``: the NEMA dual ring when
        the junction has one (and ``dual_ring``), else one ring of the stages."""
        dr = self.dual_ring if dual_ring else None
        groups_of = self.phase_groups(dual_ring=dual_ring)
        arrows = self.arrows(dual_ring=dual_ring)
        detectors = [
            Detector(
                id=loop.detector_id,
                type=DetectorType.ADVANCE if loop.advance else DetectorType.STOP_BAR,
                call_phases=self.lane_phases(loop.lane, dual_ring=dual_ring),
                distance_m=min(300.0, loop.distance_m),
                queue_limit=self._queue_limit(loop, dual_ring=dual_ring),
            )
            for loop in self.loops
            if self.lane_phases(loop.lane, dual_ring=dual_ring)
        ]
        timing, splits = _timing(self.stages, dr, groups_of, arrows)
        rings, barriers, coordination = _rings(dr, groups_of, splits)
        plan = Plan(id=1, name="derived from SUMO", timing=timing, coordination=coordination)
        return Config(
            intersection=Intersection(id=_safe_id(self.tls_id), name=f"SUMO tls {self.tls_id}"),
            phases=_phases(self.groups, groups_of, dr),
            rings=rings,
            barriers=barriers,
            channels=_channels(self.groups, groups_of, arrows),
            detectors=tuple(detectors),
            plans=(plan,),
            control=Control(mode=mode, plan=1, startup_flash=0.0, startup_all_red=2.0),
        )


def _serving(
    links: frozenset[int], candidates: Iterable[tuple[int, frozenset[int]]]
) -> tuple[int, ...]:
    """The numbers whose groups hold all of ``links``; failing that, those holding some."""
    pairs = list(candidates)
    full = tuple(n for n, gs in pairs if links and links <= gs)
    return full or tuple(n for n, gs in pairs if links & gs)


def _safe_id(tls_id: str) -> str:
    s = re.sub(r"[^A-Za-z0-9_.-]", "_", tls_id)[:64]
    return s if s[:1].isalnum() else f"j{s}"[:64]


def _phases(
    groups: Sequence[SignalGroup], groups_of: Mapping[int, frozenset[int]], dr: DualRing | None
) -> tuple[Phase, ...]:
    phases = []
    for p, gs in sorted(groups_of.items()):
        lanes = sorted({groups[i].in_lane for i in gs})
        speed = max(groups[i].speed_kmh for i in gs)
        width = max(groups[i].crossing_m for i in gs)
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
    return tuple(phases)


def _channels(
    groups: Sequence[SignalGroup],
    groups_of: Mapping[int, frozenset[int]],
    arrows: Mapping[int, int],
) -> tuple[Channel, ...]:
    """A channel per signal group; a group green in several phases is an overlap."""
    channels = []
    for g in groups:
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
    return tuple(channels)


def _timing(
    stages: Sequence[Stage],
    dr: DualRing | None,
    groups_of: Mapping[int, frozenset[int]],
    arrows: Mapping[int, int],
) -> tuple[dict[int, PhaseTiming], dict[int, float]]:
    """Each phase's timing and split."""
    stage = {s.number: s for s in stages}
    # timing of a dual-ring phase: that of the stage its groups come from, so concurrent
    # phases (1 with 5, 2 with 6 …) share clearances and the rings' splits add up
    timing_stage = {p: stage[dr.stage_of[p] if dr else p] for p in groups_of}
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
    return timing, splits


def _rings(
    dr: DualRing | None, groups_of: Mapping[int, frozenset[int]], splits: Mapping[int, float]
) -> tuple[tuple[Ring, ...], tuple[Barrier, ...], Coordination]:
    """Rings, barriers and coordination: the dual ring, or one ring of the stages."""
    if dr is not None:
        rings = tuple(Ring(id=k, sequence=seq) for k, seq in enumerate(dr.rings, start=1) if seq)
        barriers = tuple(Barrier(phases=b) for b in dr.barriers if b)
        cycle = max(sum(splits[p] for p in seq) for seq in dr.rings if seq)
        coord_phases: tuple[int, ...] = tuple(p for p in (2, 6) if p in groups_of)
    else:
        numbers = tuple(sorted(groups_of))
        rings = (Ring(id=1, sequence=numbers),)
        barriers = tuple(Barrier(phases=(n,)) for n in numbers)
        cycle = sum(splits.values())
        coord_phases = (1,)
    coordination = Coordination(
        cycle=round(cycle, 1), offset=0.0, coord_phases=coord_phases, splits=splits
    )
    return rings, barriers, coordination
