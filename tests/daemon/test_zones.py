"""The daemon's side of zone sensors: which measurements of the devices' reports reach the
controller (``edgectl.daemon.zones``), and that a zone device is read but never waited for
nor taken for a detector device."""

from __future__ import annotations

from pathlib import Path
from types import MappingProxyType

from edgectl.cabinet.registers import CabinetSnapshot
from edgectl.cabinet.zones import ZoneFrame
from edgectl.config.loader import load_config
from edgectl.daemon.loop import Daemon
from edgectl.daemon.zones import ZONE_MAX_AGE_S, zone_readings
from edgectl.field.buses import FieldBuses
from edgectl.field.mapped import open_devices
from edgectl.field.report import DeviceReport, Health

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "edgectl" / "examples" / "io_modules_zones.toml"


def _snap(*zones: ZoneFrame) -> CabinetSnapshot:
    return CabinetSnapshot(
        t=0.0,
        presence=frozenset(),
        ped_buttons=frozenset(),
        readback=MappingProxyType({}),
        mmu_tripped=False,
        cabinet_flash=False,
        in_control=True,
        mmu_fault=0,
        mmu_fault_channels=frozenset(),
        heartbeat_echo=0,
        counts=(),
        uptime_s=0,
        power_cycles=0,
        zones=zones,
    )


OBJECTS = tuple((float(d), 0.0) for d in range(0, 70, 7))  # ten objects


def _report(last_ok: float, *zones: ZoneFrame) -> DeviceReport:
    return DeviceReport(
        device="cabinet-zones", health=Health.ONLINE, snapshot=_snap(*zones), last_ok=last_ok
    )


def test_fresh_measurements_of_configured_zones_reach_the_controller() -> None:
    config = load_config(EXAMPLE)
    report = _report(
        10.0,
        ZoneFrame(2, 17, 10, 10, 35.5, 0.0, OBJECTS),
        ZoneFrame(4, 0),  # no measurement: left out
        ZoneFrame(6, 3, 1, 0, 0.0, 13.9, ((42.0, 13.9),)),
        ZoneFrame(9, 5, 1, 1, 4.5, 0.0, ((0.0, 0.0),)),  # not configured: left out
    )
    readings = zone_readings(config.zones, [report], now=10.2, t=3.4)
    assert [r.zone for r in readings] == [2, 6]
    first = readings[0]
    assert (first.frame, first.vehicles, first.halting, first.queue_m) == (17, 10, 10, 35.5)
    assert first.objects == OBJECTS[:8]  # max_objects = 8
    assert first.t == 3.4
    assert readings[1].mean_speed_mps == 13.9
    # a read older than ZONE_MAX_AGE_S is no measurement of this tick
    assert zone_readings(config.zones, [report], now=10.0 + ZONE_MAX_AGE_S + 0.01, t=3.4) == ()
    # without zones configured nothing is passed on
    assert zone_readings((), [report], now=10.2, t=3.4) == ()


def test_a_zone_device_is_read_but_not_waited_for() -> None:
    config = load_config(EXAMPLE)
    spec = config.field.devices[0].model_copy(update={"url": "memory://cab"})
    devices = open_devices([spec], buses=FieldBuses())
    daemon = Daemon(config, devices=devices)
    assert [d.name for d in daemon.devices] == ["cabinet-detectors", "cabinet", "cabinet-zones"]
    assert [d.name for d in daemon.readers] == ["cabinet-detectors", "cabinet"]
    assert [d.name for d in daemon.writers] == ["cabinet"]
    assert daemon.supervisor.readers == ("cabinet-detectors", "cabinet")


def test_zones_in_the_state_message_and_the_metrics() -> None:
    from edgectl.control.controller import Controller
    from edgectl.control.types import Inputs, ZoneReading
    from edgectl.daemon.publish import state_payload
    from edgectl.ops.metrics import Metrics

    config = load_config(EXAMPLE)
    ctl = Controller(config)
    out = None
    for n in range(80):  # zones 2 and 4 answer; 6 and 8 never do
        readings = tuple(
            ZoneReading(zone=z, frame=n + 1, vehicles=2, halting=1, queue_m=4.5, mean_speed_mps=7.0)
            for z in (2, 4)
        )
        out = ctl.step(n / 10, Inputs(zones=readings))
    assert out is not None
    zones = state_payload(out, {})["zones"]
    assert zones == {
        "2": {
            "health": "ok",
            "fault": None,
            "vehicles": 2,
            "halting": 1,
            "queue_m": 4.5,
            "mean_speed_mps": 7.0,
        },
        "4": {
            "health": "ok",
            "fault": None,
            "vehicles": 2,
            "halting": 1,
            "queue_m": 4.5,
            "mean_speed_mps": 7.0,
        },
        "6": {
            "health": "failed",
            "fault": "no_data",
            "vehicles": None,
            "halting": None,
            "queue_m": None,
            "mean_speed_mps": None,
        },
        "8": {
            "health": "failed",
            "fault": "no_data",
            "vehicles": None,
            "halting": None,
            "queue_m": None,
            "mean_speed_mps": None,
        },
    }
    metrics = Metrics()
    for z in out.zones:
        metrics.set_zone_fault(z.id, z.fault if z.failed else None)
        metrics.set_zone_fault(z.id, z.fault if z.failed else None)  # counted once
    text = metrics.render().decode()
    assert 'edgectl_zone_faulted{zone="6"} 1.0' in text
    assert 'edgectl_zone_faulted{zone="2"} 0.0' in text
    assert 'edgectl_zone_faults_total{fault="no_data",zone="8"} 1.0' in text


async def test_zone_reads_wait_for_an_idle_line() -> None:
    """The zone device is told to read only once the other devices are done with the tick
    (within the budget), at most every ``field.zone_poll_s``; otherwise the read is left for
    a later tick."""
    config = load_config(EXAMPLE)
    spec = config.field.devices[0].model_copy(update={"url": "memory://cab2"})
    devices = open_devices([spec], buses=FieldBuses())
    daemon = Daemon(config, devices=devices)
    (zones,) = daemon.zone_devices
    cabinet = next(d for d in devices if d.name == "cabinet")
    cabinet.health = Health.ONLINE  # (an offline device holds nothing on the line)
    cabinet._idle.clear()  # busy: reading or writing this tick
    await daemon._read_zones(0.02)
    assert daemon.zone_reads_skipped == 1 and zones._ticks == 0
    cabinet._idle.set()
    await daemon._read_zones(0.02)
    assert daemon.zone_reads_skipped == 1 and zones._ticks == 1
    await daemon._read_zones(0.02)  # within zone_poll_s of the last read: not yet
    assert zones._ticks == 1
    daemon._zone_read_at -= config.field.zone_poll_s
    await daemon._read_zones(0.0)  # no time left in the tick
    assert daemon.zone_reads_skipped == 2 and zones._ticks == 1
