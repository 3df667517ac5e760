"""Short bench runs of every controller family, and arguments after ``--`` reach SUMO."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from edgectl.cli import main
from tests.sumo.conftest import needs_sumo

pytestmark = [pytest.mark.sumo, needs_sumo]


@pytest.mark.parametrize(
    "controller",
    [
        "edgectl:fixed",
        "edgectl:actuated",
        "edgectl:maxpressure",
        "edgectl:adaptive",
        "sumo:static",
        "sumo:actuated",
        "sumo:delay_based",
    ],
)
def test_short_run_has_no_teleport(scenarios: dict[str, Path], controller: str) -> None:
    from edgectl.sumo import run_bench

    r = run_bench(scenarios["isolated_light"], controller, seed=3, sumo_args=["--end", "300"])
    assert r.valid, r.invalid_reason
    assert r.teleports == 0
    assert r.sim_end_s == pytest.approx(300.0)
    assert r.arrived > 30
    assert 0.0 < r.time_loss_s < 120.0
    assert r.worst_approach is not None


@pytest.mark.parametrize("controller", ["edgectl:actuated", "edgectl:adaptive"])
def test_a_junction_with_shared_overlaps_runs(scenarios: dict[str, Path], controller: str) -> None:
    """The T junction's stages share movements (overlaps with different parents green
    together); the conflict monitor once took that for a conflict and flashed for good."""
    from edgectl.sumo import run_bench

    r = run_bench(scenarios["tee"], controller, seed=1, sumo_args=["--end", "240"])
    assert r.valid, r.invalid_reason
    assert r.arrived > 50
    assert r.time_loss_s < 60.0


@pytest.mark.parametrize("controller", ["edgectl:adaptive", "sumo:actuated"])
def test_permissive_lefts_keep_a_single_lane_junction_moving(
    scenarios: dict[str, Path], controller: str
) -> None:
    from edgectl.sumo import run_bench

    r = run_bench(scenarios["narrow"], controller, seed=1, sumo_args=["--end", "300"])
    assert r.valid, r.invalid_reason
    assert r.arrived > 50
    assert r.time_loss_s < 40.0  # protected-only stages: over 100 s within these 5 minutes


def test_runs_until_the_network_is_empty(scenarios: dict[str, Path]) -> None:
    from edgectl.sumo import run_bench

    r = run_bench(scenarios["isolated_light"], "edgectl:adaptive", seed=1)
    assert r.valid and r.all_arrived
    assert r.arrived == r.loaded > 200
    assert r.sim_end_s > 1080.0  # demand ends at 18 min; then the network drains


def test_cli_passes_sumo_args_and_writes_json(scenarios: dict[str, Path], tmp_path: Path) -> None:
    trips = tmp_path / "trips.xml"
    out = tmp_path / "result.json"
    rc = main(
        [
            "bench",
            "sumo",
            str(scenarios["isolated_light"]),
            "--controller",
            "edgectl:actuated",
            "--seed",
            "2",
            "--json",
            str(out),
            "--",
            "--tripinfo-output",
            str(trips),
            "--end",
            "240",
        ]
    )
    assert rc == 0
    doc = json.loads(out.read_text())
    assert doc["controller"] == "edgectl:actuated" and doc["valid"] is True
    for key in (
        "time_loss_s",
        "waiting_s",
        "duration_s",
        "depart_delay_s",
        "arrived",
        "teleports",
        "wall_s",
        "worst_approach_delay_s",
        "stops",
    ):
        assert key in doc
    text = trips.read_text()
    assert text.count("<tripinfo ") == doc["arrived"]


def test_cli_rejects_unknown_scenario(tmp_path: Path) -> None:
    rc = main(["bench", "sumo", str(tmp_path / "nope.sumocfg"), "--controller", "sumo:static"])
    assert rc == 2
