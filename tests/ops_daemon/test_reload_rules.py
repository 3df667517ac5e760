"""What a SIGHUP may change, decided in-process (no subprocess, no I/O): the daemon is built
but never run; the reload is driven through the same method the control loop calls."""

from __future__ import annotations

import io
import logging
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from edgectl.config.loader import load_config, parse_config
from edgectl.config.model import DaemonConfig, Mode, Neighbour
from edgectl.control.types import SetMode, SetPlan
from edgectl.daemon.loop import Daemon, with_field_url
from edgectl.errors import ConfigError
from edgectl.logs import LIBRARY_LEVELS, configure_logging
from edgectl.ops.metrics import Metrics
from edgectl.ops.sdnotify import Notifier, NotifyListener

from .conftest import EIGHT_PHASE

FIELD = "modbus+tcp://127.0.0.1:1502"


@pytest.fixture
def config() -> DaemonConfig:
    return with_field_url(load_config(EIGHT_PHASE), FIELD)


@pytest.fixture
def listener() -> Iterator[NotifyListener]:
    with NotifyListener() as lst:
        yield lst


@pytest.fixture
def daemon(config: DaemonConfig, listener: NotifyListener) -> Iterator[Daemon]:
    notifier = Notifier(listener.address)
    metrics = Metrics(devices=["cabinet"])
    # no field I/O here
    yield Daemon(config, config_path=EIGHT_PHASE, devices=[], metrics=metrics, notifier=notifier)
    notifier.close()


def _reloads(d: Daemon, result: str) -> float:
    value = d.metrics.registry.get_sample_value("edgectl_config_reloads_total", {"result": result})
    return float(value or 0.0)


def _reload_with(d: Daemon, new: DaemonConfig) -> None:
    d.reloader.loader = lambda: new
    d._reload()


def test_same_file_is_accepted_and_plan_and_mode_go_to_the_engine(
    daemon: Daemon, config: DaemonConfig, listener: NotifyListener
) -> None:
    control = config.control.model_copy(update={"plan": 2, "mode": Mode.COORDINATED})
    _reload_with(daemon, config.model_copy(update={"control": control}))
    directives = list(daemon.directives)
    assert directives == [SetPlan(config.plan(2)), SetMode(Mode.COORDINATED)]
    assert daemon.config.control.plan == 2
    assert _reloads(daemon, "applied") == 1 and _reloads(daemon, "rejected") == 0
    # systemd's reload protocol: RELOADING=1 (with MONOTONIC_USEC), then READY=1
    first, second = listener.receive(2), listener.receive(2)
    assert first.get("RELOADING") == "1" and int(first.get("MONOTONIC_USEC") or 0) > 0
    assert second.get("READY") == "1"


@pytest.mark.parametrize(
    ("section", "update", "problem"),
    [
        ("field", {"detector_loss_s": 2.0}, "[field] changed"),
        ("mqtt", {"url": "mqtt://elsewhere:1883"}, "[mqtt] changed"),
        ("outflow", {"enabled": True}, "[outflow] changed"),
        ("daemon", {"state_dir": Path("/elsewhere")}, "[daemon] changed"),
    ],
)
def test_sections_read_at_start_are_refused(
    daemon: Daemon, config: DaemonConfig, section: str, update: dict[str, object], problem: str
) -> None:
    changed = getattr(config, section).model_copy(update=update)
    assert daemon.reload_problems(config.model_copy(update={section: changed})) == [
        f"{problem}: restart required"
        if section != "daemon"
        else "[daemon] changed (other than log levels): restart required"
    ]
    _reload_with(daemon, config.model_copy(update={section: changed}))
    assert not daemon.directives
    assert daemon.config is config
    assert _reloads(daemon, "rejected") == 1


def test_neighbour_change_is_refused(daemon: Daemon, config: DaemonConfig) -> None:
    """The daemon subscribes to its neighbours' topics at start."""
    more = (Neighbour(intersection="J1", detectors=(2,), phase=4, travel_s=20.0),)
    changed = config.model_copy(update={"neighbours": more})
    assert daemon.reload_problems(changed) == ["[neighbours] changed: restart required"]


def test_layout_change_is_refused(daemon: Daemon, config: DaemonConfig) -> None:
    fewer = config.model_copy(update={"detectors": config.detectors[:-1]})
    assert daemon.reload_problems(fewer) == ["[detectors] changed: restart required"]
    assert daemon.apply_reload(fewer) is False
    assert daemon.config is config and not daemon.directives


def test_invalid_file_is_refused_with_every_problem(
    daemon: Daemon, tmp_path: Path, listener: NotifyListener
) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text(EIGHT_PHASE.read_text().replace("yellow = 3.5", "yellow = 2.0"))
    daemon.reloader.loader = lambda: with_field_url(load_config(bad), FIELD)
    daemon._reload()
    assert not daemon.directives
    assert _reloads(daemon, "rejected") == 1
    # the old configuration keeps running: systemd is told the reload is over all the same
    assert "RELOADING" in listener.receive(2)
    assert "READY" in listener.receive(2)


def test_log_levels_are_applied_on_reload(daemon: Daemon, config: DaemonConfig) -> None:
    root = logging.getLogger()
    handlers = list(root.handlers)
    touched = ["", "edgectl", "edgectl.field", *LIBRARY_LEVELS]
    levels_before = {name: logging.getLogger(name).level for name in touched}
    field_logger = logging.getLogger("edgectl.field")
    try:
        configure_logging("info", json=True, stream=io.StringIO())
        levels = config.daemon.model_copy(update={"log_levels": {"field": "debug"}})
        assert daemon.apply_reload(config.model_copy(update={"daemon": levels})) is True
        assert field_logger.level == logging.DEBUG
        assert daemon.apply_reload(config) is True  # and back
        assert field_logger.level == logging.NOTSET
    finally:
        for h in [h for h in root.handlers if h not in handlers]:
            root.removeHandler(h)
        for name, lvl in levels_before.items():
            logging.getLogger(name).setLevel(lvl)


def test_bad_log_level_is_a_config_problem_not_a_crash(tmp_path: Path) -> None:
    text = EIGHT_PHASE.read_text().replace(
        "[control]", '[daemon]\nlog_levels = { field = "verbose" }\n\n[control]', 1
    )
    with pytest.raises(ConfigError) as err:
        parse_config(text)
    assert "daemon.log_levels.field" in str(err.value.problems[0]), err.value.problems
    path = tmp_path / "bad.toml"
    path.write_text(text)
    run = subprocess.run(
        [sys.executable, "-m", "edgectl", "run", "--config", str(path), "--field", FIELD],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert run.returncode == 78  # EX_CONFIG: systemd does not restart on it
    assert "log_levels" in run.stderr and "Traceback" not in run.stderr, run.stderr
