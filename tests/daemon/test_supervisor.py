"""Field supervision in virtual time: every rule of docs/architecture.md's failure table.

The supervisor is pure (no clock, no I/O): these tests hand it the devices' reports and the
time, tick by tick, and run in milliseconds. The same rules are proven in real time, against
the emulator, by tests/hil/test_hil.py (``test_faults_are_survived``) and
tests/soak/test_link_blip.py.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

import pytest

from edgectl.cabinet.channels import ChannelState
from edgectl.cabinet.registers import CabinetSnapshot
from edgectl.config.loader import load_config
from edgectl.config.model import DaemonConfig, Mode
from edgectl.control.controller import Controller
from edgectl.control.types import (
    EnterFlash,
    ExitFlash,
    FlashReason,
    Inputs,
    Interval,
    OperatingState,
    Outputs,
)
from edgectl.daemon.supervisor import (
    MMU_RESET_INTERVAL_S,
    OUTPUT_LOSS_S,
    RECOVERY_HEALTHY_S,
    FieldSupervisor,
    Note,
    Supervision,
)
from edgectl.field.report import Health

EIGHT_PHASE = Path(__file__).resolve().parents[2] / "edgectl" / "examples" / "eight_phase.toml"
G, Y, R = ChannelState.G, ChannelState.Y, ChannelState.R
CHANNELS = (1, 2, 3, 4)
DETECTORS = (1, 2, 3, 4)
TICK = 0.1


@dataclass(frozen=True, slots=True)
class Report:
    """A device's report as the supervisor reads it."""

    health: Health = Health.ONLINE
    snapshot: CabinetSnapshot | None = None
    last_ok: float | None = None
    last_write_ok: float | None = None


def snapshot(
    t: float,
    *,
    presence: frozenset[int] = frozenset(),
    readback: Mapping[int, ChannelState] | None = None,
    mmu_fault: int = 0,
    cabinet_flash: bool = False,
    power_cycles: int = 0,
) -> CabinetSnapshot:
    return CabinetSnapshot(
        t=t,
        presence=presence,
        ped_buttons=frozenset(),
        readback=dict(readback or {}),
        mmu_tripped=mmu_fault != 0,
        cabinet_flash=cabinet_flash,
        in_control=True,
        mmu_fault=mmu_fault,
        mmu_fault_channels=frozenset(),
        heartbeat_echo=0,
        counts=(),
        uptime_s=0,
        power_cycles=power_cycles,
    )


def outputs(state: OperatingState, frame: Mapping[int, ChannelState]) -> Outputs:
    return Outputs(
        t=0.0,
        channels=tuple(sorted(frame.items())),
        rings=(),
        state=state,
        mode=Mode.FIXED,
        plan=1,
        flash_reason=None,
        alarms=frozenset(),
        calls=frozenset(),
        ped_calls=frozenset(),
        detectors=(),
    )


def supervisor(
    readers: tuple[str, ...] = ("cabinet",), writers: tuple[str, ...] = ("cabinet",)
) -> FieldSupervisor:
    return FieldSupervisor(
        tick=TICK,
        detectors=DETECTORS,
        channels=CHANNELS,
        detector_loss_s=1.0,
        readers=readers,
        writers=writers,
    )


NORMAL = {1: G, 2: R, 3: G, 4: R}


@dataclass
class Cabinet:
    """One cabinet device (detectors and outputs) in virtual time, and its supervisor.

    Each :meth:`tick` reads (when answering), steps the supervisor, "runs the engine" (the
    ``state`` and ``frame`` given) and writes the frame (when answering): the load switches
    show it from the next read on, unless ``stuck`` overrides some channels."""

    sup: FieldSupervisor = field(default_factory=supervisor)
    now: float = 0.0
    answering: bool = True
    health: Health = Health.ONLINE
    presence: frozenset[int] = frozenset()
    mmu_fault: int = 0
    cabinet_flash: bool = False
    power_cycles: int = 0
    stuck: dict[int, ChannelState] = field(default_factory=dict)
    write_delay: float = 0.004
    shown: dict[int, ChannelState] = field(default_factory=dict)
    report: Report = field(default_factory=lambda: Report(health=Health.OFFLINE))
    notes: list[Note] = field(default_factory=list)

    def tick(
        self,
        state: OperatingState = OperatingState.NORMAL,
        frame: Mapping[int, ChannelState] = NORMAL,
    ) -> Supervision:
        self.now = round(self.now + TICK, 6)
        if self.answering:
            snap = snapshot(
                self.now,
                presence=self.presence,
                readback={**self.shown, **self.stuck},
                mmu_fault=self.mmu_fault,
                cabinet_flash=self.cabinet_flash,
                power_cycles=self.power_cycles,
            )
            self.report = replace(self.report, health=self.health, snapshot=snap, last_ok=self.now)
        else:
            self.report = replace(self.report, health=self.health)
        out = self.sup.step(self.now, {"cabinet": self.report})
        self.notes += out.notes
        submitted = self.now + 0.001 if self.report.health is not Health.OFFLINE else None
        self.sup.sent(outputs(state, frame), submitted_at=submitted)
        if self.answering and submitted is not None:
            self.shown = dict(frame)
            self.report = replace(self.report, last_write_ok=submitted + self.write_delay)
        return out

    def run(self, seconds: float, **kw: object) -> list[Supervision]:
        return [self.tick(**kw) for _ in range(round(seconds / TICK))]  # type: ignore[arg-type]

    def events(self, name: str) -> list[Note]:
        return [n for n in self.notes if n.event == name]


def flashes(steps: list[Supervision]) -> list[EnterFlash]:
    return [d for s in steps for d in s.directives if isinstance(d, EnterFlash)]


def exits(steps: list[Supervision]) -> int:
    return sum(isinstance(d, ExitFlash) for s in steps for d in s.directives)


@pytest.fixture
def cab() -> Cabinet:
    c = Cabinet()
    c.tick(OperatingState.STARTUP_FLASH)  # the field answered: ready
    assert c.sup.ready
    c.run(1.0)
    return c


# --- ready and the controller clock --------------------------------------------------------


def test_the_clock_waits_for_the_field_then_runs_on_the_grid() -> None:
    c = Cabinet(answering=False, health=Health.OFFLINE)
    steps = c.run(3.0, state=OperatingState.STARTUP_FLASH)
    assert {s.t for s in steps} == {0.0} and not c.sup.ready
    assert not any(s.failed_detectors for s in steps), "never heard: nothing to fail yet"
    c.answering, c.health = True, Health.ONLINE
    c.tick(OperatingState.STARTUP_FLASH)
    assert c.sup.ready
    assert [c.tick(OperatingState.STARTUP_FLASH).t for _ in range(3)] == [0.1, 0.2, 0.3]


def test_a_late_frame_holds_the_clock_for_a_tick(cab: Cabinet) -> None:
    cab.write_delay = 0.09  # a retried write: 86 ms later than usual
    t = cab.tick().t
    cab.write_delay = 0.004
    assert cab.tick().t == t, "held once"
    assert cab.tick().t == round(t + 0.1, 3)
    assert [n.fields["stalls"] for n in cab.events("frame_late_clock_held")] == [1]


def test_skipped_slots_move_the_clock_on() -> None:
    sup = supervisor(readers=(), writers=())
    assert sup.step(0.9, {}).t == 0.0
    sup.sent(outputs(OperatingState.STARTUP_FLASH, {}), submitted_at=None)
    assert sup.ready
    assert sup.step(1.0, {}, slots=1).t == 0.1
    assert sup.step(1.4, {}, slots=3).t == 0.4


# --- detectors -----------------------------------------------------------------------------


def test_a_silent_detector_device_fails_its_detectors_after_detector_loss_s(cab: Cabinet) -> None:
    cab.presence = frozenset({2, 9})  # 9 is not configured
    assert cab.tick().presence == {2}
    cab.answering = False
    silent_since = cab.now
    steps = cab.run(0.9)  # within detector_loss_s: still believed
    assert all(s.presence == {2} and not s.failed_detectors for s in steps)
    step = cab.tick()
    if not step.failed_detectors:  # silent for 1.0 s (to within rounding): still believed
        assert step.presence == {2}
        step = cab.tick()
    assert step.failed_detectors == set(DETECTORS) and step.presence == set()
    (failed,) = cab.events("detectors_failed")
    assert failed.level == "error"
    assert failed.fields["detectors"] == list(DETECTORS)
    silent_for = failed.fields["silent_for_s"]
    assert silent_for == round(cab.now - silent_since, 2) and 1.0 <= silent_for <= 1.1
    assert all(s.failed_detectors for s in cab.run(2.0))
    assert len(cab.events("detectors_failed")) == 1, "logged once per silence"
    cab.answering = True
    back = cab.tick()
    assert back.failed_detectors == set() and back.presence == {2}
    assert [n.fields["device"] for n in cab.events("detectors_restored")] == ["cabinet"]


def test_after_ready_a_detector_device_without_a_read_is_failed() -> None:
    sup = supervisor(readers=("detectors",), writers=())
    assert sup.step(0.1, {"detectors": Report()}).failed_detectors == set()
    sup.sent(outputs(OperatingState.STARTUP_FLASH, {}), submitted_at=None)
    assert not sup.ready, "a detector device has not answered yet"
    reports = {"detectors": Report(snapshot=snapshot(0.15), last_ok=0.15)}
    sup.step(0.2, reports)
    sup.sent(outputs(OperatingState.STARTUP_FLASH, {}), submitted_at=None)
    assert sup.ready
    step = sup.step(0.3, {"detectors": Report(health=Health.OFFLINE)})
    assert step.failed_detectors == set(DETECTORS)
    assert step.notes[-1].fields["silent_for_s"] is None


# --- output loss ---------------------------------------------------------------------------


def test_no_frame_written_for_output_loss_s_flashes(cab: Cabinet) -> None:
    cab.answering = False  # no read, no write; the link still counts as up
    last_write = cab.report.last_write_ok
    assert last_write is not None
    steps = cab.run(3.0)
    first = next(i for i, s in enumerate(steps) if s.directives)
    silent_for = [cab.now - (len(steps) - 1 - i) * TICK - last_write for i in (first - 1, first)]
    assert silent_for[0] <= OUTPUT_LOSS_S < silent_for[1]
    assert flashes(steps) == [EnterFlash(FlashReason.OUTPUT_LOST, "output device lost: cabinet")], (
        "flashed once, not every tick"
    )
    (fault,) = cab.events("output_fault")
    assert fault.fields["reason"] == "output device lost: cabinet"
    assert cab.sup.fault == "output device lost: cabinet"


def test_an_output_device_that_never_wrote_is_lost_once_ready() -> None:
    sup = supervisor(readers=(), writers=("outputs",))
    assert sup.step(0.1, {"outputs": Report(health=Health.OFFLINE)}).directives == ()
    sup.sent(outputs(OperatingState.STARTUP_FLASH, {}), submitted_at=None)
    step = sup.step(0.2, {"outputs": Report(health=Health.OFFLINE)})
    assert step.directives == (EnterFlash(FlashReason.OUTPUT_LOST, "output device lost: outputs"),)


def test_a_link_that_drops_and_reconnects_within_1s_holds_the_clock_but_does_not_flash(
    cab: Cabinet,
) -> None:
    """tests/soak/test_link_blip.py in virtual time: the Modbus client closed the link."""
    t = cab.tick().t
    cab.answering, cab.health = False, Health.OFFLINE
    held = cab.run(0.5)
    assert {s.t for s in held} == {t}, "nothing delivered: the clock holds"
    cab.answering, cab.health = True, Health.ONLINE
    after = cab.run(2.0)
    assert flashes(held + after) == [] and cab.sup.fault == ""
    assert after[-1].t > t


def test_the_clock_moves_on_after_max_stall_while_the_link_is_down(cab: Cabinet) -> None:
    t = cab.tick().t
    cab.answering, cab.health = False, Health.OFFLINE
    steps = cab.run(1.5)
    assert [s.t for s in steps[:10]] == [t] * 10
    assert steps[10].t == round(t + 0.1, 3), "capped at max_stall"
    assert flashes(steps), "by then the output-loss rule has flashed"


# --- readback ------------------------------------------------------------------------------


def test_readback_differing_from_both_last_frames_for_3_reads_flashes(cab: Cabinet) -> None:
    cab.stuck = {3: R}  # channel 3 is told green and shows red
    assert flashes(cab.run(0.2)) == []
    (flash,) = flashes([cab.tick()])
    assert flash == EnterFlash(FlashReason.OUTPUT_LOST, "readback mismatch on channels [3]")


def test_readback_may_show_either_of_the_last_two_frames(cab: Cabinet) -> None:
    """The write of a frame may land after the next read: one frame of lag is not a fault."""
    frames = [NORMAL, {1: Y, 2: R, 3: Y, 4: R}, {1: R, 2: R, 3: R, 4: R}, {1: R, 2: G, 3: R, 4: G}]
    older: dict[int, ChannelState] = dict(NORMAL)
    for frame in frames * 3:
        cab.stuck = older  # the frame before the last one: its successor is still on the wire
        before = dict(cab.shown)
        cab.tick(frame=frame)
        older = before
    assert cab.sup.fault == ""
    cab.stuck = {1: G, 2: G, 3: G, 4: G}  # while a real mismatch is still caught
    assert flashes(cab.run(0.3))


def test_a_stale_snapshot_is_not_compared_again(cab: Cabinet) -> None:
    """Reads failing, writes going on: the last good read predates the frames written since;
    comparing it again and again counted a mismatch that was not there (found by the soak)."""
    cab.answering = False
    last_write = cab.report.last_write_ok
    assert last_write is not None
    frames = [{1: Y, 2: R, 3: Y, 4: R}, {1: R, 2: R, 3: R, 4: R}, {1: R, 2: G, 3: R, 4: G}]
    for i, frame in enumerate(frames * 2):
        cab.tick(frame=frame)
        cab.report = replace(cab.report, last_write_ok=last_write + (i + 1) * TICK)
    assert cab.sup.fault == ""


# --- the MMU, the cabinet's own flash, power cycles ----------------------------------------


def test_a_watchdog_latch_flashes_and_is_reset_every_3s_while_the_link_is_up(
    cab: Cabinet,
) -> None:
    cab.mmu_fault = 4  # watchdog
    steps = cab.run(7.0)
    assert flashes(steps) == [EnterFlash(FlashReason.MMU, "mmu tripped (fault 4)")]
    at = [i for i, s in enumerate(steps) if s.mmu_reset]
    assert at[0] == 0 and len(at) == 3
    every = round(MMU_RESET_INTERVAL_S / TICK)
    assert all(b - a in (every, every + 1) for a, b in itertools.pairwise(at))
    assert [n.fields["fault"] for n in cab.events("mmu_auto_reset")] == [4, 4, 4]


def test_no_automatic_reset_while_an_output_device_is_offline(cab: Cabinet) -> None:
    cab.mmu_fault = 5  # power cycle
    cab.health = Health.OFFLINE  # the snapshot is still fresh, the link is not
    cab.answering = True
    steps = cab.run(0.5)
    assert flashes(steps) == [EnterFlash(FlashReason.MMU, "mmu tripped (fault 5)")]
    assert not any(s.mmu_reset for s in steps)


def test_a_conflict_latch_waits_for_the_operator(cab: Cabinet) -> None:
    cab.mmu_fault = 1  # conflict
    steps = cab.run(10.0, state=OperatingState.FLASH)
    assert flashes(steps) == [EnterFlash(FlashReason.MMU, "mmu tripped (fault 1)")]
    assert not any(s.mmu_reset for s in steps)
    assert exits(steps) == 0 and cab.sup.fault == "mmu tripped (fault 1)"


def test_the_cabinet_in_its_own_flash_while_the_engine_runs_flashes(cab: Cabinet) -> None:
    cab.tick(OperatingState.STARTUP_FLASH)
    cab.cabinet_flash = True
    assert flashes(cab.run(1.0, state=OperatingState.STARTUP_FLASH)) == [], "its own start-up"
    (flash,) = flashes(cab.run(0.3))
    assert flash == EnterFlash(FlashReason.OUTPUT_LOST, "cabinet in flash")


def test_a_power_cycle_flashes_and_the_cabinet_is_taken_over_again(cab: Cabinet) -> None:
    cab.power_cycles = 1
    (flash,) = flashes([cab.tick()])
    assert flash == EnterFlash(FlashReason.OUTPUT_LOST, "cabinet power cycled")
    steps = cab.run(RECOVERY_HEALTHY_S + 0.5, state=OperatingState.FLASH)
    assert exits(steps) == 1
    assert [n.fields["was"] for n in cab.events("output_recovered")] == ["cabinet power cycled"]


# --- recovery ------------------------------------------------------------------------------


def test_recovery_waits_for_1s_of_healthy_io_and_for_flash(cab: Cabinet) -> None:
    cab.answering = False
    cab.run(1.5)
    assert cab.sup.fault
    cab.answering = True
    running = cab.run(3.0)  # healthy, but the engine has not reached flash yet
    assert exits(running) == 0
    assert cab.tick(OperatingState.FLASH).directives == ()  # the engine reaches flash
    assert cab.tick(OperatingState.FLASH).directives == (ExitFlash(),)
    assert cab.sup.fault == ""
    cab2 = Cabinet()
    cab2.tick(OperatingState.STARTUP_FLASH)
    cab2.run(1.0)
    cab2.answering = False
    cab2.run(1.5)
    cab2.answering = True
    steps = cab2.run(RECOVERY_HEALTHY_S + 0.5, state=OperatingState.FLASH)
    healthy = [i for i, s in enumerate(steps) if s.directives == (ExitFlash(),)]
    assert len(healthy) == 1
    ticks = round(RECOVERY_HEALTHY_S / TICK)
    assert healthy[0] in (ticks, ticks + 1), "1 s after the first good tick"


def test_a_fault_during_recovery_starts_the_wait_again(cab: Cabinet) -> None:
    cab.mmu_fault = 4
    cab.run(0.3)
    cab.mmu_fault = 0
    cab.run(0.5, state=OperatingState.FLASH)
    cab.mmu_fault = 4  # tripped again before the second was over
    cab.tick(OperatingState.FLASH)
    cab.mmu_fault = 0
    steps = cab.run(1.0, state=OperatingState.FLASH)
    assert exits(steps) == 0
    assert exits(cab.run(0.2, state=OperatingState.FLASH)) == 1


# --- the whole silent-cabinet story with the real engine -----------------------------------


def field_supervisor(config: DaemonConfig) -> FieldSupervisor:
    """The supervisor the daemon builds for ``config``'s single cabinet device."""
    return FieldSupervisor(
        tick=config.field.tick,
        detectors=[d.id for d in config.detectors],
        channels=[c.id for c in config.channels],
        detector_loss_s=config.field.detector_loss_s,
        readers=["cabinet"],
        writers=["cabinet"],
    )


def test_a_silent_cabinet_is_failed_safe_flashed_and_taken_over_again() -> None:
    """test_hil.py's ``silent@56+3`` in virtual time, with the engine of eight_phase.toml:
    fail-safe calls within 2 s, flash, the MMU's watchdog latch reset automatically, recovery
    through all-red, green again within 12 s of the cabinet answering."""
    config = load_config(EIGHT_PHASE)
    controller = Controller(config)
    sup = field_supervisor(config)
    now = 0.0
    report = Report()
    shown: dict[int, ChannelState] = {}
    watchdog = False  # the MMU latch: no frame for 0.5 s (firmware_sim's watchdog)
    notes: list[Note] = []
    silent = (20.0, 23.0)
    green_after: float | None = None
    flash_seen = False
    for _ in range(600):
        now = round(now + 0.1, 6)
        answering = not silent[0] <= now < silent[1]
        last = report.last_write_ok
        if answering and last is not None and now - last > 0.5:
            watchdog = True
        if answering:
            snap = snapshot(now, readback=shown, mmu_fault=4 if watchdog else 0)
            report = replace(report, health=Health.ONLINE, snapshot=snap, last_ok=now)
        elif now - silent[0] > 0.5:
            report = replace(report, health=Health.OFFLINE)
        step = sup.step(now, {"cabinet": report})
        notes += step.notes
        if step.mmu_reset:
            watchdog = False
        out = controller.step(
            step.t,
            Inputs(
                presence=step.presence,
                failed_detectors=step.failed_detectors,
                directives=step.directives,
            ),
        )
        flash_seen |= out.state is OperatingState.FLASH
        sent = now + 0.001 if report.health is not Health.OFFLINE else None
        sup.sent(out, submitted_at=sent)
        if answering and sent is not None:
            shown = dict(out.channels)
            report = replace(report, last_write_ok=sent + 0.004)
        if (
            green_after is None
            and now > silent[1]
            and any(r.interval is Interval.GREEN for r in out.rings)
        ):
            green_after = now
    by_name = {n.event: n for n in reversed(notes)}
    failed = by_name["detectors_failed"]
    assert failed.fields["detectors"] == [d.id for d in config.detectors]
    silent_for = failed.fields["silent_for_s"]
    assert isinstance(silent_for, float) and silent_for <= 2.0
    assert by_name["output_fault"].fields["reason"] == "output device lost: cabinet"
    assert flash_seen
    assert "mmu_auto_reset" in by_name
    assert by_name["output_recovered"].fields["was"] == "output device lost: cabinet"
    assert green_after is not None and green_after - silent[1] <= 12.0
    assert sup.fault == "" and sup.clock.t > 50.0


def test_a_restart_into_a_latched_mmu_gets_ready_and_takes_the_cabinet_over() -> None:
    """A daemon restarted after the watchdog killed a wedged one finds the MMU latched
    (watchdog fault) before its first frame. The fault flash it enters at t = 0 must not stop
    the controller clock — recovery waits ``min_recovery_flash`` of controller time, and a
    clock held for want of READY would wait for ever (systemd then killed the daemon at
    ``TimeoutStartSec``: the junction flashed a minute instead of seconds)."""
    config = load_config(EIGHT_PHASE)
    controller = Controller(config)
    sup = field_supervisor(config)
    now, report, watchdog = 0.0, Report(), True
    shown: dict[int, ChannelState] = {}
    ready_at: float | None = None
    green_at: float | None = None
    for _ in range(400):
        now = round(now + 0.1, 6)
        snap = snapshot(now, readback=shown, mmu_fault=4 if watchdog else 0)
        report = replace(report, health=Health.ONLINE, snapshot=snap, last_ok=now)
        step = sup.step(now, {"cabinet": report})
        if step.mmu_reset:
            watchdog = False
        out = controller.step(step.t, Inputs(directives=step.directives))
        if sup.sent(out, submitted_at=now + 0.001):
            ready_at = now
        shown = dict(out.channels)
        report = replace(report, last_write_ok=now + 0.005)
        if green_at is None and any(r.interval is Interval.GREEN for r in out.rings):
            green_at = now
    assert ready_at is not None and ready_at <= 1.0, "READY=1 once the field answered"
    assert green_at is not None and green_at <= 20.0, "the cabinet taken over, green again"
    assert sup.fault == ""
