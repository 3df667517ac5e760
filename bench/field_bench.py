"""Field I/O on one RS-485 line: Modbus requests per tick and tick latency, io-modules next to
cabinet-v1, at 115200 and 38400 baud.

    .venv/bin/python -m bench.field_bench [--duration 30] [--warmup 8] [--bauds 115200,38400]
                                          [--profiles io-modules,cabinet-v1] [--timeout S]
                                          [--json OUT] [--workdir DIR]

Each run starts ``firmware-sim`` on an RTU pty with ``--line-time`` — a pty has no baud rate,
so the emulator holds every request and response for the time its bytes take on a line at
the URL's baud rate (11 bits a character and the 3.5-character frame gap,
:func:`firmware_sim.rtu.frame_time`), one frame at a time — and ``edgectl run`` on it, as
systemd would run it:

- ``io-modules``: ``edgectl/examples/io_modules.toml`` against ``--profile builtin:io-modules``:
  five units on the one line (a 16-DI detector module, the MMU's DI/DO module, three 16-DO
  lamp modules), served by the daemon as two field devices;
- ``cabinet-v1``: ``edgectl/examples/eight_phase.toml`` against the one-unit
  ``builtin:nema-cabinet`` (the cabinet-v1 register map: one FC4 of 110 registers and one
  FC16 of 33 per tick).

Measured over the whole run: Modbus requests per tick (responses the emulator sent, ``wire
.answered`` of its summary, over the daemon's ticks), the daemon's tick latency (detector
read → output frame written; its ``tick_latency_summary`` log line at exit, bins of 0.1 ms up
to 100 ms), late ticks, the daemon's warnings by event, the daemon's CPU, and whether the MMU
ever tripped. Not a test: the numbers go to docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import collections
import json
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.daemon_bench import cpu_seconds
from edgectl.testing.hil import DaemonProcess, Emulator

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = REPO / "edgectl" / "examples"

#: profile → (example config, emulator profile)
PROFILES = {
    "io-modules": ("io_modules.toml", "builtin:io-modules"),
    # io-modules plus a zone-sensor unit (unit 6: four zones, one FC4 of 88 registers a tick)
    "io-modules-zones": ("io_modules_zones.toml", "builtin:io-modules-zones"),
    "cabinet-v1": ("eight_phase.toml", "builtin:nema-cabinet"),
}

CABINET_V1_FIELD = """

[field]
tick = 0.1
detector_loss_s = 1.0

[[field.devices]]
name = "cabinet"
url = "modbus+tcp://127.0.0.1:502"
profile = "builtin:nema-cabinet"
timeout = {timeout}
retries = 1
"""


def write_config(profile: str, timeout: float, gap: float | None, workdir: Path) -> Path:
    """The example junction of ``profile`` with its field device's timeout (and
    inter-request gap, None: the example's) set."""
    example, _ = PROFILES[profile]
    text = (EXAMPLES / example).read_text(encoding="utf-8")
    if profile.startswith("io-modules"):
        text = text.replace("timeout = 0.08", f"timeout = {timeout}")
    else:
        text += CABINET_V1_FIELD.format(timeout=timeout)
    if gap is not None:
        text = text.replace("inter_request_gap = 0.002\n", "")
        text += f"inter_request_gap = {gap}\n"
    path = workdir / f"{profile}-{timeout}-{gap}.toml"
    path.write_text(text, encoding="utf-8")
    return path


@dataclass
class Run:
    profile: str
    baud: int
    timeout_s: float
    gap_s: float | None
    ticks: int
    requests_per_tick: float
    p50_ms: float
    p99_ms: float
    max_ms: float
    late_ticks: int
    cpu_pct: float
    mmu_tripped: bool
    frames_received: int
    clock_stalls: int  # ticks the daemon held its clock for a late frame (measured window)
    warnings: dict[str, int] = field(default_factory=dict)  # in the measured window

    @property
    def holds(self) -> bool:
        """The 10 Hz tick holds: p99 inside the tick, no late tick, no trip, no held clock,
        no warning (but the host clock's: this machine's clock is not NTP-synchronised)."""
        return (
            self.p99_ms < 100.0
            and self.late_ticks == 0
            and not self.mmu_tripped
            and self.clock_stalls == 0
            and not set(self.warnings) - {"clock_alarms"}
        )


def run_one(
    profile: str,
    baud: int,
    *,
    timeout: float,
    gap: float | None,
    duration: float,
    warmup: float,
    workdir: Path,
) -> Run:
    _, sim_profile = PROFILES[profile]
    name = f"{profile}-{baud}"
    sim = Emulator(
        workdir,
        listen=f"modbus+rtu://pty?baudrate={baud}",
        profile=sim_profile,
        seed=1,
        extra=["--line-time"],
        name=f"sim-{name}",
    )
    sim.start()
    config = write_config(profile, timeout, gap, workdir)
    daemon = DaemonProcess(workdir, config, sim.url, name=name)
    try:
        daemon.start()
        daemon.wait_log(lambda e: e.get("event") == "ready", timeout=30.0)
        time.sleep(warmup)
        assert daemon.process is not None
        pid = daemon.process.pid
        cpu0, w0 = cpu_seconds(pid), time.monotonic()
        window_from = datetime.now(UTC).isoformat().replace("+00:00", "Z")
        time.sleep(duration)
        cpu = (cpu_seconds(pid) - cpu0) / (time.monotonic() - w0) * 100
        code = daemon.stop()
        if code != 0:
            raise RuntimeError(f"daemon exited {code}: {daemon.process.output()[-2000:]}")
    finally:
        daemon.stop()
        summary = sim.stop()
    events = daemon.log_events()
    lat = [e for e in events if e.get("event") == "tick_latency_summary" and e["final"]][-1]
    stopped = next(e for e in events if e.get("event") == "daemon_stopped")
    ticks = int(stopped["ticks"])
    window = [e for e in events if str(e.get("ts", "")) >= window_from]
    warnings = collections.Counter(
        str(e.get("event")) for e in window if e.get("level") in ("warning", "error")
    )
    stalls = sum(1 for e in window if e.get("event") == "frame_late_clock_held")
    return Run(
        profile=profile,
        baud=baud,
        timeout_s=timeout,
        gap_s=gap,
        ticks=ticks,
        requests_per_tick=round(summary["wire"].get("answered", 0) / max(ticks, 1), 2),
        p50_ms=float(lat["p50_ms"]),
        p99_ms=float(lat["p99_ms"]),
        max_ms=float(lat["max_ms"]),
        late_ticks=int(stopped.get("late_ticks", 0)),
        cpu_pct=round(cpu, 2),
        mmu_tripped=bool(summary["mmu"]["tripped"]),
        frames_received=int(summary.get("frames_received", 0)),
        clock_stalls=stalls,
        warnings=dict(warnings),
    )


def table(runs: list[Run]) -> str:
    lines = [
        "| profile | baud | timeout s | requests / tick | latency p50 / p99 / max ms "
        "| late ticks / ticks | clock held | daemon CPU % | MMU tripped | warnings | 10 Hz holds |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in runs:
        warn = ", ".join(f"{k} × {v}" for k, v in sorted(r.warnings.items())) or "none"
        lines.append(
            f"| {r.profile} | {r.baud} | {r.timeout_s} | {r.requests_per_tick} "
            f"| {r.p50_ms} / {r.p99_ms} / {r.max_ms} | {r.late_ticks} / {r.ticks} "
            f"| {r.clock_stalls} "
            f"| {r.cpu_pct} | {'yes' if r.mmu_tripped else 'no'} | {warn} "
            f"| {'yes' if r.holds else 'no'} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--duration", type=float, default=30.0, help="measured s per run")
    parser.add_argument("--warmup", type=float, default=8.0, help="s after ready, not measured")
    parser.add_argument("--bauds", default="115200,38400")
    parser.add_argument("--profiles", default="io-modules,cabinet-v1")
    parser.add_argument("--timeout", type=float, default=0.08, help="per-request timeout, s")
    parser.add_argument(
        "--gap",
        type=float,
        help="inter_request_gap, s (default: io-modules 0.002, cabinet-v1 0.004)",
    )
    parser.add_argument("--json", type=Path, help="write the runs as JSON here")
    parser.add_argument("--workdir", type=Path, help="keep logs and records here")
    args = parser.parse_args(argv)
    runs: list[Run] = []
    with tempfile.TemporaryDirectory(prefix="field-bench-") as tmp:
        workdir = args.workdir or Path(tmp)
        workdir.mkdir(parents=True, exist_ok=True)
        for profile in args.profiles.split(","):
            for baud in (int(b) for b in args.bauds.split(",")):
                run = run_one(
                    profile,
                    baud,
                    timeout=args.timeout,
                    gap=args.gap,
                    duration=args.duration,
                    warmup=args.warmup,
                    workdir=workdir,
                )
                print(f"{profile} @ {baud}: {asdict(run)}", file=sys.stderr, flush=True)
                runs.append(run)
    print(table(runs))
    if args.json:
        data: dict[str, Any] = {
            "command": "python -m bench.field_bench " + " ".join(sys.argv[1:]),
            "runs": [asdict(r) | {"holds": r.holds} for r in runs],
        }
        args.json.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
