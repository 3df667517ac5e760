"""A cabinet of several Modbus units, described by a v2 profile, as field devices.

A configured field device whose profile is format 2 (:mod:`edgectl.cabinet.fieldmap`) opens
one link per unit of the profile — on the device's own URL (the bus or gateway they share,
what ``edgectl run --field URL`` names) with the unit's id, or on the unit's own URL — and
serves them as field devices with the same task, health, retries and
:class:`~edgectl.field.report.DeviceReport` as :class:`~edgectl.field.device.CabinetDevice`:

- the units that carry only detector inputs and push-buttons (zone data beside them
  included) become one device named ``NAME-detectors`` (it reads; a silent one fails the
  detectors, the NTCIP fail-safe),
- the others (load-switch drivers, the MMU, readback) one device named ``NAME`` (it reads
  the MMU and the readback, and writes the frame; a silent one flashes the junction),
- the units that carry only zone sensors (camera / radar) one device named ``NAME-zones``
  (it reads; the control loop does not wait for it, and a silent one fails only its zones,
  which fall back to their loops).

A profile whose units are all of one kind is one device. Per tick a device makes its read
pass (:attr:`~edgectl.cabinet.planner.FieldPlan.reads`, each request retried on its own) and
its write pass (only what changed, single changes as FC5 / FC6, everything every
``refresh_s``, per the unit's ``write``). Channels the profile does not read back are
reported as the frame last written (the readback check cannot see them).
"""

from __future__ import annotations

import dataclasses
import functools
import time
from collections.abc import Callable, Mapping, Sequence

from edgectl.cabinet.channels import ChannelState
from edgectl.cabinet.fieldcheck import is_field_profile, load_field_profile
from edgectl.cabinet.fieldcodec import Images, decode_inputs, encode_outputs
from edgectl.cabinet.fieldmap import FieldProfile, ModbusDevice, ObjectType
from edgectl.cabinet.planner import FieldPlan, ReadRequest, WriteRequest
from edgectl.cabinet.registers import CabinetMap, CabinetSnapshot
from edgectl.config.settings import Device
from edgectl.errors import FatalFieldError
from edgectl.field.buses import FieldBuses
from edgectl.field.device import CabinetDevice
from edgectl.field.modbus import ModbusIO
from edgectl.field.transport import ObjectIO
from edgectl.field.url import MemoryEndpoint, parse_url

__all__ = [
    "MappedDevice",
    "UnitLinks",
    "next_refresh",
    "open_devices",
    "open_mapped",
    "open_unit",
    "unit_groups",
    "zone_units",
]

_ZONES = "zone."
_INPUT_ONLY = ("detector.", "ped.", _ZONES)  # a unit of detectors and zones: a detector unit


class UnitLinks:
    """The links of a group of units, held as one: connected when every one is."""

    def __init__(self, links: Mapping[str, ObjectIO]) -> None:
        self.links = dict(links)

    @property
    def connected(self) -> bool:
        return all(link.connected for link in self.links.values())

    async def connect(self) -> None:
        for link in self.links.values():
            if not link.connected:
                await link.connect()

    async def close(self) -> None:
        for link in self.links.values():
            await link.close()

    async def read_input(self, address: int, count: int) -> list[int]:
        raise FatalFieldError("a unit group is read through its plan")

    async def read_holding(self, address: int, count: int) -> list[int]:
        raise FatalFieldError("a unit group is read through its plan")

    async def write(self, address: int, values: Sequence[int]) -> None:
        raise FatalFieldError("a unit group is written through its plan")

    async def read(self, request: ReadRequest) -> list[int]:
        link = self.links[request.device]
        if request.otype is ObjectType.COIL:
            return await link.read_coils(request.address, request.count)
        if request.otype is ObjectType.DISCRETE_INPUT:
            return await link.read_discrete(request.address, request.count)
        if request.otype is ObjectType.HOLDING_REGISTER:
            return await link.read_holding(request.address, request.count)
        return await link.read_input(request.address, request.count)

    async def send(self, request: WriteRequest) -> None:
        link = self.links[request.device]
        if request.otype is ObjectType.COIL:
            if request.single:
                await link.write_coil(request.address, request.values[0])
            else:
                await link.write_coils(request.address, request.values)
        elif request.single:
            await link.write_register(request.address, request.values[0])
        else:
            await link.write(request.address, request.values)


class MappedDevice(CabinetDevice):
    """A group of Modbus units served as one field device (see the module docstring)."""

    def __init__(
        self,
        spec: Device,
        plan: FieldPlan,
        links: UnitLinks,
        *,
        offline_after: int = 5,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(spec, CabinetMap(), io=links, offline_after=offline_after, clock=clock)
        self.plan = plan
        self.links = links
        self.reads_inputs = bool(plan.reads)
        self.writes_outputs = bool(plan.output_cells)
        self.zone_sensor = bool(plan.devices) and all(
            p.signal.startswith(_ZONES) for p in plan.placements
        )
        self._images: Images = {}
        self._frame: dict[int, ChannelState] = {}
        self._last_written: Images | None = None
        self._last_frame: dict[int, ChannelState] = {}
        self._refresh_at: dict[str, float] = {}

    def _encode(self, frame: Mapping[int, ChannelState]) -> list[int]:
        self._frame = dict(frame)
        self._images = encode_outputs(self.plan, frame, self._heartbeat)
        return [v for key in sorted(self._images) for _, v in sorted(self._images[key].items())]

    async def _read_inputs(self) -> CabinetSnapshot:
        images: Images = {}
        for request in self.plan.reads:
            values = await self._with_retries(functools.partial(self.links.read, request))
            image = images.setdefault((request.device, request.otype), {})
            image.update(enumerate(values, start=request.address))
        return decode_inputs(self.plan, images, self._clock(), assumed=self._last_frame)

    async def _write_pending(self, regs: list[int]) -> None:
        del regs  # the images of _encode carry the frame
        images, frame, previous = self._images, self._frame, self._last_written
        now = self._clock()
        due = {
            d for d in self.plan.devices if previous is None or now >= self._refresh_at.get(d, 0.0)
        }
        self._last_written = None  # until the whole pass went through
        for request in self.plan.writes(images, previous, full=due):
            await self._with_retries(functools.partial(self.links.send, request))
        self._last_written = images
        self._last_frame = frame
        periods = {d: self.plan.profile.device(d).refresh_s for d in due}
        self._refresh_at.update(next_refresh(periods, now, stagger=previous is None))

    async def _reset_mmu(self) -> None:
        for request in [*self.plan.reset_writes(), *self.plan.reset_writes(release=True)]:
            await self._with_retries(functools.partial(self.links.send, request))


def next_refresh(periods: Mapping[str, float], now: float, *, stagger: bool) -> dict[str, float]:
    """When each unit just rewritten in full (``periods``: unit → its ``refresh_s``) is due
    again. After a pass that rewrote every unit at once — the first, or the one after a
    failure — the units are spread over their period (``stagger``), so that afterwards each
    tick carries at most one unit's full rewrite: on a shared RS-485 line the requests of
    every unit in one tick make that tick's frame late, and the daemon holds its clock for a
    late frame (``bench/field_bench.py`` saw it hold one tick in every refresh period)."""
    ordered = sorted(periods)
    share = 1.0 / len(ordered) if stagger and ordered else 0.0
    return {d: now + periods[d] * (1.0 + k * share) for k, d in enumerate(ordered)}


def unit_groups(profile: FieldProfile) -> list[tuple[bool, tuple[str, ...]]]:
    """``(detectors_only, unit names)`` of the devices a profile is served as: the units
    carrying only detector inputs and push-buttons, and the others (one group when all
    units are of one kind)."""
    plan = FieldPlan(profile)
    zones = zone_units(profile)
    inputs_only = tuple(
        d
        for d in plan.devices
        if d not in zones
        and all(p.signal.startswith(_INPUT_ONLY) for p in plan.placements if p.device == d)
    )
    rest = tuple(d for d in plan.devices if d not in inputs_only and d not in zones)
    if not inputs_only or not rest:
        both = tuple(d for d in plan.devices if d not in zones)
        return [(not rest, both)] if both else []
    return [(True, inputs_only), (False, rest)]


def zone_units(profile: FieldProfile) -> tuple[str, ...]:
    """The units that carry nothing but zone sensors (served as ``NAME-zones``)."""
    plan = FieldPlan(profile)
    return tuple(
        d
        for d in plan.devices
        if (mine := [p for p in plan.placements if p.device == d])
        and all(p.signal.startswith(_ZONES) for p in mine)
    )


def open_unit(spec: Device, unit: ModbusDevice, *, buses: FieldBuses, name: str = "") -> ObjectIO:
    """The link to one unit: on its own URL, or on the device's with the unit's id (an
    in-memory bus keeps one bank per unit, ``memory://NAME.UNIT``)."""
    endpoint = parse_url(unit.url or spec.url)
    timeout = unit.timeout if unit.timeout is not None else spec.timeout
    gap = unit.inter_request_gap if unit.inter_request_gap is not None else spec.inter_request_gap
    if isinstance(endpoint, MemoryEndpoint):
        return buses.bank(f"{endpoint.name}.{unit.unit}")
    endpoint = dataclasses.replace(endpoint, unit=unit.unit)
    return ModbusIO(endpoint, buses=buses, timeout=timeout, gap=gap, name=name or unit.name)


def open_mapped(
    spec: Device,
    *,
    buses: FieldBuses,
    profile: FieldProfile | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> list[MappedDevice]:
    """The field devices of a configured device whose profile is format 2."""
    profile = profile or load_field_profile(spec.profile)
    out: list[MappedDevice] = []
    for detectors_only, units in unit_groups(profile):
        name = spec.name
        if detectors_only and len(units) < len(profile.devices):
            name = f"{spec.name[:22]}-detectors"
        links = UnitLinks(
            {u: open_unit(spec, profile.device(u), buses=buses, name=f"{name}/{u}") for u in units}
        )
        group = spec.model_copy(update={"name": name})
        out.append(MappedDevice(group, FieldPlan(profile, only=units), links, clock=clock))
    zones = zone_units(profile)
    if zones:
        name = f"{spec.name[:26]}-zones"
        links = UnitLinks(
            {u: open_unit(spec, profile.device(u), buses=buses, name=f"{name}/{u}") for u in zones}
        )
        group = spec.model_copy(update={"name": name})
        out.append(MappedDevice(group, FieldPlan(profile, only=zones), links, clock=clock))
    return out


def open_devices(
    specs: Sequence[Device],
    *,
    buses: FieldBuses,
    clock: Callable[[], float] = time.monotonic,
) -> list[CabinetDevice]:
    """Every field device of a configuration: a v2 profile's groups of units
    (:func:`open_mapped`), a v1 profile's one :class:`CabinetDevice`."""
    out: list[CabinetDevice] = []
    for spec in specs:
        if is_field_profile(spec.profile):
            out.extend(open_mapped(spec, buses=buses, clock=clock))
        else:
            out.append(CabinetDevice(spec, buses=buses, clock=clock))
    return out
