"""firmware_sim's zone sensors: measured from the traffic model (a queue grows on red and
leaves on green), with range, noise, misses and faults; served by unit 6 of
builtin:io-modules-zones and read by the daemon's own field device over the real wire."""

from __future__ import annotations

import asyncio
import math

import pytest

from edgectl.cabinet.channels import ChannelState
from edgectl.cabinet.fieldcheck import load_field_profile
from edgectl.cabinet.planner import FieldPlan
from edgectl.cabinet.profile import CabinetZone, Movement
from edgectl.cabinet.zones import ZoneFrame
from edgectl.config.settings import Device
from edgectl.field.buses import FieldBuses
from edgectl.field.mapped import MappedDevice, open_devices
from firmware_sim import Emulator
from firmware_sim.cli import main
from firmware_sim.traffic import TrafficModel
from firmware_sim.zones import ZoneSensors, ZoneSettings, parse_zone_fault

from .conftest import LISTEN

P2 = Movement(id="p2", channel=2, lanes=2, rate_vph=900.0, speed_kmh=50.0)
ZONE = CabinetZone(id=2, movement="p2", length_m=150.0)
RED = {2: ChannelState.R}
GREEN = {2: ChannelState.G}


def _sensors(
    settings: ZoneSettings | None = None, faults: tuple[str, ...] = (), seed: int = 1
) -> tuple[TrafficModel, ZoneSensors]:
    settings = settings or ZoneSettings()
    traffic = TrafficModel([P2], seed=seed)
    sensors = ZoneSensors(
        [ZONE],
        [P2],
        traffic,
        settings=settings,
        faults=[parse_zone_fault(f) for f in faults],
        seed=seed,
    )
    return traffic, sensors


def _run(
    traffic: TrafficModel,
    sensors: ZoneSensors,
    start: float,
    seconds: float,
    signals: dict[int, ChannelState],
) -> list[ZoneFrame]:
    out = []
    t = start
    for _ in range(round(seconds * 10)):
        traffic.step(t, 0.1, signals)
        t = round(t + 0.1, 1)
        out.append(sensors.frames(t)[0])
    return out


def test_the_queue_grows_on_red_and_leaves_on_green() -> None:
    traffic, sensors = _sensors()
    red = _run(traffic, sensors, 0.0, 90.0, RED)
    queues = [f.queue_m for f in red]
    assert queues[-1] > 30.0, queues[-1]  # 900 veh/h on two lanes, 90 s of red
    assert all(b >= a for a, b in zip(queues[::50], queues[50::50], strict=False))
    last = red[-1]
    # what the zone reports is what the model holds: every queued vehicle halting, and
    # those arriving at the back of the standing queue too (the model's queue is a point)
    assert last.halting >= traffic.queue_length("p2", 90.0)
    assert last.halting <= traffic.queue_length("p2", 90.0) + 6
    assert last.vehicles == traffic.on_approach("p2")
    assert last.queue_m == pytest.approx(
        (math.ceil(last.halting / 2) - 1) * 7.0 + 4.5, abs=0.11
    )  # 2 lanes, jam spacing 7 m, plus a vehicle length
    assert list(last.objects) == sorted(last.objects)  # nearest first
    assert all(0.0 <= d <= 150.0 for d, _ in last.objects)
    green = _run(traffic, sensors, 90.0, 60.0, GREEN)
    assert green[-1].halting < last.halting / 4
    assert green[-1].queue_m < last.queue_m / 4
    # each measurement has its own number
    frames = [f.frame for f in red + green]
    assert frames == sorted(frames) and len(set(frames)) == len(frames)


def test_range_noise_and_misses() -> None:
    traffic, exact = _sensors()
    _run(traffic, exact, 0.0, 60.0, RED)
    truth = exact.frames(60.0)[0]
    # a shorter range sees only the nearer vehicles
    traffic, near = _sensors(ZoneSettings(range_m=20.0))
    seen = _run(traffic, near, 0.0, 60.0, RED)[-1]
    assert seen.vehicles < truth.vehicles
    assert all(d <= 20.0 for d, _ in seen.objects)
    # misses: fewer vehicles on average, never more than there are
    traffic, missing = _sensors(ZoneSettings(miss=0.5))
    counts = [f.vehicles for f in _run(traffic, missing, 0.0, 60.0, RED)[-100:]]
    assert max(counts) <= truth.vehicles + 2 and sum(counts) / len(counts) < truth.vehicles * 0.8
    # noise moves distances and speeds, deterministically per seed
    traffic, noisy = _sensors(ZoneSettings(noise=1.0))
    a = _run(traffic, noisy, 0.0, 60.0, RED)[-1]
    traffic, noisy_again = _sensors(ZoneSettings(noise=1.0))
    assert _run(traffic, noisy_again, 0.0, 60.0, RED)[-1] == a
    assert [d for d, _ in a.objects] != [d for d, _ in truth.objects]
    assert all(v >= 0.0 for _, v in a.objects)


def test_dead_and_stuck_zones() -> None:
    traffic, sensors = _sensors(faults=("zone_dead:2@10+5", "zone_stuck:2@20+5"))
    frames = _run(traffic, sensors, 0.0, 30.0, RED)
    at = {round((i + 1) * 0.1, 1): f for i, f in enumerate(frames)}
    assert at[12.0] == ZoneFrame(zone=2, frame=0)  # no measurement
    assert at[16.0].frame > 0
    assert at[22.0] == at[20.0] == at[24.9]  # the last measurement, counter included
    assert at[25.5].frame > at[24.9].frame


def test_zone_fault_grammar() -> None:
    assert str(parse_zone_fault("zone_dead:6@20+10")) == "zone_dead:6@20+10"
    assert str(parse_zone_fault("zone_stuck:2")) == "zone_stuck:2@0"
    for bad in ("zone_dead:0", "zone_dead:33", "zone_late:2", "zone_stuck:x"):
        with pytest.raises(ValueError, match="zone"):
            parse_zone_fault(bad)
    with pytest.raises(ValueError, match="no zone 3"):
        _sensors(faults=("zone_dead:3",))
    for bad_settings in ({"range_m": 0.0}, {"noise": -1.0}, {"miss": 1.5}):
        with pytest.raises(ValueError, match="zone"):
            ZoneSettings(**bad_settings)


def test_the_cli_refuses_bad_zone_options(capsys: pytest.CaptureFixture[str]) -> None:
    for argv in (["--zone-miss", "2"], ["--fault", "zone_dead:99"]):
        with pytest.raises(SystemExit) as exc:
            main(argv)
        assert exc.value.code == 2
        assert "zone" in capsys.readouterr().err


@pytest.mark.parametrize("transport", ["tcp", "pty"])
async def test_the_zone_unit_over_the_wire(transport: str) -> None:
    """The daemon's zone device (unit 6, served as ``cabinet-zones``) reads what the
    emulated sensors measure, zone by zone."""
    async with Emulator(
        "builtin:io-modules-zones",
        listen=LISTEN[transport],
        clock="virtual",
        seed=4,
        faults=["zone_dead:8"],
    ) as emu:
        await emu.advance(40.0)  # start-up flash: queues build at the FR stop
        spec = Device(name="cabinet", url=emu.url, profile="builtin:io-modules-zones", timeout=0.3)
        devices = open_devices([spec], buses=FieldBuses())
        assert [d.name for d in devices] == ["cabinet-detectors", "cabinet", "cabinet-zones"]
        zones = devices[2]
        assert isinstance(zones, MappedDevice) and zones.zone_sensor
        assert not any(d.zone_sensor for d in devices[:2])
        async with asyncio.TaskGroup() as tg:
            task = tg.create_task(zones.run(), name="edgectl[poll:cabinet-zones]")
            try:
                async with asyncio.timeout(5):
                    while True:
                        report = await zones.wait_report(zones.tick())
                        if report.read_ok:
                            break
                        await asyncio.sleep(0.02)
            finally:
                task.cancel()
        assert report.inputs is not None
        assert emu.zones is not None
        truth = emu.zones.frames(emu.model.now)
        assert report.inputs.zones == truth
        assert [z.zone for z in truth] == [2, 4, 6, 8]
        assert truth[3] == ZoneFrame(zone=8, frame=0)
        assert sum(z.vehicles for z in truth) > 0
        assert (
            zones.plan.reads
            == FieldPlan(load_field_profile("builtin:io-modules-zones"), only=("zones",)).reads
        )  # one FC4 request for the four zones
        assert len(zones.plan.reads) == 1
        summary = emu.summary()
        assert summary["zones"]["faults"] == ["zone_dead:8@0"]
        assert [d["unit"] for d in summary["devices"]] == [1, 2, 3, 4, 5, 6]
