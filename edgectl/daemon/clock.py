"""The daemon's clocks: the monotonic clock the control loop ticks on, and the wall clock that
coordination shares with the neighbouring junctions, read through one object tests can drive.

Why one object: the pure core reads no clock. Every tick the daemon reads both clocks once
(:meth:`SharedClock.read`) and hands the controller the **shared clock** ``sync_s`` (UTC
seconds since the epoch plus the zone's UTC offset on a fixed date, 1 January 2001: see
:mod:`edgectl.control.coordination`); events and telemetry carry the same reading's wall time.

Clock health, decided here and shown as alarms (the junction keeps running on its own clock
meanwhile: coordination follows the wall clock as it is, and walks back into step by a
bounded transition when it moves):

- ``clock:unsynchronised`` while the kernel says the clock is not synchronised (``adjtimex``:
  state ``TIME_ERROR`` or the ``STA_UNSYNC`` flag, what ``timedatectl`` shows as "System clock
  synchronized: no"; chrony and systemd-timesyncd both clear it once synchronised); looked
  at every :data:`SYNC_CHECK_S`;
- ``clock:step:<±seconds>`` for :data:`STEP_ALARM_S` after the wall clock moved against the
  monotonic clock by more than :data:`STEP_THRESHOLD_S` between two reads (a step by NTP, an
  operator's ``date -s``, a resume).

Test hook (HIL): ``EDGECTL_TEST_CLOCK_STEP="AT:STEP"`` steps this daemon's wall clock by STEP
seconds AT seconds after it started (:func:`from_env`).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, tzinfo

__all__ = [
    "STEP_ALARM_S",
    "STEP_THRESHOLD_S",
    "SYNC_CHECK_S",
    "ClockReading",
    "KernelSync",
    "SharedClock",
    "StepDetector",
    "from_env",
    "kernel_sync",
    "shared_seconds",
    "stepped_wall",
    "zone_offset_s",
]

STEP_THRESHOLD_S = 1.0
"""The wall clock moving this much more (or less) than the monotonic clock is a step."""

STEP_ALARM_S = 300.0
"""How long the ``clock:step`` alarm stays raised after a step."""

SYNC_CHECK_S = 10.0
"""How often the kernel's synchronisation status is read."""

TEST_CLOCK_STEP_ENV = "EDGECTL_TEST_CLOCK_STEP"

_TIME_ERROR = 5  # adjtimex() return: the clock is not synchronised
_STA_UNSYNC = 0x0040


def zone_offset_s(zone: tzinfo | None = None) -> float:
    """The zone's UTC offset on 1 January 2001 (the system's local zone when None): fixed, so
    a daylight-saving change never moves the shared clock."""
    if zone is None:
        local = datetime(2001, 1, 1, 12).astimezone()  # the system's rules for that date
        offset = local.utcoffset()
    else:
        offset = datetime(2001, 1, 1, 12, tzinfo=zone).utcoffset()
    return 0.0 if offset is None else offset.total_seconds()


def shared_seconds(wall: float, zone_offset: float) -> float:
    """The shared clock of coordination: UTC epoch seconds in the zone's fixed offset (whole
    local days are multiples of 86 400 s)."""
    return wall + zone_offset


class _Timex(ctypes.Structure):
    """``struct timex`` of Linux (LP64: x86-64, arm64)."""

    _fields_ = (
        ("modes", ctypes.c_uint),
        ("offset", ctypes.c_long),
        ("freq", ctypes.c_long),
        ("maxerror", ctypes.c_long),
        ("esterror", ctypes.c_long),
        ("status", ctypes.c_int),
        ("constant", ctypes.c_long),
        ("precision", ctypes.c_long),
        ("tolerance", ctypes.c_long),
        ("time_sec", ctypes.c_long),
        ("time_usec", ctypes.c_long),
        ("tick", ctypes.c_long),
        ("ppsfreq", ctypes.c_long),
        ("jitter", ctypes.c_long),
        ("shift", ctypes.c_int),
        ("stabil", ctypes.c_long),
        ("jitcnt", ctypes.c_long),
        ("calcnt", ctypes.c_long),
        ("errcnt", ctypes.c_long),
        ("stbcnt", ctypes.c_long),
        ("tai", ctypes.c_int),
        ("_reserved", ctypes.c_int * 11),
    )


@dataclass(frozen=True, slots=True)
class KernelSync:
    """What the kernel says of the clock (``adjtimex(2)`` with no modes: a read)."""

    synchronised: bool
    state: int  # adjtimex()'s return: TIME_OK 0 … TIME_ERROR 5
    status: int  # STA_* flags
    max_error_s: float


#: ``adjtimex``-like: fills the structure, returns the clock state (−1 on error).
Adjtimex = Callable[[_Timex], int]


@functools.cache
def _libc_adjtimex() -> Adjtimex | None:
    """libc's ``adjtimex`` (``ntp_adjtime`` elsewhere), looked up once: the process's own
    symbols first (no ``ldconfig`` run in the control loop)."""
    fn = None
    for name in (None, ctypes.util.find_library("c")):
        try:
            libc = ctypes.CDLL(name, use_errno=True)
            fn = getattr(libc, "adjtimex", None) or getattr(libc, "ntp_adjtime", None)
        except OSError:
            continue
        if fn is not None:
            break
    if fn is None:
        return None

    def call(tx: _Timex) -> int:
        return int(fn(ctypes.byref(tx)))

    return call


def kernel_sync(adjtimex: Adjtimex | None = None) -> KernelSync | None:
    """The kernel's synchronisation status; None where it cannot be read (not Linux)."""
    call = adjtimex if adjtimex is not None else _libc_adjtimex()
    if call is None:
        return None
    tx = _Timex()
    tx.modes = 0  # read only: needs no privilege
    state = call(tx)
    if state < 0:
        return None
    synchronised = state != _TIME_ERROR and not (tx.status & _STA_UNSYNC)
    return KernelSync(synchronised, state, int(tx.status), tx.maxerror / 1e6)


class StepDetector:
    """A wall-clock step: the wall clock moved against the monotonic clock between reads."""

    def __init__(self, threshold_s: float = STEP_THRESHOLD_S) -> None:
        self.threshold_s = threshold_s
        self._last: tuple[float, float] | None = None

    def feed(self, mono: float, wall: float) -> float | None:
        """The step (s, signed) since the last read, or None."""
        last, self._last = self._last, (mono, wall)
        if last is None:
            return None
        step = (wall - last[1]) - (mono - last[0])
        return step if abs(step) > self.threshold_s else None


@dataclass(frozen=True, slots=True)
class ClockReading:
    """One tick's reading of both clocks, and the clock's health."""

    mono: float
    wall: float  # UTC seconds since the epoch
    sync_s: float  # the shared clock of coordination
    step_s: float | None  # the wall clock stepped by this since the last read
    synchronised: bool | None  # None: unknown (not read yet, or not readable here)
    alarms: tuple[str, ...]  # clock:unsynchronised, clock:step:<s>


def stepped_wall(
    at_s: float, step_s: float, *, wall: Callable[[], float], monotonic: Callable[[], float]
) -> Callable[[], float]:
    """A wall clock that steps by ``step_s`` ``at_s`` seconds (monotonic) from now."""
    at = monotonic() + at_s

    def read() -> float:
        return wall() + (step_s if monotonic() >= at else 0.0)

    return read


class SharedClock:
    """The daemon's one reading point of the wall and monotonic clocks (see the module)."""

    def __init__(
        self,
        *,
        wall: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
        zone_offset: float | None = None,
        sync_status: Callable[[], KernelSync | None] = kernel_sync,
        step_threshold_s: float = STEP_THRESHOLD_S,
    ) -> None:
        self._wall = wall
        self._monotonic = monotonic
        self.zone_offset = zone_offset_s() if zone_offset is None else zone_offset
        self._sync_status = sync_status
        if sync_status is kernel_sync:
            _libc_adjtimex()  # looked up now, not in the control loop
        self._steps = StepDetector(step_threshold_s)
        self._next_check: float | None = None
        self.synchronised: bool | None = None
        self.last_step: tuple[float, float] | None = None  # (monotonic time, step s)

    def read(self) -> ClockReading:
        mono, wall = self._monotonic(), self._wall()
        step = self._steps.feed(mono, wall)
        if step is not None:
            self.last_step = (mono, step)
        if self._next_check is None or mono >= self._next_check:
            self._next_check = mono + SYNC_CHECK_S
            status = self._sync_status()
            self.synchronised = None if status is None else status.synchronised
        alarms: list[str] = []
        if self.synchronised is False:
            alarms.append("clock:unsynchronised")
        if self.last_step is not None and mono - self.last_step[0] < STEP_ALARM_S:
            alarms.append(f"clock:step:{self.last_step[1]:+.1f}")
        return ClockReading(
            mono=mono,
            wall=wall,
            sync_s=shared_seconds(wall, self.zone_offset),
            step_s=step,
            synchronised=self.synchronised,
            alarms=tuple(alarms),
        )


def from_env(env: dict[str, str] | None = None) -> SharedClock:
    """The system's clocks; with ``EDGECTL_TEST_CLOCK_STEP="AT:STEP"`` (a test hook) the wall
    clock steps by STEP seconds AT seconds after start. ``ValueError`` for a malformed hook."""
    spec = (os.environ if env is None else env).get(TEST_CLOCK_STEP_ENV, "")
    if not spec:
        return SharedClock()
    at, _, step = spec.partition(":")
    wall = stepped_wall(float(at), float(step), wall=time.time, monotonic=time.monotonic)
    return SharedClock(wall=wall)
