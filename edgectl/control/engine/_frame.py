"""The channel frame: vehicle, pedestrian, overlap and flashing-yellow-arrow channels.

An overlap channel is green with a green parent and then times the clearance of the parent
that ends (:class:`Overlap`). It turns green only when none of the phases it conflicts with
is green, yellow or in red clearance, and while it is not idle red those phases may not start
(:meth:`ChannelFrame.blocked`). NEMA keeps it green through a change between two parents.
"""

from __future__ import annotations

from dataclasses import dataclass

from edgectl.cabinet.channels import ChannelState
from edgectl.config.model import Channel, ChannelSource, Config, FlashMode
from edgectl.control.engine._core import Core
from edgectl.control.engine._timing import MIN_YELLOW
from edgectl.control.types import Interval, OperatingState, PedInterval

__all__ = ["ChannelFrame", "Frame", "Overlap"]

Frame = tuple[tuple[int, ChannelState], ...]

_CARRY_IDLE_TICKS = 10  # an overlap waits this long for its next parent after a clearance

_SHOWN = {
    Interval.GREEN: ChannelState.G,
    Interval.YELLOW: ChannelState.Y,
    Interval.RED_CLEAR: ChannelState.R,
    Interval.RED: ChannelState.R,
}


@dataclass(slots=True)
class Overlap:
    """One overlap channel's own interval, and the clearance it times (of the parent that
    ended its green)."""

    interval: Interval = Interval.RED
    since: int = 0  # tick the interval began
    yellow: int = 0
    red_clear: int = 0


class ChannelFrame:
    """Builds each tick's channel states from the rings' intervals."""

    __slots__ = (
        "_all_red_frame",
        "_arrows",
        "_channels",
        "_flash_frame",
        "_frame",
        "_layout",
        "_overlap_conflicts",
        "_rings",
        "_status",
        "_timing",
        "overlaps",
    )

    def __init__(self, *, core: Core, config: Config) -> None:
        self._layout = layout = core.layout
        self._status = core.status
        self._timing = core.timing
        self._rings = core.rings
        self._channels: tuple[Channel, ...] = tuple(sorted(config.channels, key=lambda c: c.id))
        overlaps = [c for c in self._channels if c.source is ChannelSource.OVERLAP]
        self.overlaps: dict[int, Overlap] = {c.id: Overlap() for c in overlaps}
        self._overlap_conflicts: dict[int, frozenset[int]] = {
            c.id: frozenset(
                q
                for q in layout.ring_phases
                if q not in c.overlap_parents
                and any(layout.phases_conflict(q, parent) for parent in c.overlap_parents)
            )
            for c in overlaps
        }
        # flashing yellow arrows showing (FY, or the steady yellow that ends them)
        self._arrows: dict[int, bool] = {
            c.id: False
            for c in self._channels
            if c.permissive is not None and c.source is ChannelSource.VEHICLE
        }
        yellow_main = config.control.flash_mode is FlashMode.YELLOW_MAIN
        self._flash_frame: Frame = tuple(
            (c.id, self._flash_state(c, yellow_main)) for c in self._channels
        )
        self._all_red_frame: Frame = tuple(
            (c.id, ChannelState.DW if c.source is ChannelSource.PEDESTRIAN else ChannelState.R)
            for c in self._channels
        )
        self._frame = self._flash_frame

    def _flash_state(self, channel: Channel, yellow_main: bool) -> ChannelState:
        if channel.source is ChannelSource.PEDESTRIAN:
            return ChannelState.OFF
        if channel.source is ChannelSource.VEHICLE and yellow_main:
            cfg = self._layout.phase_cfg.get(channel.phase)
            if cfg is not None and cfg.main_street:
                return ChannelState.FY
        return ChannelState.FR

    def reset(self) -> None:
        """Every overlap idle red and no arrow showing (flash, all-red)."""
        for ov in self.overlaps.values():
            ov.interval = Interval.RED
        self._arrows = dict.fromkeys(self._arrows, False)

    def blocked(self, p: int) -> bool:
        """May ``p`` not start because a conflicting overlap is not yet clear?"""
        if not self.overlaps:
            return False
        return any(
            ov.interval is not Interval.RED and p in self._overlap_conflicts[ch]
            for ch, ov in self.overlaps.items()
        )

    def current(self, tick: int) -> Frame:
        """This tick's frame. Overlaps time their own clearances: rebuilt every tick; an arrow
        follows phase intervals only, and every interval change marks the rings changed."""
        if self._rings.changed or self.overlaps:
            self._frame = self._build(tick)
            self._rings.changed = False
        return self._frame

    def _build(self, tick: int) -> Frame:
        state = self._status.state
        if state is OperatingState.FLASH or state is OperatingState.STARTUP_FLASH:
            return self._flash_frame
        if state is OperatingState.ALL_RED:
            return self._all_red_frame
        out: list[tuple[int, ChannelState]] = []
        for c in self._channels:
            if c.source is ChannelSource.VEHICLE:
                if c.id in self._arrows:
                    out.append((c.id, self._arrow_state(c.id, c.phase, c.permissive)))
                else:
                    out.append((c.id, self._phase_state(c.phase)[0]))
            elif c.source is ChannelSource.PEDESTRIAN:
                out.append((c.id, self._phase_state(c.phase)[1]))
            else:
                out.append((c.id, self._overlap_state(c.id, c.overlap_parents, tick)))
        return tuple(out)

    def _phase_state(self, p: int) -> tuple[ChannelState, ChannelState]:
        ring = self._rings.ring_of.get(p)
        if ring is None or ring.phase != p:
            return ChannelState.R, ChannelState.DW
        iv = ring.interval
        if iv is Interval.GREEN:
            ped = ring.ped
            if ped is PedInterval.WALK:
                return ChannelState.G, ChannelState.W
            if ped is PedInterval.PED_CLEAR:
                return ChannelState.G, ChannelState.FDW
            return ChannelState.G, ChannelState.DW
        if iv is Interval.YELLOW:
            return ChannelState.Y, ChannelState.DW
        return ChannelState.R, ChannelState.DW

    def _overlap_state(self, ch_id: int, parents: tuple[int, ...], tick: int) -> ChannelState:
        """Overlap channel: G with a green parent, then the clearance of the parent that ends.
        Its yellow and red clearance are those of the terminating parent."""
        ov = self.overlaps[ch_id]
        times = self._timing.times
        parent_states = [(p, self._phase_state(p)[0]) for p in parents]
        any_green = any(st is ChannelState.G for _, st in parent_states)
        if ov.interval is Interval.GREEN and not any_green:
            if self._carried(parents, tick):
                return ChannelState.G  # one parent clears, another parent comes next
            # green → yellow, timed by the terminating parent
            ending = [p for p, st in parent_states if st is ChannelState.Y] or list(parents)
            ov.interval, ov.since = Interval.YELLOW, tick
            ov.yellow = max((times[p].yellow for p in ending), default=MIN_YELLOW)
            ov.red_clear = max((times[p].red_clear for p in ending), default=20)
        if ov.interval is Interval.YELLOW and tick - ov.since >= ov.yellow:
            ov.interval, ov.since = Interval.RED_CLEAR, tick
        if ov.interval is Interval.RED_CLEAR and tick - ov.since >= ov.red_clear:
            ov.interval = Interval.RED
        if ov.interval is Interval.RED and any_green and not self._overlap_conflict_active(ch_id):
            ov.interval, ov.since = Interval.GREEN, tick
        return _SHOWN[ov.interval]

    def _arrow_state(self, ch_id: int, phase: int, opposing: int | None) -> ChannelState:
        """A protected / permissive left: its own phase's G and Y; otherwise a flashing yellow
        arrow (FY, yield) while the opposing phase is green, ended by a steady yellow for the
        opposing phase's yellow. Validation keeps the opposing yellow and red clearance at
        least the arrow phase's, and keeps every phase that may time with the opposing one
        compatible with the arrow's."""
        own = self._phase_state(phase)[0]
        if own is not ChannelState.R or opposing is None:
            self._arrows[ch_id] = False
            return own
        opp = self._phase_state(opposing)[0]
        if opp is ChannelState.G:
            self._arrows[ch_id] = True
            return ChannelState.FY
        if opp is ChannelState.Y and self._arrows[ch_id]:
            return ChannelState.Y
        self._arrows[ch_id] = False
        return ChannelState.R

    def _carried(self, parents: tuple[int, ...], tick: int) -> bool:
        """A parent is in its yellow or red clearance (or its ring has just finished it) and
        that ring goes to another parent next: NEMA keeps an overlap green through a change
        between its parents."""
        if self._status.state is not OperatingState.NORMAL:
            return False
        ring_of = self._rings.ring_of
        for p in parents:
            ring = ring_of.get(p)
            if ring is None:
                continue
            if ring.phase == p and ring.interval in (Interval.YELLOW, Interval.RED_CLEAR):
                if ring.next_phase in parents or ring.bound_for in parents:
                    return True
            elif (
                ring.phase is None
                and ring.interval is Interval.RED
                and ring.bound_for in parents
                and tick - ring.start < _CARRY_IDLE_TICKS
            ):
                return True  # the barrier is being crossed into the next parent
        return False

    def _overlap_conflict_active(self, ch_id: int) -> bool:
        ring_of = self._rings.ring_of
        for q in self._overlap_conflicts[ch_id]:
            ring = ring_of.get(q)
            if ring is not None and ring.phase == q and ring.interval is not Interval.RED:
                return True
        return False
