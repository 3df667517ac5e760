"""``edgectl bench``: benchmarks of the controller.

``edgectl bench sumo SCENARIO.sumocfg --controller NAME [--seed N] [--json OUT] [--no-priority]
[-- SUMO_ARGS…]`` runs one controller against a SUMO scenario (software-in-the-loop, SPEC §10);
emergency vehicles and buses feed priority requests unless ``--no-priority``. Everything
after ``--`` goes to SUMO verbatim. Exit status: 0 for a valid run, 1 for an invalid one
(a teleport or a collision), 2 for a usage or scenario error.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

# importing the bench is cheap: libsumo is loaded only when a run starts
from edgectl.sumo.controls import CONTROLLERS


class _PassThroughParser(argparse.ArgumentParser):
    """Keeps everything after the first ``--`` verbatim in ``sumo_args``.

    (argparse alone cannot take options before *and* after a positional and still hand the
    tail after ``--`` to a second positional.)
    """

    def parse_known_args(  # type: ignore[override]
        self, args: list[str] | None = None, namespace: argparse.Namespace | None = None
    ) -> tuple[argparse.Namespace, list[str]]:
        argv = list(sys.argv[1:] if args is None else args)
        tail: list[str] = []
        if "--" in argv:
            cut = argv.index("--")
            argv, tail = argv[:cut], argv[cut + 1 :]
        ns, extras = super().parse_known_args(argv, namespace)
        ns.sumo_args = tail
        return ns, extras


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(
        dest="bench", metavar="BENCH", required=True, parser_class=_PassThroughParser
    )
    p = sub.add_parser(
        "sumo",
        help="run a controller against a SUMO scenario (software-in-the-loop)",
        description="Run a controller against a SUMO scenario. Arguments after `--` go to "
        "SUMO verbatim (e.g. -- --tripinfo-output trips.xml --end 900).",
    )
    p.add_argument("scenario", type=Path, metavar="SCENARIO.sumocfg")
    p.add_argument(
        "--controller",
        required=True,
        choices=CONTROLLERS,
        metavar="NAME",
        help="one of: " + ", ".join(CONTROLLERS),
    )
    p.add_argument("--seed", type=int, default=None, help="SUMO random seed")
    p.add_argument("--json", type=Path, default=None, metavar="OUT", help="write results here")
    p.add_argument(
        "--coordinate",
        action="store_true",
        help="pass projected arrivals between neighbouring junctions (adaptive)",
    )
    p.add_argument(
        "--single-ring",
        action="store_true",
        help="run edgectl controllers on the stages in one ring, not on the NEMA dual ring"
        " of four-arm junctions",
    )
    p.add_argument(
        "--permissive-lefts",
        action="store_true",
        help="keep the permissive turns of lefts the network's program runs protected /"
        " permissive (every controller; edgectl's dual ring shows a flashing yellow arrow)",
    )
    p.add_argument(
        "--no-priority",
        action="store_true",
        help="send no priority requests: emergency vehicles and buses are tracked and measured"
        " as usual but their GPS feed reaches no junction (the comparison run)",
    )
    p.add_argument(
        "--peer-timing",
        choices=("webster", "default"),
        default="webster",
        help="sumo:static / sumo:actuated / sumo:delay_based timed by Webster for the scenario's"
        " peak flows"
        " (default), or on the network's demand-blind default splits",
    )
    p.add_argument(
        "--no-zones",
        action="store_true",
        help="ignore the scenario's E2 detectors: edgectl controllers run on their loops alone",
    )
    p.add_argument(
        "--zone-degrade",
        default="",
        metavar="SPEC",
        help="make the zone sensors worse, e.g. range=80,miss=0.1,dead=1 (keys: range m,"
        " noise m, speed_noise m/s, miss and dropout probabilities, dead zones per junction,"
        " seed)",
    )
    p.epilog = "-- SUMO_ARGS…  everything after `--` is passed to SUMO verbatim"


def run(args: argparse.Namespace) -> int:
    if args.bench == "sumo":
        return _run_sumo(args)
    print(f"edgectl bench: unknown benchmark {args.bench!r}", file=sys.stderr)
    return 2


def _run_sumo(args: argparse.Namespace) -> int:
    from edgectl.sumo import BenchError, SumoUnavailable, run_bench
    from edgectl.sumo.zones import ZoneDegrade

    sumo_args = list(getattr(args, "sumo_args", []))
    try:
        degrade = ZoneDegrade.parse(args.zone_degrade) if args.zone_degrade else None
    except ValueError as exc:
        print(f"edgectl bench sumo: {exc}", file=sys.stderr)
        return 2
    try:
        result = run_bench(
            args.scenario,
            args.controller,
            seed=args.seed,
            sumo_args=sumo_args,
            coordinate=args.coordinate,
            dual_ring=not args.single_ring,
            permissive_lefts=args.permissive_lefts,
            priority=not args.no_priority,
            peer_timing=args.peer_timing,
            zones=not args.no_zones,
            zone_degrade=degrade,
        )
    except (BenchError, SumoUnavailable) as exc:
        print(f"edgectl bench sumo: {exc}", file=sys.stderr)
        return 2
    doc = result.to_json()
    text = json.dumps(doc, indent=2, sort_keys=True)
    if args.json is not None:
        args.json.write_text(text + "\n")
    print(
        f"{result.scenario} {result.controller} seed={result.seed}: "
        f"time loss {result.time_loss_s:.2f} s, waiting {result.waiting_s:.2f} s, "
        f"trip {result.duration_s:.2f} s, insertion delay {result.depart_delay_s:.2f} s, "
        f"arrived {result.arrived}/{result.loaded}, teleports {result.teleports}, "
        f"worst approach {result.worst_approach} {result.worst_approach_delay_s:.1f} s, "
        f"wall {result.wall_s:.2f} s"
    )
    if set(result.time_loss_by_class_s) - {"other"}:
        by_class = ", ".join(f"{k} {v:.2f} s" for k, v in result.time_loss_by_class_s.items())
        feed = result.priority
        print(
            f"time loss by class: {by_class}; priority requests sent {feed.get('sent', 0)}"
            f" (updates {feed.get('updates', 0)}, cancels {feed.get('cancels', 0)}),"
            f" TSP check-ins {feed.get('tsp_checkins', 0)}"
        )
    if not result.valid:
        print(f"INVALID run: {result.invalid_reason}", file=sys.stderr)
        return 1
    return 0
