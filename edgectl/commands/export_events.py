"""``edgectl export-events``: the daemon's event log as ATSPM CSV for a time range.

The daemon keeps every hi-res event it emits in ``events.sqlite3`` under its state
directory, for ``[mqtt] event_log_max_age_s`` (7 days by default; :mod:`edgectl.sync.eventlog`).
This command reads it — read-only, so it runs beside a running daemon — and writes the events
with ``--from <= time < --to`` as ``SignalId,Timestamp,EventCode,EventParam`` rows
(:func:`edgectl.atspm.events.write_atspm_csv`): ``Timestamp`` in UTC with milliseconds, as the
daemon stamped it, ``SignalId`` the junction's id, rows in time order.

``--from``/``--to`` are ISO 8601 (``2026-11-21T06:00``, ``2026-11-21 06:00:00+01:00``);
naive times are UTC; either may be left out for the start or the end of the log. The log is
found through ``--config FILE`` (its ``[daemon] state_dir``, ``EDGECTL_*`` overrides applied,
and its intersection id) or ``--state-dir DIR`` (default ``/var/lib/edgectl``). The CSV goes
to ``-o FILE`` or stdout; a one-line summary goes to stderr. Exit 0 on success (also when
the range holds no event), 1 when the log cannot be read or the arguments make no sense.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TextIO

from edgectl.atspm.events import write_atspm_csv
from edgectl.config.settings import DaemonSettings
from edgectl.errors import ConfigError, SyncError
from edgectl.sync.eventlog import EventLogReader


def _instant(text: str) -> datetime:
    try:
        when = datetime.fromisoformat(text.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r}: expected an ISO 8601 time, e.g. 2026-11-21T06:00:00Z"
        ) from None
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--from",
        dest="start",
        type=_instant,
        metavar="TIME",
        help="first instant (ISO 8601, naive = UTC; default: the oldest event kept)",
    )
    parser.add_argument(
        "--to",
        dest="end",
        type=_instant,
        metavar="TIME",
        help="end of the range, excluded (ISO 8601; default: the newest event)",
    )
    where = parser.add_mutually_exclusive_group()
    where.add_argument(
        "--config", type=Path, metavar="FILE", help="the daemon's config: its state_dir and id"
    )
    where.add_argument(
        "--state-dir",
        type=Path,
        metavar="DIR",
        help=f"the daemon's state directory (default {DaemonSettings().state_dir})",
    )
    parser.add_argument("--signal", metavar="ID", help="SignalId of the rows (default: the id)")
    parser.add_argument(
        "-o", "--output", metavar="FILE", help="write the CSV here (default: stdout)"
    )


class _Refused(Exception):
    """The export cannot be made; the message says why."""


def _where(args: argparse.Namespace) -> tuple[Path, str | None]:
    """The state directory and the junction's id (when a config names it)."""
    if args.config is None:
        return args.state_dir or DaemonSettings().state_dir, None
    from edgectl.config.loader import load_config

    try:
        config = load_config(args.config)
    except ConfigError as exc:
        raise _Refused(f"--config {args.config}: {exc}") from exc
    return config.daemon.state_dir, config.intersection.id


@contextmanager
def _output(name: str | None) -> Iterator[TextIO]:
    if name is None or name == "-":
        yield sys.stdout
        return
    try:
        fh = open(name, "w", encoding="utf-8", newline="")  # noqa: SIM115 - closed below
    except OSError as exc:
        raise _Refused(f"-o {name}: cannot write: {exc.strerror or exc}") from exc
    with fh:
        yield fh


def run(args: argparse.Namespace) -> int:
    if args.start is not None and args.end is not None and args.end <= args.start:
        print("edgectl export-events: --to must be later than --from", file=sys.stderr)
        return 1
    try:
        state_dir, config_id = _where(args)
        with EventLogReader(state_dir) as log:
            signal = args.signal or config_id or log.intersection_id or "0"
            with _output(args.output) as out:
                n = write_atspm_csv(
                    log.events(args.start, args.end), out, signal_id=signal, digits=3
                )
            span = log.span()
    except (_Refused, SyncError) as exc:
        print(f"edgectl export-events: {exc}", file=sys.stderr)
        return 1
    kept = (
        f"the log holds {span[0].isoformat(timespec='seconds')} to "
        f"{span[1].isoformat(timespec='seconds')}"
        if span
        else "the log is empty"
    )
    target = args.output if args.output not in (None, "-") else "stdout"
    print(f"edgectl export-events: {n} events of {signal} to {target} ({kept})", file=sys.stderr)
    return 0
