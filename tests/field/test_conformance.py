"""One RegisterIO conformance suite against every link a device can be opened on."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest
from pymodbus.exceptions import ConnectionException, ModbusIOException, ParameterException

from edgectl.errors import DeviceTimeout, DeviceUnavailable, FatalFieldError, FrameError
from edgectl.field.memory import MockTransport, Request, Response
from edgectl.testing.conformance import CHECKS, LinkUnderTest, check_register_io, check_timeout

from .conftest import TIMEOUT


@pytest.mark.parametrize("check", CHECKS, ids=[c.__name__ for c in CHECKS])
async def test_conformance(
    link: LinkUnderTest, check: Callable[[LinkUnderTest], Awaitable[None]]
) -> None:
    if check is check_timeout and link.open_silent is None:
        pytest.skip("no silent device on this link")
    await check(link)


async def test_the_whole_suite_in_one_call(link: LinkUnderTest) -> None:
    await check_register_io(link)


async def test_a_mock_handler_is_never_entered_twice_at_once() -> None:
    inside = 0
    most = 0

    async def slow(request: Request) -> Response:
        nonlocal inside, most
        inside += 1
        most = max(most, inside)
        await asyncio.sleep(0.001)
        inside -= 1
        return Response(registers=(1,) * request.count)

    io = MockTransport(slow, timeout=TIMEOUT)
    await io.connect()
    await asyncio.gather(*(io.read_input(0, 2) for _ in range(20)))
    assert most == 1


@pytest.mark.parametrize(
    ("raised", "expected"),
    [
        (TimeoutError(), DeviceTimeout),
        (ConnectionException("gone"), DeviceUnavailable),
        (ConnectionRefusedError(111, "refused"), DeviceUnavailable),
        (ModbusIOException("garbled"), FrameError),
        (ParameterException("bad"), FatalFieldError),
    ],
)
async def test_foreign_errors_become_ours(raised: Exception, expected: type[Exception]) -> None:
    def handler(request: Request) -> Response:
        raise raised

    io = MockTransport(handler, name="mock")
    await io.connect()
    with pytest.raises(expected) as info:
        await io.read_holding(0, 1)
    assert info.value.__cause__ is raised


async def test_a_bug_in_a_handler_is_not_a_field_error() -> None:
    def handler(request: Request) -> Response:
        raise KeyError("bug")

    io = MockTransport(handler)
    await io.connect()
    with pytest.raises(KeyError):
        await io.read_input(0, 1)
