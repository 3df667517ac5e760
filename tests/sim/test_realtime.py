"""The real clock (what the CLI runs), the ground-truth record and the demand schedule."""

from __future__ import annotations

import asyncio
import csv
import json
from pathlib import Path

import pytest

from edgectl.cabinet.channels import ChannelState as S
from edgectl.cabinet.profile import load_profile
from firmware_sim import CabinetModel, DemandSchedule, Emulator

from .conftest import client_for


async def test_real_clock_watchdog_trips_about_one_second_after_last_heartbeat() -> None:
    async with Emulator("builtin:two-phase", seed=2) as emu:
        client = client_for(emu.url)
        assert await client.connect()
        try:
            for hb in range(1, 6):
                r = await client.write_registers(0, [1, 1, 4, 4] + [0] * 28 + [hb], device_id=1)
                assert not r.isError()
                last = emu.now
                await asyncio.sleep(0.1)  # the controller's own tick, not a wait for a condition
            assert emu.model.cabinet.in_control
            async with asyncio.timeout(5):
                while True:  # poll the condition, as a client would
                    regs = (await client.read_input_registers(0, count=2, device_id=1)).registers
                    if regs[1] == 4:
                        break
                    await asyncio.sleep(0.05)
        finally:
            client.close()
        fault = emu.model.cabinet.faults[0]
        assert 1.0 < fault.t - last < 1.6  # 1 s + one tick + scheduling slack


async def test_record_and_summary_in_virtual_time(tmp_path: Path) -> None:
    record, summary = tmp_path / "r.csv", tmp_path / "s.json"
    async with Emulator(
        "builtin:two-phase", clock="virtual", record=record, summary=summary, seed=3
    ) as emu:
        model = emu.model
        model.write_holding(emu.now, 0, [1, 1, 4, 4] + [0] * 28 + [1])  # take over
        await emu.advance(0.5)
        model.write_holding(emu.now, 0, [3, 1, 4, 4] + [0] * 28 + [2])  # main green
        await emu.advance(0.3)
        model.write_holding(emu.now, 0, [1, 1, 4, 4] + [0] * 28 + [3])  # G -> R: trip
        await emu.advance(0.1)
    rows = list(csv.reader(record.read_text().splitlines()))[1:]
    assert rows[:4] == [["0.000", str(c), "FR"] for c in (1, 2, 3, 4)]
    assert ["0.500", "1", "G"] in rows
    assert rows[-4:] == [["0.800", str(c), "FR"] for c in (1, 2, 3, 4)]
    data = json.loads(summary.read_text())
    assert data["mmu"]["tripped"] is True
    assert data["mmu"]["faults"] == [{"t": 0.8, "kind": "no_yellow", "channels": [1]}]
    assert data["frames_received"] == 3


def test_demand_schedule_multiplier_and_rates(tmp_path: Path) -> None:
    f = tmp_path / "d.csv"
    f.write_text("time_s,multiplier\n0,0\n600,2.0\n")
    profile = load_profile("builtin:two-phase")
    model = CabinetModel(profile, seed=1, demand=DemandSchedule.load(f))
    for i in range(1, 6001):
        model.step(i * 0.1)
    assert model.traffic.arrived == 0
    for i in range(6001, 12001):
        model.step(i * 0.1)
    # 600 s at 2 x (500 + 250) veh/h
    assert model.traffic.arrived == pytest.approx(250, rel=0.2)
    g = tmp_path / "r.csv"
    g.write_text("time_s,main,side\n0,3600,0\n")
    assert DemandSchedule.load(g).rate(10.0, "side", 250.0) == 0.0
    assert DemandSchedule.load(g).rate(10.0, "main", 500.0) == 3600.0


def test_pedestrian_button_latched_until_walk() -> None:
    profile = load_profile("builtin:two-phase")
    model = CabinetModel(profile, seed=1)
    t = 0.0
    while not model.ped_buttons:
        t = round(t + 0.1, 6)
        model.step(t)
        assert t < 3600
    phase = next(iter(model.ped_buttons))
    walk_channel = 3 if phase == 2 else 4
    frame = [1, 1, 4, 4] + [0] * 28
    model.write_holding(t, 0, [*frame, 1])
    model.step(round(t + 0.1, 6))
    assert phase in model.ped_buttons  # still latched: no walk yet
    frame[walk_channel - 1] = int(S.W)
    frame[0 if phase == 2 else 1] = int(S.G)
    model.write_holding(t + 0.1, 0, [*frame, 2])
    model.step(round(t + 0.2, 6))
    assert phase not in model.ped_buttons
    regs = model.read_input(t + 0.2, 9, 1)
    assert isinstance(regs, list)
    assert not regs[0] >> (phase - 1) & 1


def _crc16(data: bytes) -> bytes:
    crc = 0xFFFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0xA001 if crc & 1 else crc >> 1
    return crc.to_bytes(2, "little")


async def test_serves_a_given_serial_device() -> None:
    """``modbus+rtu:///dev/X``: here the slave of a pty pair the test holds, raw RTU bytes."""
    import os
    import tty

    master, slave = os.openpty()
    tty.setraw(slave)
    path = os.ttyname(slave)
    try:
        async with Emulator(listen=f"modbus+rtu://{path}?baudrate=19200", clock="virtual") as emu:
            assert emu.url == f"modbus+rtu://{path}?baudrate=19200&unit=1"
            request = bytes([1, 4, 0, 109, 0, 1])  # unit 1, FC4, register 109, count 1
            os.write(master, request + _crc16(request))
            os.set_blocking(master, False)
            loop = asyncio.get_running_loop()
            arrived = asyncio.Event()
            loop.add_reader(master, arrived.set)
            response = b""
            try:
                async with asyncio.timeout(5):
                    while len(response) < 7:
                        await arrived.wait()
                        arrived.clear()
                        response += os.read(master, 64)
            finally:
                loop.remove_reader(master)
            assert response[:5] == bytes([1, 4, 2, 0, 1])  # profile_version = 1
            assert response[5:7] == _crc16(response[:5])
    finally:
        os.close(master)
        os.close(slave)
