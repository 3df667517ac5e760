"""The promises every :class:`~edgectl.field.transport.RegisterIO` keeps, as one suite.

In the shape of ``trio.testing.check_two_way_stream``: the same checks run against every
implementation — :class:`~edgectl.field.memory.MockTransport`, the in-memory bank, the
emulator over Modbus TCP and over an RTU pty, and a real cabinet (``pytest --target URL``)::

    link = LinkUnderTest(
        open=lambda: ModbusIO(endpoint, buses=buses, timeout=0.2),
        layout=RegisterLayout.from_map(CabinetMap()),
        timeout=0.2,
        open_peer=lambda: ModbusIO(endpoint, buses=buses, timeout=0.2),    # same bus
        open_silent=lambda: ModbusIO(other_unit, buses=buses, timeout=0.2),  # never answers
    )
    await check_register_io(link)

What is checked (one function each, listed in :data:`CHECKS`):

- ``connect`` and ``close`` may be repeated; a closed link reconnects; requests on a link
  that is not connected raise :class:`~edgectl.errors.DeviceUnavailable`;
- holding registers written are read back; input and holding blocks read whole;
- an address the device does not have is a :class:`~edgectl.errors.DeviceException` with
  exception code 2, and the link keeps working; a request no Modbus frame can carry is a
  :class:`~edgectl.errors.FatalFieldError` before anything is sent;
- many requests at once on one link — and on two links sharing the bus — are served one at a
  time, each with its own answer; a cancelled request leaves the link usable;
- a device that does not answer is a :class:`~edgectl.errors.DeviceTimeout` within the
  link's timeout, which is also :class:`TimeoutError` (= ``asyncio.TimeoutError``), and the
  bus serves the next request.

On a real device the suite reads the input and holding blocks and writes only the
``scratch`` registers of the layout (by default the heartbeat, which a controller writes
ten times a second anyway): run it on a bench cabinet, never on one in service.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from edgectl.cabinet.registers import Block, CabinetMap
from edgectl.errors import (
    DeviceException,
    DeviceTimeout,
    DeviceUnavailable,
    FatalFieldError,
    RetryableFieldError,
)
from edgectl.field.transport import MAX_READ, MAX_WRITE, RegisterIO

__all__ = [
    "CHECKS",
    "LinkUnderTest",
    "RegisterLayout",
    "check_bounds",
    "check_cancellation",
    "check_concurrent",
    "check_connect_close",
    "check_register_io",
    "check_round_trip",
    "check_timeout",
]

ILLEGAL_ADDRESS = 2


@dataclass(frozen=True, slots=True)
class RegisterLayout:
    """Where the suite may read and write on the device under test."""

    inputs: Block  # input registers that exist (read whole)
    holding: Block  # holding registers that exist (read whole)
    scratch: Block  # holding registers the suite may write and read back
    unmapped: int = 60000  # an address the device has neither as input nor as holding

    @classmethod
    def from_map(cls, cmap: CabinetMap) -> RegisterLayout:
        """A cabinet's layout: its input block, outputs + heartbeat, the heartbeat as scratch."""
        out = cmap.channel_outputs
        holding = Block(out.address, out.count + cmap.heartbeat.count)
        if not cmap.frame_contiguous:
            holding = out
        return cls(inputs=cmap.input_span, holding=holding, scratch=cmap.heartbeat)


@dataclass(frozen=True, slots=True)
class LinkUnderTest:
    """How to open the links the checks use; each call gives a new, unconnected link."""

    open: Callable[[], RegisterIO]
    layout: RegisterLayout
    timeout: float  # the per-request timeout the links were opened with
    open_peer: Callable[[], RegisterIO] | None = None  # another link on the same bus
    open_silent: Callable[[], RegisterIO] | None = None  # a link to a device that never answers


async def _connected(make: Callable[[], RegisterIO]) -> RegisterIO:
    io = make()
    await io.connect()
    assert io.connected, "connect() returned but the link is not connected"
    return io


async def _raised(request: Awaitable[object]) -> Exception | None:
    """What the request raised (None: it did not)."""
    try:
        await request
    except Exception as exc:  # noqa: BLE001 - the checks look at what was raised
        return exc
    return None


async def _expect_exception_code(request: Awaitable[object], what: str) -> None:
    exc = await _raised(request)
    assert isinstance(exc, DeviceException), f"{what}: {exc!r}, not a DeviceException"
    assert exc.exception_code == ILLEGAL_ADDRESS, f"{what}: code {exc.exception_code}"


async def _expect_fatal(request: Awaitable[object], what: str) -> None:
    exc = await _raised(request)
    assert not isinstance(exc, DeviceException), f"{what}: sent to the device ({exc})"
    assert isinstance(exc, FatalFieldError), f"{what}: {exc!r}, not a FatalFieldError"


async def _expect_unavailable(request: Awaitable[object], what: str) -> None:
    exc = await _raised(request)
    assert isinstance(exc, DeviceUnavailable), f"{what}: {exc!r}, not DeviceUnavailable"


async def check_connect_close(link: LinkUnderTest) -> None:
    """connect/close repeat freely; a closed link refuses requests and reconnects."""
    lay = link.layout
    io = link.open()
    try:
        assert not io.connected, "a new link is connected before connect()"
        await _expect_unavailable(io.read_input(lay.inputs.address, 1), "before connect()")
        await io.connect()
        await io.connect()  # again: nothing happens
        assert io.connected
        assert len(await io.read_input(lay.inputs.address, 1)) == 1
        await io.close()
        await io.close()  # idempotent
        assert not io.connected, "still connected after close()"
        await _expect_unavailable(io.read_holding(lay.holding.address, 1), "after close()")
        await io.connect()  # a closed link reconnects
        assert len(await io.read_holding(lay.holding.address, 1)) == 1
    finally:
        await io.close()


async def check_round_trip(link: LinkUnderTest) -> None:
    """What is written to holding registers reads back; whole blocks read as asked."""
    lay = link.layout
    io = await _connected(link.open)
    try:
        inputs = await io.read_input(lay.inputs.address, lay.inputs.count)
        assert len(inputs) == lay.inputs.count
        assert all(isinstance(v, int) and 0 <= v <= 0xFFFF for v in inputs)
        holding = await io.read_holding(lay.holding.address, lay.holding.count)
        assert len(holding) == lay.holding.count
        start, n = lay.scratch.address, lay.scratch.count
        for pattern in (0x1234, 0xFFFF, 0x0000, 0xA5A5 ^ 0x0F0F):
            values = [(pattern + i) & 0xFFFF for i in range(n)]
            await io.write(start, values)
            assert await io.read_holding(start, n) == values, f"wrote {values}"
        await io.write(start, (7,))  # one register, any sequence type
        assert (await io.read_holding(start, 1)) == [7]
    finally:
        await io.close()


async def check_bounds(link: LinkUnderTest) -> None:
    """Unknown addresses are the device's exception 2; impossible requests never leave."""
    lay = link.layout
    io = await _connected(link.open)
    try:
        far = lay.unmapped
        await _expect_exception_code(io.read_input(far, 1), "read_input past the map")
        await _expect_exception_code(io.read_holding(far, 1), "read_holding past the map")
        await _expect_exception_code(io.write(far, [0]), "write past the map")
        await _expect_fatal(io.read_input(lay.inputs.address, 0), "read of 0 registers")
        await _expect_fatal(io.read_input(0, MAX_READ + 1), "read of too many registers")
        await _expect_fatal(io.read_holding(-1, 1), "negative address")
        await _expect_fatal(io.read_holding(0xFFFF, 2), "read past 65535")
        await _expect_fatal(io.write(lay.scratch.address, []), "empty write")
        await _expect_fatal(io.write(0, [0] * (MAX_WRITE + 1)), "write of too many registers")
        await _expect_fatal(io.write(lay.scratch.address, [0x10000]), "value over 16 bits")
        await _expect_fatal(io.write(lay.scratch.address, [-1]), "negative value")
        assert io.connected, "an exception response closed the link"
        assert len(await io.read_input(lay.inputs.address, lay.inputs.count)) == lay.inputs.count
    finally:
        await io.close()


async def check_concurrent(link: LinkUnderTest) -> None:
    """Requests at once, on one link and on two sharing the bus, each get their own answer."""
    lay = link.layout
    links = [await _connected(link.open)]
    try:
        if link.open_peer is not None:
            links.append(await _connected(link.open_peer))
        start = lay.scratch.address

        async def one(i: int) -> None:
            io = links[i % len(links)]
            if i % 3 == 0:
                await io.write(start, [i])
            elif i % 3 == 1:
                got = await io.read_holding(lay.holding.address, lay.holding.count)
                assert len(got) == lay.holding.count
            else:
                got = await io.read_input(lay.inputs.address, lay.inputs.count)
                assert len(got) == lay.inputs.count

        async with asyncio.timeout(max(30 * link.timeout, 10.0)):
            await asyncio.gather(*(one(i) for i in range(24)))
        await links[0].write(start, [0xBEEF])
        assert await links[-1].read_holding(start, 1) == [0xBEEF]
    finally:
        for io in links:
            await io.close()


async def check_cancellation(link: LinkUnderTest) -> None:
    """A request cancelled in flight leaves the link serving the next one."""
    lay = link.layout
    loop = asyncio.get_running_loop()
    io = await _connected(link.open)
    try:
        for after in (0.0, 0.001, link.timeout / 4):
            try:
                async with asyncio.timeout_at(loop.time() + after):
                    await io.read_input(lay.inputs.address, lay.inputs.count)
                    await io.read_holding(lay.holding.address, lay.holding.count)
            except DeviceTimeout:
                raise
            except TimeoutError:
                pass  # cancelled in flight, as meant
        await io.write(lay.scratch.address, [0x0101])
        assert await io.read_holding(lay.scratch.address, 1) == [0x0101]
    finally:
        await io.close()


async def check_timeout(link: LinkUnderTest) -> None:
    """A silent device is a DeviceTimeout (also TimeoutError) in time; the bus goes on."""
    if link.open_silent is None:
        return
    lay = link.layout
    silent = await _connected(link.open_silent)
    live = await _connected(link.open)
    try:
        t0 = time.monotonic()
        exc = await _raised(silent.read_input(lay.inputs.address, 1))
        took = time.monotonic() - t0
        assert isinstance(exc, DeviceTimeout), f"a silent device: {exc!r}"
        assert isinstance(exc, TimeoutError)
        assert isinstance(exc, asyncio.TimeoutError)
        assert isinstance(exc, RetryableFieldError)
        assert took >= link.timeout * 0.9, f"gave up after {took:.3f} s"
        assert took <= link.timeout + 1.0, f"took {took:.3f} s to time out"
        exc = await _raised(silent.write(lay.scratch.address, [1]))
        assert isinstance(exc, DeviceTimeout | DeviceUnavailable), f"a silent write: {exc!r}"
        assert len(await live.read_input(lay.inputs.address, lay.inputs.count)) == lay.inputs.count
    finally:
        await silent.close()
        await live.close()


CHECKS: tuple[Callable[[LinkUnderTest], Awaitable[None]], ...] = (
    check_connect_close,
    check_round_trip,
    check_bounds,
    check_concurrent,
    check_cancellation,
    check_timeout,
)


async def check_register_io(link: LinkUnderTest) -> None:
    """Run every check of :data:`CHECKS` against ``link``; the first failure raises."""
    for check in CHECKS:
        await check(link)
