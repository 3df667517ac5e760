"""RTU line arithmetic: how long a response frame is, and how long a frame takes on the line.

The pty bridge of :mod:`firmware_sim.server` cuts the server's output into response frames
with :func:`response_length`, and — with ``line_time`` — holds every frame for
:func:`frame_time` so that a pty, which has no baud rate, costs what an RS-485 line would.
"""

from __future__ import annotations

__all__ = ["BITS_PER_CHAR", "char_time", "frame_time", "response_length"]

#: bits on the line per RTU character: start, 8 data, parity (or a second stop), stop
BITS_PER_CHAR = 11


def char_time(baudrate: int) -> float:
    """Seconds one RTU character takes on a line at ``baudrate``."""
    return BITS_PER_CHAR / baudrate


def frame_time(size: int, baudrate: int) -> float:
    """Seconds a frame of ``size`` bytes takes on the line, with the 3.5-character silence
    that ends an RTU frame (fixed at 1.75 ms above 19200 baud, as the standard says)."""
    gap = 3.5 * char_time(baudrate) if baudrate <= 19200 else 0.00175
    return size * char_time(baudrate) + gap


def response_length(buf: bytes | bytearray) -> int | None:
    """Length of the RTU response frame at the head of ``buf`` (None: need more bytes)."""
    if len(buf) < 3:
        return None
    fc = buf[1]
    if fc & 0x80:
        return 5
    if fc in (1, 2, 3, 4):
        return 5 + buf[2]
    if fc in (5, 6, 15, 16):
        return 8
    return len(buf)  # unknown function: pass through whatever we have
