"""The strategy seam: what a strategy sees (:class:`View`) and what it may do (request).

A strategy is any object with ``requests(view) -> Requests``. It is asked once per tick,
*before* the engine steps, and may only request (calls, hold, force-off, omit, next phase,
max 2); the engine decides when, if ever, a request is safe to honour. Strategies are pure and
deterministic: their only input is the view, their only output the requests.

:class:`View` is a live, read-only window onto the controller (the same object every tick,
updated in place: read it during ``requests`` and do not keep it). It is what ``maxpressure``
and ``adaptive`` read:

========================  ==================================================================
``t``                      controller time (s) of the tick being decided
``last``                   the previous tick's :class:`~edgectl.control.types.Outputs` (None
                           before the first tick): channel frame, ring statuses, events …
``config`` / ``plan``      the intersection and the plan the engine is running
``mode``                   the control mode the controller is in
``operator``               this tick's operator requests (commands), already merged by the
                           controller; ``manual`` reads them to latch advances
``state``                  the engine's :class:`~edgectl.control.types.OperatingState`
``detector_on(d)``         raw presence of detector ``d`` now
``detector_failed(d)``     ``d`` is failed (diagnosed or reported by the field)
``actuations(d)``          cumulative vehicle count (rising edges) of ``d``
``occupied_s(d)``          cumulative occupied seconds of ``d``
``calls`` / ``ped_calls``  phases with a registered vehicle / pedestrian call
``green_phases``           phases green now
``ring(r)``                :class:`~edgectl.control.types.RingStatus` of ring ``r``
``time_in_interval(r)``    seconds ring ``r`` has been in its current interval
``phase_ring(p)``, ``phase_group(p)``, ``phases_conflict(a, b)``  the ring/barrier structure
``cycle_time()``           position in the plan's cycle (s), or None without coordination:
                           the junction's own cycle, walked into step with the shared clock
                           (:mod:`edgectl.control.coordination`)
``cycle_rate()``           how fast that cycle runs against real time (1 in step; up to 1.2
                           in a shortway transition, 0 while dwelling)
``windows()``              the plan's split windows (:class:`SplitWindow` per phase)
``zones``                  zone id → its latest :class:`~edgectl.control.types.ZoneReading`,
                           healthy zones only (camera / radar; :mod:`edgectl.control.zones`)
``zone_failed(z)``         zone ``z`` is failed or not (yet) healthy: use ``zone_loops(z)``
``zone_loops(z)``          the lane's loop detectors, the fallback of zone ``z``
========================  ==================================================================
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import TYPE_CHECKING, Protocol

from edgectl.config.junction import barrier_groups
from edgectl.config.model import Config, Mode, Plan
from edgectl.control.detectors import TICKS_PER_S
from edgectl.control.types import (
    NO_REQUESTS,
    OperatingState,
    Outputs,
    Requests,
    RingStatus,
    ZoneReading,
)
from edgectl.control.zones import ZoneBank

if TYPE_CHECKING:
    from edgectl.control.engine import Engine

__all__ = ["SplitWindow", "Strategy", "View", "in_window", "split_windows"]

_NO_ZONES: Mapping[int, ZoneReading] = MappingProxyType({})


class Strategy(Protocol):
    """Asked once per tick; returns only requests."""

    def requests(self, view: View) -> Requests: ...


@dataclass(frozen=True, slots=True)
class SplitWindow:
    """Where a phase sits in the cycle: green may run from ``start`` to ``force_off``.

    ``start`` is the phase's split start (s after the start of coordinated green),
    ``force_off`` = start + split − yellow − red clearance, ``split`` its split.
    """

    phase: int
    start: float
    force_off: float
    split: float
    coordinated: bool


def in_window(c: float, start: float, end: float, cycle: float) -> bool:
    """``c`` within the cyclic interval ``[start, end)`` of a cycle of length ``cycle``."""
    if end - start >= cycle:
        return True
    s, e = start % cycle, end % cycle
    if s <= e:
        return s <= c < e
    return c >= s or c < e


def split_windows(config: Config, plan: Plan) -> dict[int, SplitWindow]:
    """Split windows of every ring phase (empty when the plan has no coordination).

    Each ring's sequence is rotated to start at its coordinated phase (or, for a ring without
    one, at its first phase in the coordinated phase's barrier group), and splits are laid out
    one after another from cycle time 0 = start of coordinated green.
    """
    coord = plan.coordination
    if coord is None or coord.cycle <= 0:
        return {}
    group_of = barrier_groups(config)
    coord_group = group_of.get(coord.coord_phases[0], 0) if coord.coord_phases else 0
    out: dict[int, SplitWindow] = {}
    for ring in config.rings:
        seq = list(ring.sequence)
        first = next((p for p in seq if p in coord.coord_phases), None)
        if first is None:
            first = next((p for p in seq if group_of.get(p) == coord_group), seq[0])
        k = seq.index(first)
        cum = 0.0
        for p in seq[k:] + seq[:k]:
            split = coord.splits.get(p, 0.0)
            t = plan.timing.get(p)
            clear = (t.yellow + t.red_clear) if t is not None else 0.0
            fo = cum + max(split - clear, 0.0) if split > 0 else cum
            out[p] = SplitWindow(p, cum, fo, split, p in coord.coord_phases)
            cum += split
    return out


class View:
    """The live, read-only window a strategy reads. See the module docstring."""

    def __init__(self, engine: Engine, mode: Mode) -> None:
        self._engine = engine
        self.t = 0.0
        self.mode = mode
        self.operator: Requests = NO_REQUESTS
        self._windows_for: Plan | None = None
        self._windows: dict[int, SplitWindow] = {}
        self._cycle: float | None = None  # set by the controller every tick in a cycle mode
        self._cycle_rate = 1.0
        self._zones: ZoneBank | None = None  # the controller's zone sensors

    def update(self, t: float, operator: Requests, mode: Mode) -> None:
        self.t = t
        self.operator = operator
        self.mode = mode

    def set_cycle(self, position: float | None, rate: float = 1.0) -> None:
        """The local cycle position of this tick (the controller's :class:`CycleClock`);
        None: count it on the controller's time (``(t − offset) mod cycle``)."""
        self._cycle = position
        self._cycle_rate = rate

    # --- structure ---
    @property
    def config(self) -> Config:
        return self._engine.config

    @property
    def plan(self) -> Plan:
        return self._engine.plan

    @property
    def state(self) -> OperatingState:
        return self._engine.state

    @property
    def last(self) -> Outputs | None:
        return self._engine.last

    def phase_ring(self, phase: int) -> int:
        return self._engine.phase_ring(phase)

    def phase_group(self, phase: int) -> int:
        return self._engine.phase_group(phase)

    def phases_conflict(self, a: int, b: int) -> bool:
        return self._engine.phases_conflict(a, b)

    # --- detectors ---
    def detector_on(self, det_id: int) -> bool:
        return self._engine.detectors.is_on(det_id)

    def detector_failed(self, det_id: int) -> bool:
        return self._engine.detectors.fault(det_id) is not None

    @property
    def failed_detectors(self) -> frozenset[int]:
        return self._engine.detectors.failed

    def actuations(self, det_id: int) -> int:
        return self._engine.detectors.actuations(det_id)

    def occupied_s(self, det_id: int) -> float:
        return self._engine.detectors.occupied_ticks(det_id, self._engine.tick) / TICKS_PER_S

    # --- phases ---
    @property
    def calls(self) -> frozenset[int]:
        last = self._engine.last
        return last.calls if last is not None else frozenset()

    @property
    def ped_calls(self) -> frozenset[int]:
        last = self._engine.last
        return last.ped_calls if last is not None else frozenset()

    @property
    def green_phases(self) -> frozenset[int]:
        return self._engine.green_phases()

    def ring(self, ring_id: int) -> RingStatus | None:
        last = self._engine.last
        if last is None:
            return None
        return next((r for r in last.rings if r.ring == ring_id), None)

    def time_in_interval(self, ring_id: int) -> float:
        r = self.ring(ring_id)
        return 0.0 if r is None else r.elapsed

    # --- cycle ---
    def cycle_time(self) -> float | None:
        """Seconds since the start of the coordinated phases' green in the current cycle."""
        coord = self.plan.coordination
        if coord is None or coord.cycle <= 0:
            return None
        if self._cycle is not None:
            return round(self._cycle, 3) % coord.cycle
        return round((self.t - coord.offset) % coord.cycle, 3)

    def cycle_rate(self) -> float:
        """Local cycle seconds per real second this tick (1 in step)."""
        return self._cycle_rate

    # --- zone sensors ---
    def attach_zones(self, bank: ZoneBank) -> None:
        """The controller's :class:`~edgectl.control.zones.ZoneBank` (read, never kept)."""
        self._zones = bank

    @property
    def zones(self) -> Mapping[int, ZoneReading]:
        """Healthy zones: zone id → the latest measurement (empty without zone sensors)."""
        return self._zones.healthy if self._zones is not None else _NO_ZONES

    def zone_failed(self, zone_id: int) -> bool:
        """``zone_id`` is failed, not yet healthy, or not configured: use its loops."""
        return self._zones is None or self._zones.is_failed(zone_id)

    def zone_loops(self, zone_id: int) -> tuple[int, ...]:
        """The loop detectors of the zone's lane (its fallback); () for an unknown zone."""
        if self._zones is None:
            return ()
        try:
            return self._zones.config(zone_id).loops
        except KeyError:
            return ()

    def windows(self) -> Mapping[int, SplitWindow]:
        plan = self.plan
        if self._windows_for is not plan:
            self._windows = split_windows(self.config, plan)
            self._windows_for = plan
        return self._windows
