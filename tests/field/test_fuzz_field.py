"""Fuzzing the field seam: whatever a device sends back, decoding never crashes and the
daemon sees either a well-formed snapshot or a typed, retryable/fatal error."""

from __future__ import annotations

import asyncio
import dataclasses
from types import SimpleNamespace
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from edgectl.cabinet.channels import ChannelState
from edgectl.cabinet.registers import CabinetMap, decode_inputs, encode_inputs
from edgectl.errors import DeviceException, FieldError, FrameError
from edgectl.field.transport import registers_of

CMAP = CabinetMap()
SPAN = CMAP.input_span.count
words = st.integers(min_value=0, max_value=0xFFFF)


@settings(max_examples=400, deadline=None)
@given(st.lists(words, min_size=SPAN, max_size=SPAN))
def test_any_register_block_decodes(regs: list[int]) -> None:
    snap = decode_inputs(regs, CMAP, t=0.0)
    assert all(1 <= d <= 64 for d in snap.presence)
    assert all(isinstance(s, ChannelState) for s in snap.readback.values())
    assert len(snap.readback) == 32 and len(snap.counts) == 64


@settings(max_examples=200, deadline=None)
@given(st.lists(words, min_size=SPAN, max_size=SPAN))
def test_encoding_a_decoded_block_decodes_the_same(regs: list[int]) -> None:
    """What the emulator serves (encode) and what the daemon reads (decode) agree."""
    snap = decode_inputs(regs, CMAP, t=1.0)
    again = decode_inputs(encode_inputs(snap, CMAP), CMAP, t=1.0)
    assert again == dataclasses.replace(snap, readback=again.readback)
    assert dict(again.readback) == dict(snap.readback)


class _Response:
    def __init__(self, registers: Any, error: bool = False, code: int = 0) -> None:
        self.registers = registers
        self._error = error
        self.exception_code = code

    def isError(self) -> bool:  # noqa: N802 - pymodbus' name
        return self._error


@settings(max_examples=300, deadline=None)
@given(
    st.one_of(
        st.none(),
        st.lists(words, max_size=200),
        st.lists(st.integers(min_value=-(2**40), max_value=2**40), max_size=200),
    ),
    st.integers(min_value=1, max_value=125),
)
def test_wrong_lengths_are_frame_errors(registers: Any, count: int) -> None:
    try:
        got = registers_of(registers, count, "fuzz")
    except FrameError:
        assert registers is None or len(registers) < count
    else:
        assert len(got) == count and all(0 <= r <= 0xFFFF for r in got)


@settings(max_examples=100, deadline=None)
@given(st.integers(min_value=0, max_value=255))
def test_exception_responses_are_typed(code: int) -> None:
    from edgectl.field.modbus import ModbusIO
    from edgectl.field.url import TcpEndpoint

    async def scenario() -> None:
        io = ModbusIO(TcpEndpoint("127.0.0.1", 1, 1), timeout=0.05, name="fuzz")
        io._client = SimpleNamespace(connected=True)  # no socket

        async def request() -> _Response:
            return _Response([], error=True, code=code)

        try:
            await io._call("read_input", request)
        except DeviceException as exc:
            assert exc.exception_code == code
        except FieldError:  # pragma: no cover - any other typed error is wrong here
            raise AssertionError("exception response must be DeviceException") from None

    asyncio.run(scenario())
