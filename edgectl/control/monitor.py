"""The software conflict monitor (SPEC §4): checks every output frame before it is written.

It reports conflicting channels non-red together, a green not followed by yellow, a short
yellow, a green or walk during a conflicting channel's red clearance, a walk not followed by a
full pedestrian clearance, ``Y→G``, and leaving flash other than through red. Channel states
``FR``, ``FY``, ``OFF``, ``R`` and ``DW`` count as red; ``G``, ``Y``, ``W`` and ``FDW`` as
non-red. Entering flash is always allowed (fault flash is immediate by design).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from edgectl.cabinet.channels import ChannelState
from edgectl.config.junction import ConflictMatrix
from edgectl.config.limits import MIN_YELLOW
from edgectl.config.model import ChannelSource, Config, PhaseTiming, Plan

__all__ = ["ConflictMonitor", "Violation"]

_EPS = 1e-3  # timing tolerance of the monitor (1 ms; ticks are 100 ms)
_FLASH = frozenset({ChannelState.FR, ChannelState.FY, ChannelState.OFF})
_RED = frozenset({ChannelState.R, ChannelState.DW}) | _FLASH
_RIGHT_OF_WAY = frozenset({ChannelState.G, ChannelState.W})


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
