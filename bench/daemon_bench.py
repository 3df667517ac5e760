"""The daemon's cost at 10 Hz against the emulator over TCP, next to a bare pymodbus loop.

    .venv/bin/python -m bench.daemon_bench [--duration 60] [--warmup 10] [--json OUT]

One run starts two emulators (``firmware-sim`` over TCP, real processes). ``edgectl run``
drives the first; a bare pymodbus loop (this module with ``--bare-loop URL``, its own process)
does the same field I/O against the second — one FC4 read of the 110 input registers and one
FC16 write of 33 registers (32 channels + heartbeat) per 0.1 s on a fixed grid. Over the same
measurement window (after ``--warmup``) it samples ``/proc/PID/stat`` (utime + stime) and
``VmRSS`` of both. Tick latency (detector frame read → output frame written) comes from the
daemon's own ``tick_latency_summary`` log line at exit (a fixed-bin histogram kept in the
control loop) and from the bare loop's identical measurement.

Targets (issue 4): daemon CPU ≤ 4× the bare loop and ≤ 2 % of one core, p99 ≤ 5 ms, RSS ≤ 60 MB.
Exit status 0 when every target is met, 1 otherwise (the numbers are printed either way).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from edgectl.testing.hil import DaemonProcess, Emulator, ManagedProcess

REPO = Path(__file__).resolve().parents[1]

EIGHT_PHASE = REPO / "edgectl" / "examples" / "eight_phase.toml"
CLK_TCK = os.sysconf("SC_CLK_TCK")
TICK_S = 0.1
TARGETS = {"cpu_ratio_max": 4.0, "cpu_pct_max": 2.0, "p99_ms_max": 5.0, "rss_mb_max": 60.0}


# --------------------------------------------------------------------------- /proc sampling


def cpu_seconds(pid: int) -> float:
    """utime + stime of ``pid`` in seconds (fields 14 and 15 of /proc/PID/stat)."""
    text = Path(f"/proc/{pid}/stat").read_text()
    fields = text[text.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def rss_mb(pid: int) -> float:
    """VmRSS of ``pid`` in MB (MiB)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


# --------------------------------------------------------------------------- the bare loop


def _quantile(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, int(q * len(ordered) + 0.999999) - 1))]


async def bare_loop(url: str) -> dict[str, float | int]:
    """1 FC4 read (110 registers) + 1 FC16 write (33 registers) per 0.1 s until SIGTERM."""
    from pymodbus.client import AsyncModbusTcpClient

    parsed = urlparse(url)
    client = AsyncModbusTcpClient(parsed.hostname or "127.0.0.1", port=parsed.port or 502)
    await client.connect()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    latencies: list[float] = []
    late = errors = 0
    heartbeat = 0
    frame = [1] * 8 + [4] * 4 + [0] * 20  # all red, pedestrians don't walk
    t0 = loop.time()
    n = 0
    try:
        while not stop.is_set():
            delay = t0 + n * TICK_S - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            elif -delay > TICK_S / 2:
                late += 1
                n += int(-delay // TICK_S)
            n += 1
            try:
                regs = await client.read_input_registers(0, count=110, device_id=1)
                read_at = time.monotonic()
                if regs.isError():
                    errors += 1
                    continue
                heartbeat = (heartbeat + 1) % 65536
                resp = await client.write_registers(0, [*frame, heartbeat], device_id=1)
                if resp.isError():
                    errors += 1
                    continue
                latencies.append(time.monotonic() - read_at)
            except Exception:
                errors += 1
    finally:
        client.close()
    return {
        "n": len(latencies),
        "p50_ms": round(_quantile(latencies, 0.5) * 1000, 2),
        "p99_ms": round(_quantile(latencies, 0.99) * 1000, 2),
        "max_ms": round(max(latencies, default=0.0) * 1000, 2),
        "late_ticks": late,
        "errors": errors,
    }


# --------------------------------------------------------------------------- the benchmark


@dataclass
class Result:
    duration_s: float
    window_s: float
    daemon_cpu_pct: float
    bare_cpu_pct: float
    cpu_ratio: float
    daemon_rss_mb: float
    daemon_rss_max_mb: float
    bare_rss_mb: float
    daemon_p50_ms: float
    daemon_p99_ms: float
    daemon_max_ms: float
    daemon_samples: int
    bare_p50_ms: float
    bare_p99_ms: float
    daemon_late_ticks: int
    bare_late_ticks: int
    bare_errors: int
    targets_met: dict[str, bool]

    def table(self) -> str:
        t = TARGETS
        rows = [
            (
                "CPU, % of one core",
                f"{self.daemon_cpu_pct:.2f}",
                f"{self.bare_cpu_pct:.2f}",
                f"≤ {t['cpu_pct_max']} and ≤ {t['cpu_ratio_max']}× bare "
                f"(ratio {self.cpu_ratio:.2f})",
            ),
            (
                "RSS, MB (end / max)",
                f"{self.daemon_rss_mb:.1f} / {self.daemon_rss_max_mb:.1f}",
                f"{self.bare_rss_mb:.1f}",
                f"≤ {t['rss_mb_max']}",
            ),
            ("tick latency p50, ms", f"{self.daemon_p50_ms:.2f}", f"{self.bare_p50_ms:.2f}", ""),
            (
                "tick latency p99, ms",
                f"{self.daemon_p99_ms:.2f}",
                f"{self.bare_p99_ms:.2f}",
                f"≤ {t['p99_ms_max']}",
            ),
            ("tick latency max, ms", f"{self.daemon_max_ms:.2f}", "", ""),
            ("late ticks", str(self.daemon_late_ticks), str(self.bare_late_ticks), ""),
        ]
        lines = ["| measure | edgectl run | bare pymodbus loop | target |", "|---|---|---|---|"]
        lines += [f"| {a} | {b} | {c} | {d} |" for a, b, c, d in rows]
        return "\n".join(lines)


def run_bench(duration: float, warmup: float, workdir: Path) -> Result:
    sim_d = Emulator(workdir, name="sim-daemon", seed=1)
    sim_b = Emulator(workdir, name="sim-bare", seed=2)
    sim_d.start()
    sim_b.start()
    daemon = DaemonProcess(workdir, EIGHT_PHASE, sim_d.url)
    bare_out = workdir / "bare.json"
    bare = ManagedProcess(
        [
            sys.executable,
            "-m",
            "bench.daemon_bench",
            "--bare-loop",
            sim_b.url,
            "--bare-out",
            str(bare_out),
        ],
        workdir / "bare.log",
    )
    try:
        daemon.start()
        daemon.wait_log(lambda e: e.get("event") == "ready", timeout=30.0)
        bare.start()
        time.sleep(warmup)
        assert daemon.process is not None
        pids = {"daemon": daemon.process.pid, "bare": bare.pid}
        cpu0 = {k: cpu_seconds(p) for k, p in pids.items()}
        w0 = time.monotonic()
        rss: dict[str, list[float]] = {k: [] for k in pids}
        while time.monotonic() - w0 < duration:
            for k, p in pids.items():
                rss[k].append(rss_mb(p))
            time.sleep(1.0)
        cpu1 = {k: cpu_seconds(p) for k, p in pids.items()}
        window = time.monotonic() - w0
        for k, p in pids.items():
            rss[k].append(rss_mb(p))
        code = daemon.stop()
        if code != 0:
            raise RuntimeError(f"daemon exited {code}: {daemon.process.output()[-2000:]}")
        bare.stop()
    finally:
        daemon.stop()
        bare.stop()
        sim_d.stop()
        sim_b.stop()
    finals = [
        e for e in daemon.log_events() if e.get("event") == "tick_latency_summary" and e["final"]
    ]
    lat = finals[-1]
    stopped = next(e for e in daemon.log_events() if e.get("event") == "daemon_stopped")
    bare_sum = json.loads(bare_out.read_text(encoding="utf-8"))
    cpu = {k: (cpu1[k] - cpu0[k]) / window * 100 for k in pids}
    ratio = cpu["daemon"] / cpu["bare"] if cpu["bare"] > 0 else float("inf")
    met = {
        "cpu_pct": cpu["daemon"] <= TARGETS["cpu_pct_max"],
        "cpu_ratio": ratio <= TARGETS["cpu_ratio_max"],
        "p99_ms": float(lat["p99_ms"]) <= TARGETS["p99_ms_max"],
        "rss_mb": max(rss["daemon"]) <= TARGETS["rss_mb_max"],
    }
    return Result(
        duration_s=duration,
        window_s=round(window, 1),
        daemon_cpu_pct=round(cpu["daemon"], 3),
        bare_cpu_pct=round(cpu["bare"], 3),
        cpu_ratio=round(ratio, 2),
        daemon_rss_mb=round(rss["daemon"][-1], 1),
        daemon_rss_max_mb=round(max(rss["daemon"]), 1),
        bare_rss_mb=round(rss["bare"][-1], 1),
        daemon_p50_ms=float(lat["p50_ms"]),
        daemon_p99_ms=float(lat["p99_ms"]),
        daemon_max_ms=float(lat["max_ms"]),
        daemon_samples=int(lat["n"]),
        bare_p50_ms=float(bare_sum["p50_ms"]),
        bare_p99_ms=float(bare_sum["p99_ms"]),
        daemon_late_ticks=int(stopped.get("late_ticks", 0)),
        bare_late_ticks=int(bare_sum["late_ticks"]),
        bare_errors=int(bare_sum["errors"]),
        targets_met=met,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--duration", type=float, default=60.0, help="measurement window, s")
    parser.add_argument("--warmup", type=float, default=10.0, help="s after ready, not measured")
    parser.add_argument("--json", type=Path, help="write the result as JSON here")
    parser.add_argument("--workdir", type=Path, help="keep logs/records here (default: temp)")
    parser.add_argument("--bare-loop", metavar="URL", help=argparse.SUPPRESS)
    parser.add_argument("--bare-out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.bare_loop:
        summary = asyncio.run(bare_loop(args.bare_loop))
        args.bare_out.write_text(json.dumps(summary), encoding="utf-8")
        return 0
    with tempfile.TemporaryDirectory(prefix="daemon-bench-") as tmp:
        workdir = args.workdir or Path(tmp)
        workdir.mkdir(parents=True, exist_ok=True)
        result = run_bench(args.duration, args.warmup, workdir)
    print(result.table())
    print("targets met:", ", ".join(f"{k}={v}" for k, v in result.targets_met.items()))
    if args.json:
        data: dict[str, Any] = asdict(result)
        data["targets"] = TARGETS
        data["command"] = "python -m bench.daemon_bench " + " ".join(sys.argv[1:])
        args.json.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    return 0 if all(result.targets_met.values()) else 1


if __name__ == "__main__":
    raise SystemExit(main())
