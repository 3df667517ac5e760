"""Regression tests for defects the proof campaign (issue 8) found outside the soak itself."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from edgectl.cabinet.channels import ChannelState
from edgectl.cabinet.registers import CabinetMap
from edgectl.config.settings import Device, DeviceRole
from edgectl.daemon.latency import LatencyHistogram
from edgectl.field.device import CabinetDevice
from edgectl.field.memory import MemoryIO


class CountingIO(MemoryIO):
    def __init__(self) -> None:
        super().__init__()
        self.reads = 0

    async def read_input(self, address: int, count: int) -> list[int]:
        self.reads += 1
        return await super().read_input(address, count)


async def _until(predicate: Callable[[], bool]) -> None:
    async with asyncio.timeout(2.0):
        while not predicate():  # noqa: ASYNC110 - polling a fake's counters
            await asyncio.sleep(0.002)


async def test_device_falls_back_in_step_after_a_missed_tick() -> None:
    """Found by bench/daemon_bench.py: once a tick went by while the device waited for a
    frame (e.g. the first tick after connecting), the device read right after every write,
    one tick early, so every later tick waited out its whole read budget (60 ms of 100) and
    ran on a 100 ms old detector snapshot — for ever. Now the device drops that stale tick."""
    io = CountingIO()
    spec = Device(name="cab", url="memory://unit", role=DeviceRole.CABINET, retries=0)
    dev = CabinetDevice(spec, CabinetMap(), io=io)
    async with asyncio.TaskGroup() as tg:
        task = tg.create_task(dev.run(), name="edgectl[poll:test]")
        dev.tick()  # tick 1: read, but the control loop submits no frame (device offline)
        await _until(lambda: io.reads == 1)
        dev.tick()  # tick 2: the device waits for a frame; the control loop's read budget
        dev.submit({1: ChannelState.R})  # runs out and it submits from the old snapshot
        await _until(lambda: dev.stats.writes == 1)
        await asyncio.sleep(0.02)  # room for a (wrong) early read
        assert io.reads == 1, "read for a tick that is already over"
        for n in range(3, 8):  # from now on every tick gets its own read at once
            dev.tick()
            async with asyncio.timeout(0.5):
                assert await dev.wait_snapshot()
            assert io.reads == n - 1
            dev.submit({1: ChannelState.R})
            await _until(lambda n=n: dev.stats.writes == n - 1)  # type: ignore[misc]
        task.cancel()


def test_latency_histogram_quantiles() -> None:
    h = LatencyHistogram()
    assert h.summary()["n"] == 0 and h.quantile(0.99) == 0.0
    for i in range(1, 101):  # 1 .. 100 ms
        h.add(i / 1000)
    h.add(0.5)  # beyond the last bin: counted, kept as the max
    s = h.summary()
    assert s["n"] == 101
    assert 50.0 <= s["p50_ms"] <= 51.1
    assert 99.0 <= s["p99_ms"] <= 100.2
    assert s["max_ms"] == 500.0
