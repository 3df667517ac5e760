"""The links a set of field devices shares, owned by whoever opens the devices.

``open_io(parse_url(url), buses=buses, timeout=...)`` gives the :class:`RegisterIO` of a device
URL: Modbus TCP, Modbus RTU on a serial line shared through ``buses``, or the in-memory bank
``memory://NAME`` kept by ``buses``. One :class:`FieldBuses` per daemon (or per test); there
is no module-level registry.
"""

from __future__ import annotations

from edgectl.errors import FatalFieldError
from edgectl.field.memory import MemoryIO
from edgectl.field.modbus import ModbusIO, SerialLine
from edgectl.field.transport import RegisterIO
from edgectl.field.url import Endpoint, MemoryEndpoint, RtuEndpoint, TcpEndpoint

__all__ = ["FieldBuses", "open_io"]


class FieldBuses:
    """The links a set of devices share: serial lines by port and in-memory banks by name.

    One per daemon (or test): pass it to every device opened together, so that two units on
    one RS-485 line use one client and one lock, and ``memory://NAME`` is the same bank for
    every device naming it (``buses.bank(NAME)`` is how a test reaches it).
    """

    def __init__(self) -> None:
        self._lines: dict[str, SerialLine] = {}
        self._banks: dict[str, MemoryIO] = {}

    def bank(self, name: str) -> MemoryIO:
        """The in-memory bank ``memory://name`` (created on first use)."""
        bank = self._banks.get(name)
        if bank is None:
            bank = self._banks[name] = MemoryIO(name=name)
        return bank

    def line(self, endpoint: RtuEndpoint, *, timeout: float, gap: float) -> SerialLine:
        """The serial line of ``endpoint``'s port; the first device on it sets it up."""
        line = self._lines.get(endpoint.bus)
        if line is None:
            line = self._lines[endpoint.bus] = SerialLine(endpoint, timeout=timeout, gap=gap)
        return line

    def release(self, line: SerialLine) -> None:
        """The last device on ``line`` let go of it: the next one opens it afresh."""
        if self._lines.get(line.endpoint.bus) is line:
            del self._lines[line.endpoint.bus]

    @property
    def lines(self) -> tuple[str, ...]:
        """Serial ports in use."""
        return tuple(self._lines)


def open_io(
    endpoint: Endpoint,
    *,
    buses: FieldBuses,
    timeout: float,
    gap: float = 0.0,
    name: str = "",
) -> RegisterIO:
    """The link to ``endpoint``; serial lines and memory banks come from ``buses``."""
    if isinstance(endpoint, MemoryEndpoint):
        return buses.bank(endpoint.name)
    if isinstance(endpoint, TcpEndpoint | RtuEndpoint):
        return ModbusIO(endpoint, buses=buses, timeout=timeout, gap=gap, name=name)
    raise FatalFieldError(f"no transport for {endpoint!r}")
