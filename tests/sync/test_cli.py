"""``edgectl cmd`` and ``edgectl watch`` as real processes against a real broker."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path

from edgectl.commands.cmd import parse_params
from edgectl.testing.mosquitto import MosquittoBroker, free_port
from tests.sync.conftest import IID, FakeHandler, eventually, make_service, running

REPO = Path(__file__).resolve().parents[2]
KEY = b"cli-key"

PLAN_TOML = """\
[[plans]]
id = 5
name = "night"

[plans.timing.2]
min_green = 10.0
max1 = 30.0
yellow = 4.0
red_clear = 2.0

[plans.timing.4]
min_green = 7.0
max1 = 20.0
yellow = 3.5
red_clear = 2.0
"""


async def edgectl(*args: str) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "edgectl",
        *args,
        cwd=REPO,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    async with asyncio.timeout(30):
        out, err = await proc.communicate()
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


def test_parse_params(tmp_path: Path) -> None:
    plan = tmp_path / "plan.toml"
    plan.write_text(PLAN_TOML)
    p = parse_params(["phases=[2,6]", "mode=flash", "active=false", "input=1", f"plan=@{plan}"])
    assert p["phases"] == [2, 6]
    assert p["mode"] == "flash"
    assert p["active"] is False
    assert p["input"] == 1
    assert isinstance(p["plan"], dict)
    assert p["plan"]["id"] == 5


async def test_cmd_exit_codes_and_watch(
    broker: MosquittoBroker, tmp_path: Path, handler: FakeHandler
) -> None:
    key_file = tmp_path / "cmd.key"
    key_file.write_bytes(KEY)
    plan = tmp_path / "plan.toml"
    plan.write_text(PLAN_TOML)
    service = make_service(broker.url, tmp_path / "state", handler, command_key_file=key_file)
    service.publish_state(
        {
            "mode": "actuated",
            "plan": 1,
            "alarms": [],
            "rings": [{"ring": 1, "phase": 2, "interval": "green"}],
        }
    )
    base = ("cmd", "--broker", broker.url, "--intersection", IID, "--timeout", "5")
    async with running(service):
        await eventually(lambda: service.connected)
        rc, out, _ = await edgectl(*base, "--key-file", str(key_file), "hold", "phases=[2,6]")
        assert rc == 0, out
        assert json.loads(out)["ok"] is True
        rc, out, _ = await edgectl(
            *base,
            "--key-file",
            str(key_file),
            "--mqtt-version",
            "3.1.1",
            "set_plan",
            f"plan=@{plan}",
        )
        assert rc == 0, out
        rc, out, _ = await edgectl(*base, "hold", "phases=[2]")  # unsigned
        assert rc == 1
        assert json.loads(out)["error"]["code"] == "unsigned"
        rc, out, _ = await edgectl(*base, "--key-file", str(key_file), "hold", "phases=[99]")
        assert rc == 1
        assert json.loads(out)["error"]["code"] == "invalid_schema"
        rc, out, _ = await edgectl("watch", "--broker", broker.url, "--once", "1")
        assert rc == 0
        lines = out.splitlines()
        assert lines[0].split()[:3] == ["junction", "online", "mode"]
        row = next(line for line in lines if line.startswith(IID))
        assert "yes (1)" in row
        assert "actuated" in row
        assert "R1:2 green" in row
    assert [c.type for c in handler.applied] == ["hold", "set_plan"]
    # nobody answers → 3; no broker → 2
    rc, _, err = await edgectl(
        "cmd",
        "--broker",
        broker.url,
        "--intersection",
        "nobody",
        "--timeout",
        "0.5",
        "request_state",
    )
    assert rc == 3, err
    rc, _, err = await edgectl(
        "cmd",
        "--broker",
        f"mqtt://127.0.0.1:{free_port()}",
        "--intersection",
        IID,
        "--timeout",
        "2",
        "request_state",
    )
    assert rc == 2, err


def test_watch_table_from_retained_messages() -> None:
    from datetime import UTC, datetime

    from edgectl.commands.watch import Fleet, plain_table

    now = datetime(2026, 11, 21, 6, 0, 10, tzinfo=UTC)
    fleet = Fleet("citybrain")
    fleet.update("citybrain/j2/status", b'{"online": false, "bdseq": 4}', now)
    fleet.update(
        "citybrain/j2/state",
        b'{"mode": "flash", "alarms": ["mmu"], '
        b'"rings": [{"ring": 1, "phase": null, "interval": "red"}], '
        b'"ts": "2026-11-21T06:00:00.000Z"}',
        now,
    )
    fleet.update("citybrain/j2/events", b"{}", now)  # ignored
    fleet.update("other/j3/state", b"{}", now)  # other prefix: ignored
    fleet.update("citybrain/j4/state", b"not json", now)  # ignored
    table = plain_table(fleet.rows(now))
    assert list(fleet.junctions) == ["j2"]
    row = table.splitlines()[1]
    for text in ("j2", "NO (4)", "flash", "R1:- red", "mmu", "10s ago"):
        assert text in row


async def test_cmd_over_tls_with_client_certificate(
    tls_broker: MosquittoBroker, tmp_path: Path, handler: FakeHandler
) -> None:
    tf = tls_broker.tls_files
    assert tf is not None
    service = make_service(
        tls_broker.tls_url,
        tmp_path,
        handler,
        ca_file=tf.ca_file,
        cert_file=tf.client_cert,
        key_file=tf.client_key,
    )
    async with running(service):
        await eventually(lambda: service.connected)
        rc, out, err = await edgectl(
            "cmd",
            "--broker",
            tls_broker.tls_url,
            "--intersection",
            IID,
            "--timeout",
            "5",
            "--ca-file",
            str(tf.ca_file),
            "--cert-file",
            str(tf.client_cert),
            "--cert-key-file",
            str(tf.client_key),
            "set_mode",
            "mode=flash",
        )
        assert rc == 0, (out, err)
    assert handler.applied[0].type == "set_mode"
