"""MQTT sync with the centre (SPEC §7): the link, the SQLite outbox, commands, the service.

The public API (pinned by ``tests/sync/test_api.py``)::

    SyncService, SyncMetrics, Topics          the service the daemon runs (service.py, a facade
                                              over its streams: status.py, state.py,
                                              forward.py, respond.py, neighbours.py)
    Command, CommandHandler, CommandResult    what the daemon's handler implements
    CommandProcessor, ErrorCode                                         (commands.py)
    build_command, sign, canonical_json, Key, read_keys, verify_response
                                              signing (signing.py): the centre signs commands
                                              and checks the junction's signed answers
    Outbox                                    the store-and-forward database (outbox.py)
    LinkConfig, Backoff, open_link, parse_broker_url                   (link.py)
    utc_now, iso_ms                           the timestamp format of every message

The daemon's event log (``eventlog.py``, read by ``edgectl export-events``) is written by the
service too. Layering: ``sync/`` imports ``config`` and the leaves (``control`` nowhere); the
daemon imports ``sync``, never the reverse.
"""

from edgectl.backoff import Backoff
from edgectl.sync.clock import iso_ms, utc_now
from edgectl.sync.commands import COMMAND_TYPES, Command, CommandHandler, CommandResult, ErrorCode
from edgectl.sync.link import LinkConfig, open_link, parse_broker_url
from edgectl.sync.outbox import Outbox
from edgectl.sync.processor import CommandProcessor
from edgectl.sync.service import STATE_VOLATILE_KEYS, SyncMetrics, SyncService, Topics
from edgectl.sync.signing import (
    Key,
    build_command,
    canonical_json,
    read_keys,
    sign,
    verify_response,
)

__all__ = [
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
