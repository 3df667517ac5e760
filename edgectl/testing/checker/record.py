"""Change records (``time_s,channel,state``, e.g. ``firmware-sim --record``) read and checked."""

from __future__ import annotations

import csv
import math
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

from edgectl.cabinet.channels import ChannelState
from edgectl.testing.checker.channels import ChannelChecker
from edgectl.testing.checker.findings import Finding

__all__ = ["check_record", "read_record"]


def _parse_state(text: str) -> ChannelState:
    value = text.strip()
    if value.isdigit():
        return ChannelState(int(value))
    return ChannelState[value.upper()]


def read_record(
    path_or_rows: str | Path | Iterable[Sequence[str] | Mapping[str, str]],
) -> list[tuple[float, int, ChannelState]]:
    """Rows of a ``time_s,channel,state`` record (a CSV file, or rows as lists or dicts).

    States are names (``G``, ``FDW``) or register values (``3``); a header row is skipped.
    Raises :class:`ValueError` naming the row of a malformed record.
    """
    rows: Iterable[Sequence[str] | Mapping[str, str]]
    if isinstance(path_or_rows, str | Path):
        with Path(path_or_rows).open(newline="", encoding="utf-8") as handle:
            rows = list(csv.reader(handle))
    else:
        rows = path_or_rows
    out: list[tuple[float, int, ChannelState]] = []
    for number, row in enumerate(rows, start=1):
        if isinstance(row, Mapping):
            cells = [str(row["time_s"]), str(row["channel"]), str(row["state"])]
        else:
            cells = [str(c) for c in row]
        if not cells or all(not c.strip() for c in cells):
            continue
        if number == 1 and cells[0].strip() == "time_s":
            continue
        if len(cells) != 3:
            raise ValueError(f"record row {number}: expected time_s,channel,state, got {cells}")
        try:
            t = float(cells[0])
            channel = int(cells[1])
            state = _parse_state(cells[2])
        except (ValueError, KeyError) as exc:
            raise ValueError(f"record row {number}: {cells}: {exc}") from exc
        if not math.isfinite(t):
            raise ValueError(f"record row {number}: time {cells[0]!r} is not finite")
        out.append((t, channel, state))
    return out


def check_record(
    path_or_rows: str | Path | Iterable[Sequence[str] | Mapping[str, str]],
    conflicts: Iterable[tuple[int, int]],
    min_yellow: Mapping[int, float],
    min_red_clear: Mapping[int, float],
    min_ped_clear: Mapping[int, float] | None = None,
    *,
    tolerance: float = 1e-3,
    permissive: Mapping[int, Iterable[int]] | None = None,
) -> list[Finding]:
    """Check a change record (``time_s,channel,state``, e.g. ``firmware-sim --record``).

    Rows with the same time form one frame (they happened together); rows must be in time
    order (a row going back in time is a finding ``record_out_of_order``). ``permissive``:
    flashing yellow arrow channel → the channels it yields to (:func:`permissive_channels`,
    or the ``fya`` of a ``firmware-sim --summary``); without it an FY is never a right of way.
    """
    rows = read_record(path_or_rows)
    checker = ChannelChecker(
        conflicts,
        min_yellow,
        min_red_clear,
        min_ped_clear,
        tolerance=tolerance,
        permissive=permissive,
    )
    findings: list[Finding] = []
    frame: dict[int, ChannelState] = {}
    current: float | None = None
    for t, channel, state in rows:
        if current is not None and t < current:
            findings.append(
                Finding(t, "record_out_of_order", (channel,), detail=f"{t} after {current}")
            )
            continue
        if current is not None and t != current:
            findings += checker.feed(current, frame)
            frame = {}
        current = t
        frame[channel] = state
    if current is not None:
        findings += checker.feed(current, frame)
    return findings
