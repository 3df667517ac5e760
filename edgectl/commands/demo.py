"""``edgectl demo [--duration S] [--broker URL]`` — emulator + broker + daemon, live.

Starts ``firmware_sim`` (the cabinet and its traffic) as a subprocess, an embedded MQTT broker
(amqtt, loopback only, MQTT 3.1.1) unless ``--broker`` is given, and the daemon itself in this
process, then shows a live view: the ring diagram with each ring's phase and interval,
detector bits, the queue estimate per phase, mode, link health and the latest events.
Ctrl-C stops all of it cleanly (the junction goes to flash through its clearances first).
With ``--duration S`` it stops by itself and prints a summary from the emulator's ground
truth: vehicles served, mean delay and the MMU state; exit 0 when the MMU never tripped and
traffic was served.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import secrets
import socket
import sys
import tempfile
from collections import deque
from pathlib import Path
from typing import Any

from edgectl.cabinet.channels import ChannelState
from edgectl.commands.examples import example_path
from edgectl.config.model import DaemonConfig
from edgectl.control.types import EventCode, Interval, Outputs, PedInterval

EVENT_NAMES = {int(c): c.name.lower() for c in EventCode}
INTERVAL_STYLE = {
    Interval.GREEN: "bold white on green",
    Interval.YELLOW: "bold black on yellow",
    Interval.RED_CLEAR: "bold white on red",
    Interval.RED: "white on red",
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--duration", type=float, help="stop after S seconds and print a summary")
    parser.add_argument("--broker", metavar="URL", help="use this MQTT broker instead of amqtt")
    parser.add_argument(
        "--config", type=Path, help="junction config (default: the 8-phase example)"
    )
    parser.add_argument(
        "--listen",
        default="modbus+tcp://127.0.0.1:0",
        help="emulator listen URL (modbus+tcp://127.0.0.1:0 or modbus+rtu://pty)",
    )
    parser.add_argument("--seed", type=int, default=1, help="emulator traffic seed")
    parser.add_argument("--mode", help="control mode after start-up (default: the config's)")
    parser.add_argument("--workdir", type=Path, help="keep logs, record and summary here")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


EXTRA_HINT = (
    "edgectl demo: the embedded MQTT broker (amqtt) is not installed; install the demo extra, "
    "pip install 'edgectl[demo]', or give a broker with --broker mqtt://HOST:1883"
)


def run(args: argparse.Namespace) -> int:
    if not args.broker:
        try:
            import amqtt.broker  # noqa: F401  (the `demo` extra)
        except ModuleNotFoundError:
            print(EXTRA_HINT, file=sys.stderr)
            return 2
    workdir_ctx: Any = (
        contextlib.nullcontext(str(args.workdir))
        if args.workdir
        else tempfile.TemporaryDirectory(prefix="edgectl-demo-")
    )
    with workdir_ctx as wd:
        workdir = Path(wd)
        workdir.mkdir(parents=True, exist_ok=True)
        try:
            return asyncio.run(_demo(args, workdir))
        except KeyboardInterrupt:
            return 0


async def _start_amqtt(port: int) -> Any:
    import logging

    from amqtt.broker import Broker

    for name in ("amqtt", "transitions"):
        logging.getLogger(name).setLevel(logging.ERROR)
    broker = Broker(
        {
            "listeners": {"default": {"type": "tcp", "bind": f"127.0.0.1:{port}"}},
            "plugins": {
                "amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": True},
            },
        }
    )
    await broker.start()
    return broker


async def _demo(args: argparse.Namespace, workdir: Path) -> int:
    from edgectl.config.loader import load_config
    from edgectl.config.model import Mode
    from edgectl.config.settings import MqttProtocol
    from edgectl.daemon.assemble import build_daemon
    from edgectl.daemon.loop import with_field_url
    from edgectl.logs import configure_logging
    from firmware_sim.process import EmulatorProcess

    log_file = (workdir / "daemon.log").open("w", encoding="utf-8")
    configure_logging("info", json=True, stream=log_file)
    config_path = args.config or example_path()
    config: DaemonConfig = load_config(config_path)
    profile = "builtin:two-phase" if len(config.channels) <= 4 else "builtin:nema-cabinet"
    emulator = EmulatorProcess(
        workdir, listen=args.listen, profile=profile, seed=args.seed, name="sim"
    )
    broker = None
    interactive = sys.stdout.isatty()
    try:
        emulator.start()
        if args.broker:
            mqtt_url, protocol = args.broker, config.mqtt.protocol
        else:
            port = _free_port()
            broker = await _start_amqtt(port)
            mqtt_url, protocol = f"mqtt://127.0.0.1:{port}", MqttProtocol.V311

        def overrides(cfg: DaemonConfig) -> DaemonConfig:
            """The demo's wiring over the file; applied again to the file on SIGHUP."""
            cfg = with_field_url(cfg, emulator.url)
            mqtt: dict[str, Any] = {"url": mqtt_url, "protocol": protocol}
            if cfg.mqtt.command_key_file is None and not cfg.mqtt.allow_unsigned_commands:
                mqtt["command_key_file"] = key_file  # commands signed, as in the field
            updates: dict[str, Any] = {
                "mqtt": cfg.mqtt.model_copy(update=mqtt),
                "daemon": cfg.daemon.model_copy(
                    update={"state_dir": workdir / "state", "metrics_listen": ""}
                ),
            }
            if args.mode:
                updates["control"] = cfg.control.model_copy(update={"mode": Mode(args.mode)})
            return cfg.model_copy(update=updates)

        key_file = _demo_key(workdir)
        config = overrides(config)
        (workdir / "state").mkdir(exist_ok=True)
        view = LiveView(emulator.url, mqtt_url)
        daemon, closers = build_daemon(
            config,
            config_path=config_path,
            config_loader=lambda: overrides(load_config(config_path)),
            hooks=[view.on_tick],
        )
        signing = (
            f" --key-file {config.mqtt.command_key_file}" if config.mqtt.command_key_file else ""
        )
        print(
            f"edgectl demo: cabinet {emulator.url}  broker {mqtt_url}  logs {workdir}\n"
            f"  commands: edgectl cmd --broker {mqtt_url} --intersection "
            f"{config.intersection.id}{signing} request_state",
            flush=True,
        )
        try:
            async with asyncio.TaskGroup() as tg:
                run_task = tg.create_task(daemon.run(), name="edgectl[daemon]")
                tg.create_task(view.show(interactive, run_task), name="edgectl[view]")
                if args.duration is not None:
                    tg.create_task(_stop_after(daemon, args.duration), name="edgectl[timer]")
        finally:
            for close in closers:
                close()
    finally:
        summary: dict[str, Any] = {}
        if emulator.process is not None:
            with contextlib.suppress(Exception):
                summary = emulator.stop()
        if broker is not None:
            with contextlib.suppress(Exception):
                await broker.shutdown()
        log_file.close()
    return _print_summary(summary)


def _demo_key(workdir: Path) -> Path:
    """A fresh command key for this demo only (owner-readable): `edgectl cmd --key-file`
    signs with it."""
    path = workdir / "command.key"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as f:
        f.write(secrets.token_hex(32) + "\n")
    return path


async def _stop_after(daemon: Any, seconds: float) -> None:
    await asyncio.sleep(seconds)
    daemon.request_stop()


def _print_summary(summary: dict[str, Any]) -> int:
    if not summary:
        print("edgectl demo: no summary from the emulator", file=sys.stderr)
        return 1
    vehicles = summary.get("vehicles", {})
    mmu = summary.get("mmu", {})
    served = int(vehicles.get("served", 0))
    print(
        f"vehicles arrived {vehicles.get('arrived', 0)}, served {served}, "
        f"mean delay {float(summary.get('delay_s_mean') or 0.0):.1f} s; "
        f"MMU {'TRIPPED ' + str(mmu.get('faults')) if mmu.get('tripped') else 'not tripped'}"
    )
    return 0 if served > 0 and not mmu.get("tripped") else 1


class LiveView:
    """The terminal view (rich), fed after every control tick."""

    def __init__(self, field_url: str, broker_url: str) -> None:
        self.daemon: Any = None  # the daemon that ticked last
        self.field_url = field_url
        self.broker_url = broker_url
        self.events: deque[str] = deque(maxlen=10)
        self.last: Outputs | None = None

    def on_tick(self, daemon: Any, out: Outputs) -> None:
        self.daemon = daemon
        self.last = out
        for ev in out.events:
            if ev.code in (81, 82, 43, 45):
                continue  # detector edges and calls would flood the list
            self.events.appendleft(
                f"{ev.t:8.1f}  {ev.code:3d} {EVENT_NAMES.get(ev.code, '?'):<24} {ev.param}"
            )

    def render(self) -> Any:
        from rich.console import Group
        from rich.panel import Panel
        from rich.table import Table
        from rich.text import Text

        out = self.last
        if out is None:
            return Panel("starting…")
        cfg = self.daemon.config
        head = Text(
            f"{cfg.intersection.id} {cfg.intersection.name}   mode {out.mode.value}"
            f"   plan {out.plan}   state {out.state.value}   t={out.t:.1f}s"
        )
        if out.alarms:
            head.append("   ALARMS: " + ", ".join(sorted(out.alarms)), style="bold red")
        rings = Table(title="rings", show_header=False, box=None)
        for ring in cfg.rings:
            status = next((r for r in out.rings if r.ring == ring.id), None)
            cells = []
            for pid in ring.sequence:
                label = Text(f" {pid} ")
                if status is not None and status.phase == pid:
                    label.stylize(INTERVAL_STYLE.get(status.interval, ""))
                    if status.ped in (PedInterval.WALK, PedInterval.PED_CLEAR):
                        label.append(" W" if status.ped is PedInterval.WALK else " FDW")
                    label.append(f" {status.interval.value} {status.elapsed:.1f}s")
                cells.append(label)
            rings.add_row(f"ring {ring.id}", *cells)
        dets = Text("detectors ")
        for d in out.detectors:
            style = "bold red" if d.failed else ("bold green" if d.on else "dim")
            dets.append(f"{d.id}{'!' if d.failed else ('■' if d.on else '·')} ", style=style)
        queues = Text("queue est. ")
        for pid, acc in sorted(self.daemon.telemetry._phases.items()):
            queues.append(f"φ{pid}:{acc.queue} ")
        chans = Text("channels ")
        for ch, st in out.channels:
            style = {
                ChannelState.G: "green",
                ChannelState.Y: "yellow",
                ChannelState.W: "green",
            }.get(st, "red")
            chans.append(f"{ch}:{st.name} ", style=style)
        links = Text("links ")
        for name, report in self.daemon.reports.items():
            links.append(
                f"{name}={report.health.value} ",
                style="green" if report.health.value == "online" else "red",
            )
        sync = self.daemon.sync
        links.append(f"mqtt={'up' if sync is not None and sync.connected else 'down'}")
        events = Text("\n".join(self.events) or "-")
        return Panel(
            Group(head, rings, chans, dets, queues, links, Panel(events, title="latest events")),
            title="edgectl demo",
            subtitle=f"{self.field_url}  {self.broker_url}  Ctrl-C to stop",
        )

    async def show(self, interactive: bool, until: asyncio.Task[int]) -> None:
        if interactive:
            from rich.live import Live

            with Live(self.render(), refresh_per_second=4, transient=False) as live:
                while not until.done():
                    live.update(self.render())
                    await asyncio.sleep(0.25)
            return
        last_print = -10.0
        while not until.done():
            out = self.last
            if out is not None and out.t - last_print >= 5.0:
                last_print = out.t
                rings = " ".join(f"r{r.ring}:{r.phase}/{r.interval.value}" for r in out.rings)
                print(f"t={out.t:6.1f} {out.state.value:<13} {rings}", flush=True)
            await asyncio.sleep(0.25)
