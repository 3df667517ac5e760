"""Log configuration: JSON lines with a syslog priority, per-component levels, redaction."""

from __future__ import annotations

import io
import json
import logging
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
import structlog

from edgectl.logs import configure_logging, is_secret_key, logger_name, set_levels


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    for h in list(root.handlers):
        if h not in handlers:
            root.removeHandler(h)
    root.setLevel(level)
    for name in (
        "edgectl",
        "edgectl.field",
        "edgectl.sync",
        "pymodbus",
        "aiomqtt",
        "amqtt",
        "asyncio",
    ):
        logging.getLogger(name).setLevel(logging.NOTSET)
    logging.captureWarnings(False)
    structlog.reset_defaults()


def lines(stream: io.StringIO) -> list[tuple[int, dict[str, object]]]:
    out = []
    for line in stream.getvalue().splitlines():
        m = re.fullmatch(r"<([0-7])>(\{.*\})", line)
        assert m, f"not a <N>-prefixed JSON line: {line!r}"
        out.append((int(m.group(1)), json.loads(m.group(2))))
    return out


def test_json_lines_carry_priority_level_and_utc_timestamp() -> None:
    stream = io.StringIO()
    configure_logging("debug", stream=stream)
    log = structlog.get_logger("edgectl.field")
    log.debug("poll_started", device="cabinet")
    log.info("device_online", device="cabinet")
    log.warning("poll_failed", device="cabinet", error="timeout")
    log.error("output_lost")
    try:
        password = "hunter2"
        raise RuntimeError(f"boom {len(password)}")
    except RuntimeError:
        log.exception("tick_crashed")
    got = lines(stream)
    assert [p for p, _ in got] == [7, 6, 4, 3, 3]
    assert [d["level"] for _, d in got] == ["debug", "info", "warning", "error", "error"]
    first = got[0][1]
    assert first["event"] == "poll_started"
    assert first["device"] == "cabinet"
    assert first["logger"] == "edgectl.field"
    ts = datetime.fromisoformat(str(first["ts"]))
    assert ts.utcoffset() == timedelta(0)
    assert abs(datetime.now(UTC) - ts) < timedelta(minutes=1)
    assert "RuntimeError" in json.dumps(got[4][1]["exception"])
    assert "hunter2" not in stream.getvalue()  # no local variables in tracebacks


def test_stdlib_library_records_are_rendered_too() -> None:
    stream = io.StringIO()
    configure_logging("info", levels={"pymodbus": "info"}, stream=stream)
    logging.getLogger("pymodbus.client").info("connected to %s", "127.0.0.1:502")
    ((prio, d),) = lines(stream)
    assert prio == 6
    assert d["event"] == "connected to 127.0.0.1:502"
    assert d["logger"] == "pymodbus.client"


def test_per_component_levels() -> None:
    stream = io.StringIO()
    configure_logging("warning", levels={"field": "debug", "sync": "error"}, stream=stream)
    structlog.get_logger("edgectl.field.modbus").debug("frame_sent")  # child of edgectl.field
    structlog.get_logger("edgectl.sync").warning("reconnecting")  # below error: dropped
    structlog.get_logger("edgectl.sync").error("outbox_corrupt")
    structlog.get_logger("edgectl.control").info("plan_changed")  # below warning: dropped
    structlog.get_logger("edgectl.control").warning("detector_failed")
    logging.getLogger("amqtt.broker").info("chatter")  # libraries default to warning
    assert [d["event"] for _, d in lines(stream)] == [
        "frame_sent",
        "outbox_corrupt",
        "detector_failed",
    ]

    set_levels("info", {"sync": "debug"})  # a reload: field's override is gone
    structlog.get_logger("edgectl.field").debug("hidden_now")
    structlog.get_logger("edgectl.sync").debug("shown_now")
    structlog.get_logger("edgectl.control").info("info_shown")
    assert [d["event"] for _, d in lines(stream)][3:] == ["shown_now", "info_shown"]


def test_secrets_are_redacted_at_any_depth() -> None:
    stream = io.StringIO()
    configure_logging("info", stream=stream)
    structlog.get_logger("edgectl.sync").info(
        "command_received",
        password="hunter2",
        mqtt_token="t0k3n",
        key_file="/etc/edgectl/hmac.key",
        keepalive=30,
        command={"id": "c1", "sig": "abcdef", "params": {"api-key": "k", "phase": 2}},
    )
    ((_, d),) = lines(stream)
    assert d["password"] == "***"
    assert d["mqtt_token"] == "***"
    assert d["key_file"] == "/etc/edgectl/hmac.key"
    assert d["keepalive"] == 30
    assert d["command"] == {"id": "c1", "sig": "***", "params": {"api-key": "***", "phase": 2}}
    assert "hunter2" not in stream.getvalue()
    assert "abcdef" not in stream.getvalue()


def test_console_renderer_when_asked() -> None:
    stream = io.StringIO()
    configure_logging("info", json=False, stream=stream)
    structlog.get_logger("edgectl.ops").info("metrics_listening", url="http://127.0.0.1:1/")
    text = stream.getvalue()
    assert "metrics_listening" in text
    assert "url=http://127.0.0.1:1/" in text
    assert not text.startswith("<")
    assert not text.lstrip().startswith("{")


def test_auto_json_when_not_a_tty_and_prefix_optional() -> None:
    stream = io.StringIO()  # isatty() is False
    configure_logging(stream=stream, syslog_prefix=False)
    structlog.get_logger("edgectl").info("started")
    assert json.loads(stream.getvalue())["event"] == "started"


def test_reconfiguring_replaces_the_handler() -> None:
    first, second = io.StringIO(), io.StringIO()
    configure_logging(stream=first)
    configure_logging(stream=second)
    structlog.get_logger("edgectl").info("once")
    assert first.getvalue() == ""
    assert len(lines(second)) == 1


def test_unknown_level_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown log level"):
        configure_logging("verbose", stream=io.StringIO())


@pytest.mark.parametrize(
    ("key", "secret"),
    [
        ("password", True),
        ("mqtt_password", True),
        ("sig", True),
        ("hmac-key", True),
        ("client_secret", True),
        ("token", True),
        ("key_file", False),
        ("password_file", False),
        ("keepalive", False),
        ("monkey", False),
        ("device", False),
        ("signal_id", False),
    ],
)
def test_is_secret_key(key: str, secret: bool) -> None:
    assert is_secret_key(key) is secret


def test_logger_name() -> None:
    assert logger_name("field") == "edgectl.field"
    assert logger_name("edgectl.sync.outbox") == "edgectl.sync.outbox"
    assert logger_name("pymodbus") == "pymodbus"
