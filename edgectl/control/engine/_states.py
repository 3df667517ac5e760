"""Operating states: start-up flash → all-red → NORMAL, and flash.

Commanded flash clears first (``_preempt``) and then flashes; a non-flash ``SetMode`` or
``ExitFlash`` cancels the clearance. Fault flash is immediate: no clearance is possible.
``ExitFlash`` from a fault flash is latched and taken once ``control.min_recovery_flash``
has passed; flash is always left through all-red.
"""

from __future__ import annotations

from edgectl.config.model import Control, Mode
from edgectl.control.detectors import to_ticks
from edgectl.control.engine._core import Core
from edgectl.control.engine._frame import ChannelFrame
from edgectl.control.engine._phases import PhaseTimer
from edgectl.control.engine._preempt import Preemption
from edgectl.control.engine._timing import mode_code
from edgectl.control.types import EnterFlash, EventCode, FlashReason, OperatingState, SetMode

__all__ = ["OperatingStates"]


class OperatingStates:
    """The unit's operating state and control mode, and the changes between them."""

    __slots__ = (
        "_frame",
        "_layout",
        "_phases",
        "_preempt",
        "_rings",
        "_status",
        "_timing",
        "exit_pending",
        "flash_detail",
        "flash_reason",
        "min_recovery",
        "mode",
        "startup_all_red",
        "startup_flash",
    )

    def __init__(
        self,
        *,
        core: Core,
        control: Control,
        frame: ChannelFrame,
        phases: PhaseTimer,
        preempt: Preemption,
    ) -> None:
        self._layout = core.layout
        self._status = core.status
        self._timing = core.timing
        self._rings = core.rings
        self._frame = frame
        self._phases = phases
        self._preempt = preempt
        self.mode = control.mode
        self.startup_flash = to_ticks(control.startup_flash)
        self.startup_all_red = max(to_ticks(control.startup_all_red), 20)
        self.min_recovery = to_ticks(control.min_recovery_flash)
        self.flash_reason: FlashReason | None = FlashReason.STARTUP
        self.flash_detail = ""
        self.exit_pending = False

    def in_flash(self) -> bool:
        return self._status.state in (OperatingState.FLASH, OperatingState.STARTUP_FLASH)

    def may_leave_flash(self, tick: int) -> bool:
        """A latched flash exit is due (a commanded flash at once, a fault after recovery)."""
        return self.exit_pending and (
            self.flash_reason is FlashReason.COMMAND
            or tick - self._status.state_start >= self.min_recovery
        )

    def set_mode(self, d: SetMode, tick: int) -> None:
        if d.mode is Mode.FLASH:
            self.command_flash(EnterFlash(FlashReason.COMMAND, "set_mode"), tick)
            return
        changed = d.mode is not self.mode
        self.mode = d.mode
        if self.flash_reason is FlashReason.COMMAND or self._preempt.clearing_to_flash:
            self.exit_flash()
        if changed:
            self._status.emit(EventCode.MODE_CHANGE, mode_code(d.mode))

    def fault_flash(self, reason: FlashReason, detail: str = "") -> None:
        """Immediate flash (fault, output lost, MMU, monitor): no clearance is possible."""
        status = self._status
        if status.state is OperatingState.FLASH and self.flash_reason is reason:
            return
        was_flash = self.in_flash()
        status.state = OperatingState.FLASH
        status.state_start = status.tick
        self.flash_reason = reason
        self.flash_detail = detail
        self.exit_pending = False
        self._preempt.clearing_to_flash = None
        self._reset_rings()
        status.set_alarm("flash:", f"flash:{reason.value}" + (f":{detail}" if detail else ""))
        if not was_flash:
            status.emit(EventCode.UNIT_FLASH_STATUS_CHANGE, 1)
            status.emit(EventCode.MODE_CHANGE, mode_code(Mode.FLASH))

    def command_flash(self, d: EnterFlash, tick: int) -> None:
        status = self._status
        if status.state is OperatingState.FLASH:
            self.exit_pending = False
            return
        if status.state is OperatingState.STARTUP_FLASH:  # already flashing: stay
            status.state = OperatingState.FLASH
            self.flash_reason = FlashReason.COMMAND
            self.exit_pending = False
            status.emit(EventCode.MODE_CHANGE, mode_code(Mode.FLASH))
            return
        if status.state is OperatingState.ALL_RED:
            self.enter_flash(d, tick)
            return
        self._preempt.clear_to_flash(d)

    def enter_flash(self, d: EnterFlash, tick: int) -> None:
        status = self._status
        status.state = OperatingState.FLASH
        status.state_start = tick
        self.flash_reason = d.reason
        self.flash_detail = d.detail
        self._preempt.clearing_to_flash = None
        self.exit_pending = False
        self._reset_rings()
        status.set_alarm("flash:", f"flash:{d.reason.value}")
        status.emit(EventCode.UNIT_FLASH_STATUS_CHANGE, 1)
        status.emit(EventCode.MODE_CHANGE, mode_code(Mode.FLASH))

    def exit_flash(self) -> None:
        preempt = self._preempt
        if preempt.clearing_to_flash is not None:
            preempt.clearing_to_flash = None  # back to service from where the clearance got
            if preempt.inputs:
                preempt.select()
            else:
                self._status.state = OperatingState.NORMAL
        elif self._status.state is OperatingState.FLASH:
            self.exit_pending = True

    def _reset_rings(self) -> None:
        self._rings.reset(self._status.tick)
        self._frame.reset()

    def enter_all_red(self, tick: int) -> None:
        status = self._status
        status.state = OperatingState.ALL_RED
        status.state_start = tick
        self.exit_pending = False
        self.flash_reason = None
        status.set_alarm("flash:", None)
        status.emit(EventCode.UNIT_FLASH_STATUS_CHANGE, 0)
        status.emit(EventCode.MODE_CHANGE, mode_code(self.mode))
        self._timing.apply_pending()
        self._reset_rings()

    def start_normal(self, tick: int) -> None:
        """All-red is over: each ring's start-up phase turns green."""
        layout = self._layout
        self._status.state = OperatingState.NORMAL
        starts = [
            p for p in layout.phase_ids if layout.phase_cfg[p].startup and p in layout.ring_phases
        ]
        group = layout.group_of[starts[0]] if starts else 0
        self._rings.group = group
        for ring in self._rings.rings:
            ring.start = tick
            ring.served_idx = -1
        for ring in self._rings.rings:
            p = next((q for q in ring.group_phases[group] if q in starts), None)
            if p is not None:
                self._phases.start_green(ring, p, tick)
        if self._preempt.inputs:
            self._preempt.select()
