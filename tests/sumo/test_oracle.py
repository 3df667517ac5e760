"""The clairvoyant estimate (``bench.sumo_oracle``): the demand it replays, the rules it keeps."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from tests.sumo.conftest import needs_sumo

pytestmark = [pytest.mark.sumo, needs_sumo]


def test_the_explicit_demand_is_the_seed_s_own(scenarios: dict[str, Path], tmp_path: Path) -> None:
    from bench.oracle import explicit_routes
    from edgectl.sumo import run_bench

    cfg = scenarios["tee"]
    routes = explicit_routes(cfg, 4, tmp_path)
    root = ET.parse(routes).getroot()
    departs = [float(v.get("depart", "nan")) for v in root.findall("vehicle")]
    assert departs == sorted(departs)  # SUMO drops vehicles of an unsorted file
    assert [t.get("id") for t in root.findall("vType")] == ["car"]
    flows = run_bench(cfg, "sumo:static", seed=4)
    replayed = run_bench(cfg, "sumo:static", seed=4, sumo_args=["--route-files", str(routes)])
    assert len(departs) == flows.loaded == replayed.loaded == replayed.arrived


def _assert_signal_rules(cfg: Path, signal_states: tuple[tuple[float, str], ...]) -> None:
    from edgectl.sumo.network import derive_network

    (model,) = derive_network(str(next(cfg.parent.glob("*.net.xml")))).values()
    greens = {model.state_for(st.groups, permissive=st.permissive): st for st in model.stages}
    step = signal_states[1][0] - signal_states[0][0]
    # intervals: runs of one state string
    runs: list[tuple[str, float]] = []
    for _t, state in signal_states:
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
    for _t, state in signal_states:
        ways = [k for k, c in enumerate(state) if c == "G"]
        assert not [(a, b) for a in ways for b in ways if (a, b) in model.conflicts], state


def test_the_clairvoyant_controller_keeps_the_signal_rules(scenarios: dict[str, Path]) -> None:
    from bench.oracle import run_oracle

    cfg = scenarios["tee"]
    r = run_oracle(cfg, 2, until_s=240.0, horizon_s=20.0, near_m=(40.0,), record=True)
    assert r.vehicles > 50
    assert r.switches >= 3
    assert 0.0 < r.time_loss_s < 120.0
    _assert_signal_rules(cfg, r.signal_states)


def test_loop_sensing_plans_on_drawn_futures_and_keeps_them_out_of_the_real_one(
    scenarios: dict[str, Path], tmp_path: Path
) -> None:
    from bench.oracle import OracleResult, explicit_routes, run_oracle

    cfg = scenarios["tee"]
    routes = explicit_routes(cfg, 2, tmp_path)

    def run(sensing: str) -> OracleResult:
        return run_oracle(
            cfg,
            2,
            routes=routes,
            until_s=240.0,
            horizon_s=20.0,
            near_m=(40.0,),
            sensing=sensing,
            samples=2,
            record=True,
        )

    seeing, looped = run("all"), run("loops")
    assert (seeing.sensing, looped.sensing) == ("all", "loops")
    # the real timeline holds the seed's vehicles only: none of the drawn ones leaked in
    assert looped.vehicles == seeing.vehicles > 50
    assert looped.switches >= 3
    _assert_signal_rules(cfg, looped.signal_states)
    # it planned on other futures than the real one
    assert looped.signal_states != seeing.signal_states
    with pytest.raises(ValueError, match="sensing"):
        run("cameras")


def test_loop_sensing_hides_what_no_loop_saw(scenarios: dict[str, Path], tmp_path: Path) -> None:
    from bench.oracle import _demand, _Rollout, _sumo, _zones, explicit_routes
    from edgectl.sumo._env import load_libsumo
    from edgectl.sumo.network import derive_network, on_steps

    cfg = scenarios["tee"]
    routes = explicit_routes(cfg, 3, tmp_path)
    (model,) = derive_network(str(next(cfg.parent.glob("*.net.xml")))).values()
    ls = load_libsumo()
    ls.start([*_sumo(cfg, 3), "--route-files", str(routes), "--route-steps", "0"])
    try:
        model = on_steps(model, float(ls.simulation.getDeltaT()))
        demand = _demand(routes)
        zones = _zones(ls)
        assert set(zones) == {g.in_lane for g in model.groups}
        assert all(35.0 < z < 45.0 for z in zones.values())  # the ~40 m advance loops
        assert set(_zones(ls, 120.0).values()) == {120.0}  # as if the loops lay farther up
        o = _Rollout(
            ls, model, horizon_s=30.0, near_m=(40.0,), demand=demand, zone_m=zones, samples=1
        )
        # all red for a while: queues stand on every approach, others still move up
        ls.trafficlight.setRedYellowGreenState(model.tls_id, "r" * model.n_links)
        while ls.simulation.getTime() < 150.0:
            ls.simulationStep()
        t = float(ls.simulation.getTime())
        seen = {}
        for v in ls.vehicle.getIDList():
            lane = ls.vehicle.getLaneID(v)
            far = float(ls.lane.getLength(lane)) - float(ls.vehicle.getLanePosition(v))
            seen[v] = (lane, far, float(ls.vehicle.getSpeed(v)))
        o._hide(t)
        kept = set(ls.vehicle.getIDList())
        assert kept < set(seen)
        for v, (lane, far, speed) in seen.items():
            assert lane in zones, (v, lane)  # all red since the start: all on approaches
            if v in kept:  # within the loops' zone, or standing in the queue behind it
                assert far <= zones[lane] or speed < 2.0, (v, far, speed)
            else:  # moving beyond the loops' zone
                assert far > zones[lane], (v, far, speed)
        # vehicles departing within the horizon were taken out before they could enter
        entered: set[str] = set()
        for _ in range(int(30.0 / float(ls.simulation.getDeltaT()))):
            ls.simulationStep()
            entered |= set(ls.simulation.getDepartedIDList())
        due = {trip.id for trip in demand if t < trip.depart <= t + 29.0}
        assert due and not (entered & due)
        # a drawn future is the recent demand: about as many vehicles as really came
        rates = o._rates(t)
        drawn = [len([d for d in o._draw(rates, t) if d[3] is None]) for _ in range(200)]
        recent = sum(1 for trip in demand if t - 150.0 < trip.depart <= t)
        expected = recent / 150.0 * 30.0
        assert abs(sum(drawn) / len(drawn) - expected) < 0.15 * expected + 0.5
    finally:
        ls.close()


def test_it_runs_stages_of_one_junction_only(scenarios: dict[str, Path]) -> None:
    from bench.oracle import run_oracle

    with pytest.raises(ValueError, match="one junction"):
        run_oracle(scenarios["arterial"], 1)
    with pytest.raises(ValueError, match="dual ring"):
        run_oracle(scenarios["isolated_light"], 1)
