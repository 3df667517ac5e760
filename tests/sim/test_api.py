"""The public API of firmware_sim is deliberate; this pins it."""

from __future__ import annotations

import pytest

import firmware_sim
from firmware_sim import Emulator


def test_public_names() -> None:
    assert sorted(firmware_sim.__all__) == [
        "Cabinet",
        "CabinetModel",
        "DemandSchedule",
        "Emulator",
        "FaultKind",
        "FaultSpec",
        "MmuFault",
        "MovementStats",
        "TrafficModel",
        "WireFaults",
        "parse_fault",
    ]


async def test_real_clock_cannot_be_advanced() -> None:
    async with Emulator("builtin:two-phase") as emu:
        with pytest.raises(RuntimeError):
            await emu.advance(1.0)
        assert emu.url.startswith("modbus+tcp://127.0.0.1:")


async def test_virtual_clock_and_summary() -> None:
    async with Emulator("builtin:nema-cabinet", clock="virtual", seed=4) as emu:
        await emu.advance(120.0)
        assert emu.now == pytest.approx(120.0)
        data = emu.summary()
    assert data["vehicles"]["arrived"] > 0
    assert data["mmu"]["tripped"] is False
    assert set(data["movements"]) == {f"p{i}" for i in range(1, 9)}
    # no controller took over: every channel in start-up flash (FR), so vehicles stop and
    # go at 4 s headways; those still waiting count in the mean "with waiting"
    assert data["delay_s_mean_with_waiting"] >= data["delay_s_mean"] > 0
    for mv in data["movements"].values():
        assert {"delay_s_max", "delay_s_mean_with_waiting", "waiting_s_max"} <= set(mv)
        assert mv["delay_s_max"] >= mv["delay_s_mean"]


def test_bad_listen_url() -> None:
    with pytest.raises(ValueError, match="unsupported"):
        Emulator(listen="http://x")
