"""The public API of edgectl.sync is deliberate: this test pins it."""

from __future__ import annotations

import inspect

import edgectl.sync
from edgectl.sync import SyncService


def test_public_api_is_pinned() -> None:
    assert sorted(edgectl.sync.__all__) == sorted(
        [
            "COMMAND_TYPES",
            "STATE_VOLATILE_KEYS",
            "Backoff",
            "Command",
            "CommandHandler",
            "CommandProcessor",
            "CommandResult",
            "ErrorCode",
            "Key",
            "LinkConfig",
            "Outbox",
            "SyncMetrics",
            "SyncService",
            "Topics",
            "build_command",
            "canonical_json",
            "iso_ms",
            "open_link",
            "parse_broker_url",
            "read_keys",
            "sign",
            "utc_now",
            "verify_response",
        ]
    )
    for name in edgectl.sync.__all__:
        assert hasattr(edgectl.sync, name)


def test_service_signature_is_the_daemon_contract() -> None:
    params = inspect.signature(SyncService.__init__).parameters
    assert list(params) == [
        "self",
        "settings",
        "intersection_id",
        "state_dir",
        "handler",
        "version",
        "config_digest",
        "neighbours",
        "outflow",
        "clock",
    ]
    assert all(params[n].kind is inspect.Parameter.KEYWORD_ONLY for n in list(params)[2:])
    for method in ("run", "close"):
        assert inspect.iscoroutinefunction(getattr(SyncService, method))
    for method in (
        "publish_state",
        "add_events",
        "add_telemetry",
        "add_departures",
        "set_config_digest",
    ):
        assert not inspect.iscoroutinefunction(getattr(SyncService, method))
    assert isinstance(inspect.getattr_static(SyncService, "connected"), property)
    assert isinstance(inspect.getattr_static(SyncService, "metrics"), property)
    assert isinstance(inspect.getattr_static(SyncService, "inbox"), property)
