"""The clairvoyant estimate (bench/sumo_oracle.py): the demand it replays and the rules it keeps."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from tests.sumo.conftest import needs_sumo

pytestmark = [pytest.mark.sumo, needs_sumo]


def test_the_explicit_demand_is_the_seed_s_own(scenarios: dict[str, Path], tmp_path: Path) -> None:
    from edgectl.sumo import run_bench
    from edgectl.sumo.oracle import explicit_routes

    cfg = scenarios["tee"]
    routes = explicit_routes(cfg, 4, tmp_path)
    root = ET.parse(routes).getroot()
    departs = [float(v.get("depart", "nan")) for v in root.findall("vehicle")]
    assert departs == sorted(departs)  # SUMO drops vehicles of an unsorted file
    assert [t.get("id") for t in root.findall("vType")] == ["car"]
    flows = run_bench(cfg, "sumo:static", seed=4)
    replayed = run_bench(cfg, "sumo:static", seed=4, sumo_args=["--route-files", str(routes)])
    assert len(departs) == flows.loaded == replayed.loaded == replayed.arrived


def test_the_clairvoyant_controller_keeps_the_signal_rules(scenarios: dict[str, Path]) -> None:
    from edgectl.sumo.network import derive_network
    from edgectl.sumo.oracle import run_oracle

    cfg = scenarios["tee"]
    r = run_oracle(cfg, 2, until_s=240.0, horizon_s=20.0, near_m=(40.0,), record=True)
    assert r.vehicles > 50
    assert r.switches >= 3
    assert 0.0 < r.time_loss_s < 120.0
    (model,) = derive_network(str(next(cfg.parent.glob("*.net.xml")))).values()
    greens = {model.state_for(st.groups, permissive=st.permissive): st for st in model.stages}
    step = r.signal_states[1][0] - r.signal_states[0][0]
    # intervals: runs of one state string
    runs: list[tuple[str, float]] = []
    for _t, state in r.signal_states:
        if runs and runs[-1][0] == state:
            runs[-1] = (state, runs[-1][1] + step)
        else:
            runs.append((state, step))
    for i, (state, length) in enumerate(runs[:-1]):  # the last one is cut by until_s
        if state in greens:
            assert length >= greens[state].min_green - 1e-6, (i, state, length)
            assert length <= greens[state].max_green + step + 1e-6, (i, state, length)
        # every link that loses its green shows yellow first, for the stage's whole yellow
        nxt = runs[i + 1][0]
        for k, (a, b) in enumerate(zip(state, nxt, strict=True)):
            if a in "Gg" and b not in "Gg":
                assert b == "y", (i, k, state, nxt)
            if a == "y" and b != "y":
                st = next(s for s in greens.values() if k in s.groups and s.groups)
                assert length >= st.yellow - 1e-6 or b in "Gg", (i, k, length)
    # no two conflicting movements with right of way at once
    for _t, state in r.signal_states:
        ways = [k for k, c in enumerate(state) if c == "G"]
        assert not [(a, b) for a in ways for b in ways if (a, b) in model.conflicts], state


def test_it_runs_stages_of_one_junction_only(scenarios: dict[str, Path]) -> None:
    from edgectl.sumo.oracle import run_oracle

    with pytest.raises(ValueError, match="one junction"):
        run_oracle(scenarios["arterial"], 1)
    with pytest.raises(ValueError, match="dual ring"):
        run_oracle(scenarios["isolated_light"], 1)
