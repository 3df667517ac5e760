"""The bench's priority feed on the corridor (five signalised junctions): emergency vehicles'
green waves and buses' check-ins from their GPS positions, and ``--no-priority``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from edgectl.cli import main
from tests.sumo.conftest import SKIP_REASON, load_builder, needs_sumo

pytestmark = [pytest.mark.sumo, needs_sumo]

SHORT = ["--end", "400"]  # the first emergency vehicle (150 s) crosses all five junctions


@pytest.fixture(scope="module")
def corridor(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if SKIP_REASON is not None:
        pytest.skip(SKIP_REASON)
    cfg: Path = load_builder().build("corridor", tmp_path_factory.mktemp("priority"))
    return cfg


def test_the_corridor_is_built_with_emergency_vehicles_and_buses(corridor: Path) -> None:
    from edgectl.sumo.network import derive_network

    models = derive_network(str(corridor.with_name("corridor.net.xml")))
    assert len(models) == 5 and all(m.dual_ring is not None for m in models.values())
    routes = corridor.with_name("corridor.rou.xml").read_text()
    assert 'vClass="emergency"' in routes and 'vClass="bus"' in routes
    assert "bluelight" not in routes  # they obey the signals: only priority helps them
    assert routes.count('type="ambulance"') == 6 and routes.count('type="bus"') == 2


def test_an_emergency_vehicle_meets_green_at_every_junction(corridor: Path) -> None:
    from edgectl.sumo import run_bench

    r = run_bench(corridor, "edgectl:actuated", seed=1, sumo_args=SHORT)
    assert r.valid, r.invalid_reason
    assert r.teleports == 0
    assert set(r.time_loss_by_class_s) == {"emergency", "bus", "other"}
    for cls in ("emergency", "bus", "other"):
        figures = r.classes[cls]
        assert figures["arrived"] >= 1
        assert {"time_loss_s", "waiting_s", "duration_s"} <= set(figures)
    feed = r.priority
    assert feed["enabled"] and feed["tsp"]
    # the wave asked every junction of the route and checked the vehicle out at each
    assert feed["sent"] == 5 and feed["cancels"] == 5
    assert feed["refused"] == 0 and feed["honoured"] == 5
    ev = feed["classes"]["emergency"]
    assert ev["vehicles"] == 1 and ev["crossings"] == 5
    # SUMO's own record: its link was green at the last step before each stop line, green
    # for a while already (the queue flushed), and the vehicle never stood still
    assert ev["green_at_stop_line"] == 5
    assert ev["halted"] == 0
    assert ev["mean_green_lead_s"] >= 5.0
    assert r.time_loss_by_class_s["emergency"] < 15.0
    assert feed["tsp_checkins"] >= 5 and feed["tsp_checkouts"] == feed["tsp_checkins"]


def test_no_priority_sends_nothing_and_measures_the_same_vehicles(corridor: Path) -> None:
    from edgectl.sumo import run_bench

    r = run_bench(corridor, "edgectl:actuated", seed=1, sumo_args=SHORT, priority=False)
    assert r.valid, r.invalid_reason
    feed = r.priority
    assert not feed["enabled"]
    for key in ("sent", "updates", "cancels", "tsp_checkins", "tsp_updates", "tsp_checkouts"):
        assert feed[key] == 0, key
    assert feed["classes"]["emergency"]["crossings"] == 5
    assert set(r.time_loss_by_class_s) == {"emergency", "bus", "other"}
    for c in r.junctions.values():
        assert c["controller"] == "edgectl:actuated"


def test_sumo_own_programs_take_no_requests(corridor: Path) -> None:
    from edgectl.sumo import run_bench

    # at 1 s steps the Webster-timed program halts the first emergency vehicle at all five
    # junctions: it arrives after 400 s
    r = run_bench(corridor, "sumo:actuated", seed=1, sumo_args=["--end", "500"])
    assert r.valid, r.invalid_reason
    assert not r.priority["enabled"] and r.priority["sent"] == 0
    assert r.priority["classes"]["emergency"]["crossings"] >= 5  # the first one's five
    assert "emergency" in r.time_loss_by_class_s


def test_cli_no_priority_writes_per_class_json(corridor: Path, tmp_path: Path) -> None:
    out = tmp_path / "result.json"
    args = ["bench", "sumo", str(corridor), "--controller", "edgectl:actuated", "--seed", "2"]
    rc = main([*args, "--no-priority", "--json", str(out), "--", *SHORT])
    assert rc == 0
    doc = json.loads(out.read_text())
    assert set(doc["time_loss_by_class_s"]) == {"emergency", "bus", "other"}
    assert doc["priority"]["sent"] == 0 and doc["teleports"] == 0


def test_movements_map_to_the_phase_serving_them_and_its_companion(corridor: Path) -> None:
    from edgectl.sumo.network import derive_network
    from edgectl.sumo.priority import dwell_phases, movement_phase

    models = derive_network(str(corridor.with_name("corridor.net.xml")))
    m = models["J3"]
    assert m.dual_ring is not None

    def links(e_in: str, e_out: str) -> tuple[int, ...]:
        return tuple(
            g.index
            for g in m.groups
            if g.in_lane.rsplit("_", 1)[0] == e_in and g.out_lane.rsplit("_", 1)[0] == e_out
        )

    east = movement_phase(m, links("J2_J3", "J3_J4"))
    west = movement_phase(m, links("J4_J3", "J3_J2"))
    left = movement_phase(m, links("J2_J3", "J3_N3"))
    assert east is not None and west is not None and left is not None
    assert {east, west} in ({2, 6}, {4, 8})  # the main street's two throughs
    assert left in (1, 3, 5, 7)
    assert dwell_phases(m, east) == (east, west)  # the opposing through keeps moving
    assert dwell_phases(m, east, companion=False) == (east,)
    (left_companion,) = set(dwell_phases(m, left)) - {left}
    assert left_companion == east  # a left dwells with its own approach's through
    assert movement_phase(m, links("J2_J3", "J3_S3")) == east  # the right turn: the through
