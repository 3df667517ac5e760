"""Zone sensors (camera / radar) on the wire: what one zone's registers mean. Pure.

A zone is the stretch of one lane group from the stop line to ``length_m`` upstream, as a
video detection processor or a tracking radar reports it. edgectl's *zone unit* map (no
product we found publishes a Modbus register map for this, see ``docs/field.md``) gives each
zone N these input registers (FC4; holding registers work too), each one 16-bit word:

======================  =========================================================
``zone.N.frame``        measurement counter: +1 on every new measurement, 1..65535
                        then 1 again; **0 = the sensor has no measurement** (video
                        lost, radar blind). Not advancing = the sensor is stuck
``zone.N.vehicles``     vehicles in the zone now
``zone.N.halting``      of them, those standing (speed under 0.5 m/s)
``zone.N.queue``        queue length from the stop line, **decimetres** (0.1 m)
``zone.N.speed``        mean speed of the vehicles in the zone, **0.1 m/s** (0 when
                        the zone is empty)
``zone.N.objects``      a run of ``1 + 2 × objects`` registers: the number of
                        objects reported, then per object its distance to the stop
                        line (0.1 m) and its speed (0.1 m/s), nearest first; no
                        identities. Objects past the count read 0
======================  =========================================================

:class:`ZoneFrame` is one zone's decoded registers in metres and metres per second.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "DISTANCE_SCALE_M",
    "HALTING_SPEED_MPS",
    "MAX_ZONES",
    "NO_MEASUREMENT",
    "SPEED_SCALE_MPS",
    "ZONE_FIELDS",
    "ZoneFrame",
    "decode_distance",
    "decode_speed",
    "encode_distance",
    "encode_speed",
    "next_frame",
]

MAX_ZONES = 32
DISTANCE_SCALE_M = 0.1  # queue and object distances: decimetres
SPEED_SCALE_MPS = 0.1  # mean and object speeds: 0.1 m/s
HALTING_SPEED_MPS = 0.5  # a vehicle slower than this is halting
NO_MEASUREMENT = 0  # zone.N.frame = 0: the sensor has no measurement
ZONE_FIELDS = ("frame", "vehicles", "halting", "queue", "speed", "objects")


def encode_distance(metres: float) -> int:
    return max(0, min(0xFFFF, round(metres / DISTANCE_SCALE_M)))


def encode_speed(mps: float) -> int:
    return max(0, min(0xFFFF, round(mps / SPEED_SCALE_MPS)))


def decode_distance(word: int) -> float:
    return round(word * DISTANCE_SCALE_M, 1)


def decode_speed(word: int) -> float:
    return round(word * SPEED_SCALE_MPS, 1)


def next_frame(frame: int) -> int:
    """The counter after ``frame``: 1..65535, then 1 (0 is 'no measurement')."""
    return frame % 0xFFFF + 1


@dataclass(frozen=True, slots=True)
class ZoneFrame:
    """One zone's registers, decoded (or what an emulated sensor serves)."""

    zone: int
    frame: int  # the measurement counter; 0: no measurement
    vehicles: int = 0
    halting: int = 0
    queue_m: float = 0.0
    speed_mps: float = 0.0
    objects: tuple[tuple[float, float], ...] = ()  # (distance to the stop line m, speed m/s)
