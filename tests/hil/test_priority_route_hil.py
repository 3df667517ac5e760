"""Hardware in the loop: a green wave along a route of two junctions.

Two daemons (``hz-0001``, ``hz-0002``), each against its own ``firmware-sim`` with traffic
on every approach, a real mosquitto, each junction with its own command key. The route tool
runs as the centre would run it — ``edgectl priority route`` as a subprocess, signing with
the per-junction keys, reading a live GPS feed on its standard input — while this test plays
the vehicle: a fix a second, at constant speed, through both stop lines. The vehicle's ETA at
each stop line is therefore known exactly (in UTC); the emulators' records (ground truth, not
the daemons' word) must show the vehicle's approach channels green from ``flush`` seconds
before that ETA through the ETA, and the independent checker must find nothing in them.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from edgectl.config.loader import load_config
from edgectl.config.model import DaemonConfig
from edgectl.control.priority import flush_s, lead_time
from edgectl.testing.consumer import consuming, eventually
from edgectl.testing.hil import DaemonProcess, Emulator, read_record
from edgectl.testing.mosquitto import SKIP_REASON, MosquittoBroker, mosquitto_available

from .support import EIGHT_PHASE, record_findings

pytestmark = [
    pytest.mark.hil,
    pytest.mark.mqtt,
    pytest.mark.skipif(not mosquitto_available(), reason=SKIP_REASON),
]

# traffic on every approach, the main street (2/6) the busiest: the priority must end real
# conflicting greens, not an idle junction's
DEMAND = "time_s,p1,p2,p3,p4,p5,p6,p7,p8\n0,150,450,150,250,150,450,150,250\n"
SPEED_MPS = 12.0
SLACK_S = 6.0  # the first request reaches each junction this long before its lead
CLOCK_TOLERANCE_S = 0.3  # UTC → emulator time (the URL line's arrival), a tick, the record


def junction_config(tmp: Path, iid: str) -> tuple[Path, Path]:
    """A copy of eight_phase.toml for junction ``iid`` with its own command key."""
    key = tmp / f"{iid}.key"
    key.write_text(f"{iid}-key:{os.urandom(24).hex()}\n", encoding="ascii")
    os.chmod(key, 0o600)
    text = EIGHT_PHASE.read_text(encoding="utf-8")
    assert text.count('id = "hz-0001"') == 1
    cfg = tmp / f"{iid}.toml"
    cfg.write_text(
        text.replace('id = "hz-0001"', f'id = "{iid}"')
        + f'\n[mqtt]\ncommand_key_file = "{key}"\nstate_interval_s = 2.0\n',
        encoding="utf-8",
    )
    return cfg, key


def green_throughout(
    rows: list[tuple[float, int, str]], channel: int, start: float, end: float
) -> bool:
    """True when ``channel`` shows green (G) all the way from ``start`` to ``end``."""
    state, since = "", 0.0
    for t, ch, st in rows:
        if ch != channel:
            continue
        if t > start:
            break
        state, since = st, t
    if state != "G" or since > start:
        return False
    return all(not (start < t <= end and ch == channel and st != "G") for t, ch, st in rows)


async def test_a_route_request_is_honoured_at_two_junctions(
    tmp_path: Path, broker: MosquittoBroker
) -> None:
    demand = tmp_path / "demand.csv"
    demand.write_text(DEMAND, encoding="utf-8")
    junctions = {"hz-0001": (4, 8), "hz-0002": (2, 6)}
    configs: dict[str, DaemonConfig] = {}
    sims: dict[str, Emulator] = {}
    daemons: dict[str, DaemonProcess] = {}
    keys: dict[str, Path] = {}
    for n, iid in enumerate(junctions):
        cfg, keys[iid] = junction_config(tmp_path, iid)
        configs[iid] = load_config(cfg, environ={})
        sims[iid] = Emulator(
            tmp_path, seed=68 + n, name=f"sim-{iid}", extra=["--demand", str(demand)]
        )
        daemons[iid] = DaemonProcess(tmp_path, cfg, "", broker=broker.url, name=f"daemon-{iid}")

    # the stop lines: each junction's ETA is its lead plus SLACK_S after the first fix, and
    # the second junction at least 10 s after the first
    leads = {
        iid: lead_time(configs[iid], configs[iid].plan(configs[iid].control.plan), phases)
        for iid, phases in junctions.items()
    }
    eta1 = leads["hz-0001"] + SLACK_S
    eta2 = max(leads["hz-0002"] + SLACK_S, eta1 + 10.0)
    positions = {"hz-0001": SPEED_MPS * eta1, "hz-0002": SPEED_MPS * eta2}
    route = tmp_path / "route.toml"
    route.write_text(
        'id = "amb-7"\nlevel = 1\n'
        + "".join(
            f'[[stops]]\njunction = "{iid}"\nphases = {list(junctions[iid])}\n'
            f"position_m = {positions[iid]:.3f}\n"
            for iid in junctions
        ),
        encoding="utf-8",
    )

    tool: asyncio.subprocess.Process | None = None
    wall_at_zero: dict[str, float] = {}
    try:
        for iid in junctions:
            sims[iid].start()
            wall_at_zero[iid] = time.time() - sims[iid].now()
            daemons[iid].field_url = sims[iid].url
            daemons[iid].start()
        async with consuming(broker.url, "citybrain/#") as consumer:

            def in_state(iid: str, state: str, *, ever: bool = False) -> bool:
                states = [m.payload for m in consumer.on(f"{iid}/state")]
                if ever:
                    return any(p.get("state") == state for p in states)
                return bool(states) and states[-1].get("state") == state

            for iid in junctions:
                await eventually(
                    lambda iid=iid: in_state(iid, "normal"),  # type: ignore[misc]
                    40.0,
                    f"{iid} in normal",
                )

            tool = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "edgectl",
                "priority",
                "route",
                "--route",
                str(route),
                "--positions",
                "-",
                "--broker",
                broker.url,
                "--key-file",
                str(keys["hz-0001"]),
                "--junction-key",
                f"hz-0002={keys['hz-0002']}",
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
            )
            assert tool.stdin is not None
            # the vehicle: a fix a second until it is 2 s past the last stop line
            t0 = time.time()
            end = eta2 + 2.0
            k = 0
            while True:
                now = time.time()
                elapsed = now - t0
                fix = {
                    "t": datetime.fromtimestamp(now, UTC).isoformat(),
                    "position_m": SPEED_MPS * elapsed,
                    "speed_mps": SPEED_MPS,
                }
                tool.stdin.write((json.dumps(fix) + "\n").encode())
                await tool.stdin.drain()
                if elapsed >= end:
                    break
                k += 1
                await asyncio.sleep(max(0.0, t0 + k - time.time()))
            tool.stdin.close()
            async with asyncio.timeout(30.0):
                out, err = await tool.communicate()
            rc = tool.returncode
            tool = None
            # the junctions served the vehicle by their preempt path (input 7)
            preempted = {iid: in_state(iid, "preempt", ever=True) for iid in junctions}
            assert all(preempted.values()), preempted
    finally:
        if tool is not None and tool.returncode is None:
            tool.kill()
            await tool.wait()
        summaries: dict[str, dict[str, Any]] = {}
        for iid in junctions:
            daemons[iid].stop()
        for iid in junctions:
            summaries[iid] = sims[iid].stop()

    answers = [json.loads(line) for line in out.decode().splitlines() if line.strip()]
    assert rc == 0, (rc, err.decode()[-3000:], answers)
    # every command answered ok; each junction honoured its request, then the check-out
    by_junction = {iid: [a for a in answers if a["junction"] == iid] for iid in junctions}
    for iid, lines in by_junction.items():
        commands = [a["command"] for a in lines]
        assert commands == ["priority", "priority_cancel"], lines
        assert all(a["ok"] is True for a in lines), lines
        result = lines[0]["result"]
        assert result["honoured"] is True, result
        assert result["request"] == f"amb-7@{iid}"

    # ground truth: the emulators' records, on the emulator clock (0 = its URL line)
    etas_utc = {"hz-0001": t0 + eta1, "hz-0002": t0 + eta2}
    for iid, phases in junctions.items():
        sim = sims[iid]
        rows = read_record(sim.record_path)
        eta = etas_utc[iid] - wall_at_zero[iid]
        flush = flush_s(configs[iid], phases)
        green_since = max(
            max((t for t, ch, st in rows if ch == channel and st == "G" and t <= eta), default=0)
            for channel in phases
        )
        result = by_junction[iid][0]["result"]
        print(
            f"{iid}: lead {leads[iid]:.1f} s, answered green_in_s {result['green_in_s']}, "
            f"movement green {eta - green_since:.1f} s before the ETA (flush {flush:.1f} s)"
        )
        for channel in phases:  # eight_phase.toml: vehicle channel n shows phase n
            assert green_throughout(rows, channel, eta - flush + CLOCK_TOLERANCE_S, eta), (
                iid,
                channel,
                eta,
                flush,
                [r for r in rows if r[1] == channel][-8:],
            )
        summary = summaries[iid]
        assert summary["mmu"]["tripped"] is False, summary["mmu"]
        findings = record_findings(configs[iid], sim.record_path, summary["conflicts"])
        assert findings == [], "\n".join(map(str, findings[:20]))
