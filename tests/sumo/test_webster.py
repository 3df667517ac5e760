"""Webster timing of SUMO's own programs (edgectl.sumo.webster), and the bench's peers on it."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from edgectl.sumo.webster import webster, webster_cycle
from tests.sumo.conftest import needs_sumo


def test_textbook_two_phase_junction() -> None:
    """Two stages, critical flows 540 and 360 veh/h on 1,800 veh/h lanes (y 0.3 and 0.2),
    5 s lost per stage: C0 = (1.5 × 10 + 5) / (1 − 0.5) = 40 s; 30 s of effective green
    shared 3 : 2."""
    assert webster_cycle(10.0, 0.5) == pytest.approx(40.0)
    cycle, greens = webster([540 / 1800, 360 / 1800], 10.0)
    assert cycle == pytest.approx(40.0)
    assert greens == pytest.approx((18.0, 12.0))


def test_cycle_is_clamped_and_survives_oversaturation() -> None:
    # Y = 0.2, L = 8 s: C0 = 17 / 0.8 = 21.25 s, under the 40 s floor
    cycle, greens = webster([0.1, 0.1], 8.0)
    assert cycle == 40.0 and greens == pytest.approx((16.0, 16.0))
    # Y ≥ 1: the formula has no answer; the cycle goes to its ceiling
    assert webster_cycle(12.0, 1.1) == float("inf")
    cycle, greens = webster([0.6, 0.5], 12.0)
    assert cycle == 150.0 and sum(greens) == pytest.approx(138.0)
    # no demand at all: the usable green shared equally
    cycle, greens = webster([0.0, 0.0, 0.0], 15.0)
    assert cycle == 40.0 and greens == pytest.approx((25 / 3,) * 3)


@needs_sumo
def test_timing_follows_the_scenario_demand(scenarios: dict[str, Path]) -> None:
    from edgectl.sumo.network import derive_network
    from edgectl.sumo.webster import timed_models

    cfg = scenarios["tee"]
    net = cfg.with_name("tee.net.xml")
    models = derive_network(str(net))
    timed, timings = timed_models(cfg, net, models)
    (t,) = timings.values()
    (model,) = timed.values()
    # the peak is the middle period (the heaviest), every stage has demand
    assert t.peak == (360.0, 720.0)
    assert all(y > 0 for y in t.ratios) and 0.3 < t.y_total < 0.9
    # greens in proportion to the critical ratios, never under the min green
    for st, g, mx in zip(model.stages, t.greens_s, t.max_greens_s, strict=True):
        assert st.green_s == g >= st.min_green and st.max_green == mx >= g
    heavy = max(range(len(t.ratios)), key=lambda k: t.ratios[k])
    assert t.greens_s[heavy] == max(t.greens_s)
    # clearances untouched
    for a, b in zip(models[t.tls_id].stages, model.stages, strict=True):
        assert (a.yellow, a.red_clear, a.min_green) == (b.yellow, b.red_clear, b.min_green)


def _green_runs(record: Path, groups: frozenset[int]) -> list[float]:
    rows = [
        (float(e.get("time", "0")), e.get("state", ""))
        for e in ET.parse(record).getroot()
        if e.tag == "tlsState"
    ]
    dt = rows[1][0] - rows[0][0]
    runs, run = [], 0
    for _t, state in rows:
        if all(state[i] in "Gg" for i in groups):
            run += 1
        elif run:
            runs.append(run * dt)
            run = 0
    return runs


@needs_sumo
@pytest.mark.parametrize("timing", ["webster", "default"])
def test_sumo_static_peer_runs_the_webster_program(
    scenarios: dict[str, Path], tmp_path: Path, timing: str
) -> None:
    """SUMO's own record of the signal (``SaveTLSStates``): ``sumo:static`` shows Webster's
    greens by default, the network's splits with ``peer_timing="default"``."""
    from edgectl.sumo import run_bench
    from edgectl.sumo.network import derive_network, on_steps
    from edgectl.sumo.webster import timed_models

    cfg = scenarios["tee"]
    net = cfg.with_name("tee.net.xml")
    # the bench times the clearances drivers see: rounded up to whole 1 s steps
    models = {k: on_steps(m, 1.0) for k, m in derive_network(str(net)).items()}
    (model,) = models.values()
    _, timings = timed_models(cfg, net, models)
    (t,) = timings.values()
    record = tmp_path / "states.xml"
    extra = tmp_path / "record.add.xml"
    extra.write_text(
        f'<additional><timedEvent type="SaveTLSStates" source="{model.tls_id}"'
        f' dest="{record}"/></additional>\n'
    )
    loops = cfg.with_name("tee.det.add.xml")
    args = ["--end", "300", "--additional-files", f"{loops},{extra}"]
    r = run_bench(cfg, "sumo:static", seed=1, sumo_args=args, peer_timing=timing)
    assert r.valid, r.invalid_reason
    k = max(range(len(model.stages)), key=lambda i: t.greens_s[i])
    st = model.stages[k]
    only = st.groups - frozenset().union(*(s.groups for s in model.stages if s is not st))
    runs = _green_runs(record, only)[1:-1]  # whole greens only
    expected = t.greens_s[k] if timing == "webster" else st.green_s
    assert runs and all(abs(g - expected) <= 0.5 for g in runs), (runs, expected)
    assert t.greens_s[k] != st.green_s  # the two timings differ here


def test_bench_rejects_an_unknown_peer_timing(tmp_path: Path) -> None:
    from edgectl.sumo import BenchError, run_bench

    with pytest.raises(BenchError, match="peer timing"):
        run_bench(tmp_path / "x.sumocfg", "sumo:static", peer_timing="tuned")


def test_matrix_keeps_the_issue19_section(tmp_path: Path) -> None:
    """``bench.sumo_matrix`` rewrites docs/sumo-bench.md; the baseline section survives."""
    from bench.issue19_baseline import HEADING, kept_section

    doc = tmp_path / "sumo-bench.md"
    assert kept_section(doc) == ""
    doc.write_text(f"# bench\n\n## isolated\n\nrows\n\n{HEADING}\n\n| a |\n\n## later\n\nx\n")
    assert kept_section(doc) == f"\n{HEADING}\n\n| a |\n"
    doc.write_text(f"# bench\n\n{HEADING}\n\ntable\n")
    assert kept_section(doc) == f"\n{HEADING}\n\ntable\n"


def test_demand_comes_from_the_route_files_sumo_loads(tmp_path: Path) -> None:
    from edgectl.sumo.webster import read_flows, scenario_route_files

    cfg = tmp_path / "x.sumocfg"
    cfg.write_text(
        '<configuration><input><net-file value="x.net.xml"/>'
        '<route-files value="a.rou.xml, b.rou.xml"/></input></configuration>'
    )
    assert scenario_route_files(cfg) == [tmp_path / "a.rou.xml", tmp_path / "b.rou.xml"]
    other = tmp_path / "replay.rou.xml"
    assert scenario_route_files(cfg, ["--end", "9", "-r", str(other)]) == [other]
    assert scenario_route_files(cfg, [f"--route-files={other}"]) == [other]
    other.write_text(
        '<routes><flow id="f" begin="0" end="360" period="exp(0.1)" from="a" to="b"/>'
        '<flow id="g" begin="0" end="600" vehsPerHour="120"><route edges="a c"/></flow>'
        '<flow id="h" begin="0" end="100" number="10" from="a" to="c"/>'
        '<vehicle id="v" depart="3"><route edges="a b"/></vehicle></routes>'
    )
    flows = read_flows([other])
    # the three flows, then the single vehicle: one in the first quarter hour
    assert [round(f.vph) for f in flows] == [360, 120, 360, 4]
    assert flows[1].edges == ("a", "c") and flows[0].edges is None
    assert flows[3].edges == ("a", "b") and (flows[3].begin, flows[3].end) == (0.0, 900.0)


@pytest.mark.parametrize(
    ("cfg_text", "routes_text", "message"),
    [
        ('<configuration><input><net-file value="x.net.xml"/', None, "configuration is not well"),
        (None, "<routes><flow id='f' begin='0'", "route file is not well-formed"),
        (None, "<routes><flow id='f' begin='soon' period='2'/></routes>", "flow 'f'"),
        (None, "<routes><flow id='f' period='zero'/></routes>", "flow 'f'"),
        (None, "<routes><flow id='f' end='inf' period='2'/></routes>", "not finite"),
        (None, None, "cannot read the route file"),
    ],
)
def test_a_broken_scenario_file_is_a_bench_error(
    tmp_path: Path, cfg_text: str | None, routes_text: str | None, message: str
) -> None:
    """Not well-formed XML, a flow whose time or rate is not a number, a route file that is
    not there: a :class:`BenchError` naming the file (``edgectl bench sumo`` prints it and
    exits 2), not a traceback."""
    from edgectl.sumo import BenchError
    from edgectl.sumo.webster import read_flows, scenario_route_files

    cfg = tmp_path / "x.sumocfg"
    cfg.write_text(
        cfg_text
        or '<configuration><input><net-file value="x.net.xml"/>'
        '<route-files value="x.rou.xml"/></input></configuration>'
    )
    if routes_text is not None:
        (tmp_path / "x.rou.xml").write_text(routes_text)
    with pytest.raises(BenchError, match=message):
        read_flows(scenario_route_files(cfg))


@pytest.mark.parametrize(
    ("net_text", "message"),
    [
        ('<net><edge id="a"', "net file is not well-formed XML"),
        ("<net></net>", "not a SUMO net"),
        (None, "cannot read the net file"),
    ],
)
def test_a_broken_net_is_a_bench_error(tmp_path: Path, net_text: str | None, message: str) -> None:
    from edgectl.sumo import BenchError
    from edgectl.sumo.network import derive_network

    net = tmp_path / "x.net.xml"
    if net_text is not None:
        net.write_text(net_text)
    with pytest.raises(BenchError, match=message):
        derive_network(str(net))


def test_bench_command_reports_a_broken_configuration(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from edgectl.cli import main

    cfg = tmp_path / "x.sumocfg"
    cfg.write_text('<configuration><input><net-file value="x.net.xml"/>')
    assert main(["bench", "sumo", str(cfg), "--controller", "edgectl:adaptive"]) == 2
    err = capsys.readouterr().err
    assert "x.sumocfg: the configuration is not well-formed XML" in err


def test_single_vehicles_and_trips_are_counted_per_quarter_hour(tmp_path: Path) -> None:
    """Demand written as vehicles (a replayed day, ``randomTrips.py``'s trips) becomes flows:
    per route, the vehicles departing in each 15-minute interval, per hour."""
    from edgectl.sumo.webster import COUNT_INTERVAL_S, read_flows

    assert COUNT_INTERVAL_S == 900.0
    routes = tmp_path / "day.rou.xml"
    vehicles = "".join(f'<vehicle id="n{i}" depart="{10 * i}" route="north"/>' for i in range(90))
    vehicles += "".join(
        f'<vehicle id="e{i}" depart="{900 + 30 * i}"><route edges="e c w"/></vehicle>'
        for i in range(30)
    )
    trips = "".join(f'<trip id="t{i}" depart="{60 * i}" from="s" to="n"/>' for i in range(15))
    routes.write_text(
        '<routes><vType id="car"/><route id="north" edges="s c n"/>'
        f"{vehicles}{trips}"
        '<vehicle id="late" depart="triggered" route="north"/>'  # no time: not counted
        '<trip id="nowhere" depart="5"/>'  # no route: not counted
        '<vehicle id="x1" depart="nan" route="north"/><vehicle id="x2" depart="inf"'
        ' route="north"/><vehicle id="x3" depart="-9" route="north"/>'  # no usable time
        "</routes>"
    )
    got = {(f.edges, f.origin, f.dest, f.begin, f.end): round(f.vph) for f in read_flows([routes])}
    assert got == {
        (("s", "c", "n"), None, None, 0.0, 900.0): 360,  # 90 in the first quarter hour
        (("e", "c", "w"), None, None, 900.0, 1800.0): 120,  # 30 in the second
        (None, "s", "n", 0.0, 900.0): 60,  # 15 trips
    }


@needs_sumo
def test_vehicles_time_the_peers_as_the_same_flows_do(
    scenarios: dict[str, Path], tmp_path: Path
) -> None:
    """The same demand written as flows or as single vehicles gives the same Webster timing
    (before, vehicles were ignored and the peers were timed for nobody)."""
    from edgectl.sumo.network import derive_network
    from edgectl.sumo.webster import timed_models

    cfg = scenarios["tee"]
    net = cfg.with_name("tee.net.xml")
    models = derive_network(str(net))
    (tls,) = models
    # the tee's heaviest period (veh/h) for one quarter hour: main road W-E, the side road S
    rates = {"W>E": 800, "E>W": 600, "W>S": 120, "E>S": 150, "S>E": 250, "S>W": 180}
    edges = {"W": ("W_C", "C_W"), "E": ("E_C", "C_E"), "S": ("S_C", "C_S")}
    flows, vehicles = [], []
    for k, (move, vph) in enumerate(rates.items()):
        a, b = move.split(">")
        route = f"{edges[a][0]} {edges[b][1]}"
        flows.append(
            f'<flow id="f{k}" begin="0" end="900" vehsPerHour="{vph}">'
            f'<route edges="{route}"/></flow>'
        )
        n = vph // 4
        vehicles += [(900.0 * i / n, f'<route edges="{route}"/>', f"v{k}_{i}") for i in range(n)]
    as_flows = tmp_path / "flows.rou.xml"
    as_flows.write_text("<routes>" + "".join(flows) + "</routes>")
    as_vehicles = tmp_path / "vehicles.rou.xml"
    as_vehicles.write_text(
        "<routes>"
        + "".join(
            f'<vehicle id="{i}" depart="{t:.1f}">{r}</vehicle>' for t, r, i in sorted(vehicles)
        )
        + "</routes>"
    )
    _, by_flows = timed_models(cfg, net, models, route_files=[as_flows])
    _, by_vehicles = timed_models(cfg, net, models, sumo_args=["-r", str(as_vehicles)])
    f, v = by_flows[tls], by_vehicles[tls]
    assert f.y_total > 0.3
    assert v.ratios == pytest.approx(f.ratios, abs=0.005)
    assert v.greens_s == f.greens_s and v.max_greens_s == f.max_greens_s


@needs_sumo
def test_route_files_without_demand_are_an_error(
    scenarios: dict[str, Path], tmp_path: Path
) -> None:
    """Timing the peers for nobody would hand back the demand-blind defaults unannounced."""
    from edgectl.sumo import BenchError
    from edgectl.sumo.network import derive_network
    from edgectl.sumo.webster import timed_models

    cfg = scenarios["tee"]
    net = cfg.with_name("tee.net.xml")
    empty = tmp_path / "types.rou.xml"
    empty.write_text('<routes><vType id="car"/></routes>')
    with pytest.raises(BenchError, match="no demand"):
        timed_models(cfg, net, derive_network(str(net)), route_files=[empty])


@needs_sumo
@pytest.mark.parametrize("controller", ["sumo:actuated", "sumo:delay_based"])
def test_sumo_actuated_program_gets_webster_min_and_max(
    scenarios: dict[str, Path], controller: str
) -> None:
    """The actuated and delay_based programs SUMO runs: Webster greens as durations, min
    green, 1.5 × max."""
    from edgectl.sumo._env import load_libsumo
    from edgectl.sumo.controls import PROGRAM_ID, build_controllers
    from edgectl.sumo.network import derive_network
    from edgectl.sumo.runner import _with_loops, sumo_command
    from edgectl.sumo.webster import timed_models

    cfg = scenarios["arterial"]
    net = cfg.with_name("arterial.net.xml")
    ls = load_libsumo()
    ls.start(sumo_command(cfg, 1, ["--end", "10"]))
    try:
        models, timings = timed_models(cfg, net, _with_loops(ls, derive_network(str(net))))
        assert len(timings) == 3
        c = ls.constants
        kind = {
            "sumo:actuated": c.TRAFFICLIGHT_TYPE_ACTUATED,
            "sumo:delay_based": c.TRAFFICLIGHT_TYPE_DELAYBASED,
        }[controller]
        for tls, control in build_controllers(models, controller).items():
            control.start(ls)
            (logic,) = [
                lg for lg in ls.trafficlight.getAllProgramLogics(tls) if lg.programID == PROGRAM_ID
            ]
            assert logic.type == kind
            greens = [ph for ph in logic.phases if ph.minDur != ph.maxDur]
            t = timings[tls]
            assert [ph.duration for ph in greens] == list(t.greens_s)
            assert [ph.maxDur for ph in greens] == list(t.max_greens_s)
            assert [ph.minDur for ph in greens] == [st.min_green for st in models[tls].stages]
            assert all(
                mx >= 1.5 * g - 0.5 for mx, g in zip(t.max_greens_s, t.greens_s, strict=True)
            )
    finally:
        ls.close()


@needs_sumo
@pytest.mark.parametrize("timing", ["webster", "default"])
def test_bench_runs_sumo_delay_based_on_webster_timing(
    scenarios: dict[str, Path], monkeypatch: pytest.MonkeyPatch, timing: str
) -> None:
    """What ``run_bench`` hands SUMO for ``sumo:delay_based``: Webster's greens as initial
    durations, the min green, Webster's max green; the derived program with ``default``."""
    from edgectl.sumo import run_bench
    from edgectl.sumo.controls import PROGRAM_ID, SumoProgram
    from edgectl.sumo.network import derive_network, on_steps
    from edgectl.sumo.webster import timed_models

    cfg = scenarios["tee"]
    net = cfg.with_name("tee.net.xml")
    derived = {k: on_steps(m, 1.0) for k, m in derive_network(str(net)).items()}
    _, timings = timed_models(cfg, net, derived)
    (t,) = timings.values()
    (model,) = derived.values()
    ran: list[tuple[bool, list[tuple[float, float, float]]]] = []
    start = SumoProgram.start

    def recording(self: SumoProgram, ls: object) -> None:
        start(self, ls)  # type: ignore[arg-type]
        tl = ls.trafficlight  # type: ignore[attr-defined]
        (logic,) = [
            lg for lg in tl.getAllProgramLogics(self.model.tls_id) if lg.programID == PROGRAM_ID
        ]
        greens = [(p.duration, p.minDur, p.maxDur) for p in logic.phases if p.minDur != p.maxDur]
        ran.append((logic.type == ls.constants.TRAFFICLIGHT_TYPE_DELAYBASED, greens))  # type: ignore[attr-defined]

    monkeypatch.setattr(SumoProgram, "start", recording)
    r = run_bench(cfg, "sumo:delay_based", seed=1, sumo_args=["--end", "30"], peer_timing=timing)
    assert r.valid, r.invalid_reason
    ((delay_based, greens),) = ran
    assert delay_based
    webster_program = [
        (g, st.min_green, mx)
        for st, g, mx in zip(model.stages, t.greens_s, t.max_greens_s, strict=True)
    ]
    default_program = [(st.green_s, st.min_green, st.max_green) for st in model.stages]
    assert webster_program != default_program  # the two timings differ here
    expected = webster_program if timing == "webster" else default_program
    assert greens == expected


@needs_sumo
def test_webster_command_writes_all_three_programs(
    scenarios: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from edgectl.sumo.webster import main

    out = tmp_path / "programs.add.xml"
    assert main([str(scenarios["arterial"]), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert printed.count("actuated / delay_based min [") == 3  # one line per junction
    logics = ET.parse(out).getroot().findall("tlLogic")
    kinds = sorted({(lg.get("type"), lg.get("programID")) for lg in logics})
    assert kinds == [
        ("actuated", "webster-actuated"),
        ("delay_based", "webster-delay_based"),
        ("static", "webster-static"),
    ]
    assert len(logics) == 9
    for lg in logics:
        phases = lg.findall("phase")
        timed = [ph for ph in phases if ph.get("minDur") is not None]
        if lg.get("type") == "static":
            assert not timed
        else:  # every green stage has min / max, its transitions none
            assert timed and all(
                float(ph.get("minDur", "0"))
                <= float(ph.get("duration", "0"))
                <= float(ph.get("maxDur", "0"))
                for ph in timed
            )
            assert len(timed) < len(phases)
