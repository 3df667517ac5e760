"""Register I/O: the one narrow async seam under every field device.

:class:`RegisterIO` is all a device needs — read input registers, read holding registers,
write holding registers — so Modbus TCP, Modbus RTU on a serial line
(:class:`~edgectl.field.modbus.ModbusIO`), a handler function
(:class:`~edgectl.field.memory.MockTransport`), an in-memory bank
(:class:`~edgectl.field.memory.MemoryIO`) and the emulator are interchangeable beneath it.
``edgectl.testing.conformance`` checks that each of them keeps the same promises.

Errors: every request runs inside :func:`mapped_errors`, the one place where foreign
exceptions (pymodbus, pyserial, the OS, a timeout) become the :mod:`edgectl.errors` tree,
raised ``from`` the original. Which one is decided by type, never by message text::

    TimeoutError (our deadline)          → DeviceTimeout      (also a TimeoutError)
    pymodbus ConnectionException         → DeviceUnavailable
    OSError (port missing, refused, ...) → DeviceUnavailable
    pymodbus ParameterException,
      NotImplementedException            → FatalFieldError
    any other pymodbus ModbusException   → FrameError
    a Modbus exception response          → DeviceException    (with its exception_code)

:class:`ObjectIO` adds the bit objects and single writes a v2 profile may use (coils FC1 /
FC5 / FC15, discrete inputs FC2, one register FC6); :class:`~edgectl.field.modbus.ModbusIO`
and :class:`~edgectl.field.memory.MockTransport` implement both.

Arguments outside what one Modbus request can carry (address 0..65535, 1..125 registers to
read, 1..123 to write, values 0..0xFFFF) raise :class:`~edgectl.errors.FatalFieldError` before
anything is sent.

Links are owned, not global: whoever opens the devices holds one
:class:`~edgectl.field.buses.FieldBuses` (serial lines shared by port, ``memory://NAME``
banks) and opens every link through it with :func:`~edgectl.field.buses.open_io`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from typing import Protocol

from pymodbus.exceptions import (
    ConnectionException,
    ModbusException,
    NotImplementedException,
    ParameterException,
)

from edgectl.errors import (
    DeviceTimeout,
    DeviceUnavailable,
    FatalFieldError,
    FieldError,
    FrameError,
)

__all__ = [
    "MAX_READ",
    "MAX_READ_BITS",
    "MAX_WRITE",
    "MAX_WRITE_BITS",
    "ObjectIO",
    "RegisterIO",
    "bits_of",
    "check_bits",
    "check_read",
    "check_write",
    "mapped_errors",
    "registers_of",
]

MAX_READ = 125  # registers in one FC3/FC4 request
MAX_WRITE = 123  # registers in one FC16 request
MAX_READ_BITS = 2000  # coils or discrete inputs in one FC1/FC2 request
MAX_WRITE_BITS = 1968  # coils in one FC15 request


class RegisterIO(Protocol):
    """What a field device needs from its link.

    ``connect`` and ``close`` may be called any number of times; a closed link reconnects.
    Requests on one link (and on links sharing a serial line) are served one at a time.
    """

    @property
    def connected(self) -> bool: ...

    async def connect(self) -> None: ...

    async def read_input(self, address: int, count: int) -> list[int]: ...

    async def read_holding(self, address: int, count: int) -> list[int]: ...

    async def write(self, address: int, values: Sequence[int]) -> None: ...

    async def close(self) -> None: ...


class ObjectIO(RegisterIO, Protocol):
    """A link that also carries the bit objects and the single writes (profile format v2):
    coils (FC1 read, FC5 one, FC15 several), discrete inputs (FC2), one holding register
    (FC6). Bits travel as 0 / 1."""

    async def read_coils(self, address: int, count: int) -> list[int]: ...

    async def read_discrete(self, address: int, count: int) -> list[int]: ...

    async def write_coil(self, address: int, value: int) -> None: ...

    async def write_coils(self, address: int, values: Sequence[int]) -> None: ...

    async def write_register(self, address: int, value: int) -> None: ...


@contextlib.contextmanager
def mapped_errors(what: str, *, device: str, timeout: float) -> Iterator[None]:
    """Turn whatever a request raises into the :mod:`edgectl.errors` tree (see the module
    docstring); our own errors and cancellation pass through untouched."""
    try:
        yield
    except FieldError:
        raise
    except TimeoutError as exc:
        raise DeviceTimeout(f"{what}: no response in {timeout:.3f} s", device=device) from exc
    except ConnectionException as exc:
        raise DeviceUnavailable(f"{what}: {exc}", device=device) from exc
    except (ParameterException, NotImplementedException) as exc:
        raise FatalFieldError(f"{what}: {exc}", device=device) from exc
    except ModbusException as exc:
        raise FrameError(f"{what}: {exc}", device=device) from exc
    except OSError as exc:  # serial port gone, connection refused or reset
        raise DeviceUnavailable(f"{what}: {exc}", device=device) from exc


def _check_address(address: int, count: int, limit: int, device: str) -> None:
    if not 1 <= count <= limit:
        raise FatalFieldError(f"{count} registers: one request carries 1..{limit}", device=device)
    if not 0 <= address <= 0xFFFF - count + 1:
        raise FatalFieldError(f"address {address} (+{count}) outside 0..65535", device=device)


def check_read(address: int, count: int, device: str = "") -> None:
    """Raise :class:`FatalFieldError` for a read no Modbus request can carry."""
    _check_address(address, count, MAX_READ, device)


def check_write(address: int, values: Sequence[int], device: str = "") -> list[int]:
    """The values of a write as a list; :class:`FatalFieldError` for one no request carries."""
    vals = list(values)
    _check_address(address, len(vals), MAX_WRITE, device)
    for v in vals:
        if not 0 <= v <= 0xFFFF:
            raise FatalFieldError(f"value {v} outside 0..65535", device=device)
    return vals


def check_bits(address: int, count: int, limit: int, device: str = "") -> None:
    """Raise :class:`FatalFieldError` for a bit request no Modbus request can carry."""
    _check_address(address, count, limit, device)


def bits_of(bits: Sequence[bool | int] | None, count: int, device: str) -> list[int]:
    """The ``count`` bits of a response as 0 / 1 (responses pad to whole bytes);
    :class:`FrameError` if it carries fewer."""
    got = list(bits or [])
    if len(got) < count:
        raise FrameError(f"expected {count} bits, got {len(got)}", device=device)
    return [1 if b else 0 for b in got[:count]]


def registers_of(registers: Sequence[int] | None, count: int, device: str) -> list[int]:
    """The ``count`` registers of a response; :class:`FrameError` if it carries fewer."""
    regs = list(registers or [])
    if len(regs) < count:
        raise FrameError(f"expected {count} registers, got {len(regs)}", device=device)
    return [int(r) & 0xFFFF for r in regs[:count]]
