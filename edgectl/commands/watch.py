"""``edgectl watch``: a live table of the fleet from the retained ``status`` and ``state``.

::

    edgectl watch --broker mqtt://broker:1883                  # every junction, live (rich)
    edgectl watch --broker mqtt://broker:1883 --intersection hz-0001 --once 2

Columns: junction, online (with ``bdseq``), mode, plan, per-ring phase and interval, alarms,
last seen. ``--once S`` collects for S seconds, prints a plain-text table and exits (0 when at
least one junction was seen, 1 otherwise).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import aiomqtt

from edgectl.commands.broker import add_broker_arguments, broker_client
from edgectl.errors import EdgectlError
from edgectl.sync.clock import utc_now
from edgectl.sync.link import redact_url

COLUMNS = ("junction", "online", "mode", "plan", "rings", "alarms", "last seen")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--broker", required=True, help="mqtt://host:1883, mqtts://…, unix://…")
    parser.add_argument("--intersection", help="only this junction")
    parser.add_argument("--prefix", default="citybrain", help="topic prefix")
    parser.add_argument(
        "--once", type=float, metavar="S", help="collect for S seconds, print a plain table, exit"
    )
    add_broker_arguments(parser)


@dataclass
class Junction:
    id: str
    status: dict[str, Any] = field(default_factory=dict)
    state: dict[str, Any] = field(default_factory=dict)
    last_seen: datetime | None = None
    seen_by_receipt: bool = False

    def row(self, now: datetime) -> tuple[str, ...]:
        online = self.status.get("online")
        bdseq = self.status.get("bdseq")
        on = "?" if online is None else ("yes" if online else "NO")
        if bdseq is not None:
            on += f" ({bdseq})"
        rings = _rings(self.state.get("rings"))
        alarms = self.state.get("alarms") or []
        alarm_text = ",".join(map(str, alarms)) if isinstance(alarms, list | tuple) else str(alarms)
        seen = "-"
        if self.last_seen is not None:
            seen = f"{(now - self.last_seen).total_seconds():.0f}s ago"
        return (
            self.id,
            on,
            str(self.state.get("mode", "-")),
            str(self.state.get("plan", "-")),
            rings or "-",
            alarm_text or "-",
            seen,
        )


def _rings(value: object) -> str:
    if not isinstance(value, list):
        return ""
    parts = []
    for ring in value:
        if isinstance(ring, Mapping):
            phase = ring.get("phase")
            parts.append(
                f"R{ring.get('ring', '?')}:{'-' if phase is None else phase} "
                f"{ring.get('interval', '')}".strip()
            )
    return " ".join(parts)


def _parse_ts(value: object) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        t = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return t if t.tzinfo is not None else None


class Fleet:
    """What has been seen so far, by junction id."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.junctions: dict[str, Junction] = {}

    def update(self, topic: str, payload: bytes, now: datetime) -> None:
        parts = topic.split("/")
        base = self.prefix.split("/")
        if len(parts) != len(base) + 2 or parts[: len(base)] != base:
            return
        jid, kind = parts[len(base)], parts[len(base) + 1]
        try:
            body = json.loads(payload)
        except ValueError:
            return
        if not isinstance(body, dict) or kind not in ("status", "state"):
            return
        j = self.junctions.setdefault(jid, Junction(jid))
        if kind == "status":
            j.status = body
        else:
            j.state = body
        # last seen = when the junction said it (its ts), not when a retained copy arrived;
        # a message without ts (the will) counts only when nothing better is known
        seen = _parse_ts(body.get("ts"))
        if seen is not None:
            j.last_seen = (
                seen if j.last_seen is None or j.seen_by_receipt else max(j.last_seen, seen)
            )
            j.seen_by_receipt = False
        elif j.last_seen is None:
            j.last_seen, j.seen_by_receipt = now, True

    def rows(self, now: datetime) -> list[tuple[str, ...]]:
        return [self.junctions[k].row(now) for k in sorted(self.junctions)]


def plain_table(rows: list[tuple[str, ...]]) -> str:
    table = [COLUMNS, *rows]
    widths = [max(len(r[i]) for r in table) for i in range(len(COLUMNS))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in table]
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    try:
        return asyncio.run(_watch(args))
    except EdgectlError as exc:  # a bad URL, credential file or option: one line, status 2
        print(f"edgectl watch: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 0


async def _watch(args: argparse.Namespace) -> int:
    who = args.intersection or "+"
    for name, value in (("intersection", who), ("prefix", args.prefix)):
        if (value != "+" and "+" in value) or "#" in value or not value:
            raise EdgectlError(f"--{name} {value!r}: not a valid topic level")
    if args.once is not None and (not math.isfinite(args.once) or args.once < 0):
        raise EdgectlError(f"--once {args.once}: seconds >= 0")
    client = broker_client(args)
    fleet = Fleet(args.prefix)
    try:
        async with client:
            await client.subscribe(f"{args.prefix}/{who}/status", qos=1)
            await client.subscribe(f"{args.prefix}/{who}/state", qos=1)
            if args.once is not None:
                try:
                    async with asyncio.timeout(args.once):
                        await _collect(client, fleet)
                except TimeoutError:
                    pass
                print(plain_table(fleet.rows(utc_now())))
                return 0 if fleet.junctions else 1
            await _live(client, fleet)
    except aiomqtt.MqttError as exc:
        print(f"edgectl watch: {redact_url(args.broker)}: {exc}", file=sys.stderr)
        return 2
    return 0


async def _collect(client: aiomqtt.Client, fleet: Fleet) -> None:
    async for message in client.messages:
        raw = message.payload
        if isinstance(raw, bytes | bytearray):
            fleet.update(str(message.topic), bytes(raw), utc_now())


async def _live(client: aiomqtt.Client, fleet: Fleet) -> None:
    from rich.live import Live
    from rich.table import Table

    def render() -> Table:
        table = Table(title="edgectl fleet")
        for col in COLUMNS:
            table.add_column(col)
        for row in fleet.rows(utc_now()):
            style = "red" if row[1].startswith("NO") else None
            table.add_row(*row, style=style)
        return table

    async with asyncio.TaskGroup() as tg:
        tg.create_task(_collect(client, fleet), name="edgectl[watch:collect]")
        with Live(render(), refresh_per_second=2) as live:
            while True:
                await asyncio.sleep(0.5)
                live.update(render())
