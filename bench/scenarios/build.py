"""Build the SUMO bench scenarios from plain node/edge/connection files with netconvert.

    python -m bench.scenarios.build [NAME ...]

For every scenario this writes ``bench/scenarios/<name>/generated/``: the plain
``.nod.xml/.edg.xml/.con.xml`` files, the network (``netconvert``), the demand (flows with
time-varying, asymmetric rates and Poisson arrivals, so the SUMO seed matters), E1 induction
loops at the stop bar and ~40 m upstream on every incoming lane of every signalised junction,
and the ``.sumocfg``; SUMO runs every scenario at 1 s steps (:data:`STEP_S`; the
controllers sub-step inside). The zone scenarios (``ZONE_SCENARIOS``, issue 19) also get E2
lane-area detectors from the stop line to 150 m upstream on those lanes (the bench's zone
sensors, :mod:`edgectl.sumo.zones`). The priority scenarios
(``PRIORITY_SCENARIOS``, issue 22: ``corridor``, ``grid``) also get emergency vehicles and
scheduled buses (:class:`Fleet`), their bus stops (``.stops.add.xml``) and the priority
vehicles alone (``.fleet.rou.xml``, the reference of ``bench/priority_bench.py``). Nothing is
hand-edited; the whole directory is regenerated.

The geometry is described by a few tables below (junctions, arms, lanes, demand), so a new
scenario "built the same way" is a few lines.
"""

from __future__ import annotations

import argparse
import itertools
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
# SUMO's step length in every scenario (issue 19): the controllers sub-step at 0.1 s inside
# each step. SUMO shows a signal state for whole steps, so a 3.3 s ITE yellow is shown for 4 s
# (the bench rounds clearances up to whole steps: drivers never see one cut short)
STEP_S = 1.0
ZONE_M = 150.0  # E2 lane-area detectors (zone sensors): stop line to 150 m upstream


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


EMERGENCY_VTYPE = (
    # vClass emergency, no bluelight device: it obeys the signals and no one yields to it, so
    # what helps it is the controllers' priority (the bench's GPS feed), nothing else
    '    <vType id="ambulance" vClass="emergency" length="6.5" minGap="2.5" accel="2.6"'
    ' decel="4.5" sigma="0.3" maxSpeed="16.7" speedFactor="1.0" speedDev="0"/>'
)
BUS_VTYPE = (
    '    <vType id="bus" vClass="bus" length="12.0" minGap="3.0" accel="1.2" decel="4.0"'
    ' sigma="0.3" maxSpeed="16.7" speedFactor="1.0" speedDev="0"/>'
)


@dataclass(frozen=True)
class Trip:
    """One emergency vehicle: departure time and its route (edge ids)."""

    id: str
    depart: float
    edges: tuple[str, ...]


@dataclass(frozen=True)
class BusStop:
    id: str
    lane: str
    start_m: float
    end_m: float


@dataclass(frozen=True)
class BusLine:
    """A scheduled bus line: one bus every ``headway_s`` from ``begin`` to ``end``."""

    id: str
    edges: tuple[str, ...]
    begin: float
    end: float
    headway_s: float
    stops: tuple[str, ...] = ()  # bus stop ids, in route order
    dwell_s: float = 15.0


@dataclass(frozen=True)
class Fleet:
    """The priority vehicles of a scenario: emergency vehicles, bus lines, their stops."""

    emergency: tuple[Trip, ...]
    buses: tuple[BusLine, ...] = ()
    stops: tuple[BusStop, ...] = ()

    def rows(self) -> list[tuple[float, str, str]]:
        """``(depart, id, xml)`` rows for the route file."""
        rows = []
        for ev in self.emergency:
            rows.append(
                (
                    ev.depart,
                    ev.id,
                    f'    <vehicle id="{ev.id}" type="ambulance" depart="{ev.depart:.0f}"'
                    ' departLane="best" departSpeed="max">'
                    f'<route edges="{" ".join(ev.edges)}"/></vehicle>',
                )
            )
        for line in self.buses:
            stops = "".join(
                f'<stop busStop="{sid}" duration="{line.dwell_s:.0f}"/>' for sid in line.stops
            )
            rows.append(
                (
                    line.begin,
                    line.id,
                    f'    <flow id="{line.id}" type="bus" begin="{line.begin:.0f}"'
                    f' end="{line.end:.0f}" period="{line.headway_s:.0f}" departLane="best"'
                    f' departSpeed="max"><route edges="{" ".join(line.edges)}"/>{stops}</flow>',
                )
            )
        return rows


def write_stops(out: Path, name: str, fleet: Fleet) -> None:
    lines = ["<additional>"]
    for st in fleet.stops:
        lines.append(
            f'    <busStop id="{st.id}" lane="{st.lane}" startPos="{st.start_m:.1f}"'
            f' endPos="{st.end_m:.1f}"/>'
        )
    lines.append("</additional>")
    (out / f"{name}.stops.add.xml").write_text("\n".join(lines) + "\n")


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
        stdout=subprocess.DEVNULL,  # "Success."; errors go to stderr
    )
    return net


def write_routes(out: Path, name: str, flows: list[Flow], fleet: Fleet | None = None) -> None:
    lines = [
        "<routes>",
        '    <vType id="car" length="5.0" minGap="2.5" accel="2.6" decel="4.5" sigma="0.5"'
        ' maxSpeed="16.7"/>',
    ]
    if fleet is not None:
        lines += [EMERGENCY_VTYPE, BUS_VTYPE]
    rows: list[tuple[float, str, str]] = []
    for f in flows:
        for i, (begin, end, vph) in enumerate(f.periods):
            if vph <= 0:
                continue
            fid = f"{f.origin}_{f.dest}_{i}"
            rows.append(
                (
                    begin,
                    fid,
                    f'    <flow id="{fid}" type="car" begin="{begin:.0f}" end="{end:.0f}"'
                    f' period="exp({vph / 3600.0:.6f})" from="{f.origin}" to="{f.dest}"'
                    ' departLane="best" departSpeed="max"/>',
                )
            )
    if fleet is not None:
        rows += fleet.rows()
    # SUMO reads a route file in departure order
    lines += [text for _, _, text in sorted(rows, key=lambda r: (r[0], r[1]))]
    lines.append("</routes>")
    if fleet is not None:
        # the priority vehicles alone: their time loss with no traffic and no signals is the
        # part no controller can remove (stops, turns; bench/priority_bench.py)
        alone = sorted(fleet.rows(), key=lambda r: (r[0], r[1]))
        (out / f"{name}.fleet.rou.xml").write_text(
            "\n".join(
                ["<routes>", EMERGENCY_VTYPE, BUS_VTYPE, *(t for _, _, t in alone), "</routes>"]
            )
            + "\n"
        )
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


def write_zones(out: Path, name: str, net_path: Path) -> None:
    """E2 lane-area detectors (the bench's zone sensors) from the stop line to ``ZONE_M``
    upstream, or the whole lane when it is shorter, on every incoming lane of every tls."""
    import sumolib

    net = sumolib.net.readNet(str(net_path), withPrograms=True)
    lines = ["<additional>"]
    for tls in net.getTrafficLights():
        for lane_id in sorted({conn[0].getID() for conn in tls.getConnections()}):
            length = net.getLane(lane_id).getLength()
            start = max(0.0, length - ZONE_M)
            lines.append(
                f"    <laneAreaDetector id={quoteattr(f'{lane_id}_zone')}"
                f' lane={quoteattr(lane_id)} pos="{start:.2f}" endPos="{length:.2f}"'
                ' period="60" file="NUL"/>'
            )
    lines.append("</additional>")
    (out / f"{name}.zones.add.xml").write_text("\n".join(lines) + "\n")


def write_cfg(
    out: Path, name: str, *, stops: bool = False, zones: bool = False, step_s: float = STEP_S
) -> None:
    additional = f"{name}.det.add.xml" + (f",{name}.stops.add.xml" if stops else "")
    additional += f",{name}.zones.add.xml" if zones else ""
    (out / f"{name}.sumocfg").write_text(
        f"""<configuration>
    <input>
        <net-file value="{name}.net.xml"/>
        <route-files value="{name}.rou.xml"/>
        <additional-files value="{additional}"/>
    </input>
    <time>
        <step-length value="{step_s}"/>
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


# ------------------------------------------------ zone scenarios (issue 19): E2 + loops
# Four-arm junctions here have three lanes in on every arm (right + through, through,
# protected left), unlike the main-street / side-street junctions above.


def saturated() -> tuple[Layout, list[Flow]]:
    """A four-arm junction near capacity at its peak (Webster's Y ≈ 0.85): heavy through
    traffic both ways on both roads and heavy protected lefts (300–380 veh/h each)."""
    roads = [("W", "C", 3, 3), ("C", "E", 3, 3), ("N", "C", 3, 3), ("C", "S", 3, 3)]
    rates = {
        "W>E": [750, 1000, 650],
        "E>W": [600, 850, 800],
        "N>S": [400, 560, 420],
        "S>N": [380, 480, 560],
        "W>N": [260, 360, 220],
        "E>S": [200, 300, 320],
        "N>E": [220, 300, 200],
        "S>W": [180, 250, 300],
        "W>S": [100, 110, 80],
        "E>N": [80, 90, 110],
        "N>W": [80, 90, 70],
        "S>E": [70, 80, 100],
    }
    return _cross(450.0, roads), _flows_through_c(rates, 360.0)


def turning() -> tuple[Layout, list[Flow]]:
    """A four-arm junction where turning dominates: on the busy arms a third to a half of the
    traffic turns (heavy lefts into the north arm, heavy rights out of the west), three lanes
    in on the two main arms, two on the others (right + through, left)."""
    roads = [("W", "C", 3, 3), ("C", "E", 3, 3), ("N", "C", 3, 3), ("C", "S", 2, 2)]
    rates = {
        "W>E": [350, 450, 300],
        "W>N": [300, 420, 250],  # left
        "W>S": [250, 300, 200],  # right
        "E>W": [300, 350, 400],
        "E>S": [150, 200, 280],  # left
        "E>N": [200, 250, 300],  # right
        "N>S": [200, 250, 300],
        "N>E": [250, 300, 380],  # left
        "N>W": [300, 350, 400],  # right
        "S>N": [120, 150, 120],
        "S>W": [100, 150, 120],  # left
        "S>E": [120, 150, 100],  # right
    }
    return _cross(400.0, roads), _flows_through_c(rates, 360.0)


def grid2x2() -> tuple[Layout, list[Flow]]:
    """A 2 × 2 grid of signalised junctions 300 m apart: east-west streets three lanes in,
    north-south avenues two; through traffic on every street, L-shaped trips across the grid,
    tides that reverse."""
    spacing = 300.0
    nodes: dict[str, tuple[float, float, bool]] = {}
    roads: list[tuple[str, str, int, int]] = []
    for r in (1, 2):
        for c in (1, 2):
            nodes[f"J{r}{c}"] = ((c - 1) * spacing, -(r - 1) * spacing, True)
    for k in (1, 2):
        x = y = (k - 1) * spacing
        nodes[f"N{k}"] = (x, 300.0, False)
        nodes[f"S{k}"] = (x, -spacing - 300.0, False)
        nodes[f"W{k}"] = (-300.0, -y, False)
        nodes[f"E{k}"] = (spacing + 300.0, -y, False)
        row = [f"W{k}", f"J{k}1", f"J{k}2", f"E{k}"]
        col = [f"N{k}", f"J1{k}", f"J2{k}", f"S{k}"]
        roads += [(a, b, 3, 3) for a, b in itertools.pairwise(row)]
        roads += [(a, b, 2, 2) for a, b in itertools.pairwise(col)]
    p = 360.0
    flows: list[Flow] = []
    for k in (1, 2):
        j = 3 - k
        flows.append(Flow(f"W{k}_J{k}1", f"J{k}2_E{k}", _periods([450, 650, 400], p)))
        flows.append(Flow(f"E{k}_J{k}2", f"J{k}1_W{k}", _periods([380, 480, 600], p)))
        flows.append(Flow(f"N{k}_J1{k}", f"J2{k}_S{k}", _periods([250, 350, 220], p)))
        flows.append(Flow(f"S{k}_J2{k}", f"J1{k}_N{k}", _periods([220, 260, 330], p)))
        turns = [70, 100, 60]
        flows.append(Flow(f"W{k}_J{k}1", f"J2{j}_S{j}", _periods(turns, p)))
        flows.append(Flow(f"N{k}_J1{k}", f"J{k}2_E{k}", _periods(turns, p)))
        flows.append(Flow(f"E{k}_J{k}2", f"J1{j}_N{j}", _periods(turns[::-1], p)))
        flows.append(Flow(f"S{k}_J2{k}", f"J{j}1_W{j}", _periods(turns[::-1], p)))
    return Layout(nodes=nodes, roads=roads), flows


# ------------------------------------------------------- priority scenarios (issue 22)
# Emergency vehicles (vClass emergency, without SUMO's bluelight device: they obey the
# signals) on routes through four or five signals, and scheduled buses (vClass bus) with
# curbside stops. Demand in three 10-minute periods, then the network drains.

PRIORITY_PERIOD_S = 600.0
EV_DEPARTS = (150.0, 450.0, 750.0, 1050.0, 1350.0, 1650.0)  # one every 5 min while demand runs


def _bus_stop(edge: str, start_m: float = 30.0) -> BusStop:
    """A curbside stop on ``edge``'s right lane; by default far-side (just after the
    junction the edge leaves), where cities put stops on TSP routes: the dwell then comes
    after the signal, so a check-in's ETA does not depend on it."""
    return BusStop(f"bs_{edge}", f"{edge}_0", start_m, start_m + 20.0)


def corridor() -> tuple[Layout, list[Flow], Fleet]:
    """Five signalised junctions 270–330 m apart on an east-west arterial with side streets
    at each, turning traffic at every junction; six emergency vehicles (through the whole
    corridor, or turning in / out at an end: four or five signals each) and a bus line each
    way every 5 minutes with two far-side curbside stops."""
    xs = [0.0, 320.0, 600.0, 930.0, 1200.0]
    n = len(xs)
    nodes: dict[str, tuple[float, float, bool]] = {
        "W": (-400.0, 0.0, False),
        "E": (xs[-1] + 400.0, 0.0, False),
    }
    roads: list[tuple[str, str, int, int]] = []
    for i, x in enumerate(xs, start=1):
        nodes[f"J{i}"] = (x, 0.0, True)
        nodes[f"N{i}"] = (x, 250.0, False)
        nodes[f"S{i}"] = (x, -250.0, False)
        roads.append((f"N{i}", f"J{i}", 2, 2))
        roads.append((f"J{i}", f"S{i}", 2, 2))
    main = ["W", *(f"J{i}" for i in range(1, n + 1)), "E"]
    roads += [(a, b, 3, 3) for a, b in itertools.pairwise(main)]
    east = [f"{a}_{b}" for a, b in itertools.pairwise(main)]  # W_J1 … J5_E
    west = [f"{b}_{a}" for a, b in reversed(list(itertools.pairwise(main)))]
    p = PRIORITY_PERIOD_S
    flows = [
        Flow("W_J1", f"J{n}_E", _periods([450, 650, 400], p)),
        Flow(f"E_J{n}", "J1_W", _periods([350, 450, 600], p)),
    ]
    for i in range(1, n + 1):
        north = [100, 150, 90]
        south = [90, 110, 140]
        flows.append(Flow(f"N{i}_J{i}", f"J{i}_S{i}", _periods(north, p)))
        flows.append(Flow(f"S{i}_J{i}", f"J{i}_N{i}", _periods(south, p)))
        flows.append(Flow(f"N{i}_J{i}", f"J{n}_E", _periods([r * 0.3 for r in north], p)))
        flows.append(Flow(f"N{i}_J{i}", "J1_W", _periods([r * 0.25 for r in north], p)))
        flows.append(Flow(f"S{i}_J{i}", "J1_W", _periods([r * 0.3 for r in south], p)))
        flows.append(Flow(f"S{i}_J{i}", f"J{n}_E", _periods([r * 0.25 for r in south], p)))
        flows.append(Flow("W_J1", f"J{i}_N{i}", _periods([20, 30, 15], p)))
        flows.append(Flow("W_J1", f"J{i}_S{i}", _periods([15, 20, 15], p)))
        flows.append(Flow(f"E_J{n}", f"J{i}_S{i}", _periods([15, 25, 30], p)))
        flows.append(Flow(f"E_J{n}", f"J{i}_N{i}", _periods([15, 15, 25], p)))
    routes = [
        tuple(east),
        tuple(west),
        ("N1_J1", *east[1:]),  # left at J1, then through J2..J5
        (f"S{n}_J{n}", *west[1:]),  # left at J5, then through J4..J1
        (*east[:4], "J4_S4"),  # through J1..J3, right at J4
        (*west[:-1], "J1_N1"),  # through J5..J2, right at J1
    ]
    emergency = tuple(
        Trip(f"ev{k}", t, r) for k, (t, r) in enumerate(zip(EV_DEPARTS, routes, strict=True))
    )
    stops = (
        _bus_stop("J2_J3"),
        _bus_stop("J4_J5"),
        _bus_stop("J4_J3"),
        _bus_stop("J2_J1"),
    )
    buses = (
        BusLine("bus_we", tuple(east), 60.0, 1800.0, 300.0, ("bs_J2_J3", "bs_J4_J5")),
        BusLine("bus_ew", tuple(west), 210.0, 1800.0, 300.0, ("bs_J4_J3", "bs_J2_J1")),
    )
    return Layout(nodes=nodes, roads=roads), flows, Fleet(emergency, buses, stops)


def grid() -> tuple[Layout, list[Flow], Fleet]:
    """A 3 × 3 grid of signalised junctions 300 m apart (east-west streets three lanes in,
    north-south avenues two), through traffic on every street and L-shaped trips; six
    emergency vehicles on L-shaped routes through four or five signals, a bus line each way
    along the middle street every 6 minutes (a far-side stop each)."""
    spacing = 300.0
    nodes: dict[str, tuple[float, float, bool]] = {}
    roads: list[tuple[str, str, int, int]] = []
    for r in (1, 2, 3):
        for c in (1, 2, 3):
            nodes[f"J{r}{c}"] = ((c - 1) * spacing, -(r - 1) * spacing, True)
    for k in (1, 2, 3):
        x = y = (k - 1) * spacing
        nodes[f"N{k}"] = (x, 250.0, False)
        nodes[f"S{k}"] = (x, -2 * spacing - 250.0, False)
        nodes[f"W{k}"] = (-250.0, -y, False)
        nodes[f"E{k}"] = (2 * spacing + 250.0, -y, False)
        row = [f"W{k}", f"J{k}1", f"J{k}2", f"J{k}3", f"E{k}"]
        col = [f"N{k}", f"J1{k}", f"J2{k}", f"J3{k}", f"S{k}"]
        roads += [(a, b, 3, 3) for a, b in itertools.pairwise(row)]
        roads += [(a, b, 2, 2) for a, b in itertools.pairwise(col)]
    p = PRIORITY_PERIOD_S
    flows: list[Flow] = []
    for k in (1, 2, 3):
        flows.append(Flow(f"W{k}_J{k}1", f"J{k}3_E{k}", _periods([300, 450, 280], p)))
        flows.append(Flow(f"E{k}_J{k}3", f"J{k}1_W{k}", _periods([250, 320, 400], p)))
        flows.append(Flow(f"N{k}_J1{k}", f"J3{k}_S{k}", _periods([150, 220, 130], p)))
        flows.append(Flow(f"S{k}_J3{k}", f"J1{k}_N{k}", _periods([130, 160, 200], p)))
        j = 4 - k
        turns = [40, 60, 40]
        flows.append(Flow(f"W{k}_J{k}1", f"J3{j}_S{j}", _periods(turns, p)))
        flows.append(Flow(f"N{k}_J1{k}", f"J{k}3_E{k}", _periods(turns, p)))
        flows.append(Flow(f"E{k}_J{k}3", f"J1{k}_N{k}", _periods(turns, p)))
        flows.append(Flow(f"S{k}_J3{k}", f"J{j}1_W{j}", _periods(turns, p)))
    routes = [
        ("W1_J11", "J11_J12", "J12_J13", "J13_J23", "J23_J33", "J33_S3"),
        ("S1_J31", "J31_J21", "J21_J11", "J11_J12", "J12_J13", "J13_E1"),
        ("E3_J33", "J33_J32", "J32_J31", "J31_J21", "J21_J11", "J11_N1"),
        ("N3_J13", "J13_J23", "J23_J33", "J33_J32", "J32_J31", "J31_W3"),
        ("W2_J21", "J21_J22", "J22_J23", "J23_J13", "J13_N3"),
        ("N2_J12", "J12_J22", "J22_J32", "J32_J33", "J33_E3"),
    ]
    emergency = tuple(
        Trip(f"ev{k}", t, r) for k, (t, r) in enumerate(zip(EV_DEPARTS, routes, strict=True))
    )
    east = ("W2_J21", "J21_J22", "J22_J23", "J23_E2")
    west = ("E2_J23", "J23_J22", "J22_J21", "J21_W2")
    stops = (_bus_stop("J21_J22"), _bus_stop("J23_J22"))
    buses = (
        BusLine("bus_we", east, 60.0, 1800.0, 360.0, ("bs_J21_J22",)),
        BusLine("bus_ew", west, 240.0, 1800.0, 360.0, ("bs_J23_J22",)),
    )
    return Layout(nodes=nodes, roads=roads), flows, Fleet(emergency, buses, stops)


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
# built the same way plus E2 zones on every signalised incoming lane (issue 19)
ZONE_SCENARIOS = {
    "saturated": saturated,
    "turning": turning,
    "grid2x2": grid2x2,
}
# built the same way, with emergency vehicles and buses; not part of the controller matrix
PRIORITY_SCENARIOS = {
    "corridor": corridor,
    "grid": grid,
}


def build(name: str, root: Path = HERE, *, zones: bool | None = None) -> Path:
    """Build scenario ``name`` under ``root/<name>/generated``; returns its ``.sumocfg``.

    ``zones``: E2 zones on every signalised incoming lane (default: the zone scenarios
    only; True adds them to any scenario)."""
    out = root / name / "generated"
    out.mkdir(parents=True, exist_ok=True)
    fleet: Fleet | None = None
    if name in PRIORITY_SCENARIOS:
        layout, flows, fleet = PRIORITY_SCENARIOS[name]()
    elif name in ZONE_SCENARIOS:
        layout, flows = ZONE_SCENARIOS[name]()
    else:
        layout, flows = SCENARIOS[name]()
    write_plain(out, name, layout)
    net = netconvert(out, name)
    write_routes(out, name, flows, fleet)
    write_loops(out, name, net)
    if fleet is not None and fleet.stops:
        write_stops(out, name, fleet)
    if zones or (zones is None and name in ZONE_SCENARIOS):
        write_zones(out, name, net)
    with_zones = bool(zones or (zones is None and name in ZONE_SCENARIOS))
    stops = fleet is not None and bool(fleet.stops)
    write_cfg(out, name, stops=stops, zones=with_zones)
    return out / f"{name}.sumocfg"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    every = [*SCENARIOS, *ZONE_SCENARIOS, *PRIORITY_SCENARIOS]
    parser.add_argument("names", nargs="*", metavar="NAME", help=f"any of {', '.join(every)}")
    parser.add_argument(
        "--zones",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="E2 zones on every signalised incoming lane (default: the zone scenarios only)",
    )
    args = parser.parse_args(argv)
    for name in args.names or every:
        if name not in every:
            parser.error(f"unknown scenario {name!r}")
        print(build(name, zones=args.zones))
    return 0


if __name__ == "__main__":
    sys.exit(main())
