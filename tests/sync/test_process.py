"""The service in a real process: will on kill -9, outbox and seq continue after a restart,
clean online:false on SIGTERM."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

from edgectl.testing.mosquitto import MosquittoBroker
from tests.sync.conftest import IID, PREFIX, consuming, eventually

ROOT = f"{PREFIX}/{IID}"
REPO = Path(__file__).resolve().parents[2]


async def _start(url: str, state_dir: Path) -> asyncio.subprocess.Process:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.sync.service_proc",
        url,
        str(state_dir),
        cwd=REPO,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    assert proc.stdout is not None
    async with asyncio.timeout(20):
        line = await proc.stdout.readline()
    assert line.strip() == b"connected", line
    return proc


async def test_kill9_will_restart_continues_seq_sigterm_offline(
    broker: MosquittoBroker, tmp_path: Path
) -> None:
    state_dir = tmp_path / "state"
    async with consuming(broker.url, f"{ROOT}/#") as c:
        proc = await _start(broker.url, state_dir)
        try:
            await eventually(lambda: len(c.on("/events")) >= 5, timeout=15)
            proc.send_signal(signal.SIGKILL)
            await proc.wait()
            # the broker notices the dead connection and publishes the will (bdseq 1)
            await eventually(
                lambda: any(m.payload == {"online": False, "bdseq": 1} for m in c.on("/status")),
                timeout=15,
                what="will",
            )
            seen_before = max(m.payload["seq"] for m in c.on("/events"))
            proc = await _start(broker.url, state_dir)
            await eventually(
                lambda: any(
                    m.payload.get("online") and m.payload["bdseq"] == 2 for m in c.on("/status")
                ),
                timeout=15,
            )
            await eventually(
                lambda: max(m.payload["seq"] for m in c.on("/events")) >= seen_before + 5,
                timeout=15,
            )
            proc.send_signal(signal.SIGTERM)
            async with asyncio.timeout(15):
                assert await proc.wait() == 0
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
        await eventually(
            lambda: (
                c.on("/status")[-1].payload.get("online") is False
                and c.on("/status")[-1].payload.get("bdseq") == 2
            ),
            timeout=5,
        )
    status = c.on("/status")[-1].payload
    assert "ts" in status  # the clean death is published by the service itself, not the will
    for stream in ("/events", "/telemetry"):
        seqs = {m.payload["seq"] for m in c.on(stream)}
        assert seqs == set(range(1, max(seqs) + 1)), f"gap in {stream}: {sorted(seqs)}"
