"""The high-resolution event log as ATSPM CSV: read it tolerantly, write it plainly.

The CSV has the header ``SignalId,Timestamp,EventCode,EventParam``, one row per event, codes
and parameters in the Indiana hi-res enumerations (:class:`edgectl.control.types.EventCode`).

Writing (:func:`write_atspm_csv`): the timestamp as ``YYYY-MM-DD HH:MM:SS.f`` in UTC — tenths
by default (the controller's resolution), ``digits=3`` for milliseconds. An event's time ``t``
(seconds) is mapped to wall time as ``epoch + t``: controller time with the run's start as
``epoch``, or POSIX seconds with the default epoch (1970).

Reading (:func:`read_events`): ``Timestamp`` is ISO 8601, with or without a zone — naive times
are taken as they are written, a zone is converted to UTC. Parsing is tolerant: header names
in any case/spacing (``SignalID``, ``Event Code``…), ``,``/``;``/tab separators, a byte-order
mark, blank lines, no header line at all; malformed rows are skipped and counted, and the
first few are named; exact repeats are dropped. A file of several signals needs a choice.
"""

from __future__ import annotations

import csv
import io
import re
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Protocol, TextIO

from edgectl.control.types import EventCode
from edgectl.errors import EdgectlError

__all__ = [
    "ATSPM_HEADER",
    "EventLog",
    "HiResEvent",
    "ReportError",
    "atspm_csv",
    "describe",
    "format_timestamp",
    "parse_timestamp",
    "read_events",
    "write_atspm_csv",
]

ATSPM_HEADER = ("SignalId", "Timestamp", "EventCode", "EventParam")

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class ReportError(EdgectlError):
    """The event log cannot be turned into a report (unreadable, empty, ambiguous)."""


@dataclass(frozen=True, slots=True)
class HiResEvent:
    """One row of a log: ``t`` in seconds since the epoch (naive timestamps read as UTC)."""

    t: float
    code: int
    param: int


@dataclass(frozen=True, slots=True)
class EventLog:
    """The events of one signal, as read from a CSV."""

    signal: str
    events: tuple[HiResEvent, ...]  # sorted by time, file order kept for equal times
    rows: int  # data rows read
    skipped: tuple[str, ...]  # one "line N: reason" per malformed row
    duplicates: int = 0  # exact repeats (same time, code, param) dropped

    @property
    def start(self) -> float:
        return self.events[0].t

    @property
    def end(self) -> float:
        return self.events[-1].t


# --- writing --------------------------------------------------------------------------------


class _Timed(Protocol):
    """What a row is made of: :class:`~edgectl.control.types.Event` or :class:`HiResEvent`."""

    @property
    def t(self) -> float: ...
    @property
    def code(self) -> int: ...
    @property
    def param(self) -> int: ...


def format_timestamp(t: float, epoch: datetime = _EPOCH, *, digits: int = 1) -> str:
    """``epoch + t`` as ``YYYY-MM-DD HH:MM:SS.f`` (UTC; ``digits`` decimals, rounded)."""
    scale = 10**digits
    units = round(t * scale)
    moment = epoch + timedelta(seconds=units // scale)
    return f"{moment:%Y-%m-%d %H:%M:%S}.{units % scale:0{digits}d}"


def describe(code: int) -> str:
    """Short name of an event code (``PHASE_GAP_OUT``), or the number if unknown."""
    try:
        return EventCode(code).name
    except ValueError:
        return str(code)


def write_atspm_csv(
    events: Iterable[_Timed],
    out: TextIO,
    *,
    signal_id: str,
    epoch: datetime = _EPOCH,
    header: bool = True,
    digits: int = 1,
) -> int:
    """Write events as ATSPM CSV rows; returns the number of rows written."""
    writer = csv.writer(out, lineterminator="\n")
    if header:
        writer.writerow(ATSPM_HEADER)
    n = 0
    for ev in events:
        stamp = format_timestamp(ev.t, epoch, digits=digits)
        writer.writerow((signal_id, stamp, int(ev.code), int(ev.param)))
        n += 1
    return n


def atspm_csv(events: Iterable[_Timed], *, signal_id: str, epoch: datetime = _EPOCH) -> str:
    """The CSV as a string (convenience for tests and small exports)."""
    buf = io.StringIO()
    write_atspm_csv(events, buf, signal_id=signal_id, epoch=epoch)
    return buf.getvalue()


# --- reading --------------------------------------------------------------------------------

_COLUMNS = {
    "signalid": "signal",
    "signal": "signal",
    "timestamp": "ts",
    "time": "ts",
    "eventcode": "code",
    "code": "code",
    "eventparam": "param",
    "param": "param",
    "eventparameter": "param",
}
_HEADER_NAMES = {
    "signal": "SignalId",
    "ts": "Timestamp",
    "code": "EventCode",
    "param": "EventParam",
}


def _normalise(header: str) -> str:
    return re.sub(r"[^a-z]", "", header.lower())


def parse_timestamp(text: str) -> float:
    """ISO 8601 → epoch seconds; naive times are read as UTC. Raises ValueError."""
    value = text.strip()
    if not value:
        raise ValueError("empty timestamp")
    stamp = datetime.fromisoformat(value)
    if stamp.tzinfo is None:
        stamp = stamp.replace(tzinfo=UTC)
    return stamp.timestamp()


def _read_text(source: str | Path | io.TextIOBase) -> tuple[str, str]:
    if isinstance(source, io.TextIOBase):
        return source.read(), "<stream>"
    name = str(source)
    try:
        return Path(source).read_text(encoding="utf-8-sig"), name
    except OSError as exc:
        raise ReportError(f"{name}: cannot read: {exc.strerror or exc}") from exc
    except UnicodeDecodeError as exc:
        raise ReportError(f"{name}: not UTF-8 text (byte {exc.start})") from exc


def read_events(source: str | Path | io.TextIOBase, *, signal: str | None = None) -> EventLog:
    """Read an ATSPM CSV (see the module docstring). Raises :class:`ReportError`."""
    text, name = _read_text(source)
    lines = text.removeprefix("\ufeff").splitlines()
    first = next((line for line in lines if line.strip()), "")
    if not first:
        raise ReportError(f"{name}: empty file")
    delimiter = max((",", ";", "\t"), key=first.count)
    reader = csv.reader(lines, delimiter=delimiter)
    header = next(reader)
    columns = {_COLUMNS[n]: i for i, n in enumerate(map(_normalise, header)) if n in _COLUMNS}
    body: Iterable[list[str]] = reader
    if len(columns) < 4:
        if len(header) >= 4 and _looks_like_row(header):
            columns = {"signal": 0, "ts": 1, "code": 2, "param": 3}  # no header line
            body = [header, *reader]
        else:
            missing = sorted(_HEADER_NAMES[m] for m in _HEADER_NAMES.keys() - columns.keys())
            raise ReportError(
                f"{name}: header {header!r} lacks {', '.join(missing)}"
                " (expected SignalId,Timestamp,EventCode,EventParam)"
            )
    by_signal: dict[str, list[tuple[float, int, HiResEvent]]] = defaultdict(list)
    skipped: list[str] = []
    rows = 0
    width = max(columns.values()) + 1
    for row in body:
        if not any(cell.strip() for cell in row):
            continue
        rows += 1
        line_no = reader.line_num
        if len(row) < width:
            skipped.append(f"line {line_no}: {len(row)} fields, expected {width}")
            continue
        try:
            t = parse_timestamp(row[columns["ts"]])
            code = int(float(row[columns["code"]]))
            param = int(float(row[columns["param"]]))
        except ValueError as exc:
            skipped.append(f"line {line_no}: {exc}")
            continue
        sid = row[columns["signal"]].strip()
        by_signal[sid].append((t, len(by_signal[sid]), HiResEvent(t, code, param)))
    if not by_signal:
        detail = f"; {skipped[0]}" if skipped else ""
        raise ReportError(f"{name}: no usable event rows ({len(skipped)} malformed{detail})")
    signal = _choose_signal(name, sorted(by_signal), signal)
    ordered = [e for _, _, e in sorted(by_signal[signal], key=lambda x: (x[0], x[1]))]
    events = tuple(dict.fromkeys(ordered))  # exports repeat rows; keep the first of each
    return EventLog(
        signal=signal,
        events=events,
        rows=rows,
        skipped=tuple(skipped),
        duplicates=len(ordered) - len(events),
    )


def _choose_signal(name: str, found: Sequence[str], signal: str | None) -> str:
    if signal is None:
        if len(found) > 1:
            raise ReportError(
                f"{name}: events of {len(found)} signals ({', '.join(found)}):"
                " choose one with --signal"
            )
        return found[0]
    if signal not in found:
        raise ReportError(f"{name}: no events for signal {signal!r} (found {', '.join(found)})")
    return signal


def _looks_like_row(cells: Sequence[str]) -> bool:
    try:
        parse_timestamp(cells[1])
        int(cells[2])
    except ValueError:
        return False
    return True
