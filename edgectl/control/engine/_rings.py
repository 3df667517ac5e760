"""The rings' interval state: the phase each ring times, its interval and pedestrian interval,
and the barrier group being served. Records only: the timing rules live in ``_phases``,
``_barrier``, ``_pedestrian`` and ``_preempt``."""

from __future__ import annotations

from edgectl.control.engine._layout import Layout
from edgectl.control.types import Interval, PedInterval, Termination

__all__ = ["Ring", "RingSet"]


class Ring:
    """One ring: the phase it times and the timestamps of its intervals."""

    __slots__ = (
        "bound_for",
        "group_phases",
        "id",
        "interval",
        "last_ext",
        "max_start",
        "min_done",
        "min_end",
        "next_phase",
        "ped",
        "ped_end",
        "ped_start",
        "phase",
        "ready",
        "seq",
        "served_idx",
        "start",
        "walk_end",
    )

    def __init__(
        self, ring_id: int, seq: tuple[int, ...], group_phases: tuple[tuple[int, ...], ...]
    ) -> None:
        self.id = ring_id
        self.seq = seq
        self.group_phases = group_phases  # per group, in sequence order
        self.phase: int | None = None
        self.interval = Interval.RED
        self.start = 0  # tick the current interval began
        self.min_end = 0  # green: first tick the phase may terminate
        self.min_done = False
        self.last_ext = 0  # green: last tick an extension was active
        self.max_start: int | None = None
        self.ped = PedInterval.DONT_WALK
        self.ped_start = 0
        self.walk_end = 0
        self.ped_end = 0
        self.ready: Termination | None = None  # green, ready to terminate at the barrier
        self.next_phase: int | None = None
        self.bound_for: int | None = None  # clearing: the phase expected next (overlaps)
        self.served_idx = -1  # index in seq of the last phase timed in this group pass


class RingSet:
    """Every ring of the intersection, the green phases and the barrier group in service."""

    __slots__ = ("_layout", "changed", "green", "green_since", "group", "ring_of", "rings")

    def __init__(self, layout: Layout) -> None:
        self._layout = layout
        self.rings = [
            Ring(ring_id, seq, layout.group_phases[ring_id]) for ring_id, seq in layout.ring_seqs
        ]
        by_id = {ring.id: ring for ring in reversed(self.rings)}
        self.ring_of: dict[int, Ring] = {p: by_id[r] for p, r in layout.ring_id_of.items()}
        self.group = 0  # the barrier group being served
        self.green: frozenset[int] = frozenset()
        self.green_since: dict[int, int] = {}  # green phase → tick its green began
        self.changed = True  # an interval changed since the channel frame was built

    def refresh_green(self) -> None:
        self.green_since = {
            r.phase: r.start
            for r in self.rings
            if r.phase is not None and r.interval is Interval.GREEN
        }
        self.green = frozenset(self.green_since)

    def walking(self) -> frozenset[int]:
        return frozenset(
            r.phase for r in self.rings if r.phase is not None and r.ped is PedInterval.WALK
        )

    def reachable(self, p: int) -> bool:
        """Can ``p`` still be served in this pass of the current group (no barrier)?"""
        ring = self.ring_of[p]
        layout = self._layout
        return layout.group_of[p] == self.group and layout.seq_idx[p] > ring.served_idx

    def reset(self, tick: int) -> None:
        """Every ring idle red from ``tick`` (flash, all-red)."""
        for ring in self.rings:
            ring.phase = None
            ring.interval = Interval.RED
            ring.ped = PedInterval.DONT_WALK
            ring.start = tick
            ring.ready = None
            ring.next_phase = None
            ring.bound_for = None
            ring.served_idx = -1
        self.refresh_green()
        self.changed = True
