"""The safety kernel (SPEC §4): pure, no I/O, no clock reads.

- :class:`ConflictMatrix` decides which phases and channels may be non-red together. Two phases
  conflict when they are different phases of the same ring, or in different barrier groups, or
  listed in ``conflict_overrides``. A vehicle and a pedestrian channel of the same phase do not
  conflict; two channels conflict when no legitimate state shows both: an overlap channel
  is green with any of its parents, so it conflicts with a channel only when every one of its
  parents conflicts with every phase driving that channel (two overlaps that share a parent
  never conflict).
- :class:`ConflictMonitor` checks every output frame before it is written (the software
  MMU): conflicting channels non-red together, a green not followed by yellow, a short yellow,
  a green or walk during a conflicting channel's red clearance, a walk not followed by a full
  pedestrian clearance, ``Y→G``, and leaving flash other than through red.
- :func:`validate_config` / :func:`validate_plan` list *every* problem of a configuration or a
  (remote) plan, each with its path: ``rings[1].sequence``, ``plans[0].timing.4.yellow``. Plan
  paths from :func:`validate_plan` are relative to the plan (``timing.4.yellow``).
- :func:`ite_yellow` / :func:`ite_red_clear`: the ITE change and clearance intervals, used for
  the warnings of plan validation and by the SUMO bench.

Channel states ``FR``, ``FY``, ``OFF``, ``R`` and ``DW`` count as red; ``G``, ``Y``, ``W`` and
``FDW`` as non-red. Entering flash is always allowed (fault flash is immediate by design).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from edgectl.config.model import (
    ChannelSource,
    Config,
    DaemonConfig,
    DetectorType,
    Mode,
    Phase,
    PhaseTiming,
    Plan,
)
from edgectl.control.types import ChannelState
from edgectl.errors import Problem

__all__ = [
    "MAX_RED_CLEAR",
    "MAX_YELLOW",
    "MIN_GREEN",
    "MIN_WALK",
    "MIN_WALK_REDUCED",
    "MIN_YELLOW",
    "PED_SPEED_MPS",
    "ConflictMatrix",
    "ConflictMonitor",
    "Violation",
    "barrier_groups",
    "ite_red_clear",
    "ite_yellow",
    "validate_config",
    "validate_plan",
]

# MUTCD / ITE bounds (SPEC §4)
MIN_YELLOW = 3.0
MAX_YELLOW = 6.0
MAX_RED_CLEAR = 6.0
MIN_GREEN = 4.0
MIN_WALK = 7.0
MIN_WALK_REDUCED = 4.0
PED_SPEED_MPS = 1.07  # 3.5 ft/s, MUTCD 4E.06

G_MPS2 = 9.81
_EPS = 1e-3  # timing tolerance of the monitor (1 ms; ticks are 100 ms)
_SUM_TOL = 0.05  # cycle/split arithmetic tolerance (s)

_FLASH = frozenset({ChannelState.FR, ChannelState.FY, ChannelState.OFF})
_RED = frozenset({ChannelState.R, ChannelState.DW}) | _FLASH
_RIGHT_OF_WAY = frozenset({ChannelState.G, ChannelState.W})


# --------------------------------------------------------------------------- ITE helpers


def ite_yellow(
    speed_kmh: float,
    grade: float = 0.0,
    *,
    reaction_s: float = 1.0,
    decel_mps2: float = 3.05,
) -> float:
    """ITE yellow change interval ``t + v / (2a + 2·G·g)`` in seconds.

    ``speed_kmh`` is the approach speed, ``grade`` a fraction (uphill positive), ``reaction_s``
    the perception-reaction time and ``decel_mps2`` the comfortable deceleration.
    """
    if not (speed_kmh > 0 and math.isfinite(speed_kmh)):
        raise ValueError(f"approach speed must be a positive number, got {speed_kmh!r}")
    denominator = 2.0 * decel_mps2 + 2.0 * grade * G_MPS2
    if not denominator > 0:
        raise ValueError(f"deceleration {decel_mps2} and grade {grade} give no stopping")
    return reaction_s + (speed_kmh / 3.6) / denominator


def ite_red_clear(width_m: float, speed_kmh: float, *, vehicle_length_m: float = 6.1) -> float:
    """ITE red clearance interval ``(W + L) / v`` in seconds."""
    if not (speed_kmh > 0 and math.isfinite(speed_kmh)):
        raise ValueError(f"approach speed must be a positive number, got {speed_kmh!r}")
    return (width_m + vehicle_length_m) / (speed_kmh / 3.6)


# --------------------------------------------------------------------------- conflict matrix


def barrier_groups(config: Config) -> dict[int, int]:
    """Phase id → index of its (first) barrier group in ``config.barriers``."""
    group: dict[int, int] = {}
    for index, barrier in enumerate(config.barriers):
        for phase in barrier.phases:
            group.setdefault(phase, index)
    return group


def _channel_phases(source: ChannelSource, phase: int, parents: tuple[int, ...]) -> frozenset[int]:
    if source is ChannelSource.OVERLAP and parents:
        return frozenset(parents)
    return frozenset({phase})


class ConflictMatrix:
    """Which phases and channels may never be non-red together."""

    __slots__ = ("_channel_conflicts", "_channel_phases", "_phase_conflicts", "_phases")

    def __init__(
        self,
        phase_conflicts: Iterable[tuple[int, int]],
        channel_phases: Mapping[int, frozenset[int]],
        phases: Iterable[int],
    ) -> None:
        self._phases = frozenset(phases)
        self._phase_conflicts: frozenset[frozenset[int]] = frozenset(
            frozenset(pair) for pair in phase_conflicts if pair[0] != pair[1]
        )
        self._channel_phases = dict(channel_phases)
        pairs: set[frozenset[int]] = set()
        ids = sorted(self._channel_phases)
        for i, a in enumerate(ids):
            for b in ids[i + 1 :]:
                if self._sets_conflict(self._channel_phases[a], self._channel_phases[b]):
                    pairs.add(frozenset((a, b)))
        self._channel_conflicts = frozenset(pairs)

    @classmethod
    def from_config(cls, config: Config) -> ConflictMatrix:
        phase_ids = {p.id for p in config.phases}
        for ring in config.rings:
            phase_ids.update(ring.sequence)
        group = barrier_groups(config)
        ring_of: dict[int, set[int]] = {}
        for ring in config.rings:
            for phase in ring.sequence:
                ring_of.setdefault(phase, set()).add(ring.id)
        conflicts: set[tuple[int, int]] = set()
        ordered = sorted(phase_ids)
        for i, a in enumerate(ordered):
            for b in ordered[i + 1 :]:
                same_ring = bool(ring_of.get(a, set()) & ring_of.get(b, set()))
                # a phase with no barrier group is unknown territory: conflict with everything
                other_group = a not in group or b not in group or group[a] != group[b]
                if same_ring or other_group:
                    conflicts.add((a, b))
        for a, b in config.conflict_overrides:
            if a != b:
                conflicts.add((min(a, b), max(a, b)))
        channel_phases = {
            ch.id: _channel_phases(ch.source, ch.phase, ch.overlap_parents)
            for ch in config.channels
        }
        return cls(conflicts, channel_phases, phase_ids)

    def _sets_conflict(self, a: frozenset[int], b: frozenset[int]) -> bool:
        """Channels driven by phase sets ``a`` and ``b`` conflict unless some legitimate
        state shows both: a shared phase, or a phase of each that may time together (an
        overlap is green with *any* of its parents, so one compatible pair is enough)."""
        return not any(
            x == y or frozenset((x, y)) not in self._phase_conflicts for x in a for y in b
        )

    @property
    def phases(self) -> frozenset[int]:
        return self._phases

    def channel_phases(self, channel: int) -> frozenset[int]:
        """The phases driving a channel (the parents of an overlap)."""
        return self._channel_phases[channel]

    def phases_conflict(self, a: int, b: int) -> bool:
        return a != b and frozenset((a, b)) in self._phase_conflicts

    def channels_conflict(self, a: int, b: int) -> bool:
        return a != b and frozenset((a, b)) in self._channel_conflicts

    def conflicting_channel_pairs(self) -> list[tuple[int, int]]:
        return sorted((min(p), max(p)) for p in self._channel_conflicts)

    def conflicting_phase_pairs(self) -> list[tuple[int, int]]:
        return sorted((min(p), max(p)) for p in self._phase_conflicts)


# --------------------------------------------------------------------------- monitor


@dataclass(frozen=True, slots=True)
class Violation:
    """One rule the output frame broke. ``kind`` is a stable snake_case name."""

    t: float
    kind: str
    channels: tuple[int, ...]
    detail: str


@dataclass(slots=True)
class _Track:
    state: ChannelState
    since: float
    red_clear_from: float | None = None  # time of the last Y→R
    red_clear_needed: float = 0.0
    need: float | None = None  # minimum of the running Y / FDW under the plan when it began
    permissive: bool = False  # a flashing yellow arrow showing a permissive movement
    arrow_end: bool = False  # the steady yellow that ends one


class ConflictMonitor:
    """The software conflict monitor: checks every frame before it is written.

    Stateful: it remembers when each channel entered its state. The first frame after
    construction or :meth:`reset` is a baseline: only checked for conflicts, not for
    transitions (the engine starts in flash). Kinds reported: ``conflict``,
    ``green_not_to_yellow``, ``yellow_to_green``, ``short_yellow``, ``short_red_clear``,
    ``walk_not_to_ped_clear``, ``short_ped_clear``, ``flash_exit_not_red``, ``unknown_channel``.
    """

    def __init__(self, config: Config) -> None:
        self._matrix = ConflictMatrix.from_config(config)
        self._kind = {ch.id: ch.source for ch in config.channels}
        self._pairs = self._matrix.conflicting_channel_pairs()
        self._conflicting: dict[int, tuple[int, ...]] = {ch.id: () for ch in config.channels}
        for a, b in self._pairs:
            self._conflicting[a] += (b,)
            self._conflicting[b] += (a,)
        self._tracks: dict[int, _Track] = {}
        # flashing yellow arrows: channel → the channels of the phase it yields to
        self._yields_to: dict[int, frozenset[int]] = {
            ch.id: frozenset(
                c.id
                for c in config.channels
                if self._matrix.channel_phases(c.id) == frozenset({ch.permissive})
            )
            for ch in config.channels
            if ch.permissive is not None and ch.source is ChannelSource.VEHICLE
        }

    @property
    def matrix(self) -> ConflictMatrix:
        return self._matrix

    def reset(self) -> None:
        """Forget every channel's history; the next frame is a new baseline."""
        self._tracks.clear()

    def _timing(self, channel: int, plan: Plan) -> list[PhaseTiming]:
        return [plan.timing[p] for p in self._matrix.channel_phases(channel) if p in plan.timing]

    def _min_yellow(self, channel: int, plan: Plan) -> float:
        timings = self._timing(channel, plan)
        return min((t.yellow for t in timings), default=MIN_YELLOW)

    def _red_clear(self, channel: int, plan: Plan) -> float:
        timings = self._timing(channel, plan)
        return min((t.red_clear for t in timings), default=0.0)

    def _ped_clear(self, channel: int, plan: Plan) -> float:
        timings = self._timing(channel, plan)
        return min((t.ped_clear for t in timings), default=0.0)

    def check(self, t: float, frame: Mapping[int, ChannelState], plan: Plan) -> list[Violation]:
        """Check one frame at controller time ``t``; an empty list means it is safe."""
        found: list[Violation] = []
        for ch in frame:
            if ch not in self._kind:
                found.append(Violation(t, "unknown_channel", (ch,), f"channel {ch} not configured"))
        permissive = self._permissive(frame)
        yielding = permissive | self._arrows_ending(frame)
        for a, b in self._pairs:
            sa = frame.get(a, ChannelState.OFF)
            sb = frame.get(b, ChannelState.OFF)
            # a flashing yellow arrow (and the yellow ending it) yields to the opposing phase:
            # no conflict with it; to anything else it is a right of way like any other
            if (a in yielding and b in self._yields_to[a]) or (
                b in yielding and a in self._yields_to[b]
            ):
                continue
            red_a = sa in _RED and a not in permissive
            red_b = sb in _RED and b not in permissive
            if not red_a and not red_b:
                found.append(
                    Violation(t, "conflict", (a, b), f"channels {a}={sa.name} and {b}={sb.name}")
                )
        for ch in sorted(permissive):
            if not any(frame.get(o) == ChannelState.G for o in self._yields_to[ch]):
                found.append(
                    Violation(
                        t,
                        "permissive_without_opposing_green",
                        (ch,),
                        f"flashing yellow arrow on {ch} while no channel it yields to is green",
                    )
                )
        baseline = not self._tracks
        # channels turning red first: a yellow ending in the same frame as a conflicting green
        # starts must count as a red clearance of zero, whatever the channel numbers
        order = sorted(
            self._kind,
            key=lambda c: frame.get(c, ChannelState.OFF) not in _RED or c in permissive,
        )
        for ch in order:
            new = frame.get(ch, ChannelState.OFF)
            track = self._tracks.get(ch)
            if track is None:
                self._tracks[ch] = _Track(new, t, need=self._need(ch, new, plan))
                track = self._tracks[ch]
                track.permissive = ch in permissive
                continue
            if baseline or new == track.state:
                track.permissive = ch in permissive
                continue
            found.extend(
                self._transition(
                    t,
                    ch,
                    track=track,
                    new=new,
                    frame=frame,
                    plan=plan,
                    permissive=ch in permissive,
                )
            )
            track.arrow_end = new == ChannelState.Y and track.permissive
            track.permissive = ch in permissive
            if track.state == ChannelState.Y and new == ChannelState.R:
                track.red_clear_from = t
                track.red_clear_needed = self._red_clear(ch, plan)
            elif new not in _RED or ch in permissive:
                track.red_clear_from = None
            track.state = new
            track.since = t
            track.need = self._need(ch, new, plan)
        return found

    def _permissive(self, frame: Mapping[int, ChannelState]) -> frozenset[int]:
        """Flashing yellow arrows showing a permissive movement: FY on such a channel outside
        a flash frame (a frame of flash states only is the controller's own flash)."""
        if not self._yields_to or all(st in _FLASH for st in frame.values()):
            return frozenset()
        return frozenset(ch for ch in self._yields_to if frame.get(ch) == ChannelState.FY)

    def _arrows_ending(self, frame: Mapping[int, ChannelState]) -> frozenset[int]:
        """Arrow channels in (or entering) the steady yellow that ends a permissive FY."""
        out = set()
        for ch in self._yields_to:
            track = self._tracks.get(ch)
            if track is None or frame.get(ch) != ChannelState.Y:
                continue
            if (track.state == ChannelState.FY and track.permissive) or (
                track.state == ChannelState.Y and track.arrow_end
            ):
                out.add(ch)
        return frozenset(out)

    def _need(self, ch: int, state: ChannelState, plan: Plan) -> float | None:
        if state == ChannelState.Y:
            return self._min_yellow(ch, plan)
        if state == ChannelState.FDW:
            return self._ped_clear(ch, plan)
        return None

    @staticmethod
    def _smaller(now: float, then: float | None) -> float:
        # a plan change while the interval runs: the interval owes the smaller minimum
        return now if then is None else min(now, then)

    def _transition(
        self,
        t: float,
        ch: int,
        *,
        track: _Track,
        new: ChannelState,
        frame: Mapping[int, ChannelState],
        plan: Plan,
        permissive: bool = False,
    ) -> list[Violation]:
        old = track.state
        lasted = t - track.since
        out: list[Violation] = []
        if track.permissive and new not in (ChannelState.Y, ChannelState.FR, ChannelState.OFF):
            # a permissive movement ends with a steady yellow, like a green
            out.append(Violation(t, "permissive_not_to_yellow", (ch,), f"FY→{new.name}"))
        if permissive:
            if old == ChannelState.Y:
                out.append(Violation(t, "yellow_to_permissive", (ch,), "Y→FY"))
            elif old in _FLASH:
                out.append(Violation(t, "flash_exit_not_red", (ch,), f"{old.name}→FY"))
        elif new in _FLASH:
            return out  # entering flash is always allowed
        if old in _FLASH and new not in _RED and not track.permissive:
            out.append(Violation(t, "flash_exit_not_red", (ch,), f"{old.name}→{new.name}"))
        if old == ChannelState.G and new != ChannelState.Y:
            out.append(Violation(t, "green_not_to_yellow", (ch,), f"G→{new.name}"))
        if old == ChannelState.Y:
            if new == ChannelState.G:
                out.append(Violation(t, "yellow_to_green", (ch,), "Y→G"))
            elif new == ChannelState.R:
                need = self._smaller(self._min_yellow(ch, plan), track.need)
                if lasted < need - _EPS:
                    out.append(
                        Violation(t, "short_yellow", (ch,), f"yellow {lasted:.2f} s < {need:.2f} s")
                    )
        if old == ChannelState.W and new != ChannelState.FDW:
            out.append(Violation(t, "walk_not_to_ped_clear", (ch,), f"W→{new.name}"))
        if old == ChannelState.FDW and new == ChannelState.DW:
            need = self._smaller(self._ped_clear(ch, plan), track.need)
            if lasted < need - _EPS:
                out.append(
                    Violation(
                        t, "short_ped_clear", (ch,), f"ped clear {lasted:.2f} s < {need:.2f} s"
                    )
                )
        entering = new in _RIGHT_OF_WAY or permissive
        if entering and old not in _RIGHT_OF_WAY and not track.permissive:
            for other in self._conflicting[ch]:
                if permissive and other in self._yields_to[ch]:
                    continue
                other_track = self._tracks.get(other)
                if other_track is None or other_track.red_clear_from is None:
                    continue
                if frame.get(other, ChannelState.OFF) in _FLASH:
                    continue
                red = t - other_track.red_clear_from
                if red < other_track.red_clear_needed - _EPS:
                    out.append(
                        Violation(
                            t,
                            "short_red_clear",
                            (ch, other),
                            f"{new.name} on {ch} after {red:.2f} s of red clearance on {other} "
                            f"(needs {other_track.red_clear_needed:.2f} s)",
                        )
                    )
        return out


# --------------------------------------------------------------------------- validation


def _err(path: str, message: str) -> Problem:
    return Problem(path, message)


def _warn(path: str, message: str) -> Problem:
    return Problem(path, message, severity="warning")


def _join(prefix: str, rest: str) -> str:
    if not prefix:
        return rest
    if not rest:
        return prefix
    return f"{prefix}{rest}" if rest.startswith("[") else f"{prefix}.{rest}"


def _duplicates(kind: str, section: str, ids: list[int]) -> list[Problem]:
    out: list[Problem] = []
    first: dict[int, int] = {}
    for index, ident in enumerate(ids):
        if ident in first:
            out.append(
                _err(
                    f"{section}[{index}].id",
                    f"duplicate {kind} id {ident} (also {section}[{first[ident]}])",
                )
            )
        else:
            first[ident] = index
    return out


def _cyclic_compress(groups: list[int]) -> list[int]:
    """Barrier groups a ring visits, consecutive repeats (cyclically) merged."""
    out: list[int] = []
    for g in groups:
        if not out or out[-1] != g:
            out.append(g)
    while len(out) > 1 and out[0] == out[-1]:
        out.pop()
    return out


def _rotate_to(seq: list[int], start: int) -> list[int]:
    i = seq.index(start)
    return seq[i:] + seq[:i]


def validate_config(config: Config) -> list[Problem]:
    """Every semantic problem of a structurally valid configuration, with its path."""
    problems: list[Problem] = []
    problems += _duplicates("phase", "phases", [p.id for p in config.phases])
    problems += _duplicates("ring", "rings", [r.id for r in config.rings])
    problems += _duplicates("channel", "channels", [c.id for c in config.channels])
    problems += _duplicates("detector", "detectors", [d.id for d in config.detectors])
    problems += _duplicates("plan", "plans", [p.id for p in config.plans])
    defined = {p.id for p in config.phases}
    problems += _check_layout(config, defined)
    problems += _check_references(config, defined)
    problems += _check_permissive(config, defined)
    problems += _check_startup(config)
    plan_ids = {p.id for p in config.plans}
    if config.control.plan not in plan_ids:
        problems.append(_err("control.plan", f"plan {config.control.plan} is not defined"))
    for index, entry in enumerate(config.control.schedule):
        if entry.plan not in plan_ids:
            problems.append(
                _err(f"control.schedule[{index}].plan", f"plan {entry.plan} is not defined")
            )
    problems += _check_mode_needs(config)
    for index, plan in enumerate(config.plans):
        problems += _plan_problems(plan, config, f"plans[{index}]")
    if isinstance(config, DaemonConfig):
        problems += _check_outflow(config)
        problems += _check_neighbours(config, defined)
    return problems


def _check_outflow(config: DaemonConfig) -> list[Problem]:
    """The published detectors exist and sit at the stop bar: a departure is a vehicle
    leaving the stop line, which an advance loop does not see."""
    out: list[Problem] = []
    types = {d.id: d.type for d in config.detectors}
    seen: set[int] = set()
    for det in config.outflow.detectors:
        path = "outflow.detectors"
        if det in seen:
            out.append(_err(path, f"detector {det} listed twice"))
        seen.add(det)
        if det not in types:
            out.append(_err(path, f"detector {det} is not defined"))
        elif types[det] is not DetectorType.STOP_BAR:
            out.append(_err(path, f"detector {det} is an {types[det]} loop, not at the stop bar"))
    stop_bars = DetectorType.STOP_BAR in types.values()
    if config.outflow.enabled and not config.outflow.detectors and not stop_bars:
        out.append(_warn("outflow.enabled", "no stop-bar detector: nothing to publish"))
    return out


def _check_neighbours(config: DaemonConfig, defined: set[int]) -> list[Problem]:
    """Each upstream detector feeds one of our phases once: a detector listed twice would
    count every vehicle twice."""
    out: list[Problem] = []
    feeds: dict[tuple[str, int], int] = {}
    for index, n in enumerate(config.neighbours):
        path = f"neighbours[{index}]"
        if n.intersection == config.intersection.id:
            out.append(_err(f"{path}.intersection", "a junction is not its own neighbour"))
        if n.phase not in defined:
            out.append(_err(f"{path}.phase", f"phase {n.phase} is not defined"))
        for det in n.detectors:
            first = feeds.get((n.intersection, det))
            if first is not None:
                also = "" if first == index else f" (also neighbours[{first}])"
                out.append(
                    _err(
                        f"{path}.detectors",
                        f"detector {det} of {n.intersection} listed twice{also}",
                    )
                )
            else:
                feeds[(n.intersection, det)] = index
    return out


def _check_mode_needs(config: Config) -> list[Problem]:
    out: list[Problem] = []
    needs_cycle = (Mode.FIXED, Mode.COORDINATED)
    plans = {p.id: p for p in config.plans}

    def check(path: str, mode: Mode | None, plan_id: int) -> None:
        plan = plans.get(plan_id)
        if mode in needs_cycle and plan is not None:
            coord = plan.coordination
            if coord is None or coord.cycle <= 0:
                out.append(
                    _err(
                        path,
                        f"mode {mode} needs plan {plan_id} to have a cycle and splits "
                        "([plans.coordination])",
                    )
                )

    check("control.mode", config.control.mode, config.control.plan)
    for index, entry in enumerate(config.control.schedule):
        check(f"control.schedule[{index}].mode", entry.mode, entry.plan)
    return out


def _check_layout(config: Config, defined: set[int]) -> list[Problem]:
    out: list[Problem] = []
    in_rings: dict[int, list[int]] = {}
    for r_index, ring in enumerate(config.rings):
        seen: set[int] = set()
        for phase in ring.sequence:
            if phase not in defined:
                out.append(
                    _err(
                        f"rings[{r_index}].sequence", f"phase {phase} is not defined in [[phases]]"
                    )
                )
            if phase in seen:
                out.append(
                    _err(
                        f"rings[{r_index}].sequence",
                        f"phase {phase} appears twice in ring {ring.id}",
                    )
                )
            seen.add(phase)
        for phase in seen:
            in_rings.setdefault(phase, []).append(ring.id)
    in_barriers: dict[int, list[int]] = {}
    for b_index, barrier in enumerate(config.barriers):
        seen = set()
        for phase in barrier.phases:
            if phase not in defined:
                out.append(
                    _err(
                        f"barriers[{b_index}].phases", f"phase {phase} is not defined in [[phases]]"
                    )
                )
            if phase in seen:
                out.append(_err(f"barriers[{b_index}].phases", f"phase {phase} listed twice"))
            seen.add(phase)
        for phase in seen:
            in_barriers.setdefault(phase, []).append(b_index + 1)
    for p_index, phase_model in enumerate(config.phases):
        pid = phase_model.id
        rings = in_rings.get(pid, [])
        if not rings:
            out.append(_err(f"phases[{p_index}]", f"phase {pid} is in no ring"))
        elif len(rings) > 1:
            out.append(
                _err(f"phases[{p_index}]", f"phase {pid} is in more than one ring: rings {rings}")
            )
        barriers = in_barriers.get(pid, [])
        if not barriers:
            out.append(_err(f"phases[{p_index}]", f"phase {pid} is in no barrier group"))
        elif len(barriers) > 1:
            out.append(
                _err(
                    f"phases[{p_index}]",
                    f"phase {pid} is in more than one barrier group: barriers {barriers}",
                )
            )
    # ring sequences: each barrier group visited contiguously, the same order in every ring
    group = barrier_groups(config)
    orders: list[tuple[int, int, list[int]]] = []
    for r_index, ring in enumerate(config.rings):
        groups = [group[p] for p in ring.sequence if p in group]
        order = _cyclic_compress(groups)
        if len(order) != len(set(order)):
            out.append(
                _err(
                    f"rings[{r_index}].sequence",
                    f"ring {ring.id} sequence {list(ring.sequence)} leaves a barrier group and "
                    "comes back to it: the phases of one barrier group must be consecutive",
                )
            )
            continue
        orders.append((r_index, ring.id, order))
    for i, (_, ring_a, order_a) in enumerate(orders):
        for r_index_b, ring_b, order_b in orders[i + 1 :]:
            common = [g for g in order_a if g in order_b]
            if len(common) < 3:
                continue  # two groups always alternate the same way
            a = _rotate_to(common, common[0])
            b = _rotate_to([g for g in order_b if g in common], common[0])
            if a != b:
                out.append(
                    _err(
                        f"rings[{r_index_b}].sequence",
                        f"ring {ring_b} visits the barrier groups in the order "
                        f"{[g + 1 for g in b]} but ring {ring_a} in {[g + 1 for g in a]}: "
                        "all rings must cross the barriers in the same order",
                    )
                )
    return out


def _check_references(config: Config, defined: set[int]) -> list[Problem]:
    out: list[Problem] = []
    by_id = {p.id: p for p in config.phases}
    for index, ch in enumerate(config.channels):
        path = f"channels[{index}]"
        if ch.source is ChannelSource.OVERLAP:
            if not ch.overlap_parents:
                out.append(
                    _err(f"{path}.overlap_parents", "an overlap channel needs parent phases")
                )
            for parent in ch.overlap_parents:
                if parent not in defined:
                    out.append(_err(f"{path}.overlap_parents", f"phase {parent} is not defined"))
        else:
            if ch.phase not in defined:
                out.append(_err(f"{path}.phase", f"phase {ch.phase} is not defined"))
            if ch.overlap_parents:
                out.append(
                    _err(
                        f"{path}.overlap_parents",
                        f"only an overlap channel has parents (source is {ch.source})",
                    )
                )
        if (
            ch.source is ChannelSource.PEDESTRIAN
            and ch.phase in by_id
            and not by_id[ch.phase].pedestrian
        ):
            out.append(
                _err(
                    f"{path}.phase",
                    f"pedestrian channel on phase {ch.phase}, which has pedestrian = false",
                )
            )
    for index, det in enumerate(config.detectors):
        for field_name, phases in (
            ("call_phases", det.call_phases),
            ("extend_phases", det.extend_phases or ()),
        ):
            for phase in phases:
                if phase not in defined:
                    out.append(
                        _err(f"detectors[{index}].{field_name}", f"phase {phase} is not defined")
                    )
    for index, (a, b) in enumerate(config.conflict_overrides):
        for phase in (a, b):
            if phase not in defined:
                out.append(_err(f"conflict_overrides[{index}]", f"phase {phase} is not defined"))
        if a == b:
            out.append(
                _err(f"conflict_overrides[{index}]", f"phase {a} cannot conflict with itself")
            )
    return out


def _check_permissive(config: Config, defined: set[int]) -> list[Problem]:
    """Flashing yellow arrows: a vehicle channel, yielding to a phase its own conflicts with,
    and never shown beside anything else its phase conflicts with - every phase that may time
    with the opposing phase may time with the channel's phase too."""
    fya = [(i, ch) for i, ch in enumerate(config.channels) if ch.permissive is not None]
    if not fya:
        return []
    out: list[Problem] = []
    matrix = ConflictMatrix.from_config(config)
    for index, ch in fya:
        path = f"channels[{index}].permissive"
        opposing = ch.permissive
        assert opposing is not None
        if ch.source is not ChannelSource.VEHICLE:
            out.append(_err(path, f"only a vehicle channel can be permissive (not {ch.source})"))
            continue
        if opposing not in defined or ch.phase not in defined:
            out.append(_err(path, f"phase {opposing} is not defined"))
            continue
        if not matrix.phases_conflict(ch.phase, opposing):
            out.append(
                _err(
                    path,
                    f"phase {ch.phase} does not conflict with phase {opposing}: "
                    "there is nothing to yield to",
                )
            )
            continue
        for index_b, other_ch in enumerate(config.channels):
            parents = set(other_ch.overlap_parents)
            if (
                other_ch.source is ChannelSource.OVERLAP
                and opposing in parents
                and len(parents) > 1
                and matrix.channels_conflict(ch.id, other_ch.id)
            ):
                out.append(
                    _err(
                        path,
                        f"overlap channels[{index_b}] (parents {sorted(parents)}) is green with "
                        f"phase {opposing} and with other phases, and conflicts with phase "
                        f"{ch.phase}: the flashing yellow arrow would be shown beside it",
                    )
                )
        for other in sorted(defined - {ch.phase, opposing}):
            if not matrix.phases_conflict(other, opposing) and matrix.phases_conflict(
                other, ch.phase
            ):
                out.append(
                    _err(
                        path,
                        f"phase {other} may time with phase {opposing} but conflicts with "
                        f"phase {ch.phase}: the flashing yellow arrow would be shown beside it",
                    )
                )
    return out


def _check_startup(config: Config) -> list[Problem]:
    out: list[Problem] = []
    startup = [(i, p.id) for i, p in enumerate(config.phases) if p.startup]
    ring_of = {phase: ring.id for ring in config.rings for phase in ring.sequence}
    group = barrier_groups(config)
    per_ring: dict[int, int] = {}
    for index, pid in startup:
        ring = ring_of.get(pid)
        if ring is None:
            continue
        if ring in per_ring:
            out.append(
                _err(
                    f"phases[{index}].startup",
                    f"phases {per_ring[ring]} and {pid} are both start-up phases of ring {ring}",
                )
            )
        else:
            per_ring[ring] = pid
    groups = {group[pid] for _, pid in startup if pid in group}
    if len(groups) > 1:
        index = startup[-1][0]
        out.append(
            _err(
                f"phases[{index}].startup",
                f"start-up phases {[pid for _, pid in startup]} are in different barrier groups",
            )
        )
    return out


def validate_plan(plan: Plan, config: Config) -> list[Problem]:
    """Every problem of ``plan`` against ``config``; paths relative to the plan."""
    return _plan_problems(plan, config, "")


def _finite(value: float) -> bool:
    return math.isfinite(value)


def _phase_timing_problems(phase: Phase, timing: PhaseTiming, path: str) -> list[Problem]:
    out: list[Problem] = []
    if not MIN_YELLOW <= timing.yellow <= MAX_YELLOW:
        out.append(
            _err(
                _join(path, "yellow"),
                f"yellow {timing.yellow:g} s outside {MIN_YELLOW:g}–{MAX_YELLOW:g} s",
            )
        )
    if not 0.0 <= timing.red_clear <= MAX_RED_CLEAR:
        out.append(
            _err(
                _join(path, "red_clear"),
                f"red clearance {timing.red_clear:g} s outside 0–{MAX_RED_CLEAR:g} s",
            )
        )
    if not timing.min_green >= MIN_GREEN:
        out.append(
            _err(
                _join(path, "min_green"),
                f"min green {timing.min_green:g} s is below {MIN_GREEN:g} s",
            )
        )
    if not timing.max1 >= timing.min_green:
        out.append(
            _err(
                _join(path, "max1"),
                f"max1 {timing.max1:g} s is below min_green {timing.min_green:g} s",
            )
        )
    if timing.max2 is not None and not timing.max2 >= timing.min_green:
        out.append(
            _err(
                _join(path, "max2"),
                f"max2 {timing.max2:g} s is below min_green {timing.min_green:g} s",
            )
        )
    if phase.pedestrian:
        floor = MIN_WALK_REDUCED if timing.walk_reduced else MIN_WALK
        if not timing.walk >= floor:
            why = " (walk_reduced)" if timing.walk_reduced else " unless walk_reduced = true"
            out.append(
                _err(_join(path, "walk"), f"walk {timing.walk:g} s is below {floor:g} s{why}")
            )
        need = phase.crossing_m / PED_SPEED_MPS
        if not timing.ped_clear >= need - 1e-9:
            out.append(
                _err(
                    _join(path, "ped_clear"),
                    f"ped clearance {timing.ped_clear:g} s is below {need:.1f} s "
                    f"({phase.crossing_m:g} m at {PED_SPEED_MPS} m/s)",
                )
            )
    elif timing.recall == "ped":
        out.append(
            _warn(_join(path, "recall"), f"ped recall on phase {phase.id} without pedestrians")
        )
    try:
        yellow = ite_yellow(phase.approach_speed_kmh, phase.approach_grade)
        red = ite_red_clear(phase.intersection_width_m, phase.approach_speed_kmh)
    except ValueError:
        return out
    if MIN_YELLOW <= timing.yellow < yellow - 0.05:
        out.append(
            _warn(
                _join(path, "yellow"),
                f"yellow {timing.yellow:g} s is below the ITE value {yellow:.1f} s for "
                f"{phase.approach_speed_kmh:g} km/h",
            )
        )
    if 0.0 <= timing.red_clear < red - 0.05 and timing.red_clear <= MAX_RED_CLEAR:
        out.append(
            _warn(
                _join(path, "red_clear"),
                f"red clearance {timing.red_clear:g} s is below the ITE value {red:.1f} s for "
                f"{phase.intersection_width_m:g} m at {phase.approach_speed_kmh:g} km/h",
            )
        )
    return out


def _plan_problems(plan: Plan, config: Config, prefix: str) -> list[Problem]:
    out: list[Problem] = []
    phases = {p.id: p for p in config.phases}
    for pid in sorted(phases):
        if pid not in plan.timing:
            out.append(_err(_join(prefix, "timing"), f"no timing for phase {pid}"))
    for pid, timing in sorted(plan.timing.items()):
        path = _join(prefix, f"timing.{pid}")
        phase = phases.get(pid)
        if phase is None:
            out.append(_err(path, f"timing for phase {pid}, which is not defined"))
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
                    _err(
                        _join(prefix, f"timing.{opposing}.{name}"),
                        f"{name} {getattr(opp, name)} s of phase {opposing} is shorter than "
                        f"the {getattr(own, name)} s of phase {ch.phase}, whose flashing "
                        f"yellow arrow (channel {ch.id}) ends with it",
                    )
                )
    if plan.coordination is not None:
        out += _coordination_problems(plan, config, _join(prefix, "coordination"))
    return out


def _coordination_problems(plan: Plan, config: Config, path: str) -> list[Problem]:
    coord = plan.coordination
    assert coord is not None
    out: list[Problem] = []
    if coord.cycle <= 0:
        if coord.splits or coord.coord_phases:
            out.append(
                _err(
                    _join(path, "cycle"),
                    "cycle must be > 0 with splits or coord phases "
                    "(omit [coordination] for free operation)",
                )
            )
        return out
    phases = {p.id: p for p in config.phases}
    active = {pid for pid in phases if not (pid in plan.timing and plan.timing[pid].omit)}
    splits_path = _join(path, "splits")
    for pid in sorted(active):
        if pid not in coord.splits:
            out.append(_err(splits_path, f"no split for phase {pid}"))
    for pid, split in sorted(coord.splits.items()):
        spath = _join(splits_path, str(pid))
        if pid not in phases:
            out.append(_err(spath, f"split for phase {pid}, which is not defined"))
            continue
        if not (_finite(split) and split >= 0):
            out.append(_err(spath, f"split must be a non-negative number, got {split!r}"))
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
            out.append(_err(spath, f"split {split:g} s is shorter than {what} = {need:g} s"))
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
                _err(
                    splits_path,
                    f"ring {ring.id} splits sum to {total:g} s, the cycle is {coord.cycle:g} s",
                )
            )
    for g, sums in sorted(group_sums.items()):
        values = [v for v in sums.values() if v > 0]
        if values and max(values) - min(values) > _SUM_TOL:
            detail = ", ".join(f"ring {r}: {v:g} s" for r, v in sorted(sums.items()))
            out.append(
                _err(splits_path, f"barrier group {g + 1} is not aligned across rings ({detail})")
            )
    if not coord.offset < coord.cycle:
        out.append(
            _err(
                _join(path, "offset"),
                f"offset {coord.offset:g} s must be below the cycle {coord.cycle:g} s",
            )
        )
    ring_of = {phase: ring.id for ring in config.rings for phase in ring.sequence}
    cp_path = _join(path, "coord_phases")
    seen_rings: dict[int, int] = {}
    for pid in coord.coord_phases:
        if pid not in phases:
            out.append(_err(cp_path, f"coordinated phase {pid} is not defined"))
            continue
        if pid not in active:
            out.append(_err(cp_path, f"coordinated phase {pid} is omitted in this plan"))
        ring_id = ring_of.get(pid)
        if ring_id is not None:
            if ring_id in seen_rings:
                out.append(
                    _err(
                        cp_path,
                        f"coordinated phases {seen_rings[ring_id]} and {pid} are both "
                        f"in ring {ring_id}: at most one per ring",
                    )
                )
            seen_rings[ring_id] = pid
    groups = {group[p] for p in coord.coord_phases if p in group}
    if len(groups) > 1:
        out.append(
            _err(
                cp_path,
                f"coordinated phases {list(coord.coord_phases)} are in different barrier groups",
            )
        )
    return out
