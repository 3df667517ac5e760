"""Modbus TCP and RTU through pymodbus, behind :class:`~edgectl.field.transport.RegisterIO`.

Every request has our own deadline (the device's ``timeout``); pymodbus is given a longer one
so that a silent device is always our :class:`~edgectl.errors.DeviceTimeout`, told apart by
type and not by pymodbus' message text. A TCP link that leaves :data:`SILENT_LIMIT` requests
in a row unanswered is dropped, so that the device reconnects (pymodbus did this itself when
its own timeout fired first).

Devices on one serial port share a :class:`SerialLine` from the caller's
:class:`~edgectl.field.buses.FieldBuses`: one client, one lock and the inter-request gap, so
two units never talk over each other. A link holds the line from ``connect`` to ``close``;
the last one to let go closes the port. After a request that went unanswered (timed out or
cancelled) the line stays quiet for one more timeout before the next request: RTU frames
carry no transaction id, so a late answer would otherwise be taken for the next one's.

A unit on a serial line that leaves :data:`QUARANTINE_AFTER` requests in a row unanswered (a
dead or slow module) is only **probed** from then on, once every :data:`PROBE_S`: its other
requests fail at once without touching the line. Otherwise every tick would spend its
timeouts, retries and quiet time on it, and a slow unit's late answers would land in the
healthy units' transactions, so one bad module would take the whole bus down with it. The
first answer ends the quarantine.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any

from pymodbus.client import AsyncModbusSerialClient, AsyncModbusTcpClient

from edgectl.errors import DeviceException, DeviceTimeout, DeviceUnavailable
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
from edgectl.field.url import RtuEndpoint, TcpEndpoint

if TYPE_CHECKING:
    from edgectl.field.buses import FieldBuses

__all__ = ["PROBE_S", "QUARANTINE_AFTER", "SILENT_LIMIT", "ModbusIO", "SerialLine"]

SILENT_LIMIT = 5  # unanswered requests in a row after which a TCP link is dropped
QUARANTINE_AFTER = 3  # unanswered requests in a row after which a serial unit is only probed
PROBE_S = 1.0  # how often a quarantined serial unit is tried


def _client_timeout(timeout: float) -> float:
    """pymodbus' own response timeout: well past ours, so ours always fires first."""
    return timeout * 2 + 0.5


def _connect_timeout(timeout: float) -> float:
    return max(timeout * 4, 1.0)


class SerialLine:
    """One serial line: a shared client, a lock, the inter-request gap and who holds it."""

    def __init__(self, endpoint: RtuEndpoint, *, timeout: float, gap: float) -> None:
        self.endpoint = endpoint
        self.lock = asyncio.Lock()
        self.gap = gap
        self.users = 0
        self.quiet_at = 0.0  # loop time before which nothing may be sent (see ModbusIO._call)
        self.client = AsyncModbusSerialClient(
            endpoint.port,
            baudrate=endpoint.baudrate,
            parity=endpoint.parity,
            bytesize=endpoint.bytesize,
            stopbits=endpoint.stopbits,
            timeout=_client_timeout(timeout),
            retries=0,
            reconnect_delay=0,
        )


class ModbusIO:
    """Modbus TCP or RTU through pymodbus, with a deadline on every request."""

    def __init__(
        self,
        endpoint: TcpEndpoint | RtuEndpoint,
        *,
        timeout: float,
        buses: FieldBuses | None = None,
        gap: float = 0.0,
        name: str = "",
    ) -> None:
        self.endpoint = endpoint
        self.timeout = timeout
        self.name = name or str(endpoint)
        self._gap_wanted = gap
        self._buses = buses
        self._line: SerialLine | None = None
        self._silent = 0  # requests in a row without an answer
        self._probe_at = 0.0  # quarantined serial unit: loop time of the next probe
        self._client: Any  # AsyncModbusTcpClient | AsyncModbusSerialClient
        if isinstance(endpoint, TcpEndpoint):
            self._client = AsyncModbusTcpClient(
                endpoint.host,
                port=endpoint.port,
                timeout=_client_timeout(timeout),
                retries=0,
                reconnect_delay=0,
            )
            self._lock = asyncio.Lock()
            self._gap = 0.0
        else:
            self._attach(endpoint)

    def _attach(self, endpoint: RtuEndpoint) -> None:
        if self._buses is None:  # a line of its own
            line = SerialLine(endpoint, timeout=self.timeout, gap=self._gap_wanted)
        else:
            line = self._buses.line(endpoint, timeout=self.timeout, gap=self._gap_wanted)
        line.users += 1
        self._line = line
        self._client = line.client
        self._lock = line.lock
        self._gap = max(self._gap_wanted, line.gap)

    @property
    def connected(self) -> bool:
        if isinstance(self.endpoint, RtuEndpoint) and self._line is None:
            return False  # this link let go of its line
        return bool(self._client.connected)

    async def connect(self) -> None:
        if isinstance(self.endpoint, RtuEndpoint) and self._line is None:
            self._attach(self.endpoint)
        wait = _connect_timeout(self.timeout)
        async with self._lock:
            if self._client.connected:
                return
            try:
                with mapped_errors("connect", device=self.name, timeout=wait):
                    async with asyncio.timeout(wait):
                        ok = await self._client.connect()
            except DeviceTimeout as exc:
                raise DeviceUnavailable("connect timed out", device=self.name) from exc
            if not ok:
                raise DeviceUnavailable("connect failed", device=self.name)
            self._silent = 0

    async def _call(self, what: str, request: Callable[[], Awaitable[Any]]) -> Any:
        loop = asyncio.get_running_loop()
        async with self._lock:
            if not self.connected:
                raise DeviceUnavailable("not connected", device=self.name)
            line = self._line
            if line is not None and self._silent >= QUARANTINE_AFTER:
                if loop.time() < self._probe_at:
                    raise DeviceTimeout(
                        f"{what}: unit silent for {self._silent} requests, probed every "
                        f"{PROBE_S:g} s",
                        device=self.name,
                    )
                self._probe_at = loop.time() + PROBE_S
            if line is not None and line.quiet_at > loop.time():
                await asyncio.sleep(line.quiet_at - loop.time())
            answered = False
            try:
                with mapped_errors(what, device=self.name, timeout=self.timeout):
                    async with asyncio.timeout(self.timeout):
                        response = await request()
                answered = True
            except DeviceTimeout:
                self._unanswered()
                raise
            finally:
                if not answered and line is not None:
                    # timed out or cancelled: its answer may still come, and a serial line
                    # has no transaction ids to tell it from the next request's answer
                    line.quiet_at = loop.time() + self.timeout
                if self._gap:
                    await asyncio.sleep(self._gap)
            self._silent = 0
        if response.isError():
            code = int(getattr(response, "exception_code", 0) or 0)
            raise DeviceException(
                f"{what}: exception code {code}", device=self.name, exception_code=code
            )
        return response

    def _unanswered(self) -> None:
        self._silent += 1
        if self._silent >= SILENT_LIMIT and isinstance(self.endpoint, TcpEndpoint):
            self._silent = 0
            self._client.close()

    async def read_input(self, address: int, count: int) -> list[int]:
        check_read(address, count, self.name)
        unit = self.endpoint.unit
        response = await self._call(
            "read_input",
            lambda: self._client.read_input_registers(address, count=count, device_id=unit),
        )
        return registers_of(getattr(response, "registers", None), count, self.name)

    async def read_holding(self, address: int, count: int) -> list[int]:
        check_read(address, count, self.name)
        unit = self.endpoint.unit
        response = await self._call(
            "read_holding",
            lambda: self._client.read_holding_registers(address, count=count, device_id=unit),
        )
        return registers_of(getattr(response, "registers", None), count, self.name)

    async def write(self, address: int, values: Sequence[int]) -> None:
        vals = check_write(address, values, self.name)
        unit = self.endpoint.unit
        await self._call(
            "write", lambda: self._client.write_registers(address, vals, device_id=unit)
        )

    # --- bit objects and single writes (profile format v2: ObjectIO) ---------------------

    async def read_coils(self, address: int, count: int) -> list[int]:
        check_bits(address, count, MAX_READ_BITS, self.name)
        unit = self.endpoint.unit
        response = await self._call(
            "read_coils", lambda: self._client.read_coils(address, count=count, device_id=unit)
        )
        return bits_of(getattr(response, "bits", None), count, self.name)

    async def read_discrete(self, address: int, count: int) -> list[int]:
        check_bits(address, count, MAX_READ_BITS, self.name)
        unit = self.endpoint.unit
        response = await self._call(
            "read_discrete",
            lambda: self._client.read_discrete_inputs(address, count=count, device_id=unit),
        )
        return bits_of(getattr(response, "bits", None), count, self.name)

    async def write_coil(self, address: int, value: int) -> None:
        check_bits(address, 1, 1, self.name)
        unit = self.endpoint.unit
        await self._call(
            "write_coil", lambda: self._client.write_coil(address, bool(value), device_id=unit)
        )

    async def write_coils(self, address: int, values: Sequence[int]) -> None:
        bits = [bool(v) for v in values]
        check_bits(address, len(bits), MAX_WRITE_BITS, self.name)
        unit = self.endpoint.unit
        await self._call(
            "write_coils", lambda: self._client.write_coils(address, bits, device_id=unit)
        )

    async def write_register(self, address: int, value: int) -> None:
        vals = check_write(address, [value], self.name)
        unit = self.endpoint.unit
        await self._call(
            "write_register",
            lambda: self._client.write_register(address, vals[0], device_id=unit),
        )

    async def close(self) -> None:
        """Let go of the link (again: nothing happens); the last user closes the port."""
        line, self._line = self._line, None
        if isinstance(self.endpoint, RtuEndpoint):
            if line is None:
                return
            line.users -= 1
            if line.users > 0:
                return
            if self._buses is not None:
                self._buses.release(line)
        with contextlib.suppress(Exception):
            self._client.close()
