"""The junction's layout as the safety rules see it: barrier groups and the conflict matrix.

Two phases conflict when they are different phases of the same ring, or in different barrier
groups, or listed in ``conflict_overrides``. A vehicle and a pedestrian channel of the same
phase do not conflict; two channels conflict when no legitimate state shows both: an overlap
channel is green with any of its parents, so it conflicts with a channel only when every one
of its parents conflicts with every phase driving that channel (two overlaps that share a
parent never conflict).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from edgectl.config.model import ChannelSource, Config

__all__ = ["ConflictMatrix", "barrier_groups"]


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
