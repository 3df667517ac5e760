"""Stages and their clearances, from a tls program (or SUMO's conflicts), and the NEMA layout.

Clearances come from the ITE formulas with the approach speed and the crossing distance,
clamped to the kernel bounds (yellow 3–6 s, red clearance 0–6 s); the bench then rounds them
up to whole simulation steps (:func:`on_steps`), as SUMO shows a state for whole steps.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence

from edgectl.config.limits import ite_red_clear, ite_yellow
from edgectl.sumo.model import DualRing, JunctionModel, SignalGroup, Stage

__all__ = [
    "RED_CLEAR_BOUNDS",
    "YELLOW_BOUNDS",
    "cluster_compatible",
    "derive_dual_ring",
    "derive_stages_from_states",
    "on_steps",
    "timed_stages",
]

YELLOW_BOUNDS = (3.0, 6.0)
RED_CLEAR_BOUNDS = (0.0, 6.0)


def _clamp(x: float, bounds: tuple[float, float]) -> float:
    return min(max(x, bounds[0]), bounds[1])


def _round_up(x: float, step_s: float = 0.1) -> float:
    """Up to the next multiple of ``step_s`` (default the 0.1 s tick), as a clean decimal."""
    return round(math.ceil(round(x / step_s, 6)) * step_s, 6)


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


def timed_stages(
    stage_sets: Sequence[tuple[frozenset[int], frozenset[int]]],
    groups: Sequence[SignalGroup],
    states: Sequence[str],
    greens: Sequence[float],
) -> list[Stage]:
    """Number the stages, with their default-program green, green limits and clearances."""
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
    return stages


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
