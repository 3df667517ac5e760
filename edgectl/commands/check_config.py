"""``edgectl check-config FILE``: validate a configuration and its plans, list every problem.

One line per problem, ``FILE: severity: path: message``; warnings are listed too but do not
fail. Exit status 1 when there is any error, 0 when the configuration is valid (then a short
summary line follows). ``EDGECTL_*`` environment overrides apply, as they do for the daemon.
The files ``[mqtt]`` names are checked too (missing, empty, unreadable, not a regular file, a
command key under 32 bytes, a secret readable by others), as ``edgectl run`` checks them.
"""

from __future__ import annotations

import argparse
import sys

from edgectl.config.loader import check_config_file


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", metavar="FILE", help="configuration file (TOML)")
    parser.add_argument(
        "--quiet", "-q", action="store_true", help="print errors only (no warnings, no summary)"
    )


def run(args: argparse.Namespace) -> int:
    path = str(args.file)
    config, problems = check_config_file(path, check_files=True)
    errors = [p for p in problems if p.severity == "error"]
    for problem in problems:
        if args.quiet and problem.severity != "error":
            continue
        stream = sys.stderr if problem.severity == "error" else sys.stdout
        print(f"{path}: {problem}", file=stream)
    if config is None:
        print(f"{path}: invalid: {len(errors)} error(s)", file=sys.stderr)
        return 1
    if not args.quiet:
        warnings = len(problems) - len(errors)
        print(
            f"{path}: ok: intersection {config.intersection.id}: "
            f"{len(config.phases)} phases, {len(config.rings)} rings, "
            f"{len(config.barriers)} barriers, {len(config.channels)} channels, "
            f"{len(config.detectors)} detectors, {len(config.plans)} plans"
            + (f" ({warnings} warning(s))" if warnings else "")
        )
    return 0
