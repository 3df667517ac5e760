"""firmware_sim with a v2 profile: several Modbus units on one TCP port and on one RTU pty,
driven by the daemon's own field devices (edgectl.field.mapped) over the real wire."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest

from edgectl.cabinet.channels import ChannelState
from edgectl.config.settings import Device
from edgectl.field.buses import FieldBuses
from edgectl.field.device import CabinetDevice
from edgectl.field.mapped import open_devices
from edgectl.field.report import DeviceReport, Health
from firmware_sim import Emulator
from firmware_sim.units import parse_unit_fault

from .conftest import LISTEN

FRAME = {
    1: ChannelState.R,
    2: ChannelState.G,
    3: ChannelState.R,
    4: ChannelState.R,
    5: ChannelState.R,
    6: ChannelState.G,
    7: ChannelState.R,
    8: ChannelState.R,
    9: ChannelState.W,
    10: ChannelState.DW,
    11: ChannelState.W,
    12: ChannelState.DW,
}

ALL_RED = {c: ChannelState.DW if c > 8 else ChannelState.R for c in FRAME}


@asynccontextmanager
async def junction(
    transport: str, faults: tuple[str, ...] = ()
) -> AsyncIterator[tuple[Emulator, list[CabinetDevice]]]:
    async with Emulator(
        "builtin:io-modules", listen=LISTEN[transport], clock="virtual", seed=3, faults=faults
    ) as emu:
        spec = Device(
            name="cabinet", url=emu.url, profile="builtin:io-modules", timeout=0.3, retries=0
        )
        devices = open_devices([spec], buses=FieldBuses())
        async with asyncio.TaskGroup() as tg:
            tasks = [tg.create_task(d.run(), name=f"edgectl[poll:{d.name}]") for d in devices]
            try:
                yield emu, devices
            finally:
                for t in tasks:
                    t.cancel()


async def _read(dev: CabinetDevice) -> DeviceReport:
    async with asyncio.timeout(5):
        while True:
            n = dev.tick()
            report = await dev.wait_report(n)
            if report.read_ok and report.tick >= n:
                return report
            await asyncio.sleep(0.02)


async def _write(dev: CabinetDevice, frame: dict[int, ChannelState]) -> None:
    seq = dev.frames_written
    dev.tick()
    dev.submit(frame)
    async with asyncio.timeout(5):
        while dev.frames_written <= seq:  # noqa: ASYNC110 - the device task writes it
            await asyncio.sleep(0.005)


@pytest.mark.parametrize("transport", ["tcp", "pty"])
async def test_five_units_behind_one_url(transport: str) -> None:
    async with junction(transport) as (emu, (detectors, cabinet)):
        assert detectors.name == "cabinet-detectors" and cabinet.name == "cabinet"
        # the detector module shows the model's loops
        emu.model._presence = frozenset({2, 9})
        report = await _read(detectors)
        assert report.inputs is not None and {2, 9} <= report.inputs.presence
        # the MMU module: not tripped, start-up flash until the controller takes over
        report = await _read(cabinet)
        assert report.snapshot is not None and not report.snapshot.mmu_tripped
        for _ in range(3):  # all red with a live heartbeat: the controller takes over
            await _write(cabinet, ALL_RED)
            await emu.advance(0.1)
        for _ in range(3):
            await _write(cabinet, FRAME)
            await emu.advance(0.1)
        assert emu.model.cabinet.in_control and not emu.model.cabinet.tripped
        assert {c: emu.model.cabinet.shown[c] for c in FRAME} == FRAME
        report = await _read(cabinet)
        assert report.readback is not None
        assert {c: report.readback[c] for c in FRAME} == FRAME
        units = emu.summary()["devices"]
        assert [(u["name"], u["unit"]) for u in units] == [
            ("detectors", 1),
            ("mmu", 2),
            ("lamps-a", 3),
            ("lamps-b", 4),
            ("lamps-p", 5),
        ]


async def test_a_dead_detector_module_leaves_the_outputs_working() -> None:
    async with junction("tcp", faults=("unit_dead:1",)) as (emu, (detectors, cabinet)):
        async with asyncio.timeout(10):
            while detectors.report.health is not Health.OFFLINE:
                detectors.tick()
                await asyncio.sleep(0.05)
        for frame in (ALL_RED, ALL_RED, FRAME, FRAME):
            await _write(cabinet, frame)
            await emu.advance(0.1)
        report = await _read(cabinet)
        assert report.health is Health.ONLINE and not report.mmu_tripped
        assert {c: emu.model.cabinet.shown[c] for c in FRAME} == FRAME
        assert emu.summary()["devices"][0]["faults"] == ["unit_dead:1@0"]


async def test_a_stuck_relay_shows_in_the_readback() -> None:
    # coil 2 of lamps-a is channel 1's green: stuck off from the start
    async with junction("tcp", faults=("relay_stuck:3.2",)) as (_emu, (_detectors, cabinet)):
        await _write(cabinet, {**FRAME, 1: ChannelState.G, 2: ChannelState.R})
        report = await _read(cabinet)
        assert report.readback is not None
        assert report.readback[1] is ChannelState.OFF  # no lamp lit: the green never came on


def test_unit_fault_grammar() -> None:
    assert str(parse_unit_fault("unit_slow:4=0.05@10+5")) == "unit_slow:4=0.05@10+5"
    assert str(parse_unit_fault("relay_stuck:3.2@20")) == "relay_stuck:3.2@20"
    for bad in ("unit_dead:1.2", "relay_stuck:3", "unit_slow:4", "unit_slow:4=99", "unit_x:1"):
        with pytest.raises(ValueError, match=r"unit|relay|bad"):
            parse_unit_fault(bad)


def test_a_unit_fault_needs_a_profile_of_units() -> None:
    with pytest.raises(ValueError, match="one unit"):
        Emulator("builtin:nema-cabinet", faults=("unit_dead:1",))
    with pytest.raises(ValueError, match="no unit 9"):
        Emulator("builtin:io-modules", faults=("unit_dead:9",))
