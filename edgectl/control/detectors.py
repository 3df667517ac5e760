"""Detector processing: raw presence → calls and extensions, counters and diagnostics.

Pure and tick-driven like the engine (ticks of 0.1 s, timestamps rather than counters so a
skipped tick only advances time). Per detector, NTCIP 1202 semantics:

- **delay**: a calling output only after the detector has been on ``delay`` s;
- **carry-over**: the actuation is stretched by ``carryover`` s after the detector goes off
  (for calling and extending);
- **extend**: while a phase it extends is green, the extension output is stretched by
  ``extend`` s after the detector goes off;
- **queue limit**: it extends a phase only in the first ``queue_limit`` s of its green.

Diagnostics (0 disables each): *no activity* for ``no_activity_min`` minutes (event 85),
*max presence* longer than ``max_presence_min`` minutes (event 87), *erratic* more than
``erratic_counts_per_min`` actuations in a minute (event 88). A detector the field reports as
failed (``Inputs.failed_detectors``) is faulted ``lost`` (event 84). A failed detector is
treated as constantly on for calling and extending (the NTCIP fail-safe: a constant call, the
phase runs to max). It is restored (event 83) when its condition clears: the next actuation
for no activity, going off for max presence, a minute at or under the threshold for erratic,
the field reporting it again for lost.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Mapping

from edgectl.config.model import Config, Detector
from edgectl.control.types import DetectorStatus, EventCode

TICKS_PER_S = 10
_MINUTE = 60 * TICKS_PER_S


def to_ticks(seconds: float) -> int:
    """Seconds → ticks, rounded *up* (a safety minimum is never rounded down)."""
    return max(0, math.ceil(seconds * TICKS_PER_S - 1e-6))


class _Det:
    __slots__ = (
        "acts_window",
        "actuations",
        "call_phases",
        "carry",
        "cfg",
        "delay",
        "erratic",
        "ext_phases",
        "extend",
        "fault",
        "id",
        "last_edge",
        "last_off",
        "max_presence",
        "no_activity",
        "occupied",
        "on",
        "on_since",
        "queue_limit",
    )

    def __init__(self, cfg: Detector, start: int) -> None:
        self.cfg = cfg
        self.id = cfg.id
        self.call_phases = tuple(cfg.call_phases)
        self.ext_phases = tuple(cfg.extends)
        self.delay = to_ticks(cfg.delay)
        self.carry = to_ticks(cfg.carryover)
        self.extend = to_ticks(cfg.extend)
        self.queue_limit = to_ticks(cfg.queue_limit)
        self.no_activity = cfg.no_activity_min * _MINUTE
        self.max_presence = cfg.max_presence_min * _MINUTE
        self.erratic = cfg.erratic_counts_per_min
        self.on = False
        self.on_since = start
        self.last_off = -(10**9)  # tick the detector last went off
        self.last_edge = start  # last rising or falling edge (activity)
        self.actuations = 0
        self.occupied = 0  # occupied ticks accumulated up to the last off edge
        self.acts_window: deque[int] = deque()
        self.fault: str | None = None


class DetectorBank:
    """All detectors of one intersection.

    Call :meth:`update` once per tick, then read :attr:`calling` (phases with an active call
    output) and :attr:`extending` (phases with an active extension output).
    """

    def __init__(self, config: Config, start_tick: int = 0) -> None:
        self._dets = {d.id: _Det(d, start_tick) for d in config.detectors}
        self._order = tuple(sorted(self._dets))
        self._presence: frozenset[int] = frozenset()
        self._external_failed: frozenset[int] = frozenset()
        self.calling: frozenset[int] = frozenset()
        self.extending: frozenset[int] = frozenset()
        self.rising: tuple[int, ...] = ()  # detector ids that went on this tick
        self.statuses: tuple[DetectorStatus, ...] = tuple(
            DetectorStatus(id=i, on=False, failed=False) for i in self._order
        )
        self._failed_phases_call: frozenset[int] = frozenset()
        self._failed_phases_ext: frozenset[int] = frozenset()
        self._next_diag = start_tick
        self._dirty = True
        self._deadline = start_tick  # outputs may change by themselves at this tick
        self._green_seen: set[int] = set()

    # --- read side -------------------------------------------------------------------------

    @property
    def ids(self) -> tuple[int, ...]:
        return self._order

    def detector(self, det_id: int) -> Detector:
        return self._dets[det_id].cfg

    def is_on(self, det_id: int) -> bool:
        return self._dets[det_id].on

    def fault(self, det_id: int) -> str | None:
        return self._dets[det_id].fault

    @property
    def failed(self) -> frozenset[int]:
        return frozenset(i for i, d in self._dets.items() if d.fault is not None)

    def actuations(self, det_id: int) -> int:
        """Cumulative rising edges (vehicle counts) since start."""
        return self._dets[det_id].actuations

    def occupied_ticks(self, det_id: int, tick: int) -> int:
        """Cumulative occupied ticks up to and including ``tick`` (occupancy = Δ / Δ ticks)."""
        d = self._dets[det_id]
        return d.occupied + (tick - d.on_since + 1 if d.on else 0)

    # --- tick --------------------------------------------------------------------------------

    def update(
        self,
        tick: int,
        presence: frozenset[int],
        failed: frozenset[int],
        green_since: Mapping[int, int],
        events: list[tuple[int, int]],
    ) -> None:
        """Advance to ``tick`` with this tick's raw presence.

        ``green_since`` maps each green phase to the tick its green began. Events are
        appended to ``events`` as ``(code, param)``.
        """
        dets = self._dets
        changed = False
        rising: list[int] = []
        if presence is not self._presence and presence != self._presence:
            for det_id in presence.symmetric_difference(self._presence):
                d = dets.get(det_id)
                if d is None:
                    continue
                changed = True
                if det_id in presence:  # rising edge
                    d.on = True
                    d.on_since = tick
                    d.last_edge = tick
                    d.actuations += 1
                    rising.append(det_id)
                    events.append((EventCode.DETECTOR_ON, det_id))
                    if d.erratic:
                        d.acts_window.append(tick)
                    if d.fault == "no_activity":
                        self._restore(d, events)
                else:
                    d.on = False
                    d.occupied += tick - d.on_since
                    d.last_off = tick
                    d.last_edge = tick
                    events.append((EventCode.DETECTOR_OFF, det_id))
                    if d.fault == "max_presence":
                        self._restore(d, events)
            self._presence = presence
        self.rising = tuple(rising)
        if failed != self._external_failed:
            for det_id in failed ^ self._external_failed:
                d = dets.get(det_id)
                if d is None:
                    continue
                changed = True
                if det_id in failed:
                    if d.fault is None:
                        d.fault = "lost"
                        events.append((EventCode.DETECTOR_FAULT_OTHER, det_id))
                    else:
                        d.fault = "lost"
                elif d.fault == "lost":
                    self._restore(d, events)
            self._external_failed = failed
        if tick >= self._next_diag or rising:
            changed |= self._diagnose(tick, events)
        if (
            changed
            or self._dirty
            or tick >= self._deadline
            or green_since.keys() != self._green_seen
        ):
            self._green_seen = set(green_since)
            self._outputs(tick, green_since)
        if changed or self._dirty:
            self.statuses = tuple(
                DetectorStatus(
                    id=i, on=dets[i].on, failed=dets[i].fault is not None, fault=dets[i].fault
                )
                for i in self._order
            )
            self._dirty = False

    def _restore(self, d: _Det, events: list[tuple[int, int]]) -> None:
        d.fault = None
        d.acts_window.clear()
        self._dirty = True
        events.append((EventCode.DETECTOR_RESTORED, d.id))

    def _diagnose(self, tick: int, events: list[tuple[int, int]]) -> bool:
        """Check every diagnostic; schedule the next check (at most once a second)."""
        changed = False
        for d in self._dets.values():
            if d.erratic and d.acts_window:
                window = d.acts_window
                while window and window[0] <= tick - _MINUTE:
                    window.popleft()
                if d.fault is None and len(window) > d.erratic:
                    d.fault = "erratic"
                    changed = True
                    events.append((EventCode.DETECTOR_FAULT_EXCESSIVE_CHANGE, d.id))
                elif (
                    d.fault == "erratic"
                    and len(window) <= d.erratic
                    and (not window or tick - window[0] >= _MINUTE - 1)
                ):
                    self._restore(d, events)
                    changed = True
            elif d.fault == "erratic":
                self._restore(d, events)
                changed = True
            if d.fault is not None:
                continue
            if d.max_presence and d.on and tick - d.on_since >= d.max_presence:
                d.fault = "max_presence"
                changed = True
                events.append((EventCode.DETECTOR_FAULT_SHORTED_LOOP, d.id))
            elif d.no_activity and not d.on and tick - d.last_edge >= d.no_activity:
                d.fault = "no_activity"
                changed = True
                events.append((EventCode.DETECTOR_FAULT_WATCHDOG, d.id))
        self._next_diag = tick + TICKS_PER_S
        if changed:
            self._dirty = True
        return changed

    def _outputs(self, tick: int, green_since: Mapping[int, int]) -> None:
        calling: set[int] = set()
        extending: set[int] = set()
        deadline = tick + 10**9
        for d in self._dets.values():
            if d.fault is not None:
                calling.update(d.call_phases)
                extending.update(d.ext_phases)
                continue
            carry = bool(d.carry) and tick - d.last_off < d.carry
            if carry:
                deadline = min(deadline, d.last_off + d.carry)
            active = d.on or carry
            if d.call_phases and active:
                if not d.on or not d.delay or tick - d.on_since >= d.delay:
                    calling.update(d.call_phases)
                else:
                    deadline = min(deadline, d.on_since + d.delay)
            stretch = bool(d.extend) and tick - d.last_off < d.extend
            for p in d.ext_phases:
                since = green_since.get(p)
                if since is None:
                    continue
                if d.queue_limit:
                    if tick - since >= d.queue_limit:
                        continue
                    deadline = min(deadline, since + d.queue_limit)
                if active or stretch:
                    extending.add(p)
                    if stretch and not active:
                        deadline = min(deadline, d.last_off + d.extend)
        self._deadline = deadline
        self.calling = frozenset(calling)
        self.extending = frozenset(extending)
