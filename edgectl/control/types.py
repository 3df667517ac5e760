"""Value types at the seam of the pure control core.

The core is driven as ``Controller.step(now, inputs) -> Outputs``: ``now`` is the controller's
own monotonic time in seconds (virtual in tests and the SUMO bench, the tick grid in the
daemon), advancing by the tick (0.1 s). Nothing here does I/O or reads a clock.

Strategies and remote commands never touch intervals: they return :class:`Requests`, and the
engine decides when, if ever, a request is safe to honour.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field

from edgectl.cabinet.channels import ChannelState
from edgectl.config.model import Mode, Plan


class Interval(enum.StrEnum):
    """Vehicle interval of the phase a ring is timing."""

    GREEN = "green"
    YELLOW = "yellow"
    RED_CLEAR = "red_clear"
    RED = "red"  # resting/dwelling in red, no phase timing


class PedInterval(enum.StrEnum):
    DONT_WALK = "dont_walk"
    WALK = "walk"
    PED_CLEAR = "ped_clear"


class Termination(enum.StrEnum):
    GAP_OUT = "gap_out"
    MAX_OUT = "max_out"
    FORCE_OFF = "force_off"
    PREEMPT = "preempt"
    FLASH = "flash"


class FlashReason(enum.StrEnum):
    STARTUP = "startup"
    COMMAND = "command"  # set_mode flash
    FAULT = "fault"  # internal invariant violation / monitor
    OUTPUT_LOST = "output_lost"  # output device lost or readback mismatch
    MMU = "mmu"  # conflict monitor tripped in the cabinet


class OperatingState(enum.StrEnum):
    """What the whole controller is doing."""

    STARTUP_FLASH = "startup_flash"
    ALL_RED = "all_red"  # start-up or flash-exit all-red
    NORMAL = "normal"
    PREEMPT = "preempt"
    FLASH = "flash"


@dataclass(frozen=True, slots=True)
class Event:
    """A high-resolution event (Indiana/ATSPM enumeration).

    ``t`` is controller time in seconds (the daemon maps it to UTC).
    """

    t: float
    code: int
    param: int


class EventCode(enum.IntEnum):
    """Indiana hi-res controller event enumerations used by edgectl."""

    PHASE_BEGIN_GREEN = 1
    PHASE_CHECK = 2
    PHASE_MIN_COMPLETE = 3
    PHASE_GAP_OUT = 4
    PHASE_MAX_OUT = 5
    PHASE_FORCE_OFF = 6
    PHASE_GREEN_TERMINATION = 7
    PHASE_BEGIN_YELLOW = 8
    PHASE_END_YELLOW = 9
    PHASE_BEGIN_RED_CLEAR = 10
    PHASE_END_RED_CLEAR = 11
    PHASE_INACTIVE = 12
    PED_BEGIN_WALK = 21
    PED_BEGIN_CLEAR = 22
    PED_BEGIN_DONT_WALK = 23
    BARRIER_TERMINATION = 31
    PHASE_HOLD_ACTIVE = 41
    PHASE_HOLD_RELEASED = 42
    PHASE_CALL_REGISTERED = 43
    PHASE_CALL_DROPPED = 44
    PED_CALL_REGISTERED = 45
    PHASE_OMIT_ON = 46
    PHASE_OMIT_OFF = 47
    DETECTOR_OFF = 81
    DETECTOR_ON = 82
    DETECTOR_RESTORED = 83
    DETECTOR_FAULT_OTHER = 84
    DETECTOR_FAULT_WATCHDOG = 85
    DETECTOR_FAULT_OPEN_LOOP = 86
    DETECTOR_FAULT_SHORTED_LOOP = 87
    DETECTOR_FAULT_EXCESSIVE_CHANGE = 88
    PED_DETECTOR_OFF = 89
    PED_DETECTOR_ON = 90
    PREEMPT_ADVANCE_WARNING = 101
    PREEMPT_CALL_ON = 102
    PREEMPT_GATE_DOWN = 103
    PREEMPT_CALL_OFF = 104
    PREEMPT_ENTRY_STARTED = 105
    PREEMPT_BEGIN_TRACK_CLEARANCE = 106
    PREEMPT_BEGIN_DWELL = 107
    PREEMPT_MAX_PRESENCE_EXCEEDED = 110
    PREEMPT_EXIT = 111
    TSP_CHECK_IN = 112
    TSP_EARLY_GREEN = 113
    TSP_EXTEND_GREEN = 114
    TSP_CHECK_OUT = 115
    COORD_PATTERN_CHANGE = 131
    CYCLE_LENGTH_CHANGE = 132
    OFFSET_LENGTH_CHANGE = 133
    SPLIT_CHANGE = 134
    COORD_CYCLE_STATE_CHANGE = 150  # param: 0 free, 1 in step, 3 shortway, 4 dwell, 6 pick-up
    UNIT_FLASH_STATUS_CHANGE = 173
    ALARM_STATUS_CHANGE = 174
    POWER_FAILURE = 182
    POWER_RESTORED = 184
    # edgectl-specific, outside the Indiana range (>= 200)
    MODE_CHANGE = 200
    COMMAND_REJECTED = 201
    COMMAND_APPLIED = 202
    MONITOR_VIOLATION = 203
    CONFIG_RELOADED = 204
    CONFIG_REJECTED = 205
    OUTBOX_DROPPED = 206
    HOLD_LIMIT_REACHED = 207  # param: the phase whose hold is ignored for the rest of its green
    ZONE_FAULT = 220  # param: the zone sensor zone that failed (no data, stuck, implausible)
    ZONE_RESTORED = 221  # param: the zone that is healthy again (or for the first time)


@dataclass(frozen=True, slots=True)
class Requests:
    """What a strategy or an operator asks for. The engine decides what it honours.

    - ``calls`` / ``ped_calls``: place a vehicle / pedestrian call on these phases.
    - ``hold``: keep these phases green past gap-out/max-out (never past a force-off of the
      kernel itself, a preempt, or a flash).
    - ``force_off``: end these phases' green once min green (and walk/ped clear) is done.
    - ``omit`` / ``ped_omit``: do not start these phases (a phase already green is not cut).
    - ``next_phase``: ring id → the phase that ring should serve next (skipping the ring's
      sequence order); honoured only when safe and consistent with the barrier.
    - ``max2``: time max green 2 instead of max 1.
    """

    calls: frozenset[int] = frozenset()
    ped_calls: frozenset[int] = frozenset()
    hold: frozenset[int] = frozenset()
    force_off: frozenset[int] = frozenset()
    omit: frozenset[int] = frozenset()
    ped_omit: frozenset[int] = frozenset()
    next_phase: Mapping[int, int] = field(default_factory=dict)
    max2: bool = False

    def merged(self, other: Requests) -> Requests:
        nxt = dict(self.next_phase)
        nxt.update(other.next_phase)
        return Requests(
            calls=self.calls | other.calls,
            ped_calls=self.ped_calls | other.ped_calls,
            hold=self.hold | other.hold,
            force_off=self.force_off | other.force_off,
            omit=self.omit | other.omit,
            ped_omit=self.ped_omit | other.ped_omit,
            next_phase=nxt,
            max2=self.max2 or other.max2,
        )


NO_REQUESTS = Requests()


# --- one-shot directives (mode/plan/flash/preempt), applied by the engine at safe points ---


@dataclass(frozen=True, slots=True)
class SetMode:
    mode: Mode


@dataclass(frozen=True, slots=True)
class SetPlan:
    plan: Plan  # already validated by the safety kernel


@dataclass(frozen=True, slots=True)
class EnterFlash:
    reason: FlashReason
    detail: str = ""


@dataclass(frozen=True, slots=True)
class ExitFlash:
    """Leave flash through all-red to the start-up phases (explicit, logged)."""


@dataclass(frozen=True, slots=True)
class Preempt:
    input: int  # preempt input number (1..)
    active: bool
    phases: tuple[int, ...] = ()  # dwell phases (track clearance / EV approach)


Directive = SetMode | SetPlan | EnterFlash | ExitFlash | Preempt


@dataclass(frozen=True, slots=True)
class ZoneReading:
    """One zone sensor measurement (camera / radar) as the field decoded it.

    ``frame`` is the sensor's measurement counter (it advances with every new measurement:
    that tells a stuck sensor from an empty road); ``t`` the controller time of the read.
    ``objects``: (distance to the stop line m, speed m/s) per vehicle, nearest first, no
    identities.
    """

    zone: int
    frame: int
    vehicles: int
    halting: int
    queue_m: float
    mean_speed_mps: float
    objects: tuple[tuple[float, float], ...] = ()
    t: float = 0.0


@dataclass(frozen=True, slots=True)
class Inputs:
    """Everything the core sees in one tick."""

    presence: frozenset[int] = frozenset()  # detector ids occupied now
    failed_detectors: frozenset[int] = frozenset()  # failed by the field (device lost)
    ped_buttons: frozenset[int] = frozenset()  # phases whose ped push-button is pressed
    requests: Requests = NO_REQUESTS  # operator requests (commands); merged with strategy's
    directives: tuple[Directive, ...] = ()
    # the shared clock of coordination (seconds; see edgectl.control.coordination): in the
    # daemon UTC epoch seconds plus the zone's fixed UTC offset, in the SUMO bench the
    # simulation time; None: the controller's own time stands in
    sync_s: float | None = None
    # zone sensors: this tick's measurements (a zone whose sensor said nothing is absent)
    zones: tuple[ZoneReading, ...] = ()


@dataclass(frozen=True, slots=True)
class RingStatus:
    ring: int
    phase: int | None  # phase being timed; None when dwelling with nothing
    interval: Interval
    ped: PedInterval
    elapsed: float  # seconds in the current interval
    next_phase: int | None = None


@dataclass(frozen=True, slots=True)
class DetectorStatus:
    id: int
    on: bool
    failed: bool
    fault: str | None = None  # "no_activity" | "max_presence" | "erratic" | "lost"


@dataclass(frozen=True, slots=True)
class ZoneStatus:
    """A zone sensor zone as the controller sees it this tick."""

    id: int
    failed: bool  # strategies use the zone's loops instead
    fault: str | None = None  # "no_data" | "stuck" | "implausible"; a failed zone in its
    # recovery hold-off keeps the fault it had
    reading: ZoneReading | None = None  # the latest measurement (None: none yet)


@dataclass(frozen=True, slots=True)
class Outputs:
    """Result of one tick: the output frame and what happened."""

    t: float
    channels: tuple[tuple[int, ChannelState], ...]  # (channel id, state), ascending id
    rings: tuple[RingStatus, ...]
    state: OperatingState
    mode: Mode
    plan: int
    flash_reason: FlashReason | None
    alarms: frozenset[str]
    calls: frozenset[int]  # vehicle calls registered
    ped_calls: frozenset[int]
    detectors: tuple[DetectorStatus, ...]
    events: tuple[Event, ...] = ()
    cycle_time: float | None = None  # coordinated/fixed: position in the cycle
    # coordinated/fixed: how the cycle walks into step with the shared clock ("immediate",
    # "shortway", "dwell"); None in step or without a cycle
    transition: str | None = None
    zones: tuple[ZoneStatus, ...] = ()  # zone sensors, ascending id (none configured: ())

    @property
    def frame(self) -> dict[int, ChannelState]:
        return dict(self.channels)
