"""Field supervision, decided without I/O: what the devices' reports mean for the junction.

The control loop calls :meth:`FieldSupervisor.step` once per tick, after it has read every
device's latest report and before the controller's step, with the daemon's monotonic time;
after the controller's step it tells :meth:`FieldSupervisor.sent` which frame went to the
output devices. Nothing here awaits, reads a clock or does I/O, so every rule below is
tested in virtual time (``tests/daemon/test_supervisor.py``):

- **the controller clock** (:class:`DeliveryClock`): it advances only while frames reach the
  cabinet on time, and not at all until the field has answered (:attr:`FieldSupervisor.ready`);
- **detector loss**: a detector device silent for longer than ``field.detector_loss_s`` fails
  every detector (constant calls, the NTCIP fail-safe) until it answers again;
- **output loss**: an output device that wrote no frame for ``OUTPUT_LOSS_S`` → flash
  (``output_lost``). Offline alone is not a loss: a link that reconnects in time holds the
  clock meanwhile (the frame was not delivered) and does not flash the junction;
- **readback**: the channels the cabinet shows differ from both of the last two frames for
  ``READBACK_MISMATCH_TICKS`` reads in a row → flash (``output_lost``);
- **MMU tripped** → flash (``mmu``). A latch caused by the link (watchdog, power cycle) is
  reset automatically while the output devices are online, at most every
  ``MMU_RESET_INTERVAL_S``; a conflict latch (any other fault) waits for an operator's
  ``mmu_reset`` — and after it the junction stays in flash until an explicit ``exit_flash``
  (as on a real MMU: a conflict flash never ends by itself, not even once the MMU is reset);
- **cabinet in its own flash** (while the engine runs normal or preempt) or **power cycled**
  → flash, and take over again through all-red;
- **recovery**: the field healthy for ``RECOVERY_HEALTHY_S`` while the junction is in flash →
  leave flash through the engine's all-red start-up sequence — except after a latch that
  needed an operator's reset: then :attr:`FieldSupervisor.fault` clears (so ``exit_flash``
  is accepted) and the junction waits for it.

What to log comes back as :class:`Note` values; the shell logs them.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Literal, Protocol

from edgectl.cabinet.channels import ChannelState
from edgectl.cabinet.registers import CabinetSnapshot
from edgectl.control.types import (
    Directive,
    EnterFlash,
    ExitFlash,
    FlashReason,
    OperatingState,
    Outputs,
)
from edgectl.field.report import Health

READBACK_MISMATCH_TICKS = 3
OUTPUT_LOSS_S = 1.0
RECOVERY_HEALTHY_S = 1.0
MMU_AUTO_RESET_FAULTS = frozenset({4, 5})  # watchdog, power cycle: caused by the link, not traffic
MMU_RESET_INTERVAL_S = 3.0

_RUNNING_STATES = (OperatingState.NORMAL, OperatingState.PREEMPT)


class LinkReport(Protocol):
    """What the supervisor reads of one device each tick (its latest report)."""

    @property
    def health(self) -> Health: ...

    @property
    def snapshot(self) -> CabinetSnapshot | None: ...  # the latest decoded read

    @property
    def last_ok(self) -> float | None: ...  # clock time of the last successful read

    @property
    def last_write_ok(self) -> float | None: ...  # ... of the last frame written


@dataclass(frozen=True, slots=True)
class Note:
    """A line for the log: ``level`` and ``event`` name with its key/value context."""

    level: Literal["info", "warning", "error"]
    event: str
    fields: Mapping[str, object] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Supervision:
    """One tick's decisions."""

    t: float  # the controller time of this tick
    presence: frozenset[int] = frozenset()  # detectors occupied (working devices only)
    ped_buttons: frozenset[int] = frozenset()
    failed_detectors: frozenset[int] = frozenset()  # failed by a silent detector device
    directives: tuple[Directive, ...] = ()  # enter or leave flash
    mmu_reset: bool = False  # write the MMU reset to the output devices
    notes: tuple[Note, ...] = ()


@dataclass(slots=True)
class DeliveryClock:
    """The controller's clock: it advances only while frames reach the cabinet on time.

    The engine times every interval in ticks from the moment it decides it; drivers see an
    interval from the moment the cabinet *receives* its frame. If the frame that starts a
    yellow arrives late (a retried write) and the next one on time, the yellow shown is
    shorter than the engine counted. So a frame delivered later than the link's usual latency
    (the minimum over recent frames) plus ``threshold`` — or not yet delivered — stalls the
    clock for a tick: the sequence shifts and every interval shown lasts at least as long as
    the engine timed it. A stall streak is capped (``max_stall``); by then a link that stopped
    delivering has been declared lost and the junction is in flash.
    """

    tick: float
    threshold: float = 0.02
    max_stall: int = 10
    ticks: int = 0
    stalls: int = 0
    _streak: int = 0
    _latencies: deque[float] = field(default_factory=lambda: deque(maxlen=50))

    @property
    def t(self) -> float:
        return round(self.ticks * self.tick, 3)

    def advance(self, slots: int, latency: float | None) -> float:
        """Move on by ``slots`` ticks unless the last frame (``latency`` s to deliver, ``inf``
        when not delivered, ``None`` when there was nothing to deliver) was late."""
        late = False
        if latency is not None:
            baseline = min(self._latencies, default=latency)
            late = latency > baseline + self.threshold
            if latency != float("inf"):
                self._latencies.append(latency)
        if late and self._streak < self.max_stall:
            self._streak += 1
            self.stalls += 1
            return self.t
        if late:
            self._latencies.clear()  # the link got slower for good: a new baseline
        self._streak = 0
        self.ticks += slots
        return self.t


class FieldSupervisor:
    """Decides field supervision from the devices' reports and the time it is given.

    ``readers`` and ``writers`` name the devices that read detectors and write outputs, in
    the configured order; every :meth:`step` gets a report for each of them.
    """

    def __init__(
        self,
        *,
        tick: float,
        detectors: Iterable[int],
        channels: Iterable[int],
        detector_loss_s: float,
        readers: Iterable[str],
        writers: Iterable[str],
    ) -> None:
        self.clock = DeliveryClock(tick)
        self.detectors = frozenset(detectors)
        self.channels = tuple(channels)
        self.detector_loss_s = detector_loss_s
        self.readers = tuple(readers)
        self.writers = tuple(writers)
        self.ready = False  # every detector device has answered and the engine runs
        self.fault = ""  # why the supervisor put the junction into flash ("" = none)
        self.output: CabinetSnapshot | None = None  # the output device's latest snapshot
        self._stale: set[str] = set()  # detector devices whose detectors are failed
        self._mismatch_ticks = 0
        self._healthy_since: float | None = None
        self._last_mmu_reset = -1e9
        self._operator_exit = False  # the fault was a latch only an operator may end
        self._frames: deque[dict[int, ChannelState]] = deque(maxlen=2)
        self._readback_t: float | None = None  # read time of the snapshot last compared
        self._power_cycles: int | None = None
        self._state: OperatingState | None = None  # the engine's state after the last tick
        self._submitted_at: float | None = None  # when the last frame went to the devices
        self._polled = False  # every detector device had a snapshot at the last step

    # --- the two calls per tick -----------------------------------------------------------

    def step(self, now: float, reports: Mapping[str, LinkReport], *, slots: int = 1) -> Supervision:
        """The tick's decisions; ``slots`` ticks of the grid went by since the last one."""
        notes: list[Note] = []
        if self.ready:
            stalls = self.clock.stalls
            t = self.clock.advance(slots, self._delivery_latency(reports))
            if self.clock.stalls != stalls:
                held = {"t": t, "stalls": self.clock.stalls}
                notes.append(Note("info", "frame_late_clock_held", held))
        else:
            # the start-up sequence (flash, then all-red) is timed from the moment the field
            # answers: an unreachable cabinet must not shorten what drivers see
            t = self.clock.t
        presence, peds, failed = self._detectors(t, now, reports, notes)
        directives, mmu_reset = self._watch(t, now, reports, notes)
        self._polled = all(reports[n].snapshot is not None for n in self.readers)
        return Supervision(
            t=t,
            presence=presence,
            ped_buttons=peds,
            failed_detectors=failed,
            directives=directives,
            mmu_reset=mmu_reset,
            notes=tuple(notes),
        )

    def sent(self, out: Outputs, *, submitted_at: float | None) -> bool:
        """The controller's outputs of this tick and when their frame went to the output
        devices (``None``: to none). True when this tick made the daemon ready."""
        self._frames.append(out.frame)
        self._state = out.state
        self._submitted_at = submitted_at
        # ready once the field answered, whatever the engine does: a restart may find the
        # MMU latched and enter a fault flash at t = 0, and that flash (its minimum recovery
        # time included) runs on this clock — holding it until the engine leaves flash would
        # wait for ever
        if not self.ready and self._polled:
            self.ready = True
            return True
        return False

    # --- the controller clock --------------------------------------------------------------

    def _delivery_latency(self, reports: Mapping[str, LinkReport]) -> float | None:
        """How long the last frame took to reach the output devices (``inf``: not yet)."""
        writers = [reports[n] for n in self.writers]
        if any(r.health is Health.OFFLINE and r.last_write_ok is not None for r in writers):
            # an output link dropped (e.g. the Modbus client closed it after a few lost
            # answers): nothing is delivered, so hold the clock as for a late frame — capped
            # at max_stall, by when the output-loss rule (no write for 1 s) has flashed
            return float("inf")
        if self._submitted_at is None:
            return None
        worst: float | None = None
        for r in writers:
            if r.health is Health.OFFLINE:
                continue
            done = r.last_write_ok
            latency = (
                float("inf")
                if done is None or done < self._submitted_at
                else done - self._submitted_at
            )
            worst = latency if worst is None else max(worst, latency)
        return worst

    # --- detectors -------------------------------------------------------------------------

    def _detectors(
        self, t: float, now: float, reports: Mapping[str, LinkReport], notes: list[Note]
    ) -> tuple[frozenset[int], frozenset[int], frozenset[int]]:
        presence: set[int] = set()
        peds: set[int] = set()
        failed: frozenset[int] = frozenset()
        for name in self.readers:
            r = reports[name]
            snap = r.snapshot
            fresh = r.last_ok is not None and now - r.last_ok <= self.detector_loss_s
            if snap is None or not fresh:
                if self.ready or r.last_ok is not None:
                    failed = self.detectors
                    if name not in self._stale:
                        self._stale.add(name)
                        silent = now - r.last_ok if r.last_ok is not None else None
                        notes.append(
                            Note(
                                "error",
                                "detectors_failed",
                                {
                                    "device": name,
                                    "detectors": sorted(self.detectors),
                                    "silent_for_s": None if silent is None else round(silent, 2),
                                    "t": t,
                                },
                            )
                        )
                continue
            if name in self._stale:
                self._stale.discard(name)
                notes.append(Note("warning", "detectors_restored", {"device": name, "t": t}))
            presence |= snap.presence
            peds |= snap.ped_buttons
        return frozenset(presence & self.detectors), frozenset(peds), failed

    # --- outputs: loss, readback, MMU, recovery --------------------------------------------

    def _watch(
        self, t: float, now: float, reports: Mapping[str, LinkReport], notes: list[Note]
    ) -> tuple[tuple[Directive, ...], bool]:
        lost = [
            name
            for name in self.writers
            if ((done := reports[name].last_write_ok) is not None or self.ready)
            and (done is None or now - done > OUTPUT_LOSS_S)
        ]
        snap = next((s for n in self.writers if (s := reports[n].snapshot) is not None), None)
        self.output = snap
        fault = ""
        if lost:
            fault = "output device lost: " + ",".join(lost)
        elif snap is not None and now - snap.t <= OUTPUT_LOSS_S:
            if snap.mmu_tripped:
                fault = f"mmu tripped (fault {snap.mmu_fault})"
            elif snap.cabinet_flash and self._state in _RUNNING_STATES:
                fault = "cabinet in flash"
            elif self._power_cycles is not None and snap.power_cycles != self._power_cycles:
                fault = "cabinet power cycled"
            else:
                fault = self._check_readback(snap)
            self._power_cycles = snap.power_cycles
        if fault:
            self._healthy_since = None
            directives: tuple[Directive, ...] = ()
            if (
                snap is not None
                and fault.startswith("mmu tripped")
                and snap.mmu_fault not in MMU_AUTO_RESET_FAULTS
            ):
                self._operator_exit = True  # e.g. a conflict: only the operator ends it
            if not self.fault:
                self.fault = fault
                reason = FlashReason.MMU if fault.startswith("mmu") else FlashReason.OUTPUT_LOST
                notes.append(Note("error", "output_fault", {"reason": fault, "t": t}))
                directives = (EnterFlash(reason, fault),)
            return directives, self._mmu_reset_due(now, snap, reports, notes)
        if not self.fault:
            return (), False
        # recovering: healthy I/O for a while, then leave flash through all-red
        if self._healthy_since is None:
            self._healthy_since = now
        elif (
            now - self._healthy_since >= RECOVERY_HEALTHY_S and self._state is OperatingState.FLASH
        ):
            self._mismatch_ticks = 0
            if self._operator_exit:
                # the MMU was reset, but a conflict flash ends only by an explicit exit_flash
                notes.append(
                    Note("warning", "mmu_reset_awaiting_exit_flash", {"was": self.fault, "t": t})
                )
                self.fault = ""
                self._operator_exit = False
                return (), False
            notes.append(Note("warning", "output_recovered", {"was": self.fault, "t": t}))
            self.fault = ""
            return (ExitFlash(),), False
        return (), False

    def _mmu_reset_due(
        self,
        now: float,
        snap: CabinetSnapshot | None,
        reports: Mapping[str, LinkReport],
        notes: list[Note],
    ) -> bool:
        if snap is None or not snap.mmu_tripped or snap.mmu_fault not in MMU_AUTO_RESET_FAULTS:
            return False
        if any(reports[n].health is Health.OFFLINE for n in self.writers):
            return False
        if now - self._last_mmu_reset < MMU_RESET_INTERVAL_S:
            return False
        self._last_mmu_reset = now
        notes.append(Note("warning", "mmu_auto_reset", {"fault": snap.mmu_fault}))
        return True

    def _check_readback(self, snap: CabinetSnapshot) -> str:
        if snap.t == self._readback_t:
            # no read since the last check (reads failing): this snapshot predates the frames
            # written since, so comparing it again would count a mismatch that is not there
            return ""
        self._readback_t = snap.t
        if snap.cabinet_flash or len(self._frames) < 2:
            self._mismatch_ticks = 0
            return ""
        shown = {ch: snap.readback.get(ch, ChannelState.OFF) for ch in self.channels}
        if any(all(shown[ch] == f.get(ch) for ch in self.channels) for f in self._frames):
            self._mismatch_ticks = 0
            return ""
        self._mismatch_ticks += 1
        if self._mismatch_ticks >= READBACK_MISMATCH_TICKS:
            bad = [ch for ch in self.channels if shown[ch] != self._frames[-1].get(ch)]
            return f"readback mismatch on channels {bad}"
        return ""
