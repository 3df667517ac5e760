"""SIGHUP: read the configuration again; a good one is applied at a safe point.

Follows systemd's reload protocol: ``RELOADING=1`` first, ``READY=1`` once the new
configuration is accepted or refused (the old one keeps running when refused). What the
daemon read at start (the junction's layout, the field, the MQTT link, neighbours) needs a
restart; the plan goes to the engine (applied at its next barrier), the mode at once, log
levels at once. The key files ``[mqtt]`` names are read again (their paths need a restart,
their content does not: a key rotation is a reload); a key file that cannot be read refuses
the whole reload and the old keys stay in force.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import structlog

from edgectl.config.model import DaemonConfig
from edgectl.control.types import EventCode, SetMode, SetPlan

if TYPE_CHECKING:
    from edgectl.daemon.port import OperatorPort
    from edgectl.daemon.publish import Publisher
    from edgectl.sync.signing import Key

    _Keys = tuple[tuple[Key, ...], tuple[Key, ...]]

log = structlog.get_logger("edgectl.daemon")

#: Sections read once at start: a change needs a restart.
RESTART_SECTIONS = (
    "phases",
    "rings",
    "barriers",
    "channels",
    "detectors",
    "zones",
    "field",
    "mqtt",
    "outflow",
    "neighbours",
)


def config_digest(config: DaemonConfig) -> str:
    return hashlib.sha256(config.model_dump_json().encode()).hexdigest()[:16]


def reload_problems(old: DaemonConfig, new: DaemonConfig) -> list[str]:
    """Why ``new`` cannot replace ``old`` without a restart."""
    problems = [
        f"[{name}] changed: restart required"
        for name in RESTART_SECTIONS
        if getattr(new, name) != getattr(old, name)
    ]
    if new.intersection.id != old.intersection.id:
        problems.append("intersection.id changed: restart required")
    keep = {"log_level", "log_levels"}
    if new.daemon.model_dump(exclude=keep) != old.daemon.model_dump(exclude=keep):
        problems.append("[daemon] changed (other than log levels): restart required")
    return problems


class Reloader:
    """Reads and applies a configuration on request (the control loop calls :meth:`reload`).

    ``loader`` reads the file again (``edgectl run`` re-applies its command-line overrides
    in it); without one, ``load_config(config_path)``.
    """

    def __init__(
        self,
        port: OperatorPort,
        publisher: Publisher,
        *,
        config_path: Path | None = None,
        loader: Callable[[], DaemonConfig] | None = None,
    ) -> None:
        self.port = port
        self.publisher = publisher
        self.config_path = config_path
        self.loader = loader

    def reload(self) -> None:
        from edgectl.config.loader import load_config
        from edgectl.errors import ConfigError

        self.publisher.reloading()
        new: DaemonConfig | None = None
        try:
            if self.loader is not None:
                new = self.loader()
            elif self.config_path is not None:
                new = load_config(self.config_path)
            else:
                log.warning("reload_ignored", reason="no config file")
        except ConfigError as exc:
            self._rejected([str(p) for p in exc.problems], param=0)
        except (OSError, ValueError) as exc:  # an override that no longer fits the file
            self._rejected([str(exc)], param=0)
        if new is not None:
            self.apply(new)
        self.publisher.reload_over()

    def apply(self, new: DaemonConfig) -> bool:
        """Apply a validated configuration: the plan at the engine's next barrier, the mode
        at once, log levels at once. False (and nothing applied) when it needs a restart."""
        port = self.port
        old = port.config
        problems = reload_problems(old, new)
        if problems:
            self._rejected(problems, param=1)
            return False
        keys = self._read_keys(new)
        if keys is False:
            return False
        if (new.daemon.log_level, new.daemon.log_levels) != (
            old.daemon.log_level,
            old.daemon.log_levels,
        ):
            from edgectl.logs import set_levels

            set_levels(new.daemon.log_level, new.daemon.log_levels)
        plan = new.plan(new.control.plan)
        port.directives.append(SetPlan(plan))
        if new.control.mode is not port.controller.mode:
            port.directives.append(SetMode(new.control.mode))
        port.config = new
        if keys is not None and self.publisher.sync is not None:
            self.publisher.sync.set_keys(*keys)
        self.publisher.reloaded(applied=True, digest=config_digest(new))
        log.info("reload_accepted", plan=plan.id, mode=new.control.mode.value)
        self.publisher.emit(EventCode.CONFIG_RELOADED, plan.id)
        return True

    def _read_keys(self, new: DaemonConfig) -> _Keys | Literal[False] | None:
        """The keys of ``new``'s key files (None without a sync service); False, and the
        reload refused, when a file cannot be read."""
        from edgectl.errors import EdgectlError

        sync = self.publisher.sync
        if sync is None:
            return None
        try:
            return sync.read_keys(new.mqtt)
        except EdgectlError as exc:
            self._rejected([f"[mqtt] {exc}: the old keys stay in force"], param=0)
            return False

    def _rejected(self, problems: list[str], *, param: int) -> None:
        log.error("reload_rejected", problems=problems)
        self.publisher.emit(EventCode.CONFIG_REJECTED, param)
        self.publisher.reloaded(applied=False)
