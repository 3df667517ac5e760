"""Register I/O: the one narrow async seam under every field device.

:class:`RegisterIO` is all a device needs — read input registers, read holding registers,
write holding registers — so Modbus TCP, Modbus RTU on a serial line, an in-memory bank and
the emulator are interchangeable beneath it. Library errors are translated here into the
:mod:`edgectl.errors` tree; callers decide on retry by exception type.

Devices on one serial line share a :class:`_SerialBus`: one pymodbus client, one lock, and
an inter-request gap, so two units never talk over each other.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from typing import Any, Protocol

from pymodbus.client import AsyncModbusSerialClient, AsyncModbusTcpClient
from pymodbus.exceptions import ConnectionException, ModbusException, ModbusIOException

from edgectl.errors import (
    DeviceException,
    DeviceTimeout,
    DeviceUnavailable,
    FatalFieldError,
    FrameError,
)
from edgectl.field.url import Endpoint, MemoryEndpoint, RtuEndpoint, TcpEndpoint


class RegisterIO(Protocol):
    """What a field device needs from its link."""

    @property
    def connected(self) -> bool: ...

    async def connect(self) -> None: ...

    async def read_input(self, address: int, count: int) -> list[int]: ...

    async def read_holding(self, address: int, count: int) -> list[int]: ...

    async def write(self, address: int, values: Sequence[int]) -> None: ...

    async def close(self) -> None: ...


class _SerialBus:
    """One serial line: a shared client, a lock and the inter-request gap."""

    def __init__(self, endpoint: RtuEndpoint, timeout: float, gap: float) -> None:
        self.endpoint = endpoint
        self.lock = asyncio.Lock()
        self.gap = gap
        self.users = 0
        self.client = AsyncModbusSerialClient(
            endpoint.port,
            baudrate=endpoint.baudrate,
            parity=endpoint.parity,
            bytesize=endpoint.bytesize,
            stopbits=endpoint.stopbits,
            timeout=timeout,
            retries=0,
            reconnect_delay=0,
        )


_BUSES: dict[str, _SerialBus] = {}


class ModbusIO:
    """Modbus TCP or RTU through pymodbus, with a timeout on every request."""

    def __init__(
        self,
        endpoint: TcpEndpoint | RtuEndpoint,
        *,
        timeout: float,
        gap: float = 0.0,
        name: str = "",
    ) -> None:
        self.endpoint = endpoint
        self.timeout = timeout
        self.name = name or str(endpoint)
        self._bus: _SerialBus | None = None
        self._client: AsyncModbusTcpClient | AsyncModbusSerialClient
        if isinstance(endpoint, TcpEndpoint):
            self._client = AsyncModbusTcpClient(
                endpoint.host, port=endpoint.port, timeout=timeout, retries=0, reconnect_delay=0
            )
            self._lock = asyncio.Lock()
            self._gap = 0.0
        else:
            bus = _BUSES.get(endpoint.bus)
            if bus is None:
                bus = _BUSES[endpoint.bus] = _SerialBus(endpoint, timeout, gap)
            bus.users += 1
            self._bus = bus
            self._client = bus.client
            self._lock = bus.lock
            self._gap = max(gap, bus.gap)

    @property
    def connected(self) -> bool:
        return bool(self._client.connected)

    async def connect(self) -> None:
        async with self._lock:
            if self._client.connected:
                return
            try:
                async with asyncio.timeout(max(self.timeout * 4, 1.0)):
                    ok = await self._client.connect()
            except TimeoutError as exc:
                raise DeviceUnavailable("connect timed out", device=self.name) from exc
            except OSError as exc:  # serial port missing, connection refused
                raise DeviceUnavailable(f"connect failed: {exc}", device=self.name) from exc
            if not ok:
                raise DeviceUnavailable("connect failed", device=self.name)

    async def _call(self, what: str, request: Any) -> Any:
        async with self._lock:
            if not self._client.connected:
                raise DeviceUnavailable("not connected", device=self.name)
            try:
                async with asyncio.timeout(self.timeout + 0.05):
                    response = await request()
            except TimeoutError as exc:
                raise DeviceTimeout(
                    f"{what}: no response in {self.timeout:.3f} s", device=self.name
                ) from exc
            except ConnectionException as exc:
                raise DeviceUnavailable(f"{what}: {exc}", device=self.name) from exc
            except ModbusIOException as exc:
                # pymodbus reports both timeouts and garbled frames this way
                text = str(exc).lower()
                if "timeout" in text or "no response" in text:
                    raise DeviceTimeout(f"{what}: {exc}", device=self.name) from exc
                raise FrameError(f"{what}: {exc}", device=self.name) from exc
            except ModbusException as exc:
                raise FrameError(f"{what}: {exc}", device=self.name) from exc
            finally:
                if self._gap:
                    await asyncio.sleep(self._gap)
        if response.isError():
            code = int(getattr(response, "exception_code", 0) or 0)
            raise DeviceException(
                f"{what}: exception code {code}", device=self.name, exception_code=code
            )
        return response

    async def read_input(self, address: int, count: int) -> list[int]:
        unit = self.endpoint.unit
        response = await self._call(
            "read_input",
            lambda: self._client.read_input_registers(address, count=count, device_id=unit),
        )
        return _registers(response, count, self.name)

    async def read_holding(self, address: int, count: int) -> list[int]:
        unit = self.endpoint.unit
        response = await self._call(
            "read_holding",
            lambda: self._client.read_holding_registers(address, count=count, device_id=unit),
        )
        return _registers(response, count, self.name)

    async def write(self, address: int, values: Sequence[int]) -> None:
        unit = self.endpoint.unit
        vals = list(values)
        await self._call(
            "write", lambda: self._client.write_registers(address, vals, device_id=unit)
        )

    async def close(self) -> None:
        if self._bus is not None:
            self._bus.users -= 1
            if self._bus.users > 0:
                return
            _BUSES.pop(self._bus.endpoint.bus, None)
        with contextlib.suppress(Exception):
            self._client.close()


def _registers(response: Any, count: int, name: str) -> list[int]:
    regs = list(getattr(response, "registers", None) or [])
    if len(regs) < count:
        raise FrameError(f"expected {count} registers, got {len(regs)}", device=name)
    return [int(r) & 0xFFFF for r in regs[:count]]


class MemoryIO:
    """An in-process register bank: a fake for pure unit tests, never an integration test."""

    def __init__(self, inputs: int = 256, holding: int = 256) -> None:
        self.input_registers = [0] * inputs
        self.holding_registers = [0] * holding
        self._connected = False
        self.fail_next: Exception | None = None  # raise once on the next request

    @property
    def connected(self) -> bool:
        return self._connected

    async def connect(self) -> None:
        self._connected = True

    def _check(self) -> None:
        if not self._connected:
            raise DeviceUnavailable("not connected", device="memory")
        if self.fail_next is not None:
            exc, self.fail_next = self.fail_next, None
            raise exc

    async def read_input(self, address: int, count: int) -> list[int]:
        self._check()
        return list(self.input_registers[address : address + count])

    async def read_holding(self, address: int, count: int) -> list[int]:
        self._check()
        return list(self.holding_registers[address : address + count])

    async def write(self, address: int, values: Sequence[int]) -> None:
        self._check()
        if address + len(values) > len(self.holding_registers):
            raise DeviceException("illegal data address", device="memory", exception_code=2)
        self.holding_registers[address : address + len(values)] = list(values)

    async def close(self) -> None:
        self._connected = False


_MEMORY: dict[str, MemoryIO] = {}


def memory_bank(name: str) -> MemoryIO:
    """The named in-memory bank (created on first use)."""
    return _MEMORY.setdefault(name, MemoryIO())


def open_io(endpoint: Endpoint, *, timeout: float, gap: float = 0.0, name: str = "") -> RegisterIO:
    if isinstance(endpoint, MemoryEndpoint):
        return memory_bank(endpoint.name)
    if isinstance(endpoint, TcpEndpoint | RtuEndpoint):
        return ModbusIO(endpoint, timeout=timeout, gap=gap, name=name)
    raise FatalFieldError(f"no transport for {endpoint!r}")
