"""Register links without a wire: any function as a device, and an in-memory bank.

:class:`MockTransport` is in the shape of httpx's: give it ``handler(request) -> response``
(or a coroutine function) and it is a :class:`~edgectl.field.transport.RegisterIO` with the
same promises as the Modbus links — argument checks, one request at a time, a deadline
(:class:`~edgectl.errors.DeviceTimeout`), exception responses as
:class:`~edgectl.errors.DeviceException`, whatever the handler raises mapped as a wire error::

    def cabinet(request: Request) -> Response:
        if request.function is Function.READ_INPUT:
            return Response(registers=tuple(range(request.count)))
        return Response(exception_code=ILLEGAL_ADDRESS)

    io = MockTransport(cabinet, timeout=0.1)

:class:`MemoryIO` is a bank of input and holding registers served that way: what
``memory://NAME`` opens (the bank is kept by the caller's
:class:`~edgectl.field.buses.FieldBuses`), and the fake of the pure device tests. It is never
an integration test: the emulator over TCP and over a pty is.
"""

from __future__ import annotations

import asyncio
import enum
import inspect
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from edgectl.errors import DeviceException, DeviceUnavailable
from edgectl.field.transport import (
    MAX_READ_BITS,
    MAX_WRITE_BITS,
    bits_of,
    check_bits,
    check_read,
    check_write,
    mapped_errors,
    registers_of,
)

__all__ = [
    "ILLEGAL_ADDRESS",
    "ILLEGAL_VALUE",
    "Function",
    "Handler",
    "MemoryIO",
    "MockTransport",
    "Request",
    "Response",
]

ILLEGAL_ADDRESS = 2  # Modbus exception codes
ILLEGAL_VALUE = 3


class Function(enum.IntEnum):
    """The Modbus function of a request."""

    READ_COILS = 1
    READ_DISCRETE = 2
    READ_HOLDING = 3
    READ_INPUT = 4
    WRITE_COIL = 5
    WRITE_REGISTER = 6
    WRITE_COILS = 15
    WRITE = 16


@dataclass(frozen=True, slots=True)
class Request:
    function: Function
    address: int
    count: int
    values: tuple[int, ...] = ()  # WRITE only
    unit: int = 1


@dataclass(frozen=True, slots=True)
class Response:
    registers: tuple[int, ...] = ()  # or bits (0 / 1) for FC1 / FC2
    exception_code: int = 0  # non-zero: a Modbus exception response


Handler = Callable[[Request], Response | Awaitable[Response]]


class MockTransport:
    """Any ``handler(request) -> response`` as a register link."""

    def __init__(
        self, handler: Handler, *, timeout: float = 1.0, unit: int = 1, name: str = "mock"
    ) -> None:
        self.handler = handler
        self.timeout = timeout
        self.unit = unit
        self.name = name
        self._connected = False
        self._lock = asyncio.Lock()

    @property
    def connected(self) -> bool:
        return self._connected

    async def connect(self) -> None:
        self._connected = True

    async def close(self) -> None:
        self._connected = False

    async def handle(self, request: Request) -> Response:
        """Serve one request through the handler, as the wire would."""
        what = request.function.name.lower()
        async with self._lock:
            if not self._connected:
                raise DeviceUnavailable("not connected", device=self.name)
            with mapped_errors(what, device=self.name, timeout=self.timeout):
                async with asyncio.timeout(self.timeout):
                    result = self.handler(request)
                    if inspect.isawaitable(result):
                        result = await result
        if result.exception_code:
            code = result.exception_code
            raise DeviceException(
                f"{what}: exception code {code}", device=self.name, exception_code=code
            )
        return result

    async def read_input(self, address: int, count: int) -> list[int]:
        check_read(address, count, self.name)
        response = await self.handle(Request(Function.READ_INPUT, address, count, unit=self.unit))
        return registers_of(response.registers, count, self.name)

    async def read_holding(self, address: int, count: int) -> list[int]:
        check_read(address, count, self.name)
        request = Request(Function.READ_HOLDING, address, count, unit=self.unit)
        response = await self.handle(request)
        return registers_of(response.registers, count, self.name)

    async def write(self, address: int, values: Sequence[int]) -> None:
        vals = tuple(check_write(address, values, self.name))
        await self.handle(Request(Function.WRITE, address, len(vals), vals, unit=self.unit))

    # --- bit objects and single writes (ObjectIO) -----------------------------------------

    async def _read_bits(self, function: Function, address: int, count: int) -> list[int]:
        check_bits(address, count, MAX_READ_BITS, self.name)
        response = await self.handle(Request(function, address, count, unit=self.unit))
        return bits_of(response.registers, count, self.name)

    async def read_coils(self, address: int, count: int) -> list[int]:
        return await self._read_bits(Function.READ_COILS, address, count)

    async def read_discrete(self, address: int, count: int) -> list[int]:
        return await self._read_bits(Function.READ_DISCRETE, address, count)

    async def write_coil(self, address: int, value: int) -> None:
        check_bits(address, 1, 1, self.name)
        request = Request(Function.WRITE_COIL, address, 1, (1 if value else 0,), unit=self.unit)
        await self.handle(request)

    async def write_coils(self, address: int, values: Sequence[int]) -> None:
        bits = tuple(1 if v else 0 for v in values)
        check_bits(address, len(bits), MAX_WRITE_BITS, self.name)
        await self.handle(Request(Function.WRITE_COILS, address, len(bits), bits, unit=self.unit))

    async def write_register(self, address: int, value: int) -> None:
        vals = tuple(check_write(address, [value], self.name))
        await self.handle(Request(Function.WRITE_REGISTER, address, 1, vals, unit=self.unit))


class MemoryIO(MockTransport):
    """A bank of input and holding registers, coils and discrete inputs; ``fail_next`` is
    raised by the next request."""

    def __init__(
        self, inputs: int = 256, holding: int = 256, *, bits: int = 256, name: str = "memory"
    ) -> None:
        super().__init__(self._serve, name=name)
        self.input_registers = [0] * inputs
        self.holding_registers = [0] * holding
        self.coils = [0] * bits
        self.discrete_inputs = [0] * bits
        self.fail_next: Exception | None = None

    def _bank(self, function: Function) -> list[int]:
        if function is Function.READ_INPUT:
            return self.input_registers
        if function is Function.READ_DISCRETE:
            return self.discrete_inputs
        if function in (Function.READ_COILS, Function.WRITE_COIL, Function.WRITE_COILS):
            return self.coils
        return self.holding_registers

    def _serve(self, request: Request) -> Response:
        if self.fail_next is not None:
            exc, self.fail_next = self.fail_next, None
            raise exc
        bank = self._bank(request.function)
        end = request.address + request.count
        if end > len(bank):
            return Response(exception_code=ILLEGAL_ADDRESS)
        if request.values:  # a write
            bank[request.address : end] = request.values
            return Response()
        return Response(registers=tuple(bank[request.address : end]))
