"""Typed, frozen configuration of one intersection and its daemon.

Field descriptions are the reference documentation (``docs/configuration.md`` is generated
from the same text). Times are seconds, distances metres, speeds km/h unless a name says
otherwise. Names follow NTCIP 1202 where one exists.

Structural checks (types, ranges, unknown keys) live on the models; cross-field checks that
need the whole intersection (rings against barriers, channels against phases, plan bounds)
live in :mod:`edgectl.config.validation` so that a remote plan goes through exactly the same
validation as one loaded from a file.
"""

from __future__ import annotations

import enum
from typing import Annotated, Literal

from pydantic import Field

from edgectl.config.settings import DaemonSettings, FieldSettings, MqttSettings
from edgectl.frozen import Frozen

PhaseId = Annotated[int, Field(ge=1, le=16, description="NEMA phase number 1..16")]
ChannelId = Annotated[int, Field(ge=1, le=32, description="load-switch channel 1..32")]
DetectorId = Annotated[int, Field(ge=1, le=64, description="detector input 1..64")]
Seconds = Annotated[float, Field(ge=0.0, le=3600.0)]
#: A sync reference: local time of day ``HH:MM`` or ``HH:MM:SS``.
SYNC_REFERENCE_PATTERN = r"^([01]\d|2[0-3]):[0-5]\d(:[0-5]\d)?$"


class Recall(enum.StrEnum):
    """NTCIP 1202 phase recall modes."""

    NONE = "none"
    MIN = "min"  # vehicle recall to min green
    MAX = "max"  # vehicle recall to max green (no gap-out)
    PED = "ped"  # pedestrian recall (walk every cycle)
    SOFT = "soft"  # recall only when no conflicting call is waiting


class Mode(enum.StrEnum):
    """Control modes (SPEC §5)."""

    FLASH = "flash"
    FIXED = "fixed"
    ACTUATED = "actuated"
    COORDINATED = "coordinated"
    ADAPTIVE = "adaptive"
    MAXPRESSURE = "maxpressure"
    MANUAL = "manual"


class ChannelSource(enum.StrEnum):
    VEHICLE = "vehicle"
    PEDESTRIAN = "pedestrian"
    OVERLAP = "overlap"


class DetectorType(enum.StrEnum):
    STOP_BAR = "stop_bar"  # presence loop at the stop line: calls and extends
    ADVANCE = "advance"  # count loop upstream (~40 m): extends and counts arrivals


class FlashMode(enum.StrEnum):
    ALL_RED = "all_red"
    YELLOW_MAIN = "yellow_main"  # main-street phases flash yellow, the rest flash red


class ForceOffMode(enum.StrEnum):
    FIXED = "fixed"  # force-off points fixed in the cycle; unused time goes to the next phase
    FLOATING = "floating"  # each phase limited to its split; unused time goes to coord phase


INTERSECTION_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"


class Intersection(Frozen):
    id: str = Field(
        pattern=INTERSECTION_ID_PATTERN,
        description="Intersection id; becomes the MQTT topic segment",
    )
    name: str = Field(default="", max_length=200, description="Human name of the junction")


class Phase(Frozen):
    id: PhaseId
    name: str = Field(default="", max_length=100)
    startup: bool = Field(default=False, description="Served first after start-up all-red")
    dual_entry: bool = Field(
        default=False,
        description="Time this phase when the other ring serves a call in the same barrier group "
        "and this ring has none (NTCIP phaseOptions dual entry)",
    )
    pedestrian: bool = Field(
        default=False, description="Has a pedestrian movement (walk/ped clear)"
    )
    crossing_m: float = Field(
        default=0.0, ge=0.0, le=100.0, description="Pedestrian crossing distance, for ped clearance"
    )
    main_street: bool = Field(
        default=False,
        description="Flashes yellow in yellow_main flash; coordinated in coordination",
    )
    approach_speed_kmh: float = Field(
        default=50.0, gt=0.0, le=130.0, description="Approach speed, for the ITE clearance check"
    )
    approach_grade: float = Field(
        default=0.0, ge=-0.1, le=0.1, description="Approach grade (fraction, uphill positive)"
    )
    intersection_width_m: float = Field(
        default=20.0, ge=0.0, le=150.0, description="Stop line to far-side clearance point"
    )


class Ring(Frozen):
    id: int = Field(ge=1, le=4)
    sequence: tuple[PhaseId, ...] = Field(
        min_length=1, max_length=16, description="Phase order in the ring (NTCIP sequence)"
    )


class Barrier(Frozen):
    phases: tuple[PhaseId, ...] = Field(
        min_length=1, description="Phases of one concurrency group (between two barriers)"
    )


class Channel(Frozen):
    id: ChannelId
    source: ChannelSource = ChannelSource.VEHICLE
    phase: PhaseId = Field(description="Phase driving this channel (vehicle/pedestrian)")
    overlap_parents: tuple[PhaseId, ...] = Field(
        default=(), description="Parent phases of an overlap channel (source=overlap)"
    )
    permissive: PhaseId | None = Field(
        default=None,
        description="Flashing yellow arrow: this (left-turn) vehicle channel shows FY, a "
        "permissive movement that yields, while this opposing phase is green",
    )
    name: str = Field(default="", max_length=100)


class Detector(Frozen):
    id: DetectorId
    type: DetectorType = DetectorType.STOP_BAR
    call_phases: tuple[PhaseId, ...] = Field(
        default=(), description="Phases this detector calls (NTCIP detectorCallPhase)"
    )
    extend_phases: tuple[PhaseId, ...] | None = Field(
        default=None, description="Phases it extends; defaults to call_phases"
    )
    delay: float = Field(
        default=0.0, ge=0.0, le=255.0, description="Call delay while the phase is not green"
    )
    extend: float = Field(
        default=0.0, ge=0.0, le=25.5, description="Stretch of the actuation after it ends (green)"
    )
    carryover: float = Field(
        default=0.0, ge=0.0, le=25.5, description="Carry-over of the actuation after it ends"
    )
    queue_limit: float = Field(
        default=0.0,
        ge=0.0,
        le=255.0,
        description="Extend only in the first N s of green; 0 off. For a stop-bar loop in a"
        " lane where a turner waits for a gap (a shared lane with a permissive left): the"
        " time the queue stored up to the advance loop needs, so a waiting turner does not"
        " hold the green to its max",
    )
    no_activity_min: int = Field(
        default=0, ge=0, le=255, description="No-activity fault after N minutes; 0 disables"
    )
    max_presence_min: int = Field(
        default=0, ge=0, le=255, description="Max-presence fault after N minutes on; 0 disables"
    )
    erratic_counts_per_min: int = Field(
        default=0, ge=0, le=255, description="Erratic fault above N actuations/min; 0 disables"
    )
    distance_m: float = Field(
        default=0.0, ge=0.0, le=300.0, description="Distance upstream of the stop line"
    )
    lanes: int = Field(default=1, ge=1, le=6, description="Lanes covered (for volume/flow)")

    @property
    def extends(self) -> tuple[int, ...]:
        return self.call_phases if self.extend_phases is None else self.extend_phases


ZoneId = Annotated[int, Field(ge=1, le=32, description="zone sensor zone 1..32")]


class Zone(Frozen):
    """A zone sensor's zone (camera / radar); a failed one falls back to the lane's loops.

    One lane group from the stop line upstream, reported as vehicles, halting vehicles,
    queue length, mean speed and an object list (docs/field.md#zone-sensors), diagnosed
    like a loop (no data, stuck, implausible)."""

    id: ZoneId = Field(description="Zone number: zone.N of the field profile")
    phases: tuple[PhaseId, ...] = Field(
        min_length=1, max_length=16, description="Phases the zone's lanes feed"
    )
    lane: str = Field(default="", max_length=32, description="Free text, e.g. N1, WB through")
    lanes: int = Field(default=1, ge=1, le=6, description="Lanes the zone covers")
    length_m: float = Field(
        default=150.0, gt=0.0, le=1000.0, description="Zone length from the stop line upstream"
    )
    loops: tuple[DetectorId, ...] = Field(
        default=(),
        max_length=16,
        description="The lane's loop detectors: what strategies use while the zone is failed",
    )
    max_objects: int = Field(
        default=8, ge=0, le=60, description="Objects of the object list used (nearest first)"
    )
    no_data_s: float = Field(
        default=2.0,
        ge=0.2,
        le=600.0,
        description="No measurement (unit silent, counter 0) for this long: the zone fails",
    )
    stuck_s: float = Field(
        default=3.0,
        ge=0.0,
        le=600.0,
        description="Measurement counter unchanged for this long: stuck, the zone fails; "
        "0 disables",
    )
    implausible_s: float = Field(
        default=1.0,
        ge=0.0,
        le=600.0,
        description="Implausible measurements for this long: the zone fails; 0 disables",
    )
    recovery_s: float = Field(
        default=5.0,
        ge=0.0,
        le=3600.0,
        description="A failed zone returns after this long of clean measurements",
    )
    jam_spacing_m: float = Field(
        default=5.0,
        ge=3.0,
        le=30.0,
        description="Densest plausible spacing per lane: more than lanes x length / spacing "
        "vehicles is implausible",
    )
    max_speed_kmh: float = Field(
        default=150.0, gt=0.0, le=300.0, description="A faster mean or object speed is implausible"
    )


class PriorityInput(Frozen):
    """A local priority input: an optical / radio / GPS preempt or bus detector wired to the
    cabinet as a detector input. Its actuation (off → on) becomes a priority request
    (``emergency``) or a TSP check-in (``transit``); docs/priority.md#local-priority-inputs."""

    detector: DetectorId = Field(description="The detector input the receiver is wired to")
    kind: Literal["emergency", "transit"] = Field(
        description="emergency: a priority request (a preempt); transit: a TSP check-in"
    )
    phases: tuple[PhaseId, ...] = Field(
        min_length=1, max_length=4, description="The vehicle's movement (green together)"
    )
    level: int = Field(default=1, ge=1, le=9, description="Emergency: 1 = highest")
    eta_s: float = Field(
        default=0.0, ge=0.0, le=300.0, description="Detection to stop line time of the vehicle"
    )
    checkout_detector: DetectorId | None = Field(
        default=None,
        description="Check out on this detector's actuation (once the movement shows green); "
        "otherwise by the timeout",
    )


class PhaseTiming(Frozen):
    """Per-phase timing of a plan (NTCIP 1202 names, seconds)."""

    min_green: float = Field(ge=0.0, le=255.0, description="Minimum green (phaseMinimumGreen)")
    passage: float = Field(
        default=3.0, ge=0.0, le=25.5, description="Vehicle extension / gap (phasePassage)"
    )
    max1: float = Field(ge=0.0, le=255.0, description="Maximum green 1 (phaseMaximum1)")
    max2: float | None = Field(
        default=None, ge=0.0, le=255.0, description="Maximum green 2; defaults to max1"
    )
    yellow: float = Field(ge=0.0, le=25.5, description="Yellow change (phaseYellowChange)")
    red_clear: float = Field(ge=0.0, le=25.5, description="Red clearance (phaseRedClear)")
    walk: float = Field(default=0.0, ge=0.0, le=255.0, description="Walk (phaseWalk)")
    ped_clear: float = Field(
        default=0.0, ge=0.0, le=255.0, description="Pedestrian clearance (phasePedestrianClear)"
    )
    walk_reduced: bool = Field(
        default=False, description="Explicitly allow walk < 7 s (MUTCD 4E.06 short crossings)"
    )
    added_initial: float = Field(
        default=0.0, ge=0.0, le=25.5, description="Added initial per actuation during red"
    )
    max_initial: float = Field(
        default=0.0, ge=0.0, le=255.0, description="Cap of variable initial; 0 = no added initial"
    )
    recall: Recall = Recall.NONE
    omit: bool = Field(default=False, description="Phase omitted in this plan")


class Coordination(Frozen):
    cycle: float = Field(ge=0.0, le=300.0, description="Cycle length; 0 = free (uncoordinated)")
    offset: float = Field(
        default=0.0, ge=0.0, le=300.0, description="Offset to start of coord green"
    )
    coord_phases: tuple[PhaseId, ...] = Field(
        default=(), description="Coordinated phases (one per ring), usually 2 and 6"
    )
    splits: dict[PhaseId, float] = Field(
        default_factory=dict, description="Split per phase: green + yellow + red clearance"
    )
    force_off: ForceOffMode = ForceOffMode.FIXED
    sync_reference: str | None = Field(
        default=None,
        pattern=SYNC_REFERENCE_PATTERN,
        description="Local time of day HH:MM[:SS] from which this plan's cycle and offset are "
        "counted on the wall clock; default: control.sync_reference",
    )


class Plan(Frozen):
    id: int = Field(ge=1, le=255)
    name: str = Field(default="", max_length=100)
    timing: dict[PhaseId, PhaseTiming] = Field(description="Timing of every phase of the rings")
    coordination: Coordination | None = Field(
        default=None, description="Cycle/offset/splits, used by fixed and coordinated modes"
    )
    # transit signal priority (docs/priority.md#transit-signal-priority)
    tsp_enabled: bool = Field(
        default=False, description="Transit signal priority: bus check-ins are honoured"
    )
    tsp_max_extend_s: float = Field(
        default=10.0, ge=0.0, le=60.0, description="TSP green extension: at most this long"
    )
    tsp_max_early_s: float = Field(
        default=10.0,
        ge=0.0,
        le=60.0,
        description="TSP early green: each conflicting green ends at most this much earlier "
        "(never below its minimum green)",
    )
    tsp_lockout_cycles: int = Field(
        default=2,
        ge=0,
        le=20,
        description="TSP acts at most once per this many cycles per approach",
    )
    tsp_phases: tuple[PhaseId, ...] = Field(
        default=(), max_length=16, description="Phases TSP may serve; empty = every phase"
    )
    tsp_timeout_s: float = Field(
        default=60.0,
        ge=5.0,
        le=600.0,
        description="A bus checks out this long after its ETA (after its check-in without an "
        "ETA) unless it checked out first",
    )


class ScheduleEntry(Frozen):
    at: str = Field(pattern=r"^([01]\d|2[0-3]):[0-5]\d$", description="Local time HH:MM")
    days: tuple[Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"], ...] = (
        "mon",
        "tue",
        "wed",
        "thu",
        "fri",
        "sat",
        "sun",
    )
    plan: int = Field(ge=1, le=255)
    mode: Mode | None = None


class Control(Frozen):
    mode: Mode = Field(default=Mode.ACTUATED, description="Mode after start-up")
    plan: int = Field(default=1, ge=1, le=255, description="Plan after start-up")
    startup_flash: float = Field(default=5.0, ge=0.0, le=600.0, description="Start-up flash")
    startup_all_red: float = Field(default=2.0, ge=2.0, le=60.0, description="All-red after flash")
    flash_mode: FlashMode = FlashMode.ALL_RED
    rest_in_red: bool = Field(
        default=False, description="With no calls, rest in red instead of green on the last phase"
    )
    min_recovery_flash: float = Field(
        default=5.0, ge=0.0, le=600.0, description="Minimum time in fault flash before an exit"
    )
    preempt_min_green: float = Field(
        default=4.0, ge=4.0, le=60.0, description="Preempt may truncate green down to this"
    )
    preempt_max_presence_s: float = Field(
        default=180.0,
        ge=10.0,
        le=3600.0,
        description="A preempt input on for longer is disregarded (NTCIP 1202 "
        "preemptMaxPresence, event 110, an alarm) until it goes off (there is no 'no limit')",
    )
    priority_flush_s: float = Field(
        default=8.0,
        ge=0.0,
        le=60.0,
        description="Priority (emergency vehicle): the movement is green this long before the "
        "vehicle's ETA, to flush its queue (docs/priority.md)",
    )
    priority_flush_phase_s: dict[PhaseId, Annotated[float, Field(ge=0.0, le=60.0)]] = Field(
        default_factory=dict, description="Per-phase queue flush times; default priority_flush_s"
    )
    priority_timeout_s: float = Field(
        default=30.0,
        ge=5.0,
        le=600.0,
        description="A priority request checks out this long after its ETA when neither its "
        "detector nor the centre checked it out first",
    )
    priority_recovery_max_s: float = Field(
        default=120.0,
        ge=0.0,
        le=600.0,
        description="After a priority ends, no new one starts until every phase it delayed has "
        "been served once, or for at most this long",
    )
    hold_max_s: float = Field(
        default=120.0,
        ge=10.0,
        le=3600.0,
        description="A hold keeps a green at most this long after a conflicting call arrived; "
        "then the hold is ignored for the rest of that green (event 207)",
    )
    schedule: tuple[ScheduleEntry, ...] = ()
    sync_reference: str = Field(
        default="00:00",
        pattern=SYNC_REFERENCE_PATTERN,
        description="Local time of day HH:MM[:SS] from which every coordinated plan's cycle "
        "and offset are counted on the wall clock (NTCIP 1202 sync reference); junctions "
        "with synchronised clocks and the same reference keep a common cycle",
    )


class Config(Frozen):
    """Everything about one intersection that the control core needs."""

    intersection: Intersection
    phases: tuple[Phase, ...] = Field(min_length=1, max_length=16)
    rings: tuple[Ring, ...] = Field(min_length=1, max_length=4)
    barriers: tuple[Barrier, ...] = Field(min_length=1, max_length=8)
    channels: tuple[Channel, ...] = Field(min_length=1, max_length=32)
    detectors: tuple[Detector, ...] = Field(default=(), max_length=64)
    zones: tuple[Zone, ...] = Field(
        default=(), max_length=32, description="Zone sensors (camera / radar) of the lanes"
    )
    plans: tuple[Plan, ...] = Field(min_length=1, max_length=32)
    control: Control = Control()
    priority_inputs: tuple[PriorityInput, ...] = Field(
        default=(),
        max_length=16,
        description="Local priority inputs: detectors whose actuation is a priority request "
        "or a TSP check-in",
    )
    conflict_overrides: tuple[tuple[PhaseId, PhaseId], ...] = Field(
        default=(), description="Extra phase pairs that must never be non-red together"
    )

    def phase(self, phase_id: int) -> Phase:
        for p in self.phases:
            if p.id == phase_id:
                return p
        raise KeyError(phase_id)

    def plan(self, plan_id: int) -> Plan:
        for p in self.plans:
            if p.id == plan_id:
                return p
        raise KeyError(plan_id)


class Outflow(Frozen):
    """Publishing this junction's stop-bar departures for its downstream neighbours."""

    enabled: bool = Field(
        default=False,
        description="Publish {prefix}/{id}/outflow (QoS 0) about every period_s while there "
        "are new departures; off: nothing is published",
    )
    detectors: tuple[DetectorId, ...] = Field(
        default=(),
        max_length=64,
        description="Stop-bar detectors whose departures (falling edges) are published; "
        "empty = every stop-bar detector",
    )
    period_s: float = Field(
        default=1.0, ge=0.2, le=10.0, description="How often new departures are published"
    )


class Neighbour(Frozen):
    """An upstream junction whose stop-bar departures drive on to one of our phases."""

    intersection: str = Field(
        pattern=INTERSECTION_ID_PATTERN,
        description="The upstream junction's intersection id (its MQTT topic segment)",
    )
    detectors: tuple[DetectorId, ...] = Field(
        min_length=1,
        max_length=64,
        description="Its stop-bar detectors whose departures come our way",
    )
    phase: PhaseId = Field(description="Our phase those vehicles arrive on")
    travel_s: float = Field(ge=1.0, le=300.0, description="Travel time from its stop bar to ours")


class DaemonConfig(Config):
    """A full daemon configuration file: the intersection plus the daemon's own sections."""

    field: FieldSettings = FieldSettings()
    mqtt: MqttSettings = MqttSettings()
    daemon: DaemonSettings = DaemonSettings()
    outflow: Outflow = Outflow()
    neighbours: tuple[Neighbour, ...] = Field(
        default=(),
        max_length=16,
        description="Upstream junctions whose outflow messages become projected arrivals "
        "(used by the adaptive mode)",
    )
