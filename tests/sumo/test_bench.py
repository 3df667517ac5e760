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


def _shown(states: Path) -> tuple[float, list[tuple[float, str]]]:
    """SUMO's own record of what the drivers saw: (step length, [(time, state), …])."""
    import xml.etree.ElementTree as ET

    rows = [
        (float(e.get("time", "0")), e.get("state", ""))
        for e in ET.parse(states).getroot()
        if e.tag == "tlsState"
    ]
    assert len(rows) > 100
    return rows[1][0] - rows[0][0], rows


def _recording(tmp_path: Path, cfg: Path, scenario: str, tls_id: str) -> tuple[Path, list[str]]:
    """SUMO arguments for a 400 s run that records every step's signal state of ``tls_id``
    (``SaveTLSStates``) next to the scenario's loops; and where the record goes."""
    record = tmp_path / "states.xml"
    extra = tmp_path / "record.add.xml"
    extra.write_text(
        f'<additional><timedEvent type="SaveTLSStates" source="{tls_id}"'
        f' dest="{record}"/></additional>\n'
    )
    loops = cfg.with_name(f"{scenario}.det.add.xml")
    return record, ["--end", "400", "--additional-files", f"{loops},{extra}"]


@pytest.mark.parametrize(
    ("scenario", "controller", "step"),
    [
        ("tee", "edgectl:adaptive", None),
        ("isolated_light", "edgectl:actuated", None),
        ("isolated_light", "sumo:actuated", None),
        ("isolated_light", "edgectl:adaptive", "0.5"),
        ("isolated_light", "sumo:actuated", "0.5"),
    ],
)
def test_drivers_see_every_yellow_and_red_clearance_in_full(
    scenarios: dict[str, Path], tmp_path: Path, scenario: str, controller: str, step: str | None
) -> None:
    """SUMO shows a state for whole steps; a 3.3 s yellow must not be shown for 3 steps of
    1 s (the scenarios' step) nor 6 of 0.5 s (``--step-length`` after ``--``). Checked on
    SUMO's own per-step record of the signal (``SaveTLSStates``)."""
    from edgectl.sumo import run_bench
    from edgectl.sumo.network import derive_network

    cfg = scenarios[scenario]
    (model,) = derive_network(str(cfg.with_name(f"{scenario}.net.xml"))).values()
    record, args = _recording(tmp_path, cfg, scenario, model.tls_id)
    if step is not None:
        args += ["--step-length", step]
    r = run_bench(cfg, controller, seed=2, sumo_args=args)
    assert r.valid, r.invalid_reason

    dt, rows = _shown(record)
    assert dt == pytest.approx(float(step or "1"))

    def configured(i: int, what: str) -> float:
        return min(float(getattr(s, what)) for s in model.stages if i in s.groups)

    yellows = 0
    for i in range(model.n_links):
        if not any(i in s.groups for s in model.stages):
            continue
        run = 0
        for k, (t, state) in enumerate(rows):
            if state[i] == "y":
                run += 1
                continue
            if run:
                yellows += 1
                assert run * dt >= configured(i, "yellow") - 1e-6, (i, t)
                # every conflicting movement stays red for the red clearance after it
                ends = t
                for t2, later in rows[k:]:
                    if t2 - ends >= configured(i, "red_clear") - 1e-6:
                        break
                    greens = [j for j, c in enumerate(later) if c in "Gg"]
                    assert not [j for j in greens if (i, j) in model.conflicts], (i, t2, later)
            run = 0
    assert yellows > 10


@pytest.mark.parametrize("controller", ["edgectl:adaptive", "sumo:actuated"])
def test_protected_permissive_lefts_turn_in_gaps_and_are_protected_too(
    scenarios: dict[str, Path], tmp_path: Path, controller: str
) -> None:
    """``permissive_lefts``: netconvert's program lets a protected left also turn on ``g``
    in the through stage. Both SUMO's program and edgectl's dual ring (a flashing yellow
    arrow) then show each left both ways, permissive only while the opposing through is
    green. Checked on SUMO's own per-step record of the signal."""
    from edgectl.sumo import run_bench
    from edgectl.sumo.model import OPPOSING
    from edgectl.sumo.network import derive_network

    scenario = "isolated_light"
    cfg = scenarios[scenario]
    (model,) = derive_network(
        str(cfg.with_name(f"{scenario}.net.xml")), permissive_lefts=True
    ).values()
    arrows = model.arrows()
    assert model.dual_ring is not None and len(arrows) == 4  # every left, each to its through
    record, args = _recording(tmp_path, cfg, scenario, model.tls_id)
    r = run_bench(cfg, controller, seed=2, sumo_args=args, permissive_lefts=True)
    assert r.valid, r.invalid_reason
    _, rows = _shown(record)
    for left, opposing in arrows.items():
        (phase,) = [p for p, gs in model.dual_ring.phases.items() if left in gs]
        assert OPPOSING[phase] == opposing
        through = model.dual_ring.phases[opposing]
        shown = [state[left] for _, state in rows]
        assert "g" in shown and "G" in shown, (left, set(shown))
        if controller.startswith("sumo"):
            continue  # netconvert's program holds the g into the protected left stage
        for _, state in rows:
            if state[left] == "g":  # the arrow: only beside the opposing through's green
                assert all(state[i] == "G" for i in through), (left, state)
