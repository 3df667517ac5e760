"""The MQTT link through a bad network: packet loss and a blackhole made by the kernel, not
by a proxy.

    sudo .venv/bin/python -m bench.netem_run [--lossy 60] [--blackhole 30] [--json OUT]

Root only (and Debian's ``nftables``): the run re-executes itself under ``unshare --net``, in
a network namespace of its own whose loopback is the only interface, so nothing outside is
touched and nothing is left behind (the namespace ends with the run). There it starts
mosquitto, the emulator and ``edgectl run`` and drops packets to and from the broker's port
only, at random, with an ``nft`` rule (``numgen random mod 100 < N drop``) on the output
hook — TCP sees real loss and retransmits. The Modbus link to the emulator is not impaired,
so what is measured is the sync side. ``tc netem`` (delay, jitter, reordering) would be the
tool for more, but this kernel has no ``sch_netem`` (``tc qdisc add … netem`` → "Specified
qdisc kind is unknown"). The phases:

1. clean (``--clean`` s);
2. lossy (``--lossy`` s): 5 % of the broker's packets dropped, each direction;
3. heavy (``--lossy`` / 2 s): 30 %;
4. an MTU black hole (``--mtu-hole`` s): every packet over 600 bytes dropped, both ways —
   small packets (the keepalive, acks) pass, big publishes never arrive;
5. blackhole (``--blackhole`` s): 100 % — the keepalive (5 s here) ends the session;
6. lossy again (``--lossy`` / 2 s), then clean until the centre has every seq (at most
   ``--drain`` s).

The centre is a persistent-session subscriber (``bench.soak.Consumer``). It passes (exit 0)
when: the daemon is still running; no ``events``/``telemetry`` seq is missing at the centre
that the outbox does not still hold; no control tick was late (the network must not reach the
control loop); the emulator's record passes the independent checker and its MMU never tripped.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.record import count_events, record_findings
from bench.soak import Consumer, outbox_state
from edgectl.testing.hil import DaemonProcess, Emulator
from edgectl.testing.mosquitto import MosquittoBroker

REPO = Path(__file__).resolve().parents[1]
EIGHT_PHASE = REPO / "edgectl" / "examples" / "eight_phase.toml"
IID = "hz-0001"
INNER = "EDGECTL_NETEM_INNER"
LOSSY = 5
HEAVY = 30
BLACKHOLE = 100
MTU_HOLE = -1  # not a loss rate: packets over MTU_HOLE_BYTES dropped
MTU_HOLE_BYTES = 600
CLEAN = 0


def sh(*argv: str) -> None:
    subprocess.run(argv, check=True, capture_output=True, text=True)


def impair_broker_port(port: int) -> None:
    """An nft table whose one chain drops the broker port's packets at the set rate."""
    sh("ip", "link", "set", "lo", "up")
    sh("nft", "add", "table", "inet", "edgectl_bench")
    sh(
        "nft", "add", "chain", "inet", "edgectl_bench", "out",
        "{ type filter hook output priority 0; policy accept; }",
    )  # fmt: skip
    _port[0] = port


_port = [0]


def set_loss(percent: int) -> None:
    """Replace the chain's rules: ``percent`` % of the broker's packets dropped, each way;
    ``MTU_HOLE``: every packet longer than ``MTU_HOLE_BYTES`` dropped (an MTU black hole:
    a path that loses big packets and their ICMP, so small ones — the keepalive — pass)."""
    sh("nft", "flush", "chain", "inet", "edgectl_bench", "out")
    if percent == CLEAN:
        return
    for match in ("dport", "sport"):
        if percent == MTU_HOLE:
            rule = f"tcp {match} {_port[0]} meta length > {MTU_HOLE_BYTES} drop"
        else:
            chance = f"numgen random mod 100 < {percent} " if percent < 100 else ""
            rule = f"tcp {match} {_port[0]} {chance}drop"
        sh("nft", "add", "rule", "inet", "edgectl_bench", "out", *rule.split())


async def run(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    sh("ip", "link", "set", "lo", "up")
    broker = MosquittoBroker(persistence=True)
    broker.start()
    impair_broker_port(broker.port)
    consumer = Consumer(broker.port, client_id="netem-centre")
    sim = Emulator(workdir, seed=args.seed).start()
    daemon = DaemonProcess(
        workdir,
        EIGHT_PHASE,
        sim.url,
        broker=broker.url,
        env={
            "EDGECTL_MQTT__KEEPALIVE": "5",
            "EDGECTL_MQTT__TELEMETRY_PERIOD_S": "1",
            "EDGECTL_MQTT__BACKOFF_MAX": "2",
        },
    )
    phases: list[tuple[str, float]] = []
    alive = False
    consumer_task = asyncio.create_task(consumer.run())
    try:
        await asyncio.wait_for(consumer.connected.wait(), 10)
        daemon.start()
        await asyncio.to_thread(daemon.wait_log, lambda e: e.get("event") == "mqtt_connected", 30)
        started = time.monotonic()
        for name, loss, seconds in (
            ("clean", CLEAN, args.clean),
            ("lossy 5%", LOSSY, args.lossy),
            ("heavy 30%", HEAVY, args.lossy / 2),
            (f"MTU black hole (> {MTU_HOLE_BYTES} bytes)", MTU_HOLE, args.mtu_hole),
            ("blackhole", BLACKHOLE, args.blackhole),
            ("lossy 5%", LOSSY, args.lossy / 2),
        ):
            set_loss(loss)
            phases.append((name, round(time.monotonic() - started, 1)))
            await asyncio.sleep(seconds)
        set_loss(CLEAN)
        phases.append(("drain", round(time.monotonic() - started, 1)))
        deadline = time.monotonic() + args.drain
        while time.monotonic() < deadline:
            if not _gaps(consumer, outbox_state(daemon.state_dir)):
                break
            await asyncio.sleep(1.0)
        alive = daemon.process is not None and daemon.process.running()
    finally:
        await asyncio.to_thread(daemon.stop)
        summary = await asyncio.to_thread(sim.stop)
        consumer_task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await consumer_task
        broker.stop()
    outbox = outbox_state(daemon.state_dir)
    events = daemon.log_events()
    streams = {
        kind: {
            "last_seq": outbox[kind]["last_seq"],
            "received": len(consumer.stream(IID, kind).seqs),
            "duplicates": consumer.stream(IID, kind).duplicates,
            "historical": consumer.stream(IID, kind).historical,
            "still_in_outbox": len(outbox[kind]["pending"]),
        }
        for kind in ("events", "telemetry")
    }
    return {
        "phases_started_at_s": phases,
        "daemon_alive_after": alive,
        "mqtt_link_down": count_events(events, "mqtt_link_down"),
        "mqtt_connected": count_events(events, "mqtt_connected"),
        "late_ticks": count_events(events, "late_tick"),
        "streams": streams,
        "gaps": _gaps(consumer, outbox),
        "checker_findings": record_findings(EIGHT_PHASE, sim.record_path),
        "mmu_tripped": bool(summary.get("mmu", {}).get("tripped")),
    }


def _gaps(consumer: Consumer, outbox: dict[str, Any]) -> dict[str, list[int]]:
    out: dict[str, list[int]] = {}
    for kind, st in outbox.items():
        got = consumer.stream(IID, kind).seqs | set(st["pending"])
        gap = [s for s in range(1, st["last_seq"] + 1) if s not in got]
        if gap:
            out[kind] = gap[:20]
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clean", type=float, default=15.0)
    parser.add_argument("--lossy", type=float, default=60.0)
    parser.add_argument("--blackhole", type=float, default=30.0)
    parser.add_argument("--mtu-hole", type=float, default=30.0)
    parser.add_argument("--drain", type=float, default=60.0)
    parser.add_argument("--seed", type=int, default=3)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    if os.environ.get(INNER) != "1":
        if os.geteuid() != 0:
            print("bench.netem_run: needs root (unshare --net, nft)", file=sys.stderr)
            return 2
        if shutil.which("nft") is None:
            print("bench.netem_run: needs nft (apt-get install nftables)", file=sys.stderr)
            return 2
        argv_inner = ["unshare", "--net", "--", sys.executable, "-m", "bench.netem_run"]
        env = {**os.environ, INNER: "1"}
        return subprocess.run(
            [*argv_inner, *sys.argv[1:]], check=False, env=env, cwd=REPO
        ).returncode
    with tempfile.TemporaryDirectory(prefix="edgectl-netem-") as tmp:
        result = asyncio.run(run(args, Path(tmp)))
    text = json.dumps(result, indent=2)
    print(text)
    if args.json:
        args.json.write_text(text + "\n", encoding="utf-8")
    good = (
        result["daemon_alive_after"]
        and not result["gaps"]
        and result["late_ticks"] == 0
        and not result["checker_findings"]
        and not result["mmu_tripped"]
    )
    return 0 if good else 1


if __name__ == "__main__":
    sys.exit(main())
