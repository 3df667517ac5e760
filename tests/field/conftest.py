"""Links under test for the RegisterIO conformance suite (:mod:`edgectl.testing.conformance`).

Each one is what a device could be opened on: a handler function (MockTransport), the
in-memory bank, the emulator over real Modbus TCP, the emulator over a real RTU pty (two units
sharing the line), and — with ``--target URL`` (from :mod:`edgectl.testing.pytest_plugin`) —
a real device, whose register map is taken from ``builtin:nema-cabinet``.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator

import pytest

from edgectl.cabinet.profile import load_profile
from edgectl.cabinet.registers import CabinetMap
from edgectl.field.buses import FieldBuses, open_io
from edgectl.field.memory import ILLEGAL_ADDRESS, Function, MockTransport, Request, Response
from edgectl.field.transport import RegisterIO
from edgectl.field.url import RtuEndpoint, TcpEndpoint, parse_url
from edgectl.testing.conformance import LinkUnderTest, RegisterLayout
from firmware_sim import Emulator

TIMEOUT = 0.3  # per request; the emulator answers in about a millisecond
CABINET = RegisterLayout.from_map(CabinetMap())
LINKS = ("mock", "memory", "tcp", "rtu", "target")


class Registers:
    """A device as a handler: 128 input registers (each its own address) and 64 holding."""

    def __init__(self) -> None:
        self.inputs = list(range(128))
        self.holding = [0] * 64

    def __call__(self, request: Request) -> Response:
        bank = self.inputs if request.function is Function.READ_INPUT else self.holding
        end = request.address + request.count
        if end > len(bank):
            return Response(exception_code=ILLEGAL_ADDRESS)
        if request.function is Function.WRITE:
            bank[request.address : end] = request.values
            return Response()
        return Response(registers=tuple(bank[request.address : end]))


async def never(request: Request) -> Response:
    """A device that never answers."""
    await asyncio.Event().wait()
    raise AssertionError(request)  # pragma: no cover


def _modbus(url: str, buses: FieldBuses, unit: int | None = None) -> LinkUnderTest:
    endpoint = parse_url(url)
    assert isinstance(endpoint, TcpEndpoint | RtuEndpoint)
    silent = dataclasses.replace(endpoint, unit=(unit or endpoint.unit) + 1)

    def make() -> RegisterIO:
        return open_io(endpoint, buses=buses, timeout=TIMEOUT, name="under-test")

    def make_silent() -> RegisterIO:
        return open_io(silent, buses=buses, timeout=TIMEOUT, name="silent")

    return LinkUnderTest(
        open=make, layout=CABINET, timeout=TIMEOUT, open_peer=make, open_silent=make_silent
    )


@pytest.fixture(params=LINKS)
async def link(
    request: pytest.FixtureRequest, target_url: str | None
) -> AsyncIterator[LinkUnderTest]:
    kind = str(request.param)
    buses = FieldBuses()
    if kind == "mock":
        device = Registers()
        yield LinkUnderTest(
            open=lambda: MockTransport(device, timeout=TIMEOUT),
            layout=RegisterLayout.from_map(CabinetMap()),
            timeout=TIMEOUT,
            open_peer=lambda: MockTransport(device, timeout=TIMEOUT),
            open_silent=lambda: MockTransport(never, timeout=TIMEOUT),
        )
    elif kind == "memory":
        yield LinkUnderTest(
            open=lambda: open_io(parse_url("memory://conformance"), buses=buses, timeout=TIMEOUT),
            layout=CABINET,
            timeout=TIMEOUT,
        )
    elif kind in ("tcp", "rtu"):
        listen = "modbus+tcp://127.0.0.1:0" if kind == "tcp" else "modbus+rtu://pty"
        async with Emulator(listen=listen, clock="virtual", seed=3) as emu:
            yield _modbus(emu.url, buses)
    else:
        if target_url is None:
            pytest.skip("no --target URL given")
        profile = load_profile("builtin:nema-cabinet")
        yield dataclasses.replace(
            _modbus(target_url, buses),
            layout=RegisterLayout.from_map(CabinetMap.from_profile(profile)),
            open_silent=None,  # another unit on a real bus may well answer
        )
    assert not buses.lines, f"serial lines left open: {buses.lines}"
