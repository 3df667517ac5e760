"""Wall-clock helpers of the sync layer: every message carries ``ts`` in one format."""

from __future__ import annotations

from datetime import UTC, datetime


def utc_now() -> datetime:
    """The current time, timezone-aware UTC (the default clock of :class:`SyncService`)."""
    return datetime.now(UTC)


def iso_ms(t: datetime) -> str:
    """UTC ISO 8601 with milliseconds and ``Z``: ``2026-11-21T05:38:50.123Z``."""
    u = t.astimezone(UTC)
    return u.strftime("%Y-%m-%dT%H:%M:%S.") + f"{u.microsecond // 1000:03d}Z"
