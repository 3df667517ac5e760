"""A cabinet of several Modbus units (a v2 profile) over the one emulated cabinet. Pure.

``firmware-sim --profile builtin:io-modules`` serves every unit of the profile — one unit id
each, behind one TCP port (a gateway) or on one RTU line — and wires them to the same
:class:`~firmware_sim.model.CabinetModel` (MMU, traffic, record, summary) the one-unit
cabinet uses: what a unit's inputs show is the model's state encoded with the profile
(:func:`edgectl.cabinet.fieldcodec.encode_inputs`); what the controller writes to the
units' coils and registers is decoded (:func:`~edgectl.cabinet.fieldcodec.decode_outputs`)
and given to the model as the frame, the heartbeat and the MMU reset it means.

A relay module's coils are its relays: what FC1 reads back is the state they are in, which
is what was written — unless a relay is stuck. Per-unit faults (``--fault``)::

    unit_dead:U@START+DUR        unit U answers nothing (a dead module on the bus)
    unit_slow:U=SECONDS@START    unit U answers SECONDS late (a slow unit on a shared bus)
    relay_stuck:U.C@START+DUR    coil C of unit U keeps its state (writes are acknowledged)
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass

from edgectl.cabinet.fieldcodec import Images, decode_outputs, encode_inputs
from edgectl.cabinet.fieldmap import FieldProfile, ObjectType
from edgectl.cabinet.planner import FieldPlan
from edgectl.cabinet.profile import DeviceProfile, load_profile
from edgectl.cabinet.registers import (
    MMU_RESET_MAGIC,
    CabinetMap,
    decode_inputs,
    encode_frame,
)
from firmware_sim.model import CabinetModel
from firmware_sim.zones import ZoneSensors

__all__ = ["UnitFault", "UnitsCabinet", "inner_profile", "is_unit_fault", "parse_unit_fault"]

_UNIT_FAULT = re.compile(
    r"^(?P<kind>unit_dead|unit_slow|relay_stuck):(?P<unit>\d{1,3})(?:\.(?P<coil>\d{1,5}))?"
    r"(?:=(?P<value>[0-9.]{1,12}))?(?:@(?P<start>[0-9.]{1,12})(?:\+(?P<dur>[0-9.]{1,12}))?)?$"
)


@dataclass(frozen=True, slots=True)
class UnitFault:
    kind: str  # unit_dead | unit_slow | relay_stuck
    unit: int
    coil: int = 0
    value: float = 0.0  # unit_slow: seconds
    start: float = 0.0
    duration: float = math.inf

    def active(self, now: float) -> bool:
        return self.start <= now < self.start + self.duration

    def __str__(self) -> str:
        text = f"{self.kind}:{self.unit}"
        if self.kind == "relay_stuck":
            text += f".{self.coil}"
        if self.kind == "unit_slow":
            text += f"={self.value:g}"
        text += f"@{self.start:g}"
        return text + ("" if self.duration == math.inf else f"+{self.duration:g}")


def is_unit_fault(text: str) -> bool:
    return text.strip().startswith(("unit_", "relay_"))


def parse_unit_fault(text: str) -> UnitFault:
    """Parse a per-unit ``--fault`` SPEC (module docstring); ValueError says what is wrong."""
    m = _UNIT_FAULT.match(text.strip())
    if m is None:
        raise ValueError(
            f"bad unit fault {text[:60]!r}: unit_dead:U[@S[+D]], unit_slow:U=SECONDS[@S[+D]] "
            "or relay_stuck:U.COIL[@S[+D]]"
        )
    kind = m["kind"]
    if (kind == "relay_stuck") != (m["coil"] is not None):
        raise ValueError(f"{kind}: {'needs' if kind == 'relay_stuck' else 'takes no'} .COIL")
    if (kind == "unit_slow") != (m["value"] is not None):
        raise ValueError(f"{kind}: {'needs' if kind == 'unit_slow' else 'takes no'} =SECONDS")
    try:
        value = float(m["value"] or 0)
        start = float(m["start"] or 0)
        duration = float(m["dur"]) if m["dur"] else math.inf
    except ValueError:
        raise ValueError(f"bad number in {text[:60]!r}") from None
    if not 0.0 <= value <= 10.0:
        raise ValueError(f"unit_slow: 0..10 s: {text[:60]!r}")
    return UnitFault(kind, int(m["unit"]), int(m["coil"] or 0), value, start, duration)


def inner_profile(field: FieldProfile) -> DeviceProfile:
    """The one-unit profile the model runs on: ``cabinet-v1``'s registers (the model's own
    bookkeeping, never on the wire here) and the v2 profile's cabinet wiring."""
    if field.cabinet is None:
        raise ValueError(f"profile {field.name} has no [cabinet] wiring to emulate")
    registers = load_profile("builtin:nema-cabinet").registers
    return DeviceProfile(
        name=field.name, description=field.description, registers=registers, cabinet=field.cabinet
    )


class UnitsCabinet:
    """The units of a v2 profile, served from one :class:`CabinetModel`."""

    def __init__(
        self,
        field: FieldProfile,
        model: CabinetModel,
        faults: Sequence[UnitFault] = (),
        *,
        zones: ZoneSensors | None = None,
    ) -> None:
        self.field = field
        self.plan = FieldPlan(field)
        self.model = model
        self.faults = tuple(faults)
        self.zones = zones
        self._zone_units = {p.device for p in self.plan.inputs if p.pattern.startswith("zone.")}
        self.names = {d.unit: d.name for d in field.devices}
        known = set(self.names)
        for f in self.faults:
            if f.unit not in known:
                raise ValueError(f"fault {f}: no unit {f.unit} in profile {field.name}")
        self._cmap = CabinetMap.from_profile(model.profile)
        self._outputs: Images = {}  # what the units' coils / holding registers hold
        self._frame_devices = {
            p.device for p in self.plan.outputs if p.pattern.startswith("channel.")
        }
        self._beat = {p.device for p in self.plan.outputs if p.pattern == "heartbeat"}
        self._reset = {(p.device, p.otype, p.address): p for p in self.plan.commands}

    @property
    def units(self) -> tuple[int, ...]:
        return tuple(d.unit for d in self.field.devices)

    def size(self, unit: int, otype: ObjectType) -> int:
        """Objects of ``otype`` the unit has: what the profile maps, rounded up to 16."""
        name = self.names[unit]
        ends = [p.end for p in self.plan.placements if p.device == name and p.otype is otype]
        return max(16, -(-max(ends, default=0) // 16) * 16)

    # --- faults ---------------------------------------------------------------------------

    def dead(self, unit: int, now: float) -> bool:
        return any(f.kind == "unit_dead" and f.unit == unit and f.active(now) for f in self.faults)

    def delay(self, unit: int, now: float) -> float:
        return max(
            (
                f.value
                for f in self.faults
                if f.kind == "unit_slow" and f.unit == unit and f.active(now)
            ),
            default=0.0,
        )

    def _stuck(self, unit: int, coil: int, now: float) -> bool:
        return any(
            f.kind == "relay_stuck" and f.unit == unit and f.coil == coil and f.active(now)
            for f in self.faults
        )

    # --- requests -------------------------------------------------------------------------

    def read(self, now: float, unit: int, otype: ObjectType, address: int, count: int) -> list[int]:
        """The unit's objects (bits as 0 / 1); unmapped ones read 0."""
        name = self.names[unit]
        if otype.writable:
            image = self._outputs.get((name, otype), {})
        else:
            snap = decode_inputs(self.model.input_image(now), self._cmap, now)
            if self.zones is not None and name in self._zone_units:
                snap = dataclasses.replace(snap, zones=self.zones.frames(self.model.now))
            image = encode_inputs(self.plan, snap).get((name, otype), {})
        return [image.get(a, 0) for a in range(address, address + count)]

    def write(
        self, now: float, unit: int, otype: ObjectType, address: int, values: Sequence[int]
    ) -> None:
        """A write to the unit's coils or holding registers, applied to the model."""
        name = self.names[unit]
        image = self._outputs.setdefault((name, otype), {})
        for i, v in enumerate(values):
            if otype is ObjectType.COIL and self._stuck(unit, address + i, now):
                continue
            image[address + i] = int(v)
        for i, v in enumerate(values):
            p = self._reset.get((name, otype, address + i))
            if p is not None and (v if otype is not ObjectType.COIL else bool(v) != p.active_low):
                self.model.write_holding(now, self._cmap.mmu_reset.address, [MMU_RESET_MAGIC])
                image[address + i] = int(p.active_low) if otype is ObjectType.COIL else 0
        frame, beat = decode_outputs(self.plan, self._outputs)
        if name in self._beat:
            self.model.write_holding(now, self._cmap.heartbeat.address, [beat])
        # the relays hold their state: the MMU sees the whole frame after any write (the
        # lamps of one channel are on one unit and change in one request)
        if self._frame_devices <= {dev for dev, _ in self._outputs}:
            regs = encode_frame(frame, self._cmap.channel_outputs.count)
            self.model.write_holding(now, self._cmap.channel_outputs.address, regs)

    def summary(self) -> list[dict[str, object]]:
        """The units, for ``--summary``."""
        return [
            {
                "name": d.name,
                "unit": d.unit,
                "model": d.model,
                "objects": sorted(
                    {p.otype.value for p in self.plan.placements if p.device == d.name}
                ),
                "faults": [str(f) for f in self.faults if f.unit == d.unit],
            }
            for d in self.field.devices
        ]
