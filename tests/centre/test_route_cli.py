"""``edgectl priority route``: the positions stream, the route file's problems, a dry run,
and the answers through a real mosquitto (refused, forged, missing). The honoured path with
real daemons is tests/hil/test_priority_route_hil.py."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

import aiomqtt
import pytest

from edgectl.centre.route import load_route
from edgectl.cli import main
from edgectl.commands.priority import parse_fix
from edgectl.errors import EdgectlError
from edgectl.sync.signing import sign
from edgectl.testing.mosquitto import SKIP_REASON, MosquittoBroker, mosquitto_available

ROUTE = """
id = "amb-3"
[[stops]]
junction = "hz-0001"
phases = [4, 8]
position_m = 300
[[stops]]
junction = "hz-0002"
phase = 2
position_m = 800
"""


@pytest.fixture
def route(tmp_path: Path) -> Path:
    path = tmp_path / "route.toml"
    path.write_text(ROUTE, encoding="utf-8")
    return path


def trip(tmp_path: Path, until_m: float = 850.0, speed: float = 10.0) -> Path:
    path = tmp_path / "trip.jsonl"
    lines = [
        json.dumps({"t": k, "position_m": k * speed, "speed_mps": speed})
        for k in range(int(until_m / speed) + 1)
    ]
    path.write_text("\n".join(lines) + "\nnot json\n", encoding="utf-8")
    return path


def test_fixes_are_read_or_named_wrong() -> None:
    fix = parse_fix('{"t": 3, "position_m": 10, "speed_mps": 2.5}', "x:1")
    assert (fix.t, fix.position_m, fix.speed_mps, fix.epoch) == (3.0, 10.0, 2.5, False)
    fix = parse_fix('{"t": "2026-11-21T06:00:00Z", "position_m": 1, "speed_mps": 0}', "x:2")
    assert fix.epoch and fix.t == 1795240800.0
    assert parse_fix('{"position_m": 1, "speed_mps": 0}', "x").t is None
    for line, match in (
        ("[]", "not a JSON object"),
        ("{", "not JSON"),
        ('{"position_m": "1", "speed_mps": 0}', "position_m"),
        ('{"position_m": 1, "speed_mps": true}', "speed_mps"),
        ('{"position_m": 1e999, "speed_mps": 0}', "not finite"),
        ('{"t": "2026-11-21T06:00:00", "position_m": 1, "speed_mps": 0}', "no zone"),
        ('{"t": "soon", "position_m": 1, "speed_mps": 0}', "ISO 8601"),
        ('{"t": false, "position_m": 1, "speed_mps": 0}', "neither"),
        ("x" * 5000, "longer"),
    ):
        with pytest.raises(EdgectlError, match=match):
            parse_fix(line, "x:9")


def test_a_dry_run_prints_every_command(
    route: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    positions = str(trip(tmp_path))
    rc = main(["priority", "route", "--route", str(route), "--positions", positions, "--dry-run"])
    out, err = capsys.readouterr()
    assert rc == 0, err
    assert "skipped" in err and "not JSON" in err  # the garbled last line
    lines = [json.loads(line) for line in out.splitlines()]
    assert [(x["junction"], x["command"]) for x in lines] == [
        ("hz-0001", "priority"),
        ("hz-0002", "priority"),
        ("hz-0001", "priority_cancel"),
        ("hz-0002", "priority_cancel"),
    ]
    sent = lines[0]["sent"]
    assert sent["target"] == "hz-0001" and "sig" not in sent  # no --key-file: unsigned
    assert sent["params"] == {
        "request": "amb-3@hz-0001",
        "phases": [4, 8],
        "eta_s": 30.0,
        "level": 1,
        "checkout": {"timeout_s": 30.0},
    }


def test_the_end_of_the_stream_cancels_what_is_held(
    route: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    positions = trip(tmp_path, until_m=100.0)  # the feed stops before any stop line
    key = tmp_path / "centre.key"
    key.write_text("c1:" + "k" * 40 + "\n", encoding="utf-8")
    rc = main(
        [
            *("priority", "route", "--route", str(route), "--positions", str(positions)),
            *("--dry-run", "--key-file", str(key), "--horizon", "75"),
        ]
    )
    out, _ = capsys.readouterr()
    assert rc == 0
    lines = [json.loads(line) for line in out.splitlines()]
    assert [(x["junction"], x["command"]) for x in lines] == [
        ("hz-0001", "priority"),
        ("hz-0002", "priority"),  # within 75 s from 50 m on
        ("hz-0001", "priority_cancel"),
        ("hz-0002", "priority_cancel"),
    ]
    assert all(x["sent"]["kid"] == "c1" and len(x["sent"]["sig"]) == 64 for x in lines)


@pytest.mark.parametrize(
    ("extra", "route_text", "message"),
    [
        ([], "id = 'x'\nlevel = 12\n", "level: 12 is not in 1-9"),
        (["--dry-run", "--ahead", "0"], ROUTE, "ahead"),
        ([], ROUTE, "--broker is needed"),
        (["--dry-run", "--junction-key", "hz-0009=/dev/null"], ROUTE, "not a junction"),
        (["--dry-run", "--key-id", "k"], ROUTE, "--key-id needs --key-file"),
        (["--dry-run", "--prefix", "a/#"], ROUTE, "--prefix"),
    ],
)
def test_usage_errors_exit_2_and_say_why(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    extra: list[str],
    route_text: str,
    message: str,
) -> None:
    route = tmp_path / "r.toml"
    route.write_text(route_text, encoding="utf-8")
    rc = main(
        ["priority", "route", "--route", str(route), "--positions", str(trip(tmp_path)), *extra]
    )
    _, err = capsys.readouterr()
    assert rc == 2
    assert message in err


def test_a_route_file_with_many_problems_names_each(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    route = tmp_path / "r.toml"
    route.write_text(
        "id = 'a'\n[[stops]]\njunction = 'j+1'\nphase = 2\nposition_m = 5\n"
        "[[stops]]\njunction = 'j2'\nphase = 2\nposition_m = 1\n",
        encoding="utf-8",
    )
    assert main(["priority", "route", "--route", str(route), "--positions", "-"]) == 2
    err = capsys.readouterr().err
    assert "stops[0].junction" in err and "stops[1].position_m" in err
    with pytest.raises(EdgectlError):
        load_route(route)


async def test_sigterm_cancels_what_is_held(route: Path) -> None:
    proc = await asyncio.create_subprocess_exec(
        *(sys.executable, "-m", "edgectl", "priority", "route", "--route", str(route)),
        *("--positions", "-", "--dry-run"),
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    assert proc.stdin is not None and proc.stdout is not None
    try:
        proc.stdin.write(b'{"position_m": 0, "speed_mps": 10}\n')
        await proc.stdin.drain()
        async with asyncio.timeout(30.0):
            first = [json.loads(await proc.stdout.readline()) for _ in range(2)]
            assert [x["command"] for x in first] == ["priority", "priority"]
            proc.terminate()  # the feed is still open: only the signal ends the run
            rest, _ = await proc.communicate()
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert proc.returncode == 0
    after = [json.loads(line) for line in rest.decode().splitlines()]
    assert [(x["junction"], x["command"]) for x in after] == [
        ("hz-0001", "priority_cancel"),
        ("hz-0002", "priority_cancel"),
    ]


# --- through a real mosquitto ---------------------------------------------------------------

mqtt = pytest.mark.skipif(not mosquitto_available(), reason=SKIP_REASON)
FAKE_KEY = b"the-key-the-junction-does-not-hold-32b"


async def _junction(
    url: str, ready: asyncio.Event, *, refuse: bool, sign_with: bytes | None
) -> None:
    """A stand-in junction on ``hz-0001`` only: answers every command, refused or ok."""
    host, port = url.removeprefix("mqtt://").split(":")
    async with aiomqtt.Client(host, int(port)) as client:
        await client.subscribe("citybrain/hz-0001/cmd", qos=1)
        ready.set()
        async for message in client.messages:
            assert isinstance(message.payload, bytes)
            cmd = json.loads(message.payload)
            answer: dict[str, object] = {"id": cmd["id"], "ok": not refuse}
            if refuse:
                answer["error"] = {"code": "not_allowed", "message": "no"}
            else:
                answer["result"] = {"honoured": True}
            if sign_with is not None:
                answer["sig"] = sign(answer, sign_with)
            await client.publish("citybrain/hz-0001/cmd/response", json.dumps(answer), qos=1)


async def _run_tool(argv: list[str]) -> tuple[int, list[dict[str, object]], str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "edgectl",
        *argv,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        async with asyncio.timeout(60.0):
            out, err = await proc.communicate()
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert proc.returncode is not None
    lines = [json.loads(line) for line in out.decode().splitlines() if line.strip()]
    return proc.returncode, lines, err.decode()


CENTRE_KEY = b"the-centre-key-that-hz-0001-really-holds"
OWN_KEY = b"hz-0001-own-key-that-only-it-holds-32b"


@mqtt
@pytest.mark.mqtt
@pytest.mark.parametrize(
    ("refuse", "signed", "keyed", "rc", "first"),
    [
        # refused: exit 1 (a refusal outranks the unanswered hz-0002), the error printed
        (True, None, "", 1, {"ok": False}),
        # a forged answer is not taken: no answer
        (False, FAKE_KEY, "fleet", 3, {"ok": None}),
        # hz-0001 has a key of its own: an answer signed with the fleet key is not its answer
        (False, CENTRE_KEY, "own", 3, {"ok": None}),
        # and one signed with its own key is
        (False, OWN_KEY, "own", 3, {"ok": True}),
    ],
    ids=["refused", "forged-answer", "other-junctions-key", "own-key"],
)
async def test_answers_through_mosquitto(
    broker: MosquittoBroker,
    route: Path,
    tmp_path: Path,
    refuse: bool,
    signed: bytes | None,
    keyed: str,
    rc: int,
    first: dict[str, object],
) -> None:
    ready = asyncio.Event()
    key = tmp_path / "centre.key"
    key.write_bytes(CENTRE_KEY + b"\n")
    own = tmp_path / "hz-0001.key"
    own.write_bytes(OWN_KEY + b"\n")
    argv = ["priority", "route", "--route", str(route), "--positions", str(trip(tmp_path))]
    argv += ["--broker", broker.url, "--timeout", "2"]
    if keyed:
        argv += ["--key-file", str(key)]
    if keyed == "own":
        argv += ["--junction-key", f"hz-0001={own}"]
    async with asyncio.TaskGroup() as tg:
        junction = tg.create_task(
            _junction(broker.url, ready, refuse=refuse, sign_with=signed), name="test[junction]"
        )
        await ready.wait()
        code, lines, err = await _run_tool(argv)
        junction.cancel()
    assert code == rc, (err, lines)
    mine = [x for x in lines if x["junction"] == "hz-0001"]
    assert [x["command"] for x in mine] == ["priority", "priority_cancel"]
    assert all(x["ok"] == first["ok"] for x in mine), mine
    if refuse:
        assert mine[0]["error"] == {"code": "not_allowed", "message": "no"}
    # hz-0002 has no junction at all: its commands are reported unanswered
    theirs = [x for x in lines if x["junction"] == "hz-0002"]
    assert theirs and all(x["error"] == {"code": "no_answer"} for x in theirs), theirs
