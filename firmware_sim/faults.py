"""Fault injection: the ``--fault SPEC`` grammar and the fault schedule. Pure.

Grammar (times in seconds since the emulator started)::

    SPEC     := KIND [":" VALUE] ["@" START ["+" DURATION]]
    KIND     := drop | delay | corrupt | silent | stuck | chatter | dead | power_cycle

    drop:0.3@10+20    drop 30 % of the responses from t=10 s for 20 s
    delay:0.2@5       delay every response by 0.2 s from t=5 s to the end
    corrupt:0.5@0+30  corrupt 50 % of the responses (bad CRC on RTU, garbled MBAP on TCP)
    silent@30+10      answer nothing from t=30 s for 10 s
    stuck:3@20+30     detector 3 stuck on (presence held) from t=20 s for 30 s
    chatter:4@20      detector 4 chatters (toggles every 0.1 s)
    dead:5@20+60      detector 5 dead (never on)
    power_cycle@60    power-cycle the cabinet at t=60 s

Without ``@`` a fault starts at 0; without ``+DURATION`` it lasts to the end (``power_cycle``
is instantaneous). The same faults can be set at run time through the ``sim_control``
holding registers; both sources combine (the larger share/delay wins).
"""

from __future__ import annotations

import enum
import math
import re
from dataclasses import dataclass

__all__ = ["FaultKind", "FaultSpec", "WireFaults", "parse_fault"]


class FaultKind(enum.StrEnum):
    DROP = "drop"
    DELAY = "delay"
    CORRUPT = "corrupt"
    SILENT = "silent"
    STUCK = "stuck"
    CHATTER = "chatter"
    DEAD = "dead"
    POWER_CYCLE = "power_cycle"


_NEEDS_SHARE = {FaultKind.DROP, FaultKind.CORRUPT}
_NEEDS_DETECTOR = {FaultKind.STUCK, FaultKind.CHATTER, FaultKind.DEAD}
_NO_VALUE = {FaultKind.SILENT, FaultKind.POWER_CYCLE}
MAX_TIME_S = 366 * 86400.0
"""START and DURATION at most a year: beyond is a typo, not a test."""
_MAX_DIGITS = 24
_SPEC = re.compile(
    r"^(?P<kind>[a-z_]+)(?::(?P<value>[0-9.]+))?(?:@(?P<start>[0-9.]+)(?:\+(?P<dur>[0-9.]+))?)?$"
)


@dataclass(frozen=True, slots=True)
class FaultSpec:
    """One scheduled fault. ``value``: share 0..1, delay seconds, or detector id."""

    kind: FaultKind
    value: float = 0.0
    start: float = 0.0
    duration: float = math.inf

    def active(self, now: float) -> bool:
        return self.start <= now < self.start + self.duration

    def __str__(self) -> str:
        text = self.kind.value
        if self.kind not in _NO_VALUE:
            text += f":{self.value:g}"
        text += f"@{self.start:g}"
        if self.duration != math.inf and self.kind != FaultKind.POWER_CYCLE:
            text += f"+{self.duration:g}"
        return text


def _number(raw: str, what: str, text: str, *, high: float) -> float:
    """A finite number ``0 <= x <= high`` of the spec; ValueError otherwise (never Overflow)."""
    if len(raw) > _MAX_DIGITS or raw.count(".") > 1 or raw == ".":
        raise ValueError(f"bad {what} {raw[:_MAX_DIGITS]!r}… in fault spec {text[:60]!r}")
    value = float(raw)
    if not math.isfinite(value) or not 0.0 <= value <= high:
        raise ValueError(f"{what} must be 0..{high:g}: {text[:60]!r}")
    return value


def parse_fault(text: str) -> FaultSpec:
    """Parse one ``--fault`` SPEC; ValueError says what is wrong."""
    match = _SPEC.match(text.strip())
    if match is None:
        raise ValueError(f"bad fault spec {text[:60]!r}: expected KIND[:VALUE][@START[+DURATION]]")
    try:
        kind = FaultKind(match["kind"])
    except ValueError:
        known = ", ".join(k.value for k in FaultKind)
        raise ValueError(f"unknown fault kind {match['kind']!r} (known: {known})") from None
    raw = match["value"]
    if kind in _NO_VALUE:
        if raw is not None:
            raise ValueError(f"fault {kind} takes no value: {text!r}")
        value = 0.0
    else:
        if raw is None:
            raise ValueError(f"fault {kind} needs a value: {text!r}")
        value = _number(raw, "value", text, high=MAX_TIME_S)
        if kind in _NEEDS_SHARE and not 0.0 <= value <= 1.0:
            raise ValueError(f"{kind} share must be 0..1: {text!r}")
        if kind in _NEEDS_DETECTOR and (value != int(value) or not 1 <= value <= 64):
            raise ValueError(f"{kind} needs a detector id 1..64: {text!r}")
        if kind == FaultKind.DELAY and not 0.0 <= value <= 60.0:
            raise ValueError(f"delay must be 0..60 s: {text!r}")
    start = _number(match["start"], "start", text, high=MAX_TIME_S) if match["start"] else 0.0
    if kind == FaultKind.POWER_CYCLE:
        duration = 0.0
    else:
        duration = (
            _number(match["dur"], "duration", text, high=MAX_TIME_S) if match["dur"] else math.inf
        )
    return FaultSpec(kind=kind, value=value, start=start, duration=duration)


@dataclass(frozen=True, slots=True)
class WireFaults:
    """What the wire does to responses right now."""

    drop: float = 0.0  # share of responses dropped
    delay_s: float = 0.0
    corrupt: float = 0.0  # share of responses corrupted
    silent: bool = False  # requests are ignored
