"""Fleet load: N daemons, each against its own emulator, on one mosquitto on this machine.

    .venv/bin/python -m bench.fleet [--steps 1 2 4 8 16] [--window 45] [--json OUT]

For each N: N ``firmware-sim`` (Modbus TCP) + N ``edgectl run`` (intersections
``fleet-001`` …, default MQTT settings) + one mosquitto + a consumer (the centre, aiomqtt)
subscribed to every junction's ``state``, ``events`` and ``telemetry``. After a warm-up, over a
measurement window it records: end-to-end state latency at the consumer (the message's ``ts``,
stamped by the daemon when it publishes, vs the receive time; same host clock), message rates
and payload sizes per stream, CPU (utime + stime from /proc) of the daemons, the emulators,
the broker and the consumer, late ticks (daemon logs), and loss: after a clean stop every
``events`` seq a daemon assigned must have reached the centre or still be in its outbox.
Steps stop early once the machine saturates (CPU ≥ ``--saturation`` of all cores, or late ticks
above 1 %, or state latency p99 above 1 s).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import statistics
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from bench.soak import Consumer, SoakDaemon, cpu_rss, outbox_state
from edgectl.testing.hil import Emulator
from edgectl.testing.mosquitto import MosquittoBroker

CORES = os.cpu_count() or 1


@dataclass
class Step:
    n: int
    window_s: float
    cpu_pct: dict[str, float]  # of one core: daemons, emulators, broker, consumer, total
    cpu_pct_per_daemon: float
    rss_mb_per_daemon: float
    state_latency_ms: dict[str, float]
    msgs_per_s: dict[str, float]
    msgs_per_s_per_junction: dict[str, float]
    bytes_per_msg: dict[str, float]
    late_ticks: int
    ticks: int
    events_lost: int
    events_seqs: int
    load_avg_1m: float
    saturated: str

    def row(self) -> str:
        c = self.cpu_pct
        lat = self.state_latency_ms
        rate = sum(self.msgs_per_s.values())
        return (
            f"| {self.n} | {c['daemons']:.1f} | {c['emulators']:.1f} | {c['broker']:.1f} | "
            f"{c['consumer']:.1f} | {c['total']:.0f} / {CORES * 100} | "
            f"{self.cpu_pct_per_daemon:.2f} | {self.rss_mb_per_daemon:.0f} | "
            f"{lat['p50']:.1f} / {lat['p99']:.1f} / {lat['max']:.0f} | {rate:.1f} | "
            f"{self.late_ticks} / {self.ticks} | {self.events_lost} of {self.events_seqs} | "
            f"{self.saturated or '-'} |"
        )


HEADER = (
    "| N | CPU daemons % | CPU emulators % | CPU broker % | CPU consumer % | CPU total % | "
    "CPU per daemon % | RSS per daemon MB | state latency p50 / p99 / max ms | msgs/s at centre | "
    "late ticks / ticks | events lost | saturated |\n"
    "|---|---|---|---|---|---|---|---|---|---|---|---|---|"
)


def _cpu(pids: list[int]) -> float:
    total = 0.0
    for pid in pids:
        with contextlib.suppress(OSError, ValueError):  # a process that just exited
            total += cpu_rss(pid)[0]
    return total


def _q(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    s = sorted(values)
    return s[min(len(s) - 1, max(0, int(q * len(s) + 0.999999) - 1))]


async def run_step(n: int, args: argparse.Namespace, workdir: Path) -> Step:
    step_dir = workdir / f"n{n:03d}"
    step_dir.mkdir(parents=True, exist_ok=True)
    broker = MosquittoBroker()
    broker.start()
    consumer = Consumer(broker.port, client_id=f"fleet-centre-{n}")
    emus: list[Emulator] = []
    daemons: list[SoakDaemon] = []
    try:
        async with asyncio.TaskGroup() as tg:
            task = tg.create_task(
                consumer.run(("state", "events", "telemetry")), name="fleet[consumer]"
            )
            async with asyncio.timeout(20):
                await consumer.connected.wait()
            for i in range(1, n + 1):
                emu = Emulator(step_dir, seed=i, name=f"sim-{i:03d}")
                await asyncio.to_thread(emu.start)
                emus.append(emu)
                d = SoakDaemon(
                    f"d{i:03d}", step_dir, emu.url, broker.url,
                    {"EDGECTL_INTERSECTION__ID": f"fleet-{i:03d}"},
                )  # fmt: skip
                d.start(0.0)
                daemons.append(d)
            await asyncio.sleep(args.warmup)
            groups = {
                "daemons": [d.current.process.pid for d in daemons],
                "emulators": [e.process.pid for e in emus if e.process is not None],
                "broker": [broker.pid] if broker.pid else [],
                "consumer": [os.getpid()],
            }
            cpu0 = {k: _cpu(v) for k, v in groups.items()}
            lat0 = len(consumer.state_latency_s)
            msgs0 = _counts(consumer)
            w0 = time.monotonic()
            await asyncio.sleep(args.window)
            window = time.monotonic() - w0
            cpu1 = {k: _cpu(v) for k, v in groups.items()}
            msgs1 = _counts(consumer)
            lat = consumer.state_latency_s[lat0:]
            rss = [cpu_rss(p)[1] for p in groups["daemons"]]
            load = os.getloadavg()[0]
            # SIGTERM to all at once (each hands over to flash, up to ~20 s), then reap them
            for d in daemons:
                d.current.process.send(signal.SIGTERM)
            for d in daemons:
                await asyncio.to_thread(d.stop, 0.0)
            outboxes = {d.name: outbox_state(d.state_dir) for d in daemons}
            deadline = time.monotonic() + 15
            # the centre's view comes from another process: poll it, bounded
            while time.monotonic() < deadline and _lost(consumer, daemons, outboxes)[0]:  # noqa: ASYNC110
                await asyncio.sleep(0.2)
            task.cancel()
    finally:
        for d in daemons:
            await asyncio.to_thread(d.current.process.stop)
        for e in emus:
            await asyncio.to_thread(e.stop)
        broker.close()
    cpu = {k: (cpu1[k] - cpu0[k]) / window * 100 for k in groups}
    cpu["total"] = sum(cpu.values())
    lost, seqs = _lost(consumer, daemons, outboxes)
    late = ticks = 0
    for d in daemons:
        evs = d.events(d.current)
        late += sum(1 for e in evs if e.get("event") == "late_tick")
        stopped = [e for e in evs if e.get("event") == "daemon_stopped"]
        ticks += int(stopped[-1]["ticks"]) if stopped else 0
    rates = {k: (msgs1[k][0] - msgs0[k][0]) / window for k in msgs1}
    sizes = {k: msgs1[k][1] / msgs1[k][0] if msgs1[k][0] else 0.0 for k in msgs1}
    lat_ms = {
        "p50": _q(lat, 0.5) * 1000,
        "p99": _q(lat, 0.99) * 1000,
        "max": max(lat, default=0.0) * 1000,
        "mean": statistics.fmean(lat) * 1000 if lat else 0.0,
    }
    saturated = []
    if cpu["total"] >= args.saturation * CORES * 100:
        saturated.append("cpu")
    if ticks and late / ticks > 0.01:
        saturated.append("late ticks")
    if lat_ms["p99"] > 1000:
        saturated.append("latency")
    return Step(
        n=n,
        window_s=round(window, 1),
        cpu_pct={k: round(v, 2) for k, v in cpu.items()},
        cpu_pct_per_daemon=round(cpu["daemons"] / n, 3),
        rss_mb_per_daemon=round(statistics.fmean(rss), 1),
        state_latency_ms={k: round(v, 2) for k, v in lat_ms.items()},
        msgs_per_s={k: round(v, 2) for k, v in rates.items()},
        msgs_per_s_per_junction={k: round(v / n, 3) for k, v in rates.items()},
        bytes_per_msg={k: round(v, 1) for k, v in sizes.items()},
        late_ticks=late,
        ticks=ticks,
        events_lost=lost,
        events_seqs=seqs,
        load_avg_1m=round(load, 2),
        saturated=", ".join(saturated),
    )


def _counts(consumer: Consumer) -> dict[str, tuple[int, int]]:
    """stream → (messages, bytes) received so far, over every junction."""
    out = {"state": (consumer.state_messages, consumer.state_bytes)}
    for kind in ("events", "telemetry"):
        logs = [s for (_, k), s in consumer.streams.items() if k == kind]
        out[kind] = (sum(s.messages for s in logs), sum(s.bytes for s in logs))
    return out


def _lost(
    consumer: Consumer, daemons: list[SoakDaemon], outboxes: dict[str, dict[str, Any]]
) -> tuple[int, int]:
    """(events seqs neither received nor pending, events seqs assigned) over the fleet."""
    lost = total = 0
    for d in daemons:
        st = outboxes[d.name]["events"]
        iid = d.env["EDGECTL_INTERSECTION__ID"]
        got = consumer.stream(iid, "events").seqs | set(st["pending"])
        total += st["last_seq"]
        lost += sum(1 for s in range(1, st["last_seq"] + 1) if s not in got)
    return lost, total


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--steps", type=int, nargs="+", default=[1, 2, 4, 8, 16])
    parser.add_argument("--warmup", type=float, default=12.0, help="s before measuring")
    parser.add_argument("--window", type=float, default=45.0, help="measurement window, s")
    parser.add_argument("--saturation", type=float, default=0.9, help="share of all cores")
    parser.add_argument("--json", type=Path)
    parser.add_argument("--workdir", type=Path)
    args = parser.parse_args(argv)
    steps: list[Step] = []
    with tempfile.TemporaryDirectory(prefix="fleet-") as tmp:
        workdir = args.workdir or Path(tmp)
        for n in args.steps:
            step = asyncio.run(run_step(n, args, workdir))
            steps.append(step)
            print(step.row() if len(steps) > 1 else HEADER + "\n" + step.row(), flush=True)
            if step.saturated:
                break
    print(
        json.dumps(
            {
                s.n: {
                    "bytes_per_msg": s.bytes_per_msg,
                    "msgs_per_s_per_junction": s.msgs_per_s_per_junction,
                }
                for s in steps
            },
            indent=1,
        )
    )
    if args.json:
        data = {
            "cores": CORES,
            "steps": [asdict(s) for s in steps],
            "command": "python -m bench.fleet " + " ".join(sys.argv[1:]),
        }
        args.json.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    return 0 if all(s.events_lost == 0 for s in steps) else 1


if __name__ == "__main__":
    raise SystemExit(main())
