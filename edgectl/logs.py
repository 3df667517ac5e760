"""Log output, configured once by an entry point (``edgectl run``, ``demo``, ``firmware-sim``).

Library code only ever does ``log = structlog.get_logger("edgectl.field")`` (or
``structlog.get_logger(__name__)``) and logs short snake_case events with key/value context;
it never configures output. :func:`configure_logging` routes structlog through the standard
``logging`` module, so that

- levels are per component: the logger hierarchy ``edgectl`` → ``edgectl.field`` →
  ``edgectl.field.modbus`` takes ``levels={"field": "debug"}``, and libraries (pymodbus,
  aiomqtt, amqtt) come out through the same renderer;
- when stdout is not a TTY (systemd, a pipe) every record is one JSON object per line, with
  ``ts`` (ISO 8601, UTC), ``level``, ``logger`` and ``event``;
- on a TTY a human-readable console renderer is used instead.

**Severity under journald.** journald reads a ``<N>`` syslog priority at the start of each
stdout line (``SyslogLevelPrefix=yes``, the default) and stores it as the entry's
``PRIORITY`` with the prefix stripped. Every JSON line is therefore written as
``<6>{"event": ...}`` (``debug`` 7, ``info`` 6, ``warning`` 4, ``error`` 3, ``critical`` 2),
so ``journalctl -p warning -u edgectl`` filters by severity and ``journalctl -o cat`` shows
plain JSON. We chose this over the native journal protocol (no extra dependency, works for
any supervisor that understands the prefix). Outside journald, strip it with
``sed 's/^<[0-7]>//'`` or pass ``syslog_prefix=False``. The JSON keeps its own ``level`` too.

**Start-up errors** come before logging is configured (an unreadable config has no log
level yet): :func:`print_error` writes them as plain lines to stderr, each prefixed by ``<3>``
(sd-daemon(3): ``SD_ERR``) when stderr is connected to the journal — systemd then sets
``JOURNAL_STREAM`` to the ``device:inode`` of that stream — so ``journalctl -p err`` shows
them; on a terminal or a pipe they stay plain.

**Secrets.** A processor replaces the value of any key named like a secret (``password``,
``secret``, ``key``, ``token``, ``sig``, ``credentials``, ``authorization`` as a ``_``/``-``
separated word, at any depth of nested dicts) by ``"***"``. Keys ending in ``_file`` or
``_path`` (where a secret lives, not the secret) are kept.
"""

from __future__ import annotations

import json as jsonlib
import logging
import os
import re
import sys
from collections.abc import Mapping
from typing import Any, TextIO

import structlog
from structlog.typing import EventDict, Processor, WrappedLogger

LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warning": logging.WARNING,
    "error": logging.ERROR,
    "critical": logging.CRITICAL,
}

#: syslog priorities (RFC 5424) for the ``<N>`` prefix journald understands.
SYSLOG_PRIORITY = {"debug": 7, "info": 6, "warning": 4, "error": 3, "critical": 2}

#: Third-party loggers and their default level: they are chatty at INFO.
LIBRARY_LEVELS = {
    "pymodbus": "warning",
    "aiomqtt": "warning",
    "amqtt": "warning",
    "asyncio": "warning",
}

REDACTED = "***"
_SECRET_WORDS = frozenset(
    {
        "password",
        "passwd",
        "secret",
        "key",
        "token",
        "sig",
        "signature",
        "credentials",
        "credential",
        "authorization",
        "apikey",
        "psk",
    }
)
_WORD_SPLIT = re.compile(r"[_\-.\s]+")


def is_secret_key(key: str) -> bool:
    """``mqtt_password``, ``sig``, ``hmac-key`` → True; ``key_file``, ``keepalive`` → False."""
    words = [w for w in _WORD_SPLIT.split(key.lower()) if w]
    if words and words[-1] in ("file", "path"):
        return False
    return any(w in _SECRET_WORDS for w in words)


def _redact(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {
            k: (REDACTED if isinstance(k, str) and is_secret_key(k) else _redact(v))
            for k, v in value.items()
        }
    return value


def redact_secrets(_logger: WrappedLogger, _name: str, event_dict: EventDict) -> EventDict:
    """structlog processor: ``"***"`` for secret-looking keys (see the module docstring)."""
    for key in list(event_dict):
        if key == "event":
            continue
        if is_secret_key(key):
            event_dict[key] = REDACTED
        elif isinstance(event_dict[key], Mapping):
            event_dict[key] = _redact(event_dict[key])
    return event_dict


class SyslogJSONRenderer:
    """Render one JSON object, prefixed by ``<N>`` (the record's syslog priority)."""

    def __init__(self, *, syslog_prefix: bool = True) -> None:
        self.syslog_prefix = syslog_prefix

    def __call__(self, _logger: WrappedLogger, _name: str, event_dict: EventDict) -> str:
        line = jsonlib.dumps(event_dict, default=str, ensure_ascii=False, separators=(",", ":"))
        if not self.syslog_prefix:
            return line
        priority = SYSLOG_PRIORITY.get(str(event_dict.get("level", "info")), 6)
        return f"<{priority}>{line}"


def stream_is_journal(stream: TextIO, environ: Mapping[str, str] | None = None) -> bool:
    """True when ``stream`` is the journal stream systemd named in ``JOURNAL_STREAM``
    (``device:inode``, systemd.exec(5)); a variable inherited by a child whose stderr was
    redirected elsewhere does not match."""
    value = (os.environ if environ is None else environ).get("JOURNAL_STREAM", "")
    device, _, inode = value.partition(":")
    if not (device.isdigit() and inode.isdigit()):
        return False
    try:
        st = os.fstat(stream.fileno())
    except (OSError, ValueError, AttributeError):
        return False
    return (st.st_dev, st.st_ino) == (int(device), int(inode))


def print_error(*lines: str, stream: TextIO | None = None) -> None:
    """Write error lines to stderr (``stream``), at journald's error priority under systemd.

    For what happens before :func:`configure_logging` (see the module docstring)."""
    out = sys.stderr if stream is None else stream
    prefix = f"<{SYSLOG_PRIORITY['error']}>" if stream_is_journal(out) else ""
    for text in lines:
        # one journal entry per line, each with the priority (a message may hold newlines)
        for line in text.splitlines() or [""]:
            out.write(f"{prefix}{line}\n")
    out.flush()


def logger_name(component: str) -> str:
    """``field`` → ``edgectl.field``; a dotted name or a known library is taken as is."""
    if component == "edgectl" or "." in component or component in LIBRARY_LEVELS:
        return component
    return f"edgectl.{component}"


def _level(name: str) -> int:
    try:
        return LEVELS[name.lower()]
    except KeyError:
        raise ValueError(f"unknown log level {name!r}; expected one of {sorted(LEVELS)}") from None


_HANDLER_MARK = "_edgectl_handler"


def configure_logging(
    level: str = "info",
    levels: Mapping[str, str] | None = None,
    json: bool | None = None,
    *,
    stream: TextIO | None = None,
    syslog_prefix: bool = True,
) -> None:
    """Configure structlog and stdlib logging for the whole process (entry points only).

    ``level`` applies to ``edgectl`` and everything without its own level; ``levels`` maps a
    component (``field``, ``sync``, ``control``, ``ops`` …, or a full logger name such as
    ``pymodbus``) to its level. ``json=None`` chooses JSON unless ``stream`` (default stdout)
    is a TTY. Calling it again replaces the previous configuration. Raises
    :class:`ValueError` for an unknown level name.
    """
    out = sys.stdout if stream is None else stream
    if json is None:
        json = not _isatty(out)
    root_level = _level(level)
    overrides = {logger_name(k): _level(v) for k, v in (levels or {}).items()}

    shared: list[Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_logger_name,
        structlog.stdlib.add_log_level,
        structlog.stdlib.PositionalArgumentsFormatter(),
        structlog.processors.TimeStamper(fmt="iso", utc=True, key="ts"),
        redact_secrets,
    ]
    renderer: Processor
    if json:
        renderer = SyslogJSONRenderer(syslog_prefix=syslog_prefix)
        # structured tracebacks without local variables (they may hold keys and passwords)
        final: list[Processor] = [
            structlog.processors.ExceptionRenderer(
                structlog.tracebacks.ExceptionDictTransformer(show_locals=False)
            )
        ]
    else:
        renderer = structlog.dev.ConsoleRenderer(
            colors=_isatty(out),
            timestamp_key="ts",
            # never print local variables: they may hold keys and passwords
            exception_formatter=structlog.dev.RichTracebackFormatter(show_locals=False),
        )
        final = []
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            *final,
            renderer,
        ],
    )
    handler = logging.StreamHandler(out)
    handler.setFormatter(formatter)
    setattr(handler, _HANDLER_MARK, True)

    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, _HANDLER_MARK, False)]:
        root.removeHandler(old)
        old.close()
    root.addHandler(handler)
    _apply_levels(root_level, overrides)
    logging.captureWarnings(True)

    structlog.configure(
        processors=[
            structlog.stdlib.filter_by_level,
            *shared,
            structlog.processors.StackInfoRenderer(),
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        context_class=dict,
        # Not cached: a reconfiguration (tests, a SIGHUP changing levels) applies to loggers
        # that modules created at import time.
        cache_logger_on_first_use=False,
    )


def set_levels(level: str, levels: Mapping[str, str] | None = None) -> None:
    """Change levels in place (e.g. after a SIGHUP reload) without touching the output."""
    root_level = _level(level)
    _apply_levels(root_level, {logger_name(k): _level(v) for k, v in (levels or {}).items()})


# Loggers whose level configure_logging/set_levels set, so that a later call can undo them.
_configured: set[str] = set()


def _apply_levels(root_level: int, overrides: Mapping[str, int]) -> None:
    for name in _configured - set(overrides):
        logging.getLogger(name).setLevel(logging.NOTSET)
    _configured.clear()
    logging.getLogger().setLevel(root_level)
    levels = {name: max(_level(lib), root_level) for name, lib in LIBRARY_LEVELS.items()}
    levels["edgectl"] = root_level
    levels.update(overrides)
    for name, lvl in levels.items():
        logging.getLogger(name).setLevel(lvl)
        _configured.add(name)


def _isatty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


__all__ = [
    "LIBRARY_LEVELS",
    "SYSLOG_PRIORITY",
    "SyslogJSONRenderer",
    "configure_logging",
    "is_secret_key",
    "logger_name",
    "print_error",
    "redact_secrets",
    "set_levels",
    "stream_is_journal",
]
