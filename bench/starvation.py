"""The daemon on a cabinet computer whose CPUs are taken by other processes.

    sudo .venv/bin/python -m bench.starvation [--duration 60] [--hogs 4] [--json OUT]

Starts the emulator and ``edgectl run`` (no broker), then ``--hogs`` busy-looping processes
(nice 0) for ``--duration`` s, twice: once with the daemon at nice 0 and once at the unit's
``Nice=-5``. The emulator stands for separate hardware, so it runs at nice -10 (it must not be
what starves). Reported per run: late ticks (the daemon's ``late_tick`` log lines), the tick
latency p50/p99/max (its ``tick_latency_summary`` at exit), whether the MMU tripped (a frame
late past its 1 s heartbeat), and the independent checker on the emulator's record. Root is
needed for the negative nice values.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.record import count_events, record_findings
from edgectl.testing.hil import DaemonProcess, Emulator

REPO = Path(__file__).resolve().parents[1]
EIGHT_PHASE = REPO / "edgectl" / "examples" / "eight_phase.toml"
HOG = "while True:\n    pass\n"


def one_run(workdir: Path, *, nice: int, hogs: int, duration: float) -> dict[str, Any]:
    sim = Emulator(workdir, seed=2, name=f"sim-nice{nice}").start()
    assert sim.process is not None
    os.setpriority(os.PRIO_PROCESS, sim.process.pid, -10)
    daemon = DaemonProcess(workdir, EIGHT_PHASE, sim.url, name=f"daemon-nice{nice}")
    procs: list[subprocess.Popen[bytes]] = []
    try:
        daemon.start()
        assert daemon.process is not None
        os.setpriority(os.PRIO_PROCESS, daemon.process.pid, nice)
        daemon.wait_log(lambda e: e.get("event") == "ready", 30)
        time.sleep(5.0)
        procs = [subprocess.Popen([sys.executable, "-c", HOG]) for _ in range(hogs)]
        time.sleep(duration)
    finally:
        for p in procs:
            p.kill()
            p.wait()
        daemon.stop()
        summary = sim.stop()
    events = daemon.log_events()
    latency = next(
        (e for e in events if e.get("event") == "tick_latency_summary" and e.get("final")), {}
    )
    return {
        "daemon_nice": nice,
        "hogs": hogs,
        "duration_s": duration,
        "late_ticks": count_events(events, "late_tick"),
        "latency_ms": {k: latency.get(k) for k in ("p50_ms", "p99_ms", "max_ms")},
        "mmu_tripped": bool(summary.get("mmu", {}).get("tripped")),
        "checker_findings": record_findings(EIGHT_PHASE, sim.record_path),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=60.0)
    parser.add_argument("--hogs", type=int, default=4)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    if os.geteuid() != 0:
        print("bench.starvation: needs root (negative nice values)", file=sys.stderr)
        return 2
    results = []
    with tempfile.TemporaryDirectory(prefix="edgectl-starve-") as tmp:
        for nice in (0, -5):
            results.append(one_run(Path(tmp), nice=nice, hogs=args.hogs, duration=args.duration))
    text = json.dumps(results, indent=2)
    print(text)
    if args.json:
        args.json.write_text(text + "\n", encoding="utf-8")
    unit = results[-1]
    return 0 if not unit["mmu_tripped"] and not unit["checker_findings"] else 1


if __name__ == "__main__":
    sys.exit(main())
