"""``firmware-sim`` / ``python -m firmware_sim``: the cabinet emulator on the command line.

The first line printed on stdout is the URL a client must use; logs go to stderr. SIGTERM,
SIGINT or ``--duration`` end it cleanly (exit 0) after writing ``--summary``.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from collections.abc import Sequence
from pathlib import Path

import structlog

from edgectl.errors import EdgectlError
from firmware_sim.api import Emulator
from firmware_sim.faults import parse_fault
from firmware_sim.units import is_unit_fault, parse_unit_fault
from firmware_sim.zones import ZoneSettings, is_zone_fault, parse_zone_fault

__all__ = ["main"]

log = structlog.get_logger("firmware_sim")


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="firmware-sim",
        description="Signal-cabinet emulator (detectors, load switches, MMU, traffic) over Modbus.",
    )
    p.add_argument(
        "--listen",
        default="modbus+tcp://127.0.0.1:0",
        help="modbus+tcp://HOST:PORT (0 = ephemeral), modbus+rtu://pty (a pty pair made "
        "here) or modbus+rtu:///dev/ttyX?baudrate=N; add ?unit=N for the unit id (default 1)",
    )
    p.add_argument(
        "--profile",
        default="builtin:nema-cabinet",
        help="builtin:NAME or a TOML file; a format-2 profile (e.g. builtin:io-modules) "
        "serves each of its units under its own unit id on the one port or line",
    )
    p.add_argument("--seed", type=int, default=0, help="random seed of traffic and faults")
    p.add_argument("--record", type=Path, help="CSV of every channel change (time_s,channel,state)")
    p.add_argument("--summary", type=Path, help="JSON summary written at exit")
    p.add_argument(
        "--fault",
        action="append",
        default=[],
        metavar="SPEC",
        help="KIND[:VALUE][@START[+DURATION]], repeatable; e.g. drop:0.3@10+20, silent@30+10, "
        "stuck:3@20+30, power_cycle@60 (see docs/firmware_sim.md); with a profile of several "
        "units also unit_dead:U@S+D, unit_slow:U=SECONDS@S, relay_stuck:U.COIL@S; with zone "
        "sensors zone_dead:N@S+D, zone_stuck:N@S+D",
    )
    p.add_argument("--demand", type=Path, help="CSV demand schedule (time_s,multiplier|movements)")
    p.add_argument("--duration", type=float, help="exit by itself after S seconds")
    p.add_argument("--mmu-reset", action="store_true", help="clear any latched MMU fault at start")
    p.add_argument(
        "--line-time",
        action="store_true",
        help="on a pty (modbus+rtu://pty?baudrate=N): delay every request and response by the "
        "time its bytes take on a serial line at N baud (11 bits a character, 3.5-character "
        "frame gap), one frame at a time; for benches (a pty itself has no baud rate)",
    )
    p.add_argument(
        "--zone-range",
        type=float,
        default=float("inf"),
        metavar="M",
        help="zone sensors (a profile with [[cabinet.zones]]): detection range from the stop "
        "line in m (default: each zone's length)",
    )
    p.add_argument(
        "--zone-noise",
        type=float,
        default=0.0,
        metavar="STD",
        help="zone sensors: std of the noise on object distances (m) and speeds (m/s)",
    )
    p.add_argument(
        "--zone-miss",
        type=float,
        default=0.0,
        metavar="P",
        help="zone sensors: probability that a vehicle is missed in one measurement",
    )
    p.add_argument("--log-level", default="warning", choices=["debug", "info", "warning", "error"])
    return p


async def _serve(args: argparse.Namespace) -> int:
    emulator = Emulator(
        args.profile,
        listen=args.listen,
        seed=args.seed,
        faults=args.fault,
        demand=args.demand,
        record=args.record,
        summary=args.summary,
        mmu_reset=args.mmu_reset,
        line_time=args.line_time,
        zones=ZoneSettings(range_m=args.zone_range, noise=args.zone_noise, miss=args.zone_miss),
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with emulator:
        sys.stdout.write(emulator.url + "\n")
        sys.stdout.flush()
        log.info("serving", url=emulator.url, profile=emulator.profile.name, seed=args.seed)
        try:
            async with asyncio.timeout(args.duration):
                await stop.wait()
        except TimeoutError:
            log.info("duration_elapsed", duration=args.duration)
    log.info("stopped", summary=str(args.summary) if args.summary else None)
    return 0


def _configure_logging(level: str) -> None:
    numeric = getattr(logging, level.upper())
    logging.basicConfig(stream=sys.stderr, level=max(numeric, logging.WARNING))
    structlog.configure(
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.duration is not None and not (0.0 < args.duration < float("inf")):
        parser.error(f"--duration {args.duration}: seconds > 0")
    for spec in args.fault:
        try:
            if is_unit_fault(spec):
                parse_unit_fault(spec)
            elif is_zone_fault(spec):
                parse_zone_fault(spec)
            else:
                parse_fault(spec)
        except ValueError as exc:
            parser.error(f"--fault: {exc}")  # a usage error: status 2
    try:
        ZoneSettings(range_m=args.zone_range, noise=args.zone_noise, miss=args.zone_miss)
    except ValueError as exc:
        parser.error(f"--zone-*: {exc}")
    _configure_logging(args.log_level)
    try:
        return asyncio.run(_serve(args))
    except (ValueError, EdgectlError, OSError) as exc:
        sys.stderr.write(f"firmware-sim: {exc}\n")
        return 2


if __name__ == "__main__":
    sys.exit(main())
