"""Modbus requests for a v2 profile: the fewest that cover each device's mapped objects.

Pure: from a :class:`~edgectl.cabinet.fieldmap.FieldProfile` a :class:`FieldPlan` knows, per
device, the read pass of a tick (:attr:`FieldPlan.reads`: one request per run of mapped
objects, merged across at most ``read_gap`` unmapped ones, never over a request's limit) and
the write pass (:meth:`FieldPlan.writes`: every mapped output, or only the runs that changed,
single changes as FC5 / FC6 where the unit takes them). Images — ``{address: value}`` per
(device, object type), bits as 0/1, registers as words on the wire — are what the requests
carry; :mod:`edgectl.cabinet.fieldcodec` turns them into the controller's snapshot and from
its frame.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from edgectl.cabinet.fieldmap import (
    Direction,
    FieldProfile,
    ObjectType,
    Placement,
    placements,
)

__all__ = [
    "FieldPlan",
    "Image",
    "ImageKey",
    "ReadRequest",
    "WriteRequest",
    "cover",
]

ImageKey = tuple[str, ObjectType]  # (device, object type)
Image = dict[int, int]  # address → bit (0/1) or register word

_READ_FC = {
    ObjectType.COIL: 1,
    ObjectType.DISCRETE_INPUT: 2,
    ObjectType.HOLDING_REGISTER: 3,
    ObjectType.INPUT_REGISTER: 4,
}


@dataclass(frozen=True, slots=True)
class ReadRequest:
    device: str
    otype: ObjectType
    address: int
    count: int

    @property
    def function(self) -> int:
        return _READ_FC[self.otype]


@dataclass(frozen=True, slots=True)
class WriteRequest:
    device: str
    otype: ObjectType
    address: int
    values: tuple[int, ...]
    single: bool = False  # FC5 / FC6 (one object) rather than FC15 / FC16

    @property
    def function(self) -> int:
        if self.otype is ObjectType.COIL:
            return 5 if self.single else 15
        return 6 if self.single else 16


def cover(spans: Iterable[tuple[int, int]], *, limit: int, gap: int = 0) -> list[tuple[int, int]]:
    """``(address, count)`` requests covering every address of the ``(address, end)``
    spans: the fewest, each at most ``limit`` objects, bridging at most ``gap`` unmapped
    objects at a time.

    Each request starts at the first address not yet covered and reaches as far as the
    limit and the holes allow, so the k-th request never ends left of any other cover's
    k-th: greedy is optimal. A run longer than ``limit`` is cut at the limit, so a 32-bit
    value may come in two requests of the same pass."""
    runs = _runs(a for lo, hi in spans for a in range(lo, hi))
    out: list[tuple[int, int]] = []
    start = end = -1
    for first, hi in runs:
        at = first
        while at < hi:
            if start >= 0 and at - end <= gap and at < start + limit:
                end = min(hi, start + limit)
            else:
                if start >= 0:
                    out.append((start, end - start))
                start, end = at, min(hi, at + limit)
            at = end
    if start >= 0:
        out.append((start, end - start))
    return out


def _runs(addresses: Iterable[int]) -> list[tuple[int, int]]:
    """Contiguous runs ``(address, end)`` of a set of addresses."""
    out: list[tuple[int, int]] = []
    for a in sorted(set(addresses)):
        if out and out[-1][1] == a:
            out[-1] = (out[-1][0], a + 1)
        else:
            out.append((a, a + 1))
    return out


class FieldPlan:
    """The request plan of one v2 profile (build it once; it is immutable)."""

    def __init__(self, profile: FieldProfile, *, only: Iterable[str] | None = None) -> None:
        """``only``: plan for these devices of the profile alone (a group of units that
        one field device task serves)."""
        self.profile = profile
        keep = None if only is None else set(only)
        self.placements: tuple[Placement, ...] = tuple(
            p for p in placements(profile) if keep is None or p.device in keep
        )
        self.inputs = tuple(p for p in self.placements if p.spec.direction is Direction.IN)
        self.outputs = tuple(
            p
            for p in self.placements
            if p.spec.direction is Direction.OUT and p.spec.kind != "command"
        )
        self.commands = tuple(p for p in self.placements if p.spec.kind == "command")
        self.devices = tuple(d.name for d in profile.devices if keep is None or d.name in keep)
        reads: list[ReadRequest] = []
        for dev in profile.devices:
            if dev.name not in self.devices:
                continue
            for otype in ObjectType:
                spans = [
                    (p.address, p.end)
                    for p in self.inputs
                    if p.device == dev.name and p.otype is otype
                ]
                limit = otype.max_read
                for address, count in cover(spans, limit=limit, gap=dev.read_gap):
                    reads.append(ReadRequest(dev.name, otype, address, count))
        self.reads: tuple[ReadRequest, ...] = tuple(reads)
        cells: dict[ImageKey, set[int]] = {}
        for p in self.outputs:
            cells.setdefault((p.device, p.otype), set()).update(a for a, _ in p.cells())
        self.output_cells: Mapping[ImageKey, frozenset[int]] = {
            k: frozenset(v) for k, v in cells.items()
        }

    def reads_of(self, device: str) -> tuple[ReadRequest, ...]:
        return tuple(r for r in self.reads if r.device == device)

    @property
    def readers(self) -> tuple[str, ...]:
        """Devices with something to read, in profile order."""
        return tuple(d for d in self.devices if any(r.device == d for r in self.reads))

    @property
    def writers(self) -> tuple[str, ...]:
        """Devices with outputs, in profile order."""
        return tuple(d for d in self.devices if any(k[0] == d for k in self.output_cells))

    def writes(
        self,
        image: Mapping[ImageKey, Mapping[int, int]],
        previous: Mapping[ImageKey, Mapping[int, int]] | None = None,
        *,
        full: Iterable[str] = (),
    ) -> list[WriteRequest]:
        """The write pass carrying ``image`` (every mapped output of each device).

        A device whose ``write`` is ``block``, or named in ``full``, or when ``previous``
        (what was last written) is None, gets all of its outputs; the others, per run of
        contiguous outputs, one request from its first change to its last (nothing when
        nothing changed): what changes together in a frame changes in one request."""
        everything = set(full)
        out: list[WriteRequest] = []
        for (device, otype), cells in sorted(self.output_cells.items()):
            dev = self.profile.device(device)
            values = image.get((device, otype), {})
            spans: list[tuple[int, int]] = []
            for lo, hi in _runs(cells):  # each run of mapped outputs
                if previous is None or dev.write == "block" or device in everything:
                    spans.append((lo, hi))
                    continue
                before = previous.get((device, otype), {})
                changed = [a for a in range(lo, hi) if values.get(a, 0) != before.get(a)]
                if changed:  # one request from the first change to the last: lamps that
                    # change together (red off, green on) change in the same instant
                    spans.append((changed[0], changed[-1] + 1))
            for lo, hi in spans:
                for address, count in cover([(lo, hi)], limit=otype.max_write):
                    vals = tuple(values.get(a, 0) for a in range(address, address + count))
                    single = count == 1 and dev.single_writes
                    out.append(WriteRequest(device, otype, address, vals, single))
        return out

    def reset_writes(self, *, release: bool = False) -> list[WriteRequest]:
        """The requests that reset the MMU (``mmu.reset``), in map order. On a coil the
        reset is a pulse: these requests set it, and ``release=True`` gives those that clear
        it again (the MMU acts on the rising edge)."""
        out: list[WriteRequest] = []
        for p in self.commands:
            dev = self.profile.device(p.device)
            if p.otype.is_bit:
                value = int(p.active_low) if release else int(not p.active_low)
                vals = tuple(value for _ in range(p.bits))
            elif release:
                continue
            else:
                vals = (p.value or 0,)
            single = len(vals) == 1 and dev.single_writes
            out.append(WriteRequest(p.device, p.otype, p.address, vals, single))
        return out
