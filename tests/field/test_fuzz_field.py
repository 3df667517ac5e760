"""Fuzzing the field seam: whatever a device sends back, decoding never crashes and the
daemon sees either a well-formed snapshot or a typed, retryable/fatal error."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from edgectl.cabinet.channels import ChannelState
from edgectl.errors import DeviceException, FieldError, FrameError
from edgectl.field.device import CabinetMap, decode_inputs
from edgectl.field.transport import _registers

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
        got = _registers(_Response(registers), count, "fuzz")
    except FrameError:
        assert registers is None or len(registers) < count
    else:
        assert len(got) == count and all(0 <= r <= 0xFFFF for r in got)


@settings(max_examples=100, deadline=None)
@given(st.integers(min_value=0, max_value=255))
def test_exception_responses_are_typed(code: int) -> None:
    from edgectl.field.transport import ModbusIO
    from edgectl.field.url import TcpEndpoint

    async def scenario() -> None:
        io = ModbusIO(TcpEndpoint("127.0.0.1", 1, 1), timeout=0.05, name="fuzz")
        io._client = SimpleNamespace(connected=True)  # type: ignore[assignment]  # no socket

        async def request() -> _Response:
            return _Response([], error=True, code=code)

        try:
            await io._call("read_input", request)
        except DeviceException as exc:
            assert exc.exception_code == code
        except FieldError:  # pragma: no cover - any other typed error is wrong here
            raise AssertionError("exception response must be DeviceException") from None

    asyncio.run(scenario())
