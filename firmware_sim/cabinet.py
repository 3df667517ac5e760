"""Load switches and the MMU (conflict monitor) of the emulated cabinet. Pure, no I/O.

Behaviour, as a real MMU:

- Power-up: the cabinet is in flash (each channel shows its flash colour, FR by default) and
  the load switches ignore the controller until it *takes over*: its heartbeat is changing
  and it sends an all-red frame (every channel R, DW or OFF). From then on the load switches
  show the frames as they arrive.
- While the controller is in control, the MMU latches a fault and puts the cabinet in flash on
  conflicting non-red channels for longer than ``conflict_s`` (0.3 s), a vehicle yellow
  shorter than ``min_yellow_s`` (2.7 s), a vehicle green (or flashing yellow arrow) followed
  by red without yellow, a heartbeat that has not changed for ``watchdog_s`` (1 s), or a state
  the channel's kind cannot show (a green on a pedestrian channel, a walk on a vehicle
  channel).
- Flashing yellow arrow (FYA) mode, per arrow channel of the card (``[cabinet.mmu] fya``:
  arrow channel → the channels it yields to): in a frame that is not the controller's flash,
  FY on the arrow is a permissive movement. It, and the steady Y that ends it, may be shown
  beside the channels it yields to; towards every other conflicting channel it is a right of
  way like a green; and it must end in Y (FY → R/DW/OFF is ``no_yellow``). FY → G (to the
  protected green) is allowed, as are FY on a channel without an arrow (non-red, checked
  against the card as it stands) and the arrow's own G and protected Y (they conflict with
  the opposing through unless a permissive pair says otherwise).
- Frames made only of flash states (FR, FY, OFF, DW) are the controller's own flash: they are
  not checked (not even for conflicts while they are shown), and moving into them from any
  state is allowed (G → FR is a flash transfer).
- A heartbeat that stops while the controller's own flash is shown is a controller-initiated
  flash hand-over (a clean stop): the flash transfer relays keep the cabinet flashing, no
  fault is latched, and the controller takes over again as at power-up.
- The latch survives until :meth:`Cabinet.reset`; after it the controller takes over again
  exactly as at power-up.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from dataclasses import dataclass

from edgectl.cabinet.channels import ChannelState
from edgectl.cabinet.profile import CabinetWiring, ChannelKind, MmuFaultKind

__all__ = ["Cabinet", "MmuFault"]

_EPS = 1e-6  # timing comparisons tolerate float noise of the tick arithmetic
_FLASH_STATES = frozenset({ChannelState.FR, ChannelState.FY, ChannelState.OFF, ChannelState.DW})
_ALL_RED = frozenset({ChannelState.R, ChannelState.DW, ChannelState.OFF})
_VEHICLE_STATES = frozenset(
    {
        ChannelState.OFF,
        ChannelState.R,
        ChannelState.Y,
        ChannelState.G,
        ChannelState.FR,
        ChannelState.FY,
        ChannelState.DW,
    }
)
_PED_STATES = frozenset(
    {
        ChannelState.OFF,
        ChannelState.DW,
        ChannelState.FDW,
        ChannelState.W,
        ChannelState.FR,
        ChannelState.R,
    }
)


@dataclass(frozen=True, slots=True)
class MmuFault:
    """One latched MMU fault."""

    t: float
    kind: MmuFaultKind
    channels: frozenset[int]


class Cabinet:
    """The load switches and the MMU of one cabinet."""

    def __init__(self, wiring: CabinetWiring, *, now: float = 0.0) -> None:
        self.wiring = wiring
        self.channel_ids = tuple(sorted(c.id for c in wiring.channels))
        self._kind = {c.id: c.kind for c in wiring.channels}
        self._conflicts = wiring.conflicts()
        self._flash = {c: ChannelState[wiring.mmu.flash_state(c)] for c in self.channel_ids}
        # flashing yellow arrows: arrow channel → the channels it yields to
        self._yields = {a: frozenset(to) for a, to in wiring.mmu.fya.items()}
        self.faults: list[MmuFault] = []  # every latch, for the summary
        self.changes: list[tuple[float, int, ChannelState]] = []  # drained by the recorder
        self.frames_received = 0
        self.heartbeats = 0
        self.power_up(now)

    # ---- state ----------------------------------------------------------------------------

    def power_up(self, now: float) -> None:
        """Power-on: start-up flash, no latch, controller not in control."""
        self.latched: MmuFault | None = None
        self.in_control = False
        self.after_power_cycle = False
        self._hb_value: int | None = None
        self._hb_time: float | None = None
        self._conflict_since: float | None = None
        self._conflict_channels: frozenset[int] = frozenset()
        self._controller_flash = False  # the last frame was the controller's own flash
        self._arrows: set[int] = set()  # arrow channels showing a permissive FY (not flash)
        self._arrow_ends: set[int] = set()  # arrow channels in the steady Y ending one
        self.shown: dict[int, ChannelState] = {}
        self._since: dict[int, float] = {}
        self._show(now, self._flash)

    def power_cycle(self, now: float) -> None:
        self.power_up(now)
        self.after_power_cycle = True

    @property
    def tripped(self) -> bool:
        return self.latched is not None

    @property
    def cabinet_flash(self) -> bool:
        return self.latched is not None or not self.in_control

    @property
    def fault_kind(self) -> MmuFaultKind:
        if self.latched is not None:
            return self.latched.kind
        return MmuFaultKind.POWER_CYCLE if self.after_power_cycle else MmuFaultKind.NONE

    @property
    def fault_channels(self) -> frozenset[int]:
        return self.latched.channels if self.latched is not None else frozenset()

    @property
    def heartbeat_value(self) -> int:
        return self._hb_value or 0

    # ---- inputs from the controller -------------------------------------------------------

    def heartbeat(self, now: float, value: int) -> None:
        """A write of the heartbeat register; only a *changed* value feeds the watchdog."""
        if value != self._hb_value:
            self._hb_value = value
            self._hb_time = now
            self.heartbeats += 1

    def frame(self, now: float, states: Mapping[int, ChannelState]) -> None:
        """A write of the channel outputs (channel → commanded state; others keep theirs)."""
        self.frames_received += 1
        if self.latched is not None:
            return
        frame = dict(self.shown) if self.in_control else dict.fromkeys(self.shown, ChannelState.OFF)
        frame.update({c: s for c, s in states.items() if c in self.shown})
        if not self.in_control:
            if self._heartbeat_alive(now) and all(s in _ALL_RED for s in frame.values()):
                self.in_control = True
                self.after_power_cycle = False
                self._show(now, frame)
            return
        if all(s in _FLASH_STATES for s in frame.values()):
            self._conflict_since = None
            self._controller_flash = True
            self._forget_arrows()
            self._show(now, frame)
            return
        self._controller_flash = False
        if self._check_transitions(now, frame):
            return
        self._track_arrows(frame)
        self._show(now, frame)
        self._check_conflicts(now)

    def reset(self, now: float) -> bool:
        """Clear a latched fault (the reset button); True when one was latched."""
        if self.latched is None:
            return False
        self.latched = None
        self.in_control = False
        self._conflict_since = None
        self._forget_arrows()
        self._show(now, self._flash)
        return True

    def step(self, now: float) -> None:
        """Time passes: the watchdog and the conflict timer."""
        if self.latched is not None or not self.in_control:
            return
        if self._hb_time is None or now - self._hb_time > self.wiring.mmu.watchdog_s + _EPS:
            if self._controller_flash:
                # the controller handed over in its own flash: the cabinet keeps flashing
                self.in_control = False
                self._show(now, self._flash)
                return
            self._trip(now, MmuFaultKind.WATCHDOG, frozenset())
            return
        if not self._controller_flash:  # the controller's own flash is not checked
            self._check_conflicts(now)

    # ---- internals ------------------------------------------------------------------------

    def _heartbeat_alive(self, now: float) -> bool:
        return self._hb_time is not None and now - self._hb_time <= self.wiring.mmu.watchdog_s

    def _check_transitions(self, now: float, frame: Mapping[int, ChannelState]) -> bool:
        """Latch on an invalid, no-yellow or short-yellow transition; True when latched."""
        bad = frozenset(c for c, s in frame.items() if s not in self._allowed(c))
        if bad:
            self._trip(now, MmuFaultKind.INVALID_FRAME, bad)
            return True
        no_yellow: set[int] = set()
        short: set[int] = set()
        for c, new in frame.items():
            old = self.shown[c]
            if self._kind[c] != ChannelKind.VEHICLE or new == old:
                continue
            if old == ChannelState.G and new in _ALL_RED:
                no_yellow.add(c)
            elif old == ChannelState.FY and c in self._arrows and new in _ALL_RED:
                no_yellow.add(c)  # a flashing yellow arrow ends in yellow, like a green
            elif (
                old == ChannelState.Y
                and new != ChannelState.G
                and now - self._since[c] < self.wiring.mmu.min_yellow_s - _EPS
            ):
                short.add(c)
        if no_yellow:
            self._trip(now, MmuFaultKind.NO_YELLOW, frozenset(no_yellow))
            return True
        if short:
            self._trip(now, MmuFaultKind.SHORT_YELLOW, frozenset(short))
            return True
        return False

    def _allowed(self, channel: int) -> frozenset[ChannelState]:
        return _PED_STATES if self._kind[channel] == ChannelKind.PEDESTRIAN else _VEHICLE_STATES

    def _track_arrows(self, frame: Mapping[int, ChannelState]) -> None:
        """Which arrow channels show a permissive FY, or the steady Y that ends one, once
        ``frame`` (not the controller's flash) is shown."""
        for c in self._yields:
            new = frame[c]
            ending = new == ChannelState.Y and (c in self._arrows or c in self._arrow_ends)
            if new == ChannelState.FY:
                self._arrows.add(c)
            else:
                self._arrows.discard(c)
            if ending:
                self._arrow_ends.add(c)
            else:
                self._arrow_ends.discard(c)

    def _forget_arrows(self) -> None:
        self._arrows.clear()
        self._arrow_ends.clear()

    def _yielding(self, a: int, b: int) -> bool:
        """Does ``a`` show a flashing yellow arrow (or the Y ending one) yielding to ``b``?"""
        return (a in self._arrows or a in self._arrow_ends) and b in self._yields[a]

    def _check_conflicts(self, now: float) -> None:
        active = frozenset(
            itertools.chain.from_iterable(
                (a, b)
                for a, b in self._conflicts
                if not self.shown[a].is_red
                and not self.shown[b].is_red
                and not self._yielding(a, b)
                and not self._yielding(b, a)
            )
        )
        if not active:
            self._conflict_since = None
            return
        if self._conflict_since is None:
            self._conflict_since = now
            self._conflict_channels = active
        else:
            self._conflict_channels |= active
        if now - self._conflict_since > self.wiring.mmu.conflict_s + _EPS:
            self._trip(now, MmuFaultKind.CONFLICT, self._conflict_channels)

    def _trip(self, now: float, kind: MmuFaultKind, channels: frozenset[int]) -> None:
        fault = MmuFault(t=now, kind=kind, channels=channels)
        self.latched = fault
        self.faults.append(fault)
        self.in_control = False
        self._conflict_since = None
        self._forget_arrows()
        self._show(now, self._flash)

    def _show(self, now: float, frame: Mapping[int, ChannelState]) -> None:
        for c in self.channel_ids:
            state = frame[c]
            if self.shown.get(c) != state:
                self.shown[c] = state
                self._since[c] = now
                self.changes.append((now, c, state))
