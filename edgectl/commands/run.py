"""``edgectl run --config FILE [--field URL] [--broker URL]`` — the daemon (what systemd runs).

Exit status: 0 after a clean stop; 78 (``EX_CONFIG``, sysexits.h) when the configuration
cannot start — a missing or invalid file, a ``--field`` that does not fit, no field device, a
bad device URL or profile — so that systemd does not restart on it
(``RestartPreventExitStatus=78`` in the unit); 1 for any other failure (restarted). Start-up
errors reach journald at error priority (:func:`edgectl.logs.print_error`).
"""

from __future__ import annotations

import argparse
import asyncio
import os
from pathlib import Path
from typing import TYPE_CHECKING

import structlog

from edgectl.errors import ConfigError, FatalFieldError, SyncError

if TYPE_CHECKING:
    from edgectl.config.model import DaemonConfig

log = structlog.get_logger("edgectl.daemon")

#: the configuration cannot start: systemd must not restart (sysexits.h EX_CONFIG)
EX_CONFIG: int = os.EX_CONFIG


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", required=True, type=Path, help="daemon configuration (TOML)")
    parser.add_argument("--field", metavar="URL", help="URL of the single cabinet device")
    parser.add_argument("--broker", metavar="URL", help="MQTT broker URL (overrides [mqtt].url)")
    parser.add_argument("--state-dir", type=Path, help="state directory (overrides [daemon])")
    parser.add_argument("--metrics", metavar="HOST:PORT", help="Prometheus endpoint; '' = off")
    parser.add_argument("--log-level", choices=["debug", "info", "warning", "error"])
    parser.add_argument("--log-json", action="store_true", help="JSON logs even on a TTY")


def apply_overrides(config: DaemonConfig, args: argparse.Namespace) -> DaemonConfig:
    """The command line over the file: ``--state-dir``, ``--metrics``, ``--log-level``,
    ``--broker``, ``--field``. Raises :class:`ValueError` for a ``--field`` that does not fit.

    Applied at start and again to the file re-read on SIGHUP, so that a reload compares like
    with like."""
    from edgectl.daemon.loop import with_field_url

    updates: dict[str, object] = {}
    if args.state_dir is not None:
        updates["state_dir"] = args.state_dir
    if args.metrics is not None:
        updates["metrics_listen"] = args.metrics
    if args.log_level is not None:
        updates["log_level"] = args.log_level
    if updates:
        daemon_cfg = config.daemon.model_copy(update=updates)
        config = config.model_copy(update={"daemon": daemon_cfg})
    if args.broker is not None:
        config = config.model_copy(
            update={"mqtt": config.mqtt.model_copy(update={"url": args.broker})}
        )
    if args.field:
        config = with_field_url(config, args.field)
    return config


def _broker_problems(config: DaemonConfig, args: argparse.Namespace) -> list[str]:
    """``--broker`` replaces ``[mqtt] url`` after validation: check it the same way (no
    credentials in it, no password in clear). Errors only; the URL is never echoed."""
    if args.broker is None:
        return []
    from edgectl.config.validation import mqtt_problems

    return [str(p) for p in mqtt_problems(config.mqtt) if p.severity == "error"]


def run(args: argparse.Namespace) -> int:
    from edgectl.config.loader import load_config
    from edgectl.logs import configure_logging, print_error

    try:
        config = load_config(args.config, check_files=True)
    except ConfigError as exc:
        print_error(
            f"edgectl: invalid configuration {args.config}:",
            *(f"  {problem}" for problem in exc.problems),
        )
        return EX_CONFIG
    try:
        config = apply_overrides(config, args)
    except ValueError as exc:
        print_error(f"edgectl: --field: {exc}")
        return EX_CONFIG
    broker_problems = _broker_problems(config, args)
    if broker_problems:
        print_error("edgectl: --broker:", *(f"  {p}" for p in broker_problems))
        return EX_CONFIG
    daemon_cfg = config.daemon
    configure_logging(
        daemon_cfg.log_level, daemon_cfg.log_levels, json=True if args.log_json else None
    )
    if not config.field.devices:
        print_error("edgectl: no field device configured (use [field] or --field URL)")
        return EX_CONFIG
    try:
        return asyncio.run(_main(config, args))
    except FatalFieldError as exc:
        # a bad device URL or profile: retrying will not help (logged at error, <3>)
        log.error("field_config_error", error=str(exc))
        return EX_CONFIG
    except SyncError as exc:
        # the state directory cannot be opened (read-only, locked): a restart may find it
        # back, so not EX_CONFIG; one clear line at error priority, no traceback
        log.error("sync_start_failed", error=str(exc))
        return 1
    except KeyboardInterrupt:
        return 0


async def _main(config: DaemonConfig, args: argparse.Namespace) -> int:
    from edgectl.config.loader import load_config
    from edgectl.daemon.assemble import build_daemon

    path: Path = args.config
    daemon, closers = build_daemon(
        config,
        config_path=path,
        config_loader=lambda: apply_overrides(load_config(path, check_files=True), args),
    )
    try:
        return await daemon.run()
    finally:
        for close in closers:
            close()
