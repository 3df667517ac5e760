"""The MMU and the load switches as a pure model (no server, virtual time)."""

from __future__ import annotations

from edgectl.cabinet.channels import ChannelState as S
from edgectl.cabinet.profile import MmuFaultKind, load_profile
from firmware_sim.cabinet import Cabinet

_WIRING = load_profile("builtin:two-phase").cabinet
assert _WIRING is not None
WIRING = _WIRING
# two-phase: 1 main (phase 2), 2 side (phase 4), 3 ped phase 2, 4 ped phase 4
ALL_RED = {1: S.R, 2: S.R, 3: S.DW, 4: S.DW}


class Drive:
    def __init__(self) -> None:
        self.cab = Cabinet(WIRING)
        self.t = 0.0
        self.hb = 0

    def hold(self, frame: dict[int, S], seconds: float) -> None:
        for _ in range(round(seconds / 0.1)):
            self.hb += 1
            self.cab.heartbeat(self.t, self.hb)
            self.cab.frame(self.t, frame)
            self.t = round(self.t + 0.1, 6)
            self.cab.step(self.t)


def test_conflict_boundary_is_300_ms() -> None:
    d = Drive()
    d.hold(ALL_RED, 0.5)
    d.hold({**ALL_RED, 1: S.G, 4: S.W}, 0.3)  # conflicting for 0.3 s: tolerated
    d.hold({**ALL_RED, 1: S.G}, 1.0)
    assert not d.cab.tripped
    d.hold({**ALL_RED, 1: S.G, 4: S.W}, 0.5)
    assert d.cab.latched is not None
    assert d.cab.latched.kind == MmuFaultKind.CONFLICT
    assert d.cab.latched.channels == {1, 4}
    assert d.cab.shown == {1: S.FR, 2: S.FR, 3: S.FR, 4: S.FR}


def test_yellow_of_exactly_min_is_accepted() -> None:
    d = Drive()
    d.hold(ALL_RED, 0.5)
    d.hold({**ALL_RED, 2: S.G}, 5.0)
    d.hold({**ALL_RED, 2: S.Y}, 2.7)
    d.hold(ALL_RED, 1.0)
    assert not d.cab.tripped
    d.hold({**ALL_RED, 2: S.G}, 5.0)
    d.hold({**ALL_RED, 2: S.Y}, 2.6)
    d.hold(ALL_RED, 0.1)
    assert d.cab.latched is not None
    assert d.cab.latched.kind == MmuFaultKind.SHORT_YELLOW


def test_flash_frames_are_not_checked_and_flash_exit_needs_no_takeover() -> None:
    d = Drive()
    d.hold(ALL_RED, 0.5)
    d.hold({**ALL_RED, 1: S.G, 3: S.W}, 3.0)
    d.hold({1: S.FY, 2: S.FR, 3: S.OFF, 4: S.OFF}, 3.0)  # flash transfer, yellow main
    d.hold(ALL_RED, 2.0)
    d.hold({**ALL_RED, 2: S.G}, 2.0)
    assert not d.cab.tripped
    assert d.cab.in_control
    assert d.cab.shown[2] == S.G


def test_no_takeover_without_heartbeat() -> None:
    cab = Cabinet(WIRING)
    cab.frame(0.0, ALL_RED)
    assert not cab.in_control
    cab.heartbeat(0.1, 5)
    cab.frame(0.1, ALL_RED)
    assert cab.in_control
    assert cab.heartbeats == 1
    assert cab.frames_received == 2


def test_unchanged_heartbeat_trips_the_watchdog() -> None:
    cab = Cabinet(WIRING)
    cab.heartbeat(0.0, 1)
    cab.frame(0.0, ALL_RED)
    for i in range(1, 12):
        cab.heartbeat(i * 0.1, 1)  # the same value: not a heartbeat
        cab.frame(i * 0.1, ALL_RED)
        cab.step(i * 0.1)
    assert cab.latched is not None
    assert cab.latched.kind == MmuFaultKind.WATCHDOG


def test_latch_survives_power_cycle_until_reset() -> None:
    d = Drive()
    d.hold(ALL_RED, 0.5)
    d.hold({**ALL_RED, 1: S.G}, 1.0)
    d.hold(ALL_RED, 0.1)
    assert d.cab.fault_kind == MmuFaultKind.NO_YELLOW
    assert d.cab.reset(d.t)
    assert not d.cab.reset(d.t)
    assert not d.cab.in_control
    assert d.cab.cabinet_flash
    d.hold(ALL_RED, 0.2)
    assert d.cab.in_control
    changes = [(c, s) for _, c, s in d.cab.changes]
    assert (1, S.G) in changes
    assert (1, S.FR) in changes


def test_heartbeat_stopping_in_controller_flash_is_a_clean_hand_over() -> None:
    d = Drive()
    d.hold(ALL_RED, 0.5)
    d.hold({**ALL_RED, 1: S.G}, 5.0)
    d.hold({**ALL_RED, 1: S.Y}, 4.0)
    d.hold(ALL_RED, 2.0)
    d.hold({1: S.FR, 2: S.FR, 3: S.OFF, 4: S.OFF}, 1.0)  # the controller's own flash
    for _ in range(30):  # then its heartbeat stops (a clean stop)
        d.t = round(d.t + 0.1, 6)
        d.cab.step(d.t)
    assert not d.cab.tripped
    assert d.cab.faults == []
    assert not d.cab.in_control
    assert d.cab.shown == {1: S.FR, 2: S.FR, 3: S.FR, 4: S.FR}
    d.hold(ALL_RED, 0.5)  # a restarted controller takes over as at power-up
    assert d.cab.in_control


def test_heartbeat_stopping_while_green_still_trips() -> None:
    d = Drive()
    d.hold(ALL_RED, 0.5)
    d.hold({**ALL_RED, 1: S.G}, 2.0)
    for _ in range(15):
        d.t = round(d.t + 0.1, 6)
        d.cab.step(d.t)
    assert d.cab.latched is not None
    assert d.cab.latched.kind == MmuFaultKind.WATCHDOG
