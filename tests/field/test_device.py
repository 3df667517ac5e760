"""The field seam as a pure unit: URL parsing, register decoding, device health.

The real links (Modbus TCP and RTU against firmware_sim) are exercised in
``tests/hil``; here the in-memory bank stands in so that the state machine is tested alone.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Sequence

import pytest

from edgectl.cabinet.channels import ChannelState
from edgectl.cabinet.registers import CabinetMap, decode_inputs, encode_frame
from edgectl.config.settings import Device, DeviceRole
from edgectl.errors import DeviceTimeout, FatalFieldError
from edgectl.field.buses import FieldBuses, open_io
from edgectl.field.device import CabinetDevice, await_written
from edgectl.field.memory import MemoryIO
from edgectl.field.modbus import ModbusIO
from edgectl.field.report import Health
from edgectl.field.url import RtuEndpoint, TcpEndpoint, parse_url


def test_parse_tcp_and_rtu_urls() -> None:
    assert parse_url("modbus+tcp://127.0.0.1:1502?unit=3") == TcpEndpoint("127.0.0.1", 1502, 3)
    rtu = parse_url("modbus+rtu:///dev/ttyUSB0?baudrate=9600&parity=e&unit=2")
    assert rtu == RtuEndpoint("/dev/ttyUSB0", 2, baudrate=9600, parity="E")
    assert parse_url("modbus+tcp://cabinet").port == 502  # type: ignore[union-attr]


@pytest.mark.parametrize(
    "url",
    [
        "http://x:1",
        "modbus+tcp://:502",
        "modbus+tcp://h:502?unit=999",
        "modbus+tcp://h:502?speed=3",
        "modbus+rtu://relative/tty",
        "modbus+rtu:///dev/ttyS0?parity=X",
        "modbus+rtu:///dev/ttyS0?baudrate=fast",
    ],
)
def test_bad_urls_are_fatal_with_a_reason(url: str) -> None:
    with pytest.raises(FatalFieldError):
        parse_url(url)


def test_decode_input_block() -> None:
    cmap = CabinetMap()
    regs = [0] * cmap.input_span.count
    regs[0] = 0b101  # tripped + in control
    regs[1] = 4
    regs[2] = 0b11  # channels 1, 2
    regs[5] = 0b1001  # detectors 1 and 4
    regs[6] = 0b1  # detector 17
    regs[9] = 0b10  # ped button phase 2
    regs[10] = int(ChannelState.G)
    regs[11] = 99  # unknown code decodes as OFF
    regs[42] = 7
    regs[106], regs[107] = 5, 1
    regs[108] = 2
    snap = decode_inputs(regs, cmap, t=1.5)
    assert snap.mmu_tripped and snap.in_control and not snap.cabinet_flash
    assert snap.mmu_fault == 4 and snap.mmu_fault_channels == {1, 2}
    assert snap.presence == {1, 4, 17}
    assert snap.ped_buttons == {2}
    assert snap.readback[1] is ChannelState.G and snap.readback[2] is ChannelState.OFF
    assert snap.counts[0] == 7 and snap.uptime_s == 65536 + 5 and snap.power_cycles == 2


def test_encode_frame_fills_unused_channels_dark() -> None:
    regs = encode_frame({1: ChannelState.G, 3: ChannelState.R}, 4)
    assert regs == [3, 0, 1, 0]


def _device(io: MemoryIO, **kw: object) -> CabinetDevice:
    spec = Device(
        name="cab",
        url="memory://unit",
        role=DeviceRole.CABINET,
        backoff_initial=0.01,
        backoff_max=0.02,
        retries=0,
    )
    return CabinetDevice(spec, CabinetMap(), io=io, **kw)  # type: ignore[arg-type]


async def _tick(dev: CabinetDevice, frame: dict[int, ChannelState] | None = None) -> bool:
    dev.tick()
    try:
        async with asyncio.timeout(0.5):
            got = await dev.wait_snapshot()
    except TimeoutError:
        got = False
    if frame is not None:
        dev.submit(frame)
    await asyncio.sleep(0.01)
    return got


async def test_device_reads_writes_and_recovers() -> None:
    io = MemoryIO()
    io.input_registers[5] = 0b10
    dev = _device(io, offline_after=2)
    async with asyncio.TaskGroup() as tg:
        task = tg.create_task(dev.run(), name="edgectl[poll:test]")
        async with asyncio.timeout(2):
            while not io.connected:  # noqa: ASYNC110 - polling a fake's flag
                await asyncio.sleep(0.005)
        await _tick(dev, {1: ChannelState.G})
        assert await _tick(dev, {1: ChannelState.Y})
        assert dev.health is Health.ONLINE
        assert dev.snapshot is not None and dev.snapshot.presence == {2}
        assert io.holding_registers[0] == int(ChannelState.Y)
        heartbeat = io.holding_registers[32]
        await _tick(dev, {1: ChannelState.Y})
        assert io.holding_registers[32] == (heartbeat + 1) % 0x10000  # heartbeat moves

        io.fail_next = DeviceTimeout("injected")
        await _tick(dev)
        assert dev.stats.errors["DeviceTimeout"] == 1
        assert dev.health.value == "degraded"

        # the link goes away: offline, then back by itself with backoff
        await io.close()
        for _ in range(3):
            await _tick(dev)
        async with asyncio.timeout(5):
            while dev.health is not Health.ONLINE:  # a clean window of requests again
                await _tick(dev, {1: ChannelState.R})
        assert dev.stats.reconnects >= 2
        task.cancel()


async def test_internal_error_does_not_end_the_task() -> None:
    io = MemoryIO()
    dev = _device(io)
    io.fail_next = RuntimeError("a bug")  # not a FieldError
    async with asyncio.TaskGroup() as tg:
        task = tg.create_task(dev.run(), name="edgectl[poll:test]")
        async with asyncio.timeout(5):
            while dev.health is not Health.ONLINE:
                await _tick(dev, {1: ChannelState.R})
        assert not task.done()
        task.cancel()


class SlowWrites(MemoryIO):
    """Writes take a while (a serial line under load)."""

    async def write(self, address: int, values: Sequence[int]) -> None:
        await asyncio.sleep(0.2)
        await super().write(address, values)


async def test_the_last_frame_is_written_even_behind_a_slow_write() -> None:
    """The shutdown's flash frame, submitted while the previous frame is still being written,
    reaches the device: without another tick the device would wait for one for ever."""
    io = SlowWrites()
    dev = _device(io)
    async with asyncio.TaskGroup() as tg:
        task = tg.create_task(dev.run(), name="edgectl[poll:test]")
        await _tick(dev, {1: ChannelState.G})  # its write now takes 0.2 s
        # the last tick: its read budget runs out behind that write, its frame is handed over
        dev.tick()
        dev.submit({1: ChannelState.FY})
        await asyncio.sleep(0.5)
        assert dev.frames_written < dev.frames_submitted  # stuck: that tick's read was skipped
        assert await await_written([dev], 0.05) == []
        assert dev.frames_written == dev.frames_submitted
        assert io.holding_registers[0] == int(ChannelState.FY)
        task.cancel()


async def test_every_read_publishes_a_frozen_report() -> None:
    io = MemoryIO()
    io.input_registers[5] = 0b1  # detector 1
    io.input_registers[10] = int(ChannelState.G)
    dev = _device(io, offline_after=3)
    first = dev.report
    assert first.seq == 0 and first.health is Health.OFFLINE and first.snapshot is None
    async with asyncio.TaskGroup() as tg:
        task = tg.create_task(dev.run(), name="edgectl[poll:test]")
        n = dev.tick()
        assert (await dev.wait_report(n)) is first  # not connected yet: offline, answered at once
        async with asyncio.timeout(2):
            while dev.report.seq == 0:  # noqa: ASYNC110 - the first read makes it online
                await asyncio.sleep(0.005)
        n = dev.tick()
        async with asyncio.timeout(2):
            report = await dev.wait_report(n)
        assert report is dev.report and report.tick == n and report.read_ok
        assert report.inputs is not None and report.inputs.presence == {1}
        assert report.snapshot is report.inputs and report.last_ok == report.inputs.t
        assert report.readback is not None and report.readback[1] is ChannelState.G
        assert report.health is Health.ONLINE and report.connected and report.error == ""
        assert report.stats.reads == 2 and not report.mmu_tripped
        with pytest.raises(dataclasses.FrozenInstanceError):
            report.seq = 99  # type: ignore[misc]
        with pytest.raises(TypeError):
            report.readback[1] = ChannelState.R  # type: ignore[index]
        with pytest.raises(TypeError):
            report.stats.errors["x"] = 1  # type: ignore[index]

        dev.submit({1: ChannelState.Y})
        async with asyncio.timeout(2):
            while dev.report.frames_written < 1:  # noqa: ASYNC110 - the report is replaced
                await asyncio.sleep(0.005)
        written = dev.report
        assert written.written[0] == int(ChannelState.Y) and written.last_write_ok is not None
        assert written.tick == n and written.seq > report.seq and report.frames_written == 0

        io.fail_next = DeviceTimeout("injected")
        n = dev.tick()
        async with asyncio.timeout(2):
            failed = await dev.wait_report(n)
        assert not failed.read_ok and failed.error.startswith("DeviceTimeout")
        assert failed.snapshot is report.snapshot  # the last good read stays
        assert failed.health is Health.DEGRADED and failed.stats.errors == {"DeviceTimeout": 1}

        await io.close()  # the link drops: the device goes offline
        n = dev.tick()
        async with asyncio.timeout(2):
            while dev.report.health is not Health.OFFLINE:  # noqa: ASYNC110
                await asyncio.sleep(0.005)
        assert dev.report.error.startswith("DeviceUnavailable")
        assert (await dev.wait_report(n + 5)) is dev.report  # offline: answered at once
        task.cancel()


async def test_an_outputs_only_device_answers_a_wait_at_once() -> None:
    spec = Device(name="out", url="memory://out", role=DeviceRole.OUTPUTS, retries=0)
    dev = CabinetDevice(spec, CabinetMap(), io=MemoryIO())
    assert (await dev.wait_report(dev.tick())) is dev.report


async def test_buses_share_serial_lines_and_banks() -> None:
    buses = FieldBuses()
    a = open_io(parse_url("modbus+rtu:///dev/ttyX?unit=1"), buses=buses, timeout=0.1)
    b = open_io(parse_url("modbus+rtu:///dev/ttyX?unit=2"), buses=buses, timeout=0.1)
    c = open_io(parse_url("modbus+rtu:///dev/ttyY?unit=1"), buses=buses, timeout=0.1)
    assert isinstance(a, ModbusIO) and isinstance(b, ModbusIO) and isinstance(c, ModbusIO)
    assert a._client is b._client and a._client is not c._client
    assert buses.lines == ("/dev/ttyX", "/dev/ttyY")
    bank = open_io(parse_url("memory://j1"), buses=buses, timeout=0.1)
    assert bank is buses.bank("j1") and bank is not buses.bank("j2")
    assert FieldBuses().bank("j1") is not bank  # no registry outside the buses object


async def test_closing_a_link_twice_does_not_close_the_line_under_another() -> None:
    buses = FieldBuses()
    a = ModbusIO(RtuEndpoint("/dev/ttyX", 1), buses=buses, timeout=0.1)
    b = ModbusIO(RtuEndpoint("/dev/ttyX", 2), buses=buses, timeout=0.1)
    await a.close()
    await a.close()
    assert buses.lines == ("/dev/ttyX",)  # b still holds it
    await b.close()
    assert not buses.lines  # the last one closed the port
