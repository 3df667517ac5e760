"""The ``edgectl`` command line (SPEC §8).

Each subcommand lives in its own module under :mod:`edgectl.commands` with two functions,
``add_arguments(parser)`` and ``run(args) -> int``; this file only dispatches, importing a
subcommand's module when it is used so that ``edgectl check-config`` does not pay for
pymodbus or SUMO.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence
from typing import Protocol, cast

from edgectl import __version__

# name → (module, one-line help)
SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "run": ("edgectl.commands.run", "run the daemon (what systemd runs)"),
    "check-config": ("edgectl.commands.check_config", "validate a config; list every problem"),
    "init": ("edgectl.commands.init", "write a commented production config to start from"),
    "simulate": ("edgectl.commands.simulate", "run the controller against simulated detectors"),
    "demo": ("edgectl.commands.demo", "emulator + broker + daemon with a live view"),
    "cmd": ("edgectl.commands.cmd", "send a signed command and wait for its response"),
    "watch": ("edgectl.commands.watch", "live view of the fleet's state and alarms"),
    "priority": (
        "edgectl.commands.priority",
        "`edgectl priority route`: a green wave's requests along a route, from positions",
    ),
    "bench": ("edgectl.commands.bench", "benchmarks: `edgectl bench sumo SCENARIO.sumocfg`"),
    "report": ("edgectl.commands.report", "split monitor and Purdue diagram from an event log"),
    "export-events": (
        "edgectl.commands.export_events",
        "the daemon's event log as ATSPM CSV for a time range",
    ),
}


class _Subcommand(Protocol):
    def add_arguments(self, parser: argparse.ArgumentParser) -> None: ...
    def run(self, args: argparse.Namespace) -> int: ...


def _load(name: str) -> _Subcommand | None:
    module_name, _ = SUBCOMMANDS[name]
    try:
        return cast(_Subcommand, importlib.import_module(module_name))
    except ModuleNotFoundError as exc:
        if exc.name == module_name:
            return None
        raise


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="edgectl", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"edgectl {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (_, help_text) in SUBCOMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        if only is None or only == name:
            module = _load(name)
            if module is not None:
                module.add_arguments(p)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args_list = list(sys.argv[1:] if argv is None else argv)
    chosen = next((a for a in args_list if a in SUBCOMMANDS), None)
    parser = build_parser(only=chosen)
    args = parser.parse_args(args_list)
    if args.command is None:
        parser.print_help()
        return 2
    module = _load(args.command)
    if module is None:
        print(f"edgectl: {args.command} is not available in this build", file=sys.stderr)
        return 2
    return module.run(args)


if __name__ == "__main__":
    sys.exit(main())
