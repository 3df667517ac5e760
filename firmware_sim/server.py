"""The emulator's Modbus endpoints: pymodbus servers behind a fault-injecting wire.

::

    client ──TCP──► _TcpWire (listen port) ──TCP──► pymodbus ModbusTcpServer (loopback)
    client ──pty B──► _PtyWire (two pty masters) ──pty A──► pymodbus ModbusSerialServer (RTU)
                                   │
                                   └─ per request: silent? → swallowed
                                      per response: drop / corrupt / delay (the model decides)

The pymodbus server serves a :class:`pymodbus.simulator.SimDevice` whose ``action`` hook reads
and writes the pure :class:`~firmware_sim.model.CabinetModel`; so exception responses
(illegal address / value) come from the model and the server keeps serving whatever it gets.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import termios
import tty
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

import structlog
from pymodbus.constants import ExcCodes
from pymodbus.framer import FramerType
from pymodbus.server import ModbusSerialServer, ModbusTcpServer
from pymodbus.simulator import DataType, SimData, SimDevice

from edgectl.cabinet.fieldmap import ObjectType
from firmware_sim.model import CabinetModel
from firmware_sim.rtu import frame_time, response_length
from firmware_sim.units import UnitsCabinet

__all__ = ["ListenUrl", "ModbusEndpoint", "parse_listen"]

log = structlog.get_logger("firmware_sim.server")

Clock = Callable[[], float]

_READ_INPUT, _READ_HOLDING, _WRITE_SINGLE, _WRITE_MULTIPLE = 4, 3, 6, 16


@dataclass(frozen=True, slots=True)
class ListenUrl:
    """Where to serve: ``modbus+tcp://HOST:PORT``, ``modbus+rtu://pty``, ``modbus+rtu:///dev/X``."""

    scheme: str  # "tcp" | "rtu"
    host: str = "127.0.0.1"
    port: int = 0
    device: str = "pty"  # rtu: "pty" or a serial device path
    baudrate: int = 115200
    unit: int = 1


def parse_listen(url: str) -> ListenUrl:
    """Parse a ``--listen`` URL; ValueError says what is wrong."""
    parts = urlsplit(url)
    query = parse_qs(parts.query)
    unknown = set(query) - {"unit", "baudrate"}
    if unknown:
        raise ValueError(f"unknown parameter(s) {sorted(unknown)} in {url!r}")
    try:
        unit = int(query.get("unit", ["1"])[-1])
        baudrate = int(query.get("baudrate", ["115200"])[-1])
    except ValueError:
        raise ValueError(f"unit and baudrate must be integers in {url!r}") from None
    if not 1 <= unit <= 247:
        raise ValueError(f"unit {unit} outside 1..247")
    if parts.scheme == "modbus+tcp":
        try:
            port = parts.port or 0
        except ValueError:
            raise ValueError(f"bad port in {url!r}") from None
        return ListenUrl("tcp", host=parts.hostname or "127.0.0.1", port=port, unit=unit)
    if parts.scheme == "modbus+rtu":
        device = "pty" if parts.netloc == "pty" else parts.path
        if not device:
            raise ValueError(f"no serial device in {url!r} (use modbus+rtu://pty for a pty pair)")
        return ListenUrl("rtu", device=device, baudrate=baudrate, unit=unit)
    raise ValueError(f"unsupported listen URL {url!r}: modbus+tcp://HOST:PORT or modbus+rtu://pty")


def _sim_device(model: CabinetModel, clock: Clock, unit: int) -> SimDevice:
    regs = model.profile.registers

    async def action(  # noqa: PLR0917 - the signature pymodbus calls
        func_code: int,
        start_address: int,
        address: int,
        count: int,
        registers: list[int],
        set_values: list[int] | list[bool] | None,
    ) -> ExcCodes | None:
        now = clock()
        offset = address - start_address
        result: list[int] | int | None
        if func_code == _READ_INPUT:
            result = model.read_input(now, address, count)
        elif func_code in (_WRITE_SINGLE, _WRITE_MULTIPLE) and set_values is not None:
            result = model.write_holding(now, address, [int(v) for v in set_values])
        elif func_code in (_READ_HOLDING, _WRITE_SINGLE):
            # FC6: pymodbus reads the register back for the echo after the write
            result = model.read_holding(address, count)
        else:
            return ExcCodes.ILLEGAL_FUNCTION
        if isinstance(result, int):
            return ExcCodes(result)
        if isinstance(result, list):
            registers[offset : offset + count] = result
        return None

    bits = [SimData(0, count=1, values=0, datatype=DataType.BITS)]
    holding = [
        SimData(s.address, count=s.count, values=0, datatype=DataType.REGISTERS)
        for s in regs.holding
    ]
    inputs = [
        SimData(s.address, count=s.count, values=0, datatype=DataType.REGISTERS, readonly=True)
        for s in regs.input
    ]
    return SimDevice(unit, simdata=(list(bits), list(bits), holding, inputs), action=action)


_OBJECTS = {
    1: ObjectType.COIL,
    2: ObjectType.DISCRETE_INPUT,
    3: ObjectType.HOLDING_REGISTER,
    4: ObjectType.INPUT_REGISTER,
    5: ObjectType.COIL,
    6: ObjectType.HOLDING_REGISTER,
    15: ObjectType.COIL,
    16: ObjectType.HOLDING_REGISTER,
}


def _unit_devices(units: UnitsCabinet, clock: Clock) -> list[SimDevice]:
    """One simulated device per unit of a v2 profile (see :mod:`firmware_sim.units`)."""
    out: list[SimDevice] = []
    for unit in units.units:

        async def action(  # noqa: PLR0917 - the signature pymodbus calls
            func_code: int,
            start_address: int,
            address: int,
            count: int,
            registers: list[int],
            set_values: list[int] | list[bool] | None,
            unit: int = unit,
        ) -> ExcCodes | None:
            otype = _OBJECTS.get(func_code)
            if otype is None:
                return ExcCodes.ILLEGAL_FUNCTION
            now = clock()
            if set_values is not None:
                units.write(now, unit, otype, address, [int(v) for v in set_values])
            elif otype.is_bit:  # pymodbus hands bits over packed, 16 to a word
                size = units.size(unit, otype)
                bits = units.read(now, unit, otype, 0, size)
                first = start_address // 16
                for w in range(size // 16):
                    if 0 <= w - first < len(registers):
                        word = sum(b << i for i, b in enumerate(bits[w * 16 : w * 16 + 16]))
                        registers[w - first] = word
            else:
                offset = address - start_address
                registers[offset : offset + count] = units.read(now, unit, otype, address, count)
            return None

        coils, discrete, holding, inputs = (
            [
                SimData(
                    0,
                    count=units.size(unit, otype),
                    values=0,
                    datatype=DataType.BITS if otype.is_bit else DataType.REGISTERS,
                )
            ]
            for otype in (
                ObjectType.COIL,
                ObjectType.DISCRETE_INPUT,
                ObjectType.HOLDING_REGISTER,
                ObjectType.INPUT_REGISTER,
            )
        )
        simdata = (coils, discrete, holding, inputs)
        out.append(SimDevice(unit, simdata=simdata, action=action))
    return out


class _Wire:
    """Applies the model's wire faults to responses, in order, per connection."""

    def __init__(
        self,
        model: CabinetModel,
        clock: Clock,
        rng: random.Random,
        unit: int,
        units: UnitsCabinet | None = None,
    ) -> None:
        self._model = model
        self._units = frozenset(units.units) if units is not None else frozenset({unit})
        self._cabinet = units
        self._clock = clock
        self._rng = rng
        self.dropped = 0
        self.corrupted = 0
        self.delayed = 0
        self.answered = 0  # responses sent (after the faults): requests served, for benches

    def silent(self) -> bool:
        return self._model.wire_faults(self._clock()).silent

    async def pass_response(
        self, frame: bytes, unit: int, corrupt: Callable[[bytes], bytes]
    ) -> bytes | None:
        if unit not in self._units:  # another unit on the bus: no answer
            return None
        if self._cabinet is not None:
            now = self._clock()
            if self._cabinet.dead(unit, now):
                self.dropped += 1
                return None
            if (slow := self._cabinet.delay(unit, now)) > 0:
                self.delayed += 1
                await asyncio.sleep(slow)
        faults = self._model.wire_faults(self._clock())  # silence is judged on requests
        if faults.drop and self._rng.random() < faults.drop:
            self.dropped += 1
            return None
        if faults.delay_s > 0:
            self.delayed += 1
            await asyncio.sleep(faults.delay_s)
        self.answered += 1
        if faults.corrupt and self._rng.random() < faults.corrupt:
            self.corrupted += 1
            return corrupt(frame)
        return frame


def _corrupt_rtu(frame: bytes) -> bytes:
    """Bad CRC: flip the bits of the last byte."""
    return frame[:-1] + bytes([frame[-1] ^ 0xFF])


def _corrupt_tcp(frame: bytes) -> bytes:
    """A garbled MBAP frame: the header announces more bytes than follow (short response)."""
    if len(frame) < 8:
        return frame
    length = int.from_bytes(frame[4:6], "big")
    body = frame[6 : 6 + max(2, length // 2)]
    return frame[:4] + (length + 40).to_bytes(2, "big") + body


class ModbusEndpoint:
    """One listening endpoint; ``url`` is what a client must use once started."""

    def __init__(
        self,
        listen: ListenUrl,
        model: CabinetModel,
        clock: Clock,
        *,
        seed: int = 0,
        units: UnitsCabinet | None = None,
        line_time: bool = False,
    ) -> None:
        """``units``: serve the units of a v2 profile (one unit id each) instead of the
        one-unit cabinet map. ``line_time``: on a pty, which has no baud rate, hold every
        request and response for the time its bytes would take on a serial line at the URL's
        ``baudrate`` (:func:`frame_time`), one frame at a time as on a half-duplex RS-485
        bus — so that benches see the wire time of a real bus."""
        if line_time and (listen.scheme != "rtu" or listen.device != "pty"):
            raise ValueError(
                "line time is for a pty (modbus+rtu://pty): other lines have their own"
            )
        self.listen = listen
        self.line_time = line_time
        self._model = model
        self._clock = clock
        rng = random.Random(f"{seed}:wire")
        self._wire = _Wire(model, clock, rng, listen.unit, units)
        self._device: SimDevice | list[SimDevice] = (
            _sim_device(model, clock, listen.unit) if units is None else _unit_devices(units, clock)
        )
        self._server: ModbusTcpServer | ModbusSerialServer | None = None
        self._front: asyncio.base_events.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._fds: list[int] = []
        self.url = ""

    @property
    def wire_stats(self) -> dict[str, int]:
        return {
            "dropped": self._wire.dropped,
            "delayed": self._wire.delayed,
            "corrupted": self._wire.corrupted,
            "answered": self._wire.answered,
        }

    async def start(self, tg: asyncio.TaskGroup) -> str:
        if self.listen.scheme == "tcp":
            await self._start_tcp()
        elif self.listen.device == "pty":
            await self._start_pty(tg)
        else:
            await self._start_serial(self.listen.device)
            self.url = (
                f"modbus+rtu://{self.listen.device}?baudrate={self.listen.baudrate}"
                f"&unit={self.listen.unit}"
            )
        return self.url

    async def stop(self) -> None:
        if self._front is not None:
            self._front.close()
            for w in list(self._writers):
                w.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._front.wait_closed(), 2.0)
            self._front = None
        if self._server is not None:
            await self._server.shutdown()  # type: ignore[no-untyped-call]
            self._server = None
        loop = asyncio.get_running_loop()
        for fd in self._fds:
            loop.remove_reader(fd)
            os.close(fd)
        self._fds.clear()

    # ---- TCP ------------------------------------------------------------------------------

    async def _start_tcp(self) -> None:
        server = ModbusTcpServer(
            self._device, address=("127.0.0.1", 0), ignore_missing_devices=True
        )
        await server.serve_forever(background=True)
        self._server = server
        listener: Any = server.transport  # an asyncio.Server once listening
        backend_port = int(listener.sockets[0].getsockname()[1])

        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            self._writers.add(writer)
            try:
                await self._proxy_tcp(reader, writer, backend_port)
            finally:
                self._writers.discard(writer)
                writer.close()

        self._front = await asyncio.start_server(handle, self.listen.host, self.listen.port)
        host, port = self._front.sockets[0].getsockname()[:2]
        self.url = f"modbus+tcp://{host}:{port}?unit={self.listen.unit}"

    async def _proxy_tcp(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, backend_port: int
    ) -> None:
        try:
            b_reader, b_writer = await asyncio.open_connection("127.0.0.1", backend_port)
        except OSError as exc:
            log.warning("backend_connect_failed", error=str(exc))
            return
        self._writers.add(b_writer)

        async def upstream() -> None:
            while data := await reader.read(4096):
                if not self._wire.silent():
                    b_writer.write(data)
                    await b_writer.drain()
            b_writer.close()

        async def downstream() -> None:
            buf = b""
            while data := await b_reader.read(4096):
                buf += data
                while len(buf) >= 6:
                    size = 6 + int.from_bytes(buf[4:6], "big")
                    if len(buf) < size:
                        break
                    frame, buf = buf[:size], buf[size:]
                    out = await self._wire.pass_response(
                        frame, frame[6] if len(frame) > 6 else -1, _corrupt_tcp
                    )
                    if out is not None:
                        writer.write(out)
                        await writer.drain()
            writer.close()

        try:
            async with asyncio.TaskGroup() as tg:
                tg.create_task(upstream(), name="firmware_sim[tcp:up]")
                tg.create_task(downstream(), name="firmware_sim[tcp:down]")
        except* (ConnectionError, OSError) as eg:
            log.debug("tcp_connection_closed", error=str(eg.exceptions[0]))
        finally:
            self._writers.discard(b_writer)
            b_writer.close()

    # ---- RTU ------------------------------------------------------------------------------

    async def _start_serial(self, port: str) -> None:
        server = ModbusSerialServer(
            self._device,
            framer=FramerType.RTU,
            port=port,
            baudrate=self.listen.baudrate,
            ignore_missing_devices=True,
        )
        await server.serve_forever(background=True)
        self._server = server

    async def _start_pty(self, tg: asyncio.TaskGroup) -> None:
        """Two pty pairs bridged here: the server on A's slave, the client on B's slave."""
        a_master, a_slave = os.openpty()
        b_master, b_slave = os.openpty()
        # keep both slaves open: a master reads EIO while no slave is open
        self._fds += [a_master, a_slave, b_master, b_slave]
        for fd in (a_slave, b_slave, a_master, b_master):
            tty.setraw(fd, termios.TCSANOW)
        for fd in (a_master, b_master):
            os.set_blocking(fd, False)
        await self._start_serial(os.ttyname(a_slave))
        client_path = os.ttyname(b_slave)
        self.url = (
            f"modbus+rtu://{client_path}?baudrate={self.listen.baudrate}&unit={self.listen.unit}"
        )
        loop = asyncio.get_running_loop()
        responses: asyncio.Queue[bytes] = asyncio.Queue()
        state = {"buf": b""}
        baud = self.listen.baudrate
        line = {"free_at": 0.0}  # line time: when the request now on the line has arrived

        def on_request() -> None:
            data = _read(b_master)
            if not data or self._wire.silent():
                return
            if not self.line_time:
                _write(a_master, data)
                return
            # a request reaches the device when its last byte (and the silence after it) has
            at = max(loop.time(), line["free_at"]) + frame_time(len(data), baud)
            line["free_at"] = at
            loop.call_at(at, _write, a_master, data)

        def on_response() -> None:
            data = _read(a_master)
            if not data:
                return
            buf = state["buf"] + data
            while (size := response_length(buf)) is not None and len(buf) >= size:
                responses.put_nowait(buf[:size])
                buf = buf[size:]
            state["buf"] = buf

        async def answer(frame: bytes) -> None:
            out = await self._wire.pass_response(frame, frame[0], _corrupt_rtu)
            if out is not None:
                if self.line_time:  # the response's own time on the line
                    await asyncio.sleep(frame_time(len(out), baud))
                _write(b_master, out)

        async def deliver() -> None:
            # each unit on the line answers on its own: a slow one answers late (and its
            # answer may land in the middle of another unit's transaction, as on RS-485)
            # without holding up the others' answers
            while True:
                frame = await responses.get()
                tg.create_task(answer(frame), name="firmware_sim[rtu:answer]")

        loop.add_reader(b_master, on_request)
        loop.add_reader(a_master, on_response)
        tg.create_task(deliver(), name="firmware_sim[rtu:wire]")


def _read(fd: int) -> bytes:
    try:
        return os.read(fd, 4096)
    except (BlockingIOError, OSError):
        return b""


def _write(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        try:
            n = os.write(fd, view)
        except BlockingIOError:
            continue
        except OSError as exc:
            log.debug("pty_write_failed", error=str(exc))
            return
        view = view[n:]
