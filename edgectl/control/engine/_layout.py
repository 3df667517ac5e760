"""The junction as the engine walks it: phases, rings, barrier groups and the conflict rule.

Built once per configuration and never changed. The conflict rule is the configuration's
(:class:`~edgectl.config.junction.ConflictMatrix`): two phases conflict when they are in the
same ring, in different barrier groups, or listed in ``conflict_overrides``; a phase that is
in no ring conflicts with every other.
"""

from __future__ import annotations

from edgectl.config.junction import ConflictMatrix, barrier_groups
from edgectl.config.model import Config, Phase

__all__ = ["Layout"]


class Layout:
    """Phases, rings and barrier groups of one intersection, with lookups used every tick."""

    __slots__ = (
        "group_of",
        "group_phases",
        "groups",
        "matrix",
        "ped_phases",
        "phase_cfg",
        "phase_ids",
        "ring_id_of",
        "ring_phases",
        "ring_seqs",
        "seq_idx",
    )

    def __init__(self, config: Config, matrix: ConflictMatrix | None = None) -> None:
        self.phase_ids = tuple(sorted(p.id for p in config.phases))
        self.phase_cfg: dict[int, Phase] = {p.id: p for p in config.phases}
        self.group_of = barrier_groups(config)
        n_groups = len(config.barriers)
        self.groups: tuple[frozenset[int], ...] = tuple(
            frozenset(p for p, g in self.group_of.items() if g == gi) for gi in range(n_groups)
        )
        self.ring_seqs = tuple((r.id, tuple(r.sequence)) for r in config.rings)
        self.ring_id_of: dict[int, int] = {}  # phase → the (first) ring that times it
        seq_of: dict[int, tuple[int, ...]] = {}
        for ring_id, seq in self.ring_seqs:
            for p in seq:
                self.ring_id_of.setdefault(p, ring_id)
                seq_of.setdefault(p, seq)
                self.group_of.setdefault(p, 0)  # (validation puts every phase in a group)
        # per ring: its phases of each barrier group, in sequence order
        self.group_phases: dict[int, tuple[tuple[int, ...], ...]] = {
            ring_id: tuple(
                tuple(p for p in seq if self.group_of[p] == gi) for gi in range(n_groups)
            )
            for ring_id, seq in self.ring_seqs
        }
        self.ring_phases = frozenset(self.ring_id_of)
        self.seq_idx = {p: seq.index(p) for p, seq in seq_of.items()}
        self.ped_phases = frozenset(
            p.id for p in config.phases if p.pedestrian and p.id in self.ring_id_of
        )
        self.matrix = ConflictMatrix.from_config(config) if matrix is None else matrix

    def phases_conflict(self, a: int, b: int) -> bool:
        """May ``a`` and ``b`` never time together? A phase in no ring conflicts with all."""
        if a not in self.ring_phases or b not in self.ring_phases:
            return a != b
        return self.matrix.phases_conflict(a, b)
