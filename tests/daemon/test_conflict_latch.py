"""A conflict flash ends only by an explicit ``exit_flash`` after the MMU reset (issue 21), in
virtual time with the real engine; watchdog and power-cycle latches still recover by
themselves."""

from __future__ import annotations

from dataclasses import replace

import pytest

from edgectl.cabinet.channels import ChannelState
from edgectl.config.loader import load_config
from edgectl.control.controller import Controller
from edgectl.control.types import Directive, ExitFlash, Inputs, OperatingState
from edgectl.daemon.supervisor import FieldSupervisor, Note
from edgectl.field.report import Health
from tests.daemon.test_supervisor import EIGHT_PHASE, Cabinet, Report, exits, snapshot


class Junction:
    """eight_phase.toml's engine behind a FieldSupervisor and a cabinet whose MMU latches."""

    def __init__(self) -> None:
        config = load_config(EIGHT_PHASE)
        self.controller = Controller(config)
        self.sup = FieldSupervisor(
            tick=config.field.tick,
            detectors=[d.id for d in config.detectors],
            channels=[c.id for c in config.channels],
            detector_loss_s=config.field.detector_loss_s,
            readers=["cabinet"],
            writers=["cabinet"],
        )
        self.now = 0.0
        self.report = Report()
        self.shown: dict[int, ChannelState] = {}
        self.mmu_fault = 0
        self.notes: list[Note] = []
        self.state = OperatingState.STARTUP_FLASH

    def current(self) -> OperatingState:
        return self.state

    def run(self, seconds: float, directives: tuple[Directive, ...] = ()) -> None:
        for i in range(round(seconds / 0.1)):
            self.now = round(self.now + 0.1, 6)
            snap = snapshot(self.now, readback=self.shown, mmu_fault=self.mmu_fault)
            self.report = replace(
                self.report, health=Health.ONLINE, snapshot=snap, last_ok=self.now
            )
            step = self.sup.step(self.now, {"cabinet": self.report})
            self.notes += step.notes
            if step.mmu_reset:
                self.mmu_fault = 0  # the cabinet's MMU takes the automatic reset
            out = self.controller.step(
                step.t,
                Inputs(directives=(*step.directives, *(directives if i == 0 else ()))),
            )
            self.state = out.state
            sent = self.now + 0.001
            self.sup.sent(out, submitted_at=sent)
            self.shown = dict(out.channels)
            self.report = replace(self.report, last_write_ok=sent + 0.004)


@pytest.fixture
def cab() -> Cabinet:
    c = Cabinet()
    c.tick(OperatingState.STARTUP_FLASH)  # the field answered: ready
    c.run(1.0)
    return c


def test_a_conflict_flash_survives_the_mmu_reset_until_exit_flash() -> None:
    j = Junction()
    j.run(15.0)
    assert j.current() is OperatingState.NORMAL
    j.mmu_fault = 1  # conflict latched by the MMU
    j.run(3.0)
    assert j.current() is OperatingState.FLASH
    assert j.sup.fault == "mmu tripped (fault 1)"  # exit_flash is refused meanwhile
    j.run(20.0)
    assert j.current() is OperatingState.FLASH, "no automatic reset of a conflict latch"
    j.mmu_fault = 0  # an operator's mmu_reset reached the MMU
    j.run(60.0)
    assert j.current() is OperatingState.FLASH, "a conflict flash never ends by itself"
    assert j.sup.fault == ""  # the field is healthy: exit_flash is now accepted
    assert any(n.event == "mmu_reset_awaiting_exit_flash" for n in j.notes)
    assert not any(n.event == "output_recovered" for n in j.notes)
    j.run(1.0, directives=(ExitFlash(),))  # the explicit, deliberate step
    j.run(15.0)
    assert j.current() is OperatingState.NORMAL


def test_a_watchdog_latch_still_recovers_by_itself(cab: Cabinet) -> None:
    cab.mmu_fault = 4
    cab.run(0.3)
    cab.mmu_fault = 0
    steps = cab.run(2.0, state=OperatingState.FLASH)
    assert exits(steps) == 1


def test_a_reset_conflict_latch_gives_no_exit_flash_directive(cab: Cabinet) -> None:
    cab.mmu_fault = 1
    cab.run(1.0, state=OperatingState.FLASH)
    cab.mmu_fault = 0  # reset by the operator
    steps = cab.run(30.0, state=OperatingState.FLASH)
    assert exits(steps) == 0
    assert cab.sup.fault == ""
    # and the next fault is judged afresh: a watchdog latch afterwards recovers by itself
    cab.mmu_fault = 4
    cab.run(0.3, state=OperatingState.FLASH)
    cab.mmu_fault = 0
    assert exits(cab.run(2.0, state=OperatingState.FLASH)) == 1
