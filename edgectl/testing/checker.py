"""An independent safety checker for signal timelines (a product: ``edgectl.testing``).

It shares no logic with :mod:`edgectl.control.monitor` or :mod:`edgectl.config.junction`:
conflicts are derived here from the rings and barriers (or given as an explicit list of
channel pairs, e.g. the ``conflicts`` of a ``firmware-sim --summary``), and every rule is
re-implemented from SPEC §4. It checks

channel timelines (:class:`ChannelChecker`, :func:`check_record`, :func:`check_timeline`)
    ``conflict``            two conflicting channels non-red at once (FR/FY/OFF/R/DW are red)
    ``green_not_to_yellow`` a green followed by anything but yellow (or flash)
    ``yellow_to_green``     ``Y→G``
    ``short_yellow``        a yellow shorter than its minimum (at ``Y→R``)
    ``short_red_clear``     a green/walk while a conflicting channel's red clearance runs
    ``walk_not_to_ped_clear`` a walk not followed by a flashing don't walk
    ``short_ped_clear``     a flashing don't walk shorter than its minimum
    ``flash_exit_not_red``  leaving flash (FR/FY/OFF) straight to G/Y/W/FDW (or to a
                            flashing yellow arrow)

flashing yellow arrows (``permissive``: a left-turn channel showing FY, a permissive movement,
while the phase it yields to is green; outside a frame of flash states only, such an FY is a
right of way)
    ``conflict``            an arrow beside a conflicting non-red channel it does not yield to
    ``permissive_without_opposing_green`` an arrow while no channel it yields to is green
    ``permissive_not_to_yellow`` an arrow followed by anything but a yellow (or flash)
    ``yellow_to_permissive`` ``Y→FY`` on an arrow channel
    ``short_red_clear``     an arrow starting in a conflicting channel's red clearance

phase behaviour from the controller's ``Outputs`` (:class:`PhaseChecker`)
    ``min_green_truncated`` a green shorter than its min green (under preemption: shorter than
                            ``control.preempt_min_green``); greens cut by flash are exempt
    ``max_green_exceeded``  in the ``max_modes`` (default: actuated) with no hold, no
                            preemption: a green running past max green (max1, or max2 when
                            requested) counted from the start of continuous serviceable
                            conflicting demand, beyond the allowances below
    ``phase_starved``       a called, non-omitted phase waiting longer than ``starvation_bound_s``
                            while the junction runs normally (not in flash, preemption, manual
                            mode or under a hold; the wait restarts on a mode or plan change)

Allowances of the max-green check (each justified by NEMA/NTCIP 1202 operation): a green always
may run its minimum (min green, the variable initial up to ``max_initial``, walk + ped clear);
a phase whose only waiting conflicting demand is across the barrier stays green while another
ring still times a phase of the same barrier group (simultaneous gap-out / barrier crossing);
one tick of measurement slack (``tolerance``).

Entering flash is always allowed (fault flash is immediate by design); FR/FY frames are not
checked for conflicts.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from edgectl.cabinet.channels import ChannelState
from edgectl.config.model import ChannelSource, Config, Mode, Plan
from edgectl.control.types import Interval, OperatingState, Outputs, Requests

__all__ = [
    "ChannelChecker",
    "ChannelMinimums",
    "Finding",
    "PhaseChecker",
    "SafetyChecker",
    "channel_minimums",
    "check_record",
    "check_timeline",
    "derive_channel_conflicts",
    "derive_phase_conflicts",
    "permissive_channels",
    "read_record",
]

_S = ChannelState
_NON_RED = frozenset({_S.G, _S.Y, _S.W, _S.FDW})
_FLASHING = frozenset({_S.FR, _S.FY, _S.OFF})
_GO = frozenset({_S.G, _S.W})


@dataclass(frozen=True, slots=True)
class Finding:
    """One violation found in a timeline."""

    t: float
    kind: str
    channels: tuple[int, ...] = ()
    phases: tuple[int, ...] = ()
    detail: str = ""

    def __str__(self) -> str:
        who = []
        if self.channels:
            who.append("channels " + ",".join(map(str, self.channels)))
        if self.phases:
            who.append("phases " + ",".join(map(str, self.phases)))
        return f"t={self.t:.1f}s {self.kind} [{'; '.join(who)}]: {self.detail}"


# --------------------------------------------------------------------------- conflicts


def derive_phase_conflicts(config: Config) -> frozenset[frozenset[int]]:
    """Phase pairs that may never be non-red together, derived from rings and barriers.

    Compatible = same barrier group and different rings, unless overridden; everything else
    (same ring, other group, a phase without a ring or group) conflicts.
    """
    ring_members = [frozenset(r.sequence) for r in config.rings]
    group_members = [frozenset(b.phases) for b in config.barriers]
    ids = sorted({p.id for p in config.phases}.union(*ring_members))
    overrides = {frozenset(pair) for pair in config.conflict_overrides}
    out: set[frozenset[int]] = set()
    for i, a in enumerate(ids):
        for b in ids[i + 1 :]:
            pair = frozenset((a, b))
            together_group = any(pair <= g for g in group_members)
            shared_ring = any(pair <= r for r in ring_members)
            in_ring = any(a in r for r in ring_members) and any(b in r for r in ring_members)
            compatible = together_group and in_ring and not shared_ring
            if not compatible or pair in overrides:
                out.add(pair)
    return frozenset(out)


def _driving_phases(config: Config) -> dict[int, frozenset[int]]:
    out: dict[int, frozenset[int]] = {}
    for ch in config.channels:
        if ch.source == ChannelSource.OVERLAP and ch.overlap_parents:
            out[ch.id] = frozenset(ch.overlap_parents)
        else:
            out[ch.id] = frozenset((ch.phase,))
    return out


def derive_channel_conflicts(config: Config) -> frozenset[tuple[int, int]]:
    """Channel pairs ``(a, b)``, ``a < b``, that may never be non-red together."""
    phase_conflicts = derive_phase_conflicts(config)
    driving = _driving_phases(config)
    out: set[tuple[int, int]] = set()
    channels = sorted(driving)
    for i, a in enumerate(channels):
        for b in channels[i + 1 :]:
            pa, pb = driving[a], driving[b]
            # both may be non-red only in a state where a phase of each is timing: a shared
            # phase or two phases without a conflict between them
            if not any(x == y or frozenset((x, y)) not in phase_conflicts for x in pa for y in pb):
                out.add((a, b))
    return frozenset(out)


def permissive_channels(config: Config) -> dict[int, frozenset[int]]:
    """Flashing yellow arrow channel → the channels of the phase whose traffic it yields to."""
    driving = _driving_phases(config)
    return {
        ch.id: frozenset(c for c, ps in driving.items() if ps == {ch.permissive})
        for ch in config.channels
        if ch.permissive is not None and ch.source == ChannelSource.VEHICLE
    }


@dataclass(frozen=True, slots=True)
class ChannelMinimums:
    """Per-channel minimum durations (s)."""

    yellow: Mapping[int, float]
    red_clear: Mapping[int, float]
    ped_clear: Mapping[int, float]


def channel_minimums(config: Config, plan: Plan) -> ChannelMinimums:
    """The minimum yellow / red clearance / ped clearance of each channel under ``plan``."""
    yellow: dict[int, float] = {}
    red: dict[int, float] = {}
    ped: dict[int, float] = {}
    for ch, phases in _driving_phases(config).items():
        timings = [plan.timing[p] for p in phases if p in plan.timing]
        if not timings:
            continue
        yellow[ch] = min(t.yellow for t in timings)
        red[ch] = min(t.red_clear for t in timings)
        ped[ch] = min(t.ped_clear for t in timings)
    return ChannelMinimums(yellow, red, ped)


# --------------------------------------------------------------------------- channel timelines


@dataclass(slots=True)
class _Channel:
    state: ChannelState
    since: float
    need: float = 0.0  # minimum of the running interval (yellow / ped clear) when it began
    red_from: float | None = None  # end of the last yellow
    red_need: float = 0.0
    arrow: bool = False  # a flashing yellow arrow showing a permissive movement
    arrow_end: bool = False  # the steady yellow that ends one


class ChannelChecker:
    """Checks a timeline of channel frames, fed in time order (one call per frame or change).

    ``conflicts`` are channel pairs; the minimum maps are per channel (a missing channel has
    no minimum). A frame may be partial: channels it does not mention keep their state; a
    channel never seen is dark (OFF). ``tolerance`` absorbs measurement jitter (s).
    """

    def __init__(
        self,
        conflicts: Iterable[tuple[int, int]],
        min_yellow: Mapping[int, float],
        min_red_clear: Mapping[int, float],
        min_ped_clear: Mapping[int, float] | None = None,
        *,
        tolerance: float = 1e-3,
        permissive: Mapping[int, Iterable[int]] | None = None,
    ) -> None:
        # flashing yellow arrows: channel → the channels whose traffic it yields to
        self._yields = {ch: frozenset(to) for ch, to in (permissive or {}).items()}
        self._partners: dict[int, set[int]] = {}
        for a, b in conflicts:
            if a == b:
                continue
            self._partners.setdefault(a, set()).add(b)
            self._partners.setdefault(b, set()).add(a)
        self._pairs = sorted({(min(a, b), max(a, b)) for a, b in conflicts if a != b})
        self._tol = tolerance
        self._channels: dict[int, _Channel] = {}
        self.set_minimums(min_yellow, min_red_clear, min_ped_clear)

    def set_minimums(
        self,
        min_yellow: Mapping[int, float],
        min_red_clear: Mapping[int, float],
        min_ped_clear: Mapping[int, float] | None = None,
    ) -> None:
        """New minimums (a plan change); intervals already running keep the smaller one."""
        self._yellow = dict(min_yellow)
        self._red = dict(min_red_clear)
        self._ped = dict(min_ped_clear or {})

    def state(self, channel: int) -> ChannelState:
        track = self._channels.get(channel)
        return _S.OFF if track is None else track.state

    def feed(self, t: float, frame: Mapping[int, ChannelState]) -> list[Finding]:
        """Apply the states in ``frame`` at time ``t`` and check the result."""
        findings: list[Finding] = []
        after = {ch: tr.state for ch, tr in self._channels.items()}
        after.update((ch, _S(st)) for ch, st in frame.items())
        # FY on an arrow channel outside the controller's own flash: a permissive movement
        flash = all(st in _FLASHING for st in after.values())
        arrows = frozenset(ch for ch in self._yields if not flash and after.get(ch) == _S.FY)
        # ... and the steady yellows ending one (no conflict with the phase yielded to)
        ending = set()
        for ch in self._yields:
            tr = self._channels.get(ch)
            if (
                tr is not None
                and after.get(ch) == _S.Y
                and ((tr.state == _S.FY and tr.arrow) or (tr.state == _S.Y and tr.arrow_end))
            ):
                ending.add(ch)
        # red first: a yellow ending in the frame a conflicting green starts is a red clearance
        # of zero, whatever the channel numbers
        for ch in sorted(frame, key=lambda c: (frame[c] in _NON_RED or c in arrows, c)):
            new = _S(frame[ch])
            track = self._channels.get(ch)
            if track is None:
                self._channels[ch] = _Channel(new, t, self._need_for(ch, new))
                self._channels[ch].arrow = ch in arrows
                continue
            if new == track.state:
                track.arrow = ch in arrows
                continue
            findings += self._change(t, ch, track, new, arrow=ch in arrows)
        yielding = arrows | ending
        for a, b in self._pairs:
            if (a in yielding and b in self._yields[a]) or (b in yielding and a in self._yields[b]):
                continue
            sa, sb = self.state(a), self.state(b)
            on_a = sa in _NON_RED or (a in arrows and b not in self._yields[a])
            on_b = sb in _NON_RED or (b in arrows and a not in self._yields[b])
            if on_a and on_b:
                findings.append(
                    Finding(t, "conflict", (a, b), detail=f"{a}={sa.name} with {b}={sb.name}")
                )
        for ch in sorted(arrows):
            if all(self.state(o) != _S.G for o in self._yields[ch]):
                findings.append(
                    Finding(
                        t,
                        "permissive_without_opposing_green",
                        (ch,),
                        detail=f"{ch} flashes a yellow arrow with nothing green to yield to",
                    )
                )
        return findings

    def _need_for(self, ch: int, state: ChannelState) -> float:
        if state == _S.Y:
            return self._yellow.get(ch, 0.0)
        if state == _S.FDW:
            return self._ped.get(ch, 0.0)
        return 0.0

    def _change(
        self, t: float, ch: int, track: _Channel, new: ChannelState, *, arrow: bool = False
    ) -> list[Finding]:
        old, lasted = track.state, t - track.since
        out: list[Finding] = []
        if track.arrow and new not in (_S.Y, _S.FR, _S.OFF):
            out.append(Finding(t, "permissive_not_to_yellow", (ch,), detail=f"FY→{new.name}"))
        if arrow:
            if old == _S.Y:
                out.append(Finding(t, "yellow_to_permissive", (ch,), detail="Y→FY"))
            if old in _FLASHING:
                out.append(Finding(t, "flash_exit_not_red", (ch,), detail=f"{old.name}→FY"))
            if old not in _GO:
                out += self._red_clearance(t, ch, new, skip=self._yields[ch])
        if new not in _FLASHING:
            if old in _FLASHING and new in _NON_RED and not track.arrow:
                out.append(Finding(t, "flash_exit_not_red", (ch,), detail=f"{old.name}→{new.name}"))
            if old == _S.G and new != _S.Y:
                out.append(Finding(t, "green_not_to_yellow", (ch,), detail=f"G→{new.name}"))
            if old == _S.Y and new == _S.G:
                out.append(Finding(t, "yellow_to_green", (ch,), detail="Y→G"))
            if old == _S.Y and new != _S.G:
                need = min(track.need, self._yellow.get(ch, track.need))
                if lasted < need - self._tol:
                    out.append(
                        Finding(
                            t,
                            "short_yellow",
                            (ch,),
                            detail=f"yellow lasted {lasted:.2f} s, minimum {need:.2f} s",
                        )
                    )
            if old == _S.W and new != _S.FDW:
                out.append(Finding(t, "walk_not_to_ped_clear", (ch,), detail=f"W→{new.name}"))
            if old == _S.FDW:
                need = min(track.need, self._ped.get(ch, track.need))
                if lasted < need - self._tol:
                    out.append(
                        Finding(
                            t,
                            "short_ped_clear",
                            (ch,),
                            detail=f"ped clearance lasted {lasted:.2f} s, minimum {need:.2f} s",
                        )
                    )
            if new in _GO and old not in _GO:
                out += self._red_clearance(t, ch, new)
        # bookkeeping
        if old == _S.Y and new == _S.R:
            track.red_from = t
            track.red_need = self._red.get(ch, 0.0)
        elif new in _NON_RED or arrow:
            track.red_from = None
        track.state = new
        track.since = t
        track.need = self._need_for(ch, new)
        track.arrow_end = new == _S.Y and track.arrow
        track.arrow = arrow
        return out

    def _red_clearance(
        self, t: float, ch: int, new: ChannelState, skip: frozenset[int] = frozenset()
    ) -> list[Finding]:
        out: list[Finding] = []
        for other in sorted(self._partners.get(ch, set()) - skip):
            track = self._channels.get(other)
            if track is None or track.red_from is None or track.state in _FLASHING:
                continue
            need = min(track.red_need, self._red.get(other, track.red_need))
            red = t - track.red_from
            if red < need - self._tol:
                out.append(
                    Finding(
                        t,
                        "short_red_clear",
                        (ch, other),
                        detail=f"{ch} turned {new.name} {red:.2f} s after {other} turned red "
                        f"(red clearance {need:.2f} s)",
                    )
                )
        return out


def check_timeline(
    frames: Iterable[tuple[float, Mapping[int, ChannelState]]],
    conflicts: Iterable[tuple[int, int]],
    min_yellow: Mapping[int, float],
    min_red_clear: Mapping[int, float],
    min_ped_clear: Mapping[int, float] | None = None,
    *,
    tolerance: float = 1e-3,
) -> list[Finding]:
    """Check ``(t, frame)`` pairs in time order; frames may be full or partial."""
    checker = ChannelChecker(
        conflicts, min_yellow, min_red_clear, min_ped_clear, tolerance=tolerance
    )
    findings: list[Finding] = []
    for t, frame in frames:
        findings += checker.feed(t, frame)
    return findings


def _parse_state(text: str) -> ChannelState:
    value = text.strip()
    if value.isdigit():
        return ChannelState(int(value))
    return ChannelState[value.upper()]


def read_record(
    path_or_rows: str | Path | Iterable[Sequence[str] | Mapping[str, str]],
) -> list[tuple[float, int, ChannelState]]:
    """Rows of a ``time_s,channel,state`` record (a CSV file, or rows as lists or dicts).

    States are names (``G``, ``FDW``) or register values (``3``); a header row is skipped.
    Raises :class:`ValueError` naming the row of a malformed record.
    """
    rows: Iterable[Sequence[str] | Mapping[str, str]]
    if isinstance(path_or_rows, str | Path):
        with Path(path_or_rows).open(newline="", encoding="utf-8") as handle:
            rows = list(csv.reader(handle))
    else:
        rows = path_or_rows
    out: list[tuple[float, int, ChannelState]] = []
    for number, row in enumerate(rows, start=1):
        if isinstance(row, Mapping):
            cells = [str(row["time_s"]), str(row["channel"]), str(row["state"])]
        else:
            cells = [str(c) for c in row]
        if not cells or all(not c.strip() for c in cells):
            continue
        if number == 1 and cells[0].strip() == "time_s":
            continue
        if len(cells) != 3:
            raise ValueError(f"record row {number}: expected time_s,channel,state, got {cells}")
        try:
            t = float(cells[0])
            channel = int(cells[1])
            state = _parse_state(cells[2])
        except (ValueError, KeyError) as exc:
            raise ValueError(f"record row {number}: {cells}: {exc}") from exc
        if not math.isfinite(t):
            raise ValueError(f"record row {number}: time {cells[0]!r} is not finite")
        out.append((t, channel, state))
    return out


def check_record(
    path_or_rows: str | Path | Iterable[Sequence[str] | Mapping[str, str]],
    conflicts: Iterable[tuple[int, int]],
    min_yellow: Mapping[int, float],
    min_red_clear: Mapping[int, float],
    min_ped_clear: Mapping[int, float] | None = None,
    *,
    tolerance: float = 1e-3,
    permissive: Mapping[int, Iterable[int]] | None = None,
) -> list[Finding]:
    """Check a change record (``time_s,channel,state``, e.g. ``firmware-sim --record``).

    Rows with the same time form one frame (they happened together); rows must be in time
    order (a row going back in time is a finding ``record_out_of_order``). ``permissive``:
    flashing yellow arrow channel → the channels it yields to (:func:`permissive_channels`,
    or the ``fya`` of a ``firmware-sim --summary``); without it an FY is never a right of way.
    """
    rows = read_record(path_or_rows)
    checker = ChannelChecker(
        conflicts,
        min_yellow,
        min_red_clear,
        min_ped_clear,
        tolerance=tolerance,
        permissive=permissive,
    )
    findings: list[Finding] = []
    frame: dict[int, ChannelState] = {}
    current: float | None = None
    for t, channel, state in rows:
        if current is not None and t < current:
            findings.append(
                Finding(t, "record_out_of_order", (channel,), detail=f"{t} after {current}")
            )
            continue
        if current is not None and t != current:
            findings += checker.feed(current, frame)
            frame = {}
        current = t
        frame[channel] = state
    if current is not None:
        findings += checker.feed(current, frame)
    return findings


# --------------------------------------------------------------------------- phase behaviour


@dataclass(slots=True)
class _Green:
    phase: int
    ring_index: int
    start: float
    min_need: float  # smallest min green of the plans seen during this green
    preempted: bool = False
    max_exempt: bool = False
    max_from: float | None = None
    max_limit: float = 0.0  # largest max green of the plans seen
    floor: float = 0.0  # the minimum a green may always run (min, initial, ped)
    reported_max: bool = False


@dataclass(slots=True)
class _Wait:
    since: float
    reported: bool = False


@dataclass(slots=True)
class _Layout:
    group: dict[int, int] = field(default_factory=dict)
    ring: dict[int, int] = field(default_factory=dict)
    conflicts: dict[int, frozenset[int]] = field(default_factory=dict)
    later: dict[int, frozenset[int]] = field(default_factory=dict)  # same ring+group, after it


class PhaseChecker:
    """Checks phase behaviour from the controller's :class:`Outputs`, one call per tick.

    ``feed(outputs, requests)`` takes the operator requests given to that tick (holds exempt a
    phase from the max-green check and suspend the starvation check; omits make a call
    unserviceable).
    """

    def __init__(
        self,
        config: Config,
        *,
        max_modes: Iterable[Mode] = (Mode.ACTUATED,),
        starvation_bound_s: float | None = None,
        tolerance: float = 0.25,
    ) -> None:
        self._config = config
        self._plans = {p.id: p for p in config.plans}
        self._max_modes = frozenset(max_modes)
        self._tol = tolerance
        self._layout = _Layout()
        for index, barrier in enumerate(config.barriers):
            for p in barrier.phases:
                self._layout.group.setdefault(p, index)
        for ring in config.rings:
            for i, p in enumerate(ring.sequence):
                self._layout.ring[p] = ring.id
                group = self._layout.group.get(p)
                self._layout.later[p] = frozenset(
                    q for q in ring.sequence[i + 1 :] if self._layout.group.get(q) == group
                )
        conflicts = derive_phase_conflicts(config)
        for p in self._layout.ring:
            self._layout.conflicts[p] = frozenset(
                q for q in self._layout.ring if frozenset((p, q)) in conflicts
            )
        self._pedestrian = {p.id for p in config.phases if p.pedestrian}
        self._bound = (
            starvation_bound_s if starvation_bound_s is not None else self._default_bound()
        )
        self._greens: dict[int, _Green] = {}  # ring index → current green
        self._waits: dict[int, _Wait] = {}
        self._last_mode: Mode | None = None
        self._last_plan: int | None = None

    @property
    def starvation_bound_s(self) -> float:
        return self._bound

    def _default_bound(self) -> float:
        """Two full rounds of every phase at its longest, plus a coordinated transition."""
        worst = 0.0
        for plan in self._config.plans:
            total = 0.0
            for t in plan.timing.values():
                green = max(t.min_green, t.max1, t.max2 or 0.0, t.walk + t.ped_clear, t.max_initial)
                total += green + t.yellow + t.red_clear
            cycle = plan.coordination.cycle if plan.coordination else 0.0
            worst = max(worst, 2.0 * total + 3.0 * cycle)
        control = self._config.control
        return worst + control.startup_all_red + 10.0

    def _plan(self, out: Outputs) -> Plan | None:
        return self._plans.get(out.plan)

    def feed(
        self,
        out: Outputs,
        requests: Requests | None = None,
        *,
        operator: Requests | None = None,
    ) -> list[Finding]:
        """Check one tick.

        ``requests`` are all the requests the engine was given that tick (strategy and
        operator): a hold exempts that green from the max-green check, an omit makes calls
        unserviceable. ``operator`` are the operator's alone (default: ``requests``): their
        holds suspend the starvation check (a strategy's holds do not: a strategy must not
        starve a phase).
        """
        req = requests or Requests()
        op = req if operator is None else operator
        findings: list[Finding] = []
        plan = self._plan(out)
        changed = out.mode != self._last_mode or out.plan != self._last_plan
        self._last_mode, self._last_plan = out.mode, out.plan
        omitted = set(req.omit) | set(op.omit)
        if plan is not None:
            omitted |= {p for p, t in plan.timing.items() if t.omit}
        findings += self._greens_tick(out, req, plan, omitted)
        findings += self._starvation_tick(out, op, omitted, reset=changed)
        return findings

    # -- greens: min green and max green

    def _greens_tick(
        self, out: Outputs, req: Requests, plan: Plan | None, omitted: set[int]
    ) -> list[Finding]:
        findings: list[Finding] = []
        normal = out.state == OperatingState.NORMAL
        flashing = out.state in (OperatingState.FLASH, OperatingState.STARTUP_FLASH)
        green_now: dict[int, int] = {}
        for index, ring in enumerate(out.rings):
            if ring.phase is not None and ring.interval == Interval.GREEN:
                green_now[index] = ring.phase
        # greens that ended
        for index, ended in list(self._greens.items()):
            if green_now.get(index) == ended.phase:
                continue
            del self._greens[index]
            if flashing:
                continue  # cut by flash: allowed
            need = ended.min_need
            if ended.preempted:
                need = min(need, self._config.control.preempt_min_green)
            lasted = out.t - ended.start
            if lasted < need - self._tol:
                findings.append(
                    Finding(
                        out.t,
                        "min_green_truncated",
                        phases=(ended.phase,),
                        detail=f"green lasted {lasted:.2f} s, minimum {need:.2f} s"
                        + (" (preempted)" if ended.preempted else ""),
                    )
                )
        # greens that run: update their timers, then judge them together (barrier waits
        # depend on what the other rings are doing)
        over: dict[int, bool] = {}
        demands: dict[int, frozenset[int]] = {}
        for index, phase in green_now.items():
            green = self._greens.get(index)
            timing = plan.timing.get(phase) if plan is not None else None
            if green is None:
                green = _Green(phase, index, out.t, timing.min_green if timing else 0.0)
                self._greens[index] = green
            if timing is not None:
                green.min_need = min(green.min_need, timing.min_green)
                max_green = timing.max2 if req.max2 and timing.max2 is not None else timing.max1
                green.max_limit = max(green.max_limit, max_green)
                floor = timing.min_green
                if timing.added_initial > 0:
                    floor = max(floor, timing.max_initial)
                if phase in self._pedestrian:
                    floor = max(floor, timing.walk + timing.ped_clear)
                green.floor = max(green.floor, floor)
            if out.state == OperatingState.PREEMPT:
                green.preempted = True
            if (
                not normal
                or out.mode not in self._max_modes
                or phase in req.hold
                or green.preempted
            ):
                green.max_exempt = True
            if green.max_exempt:
                over[index] = False
                continue
            demand = self._demand(out, req, omitted) & self._layout.conflicts.get(
                phase, frozenset()
            )
            demands[index] = demand
            if not demand:
                green.max_from = None
                over[index] = False
                continue
            if green.max_from is None:
                green.max_from = out.t
            over_max = out.t - green.max_from > green.max_limit + self._tol
            over_floor = out.t - green.start > green.floor + self._tol
            over[index] = over_max and over_floor
        for index, is_over in over.items():
            green = self._greens[index]
            if not is_over or green.reported_max or green.max_from is None:
                continue
            demand = demands[index]
            if self._barrier_wait(out, index, green.phase, demand, over=over, req=req):
                continue
            green.reported_max = True
            findings.append(
                Finding(
                    out.t,
                    "max_green_exceeded",
                    phases=(green.phase,),
                    detail=f"green for {out.t - green.start:.2f} s, conflicting demand "
                    f"{sorted(demand)} for {out.t - green.max_from:.2f} s, max green "
                    f"{green.max_limit:.2f} s",
                )
            )
        return findings

    def _demand(self, out: Outputs, req: Requests, omitted: set[int]) -> frozenset[int]:
        ped = {p for p in out.ped_calls if p not in req.ped_omit}
        return frozenset((set(out.calls) | ped) - omitted)

    def _barrier_wait(
        self,
        out: Outputs,
        index: int,
        phase: int,
        demand: frozenset[int],
        *,
        over: Mapping[int, bool],
        req: Requests,
    ) -> bool:
        """Is ``phase`` legitimately waiting at the barrier for another ring?

        Only when none of its waiting demand can be served in its ring before the barrier
        (phases after it in the ring sequence, same group, or a requested next phase there)
        and another ring still times
        a phase of the same group that is itself within its limits (or already clearing).
        """
        group = self._layout.group.get(phase)
        ring = self._layout.ring.get(phase)
        later = self._layout.later.get(phase, frozenset())
        within = {q for q in demand if q in later}
        if ring is not None and ring in req.next_phase:
            wanted = req.next_phase[ring]
            if wanted in demand and self._layout.group.get(wanted) == group:
                within.add(wanted)
        if within:
            return False
        for other_index, status in enumerate(out.rings):
            if other_index == index or status.phase is None:
                continue
            if self._layout.group.get(status.phase) != group:
                continue
            if status.interval in (Interval.YELLOW, Interval.RED_CLEAR):
                return True
            if status.interval == Interval.GREEN and not over.get(other_index, False):
                return True
        return False

    # -- starvation

    def _starvation_tick(
        self, out: Outputs, req: Requests, omitted: set[int], *, reset: bool
    ) -> list[Finding]:
        suspended = (
            reset
            or out.state != OperatingState.NORMAL
            or out.mode in (Mode.MANUAL, Mode.FLASH)
            or bool(req.hold)
        )
        if suspended:
            self._waits.clear()
            return []
        findings: list[Finding] = []
        serving = {
            r.phase for r in out.rings if r.phase is not None and r.interval == Interval.GREEN
        }
        called = self._demand(out, req, omitted) & frozenset(self._layout.ring)
        for phase in list(self._waits):
            if phase not in called or phase in serving:
                del self._waits[phase]
        for phase in called - serving:
            wait = self._waits.setdefault(phase, _Wait(out.t))
            if not wait.reported and out.t - wait.since > self._bound:
                wait.reported = True
                findings.append(
                    Finding(
                        out.t,
                        "phase_starved",
                        phases=(phase,),
                        detail=f"called for {out.t - wait.since:.1f} s without service "
                        f"(bound {self._bound:.1f} s)",
                    )
                )
        return findings


# --------------------------------------------------------------------------- both


class SafetyChecker:
    """Channel and phase checks of a controller's :class:`Outputs`, one call per tick.

    Conflicts and minimums are derived independently from ``config``; minimums follow the
    plan each output reports.
    """

    def __init__(
        self,
        config: Config,
        *,
        max_modes: Iterable[Mode] = (Mode.ACTUATED,),
        starvation_bound_s: float | None = None,
    ) -> None:
        self._config = config
        self._plans = {p.id: p for p in config.plans}
        self.conflicts = derive_channel_conflicts(config)
        self._plan_id = config.control.plan
        first = self._plans.get(self._plan_id) or config.plans[0]
        m = channel_minimums(config, first)
        self.channels = ChannelChecker(
            self.conflicts,
            m.yellow,
            m.red_clear,
            m.ped_clear,
            permissive=permissive_channels(config),
        )
        self.phases = PhaseChecker(
            config, max_modes=max_modes, starvation_bound_s=starvation_bound_s
        )

    def feed(
        self,
        out: Outputs,
        requests: Requests | None = None,
        *,
        operator: Requests | None = None,
    ) -> list[Finding]:
        """Check one tick; see :meth:`PhaseChecker.feed` for the requests."""
        if out.plan != self._plan_id and out.plan in self._plans:
            self._plan_id = out.plan
            m = channel_minimums(self._config, self._plans[out.plan])
            self.channels.set_minimums(m.yellow, m.red_clear, m.ped_clear)
        findings = self.channels.feed(out.t, dict(out.channels))
        findings += self.phases.feed(out, requests, operator=operator)
        return findings
