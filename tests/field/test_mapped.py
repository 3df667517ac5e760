"""Devices of a v2 profile over in-memory units: groups, read pass, write pass, failures.

The emulator over TCP and an RTU pty is the integration test; here one in-memory bank per
unit (``memory://NAME.UNIT``) stands in, so the device's logic is tested alone.
"""

from __future__ import annotations

import asyncio

import pytest

from edgectl.cabinet.channels import ChannelState
from edgectl.cabinet.fieldcheck import load_field_profile
from edgectl.cabinet.planner import FieldPlan
from edgectl.config.settings import Device
from edgectl.errors import DeviceTimeout
from edgectl.field.buses import FieldBuses
from edgectl.field.device import CabinetDevice
from edgectl.field.mapped import MappedDevice, UnitLinks, open_devices, unit_groups
from edgectl.field.memory import MemoryIO, MockTransport, Request, Response
from edgectl.field.report import DeviceReport, Health

IO_MODULES = load_field_profile("builtin:io-modules")


def _spec(profile: str = "builtin:io-modules") -> Device:
    return Device(name="cabinet", url="memory://cab", profile=profile, retries=1)


def test_io_modules_is_served_as_a_detector_device_and_a_cabinet_device() -> None:
    assert unit_groups(IO_MODULES) == [
        (True, ("detectors",)),
        (False, ("mmu", "lamps-a", "lamps-b", "lamps-p")),
    ]
    devices = open_devices([_spec()], buses=FieldBuses())
    assert [(d.name, d.reads_inputs, d.writes_outputs) for d in devices] == [
        ("cabinet-detectors", True, False),
        ("cabinet", True, True),
    ]
    assert all(isinstance(d, MappedDevice) for d in devices)


def test_v1_and_cabinet_v1_profiles() -> None:
    buses = FieldBuses()
    (v1,) = open_devices([_spec("builtin:nema-cabinet")], buses=buses)
    assert type(v1) is CabinetDevice
    (v2,) = open_devices([_spec("builtin:cabinet-v1")], buses=buses)
    assert isinstance(v2, MappedDevice) and v2.name == "cabinet"


async def _report(dev: CabinetDevice, n: int) -> DeviceReport:
    async with asyncio.timeout(2):
        return await dev.wait_report(n)


async def _online(dev: CabinetDevice) -> None:
    async with asyncio.timeout(2):
        while dev.report.seq == 0 or dev.health is Health.OFFLINE:
            dev.tick()
            await asyncio.sleep(0.01)


async def test_read_and_write_passes_over_five_units() -> None:
    buses = FieldBuses()
    detectors, cabinet = open_devices([_spec()], buses=buses)
    di, mmu, lamps_a, lamps_p = (buses.bank(f"cab.{u}") for u in (1, 2, 3, 5))
    di.discrete_inputs[2] = 1  # detector 3
    di.discrete_inputs[13] = 1  # push-button of phase 4
    mmu.discrete_inputs[0] = 1  # the MMU's fault relay energised: no fault
    async with asyncio.TaskGroup() as tg:
        tasks = [
            tg.create_task(d.run(), name=f"edgectl[poll:{d.name}]") for d in (detectors, cabinet)
        ]
        await _online(detectors)
        await _online(cabinet)
        n = detectors.tick()
        report = await _report(detectors, n)
        assert report.inputs is not None
        assert report.inputs.presence == {3} and report.inputs.ped_buttons == {4}

        frame = {1: ChannelState.G, 2: ChannelState.R, 9: ChannelState.W, 10: ChannelState.DW}
        seq = cabinet.report.frames_written
        cabinet.tick()
        cabinet.submit(frame)
        async with asyncio.timeout(2):
            while cabinet.report.frames_written <= seq:  # noqa: ASYNC110
                await asyncio.sleep(0.005)
        assert lamps_a.coils[:8] == [0, 0, 1, 0, 1, 0, 0, 0]  # ch1 green, ch2 red
        assert lamps_p.coils[:6] == [0, 1, 0, 1, 0, 0]  # ch9 walk, ch10 don't walk
        n = cabinet.tick()
        report = await _report(cabinet, n)
        assert report.snapshot is not None and not report.snapshot.mmu_tripped
        assert report.readback is not None
        assert {ch: report.readback[ch] for ch in frame} == frame

        # the MMU's relay drops out with a watchdog code: tripped, fault 4
        mmu.discrete_inputs[0] = 0
        mmu.discrete_inputs[2:5] = [0, 0, 1]
        n = cabinet.tick()
        report = await _report(cabinet, n)
        assert report.mmu_tripped and report.mmu_fault == 4
        for t in tasks:
            t.cancel()


async def test_only_changes_are_written_and_the_reset_is_a_pulse() -> None:
    buses = FieldBuses()
    _, cabinet = open_devices([_spec()], buses=buses)
    lamps_a, mmu = buses.bank("cab.3"), buses.bank("cab.2")
    writes: list[tuple[str, int]] = []
    for bank in (lamps_a, mmu):
        original = bank.handler

        def spy(request, original=original, bank=bank):  # type: ignore[no-untyped-def]
            if request.values:
                writes.append((bank.name, int(request.function)))
            return original(request)

        bank.handler = spy
    async with asyncio.TaskGroup() as tg:
        task = tg.create_task(cabinet.run(), name="edgectl[poll:cabinet]")
        await _online(cabinet)
        for _ in range(3):
            seq = cabinet.report.frames_written
            cabinet.tick()
            cabinet.submit({1: ChannelState.G})
            async with asyncio.timeout(2):
                while cabinet.report.frames_written <= seq:  # noqa: ASYNC110
                    await asyncio.sleep(0.005)
        # the first pass wrote everything (FC15), then only the heartbeat coil (FC5)
        assert writes == [("cab.3", 15), ("cab.2", 5), ("cab.2", 5), ("cab.2", 5)]
        writes.clear()
        cabinet.request_mmu_reset()
        cabinet.tick()
        async with asyncio.timeout(2):
            while len(writes) < 2:  # noqa: ASYNC110
                await asyncio.sleep(0.005)
        assert writes[:2] == [("cab.2", 5), ("cab.2", 5)] and mmu.coils[1] == 0
        task.cancel()


async def test_a_dead_detector_module_fails_its_device_alone() -> None:
    buses = FieldBuses()
    detectors, cabinet = open_devices([_spec()], buses=buses)
    di: MemoryIO = buses.bank("cab.1")
    async with asyncio.TaskGroup() as tg:
        tasks = [
            tg.create_task(d.run(), name=f"edgectl[poll:{d.name}]") for d in (detectors, cabinet)
        ]
        await _online(detectors)
        await _online(cabinet)
        di.fail_next = DeviceTimeout("injected")
        n = detectors.tick()
        failed = await _report(detectors, n)
        # retried once within the tick: the injected failure alone does not fail the read
        assert failed.read_ok and failed.stats.errors == {"DeviceTimeout": 1}
        await di.close()  # the module is gone
        n = detectors.tick()
        async with asyncio.timeout(2):
            while detectors.report.health is not Health.OFFLINE:  # noqa: ASYNC110
                await asyncio.sleep(0.005)
        n = cabinet.tick()
        assert (await _report(cabinet, n)).health is Health.ONLINE
        for t in tasks:
            t.cancel()


@pytest.mark.parametrize("profile", ["builtin:cabinet-v1"])
async def test_cabinet_v1_through_the_mapped_device(profile: str) -> None:
    bank = FieldBuses()
    (dev,) = open_devices([_spec(profile)], buses=bank)
    io = bank.bank("cab.1")
    io.input_registers[5] = 0b101  # detectors 1 and 3
    io.input_registers[10] = int(ChannelState.G)
    async with asyncio.TaskGroup() as tg:
        task = tg.create_task(dev.run(), name="edgectl[poll:cabinet]")
        await _online(dev)
        n = dev.tick()
        report = await _report(dev, n)
        assert report.inputs is not None and report.inputs.presence == {1, 3}
        assert report.readback is not None and report.readback[1] is ChannelState.G
        seq = dev.report.frames_written
        dev.submit({1: ChannelState.Y})
        async with asyncio.timeout(2):
            while dev.report.frames_written <= seq:  # noqa: ASYNC110
                await asyncio.sleep(0.005)
        assert io.holding_registers[0] == int(ChannelState.Y)
        assert io.holding_registers[32] == dev._heartbeat
        task.cancel()


class Recorder:
    """A cabinet-v1 device as a handler that records every request it is sent."""

    def __init__(self) -> None:
        self.bank = MemoryIO(inputs=128, holding=64)
        self.requests: list[Request] = []

    def __call__(self, request: Request) -> Response:
        self.requests.append(request)
        return self.bank._serve(request)


async def _drive(dev: CabinetDevice, frames: list[dict[int, ChannelState]]) -> None:
    async with asyncio.TaskGroup() as tg:
        task = tg.create_task(dev.run(), name="edgectl[poll:cabinet]")
        await _online(dev)
        for i, frame in enumerate(frames):
            if i == 1:
                dev.request_mmu_reset()
            seq = dev.report.frames_written
            n = dev.tick()
            await _report(dev, n)
            dev.submit(frame)
            async with asyncio.timeout(2):
                while dev.report.frames_written <= seq:  # noqa: ASYNC110
                    await asyncio.sleep(0.005)
        task.cancel()


async def test_cabinet_v1_requests_are_those_of_the_v1_device() -> None:
    """The same ticks through CabinetDevice (registers.py) and through the v2 profile's
    MappedDevice send the same requests, value for value."""
    frames = [
        {1: ChannelState.G, 2: ChannelState.R},
        {1: ChannelState.Y, 2: ChannelState.R},
        {1: ChannelState.Y, 2: ChannelState.R},
        {1: ChannelState.R, 2: ChannelState.R, 9: ChannelState.DW},
    ]
    old, new = Recorder(), Recorder()
    spec = _spec("builtin:nema-cabinet")
    await _drive(CabinetDevice(spec, io=MockTransport(old)), frames)
    plan = FieldPlan(load_field_profile("builtin:cabinet-v1"))
    links = UnitLinks({"cabinet": MockTransport(new)})
    await _drive(MappedDevice(_spec("builtin:cabinet-v1"), plan, links), frames)
    assert len(old.requests) >= 2 * len(frames) + 1
    assert new.requests == old.requests
