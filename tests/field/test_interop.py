"""The daemon's Modbus transport against a server that is not pymodbus: libmodbus (the C
library most Modbus devices and gateways on Linux are built with), as a small TCP gateway
compiled here from ``interop/libmodbus_gateway.c`` — several units behind one port, like the
gateway of a cabinet of I/O modules.

Both ends of every other field test are pymodbus (edgectl's client, firmware_sim's server),
so a shared misreading of the standard would pass them all; here the server's framing, its
exception responses, its bit packing and its unit ids are libmodbus's own. Checked:

- the RegisterIO conformance suite (:func:`edgectl.testing.conformance.check_register_io`),
  over TCP and over RTU (libmodbus's RTU server on one end of two bridged ptys);
- every object type the v2 profiles use (FC1/2/3/4/5/6/15/16) through ``ModbusIO``;
- the ``io-modules`` cabinet through the daemon's own field devices (``MappedDevice``): the
  detector module's inputs decoded, a frame written to the lamp modules' coils, the heartbeat
  coil toggling, an MMU trip seen on the MMU module's inputs, the reset coil pulsed.

Needs gcc and Debian's ``libmodbus-dev``; skipped, saying so, without them.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import itertools
import mmap
import os
import shutil
import struct
import subprocess
import termios
import tty
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from edgectl.cabinet.channels import ChannelState
from edgectl.cabinet.registers import Block
from edgectl.config.settings import Device
from edgectl.errors import DeviceException
from edgectl.field.buses import FieldBuses, open_io
from edgectl.field.device import CabinetDevice
from edgectl.field.mapped import open_devices
from edgectl.field.modbus import ModbusIO
from edgectl.field.report import DeviceReport
from edgectl.field.transport import RegisterIO
from edgectl.field.url import RtuEndpoint, TcpEndpoint
from edgectl.testing.conformance import LinkUnderTest, RegisterLayout, check_register_io

SOURCE = Path(__file__).parent / "interop" / "libmodbus_gateway.c"
TIMEOUT = 0.3
STRIDE = 256
UNIT_BYTES = STRIDE * 2 + STRIDE * 2 * 2
#: cabinet-v1's one unit: 110 input registers, 34 holding (32 channels, heartbeat, reset)
CABINET_V1 = (1, 0, 0, 34, 110)
#: io-modules: E1210 (16 DI), E1212 (8 DI + 8 DIO), three E1211 (16 DO)
IO_MODULES = [
    (1, 0, 16, 0, 0),
    (2, 8, 8, 0, 0),
    (3, 16, 0, 0, 0),
    (4, 16, 0, 0, 0),
    (5, 16, 0, 0, 0),
]


def _build_flags() -> list[str]:
    try:
        out = subprocess.run(
            ["pkg-config", "--cflags", "--libs", "libmodbus"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    except (OSError, subprocess.CalledProcessError):
        return ["-I/usr/include/modbus", "-lmodbus"]
    return out.split()


@pytest.fixture(scope="module")
def gateway_binary(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The libmodbus gateway, compiled once per module (skip: no compiler or library)."""
    gcc = shutil.which("gcc") or shutil.which("cc")
    if gcc is None:
        pytest.skip("no C compiler (gcc) to build the libmodbus gateway")
    if not Path("/usr/include/modbus/modbus.h").is_file() and shutil.which("pkg-config") is None:
        pytest.skip("libmodbus-dev not installed (Debian: apt-get install libmodbus-dev)")
    binary = tmp_path_factory.mktemp("libmodbus") / "libmodbus_gateway"
    built = subprocess.run(
        [gcc, "-O1", "-Wall", "-o", str(binary), str(SOURCE), *_build_flags()],
        capture_output=True,
        text=True,
        check=False,
    )
    if built.returncode != 0:
        pytest.skip(
            "cannot build the libmodbus gateway (Debian: apt-get install libmodbus-dev): "
            + built.stderr[-400:]
        )
    return binary


class Gateway:
    """A running libmodbus gateway and its tables (a shared memory image of them)."""

    def __init__(
        self, units: Sequence[tuple[int, int, int, int, int]], image: mmap.mmap, path: Path
    ) -> None:
        self.index = {u[0]: i for i, u in enumerate(units)}
        self.image = image
        self.path = path
        self.port = 0

    def writes(self) -> list[tuple[int, int, int, int]]:
        """Every write request served: (unit, function code, address, value or count)."""
        text = Path(f"{self.path}.writes").read_text()
        return [(a, b, c, d) for a, b, c, d in (map(int, ln.split()) for ln in text.splitlines())]

    def _base(self, unit: int) -> int:
        return self.index[unit] * UNIT_BYTES

    def coils(self, unit: int, count: int = 16) -> list[int]:
        base = self._base(unit)
        return list(self.image[base : base + count])

    def set_discrete(self, unit: int, address: int, value: int) -> None:
        self.image[self._base(unit) + STRIDE + address] = value

    def holding(self, unit: int, address: int, count: int) -> list[int]:
        at = self._base(unit) + 2 * STRIDE + 2 * address
        return list(struct.unpack(f"={count}H", self.image[at : at + 2 * count]))

    def set_input(self, unit: int, address: int, values: Sequence[int]) -> None:
        at = self._base(unit) + 4 * STRIDE + 2 * address
        self.image[at : at + 2 * len(values)] = struct.pack(f"={len(values)}H", *values)

    @property
    def url(self) -> str:
        return f"modbus+tcp://127.0.0.1:{self.port}"


@asynccontextmanager
async def gateway(
    binary: Path,
    tmp_path: Path,
    units: Sequence[tuple[int, int, int, int, int]],
    serial: str = "",
) -> AsyncIterator[Gateway]:
    """The gateway on TCP, or (``serial``: the server's end of a line) one RTU unit."""
    path = tmp_path / "tables.img"
    path.write_bytes(bytes(len(units) * UNIT_BYTES))
    specs = [":".join(str(x) for x in u) for u in units]
    where = f"{path}@{serial}" if serial else str(path)
    proc = await asyncio.create_subprocess_exec(
        str(binary), where, *specs, stdout=asyncio.subprocess.PIPE
    )
    try:
        assert proc.stdout is not None
        line = await asyncio.wait_for(proc.stdout.readline(), 10)
        assert line, "the libmodbus gateway did not start"
        with path.open("r+b") as fh, mmap.mmap(fh.fileno(), 0) as image:
            gw = Gateway(units, image, path)
            gw.port = 0 if serial else int(line)
            yield gw
    finally:
        proc.terminate()
        await proc.wait()


@asynccontextmanager
async def serial_line() -> AsyncIterator[tuple[str, str]]:
    """One serial line made of two pty pairs bridged here: (the server's end, the client's)."""
    a_master, a_slave = os.openpty()
    b_master, b_slave = os.openpty()
    fds = [a_master, a_slave, b_master, b_slave]  # slaves stay open: a lone master reads EIO
    for fd in fds:
        tty.setraw(fd, termios.TCSANOW)
    for fd in (a_master, b_master):
        os.set_blocking(fd, False)

    def pump(src: int, dst: int) -> None:
        with contextlib.suppress(OSError):
            if data := os.read(src, 4096):
                os.write(dst, data)  # frames are small: a pty buffer never fills here

    loop = asyncio.get_running_loop()
    loop.add_reader(a_master, pump, a_master, b_master)
    loop.add_reader(b_master, pump, b_master, a_master)
    try:
        yield os.ttyname(a_slave), os.ttyname(b_slave)
    finally:
        loop.remove_reader(a_master)
        loop.remove_reader(b_master)
        for fd in fds:
            os.close(fd)


def _links(url: str, buses: FieldBuses, unit: int, silent_unit: int) -> LinkUnderTest:
    endpoint = TcpEndpoint(host="127.0.0.1", port=int(url.rsplit(":", 1)[1]), unit=unit)
    silent = TcpEndpoint(host=endpoint.host, port=endpoint.port, unit=silent_unit)

    def make() -> RegisterIO:
        return ModbusIO(endpoint, buses=buses, timeout=TIMEOUT, name="libmodbus")

    def make_silent() -> RegisterIO:
        return ModbusIO(silent, buses=buses, timeout=TIMEOUT, name="libmodbus-silent")

    layout = RegisterLayout(inputs=Block(0, 110), holding=Block(0, 34), scratch=Block(32, 1))
    return LinkUnderTest(
        open=make, layout=layout, timeout=TIMEOUT, open_peer=make, open_silent=make_silent
    )


async def test_register_io_conformance_against_libmodbus(
    gateway_binary: Path, tmp_path: Path
) -> None:
    async with gateway(gateway_binary, tmp_path, [CABINET_V1]) as gw:
        await check_register_io(_links(gw.url, FieldBuses(), unit=1, silent_unit=7))


async def test_register_io_conformance_against_libmodbus_over_rtu(
    gateway_binary: Path, tmp_path: Path
) -> None:
    """The same suite on a serial line: libmodbus's RTU server, CRCs and all; a request for
    another unit id goes unanswered, as on a shared RS-485 line."""
    buses = FieldBuses()
    async with (
        serial_line() as (server_end, client_end),
        gateway(gateway_binary, tmp_path, [CABINET_V1], serial=server_end),
    ):
        endpoint = RtuEndpoint(client_end, baudrate=115200, unit=1)
        silent = dataclasses.replace(endpoint, unit=7)

        def make() -> RegisterIO:
            return open_io(endpoint, buses=buses, timeout=TIMEOUT, name="libmodbus-rtu")

        def make_silent() -> RegisterIO:
            return open_io(silent, buses=buses, timeout=TIMEOUT, name="libmodbus-silent")

        layout = RegisterLayout(inputs=Block(0, 110), holding=Block(0, 34), scratch=Block(32, 1))
        link = LinkUnderTest(
            open=make, layout=layout, timeout=TIMEOUT, open_peer=make, open_silent=make_silent
        )
        await check_register_io(link)
    assert not buses.lines, f"serial lines left open: {buses.lines}"


async def test_every_object_type_against_libmodbus(gateway_binary: Path, tmp_path: Path) -> None:
    async with gateway(gateway_binary, tmp_path, [CABINET_V1, *IO_MODULES[1:]]) as gw:
        gw.set_input(1, 5, [0b100, 0, 0, 0x8001])
        gw.set_discrete(2, 1, 1)
        gw.set_discrete(2, 6, 1)
        cabinet = ModbusIO(TcpEndpoint("127.0.0.1", gw.port, 1), buses=FieldBuses(), timeout=1)
        mmu = ModbusIO(TcpEndpoint("127.0.0.1", gw.port, 2), buses=FieldBuses(), timeout=1)
        lamps = ModbusIO(TcpEndpoint("127.0.0.1", gw.port, 3), buses=FieldBuses(), timeout=1)
        for link in (cabinet, mmu, lamps):
            await link.connect()
        try:
            assert await cabinet.read_input(5, 4) == [0b100, 0, 0, 0x8001]  # FC4
            await cabinet.write(0, [1, 3, 1, 4])  # FC16
            await cabinet.write_register(32, 0xBEEF)  # FC6
            assert await cabinet.read_holding(0, 4) == [1, 3, 1, 4]  # FC3
            assert gw.holding(1, 32, 1) == [0xBEEF]
            assert await mmu.read_discrete(0, 8) == [0, 1, 0, 0, 0, 0, 1, 0]  # FC2
            await lamps.write_coils(3, [1, 0, 1, 1, 0, 0, 0, 0, 0, 1])  # FC15, 10 bits
            await lamps.write_coil(15, 1)  # FC5
            expected = [0, 0, 0, 1, 0, 1, 1, 0, 0, 0, 0, 0, 1, 0, 0, 1]
            assert gw.coils(3) == expected
            assert await lamps.read_coils(0, 16) == expected  # FC1
            assert await lamps.read_coils(2, 3) == [0, 1, 0]  # not byte-aligned
            with pytest.raises(DeviceException) as info:
                await lamps.read_coils(10, 8)  # past the module's 16 coils
            assert info.value.exception_code == 2
            assert await lamps.read_coils(0, 1) == [0]  # and the link keeps working
        finally:
            for link in (cabinet, mmu, lamps):
                await link.close()


# ---- io-modules through the daemon's field devices -------------------------------------------

FRAME = dict.fromkeys(range(1, 9), ChannelState.R) | dict.fromkeys(range(9, 13), ChannelState.DW)
FRAME |= {2: ChannelState.G, 6: ChannelState.G, 10: ChannelState.W, 12: ChannelState.W}


@asynccontextmanager
async def cabinet_on(url: str) -> AsyncIterator[list[CabinetDevice]]:
    spec = Device(name="cabinet", url=url, profile="builtin:io-modules", timeout=0.5, retries=0)
    devices = open_devices([spec], buses=FieldBuses())
    async with asyncio.TaskGroup() as tg:
        tasks = [tg.create_task(d.run(), name=f"edgectl[poll:{d.name}]") for d in devices]
        try:
            yield devices
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


def _lamp_coils(frame: dict[int, ChannelState]) -> Iterator[tuple[int, list[int]]]:
    """The io-modules wiring, written out by hand: (unit, its 16 coils) per lamp module."""
    lit = {
        ChannelState.R: "red",
        ChannelState.Y: "yellow",
        ChannelState.G: "green",
        ChannelState.DW: "dont_walk",
        ChannelState.W: "walk",
    }
    vehicle = ("red", "yellow", "green", "flash")
    ped = ("dont_walk", "walk", "flash")
    for unit, channels, lamps in ((3, range(1, 5), vehicle), (4, range(5, 9), vehicle)):
        coils = [0] * 16
        for i, ch in enumerate(channels):
            coils[4 * i + lamps.index(lit[frame[ch]])] = 1
        yield unit, coils
    coils = [0] * 16
    for i, ch in enumerate(range(9, 13)):
        coils[3 * i + ped.index(lit[frame[ch]])] = 1
    yield 5, coils


async def test_the_io_modules_cabinet_on_a_libmodbus_gateway(
    gateway_binary: Path, tmp_path: Path
) -> None:
    async with (
        gateway(gateway_binary, tmp_path, IO_MODULES) as gw,
        cabinet_on(gw.url) as (detectors, cabinet),
    ):
        gw.set_discrete(1, 2, 1)  # detector 3
        gw.set_discrete(1, 13, 1)  # the push-button of phase 4
        report = await _read(detectors)
        assert report.inputs is not None
        assert report.inputs.presence == frozenset({3})
        assert report.inputs.ped_buttons == frozenset({4})
        gw.set_discrete(2, 0, 1)  # the MMU's fault relay energised: all is well
        gw.set_discrete(2, 5, 1)  # auto
        report = await _read(cabinet)
        assert report.snapshot is not None and not report.snapshot.mmu_tripped
        beats = set()
        for _ in range(4):
            await _write(cabinet, FRAME)
            beats.add(gw.coils(2)[0])
        assert beats == {0, 1}  # the heartbeat coil toggles, tick by tick
        for unit, coils in _lamp_coils(FRAME):
            assert gw.coils(unit) == coils, f"unit {unit}"
        report = await _read(cabinet)
        assert report.readback is not None
        assert {c: report.readback[c] for c in FRAME} == FRAME  # read back with FC1
        gw.set_discrete(2, 0, 0)  # the relay drops: tripped
        gw.set_discrete(2, 2, 1)  # fault code 1: conflict
        report = await _read(cabinet)
        assert report.mmu_tripped and report.mmu_fault == 1
        cabinet.request_mmu_reset()
        for _ in range(3):  # a tick's write pass pulses the reset coil before the frame
            await _write(cabinet, FRAME)
        assert not (await _read(cabinet)).mmu_reset_pending
        assert gw.coils(2)[1] == 0
    writes = gw.writes()
    on, off = (2, 5, 1, 0xFF00), (2, 5, 1, 0)  # FC5 ON is 0xFF00 on the wire
    assert writes.count(on) == 1 and writes.index(on) + 1 == writes.index(off)  # one pulse
    heartbeats = [w[3] for w in writes if w[:3] == (2, 5, 0)]  # FC5, every tick
    assert len(heartbeats) >= 4
    assert all(a != b for a, b in itertools.pairwise(heartbeats))  # toggling
    assert {w[:2] for w in writes if w[0] in (3, 4, 5)} <= {(3, 15), (4, 15), (5, 15)}
