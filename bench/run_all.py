"""One command for the benchmarks: daemon cost, core speed and the SUMO matrix → docs/benchmarks.md.

    .venv/bin/python -m bench.run_all [--daemon-duration 60] [--core-hours 24]
                                      [--sumo-seeds 1 2 3] [--skip-sumo] [--out docs/benchmarks.md]

Runs, one after another (never in parallel: the numbers must not disturb each other):

1. :mod:`bench.daemon_bench` — ``edgectl run`` vs a bare pymodbus loop at 10 Hz over TCP
   (CPU, RSS, tick latency p50/p99);
2. :mod:`bench.core_speed` — the pure core's simulated seconds per wall second (24 h run);
3. :mod:`bench.sumo_matrix` — the SUMO software-in-the-loop matrix (it writes its own
   ``docs/sumo-bench.md``), when the script and SUMO are present; skipped with a note if not.

Writes ``docs/benchmarks.md`` with every number, the exact commands, and the machine.
Exit status 0 when every part ran (targets missed are reported, not fatal).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BENCH = REPO / "bench"


def _run(argv: list[str], timeout: float) -> tuple[int, str, float]:
    started = time.monotonic()
    proc = subprocess.run(
        argv, cwd=REPO, capture_output=True, text=True, timeout=timeout, check=False
    )
    return proc.returncode, proc.stdout + proc.stderr, time.monotonic() - started


def _cmd(argv: list[str]) -> str:
    return " ".join(
        [
            "python",
            *(str(Path(a).relative_to(REPO)) if a.startswith(str(REPO)) else a for a in argv[1:]),
        ]
    )


def _machine() -> str:
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    return (
        f"{os.cpu_count()} CPU ({model or platform.machine()}), Python "
        f"{platform.python_version()}, {platform.system()} {platform.release()}; "
        f"load average at the end {load} (the machine is shared)"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--daemon-duration", type=float, default=60.0)
    parser.add_argument("--core-hours", type=float, default=24.0)
    parser.add_argument("--sumo-seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--skip-sumo", action="store_true")
    parser.add_argument(
        "--sumo-no-docs",
        action="store_true",
        help="the matrix prints only (leaves docs/sumo-bench.* alone)",
    )
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "benchmarks.md")
    args = parser.parse_args(argv)
    py = sys.executable
    sections: list[str] = []
    ok = True
    started = datetime.now(UTC).isoformat(timespec="seconds")

    # 1. the daemon
    with tempfile.TemporaryDirectory(prefix="bench-") as tmp:
        out = Path(tmp) / "daemon.json"
        cmd = [
            py,
            "-m",
            "bench.daemon_bench",
            "--duration",
            str(args.daemon_duration),
            "--json",
            str(out),
        ]
        code, text, wall = _run(cmd, timeout=args.daemon_duration + 180)
        lines = [
            "## 1. The daemon at 10 Hz vs a bare pymodbus loop",
            "",
            f"`{_cmd(cmd[:-2])}` ({wall:.0f} s)",
            "",
        ]
        if out.exists():
            data = json.loads(out.read_text(encoding="utf-8"))
            table = text[: text.find("targets met")].strip()
            lines += [
                table,
                "",
                "Targets met: "
                + ", ".join(
                    f"{k} {'yes' if v else '**no**'}" for k, v in data["targets_met"].items()
                ),
                "",
                f"Measurement window {data['window_s']} s after a warm-up; CPU from "
                "/proc/PID/stat (utime + stime) over the window, RSS = VmRSS; tick latency "
                "= detector frame read → output frame written (the daemon's "
                f"`tick_latency_summary`, {data['daemon_samples']} samples over the whole "
                "run including start-up). The bare loop does one FC4 read of 110 "
                "registers and one FC16 write of 33 per 0.1 s against its own emulator "
                "in the same run.",
            ]
        else:
            ok = False
            lines += ["**failed**:", "```", text[-3000:], "```"]
        sections.append("\n".join(lines))

    # 2. the core
    cmd = [py, "-m", "bench.core_speed", "--hours", str(args.core_hours)]
    code, text, wall = _run(cmd, timeout=1800)
    ok &= code == 0
    sections.append(
        "\n".join(
            [
                "## 2. Simulation speed of the pure core",
                "",
                f"`{_cmd(cmd)}` ({wall:.0f} s)",
                "",
                "```",
                text.strip()[-3000:],
                "```",
            ]
        )
    )

    # 3. SUMO
    matrix = BENCH / "sumo_matrix.py"
    lines = ["## 3. SUMO software-in-the-loop matrix", ""]
    if args.skip_sumo:
        lines.append("Skipped (`--skip-sumo`).")
    elif not matrix.exists():
        lines.append("Skipped: `bench/sumo_matrix.py` is not in this checkout.")
    elif importlib.util.find_spec("libsumo") is None and importlib.util.find_spec("sumo") is None:
        lines.append("Skipped: SUMO is not installed (`pip install -e .[sumo]`).")
    else:
        cmd = [py, "-m", "bench.sumo_matrix", "--seeds", *map(str, args.sumo_seeds)]
        if args.sumo_no_docs:
            cmd.append("--no-docs")
        code, text, wall = _run(cmd, timeout=7200)
        ok &= code == 0
        lines += [
            f"`{_cmd(cmd)}` ({wall:.0f} s, exit {code}) — full tables in "
            "[sumo-bench.md](sumo-bench.md).",
            "",
            "```",
            text.strip()[-2500:],
            "```",
        ]
    sections.append("\n".join(lines))

    doc = (
        "\n\n".join(
            [
                "# Benchmarks",
                f"Generated by `python -m bench.run_all` (started {started}). "
                f"Machine: {_machine()}.",
                "Soak, fleet load and the daemon's control modes against firmware_sim have "
                "their own reports: [soak.md](soak.md), [fleet.md](fleet.md), "
                "[hil-adaptive.md](hil-adaptive.md).",
                *sections,
            ]
        )
        + "\n"
    )
    args.out.write_text(doc, encoding="utf-8")
    print(doc)
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
