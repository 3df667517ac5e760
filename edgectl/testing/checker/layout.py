"""Conflicts and minimums derived from a configuration, independently of the kernel.

Nothing here comes from :mod:`edgectl.config.junction`: the rule is re-implemented from the
rings and barriers (SPEC §4) so that a mistake there is not repeated here.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from edgectl.config.model import ChannelSource, Config, Plan

__all__ = [
    "ChannelMinimums",
    "channel_minimums",
    "derive_channel_conflicts",
    "derive_phase_conflicts",
    "permissive_channels",
]


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
