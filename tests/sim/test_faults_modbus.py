"""Injected faults and malformed requests as a plain pymodbus client sees them, over real TCP
and the real pty."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest
from pymodbus.exceptions import ModbusIOException

from .conftest import TIMEOUT, Cabinet

DEMAND = 48  # holding registers (cabinet-v1)
SILENT_S, STUCK, CHATTER, DEAD, POWER_CYCLE = 43, 44, 45, 46, 47


def presence(regs: list[int]) -> set[int]:
    words = regs[5:9]
    return {d for d in range(1, 65) if words[(d - 1) // 16] >> ((d - 1) % 16) & 1}


async def test_detectors_follow_the_traffic_model(cabinet: Cabinet) -> None:
    seen: set[int] = set()
    for _ in range(300):  # 30 s of virtual time; the cabinet is in start-up flash (FR)
        await cabinet.emu.advance(0.1)
        regs = await cabinet.read_inputs()
        assert presence(regs) == set(cabinet.emu.model.presence)
        seen |= presence(regs)
    counts = (await cabinet.read_inputs())[42:54]
    assert seen  # vehicles drove over loops
    assert sum(counts) > 0
    assert counts == [cabinet.emu.model.counts[d] for d in range(1, 13)]


async def test_exceptions_and_the_server_keeps_serving(cabinet: Cabinet) -> None:
    c, unit = cabinet.client, cabinet.unit
    bad_value = await c.write_registers(0, [9] * 33, device_id=unit)
    assert bad_value.isError()
    assert bad_value.exception_code == 3
    huge = await c.write_register(5, 0xFFFF, device_id=unit)
    assert huge.isError()
    assert huge.exception_code == 3
    gap = await c.write_register(35, 1, device_id=unit)  # between mmu_reset and sim_control
    assert gap.isError()
    assert gap.exception_code == 2
    outside = await c.write_registers(120, [1, 2], device_id=unit)
    assert outside.isError()
    assert outside.exception_code == 2
    past_end = await c.read_input_registers(100, count=20, device_id=unit)
    assert past_end.isError()
    assert past_end.exception_code == 2
    bad_sim = await c.write_register(40, 5000, device_id=unit)  # drop_permille > 1000
    assert bad_sim.isError()
    assert bad_sim.exception_code == 3
    coil = await c.write_coil(0, True, device_id=unit)
    assert coil.isError()
    # nothing of the refused writes was applied, and the device still answers
    holding = await c.read_holding_registers(0, count=34, device_id=unit)
    assert holding.registers == [0] * 34
    assert cabinet.emu.model.cabinet.frames_received == 0
    assert (await cabinet.read_inputs())[0] == 2


async def expect_no_answer(cab: Cabinet) -> float:
    t0 = time.monotonic()
    with pytest.raises(ModbusIOException):
        await cab.read_inputs()
    return time.monotonic() - t0


async def test_drop_window(cabinet_factory: Callable[..., Any]) -> None:
    async with cabinet_factory(faults=["drop:1.0@0+2"]) as cab:
        assert await expect_no_answer(cab) >= TIMEOUT * 0.9
        await cab.emu.advance(2.0)
        await cab.read_inputs()
        assert cab.emu.summary()["wire"]["dropped"] == 1


async def test_partial_drop_share(cabinet_factory: Callable[..., Any]) -> None:
    async with cabinet_factory(faults=["drop:0.5"]) as cab:
        answered = 0
        for _ in range(6):
            try:
                await cab.read_inputs(0, 1)
                answered += 1
            except ModbusIOException:
                pass
        assert 0 < answered < 6


async def test_delay(cabinet_factory: Callable[..., Any]) -> None:
    async with cabinet_factory(faults=["delay:0.15@0+1"]) as cab:
        t0 = time.monotonic()
        await cab.read_inputs()
        assert time.monotonic() - t0 >= 0.15
        await cab.emu.advance(1.0)
        t0 = time.monotonic()
        await cab.read_inputs()
        assert time.monotonic() - t0 < 0.15


async def test_corrupt_frames_are_client_errors(cabinet_factory: Callable[..., Any]) -> None:
    async with cabinet_factory(faults=["corrupt:1.0@0+1"]) as cab:
        await expect_no_answer(cab)
        await cab.emu.advance(1.0)
        assert (await cab.read_inputs())[109] == 1
        assert cab.emu.summary()["wire"]["corrupted"] == 1


async def test_silent_window_from_register(cabinet: Cabinet) -> None:
    r = await cabinet.write(SILENT_S, [2])  # its own response still arrives
    assert not r.isError()
    await expect_no_answer(cabinet)
    await cabinet.emu.advance(1.0)
    await expect_no_answer(cabinet)
    await cabinet.emu.advance(1.1)
    await cabinet.read_inputs()


async def test_silent_window_from_spec(cabinet_factory: Callable[..., Any]) -> None:
    async with cabinet_factory(faults=["silent@1+1"]) as cab:
        await cab.read_inputs()
        await cab.emu.advance(1.0)
        await expect_no_answer(cab)
        await cab.emu.advance(1.0)
        await cab.read_inputs()


async def test_stuck_chatter_dead_detectors(cabinet: Cabinet) -> None:
    assert not (await cabinet.write(DEMAND, [0])).isError()  # no traffic: loops idle
    await cabinet.write(STUCK, [3])
    await cabinet.write(CHATTER, [4])
    samples = []
    for _ in range(20):
        await cabinet.emu.advance(0.1)
        samples.append(presence(await cabinet.read_inputs()))
    assert all(3 in s for s in samples)
    assert [4 in s for s in samples] == [i % 2 == 1 for i in range(20)]
    counts = (await cabinet.read_inputs())[42:54]
    assert counts[3] == 10  # one actuation per on-off cycle of the chattering loop
    assert counts[2] == 1  # stuck: one long actuation
    await cabinet.write(DEAD, [3])  # a dead loop wins over a stuck one
    await cabinet.emu.advance(0.1)
    assert 3 not in presence(await cabinet.read_inputs())


async def test_dead_detector_from_spec_hides_a_queue(cabinet_factory: Callable[..., Any]) -> None:
    async with cabinet_factory(faults=["dead:2@0+1000", "stuck:7@0+5"]) as cab:
        seen: set[int] = set()
        for _ in range(200):
            await cab.emu.advance(0.1)
            seen |= presence(await cab.read_inputs())
        assert 2 not in seen
        assert 7 in seen
        assert 2 in cab.emu.model.traffic.presence(cab.emu.now) or cab.emu.model.traffic.arrived


async def test_power_cycle_from_spec(cabinet_factory: Callable[..., Any]) -> None:
    async with cabinet_factory(faults=["power_cycle@5"]) as cab:
        await cab.frame({}, heartbeat=1)  # take over
        for hb in range(2, 50):  # in control until t=4.9
            await cab.frame({}, heartbeat=hb)
            await cab.emu.advance(0.1)
        await cab.emu.advance(0.3)  # power cycle at t=5
        regs = await cab.read_inputs()
        assert regs[0] == 2  # start-up flash again
        assert regs[1] == 5  # power_cycle (informational until the controller takes over)
        assert regs[108] == 1
        assert regs[106] == 0  # uptime restarted
        assert regs[10:22] == [7] * 12
        holding = await cab.client.read_holding_registers(0, count=33, device_id=cab.unit)
        assert holding.registers == [0] * 33  # registers reset
        await cab.frame({}, heartbeat=1000)
        assert (await cab.read_inputs())[:2] == [4, 0]


async def test_power_cycle_from_register(cabinet: Cabinet) -> None:
    await cabinet.emu.advance(3.0)
    assert (await cabinet.read_inputs())[106] == 3
    r = await cabinet.write(POWER_CYCLE, [1])
    assert not r.isError()
    regs = await cabinet.read_inputs()
    assert (regs[106], regs[108], regs[0]) == (0, 1, 2)


async def test_other_units_get_no_answer(cabinet: Cabinet) -> None:
    with pytest.raises(ModbusIOException):
        await cabinet.client.read_input_registers(0, count=2, device_id=5)
    assert (await cabinet.read_inputs(109, 1)) == [1]
