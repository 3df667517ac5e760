"""Profile format v2: a junction's field as Modbus devices and a map of every signal.

A v2 profile is TOML data (``format = 2``). ``[[devices]]`` lists the Modbus units of the
cabinet — each with a unit id, and either its own URL or none (then it shares the bus or
gateway the configuration's field device names, e.g. ``edgectl run --field URL``).
``[[map]]`` places every signal the controller uses on one of them::

    [[devices]]
    name = "di"          # e.g. a 16-channel discrete-input module
    unit = 1

    [[map]]
    signal = "detector.1-12"     # a range: detector n at address + (n - 1) * stride
    device = "di"
    type = "discrete_input"      # coil | discrete_input | input_register | holding_register
    address = 0

On a register a signal takes ``bit`` (0..15, the lowest bit of its field) and ``bits`` (its
width); a 32-bit value takes ``words = 2``. On a coil or discrete input a value of ``bits``
bits is that many consecutive addresses, lowest bit first. ``active = "low"`` inverts a bit
(a fail-safe contact that opens on a fault). The signals (``N`` a number):

========================  ==========  =====  =====================================================
signal                    direction   kind   meaning
========================  ==========  =====  =====================================================
detector.N                in          bit    presence of detector input N
detector.N.count          in          value  wrapping count of actuations (16 bits)
ped.N                     in          bit    pedestrian push-button of phase N
mmu.tripped               in          bit    the MMU latched a fault (the cabinet is in flash)
mmu.fault                 in          value  the fault's code (:class:`~.profile.MmuFaultKind`)
mmu.fault_channel.N       in          bit    channel N is involved in the fault
cabinet.flash             in          bit    the outputs are not under the controller's control
cabinet.in_control        in          bit    the controller drives the load switches
heartbeat.echo            in          value  the last heartbeat the cabinet received
uptime_s, power_cycles,   in          value  counters of the cabinet (power cycles detected by
profile_version                              a change)
readback.N.state          in          value  state code channel N shows (:class:`ChannelState`)
readback.N.LAMP           in          bit    lamp LAMP of channel N is lit (below)
channel.N.state           out         value  the state code commanded for channel N
channel.N.LAMP            out         bit    drive lamp LAMP of channel N (below)
heartbeat                 out         value  changes every tick (one bit: toggles) — the watchdog
mmu.reset                 out         cmd    written with ``value`` when an MMU reset is due
zone.N.frame              in          value  zone sensor N's measurement counter (0: none)
zone.N.vehicles           in          value  vehicles in zone N (a whole register, as all
                                             zone values)
zone.N.halting            in          value  of them, those halting (under 0.5 m/s)
zone.N.queue              in          value  queue length from the stop line, 0.1 m
zone.N.speed              in          value  mean speed of the zone's vehicles, 0.1 m/s
zone.N.objects            in          block  ``objects = K``: the count, then K (distance
                                             0.1 m, speed 0.1 m/s) pairs (1 + 2K registers)
========================  ==========  =====  =====================================================

``LAMP`` is ``red``, ``yellow``, ``green`` (vehicle), ``dont_walk``, ``walk`` (pedestrian) or
``flash`` (the channel's flasher: with ``red`` it is FR, with ``yellow`` FY, with
``dont_walk`` FDW). Zone signals are described in :mod:`edgectl.cabinet.zones`. Validation
(:mod:`edgectl.cabinet.fieldcheck`) names every problem.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass
from typing import Literal

from pydantic import Field

from edgectl.cabinet.profile import CabinetWiring
from edgectl.frozen import Frozen

__all__ = [
    "LAMPS",
    "Direction",
    "FieldProfile",
    "ModbusDevice",
    "ObjectType",
    "Placement",
    "SignalMap",
    "SignalSpec",
    "expand",
    "parse_signal",
    "placements",
    "spec_of",
]


class ObjectType(enum.StrEnum):
    """The four Modbus object types and what one request may carry of them."""

    COIL = "coil"  # FC1 read, FC5 / FC15 write
    DISCRETE_INPUT = "discrete_input"  # FC2
    INPUT_REGISTER = "input_register"  # FC4
    HOLDING_REGISTER = "holding_register"  # FC3 read, FC6 / FC16 write

    @property
    def is_bit(self) -> bool:
        return self in (ObjectType.COIL, ObjectType.DISCRETE_INPUT)

    @property
    def writable(self) -> bool:
        return self in (ObjectType.COIL, ObjectType.HOLDING_REGISTER)

    @property
    def max_read(self) -> int:
        """Objects one read request carries (FC1/2: 2000 bits; FC3/4: 125 registers)."""
        return 2000 if self.is_bit else 125

    @property
    def max_write(self) -> int:
        """Objects one multiple-write request carries (FC15: 1968 coils; FC16: 123)."""
        return 1968 if self.is_bit else 123

    @property
    def width(self) -> int:
        """Bits in one object."""
        return 1 if self.is_bit else 16


class Direction(enum.StrEnum):
    IN = "in"
    OUT = "out"


LAMPS = ("red", "yellow", "green", "dont_walk", "walk", "flash")


@dataclass(frozen=True, slots=True)
class SignalSpec:
    """What a signal name means: direction, whether it is one bit, a value or a command."""

    direction: Direction
    kind: Literal["bit", "value", "command", "block"]


_FIXED: dict[str, SignalSpec] = {
    "mmu.tripped": SignalSpec(Direction.IN, "bit"),
    "mmu.fault": SignalSpec(Direction.IN, "value"),
    "cabinet.flash": SignalSpec(Direction.IN, "bit"),
    "cabinet.in_control": SignalSpec(Direction.IN, "bit"),
    "heartbeat.echo": SignalSpec(Direction.IN, "value"),
    "uptime_s": SignalSpec(Direction.IN, "value"),
    "power_cycles": SignalSpec(Direction.IN, "value"),
    "profile_version": SignalSpec(Direction.IN, "value"),
    "heartbeat": SignalSpec(Direction.OUT, "value"),
    "mmu.reset": SignalSpec(Direction.OUT, "command"),
}
_NUMBERED: dict[str, SignalSpec] = {  # pattern with {n} → spec
    "detector.{n}": SignalSpec(Direction.IN, "bit"),
    "detector.{n}.count": SignalSpec(Direction.IN, "value"),
    "ped.{n}": SignalSpec(Direction.IN, "bit"),
    "mmu.fault_channel.{n}": SignalSpec(Direction.IN, "bit"),
    "readback.{n}.state": SignalSpec(Direction.IN, "value"),
    "channel.{n}.state": SignalSpec(Direction.OUT, "value"),
    **{f"readback.{{n}}.{lamp}": SignalSpec(Direction.IN, "bit") for lamp in LAMPS},
    **{f"channel.{{n}}.{lamp}": SignalSpec(Direction.OUT, "bit") for lamp in LAMPS},
    # zone sensors (camera / radar): edgectl.cabinet.zones says what the words mean
    **{
        f"zone.{{n}}.{what}": SignalSpec(Direction.IN, "value")
        for what in ("frame", "vehicles", "halting", "queue", "speed")
    },
    "zone.{n}.objects": SignalSpec(Direction.IN, "block"),
}
_LIMITS = {"detector": 64, "ped": 16, "mmu": 32, "readback": 32, "channel": 32, "zone": 32}
_RANGE = re.compile(r"^(?P<head>[a-z_.]*?)(?P<lo>\d+)(?:-(?P<hi>\d+))?(?P<tail>(?:\.[a-z_]+)*)$")


def parse_signal(text: str) -> tuple[str, list[int]] | None:
    """``(pattern, numbers)`` of a signal name or range (``channel.1-4.red`` →
    ``("channel.{n}.red", [1, 2, 3, 4])``; ``mmu.tripped`` → ``("mmu.tripped", [])``), or
    None when it names no known signal or a number is out of range."""
    if text in _FIXED:
        return text, []
    m = _RANGE.match(text)
    if m is None:
        return None
    pattern = f"{m['head']}{{n}}{m['tail']}"
    if pattern not in _NUMBERED:
        return None
    lo = int(m["lo"])
    hi = int(m["hi"]) if m["hi"] is not None else lo
    limit = _LIMITS[pattern.split(".", 1)[0]]
    if not 1 <= lo <= hi <= limit:
        return None
    return pattern, list(range(lo, hi + 1))


def spec_of(pattern: str) -> SignalSpec:
    return _FIXED.get(pattern) or _NUMBERED[pattern]


class ModbusDevice(Frozen):
    """One Modbus unit of the cabinet (an I/O module, a detector rack, an MMU gateway)."""

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,31}$")
    url: str = Field(
        default="",
        description="modbus+tcp://… or modbus+rtu://… of this unit alone; empty: the bus or "
        "gateway of the configuration's field device (what --field names), with this unit id",
    )
    unit: int = Field(default=1, ge=0, le=247, description="Modbus unit (slave) id")
    model: str = Field(default="", max_length=200, description="Product, for the reader")
    timeout: float | None = Field(
        default=None, gt=0.0, le=10.0, description="Per-request timeout; default the device's"
    )
    inter_request_gap: float | None = Field(
        default=None, ge=0.0, le=1.0, description="Silence after each request on a shared bus"
    )
    byte_order: Literal["big", "little"] = Field(
        default="big", description="Byte order within a register (Modbus is big-endian)"
    )
    word_order: Literal["big", "little"] = Field(
        default="little", description="Order of the two registers of a 32-bit value"
    )
    write: Literal["block", "changes"] = Field(
        default="changes",
        description="block: every mapped output is written every tick; changes: only the "
        "requests covering what changed, and everything every refresh_s",
    )
    refresh_s: float = Field(default=1.0, gt=0.0, le=60.0)
    single_writes: bool = Field(
        default=True, description="The unit takes FC5 / FC6 (write one coil / register)"
    )
    read_gap: int = Field(
        default=0,
        ge=0,
        le=125,
        description="A read may span this many unmapped addresses to save a request",
    )


class SignalMap(Frozen):
    """Where one signal (or a numbered range of them) lives."""

    signal: str = Field(max_length=64)
    device: str = Field(max_length=32)
    type: str = Field(description="coil | discrete_input | input_register | holding_register")
    address: int = Field(ge=0, le=65535, description="0-based address of the first object")
    bit: int | None = Field(
        default=None, ge=0, description="Registers: lowest bit of the field (0..15)"
    )
    bits: int | None = Field(
        default=None, ge=1, le=32, description="Width of a value; 1 for a bit signal"
    )
    words: int = Field(default=1, ge=1, le=2, description="2: a 32-bit value")
    stride: int | None = Field(
        default=None,
        ge=1,
        le=4096,
        description="Range: step from one number to the next (objects; bits on a register "
        "for bit signals); default the signal's own size",
    )
    active: Literal["high", "low"] = "high"
    value: int | None = Field(default=None, ge=0, le=0xFFFF, description="mmu.reset: written")
    objects: int | None = Field(
        default=None,
        ge=1,
        le=60,
        description="zone.N.objects: how many objects the run holds (1 + 2 x objects registers)",
    )
    description: str = Field(default="", max_length=500)


class FieldProfile(Frozen):
    """One v2 profile file."""

    format: Literal[2]
    name: str = Field(max_length=64)
    description: str = Field(default="", max_length=4000)
    devices: tuple[ModbusDevice, ...] = Field(min_length=1, max_length=32)
    map: tuple[SignalMap, ...] = Field(min_length=1, max_length=1024)
    cabinet: CabinetWiring | None = Field(
        default=None, description="Wiring of the emulated cabinet; the daemon only cross-checks"
    )

    def device(self, name: str) -> ModbusDevice:
        for d in self.devices:
            if d.name == name:
                return d
        raise KeyError(name)


@dataclass(frozen=True, slots=True)
class Placement:
    """One signal at one place: ``bits`` bits starting at bit ``bit`` of object ``address``
    (bit objects: ``bits`` consecutive objects), or a 32-bit value over two registers."""

    signal: str  # e.g. "channel.3.red"
    pattern: str  # e.g. "channel.{n}.red"
    number: int  # n, 0 for a fixed signal
    device: str
    otype: ObjectType
    address: int
    bit: int
    bits: int
    words: int
    active_low: bool
    value: int | None
    source: int  # index into FieldProfile.map

    @property
    def spec(self) -> SignalSpec:
        return spec_of(self.pattern)

    @property
    def objects(self) -> int:
        """How many objects (registers, or coils / inputs) the placement spans."""
        if self.otype.is_bit:
            return self.bits
        return self.words if self.words > 1 else (self.bit + self.bits + 15) // 16

    @property
    def end(self) -> int:
        return self.address + self.objects

    def cells(self) -> list[tuple[int, int]]:
        """Every (object address, bit) the placement occupies."""
        if self.otype.is_bit:
            return [(self.address + i, 0) for i in range(self.bits)]
        if self.words > 1:
            return [(self.address + w, b) for w in range(self.words) for b in range(16)]
        first = self.bit
        return [((first + i) // 16 + self.address, (first + i) % 16) for i in range(self.bits)]


def _default_bits(kind: str, otype: ObjectType, words: int) -> int:
    if kind != "value":
        return 1
    if words > 1:
        return 32
    return 1 if otype.is_bit else 16


def expand(entry: SignalMap, index: int) -> list[Placement]:
    """The placements of one map entry (one per number of a range); [] when the entry is
    not well-formed (validation says why)."""
    parsed = parse_signal(entry.signal)
    try:
        otype = ObjectType(entry.type)
    except ValueError:
        return []
    if parsed is None:
        return []
    pattern, numbers = parsed
    spec = spec_of(pattern)
    bits = entry.bits or _default_bits(spec.kind, otype, entry.words)
    first_bit = entry.bit or 0
    words = entry.words
    if spec.kind == "block":  # a run of registers: the count, then the pairs
        if otype.is_bit:
            return []
        words, bits, first_bit = 1 + 2 * (entry.objects or 1), 16, 0
    out: list[Placement] = []
    for i, n in enumerate(numbers or [0]):
        address, bit = entry.address, first_bit
        if spec.kind == "block":
            address += i * (entry.stride or words)
        elif otype.is_bit:
            address += i * (entry.stride or bits)
        elif spec.kind == "bit" and entry.words == 1 and bits == 1:
            absolute = entry.address * 16 + first_bit + i * (entry.stride or 1)
            address, bit = divmod(absolute, 16)
        else:
            address += i * (entry.stride or max(entry.words, (first_bit + bits + 15) // 16))
        out.append(
            Placement(
                signal=pattern.replace("{n}", str(n)),
                pattern=pattern,
                number=n,
                device=entry.device,
                otype=otype,
                address=address,
                bit=bit,
                bits=bits,
                words=words,
                active_low=entry.active == "low",
                value=entry.value,
                source=index,
            )
        )
    return out


def placements(profile: FieldProfile) -> list[Placement]:
    """Every placement of a profile, in map order."""
    return [p for i, entry in enumerate(profile.map) for p in expand(entry, i)]
