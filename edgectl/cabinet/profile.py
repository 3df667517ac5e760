"""Device profiles: the register map of a field device (and, for the emulator, its wiring).

A profile is a TOML data file, not code. The daemon reads ``[registers]`` (which register
holds what) and may cross-check ``[cabinet]``; ``firmware_sim`` reads both and emulates the
cabinet they describe. Builtin profiles live next to this module and are named
``builtin:NAME``; anything else is a path::

    profile = load_profile("builtin:nema-cabinet")
    status = profile.registers.input("status")          # RegisterSpec(address=0, count=1, ...)
    conflicts = profile.cabinet.conflicts()              # channel pairs never non-red together

Register map ``cabinet-v1`` (addresses are 0-based Modbus register addresses):

- input registers (FC4): ``status`` ``mmu_fault`` ``mmu_fault_channels`` ``heartbeat_echo``
  ``detector_presence`` ``ped_buttons`` ``channel_readback`` ``detector_counts`` ``uptime_s``
  ``power_cycles`` ``profile_version``
- holding registers (FC3/FC6/FC16): ``channel_outputs`` ``heartbeat`` ``mmu_reset`` and the
  ``sim_control`` block of the emulator.

Every register is documented in the profile file itself (``description``); how their words
encode states, bitmaps and counters is :mod:`edgectl.cabinet.registers`.
"""

from __future__ import annotations

import enum
import itertools
import tomllib
from importlib import resources
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, ValidationError, model_validator

from edgectl.errors import ConfigError, FatalFieldError, Problem
from edgectl.frozen import Frozen

__all__ = [
    "BUILTIN_PROFILES",
    "CabinetChannel",
    "CabinetDetector",
    "CabinetWiring",
    "CabinetZone",
    "DetectorPosition",
    "DeviceProfile",
    "MmuCard",
    "MmuFaultKind",
    "Movement",
    "PedestrianButton",
    "RegisterMap",
    "RegisterSpec",
    "load_profile",
]

BUILTIN_PROFILES = ("nema-cabinet", "two-phase")

ChannelNo = Annotated[int, Field(ge=1, le=32, description="load-switch channel 1..32")]
DetectorNo = Annotated[int, Field(ge=1, le=64, description="detector input 1..64")]
FlashState = Literal["FR", "FY", "OFF"]


class MmuFaultKind(enum.IntEnum):
    """Value of the ``mmu_fault`` input register."""

    NONE = 0
    CONFLICT = 1
    SHORT_YELLOW = 2
    NO_YELLOW = 3  # green (or a flashing yellow arrow) → red without yellow
    WATCHDOG = 4
    POWER_CYCLE = 5
    INVALID_FRAME = 6


class RegisterSpec(Frozen):
    name: str = Field(pattern=r"^[a-z][a-z0-9_]{0,47}$")
    address: int = Field(ge=0, le=65535, description="0-based register address")
    count: int = Field(default=1, ge=1, le=125, description="Number of 16-bit registers")
    description: str = Field(default="", max_length=1000)

    @property
    def end(self) -> int:
        return self.address + self.count


class RegisterMap(Frozen):
    """Which register holds what. Names are the contract; addresses may differ per device."""

    map: str = Field(default="cabinet-v1", description="Name of the register layout")
    version: int = Field(default=1, ge=1, le=65535, description="Value of profile_version")
    input: tuple[RegisterSpec, ...] = Field(description="Input registers (FC4, read-only)")
    holding: tuple[RegisterSpec, ...] = Field(description="Holding registers (FC3/FC6/FC16)")

    @model_validator(mode="after")
    def _no_overlap(self) -> RegisterMap:
        for space, specs in (("input", self.input), ("holding", self.holding)):
            names = [s.name for s in specs]
            if len(set(names)) != len(names):
                raise ValueError(f"duplicate register names in {space}")
            ordered = sorted(specs, key=lambda s: s.address)
            for a, b in itertools.pairwise(ordered):
                if a.end > b.address:
                    raise ValueError(f"{space} registers {a.name} and {b.name} overlap")
        return self

    def input_register(self, name: str) -> RegisterSpec:
        """The input register called ``name``; KeyError if the map has none."""
        for spec in self.input:
            if spec.name == name:
                return spec
        raise KeyError(name)

    def holding_register(self, name: str) -> RegisterSpec:
        """The holding register called ``name``; KeyError if the map has none."""
        for spec in self.holding:
            if spec.name == name:
                return spec
        raise KeyError(name)

    @property
    def input_span(self) -> tuple[int, int]:
        """(address, count) covering every input register: one read gets them all."""
        lo = min(s.address for s in self.input)
        return lo, max(s.end for s in self.input) - lo

    @property
    def holding_span(self) -> tuple[int, int]:
        lo = min(s.address for s in self.holding)
        return lo, max(s.end for s in self.holding) - lo


class ChannelKind(enum.StrEnum):
    VEHICLE = "vehicle"
    PEDESTRIAN = "pedestrian"


class CabinetChannel(Frozen):
    id: ChannelNo
    kind: ChannelKind = ChannelKind.VEHICLE
    phase: int = Field(ge=1, le=16, description="Phase driving the channel")
    approach: str = Field(default="", max_length=32, description="e.g. EB, WB, NB, SB")
    movement: str = Field(default="", max_length=32, description="e.g. left, through")


class MmuCard(Frozen):
    """The conflict monitor's programming card and thresholds."""

    permissive: tuple[tuple[ChannelNo, ChannelNo], ...] = Field(
        default=(),
        description="Channel pairs that MAY be non-red together; every other pair conflicts "
        "(a channel never conflicts with itself)",
    )
    fya: dict[ChannelNo, tuple[ChannelNo, ...]] = Field(
        default_factory=dict,
        description="Flashing yellow arrow (FYA) mode: left-turn arrow channel → the channels "
        "it yields to (the opposing through, and its pedestrians). The arrow's FY, and the "
        "steady Y that ends it, may be shown beside those channels (its G and protected Y may "
        "not, unless a permissive pair says so); every other conflict stands; an FY must end "
        "in Y",
    )
    flash: dict[ChannelNo, FlashState] = Field(
        default_factory=dict, description="Flash colour per channel in cabinet flash; default FR"
    )
    conflict_s: float = Field(
        default=0.3, gt=0.0, le=5.0, description="Conflicting non-red channels longer → trip"
    )
    min_yellow_s: float = Field(
        default=2.7, ge=0.0, le=10.0, description="A vehicle yellow shorter than this → trip"
    )
    watchdog_s: float = Field(
        default=1.0, gt=0.0, le=60.0, description="No heartbeat change for longer → trip"
    )

    def flash_state(self, channel: int) -> FlashState:
        return self.flash.get(channel, "FR")


class DetectorPosition(enum.StrEnum):
    STOP_BAR = "stop_bar"
    ADVANCE = "advance"


class CabinetDetector(Frozen):
    id: DetectorNo
    movement: str = Field(description="Movement id whose vehicles drive over the loop")
    position: DetectorPosition = DetectorPosition.STOP_BAR
    distance_m: float = Field(default=0.0, ge=0.0, le=500.0, description="Upstream of stop line")
    loop_length_m: float = Field(default=2.0, gt=0.0, le=30.0)


class Movement(Frozen):
    """A lane group of one approach, served by one channel."""

    id: str = Field(pattern=r"^[A-Za-z0-9_.-]{1,32}$")
    channel: ChannelNo
    lanes: int = Field(default=1, ge=1, le=6)
    rate_vph: float = Field(default=300.0, ge=0.0, le=10000.0, description="Mean arrivals, veh/h")
    speed_kmh: float = Field(default=50.0, gt=0.0, le=130.0, description="Free-flow speed")
    saturation_vph_per_lane: float = Field(default=1850.0, gt=100.0, le=3000.0)
    startup_lost_s: float = Field(default=2.0, ge=0.0, le=10.0)
    yellow_use_s: float = Field(
        default=2.0,
        ge=0.0,
        le=6.0,
        description="Queued vehicles still leave in the first N s of yellow",
    )
    vehicle_length_m: float = Field(default=4.5, gt=0.0, le=25.0)
    jam_spacing_m: float = Field(
        default=7.0, gt=0.0, le=30.0, description="Queue length per queued vehicle"
    )


class PedestrianButton(Frozen):
    phase: int = Field(ge=1, le=16)
    rate_per_h: float = Field(default=30.0, ge=0.0, le=3600.0, description="Mean button presses")


class CabinetZone(Frozen):
    """A zone sensor's zone (camera / radar) over the lanes of one movement, emulated."""

    id: int = Field(ge=1, le=32, description="Zone number (zone.N in the v2 map)")
    movement: str = Field(description="Movement id whose vehicles the zone sees")
    length_m: float = Field(
        default=150.0, gt=0.0, le=1000.0, description="From the stop line upstream"
    )


class CabinetWiring(Frozen):
    """The emulated cabinet: channels, MMU card, detectors, the traffic on the approaches."""

    channels: tuple[CabinetChannel, ...] = Field(min_length=1, max_length=32)
    mmu: MmuCard = MmuCard()
    detectors: tuple[CabinetDetector, ...] = Field(default=(), max_length=64)
    movements: tuple[Movement, ...] = ()
    pedestrians: tuple[PedestrianButton, ...] = ()
    zones: tuple[CabinetZone, ...] = Field(default=(), max_length=32)

    @model_validator(mode="after")
    def _consistent(self) -> CabinetWiring:
        ids = {c.id for c in self.channels}
        if len(ids) != len(self.channels):
            raise ValueError("duplicate channel ids")
        for a, b in self.mmu.permissive:
            if a not in ids or b not in ids:
                raise ValueError(f"permissive pair ({a}, {b}) names an unknown channel")
        kinds = {c.id: c.kind for c in self.channels}
        for arrow, yields_to in self.mmu.fya.items():
            if arrow not in kinds:
                raise ValueError(f"fya names an unknown arrow channel {arrow}")
            if kinds[arrow] != ChannelKind.VEHICLE:
                raise ValueError(f"fya arrow channel {arrow} is not a vehicle channel")
            if not yields_to:
                raise ValueError(f"fya arrow channel {arrow} yields to no channel")
            for other in yields_to:
                if other not in ids:
                    raise ValueError(f"fya arrow channel {arrow} yields to unknown channel {other}")
                if other == arrow:
                    raise ValueError(f"fya arrow channel {arrow} yields to itself")
        moves = {m.id for m in self.movements}
        if len(moves) != len(self.movements):
            raise ValueError("duplicate movement ids")
        for m in self.movements:
            if m.channel not in ids:
                raise ValueError(f"movement {m.id} on unknown channel {m.channel}")
        dets = [d.id for d in self.detectors]
        if len(set(dets)) != len(dets):
            raise ValueError("duplicate detector ids")
        for d in self.detectors:
            if d.movement not in moves:
                raise ValueError(f"detector {d.id} on unknown movement {d.movement}")
        zones = [z.id for z in self.zones]
        if len(set(zones)) != len(zones):
            raise ValueError("duplicate zone ids")
        for z in self.zones:
            if z.movement not in moves:
                raise ValueError(f"zone {z.id} on unknown movement {z.movement}")
        return self

    def channel(self, channel_id: int) -> CabinetChannel:
        for c in self.channels:
            if c.id == channel_id:
                return c
        raise KeyError(channel_id)

    def conflicts(self) -> tuple[tuple[int, int], ...]:
        """Every channel pair (a < b) that must never be non-red together."""
        allowed = {(min(a, b), max(a, b)) for a, b in self.mmu.permissive}
        ids = sorted(c.id for c in self.channels)
        return tuple(p for p in itertools.combinations(ids, 2) if p not in allowed)


class DeviceProfile(Frozen):
    """One profile file."""

    name: str = Field(max_length=64)
    description: str = Field(default="", max_length=2000)
    registers: RegisterMap
    cabinet: CabinetWiring | None = Field(
        default=None, description="Wiring of the emulated cabinet; the daemon only cross-checks"
    )


def _builtin_text(name: str) -> str:
    if name not in BUILTIN_PROFILES:
        raise FatalFieldError(f"unknown builtin profile {name!r}; known: {list(BUILTIN_PROFILES)}")
    builtin = resources.files("edgectl.cabinet").joinpath("profiles", f"{name}.toml")
    return builtin.read_text("utf-8")


def load_profile(ref: str | Path) -> DeviceProfile:
    """Load ``builtin:NAME`` or a profile TOML file.

    Raises :class:`~edgectl.errors.FatalFieldError` for an unknown builtin or a missing file
    and :class:`~edgectl.errors.ConfigError` (every problem listed) for an invalid profile.
    """
    source = str(ref)
    if isinstance(ref, str) and ref.startswith("builtin:"):
        text = _builtin_text(ref.removeprefix("builtin:"))
    else:
        try:
            text = Path(ref).read_text("utf-8")
        except OSError as exc:
            raise FatalFieldError(f"cannot read profile {source}: {exc}") from exc
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError([Problem("", f"invalid TOML: {exc}")], source) from exc
    try:
        return DeviceProfile.model_validate(data)
    except ValidationError as exc:
        problems = [
            Problem(".".join(str(p) for p in err["loc"]), err["msg"]) for err in exc.errors()
        ]
        raise ConfigError(problems, source) from exc
