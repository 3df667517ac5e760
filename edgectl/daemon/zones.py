"""Zone sensor measurements for the controller, from the devices' reports. Pure.

Every tick the control loop takes, from each device whose latest good read is at most
:data:`ZONE_MAX_AGE_S` old, the zones it decoded (:class:`~edgectl.cabinet.zones.ZoneFrame`)
and hands the configured ones to the controller as
:class:`~edgectl.control.types.ZoneReading` (``Inputs.zones``; the object list cut to the
zone's ``max_objects``). A zone whose counter reads 0 (the sensor has no measurement) and a
zone of a silent device are left out: the controller's diagnostics
(:mod:`edgectl.control.zones`) fail it as ``no_data`` once that lasts ``no_data_s``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from edgectl.cabinet.zones import NO_MEASUREMENT
from edgectl.config.model import Zone
from edgectl.control.types import ZoneReading
from edgectl.field.report import DeviceReport

__all__ = ["ZONE_MAX_AGE_S", "zone_readings"]

ZONE_MAX_AGE_S = 0.5  # an older read is no measurement of this tick


def zone_readings(
    zones: Sequence[Zone], reports: Iterable[DeviceReport], *, now: float, t: float
) -> tuple[ZoneReading, ...]:
    """The configured zones' measurements in the reports (``now``: the daemon's monotonic
    clock, as the reports' ``last_ok``; ``t``: the controller time of the tick)."""
    if not zones:
        return ()
    wanted = {z.id: z for z in zones}
    out: dict[int, ZoneReading] = {}
    for report in reports:
        snap = report.snapshot
        if snap is None or not snap.zones or report.last_ok is None:
            continue
        if now - report.last_ok > ZONE_MAX_AGE_S:
            continue
        for f in snap.zones:
            cfg = wanted.get(f.zone)
            if cfg is None or f.frame == NO_MEASUREMENT:
                continue
            out[f.zone] = ZoneReading(
                zone=f.zone,
                frame=f.frame,
                vehicles=f.vehicles,
                halting=f.halting,
                queue_m=f.queue_m,
                mean_speed_mps=f.speed_mps,
                objects=f.objects[: cfg.max_objects],
                t=t,
            )
    return tuple(out[z] for z in sorted(out))
