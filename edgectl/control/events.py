"""Event helpers and the ATSPM (Indiana hi-res) CSV export.

The CSV has the header ``SignalId,Timestamp,EventCode,EventParam``, one row per event, the
timestamp as ``YYYY-MM-DD HH:MM:SS.f`` (tenths, the controller's resolution). Controller time
``t`` (seconds) is mapped to wall time as ``epoch + t``.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import TextIO

from edgectl.control.types import Event, EventCode

__all__ = ["ATSPM_HEADER", "atspm_csv", "describe", "format_timestamp", "write_atspm_csv"]

ATSPM_HEADER = ("SignalId", "Timestamp", "EventCode", "EventParam")

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def format_timestamp(t: float, epoch: datetime = _EPOCH) -> str:
    """``epoch + t`` as ATSPM's ``YYYY-MM-DD HH:MM:SS.f`` (UTC, tenths of a second)."""
    tenths = round(t * 10)
    moment = epoch + timedelta(seconds=tenths // 10)
    return f"{moment:%Y-%m-%d %H:%M:%S}.{tenths % 10}"


def describe(code: int) -> str:
    """Short name of an event code (``PHASE_GAP_OUT``), or the number if unknown."""
    try:
        return EventCode(code).name
    except ValueError:
        return str(code)


def write_atspm_csv(
    events: Iterable[Event],
    out: TextIO,
    *,
    signal_id: str,
    epoch: datetime = _EPOCH,
    header: bool = True,
) -> int:
    """Write events as ATSPM CSV rows; returns the number of rows written."""
    writer = csv.writer(out, lineterminator="\n")
    if header:
        writer.writerow(ATSPM_HEADER)
    n = 0
    for ev in events:
        writer.writerow((signal_id, format_timestamp(ev.t, epoch), ev.code, ev.param))
        n += 1
    return n


def atspm_csv(events: Iterable[Event], *, signal_id: str, epoch: datetime = _EPOCH) -> str:
    """The CSV as a string (convenience for tests and small exports)."""
    buf = io.StringIO()
    write_atspm_csv(events, buf, signal_id=signal_id, epoch=epoch)
    return buf.getvalue()
