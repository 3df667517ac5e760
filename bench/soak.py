"""Soak: the daemon against firmware_sim (TCP and RTU pty) with a broker, under random faults.

    .venv/bin/python -m bench.soak --duration 3600 --seed 1 --report docs/soak.md

Two ``edgectl run`` processes (one per emulator: Modbus TCP and Modbus RTU over the emulator's
pty) publish to one mosquitto — through a TCP proxy this script controls, so the network to
the broker can be dropped — while a consumer (aiomqtt, persistent session, connected to the
broker directly: it is the centre) records every ``events``/``telemetry`` ``seq``. A seeded
random schedule injects, one after another:

- ``broker_restart`` — mosquitto stopped and started again on the same port;
- ``net_drop`` — the proxy stops moving bytes (a blackhole, as a dead link: nothing is
  refused, nothing arrives) for a while;
- ``sighup`` — configuration reload; ``kill9`` — ``kill -9`` of a daemon, restarted after 1–3 s
  on the same state directory (as systemd's ``Restart=always`` would);
- ``silent`` / ``corrupt`` / ``drop`` (Modbus wire faults), ``stuck`` / ``chatter`` / ``dead``
  (detector faults) and ``power_cycle`` — the emulators' ``--fault`` schedules, generated up
  front from the same seed.

At the end, the daemons are stopped cleanly and everything is checked from independent
sources: the emulators' records (independent checker: no conflict, no short yellow, no skipped
red clearance; no flash outside the windows of faults that demand one), their summaries (MMU
tripped only by the watchdog, inside a silence or a kill), the consumer's seqs against the
daemons' outbox counters (no gap, nothing lost), RSS over time (first vs last quarter of the
longest-lived daemon process), late ticks (daemon logs), and no daemon exit we did not cause.
Writes a Markdown report (``--report``) and JSON (``--json``); exit status 0 when every check
passes.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import signal
import sqlite3
import statistics
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiomqtt

from edgectl.config.loader import load_config
from edgectl.testing.checker import channel_minimums, check_record
from edgectl.testing.hil import Emulator, ManagedProcess, read_record
from edgectl.testing.mosquitto import MosquittoBroker

REPO = Path(__file__).resolve().parents[1]

EIGHT_PHASE = REPO / "edgectl" / "examples" / "eight_phase.toml"
RECORD_JITTER_S = 0.03  # as tests/hil/support.py: the daemon's delivery-clock threshold + noise
STARTUP_S = 7.0  # start-up flash 5 s + all-red 2 s (edgectl/examples/eight_phase.toml)
RECOVERY_S = 8.0  # link healthy 1 s + all-red 2 s + start-up, with margin
FIELD_FAULTS = ("silent", "corrupt", "drop", "stuck", "chatter", "dead", "power_cycle")
DAEMON_FAULTS = ("sighup", "kill9")
NET_FAULTS = ("broker_restart", "net_drop")
KINDS = FIELD_FAULTS + DAEMON_FAULTS + NET_FAULTS
TARGETS = ("tcp", "rtu")
FLASH_STATES = frozenset({"FR", "FY"})


# --------------------------------------------------------------------------- the schedule


@dataclass(frozen=True)
class Fault:
    t: float  # soak seconds
    kind: str
    target: str  # tcp | rtu | network
    duration: float = 0.0
    param: int = 0  # detector id

    def spec(self, offset: float) -> str:
        """The emulator ``--fault`` spec, in the emulator's own time (``offset`` later)."""
        at = f"@{max(0.0, self.t - offset):.1f}"
        if self.kind == "power_cycle":
            return "power_cycle" + at
        value = {"corrupt": ":0.3", "drop": ":0.3", "silent": ""}.get(self.kind, f":{self.param}")
        return f"{self.kind}{value}{at}+{self.duration:.1f}"

    def flash_window(self) -> tuple[float, float] | None:
        """When this fault may put the junction into flash (soak seconds)."""
        if self.kind == "silent":
            return (self.t - 0.5, self.t + self.duration + RECOVERY_S)
        if self.kind == "kill9":
            return (self.t - 0.5, self.t + self.duration + STARTUP_S + RECOVERY_S)
        if self.kind == "power_cycle":
            return (self.t - 0.5, self.t + STARTUP_S + RECOVERY_S)
        return None

    def demands_watchdog(self) -> bool:
        return self.kind in ("silent", "kill9")


def schedule(seed: int, duration: float, *, start: float = 20.0, tail: float = 25.0) -> list[Fault]:
    """Faults one after another, kinds in seeded shuffled rounds (every kind once per round)."""
    rng = random.Random(seed)
    faults: list[Fault] = []
    t = start
    pool: list[str] = []
    while t < duration - tail:
        if not pool:
            pool = list(KINDS)
            rng.shuffle(pool)
        kind = pool.pop()
        target = "network" if kind in NET_FAULTS else rng.choice(TARGETS)
        dur, block, param = 0.0, 0.0, 0
        if kind == "broker_restart":
            dur = rng.uniform(1.0, 6.0)
            block = dur
        elif kind == "net_drop":
            dur = rng.uniform(2.0, 20.0)
            block = dur
        elif kind == "kill9":
            dur = rng.uniform(1.0, 3.0)  # until the restart
            block = dur + STARTUP_S + RECOVERY_S
        elif kind == "silent":
            dur = rng.uniform(1.5, 4.0)
            block = dur + RECOVERY_S
        elif kind in ("corrupt", "drop"):
            dur = rng.uniform(3.0, 8.0)
            block = dur
        elif kind in ("stuck", "chatter", "dead"):
            dur = rng.uniform(10.0, 30.0)
            param = rng.randint(1, 12)
            block = 2.0  # runs on in the background
        elif kind == "power_cycle":
            block = STARTUP_S + RECOVERY_S
        faults.append(Fault(round(t, 1), kind, target, round(dur, 1), param))
        t += block + rng.uniform(3.0, 8.0)
    return faults


# --------------------------------------------------------------------------- the network


class BlackholeProxy:
    """A TCP proxy to the broker whose link can be cut: bytes stop moving both ways (nothing
    is refused or reset, as on a dead link) until :meth:`restore`; new connections hang."""

    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.port = 0
        self._up = asyncio.Event()
        self._up.set()
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self.connections = 0

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = int(self._server.sockets[0].getsockname()[1])

    def cut(self) -> None:
        self._up.clear()

    def restore(self) -> None:
        self._up.set()

    async def close(self) -> None:
        self._up.set()
        if self._server is not None:
            self._server.close()
        for w in list(self._writers):
            w.close()
        if self._server is not None:
            await self._server.wait_closed()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        try:
            await self._up.wait()
            try:
                up_r, up_w = await asyncio.open_connection("127.0.0.1", self.upstream_port)
            except OSError:
                return  # broker down: the client sees the connection close
            self._writers.add(up_w)
            self.connections += 1
            try:
                async with asyncio.TaskGroup() as tg:
                    tg.create_task(self._pump(reader, up_w), name="soak[proxy:up]")
                    tg.create_task(self._pump(up_r, writer), name="soak[proxy:down]")
            finally:
                self._writers.discard(up_w)
                up_w.close()
        finally:
            self._writers.discard(writer)
            writer.close()

    async def _pump(self, src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
        try:
            while data := await src.read(65536):
                await self._up.wait()
                dst.write(data)
                await dst.drain()
        except OSError:
            pass
        finally:
            dst.close()


# --------------------------------------------------------------------------- the centre


def parse_ts(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


@dataclass
class StreamLog:
    seqs: set[int] = field(default_factory=set)
    messages: int = 0
    duplicates: int = 0
    historical: int = 0
    bytes: int = 0


class Consumer:
    """The centre: a persistent-session subscriber that records every seq it receives."""

    def __init__(self, port: int, *, prefix: str = "citybrain", client_id: str = "soak-centre"):
        self.port = port
        self.prefix = prefix
        self.client_id = client_id
        self.streams: dict[tuple[str, str], StreamLog] = {}
        self.state_latency_s: list[float] = []
        self.state_messages = 0
        self.state_bytes = 0
        self.connects = 0
        self.connected = asyncio.Event()
        self.on_message: Callable[[str, str, dict[str, Any], int], None] | None = None

    def stream(self, iid: str, kind: str) -> StreamLog:
        return self.streams.setdefault((iid, kind), StreamLog())

    def _record(self, topic: str, payload: bytes) -> None:
        parts = topic.split("/")
        if len(parts) < 3:
            return
        iid, kind = parts[-2], parts[-1]
        try:
            body = json.loads(payload)
        except ValueError:
            return
        if not isinstance(body, dict):
            return
        if kind == "state":
            self.state_messages += 1
            self.state_bytes += len(payload)
            if isinstance(body.get("ts"), str):
                self.state_latency_s.append(time.time() - parse_ts(body["ts"]))
        elif kind in ("events", "telemetry"):
            log = self.stream(iid, kind)
            log.messages += 1
            log.bytes += len(payload)
            seq = int(body.get("seq", -1))
            if seq in log.seqs:
                log.duplicates += 1
            log.seqs.add(seq)
            if body.get("historical"):
                log.historical += 1
        if self.on_message is not None:
            self.on_message(iid, kind, body, len(payload))

    async def run(self, topics: tuple[str, ...] = ("events", "telemetry")) -> None:
        while True:
            try:
                async with aiomqtt.Client(
                    "127.0.0.1",
                    self.port,
                    identifier=self.client_id,
                    clean_session=False,
                    protocol=aiomqtt.ProtocolVersion.V311,
                    keepalive=10,
                ) as client:
                    for t in topics:
                        await client.subscribe(f"{self.prefix}/+/{t}", qos=1)
                    self.connects += 1
                    self.connected.set()
                    async for message in client.messages:
                        payload = message.payload
                        if isinstance(payload, bytes | bytearray):
                            self._record(str(message.topic), bytes(payload))
            except aiomqtt.MqttError:
                self.connected.clear()
                await asyncio.sleep(0.5)


# --------------------------------------------------------------------------- the daemons


def cpu_rss(pid: int) -> tuple[float, float]:
    """(utime + stime in s, VmRSS in MB) of ``pid``."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2 :].split()
    cpu = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    rss = 0.0
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            rss = int(line.split()[1]) / 1024
    return cpu, rss


@dataclass
class Incarnation:
    process: ManagedProcess
    started: float  # soak seconds
    ended: float | None = None
    killed: bool = False
    exit_code: int | None = None
    rss: list[tuple[float, float]] = field(default_factory=list)  # (soak s, MB)


class SoakDaemon:
    """One ``edgectl run`` whose process may be killed and restarted (same state directory)."""

    def __init__(
        self, name: str, workdir: Path, field_url: str, broker_url: str, env: dict[str, str]
    ) -> None:
        self.name = name
        self.workdir = workdir
        self.field_url = field_url
        self.broker_url = broker_url
        self.env = env
        self.state_dir = workdir / f"{name}-state"
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.incarnations: list[Incarnation] = []
        self.sighups = 0

    @property
    def current(self) -> Incarnation:
        return self.incarnations[-1]

    def start(self, now: float) -> None:
        argv = [
            sys.executable, "-m", "edgectl", "run",
            "--config", str(EIGHT_PHASE),
            "--field", self.field_url,
            "--broker", self.broker_url,
            "--state-dir", str(self.state_dir),
            "--metrics", "",
            "--log-json",
        ]  # fmt: skip
        n = len(self.incarnations) + 1
        proc = ManagedProcess(argv, self.workdir / f"{self.name}-{n}.log", env=self.env)
        proc.start()
        self.incarnations.append(Incarnation(proc, now))

    def events(self, inc: Incarnation) -> list[dict[str, Any]]:
        out = []
        for line in inc.process.output().splitlines():
            text = line[line.find("{") :] if "{" in line else ""
            with contextlib.suppress(ValueError):
                ev = json.loads(text)
                if isinstance(ev, dict):
                    out.append(ev)
        return out

    def ready(self) -> bool:
        inc = self.current
        return inc.process.running() and any(e.get("event") == "ready" for e in self.events(inc))

    def kill9(self, now: float) -> None:
        inc = self.current
        inc.killed = True
        inc.process.kill()
        inc.ended = now
        inc.exit_code = inc.process.proc.returncode if inc.process.proc else None

    def sighup(self) -> None:
        self.current.process.send(signal.SIGHUP)
        self.sighups += 1

    def sample(self, now: float) -> None:
        inc = self.current
        if inc.process.running():
            with contextlib.suppress(OSError, ValueError):
                inc.rss.append((now, cpu_rss(inc.process.pid)[1]))

    def stop(self, now: float) -> int | None:
        inc = self.current
        code = inc.process.stop(timeout=25.0)
        inc.ended = now
        inc.exit_code = code
        return code


def outbox_state(state_dir: Path) -> dict[str, Any]:
    """Per stream: the last seq assigned and the seqs still waiting in the outbox."""
    db = sqlite3.connect(state_dir / "sync.sqlite3")
    try:
        counters = dict(db.execute("SELECT name, value FROM counters").fetchall())
        pending: dict[str, list[int]] = {}
        for stream, seq in db.execute("SELECT stream, seq FROM outbox ORDER BY seq"):
            pending.setdefault(stream, []).append(int(seq))
    finally:
        db.close()
    return {
        s: {"last_seq": int(counters.get(f"seq:{s}", 0)), "pending": pending.get(s, [])}
        for s in ("events", "telemetry")
    }


# --------------------------------------------------------------------------- the run


@dataclass
class Check:
    name: str
    ok: bool
    detail: str


@dataclass
class SoakResult:
    command: str
    seed: int
    duration_s: float
    started_at: str
    wall_s: float
    faults: list[Fault]
    checks: list[Check]
    numbers: dict[str, Any]

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.checks)


class Soak:
    def __init__(self, args: argparse.Namespace, workdir: Path) -> None:
        self.args = args
        self.workdir = workdir
        self.faults = schedule(args.seed, args.duration)
        self.t0 = 0.0
        self.offsets: dict[str, float] = {}
        self.shift: dict[str, float] = {}
        self.emulators: dict[str, Emulator] = {}
        self.daemons: dict[str, SoakDaemon] = {}
        self.broker = MosquittoBroker(persistence=True)
        self.applied: list[tuple[float, str, str]] = []  # (soak s, kind, target) as done
        self.skipped: list[tuple[float, str, str, str]] = []

    def now(self) -> float:
        return time.monotonic() - self.t0

    async def run(self) -> SoakResult:
        started_at = datetime.now(UTC).isoformat(timespec="seconds")
        self.broker.start()
        proxy = BlackholeProxy(self.broker.port)
        await proxy.start()
        consumer = Consumer(self.broker.port)
        self.t0 = time.monotonic()
        try:
            for name, listen in (("tcp", "modbus+tcp://127.0.0.1:0"), ("rtu", "modbus+rtu://pty")):
                planned = self.now()
                specs = [
                    f.spec(planned)
                    for f in self.faults
                    if f.target == name and f.kind in FIELD_FAULTS
                ]
                emu = Emulator(
                    self.workdir,
                    listen=listen,
                    seed=self.args.seed,
                    faults=specs,
                    name=f"sim-{name}",
                )
                await asyncio.to_thread(emu.start)
                # the emulator's clock starts about when it prints its URL (after its imports):
                # its times + offset = soak times; its scheduled faults come `shift` s late
                self.offsets[name] = self.now()
                self.shift[name] = self.offsets[name] - planned
                self.emulators[name] = emu
            env = {
                "EDGECTL_MQTT__TELEMETRY_PERIOD_S": str(self.args.telemetry_period),
                "EDGECTL_MQTT__KEEPALIVE": "10",
                "EDGECTL_MQTT__ALLOW_UNSIGNED_COMMANDS": "true",  # a bench; no commands sent
            }
            async with asyncio.TaskGroup() as tg:
                consumer_task = tg.create_task(consumer.run(), name="soak[consumer]")
                async with asyncio.timeout(20):
                    await consumer.connected.wait()
                for name, emu in self.emulators.items():
                    d = SoakDaemon(
                        name,
                        self.workdir,
                        emu.url,
                        f"mqtt://127.0.0.1:{proxy.port}",
                        {**env, "EDGECTL_INTERSECTION__ID": f"soak-{name}"},
                    )
                    d.start(self.now())
                    self.daemons[name] = d
                sampler = tg.create_task(self._sample(), name="soak[sampler]")
                await self._inject(proxy)
                while self.now() < self.args.duration:
                    await self._watch()
                    await asyncio.sleep(min(1.0, max(0.0, self.args.duration - self.now())))
                sampler.cancel()
                stop_t = self.now()
                codes = await asyncio.gather(
                    *(asyncio.to_thread(d.stop, stop_t) for d in self.daemons.values())
                )
                outboxes = {n: outbox_state(d.state_dir) for n, d in self.daemons.items()}
                await self._drain(consumer, outboxes)
                consumer_task.cancel()
        finally:
            for d in self.daemons.values():
                if d.incarnations:
                    await asyncio.to_thread(d.current.process.stop)
            summaries = {}
            for name, emu in self.emulators.items():
                summaries[name] = await asyncio.to_thread(emu.stop)
            await proxy.close()
            self.broker.close()
        exits = dict(zip(self.daemons, codes, strict=True))
        checks, numbers = self._check(summaries, outboxes, consumer, exits, stop_t)
        return SoakResult(
            command=self.args.command,
            seed=self.args.seed,
            duration_s=self.args.duration,
            started_at=started_at,
            wall_s=round(self.now(), 1),
            faults=self.faults,
            checks=checks,
            numbers=numbers,
        )

    async def _sample(self) -> None:
        while True:
            for d in self.daemons.values():
                d.sample(self.now())
            await asyncio.sleep(self.args.rss_every)

    async def _watch(self) -> None:
        """A daemon exit we did not cause is a finding; restart it (as systemd would)."""
        for d in self.daemons.values():
            inc = d.current
            if not inc.killed and not inc.process.running():
                inc.ended = self.now()
                inc.exit_code = inc.process.proc.returncode if inc.process.proc else None
                await asyncio.to_thread(inc.process.stop)
                d.start(self.now())

    async def _sleep_until(self, t: float) -> None:
        while self.now() < t:
            await self._watch()
            await asyncio.sleep(min(0.5, max(0.0, t - self.now())))

    async def _inject(self, proxy: BlackholeProxy) -> None:
        for f in self.faults:
            await self._sleep_until(f.t)
            if f.kind in FIELD_FAULTS:
                self.applied.append((self.now(), f.kind, f.target))  # by the emulator itself
            elif f.kind == "broker_restart":
                await asyncio.to_thread(self.broker.stop)
                self.applied.append((self.now(), f.kind, f.target))
                await self._sleep_until(f.t + f.duration)
                await asyncio.to_thread(self.broker.start)
            elif f.kind == "net_drop":
                proxy.cut()
                self.applied.append((self.now(), f.kind, f.target))
                await self._sleep_until(f.t + f.duration)
                proxy.restore()
            elif f.kind in DAEMON_FAULTS:
                d = self.daemons[f.target]
                if not await asyncio.to_thread(d.ready):
                    self.skipped.append((self.now(), f.kind, f.target, "daemon not ready"))
                    continue
                if f.kind == "sighup":
                    d.sighup()
                    self.applied.append((self.now(), f.kind, f.target))
                else:
                    await asyncio.to_thread(d.kill9, self.now())
                    self.applied.append((self.now(), f.kind, f.target))
                    await self._sleep_until(f.t + f.duration)
                    d.start(self.now())

    async def _drain(self, consumer: Consumer, outboxes: dict[str, dict[str, Any]]) -> None:
        """Wait (bounded) until the centre has every seq the daemons handed to the broker."""
        deadline = time.monotonic() + self.args.drain_timeout
        while time.monotonic() < deadline:
            if not _missing(consumer, outboxes):
                return
            await asyncio.sleep(0.2)

    # --- the checks ---------------------------------------------------------------------

    def _check(
        self,
        summaries: dict[str, dict[str, Any]],
        outboxes: dict[str, dict[str, Any]],
        consumer: Consumer,
        codes: dict[str, int | None],
        stop_t: float,
    ) -> tuple[list[Check], dict[str, Any]]:
        config = load_config(EIGHT_PHASE)
        mins = channel_minimums(config, config.plan(config.control.plan))
        checks: list[Check] = []
        numbers: dict[str, Any] = {"per_target": {}}
        for name, summary in summaries.items():
            emu = self.emulators[name]
            off = self.offsets[name]
            conflicts = [(a, b) for a, b in summary["conflicts"]]
            findings = check_record(
                emu.record_path,
                conflicts,
                mins.yellow,
                mins.red_clear,
                mins.ped_clear,
                tolerance=RECORD_JITTER_S,
            )
            checks.append(
                Check(
                    f"{name}: record safe (no conflict, short yellow, skipped red clearance)",
                    not findings,
                    f"{len(findings)} findings" + "".join(f"; {x}" for x in findings[:5]),
                )
            )
            shift = self.shift[name]
            mine = [
                Fault(f.t + shift, f.kind, f.target, f.duration, f.param)
                if f.kind in FIELD_FAULTS
                else f
                for f in self.faults
                if f.target == name
            ]
            windows = [w for f in mine if (w := f.flash_window()) is not None]
            wd_windows = [w for f in mine if f.demands_watchdog() and (w := f.flash_window())]
            bad_mmu = [
                m
                for m in summary["mmu"]["faults"]
                if m["kind"] != "watchdog" or not _inside(m["t"] + off, wd_windows)
            ]
            checks.append(
                Check(
                    f"{name}: MMU tripped only by the watchdog during a silence or a kill",
                    not bad_mmu,
                    f"{len(summary['mmu']['faults'])} latches, unexplained: {bad_mmu[:5]}",
                )
            )
            rows = read_record(emu.record_path)
            stray = sorted(
                {
                    round(t + off, 1)
                    for t, ch, st in rows
                    if st in FLASH_STATES
                    and STARTUP_S + 3 < t + off < stop_t - 0.2
                    and not _inside(t + off, windows)
                }
            )
            checks.append(
                Check(
                    f"{name}: no flash outside the windows of faults that demand one",
                    not stray,
                    f"flash at {stray[:10]}" if stray else "none",
                )
            )
            d = self.daemons[name]
            unexpected = [
                (round(i.started, 1), i.exit_code) for i in d.incarnations[:-1] if not i.killed
            ]
            checks.append(
                Check(
                    f"{name}: no daemon exit but ours; clean stop exit 0",
                    not unexpected and codes[name] == 0,
                    f"unexpected exits {unexpected}, final exit {codes[name]}",
                )
            )
            late, ticks, reloads = 0, 0, 0
            for inc in d.incarnations:
                evs = d.events(inc)
                late += sum(1 for e in evs if e.get("event") == "late_tick")
                reloads += sum(1 for e in evs if e.get("event") == "reload_accepted")
                stopped = [e for e in evs if e.get("event") == "daemon_stopped"]
                end = inc.ended if inc.ended is not None else stop_t
                ticks += int(stopped[-1]["ticks"]) if stopped else int((end - inc.started) * 10)
            late_ratio = late / ticks if ticks else 0.0
            checks.append(
                Check(
                    f"{name}: late ticks ≤ {self.args.max_late_ratio:.1%}",
                    late_ratio <= self.args.max_late_ratio,
                    f"{late} late of {ticks} ticks ({late_ratio:.3%})",
                )
            )
            checks.append(
                Check(
                    f"{name}: every SIGHUP reloaded",
                    reloads == d.sighups,
                    f"{d.sighups} SIGHUP, {reloads} reload_accepted",
                )
            )
            longest = max(d.incarnations, key=lambda i: len(i.rss))
            samples = [mb for t, mb in longest.rss if t - longest.started >= self.args.rss_warmup]
            rss_note = "too few samples"
            rss_ok = True
            growth = 0.0
            if len(samples) >= 8:
                q = len(samples) // 4
                first, last = statistics.median(samples[:q]), statistics.median(samples[-q:])
                growth = last - first
                limit = max(self.args.rss_noise_mb, 0.05 * first)
                rss_ok = growth <= limit
                rss_note = (
                    f"first quarter {first:.1f} MB, last quarter {last:.1f} MB, growth "
                    f"{growth:+.1f} MB (noise limit {limit:.1f} MB) over "
                    f"{longest.rss[-1][0] - longest.started:.0f} s, {len(samples)} samples"
                )
            checks.append(Check(f"{name}: RSS does not grow", rss_ok, rss_note))
            numbers["per_target"][name] = {
                "mmu_latches": summary["mmu"]["faults"],
                "vehicles": summary["vehicles"],
                "delay_s_mean": summary.get("delay_s_mean"),
                "wire": summary.get("wire"),
                "frames_received": summary.get("frames_received"),
                "power_cycles": summary.get("power_cycles"),
                "incarnations": len(d.incarnations),
                "late_ticks": late,
                "ticks": ticks,
                "rss_mb": {
                    "min": min(samples, default=0.0),
                    "max": max(samples, default=0.0),
                    "growth": round(growth, 2),
                },
                "outbox": outboxes[name],
            }
        missing = _missing(consumer, outboxes)
        checks.append(
            Check(
                "centre: no seq gap — every events/telemetry seq received or still in the outbox",
                not missing,
                "; ".join(f"{k}: missing {v[:10]}" for k, v in missing.items()) or "none missing",
            )
        )
        received = {
            f"{iid}/{kind}": {
                "messages": s.messages,
                "distinct_seqs": len(s.seqs),
                "duplicates": s.duplicates,
                "historical": s.historical,
                "max_seq": max(s.seqs, default=0),
            }
            for (iid, kind), s in sorted(consumer.streams.items())
        }
        numbers["centre"] = {"streams": received, "connects": consumer.connects}
        numbers["applied"] = [(round(t, 1), k, g) for t, k, g in self.applied]
        numbers["skipped"] = [(round(t, 1), k, g, r) for t, k, g, r in self.skipped]
        numbers["fault_counts"] = dict(Counter(k for _, k, _ in self.applied))
        return checks, numbers


def _inside(t: float, windows: list[tuple[float, float]]) -> bool:
    return any(a <= t <= b for a, b in windows)


def _missing(consumer: Consumer, outboxes: dict[str, dict[str, Any]]) -> dict[str, list[int]]:
    out: dict[str, list[int]] = {}
    for name, streams in outboxes.items():
        iid = f"soak-{name}"
        for stream, st in streams.items():
            got = consumer.stream(iid, stream).seqs | set(st["pending"])
            gap = [s for s in range(1, st["last_seq"] + 1) if s not in got]
            if gap:
                out[f"{iid}/{stream}"] = gap
    return out


# --------------------------------------------------------------------------- the report


def report(result: SoakResult) -> str:
    verdict = "PASS" if result.ok else "FAIL"
    n = result.numbers
    lines = [
        "# Soak report",
        "",
        f"**{verdict}** — {result.duration_s:.0f} s soak (seed {result.seed}) started "
        f"{result.started_at}, wall time {result.wall_s:.0f} s.",
        "",
        "```console",
        f"$ {result.command}",
        "```",
        "",
        *(
            [
                "(A short run: the issue's reported soak is ≥ 1 h, `python -m bench.soak "
                "--duration 3600 --report docs/soak.md`.)",
                "",
            ]
            if result.duration_s < 3600
            else []
        ),
        "Set-up: two `edgectl run` daemons (edgectl/examples/eight_phase.toml, actuated), one "
        "against "
        "`firmware-sim` over Modbus TCP and one over Modbus RTU on the emulator's pty; one "
        "mosquitto (persistence on) reached by the daemons through a TCP proxy the soak can "
        "blackhole; the centre is an aiomqtt consumer with a persistent session connected to "
        "the broker directly. See `bench/soak.py` for what each fault does.",
        "",
        "Faults this soak does not make — kernel-made packet loss and a blackhole in a network "
        "namespace, a flood of 100,000 hostile MQTT messages, a broker cluster losing a node, "
        "CPU starvation — are run and reported in [`faults.md`](faults.md).",
        "",
        "## Checks (independent sources)",
        "",
        "| check | result | detail |",
        "|---|---|---|",
    ]
    lines += [f"| {c.name} | {'ok' if c.ok else '**FAIL**'} | {c.detail} |" for c in result.checks]
    lines += ["", "## Faults injected", ""]
    counts = n["fault_counts"]
    lines.append(", ".join(f"{k} × {counts[k]}" for k in sorted(counts)) or "none")
    if n["skipped"]:
        lines.append(f"\nSkipped (daemon not ready at that moment): {n['skipped']}")
    lines += ["", "| t (s) | fault | target | duration (s) | detector |", "|---|---|---|---|---|"]
    lines += [
        f"| {f.t:.1f} | {f.kind} | {f.target} | {f.duration or ''} | {f.param or ''} |"
        for f in result.faults
    ]
    lines += ["", "## Numbers", "", "| | TCP | RTU (pty) |", "|---|---|---|"]
    pt = n["per_target"]

    def row(label: str, get: Callable[[dict[str, Any]], object]) -> None:
        lines.append(f"| {label} | " + " | ".join(str(get(pt[k])) for k in ("tcp", "rtu")) + " |")

    row("daemon processes (1 + kill -9 restarts)", lambda p: p["incarnations"])
    row("ticks / late ticks", lambda p: f"{p['ticks']} / {p['late_ticks']}")
    row(
        "RSS min / max MB (longest process, after warm-up)",
        lambda p: f"{p['rss_mb']['min']:.1f} / {p['rss_mb']['max']:.1f}",
    )
    row(
        "MMU latches (all watchdog?)",
        lambda p: (
            f"{len(p['mmu_latches'])} ({all(m['kind'] == 'watchdog' for m in p['mmu_latches'])})"
        ),
    )
    row(
        "vehicles arrived / served",
        lambda p: f"{p['vehicles']['arrived']} / {p['vehicles']['served']}",
    )
    row("mean delay s", lambda p: p["delay_s_mean"])
    row(
        "wire faults (dropped / delayed / corrupted)",
        lambda p: "/".join(str(p["wire"].get(k, 0)) for k in ("dropped", "delayed", "corrupted")),
    )
    row("power cycles", lambda p: p["power_cycles"])
    row(
        "outbox at the end: last seq events / telemetry",
        lambda p: f"{p['outbox']['events']['last_seq']} / {p['outbox']['telemetry']['last_seq']}",
    )
    lines += [
        "",
        "Centre (consumer) per stream:",
        "",
        "| stream | messages | distinct seq | duplicates | historical | max seq |",
        "|---|---|---|---|---|---|",
    ]
    for k, s in n["centre"]["streams"].items():
        lines.append(
            f"| {k} | {s['messages']} | {s['distinct_seqs']} | {s['duplicates']} | "
            f"{s['historical']} | {s['max_seq']} |"
        )
    lines += [
        "",
        "Duplicates are expected (QoS 1 redelivery after a kill or a lost PUBACK); gaps are not.",
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--duration", type=float, default=3600.0, help="soak length, s")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--report", type=Path, help="write the Markdown report here")
    parser.add_argument("--json", type=Path, help="write the result as JSON here")
    parser.add_argument("--workdir", type=Path, help="keep logs and records here")
    parser.add_argument("--telemetry-period", type=float, default=10.0, help="s (default 10)")
    parser.add_argument("--rss-every", type=float, default=5.0, help="RSS sample period, s")
    parser.add_argument("--rss-warmup", type=float, default=20.0, help="s not counted for RSS")
    parser.add_argument("--rss-noise-mb", type=float, default=5.0, help="allowed RSS growth")
    parser.add_argument("--max-late-ratio", type=float, default=0.01)
    parser.add_argument("--drain-timeout", type=float, default=20.0)
    parser.add_argument("--print-schedule", action="store_true", help="print faults and exit")
    args = parser.parse_args(argv)
    args.command = "python -m bench.soak " + " ".join(
        a for a in (argv if argv is not None else sys.argv[1:])
    )
    if args.print_schedule:
        for f in schedule(args.seed, args.duration):
            print(f)
        return 0
    with tempfile.TemporaryDirectory(prefix="soak-") as tmp:
        workdir = args.workdir or Path(tmp)
        workdir.mkdir(parents=True, exist_ok=True)
        result = asyncio.run(Soak(args, workdir).run())
    text = report(result)
    print(text)
    if args.report:
        args.report.write_text(text, encoding="utf-8")
    if args.json:
        data = asdict(result)
        data["ok"] = result.ok
        args.json.write_text(json.dumps(data, indent=2, default=str) + "\n", encoding="utf-8")
    return 0 if result.ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
