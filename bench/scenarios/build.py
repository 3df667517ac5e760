"""Build the SUMO bench scenarios from plain node/edge/connection files with netconvert.

    python -m bench.scenarios.build [NAME ...]

For every scenario this writes ``bench/scenarios/<name>/generated/``: the plain
``.nod.xml/.edg.xml/.con.xml`` files, the network (``netconvert``), the demand (flows with
time-varying, asymmetric rates and Poisson arrivals, so the SUMO seed matters), E1 induction
loops at the stop bar and ~40 m upstream on every incoming lane of every signalised junction,
and the ``.sumocfg``. Nothing is hand-edited; the whole directory is regenerated.

The geometry is described by a few tables below (junctions, arms, lanes, demand), so a new
scenario "built the same way" is a few lines.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from xml.sax.saxutils import quoteattr

HERE = Path(__file__).resolve().parent
SPEED = 13.89  # 50 km/h
ADVANCE_M = 40.0
STOP_BAR_SETBACK_M = 3.0  # a point loop inside the first stopped vehicle
# SUMO shows a signal state for whole steps: at 1 s a 3.3 s ITE yellow is shown for 4 s
# (0.7 s of lost time at every change, which no real cabinet has); at 0.5 s for 3.5 s
STEP_S = 0.5


def sumo_binary(name: str) -> str:
    from edgectl.sumo import sumo_home

    return str(sumo_home() / "bin" / name)


@dataclass
class Layout:
    """Nodes (id → x, y, signalised?), bidirectional roads and per-road lane counts."""

    nodes: dict[str, tuple[float, float, bool]] = field(default_factory=dict)
    roads: list[tuple[str, str, int, int]] = field(default_factory=list)  # a, b, lanes a→b, b→a


@dataclass
class Flow:
    origin: str  # edge id
    dest: str  # edge id
    periods: list[tuple[float, float, float]]  # (begin, end, veh/h)


def _arm_connections(layout: Layout) -> list[str]:
    """Explicit lane-to-movement connections at every signalised node.

    Incoming edge with n lanes: lane 0 right + through, lanes 1..n-2 through, lane n-1 a
    dedicated (protected) left. With 2 lanes: lane 0 right + through, lane 1 left.
    """
    import math

    lines: list[str] = []
    lanes_of: dict[str, int] = {}
    for a, b, ab, ba in layout.roads:
        lanes_of[f"{a}_{b}"] = ab
        lanes_of[f"{b}_{a}"] = ba
    for node, (x, y, signalised) in layout.nodes.items():
        if not signalised:
            continue
        incoming = [e for e in lanes_of if e.endswith(f"_{node}")]
        outgoing = [e for e in lanes_of if e.startswith(f"{node}_")]
        for ein in incoming:
            src = ein.split("_")[0]
            sx, sy, _ = layout.nodes[src]
            heading = math.atan2(y - sy, x - sx)
            moves: dict[str, str] = {}
            for eout in outgoing:
                dst = eout.split("_")[1]
                if dst == src:
                    continue
                dx, dy, _ = layout.nodes[dst]
                turn = math.atan2(dy - y, dx - x) - heading
                turn = (turn + math.pi) % (2 * math.pi) - math.pi
                kind = "through" if abs(turn) < 0.5 else ("left" if turn > 0 else "right")
                moves[kind] = eout
            n = lanes_of[ein]
            for kind, eout in moves.items():
                m = lanes_of[eout]
                if kind == "right":
                    pairs = [(0, 0)]
                elif kind == "left":
                    pairs = [(n - 1, m - 1)]
                else:
                    through_lanes = list(range(max(1, n - 1)))
                    pairs = [(fl, min(i, m - 1)) for i, fl in enumerate(through_lanes)]
                for fl, tl in pairs:
                    lines.append(
                        f'    <connection from="{ein}" to="{eout}" fromLane="{fl}" toLane="{tl}"/>'
                    )
    return lines


def write_plain(out: Path, name: str, layout: Layout) -> None:
    nod = ["<nodes>"]
    for nid, (x, y, sig) in layout.nodes.items():
        kind = "traffic_light" if sig else "priority"
        nod.append(f'    <node id="{nid}" x="{x:.1f}" y="{y:.1f}" type="{kind}"/>')
    nod.append("</nodes>")
    edg = ["<edges>"]
    for a, b, ab, ba in layout.roads:
        for s, d, n in ((a, b, ab), (b, a, ba)):
            edg.append(
                f'    <edge id="{s}_{d}" from="{s}" to="{d}" numLanes="{n}" speed="{SPEED}"/>'
            )
    edg.append("</edges>")
    con = ["<connections>", *_arm_connections(layout), "</connections>"]
    (out / f"{name}.nod.xml").write_text("\n".join(nod) + "\n")
    (out / f"{name}.edg.xml").write_text("\n".join(edg) + "\n")
    (out / f"{name}.con.xml").write_text("\n".join(con) + "\n")


def netconvert(out: Path, name: str) -> Path:
    net = out / f"{name}.net.xml"
    subprocess.run(
        [
            sumo_binary("netconvert"),
            "--node-files",
            str(out / f"{name}.nod.xml"),
            "--edge-files",
            str(out / f"{name}.edg.xml"),
            "--connection-files",
            str(out / f"{name}.con.xml"),
            "--no-turnarounds",
            "true",
            "--tls.default-type",
            "static",
            "--junctions.corner-detail",
            "0",
            "--output-file",
            str(net),
            "--no-warnings",
            "true",
        ],
        check=True,
    )
    return net


def write_routes(out: Path, name: str, flows: list[Flow]) -> None:
    lines = [
        "<routes>",
        '    <vType id="car" length="5.0" minGap="2.5" accel="2.6" decel="4.5" sigma="0.5"'
        ' maxSpeed="16.7"/>',
    ]
    rows = []
    for f in flows:
        for i, (begin, end, vph) in enumerate(f.periods):
            if vph <= 0:
                continue
            rows.append((begin, f"{f.origin}_{f.dest}_{i}", f, end, vph))
    for begin, fid, f, end, vph in sorted(rows, key=lambda r: (r[0], r[1])):
        lines.append(
            f'    <flow id="{fid}" type="car" begin="{begin:.0f}" end="{end:.0f}"'
            f' period="exp({vph / 3600.0:.6f})" from="{f.origin}" to="{f.dest}"'
            ' departLane="best" departSpeed="max"/>'
        )
    lines.append("</routes>")
    (out / f"{name}.rou.xml").write_text("\n".join(lines) + "\n")


def write_loops(out: Path, name: str, net_path: Path) -> None:
    """E1 loops at the stop bar and ~40 m upstream on every incoming lane of every tls."""
    import sumolib

    net = sumolib.net.readNet(str(net_path), withPrograms=True)
    lines = ["<additional>"]
    for tls in net.getTrafficLights():
        lanes = sorted({conn[0].getID() for conn in tls.getConnections()})
        for lane_id in lanes:
            lane = net.getLane(lane_id)
            length = lane.getLength()
            sb = max(0.1, length - STOP_BAR_SETBACK_M)
            lines.append(
                f"    <inductionLoop id={quoteattr(f'{lane_id}_sb')} lane={quoteattr(lane_id)}"
                f' pos="{sb:.2f}" period="60" file="NUL"/>'
            )
            if length > ADVANCE_M + 5:
                lines.append(
                    f"    <inductionLoop id={quoteattr(f'{lane_id}_adv')}"
                    f' lane={quoteattr(lane_id)} pos="{length - ADVANCE_M:.2f}" period="60"'
                    ' file="NUL"/>'
                )
    lines.append("</additional>")
    (out / f"{name}.det.add.xml").write_text("\n".join(lines) + "\n")


def write_cfg(out: Path, name: str) -> None:
    (out / f"{name}.sumocfg").write_text(
        f"""<configuration>
    <input>
        <net-file value="{name}.net.xml"/>
        <route-files value="{name}.rou.xml"/>
        <additional-files value="{name}.det.add.xml"/>
    </input>
    <time>
        <step-length value="{STEP_S}"/>
    </time>
    <processing>
        <time-to-teleport value="300"/>
    </processing>
    <report>
        <no-step-log value="true"/>
        <no-warnings value="true"/>
        <duration-log.disable value="true"/>
    </report>
</configuration>
"""
    )


# ---------------------------------------------------------------- scenarios


def _cross(arm_m: float, roads: list[tuple[str, str, int, int]]) -> Layout:
    """A signalised junction C with arms N, S, E, W ``arm_m`` long."""
    return Layout(
        nodes={
            "C": (0.0, 0.0, True),
            "N": (0.0, arm_m, False),
            "S": (0.0, -arm_m, False),
            "E": (arm_m, 0.0, False),
            "W": (-arm_m, 0.0, False),
        },
        roads=roads,
    )


def _four_arm(flows_vph: dict[str, list[float]], period_s: float) -> tuple[Layout, list[Flow]]:
    # main street east-west: 3 lanes in (right+through, through, left); side street 2
    roads = [("W", "C", 3, 2), ("C", "E", 2, 3), ("N", "C", 2, 2), ("C", "S", 2, 2)]
    return _cross(400.0, roads), _flows_through_c(flows_vph, period_s)


def isolated() -> tuple[Layout, list[Flow]]:
    """Isolated four-arm junction, protected lefts, morning tide then evening tide."""
    # veh/h per movement over three 6-minute periods (0-6, 6-12, 12-18 min)
    return _four_arm(
        {
            "W>E": [650, 950, 450],
            "E>W": [350, 450, 800],
            "W>N": [120, 200, 80],
            "E>S": [80, 100, 180],
            "W>S": [80, 100, 60],
            "E>N": [60, 60, 100],
            "N>S": [220, 320, 180],
            "S>N": [160, 200, 300],
            "N>E": [100, 160, 60],
            "S>W": [60, 80, 140],
            "N>W": [60, 80, 60],
            "S>E": [60, 60, 80],
        },
        360.0,
    )


def isolated_light() -> tuple[Layout, list[Flow]]:
    """The same junction at off-peak: light, unbalanced demand (a side street nearly empty)."""
    return _four_arm(
        {
            "W>E": [300, 420, 250],
            "E>W": [250, 300, 380],
            "W>N": [50, 90, 40],
            "E>S": [40, 50, 90],
            "W>S": [40, 40, 40],
            "E>N": [30, 30, 50],
            "N>S": [60, 140, 60],
            "S>N": [40, 50, 80],
            "N>E": [20, 60, 20],
            "S>W": [20, 30, 50],
            "N>W": [20, 30, 20],
            "S>E": [20, 20, 30],
        },
        360.0,
    )


def arterial() -> tuple[Layout, list[Flow]]:
    """Three signalised junctions 300 m apart on an east-west arterial with side streets."""
    xs = [0.0, 300.0, 600.0]
    nodes: dict[str, tuple[float, float, bool]] = {
        "W": (-400.0, 0.0, False),
        "E": (1000.0, 0.0, False),
    }
    roads: list[tuple[str, str, int, int]] = []
    for i, x in enumerate(xs, start=1):
        nodes[f"J{i}"] = (x, 0.0, True)
        nodes[f"N{i}"] = (x, 300.0, False)
        nodes[f"S{i}"] = (x, -300.0, False)
        roads.append((f"N{i}", f"J{i}", 2, 2))
        roads.append((f"J{i}", f"S{i}", 2, 2))
    roads += [("W", "J1", 3, 3), ("J1", "J2", 3, 3), ("J2", "J3", 3, 3), ("J3", "E", 3, 3)]
    layout = Layout(nodes=nodes, roads=roads)
    p = 360.0
    flows = [
        Flow("W_J1", "J3_E", [(i * p, (i + 1) * p, r) for i, r in enumerate([600, 850, 450])]),
        Flow("E_J3", "J1_W", [(i * p, (i + 1) * p, r) for i, r in enumerate([350, 450, 700])]),
    ]
    for i in (1, 2, 3):
        side = {
            f"N{i}_J{i}": ([150, 220, 120], f"J{i}_S{i}"),
            f"S{i}_J{i}": ([120, 150, 200], f"J{i}_N{i}"),
        }
        for origin, (rates, through) in side.items():
            flows.append(Flow(origin, through, _periods(rates, p)))
            flows.append(
                Flow(
                    origin,
                    "J3_E" if origin.startswith("N") else "J1_W",
                    _periods([r * 0.4 for r in rates], p),
                )
            )
            flows.append(
                Flow(
                    origin,
                    "J1_W" if origin.startswith("N") else "J3_E",
                    _periods([r * 0.3 for r in rates], p),
                )
            )
        # main-street turns into the side streets at every junction
        flows.append(Flow("W_J1", f"J{i}_N{i}", _periods([60, 90, 40], p)))
        flows.append(Flow("W_J1", f"J{i}_S{i}", _periods([40, 50, 40], p)))
        flows.append(Flow("E_J3", f"J{i}_S{i}", _periods([40, 60, 80], p)))
        flows.append(Flow("E_J3", f"J{i}_N{i}", _periods([30, 40, 60], p)))
    return layout, flows


def narrow() -> tuple[Layout, list[Flow]]:
    """A four-arm junction of two-lane roads: one lane in per approach, lefts share it with
    the through and right (permissive in SUMO's program); demand peaks north-south."""
    layout = _cross(350.0, [("W", "C", 1, 1), ("C", "E", 1, 1), ("N", "C", 1, 1), ("C", "S", 1, 1)])
    p = 360.0
    rates = {
        "N>S": [300, 420, 250],
        "S>N": [250, 300, 380],
        "W>E": [200, 260, 200],
        "E>W": [180, 220, 260],
        "N>E": [40, 60, 40],
        "S>W": [40, 40, 60],
        "W>S": [30, 40, 30],
        "E>N": [30, 30, 50],
        "N>W": [50, 60, 50],
        "S>E": [40, 50, 60],
        "W>N": [40, 40, 30],
        "E>S": [30, 40, 40],
    }
    return layout, _flows_through_c(rates, p)


def tee() -> tuple[Layout, list[Flow]]:
    """A T junction: a two-lane main road east-west, a side road from the south with a
    shared lane and a left lane; the side road's demand peaks later than the main road's."""
    layout = Layout(
        nodes={
            "C": (0.0, 0.0, True),
            "S": (0.0, -400.0, False),
            "E": (400.0, 0.0, False),
            "W": (-400.0, 0.0, False),
        },
        roads=[("W", "C", 3, 2), ("C", "E", 2, 3), ("S", "C", 2, 2)],
    )
    p = 360.0
    rates = {
        "W>E": [700, 800, 500],
        "E>W": [400, 600, 700],
        "W>S": [150, 120, 80],
        "E>S": [80, 150, 200],
        "S>E": [150, 250, 300],
        "S>W": [120, 180, 250],
    }
    return layout, _flows_through_c(rates, p)


def wide() -> tuple[Layout, list[Flow]]:
    """A four-arm junction of two major roads, three lanes in on every arm (two through, one
    left); demand heavy and close to balanced, the tides crossing (added after the adaptive
    strategy was tuned: a check on a junction it was not tuned on)."""
    roads = [("W", "C", 3, 3), ("C", "E", 3, 3), ("N", "C", 3, 3), ("C", "S", 3, 3)]
    rates = {
        "W>E": [500, 800, 600],
        "E>W": [600, 700, 400],
        "N>S": [400, 650, 500],
        "S>N": [450, 500, 700],
        "W>N": [150, 180, 120],
        "E>S": [100, 150, 200],
        "N>E": [120, 200, 100],
        "S>W": [100, 120, 180],
        "W>S": [80, 80, 80],
        "E>N": [60, 80, 80],
        "N>W": [80, 80, 60],
        "S>E": [60, 60, 80],
    }
    return _cross(500.0, roads), _flows_through_c(rates, 400.0)


def skewed_tee() -> tuple[Layout, list[Flow]]:
    """A skewed T: the side road comes in from the north at an angle with one lane out, the
    main road bends slightly; main and side road peak at different times (added after
    tuning, like ``wide``)."""
    layout = Layout(
        nodes={
            "C": (0.0, 0.0, True),
            "N": (60.0, 350.0, False),
            "E": (400.0, -30.0, False),
            "W": (-400.0, 0.0, False),
        },
        roads=[("W", "C", 2, 2), ("C", "E", 2, 2), ("N", "C", 2, 1)],
    )
    rates = {
        "W>E": [500, 700, 400],
        "E>W": [400, 500, 700],
        "W>N": [100, 150, 200],
        "E>N": [150, 200, 100],
        "N>E": [200, 300, 150],
        "N>W": [150, 200, 250],
    }
    return layout, _flows_through_c(rates, 360.0)


def pair() -> tuple[Layout, list[Flow]]:
    """Two signalised junctions A and B 250 m apart on two-lane roads, through traffic on
    both streets and turns that cross both junctions (added after tuning, like ``wide``)."""
    nodes: dict[str, tuple[float, float, bool]] = {
        "A": (0.0, 0.0, True),
        "B": (250.0, 0.0, True),
        "W": (-300.0, 0.0, False),
        "E": (550.0, 0.0, False),
        "NA": (0.0, 300.0, False),
        "SA": (0.0, -300.0, False),
        "NB": (250.0, 300.0, False),
        "SB": (250.0, -300.0, False),
    }
    roads = [
        ("W", "A", 2, 2),
        ("A", "B", 2, 2),
        ("B", "E", 2, 2),
        ("NA", "A", 2, 2),
        ("A", "SA", 2, 2),
        ("NB", "B", 2, 2),
        ("B", "SB", 2, 2),
    ]
    p = 360.0
    od = {
        ("W_A", "B_E"): [600, 800, 500],
        ("E_B", "A_W"): [500, 600, 700],
        ("NA_A", "A_SA"): [250, 300, 200],
        ("SA_A", "A_NA"): [200, 250, 300],
        ("NB_B", "B_SB"): [200, 300, 250],
        ("SB_B", "B_NB"): [250, 200, 300],
        ("W_A", "A_NA"): [80, 100, 60],
        ("E_B", "B_SB"): [80, 100, 120],
        ("NA_A", "B_E"): [80, 120, 80],
        ("SB_B", "A_W"): [80, 100, 120],
        ("W_A", "B_NB"): [60, 80, 60],
        ("E_B", "A_SA"): [60, 60, 80],
    }
    flows = [Flow(o, d, _periods(r, p)) for (o, d), r in od.items()]
    return Layout(nodes=nodes, roads=roads), flows


def _flows_through_c(rates: Mapping[str, Sequence[float]], period_s: float) -> list[Flow]:
    """Flows ``"O>D"`` from arm O into junction C and out to arm D, per period."""
    flows = []
    for key, r in rates.items():
        o, d = key.split(">")
        flows.append(Flow(f"{o}_C", f"C_{d}", _periods(r, period_s)))
    return flows


def _periods(rates: Sequence[float], p: float) -> list[tuple[float, float, float]]:
    return [(i * p, (i + 1) * p, r) for i, r in enumerate(rates)]


SCENARIOS = {
    "isolated": isolated,
    "isolated_light": isolated_light,
    "arterial": arterial,
    "tee": tee,
    "narrow": narrow,
    "wide": wide,
    "skewed_tee": skewed_tee,
    "pair": pair,
}


def build(name: str, root: Path = HERE) -> Path:
    """Build scenario ``name`` under ``root/<name>/generated``; returns its ``.sumocfg``."""
    out = root / name / "generated"
    out.mkdir(parents=True, exist_ok=True)
    layout, flows = SCENARIOS[name]()
    write_plain(out, name, layout)
    net = netconvert(out, name)
    write_routes(out, name, flows)
    write_loops(out, name, net)
    write_cfg(out, name)
    return out / f"{name}.sumocfg"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", metavar="NAME", help=f"any of {', '.join(SCENARIOS)}")
    args = parser.parse_args(argv)
    for name in args.names or list(SCENARIOS):
        if name not in SCENARIOS:
            parser.error(f"unknown scenario {name!r}")
        print(build(name))
    return 0


if __name__ == "__main__":
    sys.exit(main())
