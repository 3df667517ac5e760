"""Field-device URLs (SPEC §6).

``modbus+tcp://host:port?unit=1`` — Modbus TCP.
``modbus+rtu:///dev/ttyUSB0?baudrate=115200&parity=N&unit=1`` — Modbus RTU on a serial line.
``memory://name`` — an in-process register bank (tests and the bench), kept by the caller's
:class:`~edgectl.field.buses.FieldBuses`.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit

from edgectl.errors import FatalFieldError


@dataclass(frozen=True, slots=True)
class TcpEndpoint:
    host: str
    port: int
    unit: int

    def __str__(self) -> str:
        return f"modbus+tcp://{self.host}:{self.port}?unit={self.unit}"


@dataclass(frozen=True, slots=True)
class RtuEndpoint:
    port: str
    unit: int
    baudrate: int = 115200
    parity: str = "N"
    bytesize: int = 8
    stopbits: int = 1

    @property
    def bus(self) -> str:
        """Devices with the same serial port share one bus (and one client)."""
        return self.port

    def __str__(self) -> str:
        return f"modbus+rtu://{self.port}?baudrate={self.baudrate}&parity={self.parity}&unit={self.unit}"


@dataclass(frozen=True, slots=True)
class MemoryEndpoint:
    name: str
    unit: int = 1

    def __str__(self) -> str:
        return f"memory://{self.name}"


Endpoint = TcpEndpoint | RtuEndpoint | MemoryEndpoint


def _int(query: dict[str, list[str]], key: str, default: int, lo: int, hi: int) -> int:
    raw = query.get(key, [str(default)])[-1]
    try:
        value = int(raw)
    except ValueError:
        raise FatalFieldError(f"{key}={raw!r} is not an integer") from None
    if not lo <= value <= hi:
        raise FatalFieldError(f"{key}={value} outside {lo}..{hi}")
    return value


def parse_url(url: str) -> Endpoint:
    """Parse a device URL; raise :class:`FatalFieldError` naming what is wrong."""
    parts = urlsplit(url)
    query = parse_qs(parts.query, keep_blank_values=True)
    unknown = set(query) - {"unit", "baudrate", "parity", "bytesize", "stopbits"}
    if unknown:
        raise FatalFieldError(f"unknown URL parameter(s) {sorted(unknown)} in {url!r}")
    unit = _int(query, "unit", 1, 0, 247)
    if parts.scheme == "modbus+tcp":
        if not parts.hostname:
            raise FatalFieldError(f"no host in {url!r}")
        try:
            port = parts.port or 502
        except ValueError:
            raise FatalFieldError(f"bad port in {url!r}") from None
        return TcpEndpoint(parts.hostname, port, unit)
    if parts.scheme == "modbus+rtu":
        path = parts.path or ""
        if parts.netloc or not path.startswith("/"):
            raise FatalFieldError(f"serial port must be an absolute path in {url!r}")
        parity = query.get("parity", ["N"])[-1].upper()
        if parity not in {"N", "E", "O"}:
            raise FatalFieldError(f"parity={parity!r} must be N, E or O")
        return RtuEndpoint(
            port=path,
            unit=unit,
            baudrate=_int(query, "baudrate", 115200, 300, 4_000_000),
            parity=parity,
            bytesize=_int(query, "bytesize", 8, 5, 8),
            stopbits=_int(query, "stopbits", 1, 1, 2),
        )
    if parts.scheme == "memory":
        return MemoryEndpoint(parts.netloc or parts.path.lstrip("/") or "default", unit)
    raise FatalFieldError(f"unsupported scheme {parts.scheme!r} in {url!r}")
