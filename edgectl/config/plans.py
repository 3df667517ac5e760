"""Validation of timing plans: the bounds of SPEC §4 and the ITE warnings.

:func:`validate_plan` lists every problem of a (remote) plan against a configuration, paths
relative to the plan (``timing.4.yellow``).
"""

from __future__ import annotations

import math

from edgectl.config.junction import barrier_groups
from edgectl.config.limits import (
    MAX_RED_CLEAR,
    MAX_YELLOW,
    MIN_GREEN,
    MIN_WALK,
    MIN_WALK_REDUCED,
    MIN_YELLOW,
    PED_SPEED_MPS,
    STOP_FLUSH_S,
    UNIT_STOP_TIMEOUT_S,
    handover_limit_s,
    ite_red_clear,
    ite_yellow,
)
from edgectl.config.model import Config, Phase, PhaseTiming, Plan
from edgectl.config.problems import err, join, warn
from edgectl.errors import Problem

__all__ = ["plan_problems", "validate_plan"]

_SUM_TOL = 0.05  # cycle/split arithmetic tolerance (s)


def validate_plan(plan: Plan, config: Config) -> list[Problem]:
    """Every problem of ``plan`` against ``config``; paths relative to the plan."""
    return plan_problems(plan, config, "")


def _finite(value: float) -> bool:
    return math.isfinite(value)


def _phase_timing_problems(phase: Phase, timing: PhaseTiming, path: str) -> list[Problem]:
    out: list[Problem] = []
    if not MIN_YELLOW <= timing.yellow <= MAX_YELLOW:
        out.append(
            err(
                join(path, "yellow"),
                f"yellow {timing.yellow:g} s outside {MIN_YELLOW:g}–{MAX_YELLOW:g} s",
            )
        )
    if not 0.0 <= timing.red_clear <= MAX_RED_CLEAR:
        out.append(
            err(
                join(path, "red_clear"),
                f"red clearance {timing.red_clear:g} s outside 0–{MAX_RED_CLEAR:g} s",
            )
        )
    if not timing.min_green >= MIN_GREEN:
        out.append(
            err(
                join(path, "min_green"),
                f"min green {timing.min_green:g} s is below {MIN_GREEN:g} s",
            )
        )
    if not timing.max1 >= timing.min_green:
        out.append(
            err(
                join(path, "max1"),
                f"max1 {timing.max1:g} s is below min_green {timing.min_green:g} s",
            )
        )
    if timing.max2 is not None and not timing.max2 >= timing.min_green:
        out.append(
            err(
                join(path, "max2"),
                f"max2 {timing.max2:g} s is below min_green {timing.min_green:g} s",
            )
        )
    if phase.pedestrian:
        floor = MIN_WALK_REDUCED if timing.walk_reduced else MIN_WALK
        if not timing.walk >= floor:
            why = " (walk_reduced)" if timing.walk_reduced else " unless walk_reduced = true"
            out.append(err(join(path, "walk"), f"walk {timing.walk:g} s is below {floor:g} s{why}"))
        need = phase.crossing_m / PED_SPEED_MPS
        if not timing.ped_clear >= need - 1e-9:
            out.append(
                err(
                    join(path, "ped_clear"),
                    f"ped clearance {timing.ped_clear:g} s is below {need:.1f} s "
                    f"({phase.crossing_m:g} m at {PED_SPEED_MPS} m/s)",
                )
            )
    elif timing.recall == "ped":
        out.append(
            warn(join(path, "recall"), f"ped recall on phase {phase.id} without pedestrians")
        )
    try:
        yellow = ite_yellow(phase.approach_speed_kmh, phase.approach_grade)
        red = ite_red_clear(phase.intersection_width_m, phase.approach_speed_kmh)
    except ValueError:
        return out
    if MIN_YELLOW <= timing.yellow < yellow - 0.05:
        out.append(
            warn(
                join(path, "yellow"),
                f"yellow {timing.yellow:g} s is below the ITE value {yellow:.1f} s for "
                f"{phase.approach_speed_kmh:g} km/h",
            )
        )
    if 0.0 <= timing.red_clear < red - 0.05 and timing.red_clear <= MAX_RED_CLEAR:
        out.append(
            warn(
                join(path, "red_clear"),
                f"red clearance {timing.red_clear:g} s is below the ITE value {red:.1f} s for "
                f"{phase.intersection_width_m:g} m at {phase.approach_speed_kmh:g} km/h",
            )
        )
    return out


def plan_problems(plan: Plan, config: Config, prefix: str) -> list[Problem]:
    out: list[Problem] = []
    phases = {p.id: p for p in config.phases}
    for pid in sorted(phases):
        if pid not in plan.timing:
            out.append(err(join(prefix, "timing"), f"no timing for phase {pid}"))
    for pid, timing in sorted(plan.timing.items()):
        path = join(prefix, f"timing.{pid}")
        phase = phases.get(pid)
        if phase is None:
            out.append(err(path, f"timing for phase {pid}, which is not defined"))
            continue
        out += _phase_timing_problems(phase, timing, path)
    for ch in config.channels:
        opposing = ch.permissive
        if opposing is None or ch.phase not in plan.timing or opposing not in plan.timing:
            continue
        own, opp = plan.timing[ch.phase], plan.timing[opposing]
        # the arrow's yellow and red clearance are the opposing phase's (they end together)
        for name in ("yellow", "red_clear"):
            if getattr(opp, name) < getattr(own, name) - 1e-9:
                out.append(
                    err(
                        join(prefix, f"timing.{opposing}.{name}"),
                        f"{name} {getattr(opp, name)} s of phase {opposing} is shorter than "
                        f"the {getattr(own, name)} s of phase {ch.phase}, whose flashing "
                        f"yellow arrow (channel {ch.id}) ends with it",
                    )
                )
    stop = handover_limit_s(plan.timing.values()) + STOP_FLUSH_S
    if stop > UNIT_STOP_TIMEOUT_S:
        out.append(
            warn(
                join(prefix, "timing"),
                f"a stop may take {stop:.0f} s (the longest green's minimum or walk + "
                f"pedestrian clearance, then yellow and red clearance, then the outbox "
                f"flush): over the unit's TimeoutStopSec={UNIT_STOP_TIMEOUT_S:.0f}s, systemd "
                "would kill the hand-over to flash; raise it in a drop-in",
            )
        )
    if plan.coordination is not None:
        out += _coordination_problems(plan, config, join(prefix, "coordination"))
    unknown_tsp = sorted(set(plan.tsp_phases) - set(phases))
    if unknown_tsp:
        out.append(err(join(prefix, "tsp_phases"), f"TSP on phase(s) {unknown_tsp}, not defined"))
    return out


def _coordination_problems(plan: Plan, config: Config, path: str) -> list[Problem]:
    coord = plan.coordination
    assert coord is not None
    out: list[Problem] = []
    if coord.cycle <= 0:
        if coord.splits or coord.coord_phases:
            out.append(
                err(
                    join(path, "cycle"),
                    "cycle must be > 0 with splits or coord phases "
                    "(omit [coordination] for free operation)",
                )
            )
        return out
    phases = {p.id: p for p in config.phases}
    active = {pid for pid in phases if not (pid in plan.timing and plan.timing[pid].omit)}
    splits_path = join(path, "splits")
    for pid in sorted(active):
        if pid not in coord.splits:
            out.append(err(splits_path, f"no split for phase {pid}"))
    for pid, split in sorted(coord.splits.items()):
        spath = join(splits_path, str(pid))
        if pid not in phases:
            out.append(err(spath, f"split for phase {pid}, which is not defined"))
            continue
        if not (_finite(split) and split >= 0):
            out.append(err(spath, f"split must be a non-negative number, got {split!r}"))
            continue
        if pid not in active:
            continue
        timing = plan.timing.get(pid)
        if timing is None:
            continue
        need = timing.min_green + timing.yellow + timing.red_clear
        what = "min_green + yellow + red_clear"
        if phases[pid].pedestrian:
            ped = timing.walk + timing.ped_clear + timing.yellow + timing.red_clear
            if ped > need:
                need, what = ped, "walk + ped_clear + yellow + red_clear"
        if split < need - 1e-9:
            out.append(err(spath, f"split {split:g} s is shorter than {what} = {need:g} s"))
    group = barrier_groups(config)
    group_sums: dict[int, dict[int, float]] = {}
    for ring in config.rings:
        total = 0.0
        for pid in ring.sequence:
            if pid not in active:
                continue
            split = coord.splits.get(pid, 0.0)
            if not _finite(split):
                continue
            total += split
            if pid in group:
                sums = group_sums.setdefault(group[pid], {})
                sums[ring.id] = sums.get(ring.id, 0.0) + split
        if abs(total - coord.cycle) > _SUM_TOL:
            out.append(
                err(
                    splits_path,
                    f"ring {ring.id} splits sum to {total:g} s, the cycle is {coord.cycle:g} s",
                )
            )
    for g, sums in sorted(group_sums.items()):
        values = [v for v in sums.values() if v > 0]
        if values and max(values) - min(values) > _SUM_TOL:
            detail = ", ".join(f"ring {r}: {v:g} s" for r, v in sorted(sums.items()))
            out.append(
                err(splits_path, f"barrier group {g + 1} is not aligned across rings ({detail})")
            )
    if not coord.offset < coord.cycle:
        out.append(
            err(
                join(path, "offset"),
                f"offset {coord.offset:g} s must be below the cycle {coord.cycle:g} s",
            )
        )
    ring_of = {phase: ring.id for ring in config.rings for phase in ring.sequence}
    cp_path = join(path, "coord_phases")
    seen_rings: dict[int, int] = {}
    for pid in coord.coord_phases:
        if pid not in phases:
            out.append(err(cp_path, f"coordinated phase {pid} is not defined"))
            continue
        if pid not in active:
            out.append(err(cp_path, f"coordinated phase {pid} is omitted in this plan"))
        ring_id = ring_of.get(pid)
        if ring_id is not None:
            if ring_id in seen_rings:
                out.append(
                    err(
                        cp_path,
                        f"coordinated phases {seen_rings[ring_id]} and {pid} are both "
                        f"in ring {ring_id}: at most one per ring",
                    )
                )
            seen_rings[ring_id] = pid
    groups = {group[p] for p in coord.coord_phases if p in group}
    if len(groups) > 1:
        out.append(
            err(
                cp_path,
                f"coordinated phases {list(coord.coord_phases)} are in different barrier groups",
            )
        )
    return out
