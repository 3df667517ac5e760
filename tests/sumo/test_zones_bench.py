"""Zone sensors in the SUMO bench: E2 detectors → ZoneReading → the controller's ZoneBank."""

from __future__ import annotations

from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from edgectl.sumo.zones import ZoneDegrade
from tests.sumo.conftest import SKIP_REASON, load_builder, needs_sumo


def test_degradation_spec_parses_and_rejects_nonsense() -> None:
    d = ZoneDegrade.parse("range=80, miss=0.1, dead=1, noise=1.5, speed_noise=0.5, seed=3")
    assert d == ZoneDegrade(range_m=80.0, miss=0.1, dead=1, noise_m=1.5, noise_mps=0.5, seed=3)
    assert d.active and not ZoneDegrade.parse("").active
    assert ZoneDegrade.parse("range=inf").range_m == float("inf")  # no cap
    for bad in ("range=-1", "miss=2", "fog=1", "dead", "dead=-1", "range=nan", "noise=nan"):
        with pytest.raises(ValueError, match="zone degradation"):
            ZoneDegrade.parse(bad)
    # the message names every key, and the key whose value is not a number
    with pytest.raises(ValueError, match="keys range, noise, speed_noise, miss, dropout, dead"):
        ZoneDegrade.parse("fog=1")
    with pytest.raises(ValueError, match="'range=abc': range takes a number"):
        ZoneDegrade.parse("range=abc")
    with pytest.raises(ValueError, match="dead takes an integer"):
        ZoneDegrade.parse("dead=1.5")


@pytest.fixture(scope="module")
def saturated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The saturated four-arm junction: E1 loops and E2 zones on every incoming lane."""
    if SKIP_REASON is not None:
        pytest.skip(SKIP_REASON)
    return Path(load_builder().build("saturated", tmp_path_factory.mktemp("zoned")))


class _Target:
    zones: tuple[Any, ...] = ()


def _start(cfg: Path) -> ModuleType:
    from edgectl.sumo._env import load_libsumo
    from edgectl.sumo.runner import sumo_command

    ls = load_libsumo()
    ls.start(sumo_command(cfg, 1, []))
    return ls


@needs_sumo
def test_every_signalised_lane_has_a_zone_that_reports_what_sumo_sees(saturated: Path) -> None:
    from edgectl.config.model import Mode
    from edgectl.config.validation import validate_config
    from edgectl.sumo.network import derive_network
    from edgectl.sumo.runner import _with_loops
    from edgectl.sumo.zones import HALTING_MPS, ZoneFeed, zones_of

    net = saturated.with_name("saturated.net.xml")
    ls = _start(saturated)
    try:
        models = _with_loops(ls, derive_network(str(net)))
        ((tls, model),) = models.items()
        zones = zones_of(ls, models)[tls]
        lanes = sorted({g.in_lane for g in model.groups})
        assert [z.lane for z in zones] == lanes
        for z in zones:
            assert z.zone.phases == model.lane_phases(z.lane)
            assert z.zone.loops == tuple(
                loop.detector_id for loop in model.loops if loop.lane == z.lane
            )
            assert len(z.zone.loops) == 2 and z.zone.length_m == pytest.approx(150.0)
        config = model.to_config(Mode.ACTUATED).model_copy(
            update={"zones": tuple(z.zone for z in zones)}
        )
        assert not [p for p in validate_config(config) if p.severity == "error"]

        target = _Target()
        feed = ZoneFeed({tls: zones}, {tls: target})
        busiest = 0
        for _ in range(420):  # into the peak: queues on every arm
            ls.simulationStep()
            feed.after_step(ls, ls.simulation.getTime())
            by_id = {r.zone: r for r in target.zones}
            assert set(by_id) == {z.zone.id for z in zones}
            for z in zones:
                r = by_id[z.zone.id]
                assert r.vehicles == ls.lanearea.getLastStepVehicleNumber(z.detector)
                speeds = [
                    ls.vehicle.getSpeed(v) for v in ls.lanearea.getLastStepVehicleIDs(z.detector)
                ]
                assert r.halting == sum(1 for v in speeds if v < HALTING_MPS)
                distances = [d for d, _ in r.objects]
                assert distances == sorted(distances)
                assert all(0.0 <= d <= 150.0 and v >= 0.0 for d, v in r.objects)
                assert 0.0 <= r.queue_m <= 150.0 and r.frame == feed.frame
                halted = [d for d, v in r.objects if v < HALTING_MPS + 0.05]  # rounded
                assert r.queue_m == 0.0 or r.objects[0][0] <= r.queue_m <= max(halted) + 7.5
                if r.objects and r.objects[0][0] < 5.0 and r.objects[0][1] < HALTING_MPS:
                    assert r.queue_m >= r.objects[0][0]  # a vehicle stopped at the line
                busiest = max(busiest, r.halting)
        assert busiest >= 5
    finally:
        ls.close()


@needs_sumo
def test_controller_gets_the_zones_through_its_zone_bank(saturated: Path) -> None:
    """As the daemon: ``Inputs.zones`` each tick, the ZoneBank brings the zones up (healthy
    after its recovery hold-off) and strategies see them in ``view.zones``; a dead zone
    fails ``no_data`` and its lane's loops stand in."""
    from edgectl.sumo.controls import EdgectlJunction, build_controllers
    from edgectl.sumo.network import derive_network
    from edgectl.sumo.runner import _with_loops
    from edgectl.sumo.zones import ZoneFeed, zones_of

    net = saturated.with_name("saturated.net.xml")
    ls = _start(saturated)
    try:
        models = _with_loops(ls, derive_network(str(net)))
        degrade = ZoneDegrade(range_m=80.0, dead=1, seed=2)
        sensors = zones_of(ls, models, degrade=degrade)
        (tls,) = sensors
        assert all(z.zone.length_m == 80.0 for z in sensors[tls])
        controls = build_controllers(
            models,
            "edgectl:actuated",
            dual_ring=True,
            zones={k: [z.zone for z in v] for k, v in sensors.items()},
        )
        junction = controls[tls]
        assert isinstance(junction, EdgectlJunction)
        feed = ZoneFeed(sensors, controls, degrade)
        (dead,) = feed.dead
        dead_zone = next(z.zone for z in sensors[tls] if z.detector == dead)
        junction.start(ls)
        t = ls.simulation.getTime()
        for _ in range(300):
            ls.simulationStep()
            t1 = ls.simulation.getTime()
            junction.advance(ls, t, t1, lambda _loop, _now: False)
            feed.after_step(ls, t1)
            t = t1
        bank = junction.controller.zones
        view = junction.controller.view
        healthy = set(view.zones)
        assert healthy == {z.zone.id for z in sensors[tls]} - {dead_zone.id}
        assert view.zone_failed(dead_zone.id) and bank.fault(dead_zone.id) == "no_data"
        assert view.zone_loops(dead_zone.id) == dead_zone.loops
        assert all(d <= 80.0 for r in view.zones.values() for d, _ in r.objects)
        assert junction.summary()["zones_failed"] == [dead_zone.id]
        assert junction.zone_faults == 1  # the dead zone, once; the others never failed
    finally:
        ls.close()


@needs_sumo
def test_bench_run_feeds_zones_and_a_loop_scenario_runs_without(
    saturated: Path, scenarios: dict[str, Path]
) -> None:
    from edgectl.sumo import run_bench

    r = run_bench(saturated, "edgectl:actuated", seed=1, sumo_args=["--end", "240"])
    (j,) = r.junctions.values()
    assert j["zones"] == 12 and j["zones_failed"] == [] and j["zone_faults"] == 0
    off = run_bench(saturated, "edgectl:actuated", seed=1, sumo_args=["--end", "240"], zones=False)
    assert "zones" not in next(iter(off.junctions.values()))
    tee = run_bench(scenarios["tee"], "edgectl:actuated", seed=1, sumo_args=["--end", "120"])
    assert "zones" not in next(iter(tee.junctions.values()))
    # SUMO's own programs never see the zones
    peer = run_bench(saturated, "sumo:actuated", seed=1, sumo_args=["--end", "120"])
    assert "zones" not in next(iter(peer.junctions.values()))


def test_cli_rejects_a_bad_degradation(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from edgectl.cli import main

    cfg = tmp_path / "x.sumocfg"
    rc = main(
        ["bench", "sumo", str(cfg), "--controller", "edgectl:actuated", "--zone-degrade", "fog=1"]
    )
    assert rc == 2 and "zone degradation" in capsys.readouterr().err


@needs_sumo
def test_cli_runs_degraded_zones(saturated: Path, tmp_path: Path) -> None:
    import json

    from edgectl.cli import main

    out = tmp_path / "r.json"
    args = ["--controller", "edgectl:actuated", "--seed", "2", "--json", str(out)]
    degrade = ["--zone-degrade", "range=80,miss=0.1,dead=1,seed=4"]
    rc = main(["bench", "sumo", str(saturated), *args, *degrade, "--", "--end", "200"])
    assert rc == 0
    (j,) = json.loads(out.read_text())["junctions"].values()
    assert j["zones"] == 12 and len(j["zones_failed"]) == 1


@needs_sumo
def test_builder_puts_a_150m_zone_on_every_signalised_lane(tmp_path: Path) -> None:
    import xml.etree.ElementTree as ET

    import sumolib

    cfg = load_builder().build("tee", tmp_path, zones=True)
    assert "tee.zones.add.xml" in cfg.read_text()
    net = sumolib.net.readNet(str(cfg.with_name("tee.net.xml")), withPrograms=True)
    (tls,) = net.getTrafficLights()
    lanes = {c[0].getID(): c[0].getLength() for c in tls.getConnections()}
    dets = {
        e.get("lane"): (float(e.get("pos", "0")), float(e.get("endPos", "0")))
        for e in ET.parse(cfg.with_name("tee.zones.add.xml")).getroot()
    }
    assert set(dets) == set(lanes)
    for lane, (start, end) in dets.items():
        assert end == pytest.approx(lanes[lane], abs=0.01)
        assert end - start == pytest.approx(min(150.0, lanes[lane]), abs=0.01)
