"""Preemption, and the clearance before a commanded flash.

PREEMPT clears every non-dwell phase (green truncated to ``control.preempt_min_green`` at
most, walk truncated to its ped clearance which runs in full, full yellow and red clearance)
and then dwells in the preempt phases of the highest-priority (lowest) active input.
Commanded flash clears the same way, without truncating min green, and then flashes.

Max presence (NTCIP 1202 ``preemptMaxPresence``, ``control.preempt_max_presence_s``): an
input on for longer than that is disregarded — as if it had gone off: event 110, an alarm,
the junction back to normal operation — until it goes off (then it may preempt again). A
stuck input or a remote preempt never released cannot starve the other phases.
"""

from __future__ import annotations

from edgectl.control.engine._core import Core
from edgectl.control.engine._frame import ChannelFrame
from edgectl.control.engine._pedestrian import Pedestrians
from edgectl.control.engine._phases import PhaseTimer
from edgectl.control.types import (
    EnterFlash,
    EventCode,
    Interval,
    OperatingState,
    PedInterval,
    Preempt,
)

__all__ = ["Preemption"]


class Preemption:
    """Active preempt inputs, the dwell phases, and the clearance towards them (or flash)."""

    __slots__ = (
        "_frame",
        "_layout",
        "_peds",
        "_phases",
        "_rings",
        "_status",
        "_timing",
        "clearing_to_flash",
        "dwell",
        "dwell_group",
        "dwell_reported",
        "entry",
        "inputs",
        "locked",
        "max_presence",
        "min_green",
        "since",
    )

    def __init__(
        self,
        *,
        core: Core,
        peds: Pedestrians,
        frame: ChannelFrame,
        phases: PhaseTimer,
        min_green: int,
        max_presence: int = 1_000_000_000,
    ) -> None:
        self._layout = core.layout
        self._status = core.status
        self._timing = core.timing
        self._rings = core.rings
        self._peds = peds
        self._frame = frame
        self._phases = phases
        self.min_green = min_green  # ticks: preemption truncates a green to this at most
        self.inputs: dict[int, tuple[int, ...]] = {}  # active input → its preempt phases
        self.max_presence = max_presence  # ticks an input may stay on before it is disregarded
        self.since: dict[int, int] = {}  # active input → the tick it went on
        self.locked: set[int] = set()  # on past max presence: disregarded until it goes off
        self.dwell: tuple[int, ...] = ()
        self.dwell_group = 0
        self.dwell_reported = False
        self.entry = -1  # tick the current preempt entry started
        self.clearing_to_flash: EnterFlash | None = None

    def directive(self, d: Preempt) -> None:
        """A preempt input turned on or off (events 102 and 104)."""
        if d.active and d.input in self.locked:
            return  # still on since it passed max presence: disregarded until it goes off
        if d.active and d.input not in self.inputs:
            self.inputs[d.input] = tuple(p for p in d.phases if p in self._layout.ring_phases)
            self.since[d.input] = self._status.tick
            self._status.emit(EventCode.PREEMPT_CALL_ON, d.input)
        elif not d.active and d.input in self.locked:
            self.locked.discard(d.input)
            self._status.emit(EventCode.PREEMPT_CALL_OFF, d.input)
            self._status.set_alarm(f"preempt {d.input} ", None)
        elif not d.active and d.input in self.inputs:
            del self.inputs[d.input]
            del self.since[d.input]
            self._status.emit(EventCode.PREEMPT_CALL_OFF, d.input)
        if self._status.state in (OperatingState.NORMAL, OperatingState.PREEMPT):
            self.select()

    def expire(self, tick: int) -> None:
        """Disregard the inputs on for longer than max presence (event 110, an alarm)."""
        over = [i for i, t0 in self.since.items() if tick - t0 >= self.max_presence]
        if not over:
            return
        for i in over:
            del self.inputs[i]
            del self.since[i]
            self.locked.add(i)
            self._status.emit(EventCode.PREEMPT_MAX_PRESENCE_EXCEEDED, i)
            self._status.set_alarm(
                f"preempt {i} ", f"preempt {i} max presence exceeded: input disregarded"
            )
        if self._status.state in (OperatingState.NORMAL, OperatingState.PREEMPT):
            self.select()

    def select(self) -> None:
        """(Re)compute the dwell set from the highest-priority (lowest) active preempt input."""
        status = self._status
        if not self.inputs:
            if status.state is OperatingState.PREEMPT and self.clearing_to_flash is None:
                status.state = OperatingState.NORMAL
                status.emit(EventCode.PREEMPT_EXIT, 0)
                for ring in self._rings.rings:
                    if ring.interval is Interval.GREEN:
                        ring.max_start = None
                        ring.ready = None
            self.dwell = ()
            return
        group_of = self._layout.group_of
        top = min(self.inputs)
        wanted = self.inputs[top]
        green = self._rings.green
        target = next((p for p in wanted if p in green), wanted[0] if wanted else None)
        group = self._rings.group if target is None else group_of[target]
        dwell: list[int] = []
        used: set[int] = set()
        for p in wanted:
            ring = self._rings.ring_of[p]
            if group_of[p] == group and ring.id not in used and p not in dwell:
                dwell.append(p)
                used.add(ring.id)
        if status.state is not OperatingState.PREEMPT or tuple(dwell) != self.dwell:
            status.emit(EventCode.PREEMPT_ENTRY_STARTED, top)
            self.dwell_reported = False
            self.entry = status.tick  # greens show one PREEMPT tick before ending
        self.dwell = tuple(dwell)
        self.dwell_group = group
        status.state = OperatingState.PREEMPT
        for ring in self._rings.rings:
            if ring.interval is Interval.GREEN and ring.phase not in self.dwell:
                self._peds.truncate_walk(ring)

    def clear_to_flash(self, d: EnterFlash) -> None:
        """A commanded flash: clear every phase first (PREEMPT with nothing to dwell in)."""
        self.clearing_to_flash = d
        self._status.state = OperatingState.PREEMPT
        self.dwell = ()
        for ring in self._rings.rings:
            if ring.interval is Interval.GREEN:
                self._peds.truncate_walk(ring)

    def run(self, tick: int) -> EnterFlash | None:
        """One PREEMPT tick. Returns the commanded flash once its clearance is done."""
        dwell = self.dwell
        to_flash = self.clearing_to_flash is not None
        times = self._timing.times
        rings = self._rings.rings
        for ring in rings:
            p = ring.phase
            if ring.interval is not Interval.GREEN or p is None:
                continue
            if not to_flash and (p in dwell or tick == self.entry):
                continue
            if ring.ped is PedInterval.WALK:
                self._peds.truncate_walk(ring)
            if ring.ped is not PedInterval.DONT_WALK:
                continue
            elapsed = tick - ring.start
            minimum = times[p].min_green if to_flash else min(self.min_green, times[p].min_green)
            if elapsed >= minimum:
                self._phases.begin_yellow(ring, tick, None, None)
        if to_flash:
            if all(r.interval is Interval.RED for r in rings):
                return self.clearing_to_flash
            return None
        # start dwell phases once nothing conflicting is timing
        busy = [r for r in rings if r.interval is not Interval.RED]
        if any(r.phase not in dwell or r.interval is not Interval.GREEN for r in busy):
            return None
        if self._rings.group != self.dwell_group:
            self._rings.group = self.dwell_group
            for ring in rings:
                ring.served_idx = -1
        ring_of = self._rings.ring_of
        for p in dwell:
            ring = ring_of[p]
            if ring.interval is Interval.RED and not self._frame.blocked(p):
                self._phases.start_green(ring, p, tick)
        if not self.dwell_reported:
            self.dwell_reported = True
            self._status.emit(EventCode.PREEMPT_BEGIN_DWELL, min(self.inputs, default=0))
        return None
