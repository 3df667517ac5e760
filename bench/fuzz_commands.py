"""A flood of hostile command messages through a real broker into a running daemon.

    .venv/bin/python -m bench.fuzz_commands [--messages 100000] [--rate 2000] [--seed 1]

Starts mosquitto, the emulator and ``edgectl run`` (a keyed junction, as in the field), then
publishes ``--messages`` messages to the junction's ``cmd`` topic at about ``--rate`` per
second from an attacker's client: random bytes, truncated and deeply nested JSON, lone
surrogates, oversized payloads, wrong types, unsigned and forged commands, another junction's
signed commands, replays, MQTT 5 response topics with wildcards or pointing at the junction's
own topics. One message in ``--valid-every`` is a correctly signed ``request_state`` from the
centre: during the flood these share the junction's command rate with the attacker's
(``[mqtt] max_commands_per_s``), so most go unanswered — a centre sends again; the ten sent
after the flood must all be answered.

What it reports (and exits 1 unless each holds): the daemon still running; no MQTT session
lost to a message (``mqtt_link_down`` log lines); no late control tick; RSS under 256 MB;
the commands after the flood answered ``ok``; no
conflict, short yellow or red clearance on the emulator's record (the independent checker),
MMU not tripped; the late ticks, the daemon's peak RSS and the refusal codes counted.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import random
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from bench.record import count_events, record_findings
from edgectl.sync.signing import build_command
from edgectl.testing.hil import DaemonProcess, Emulator
from edgectl.testing.mosquitto import MosquittoBroker

REPO = Path(__file__).resolve().parents[1]
EIGHT_PHASE = REPO / "edgectl" / "examples" / "eight_phase.toml"
IID = "hz-0001"
ROOT = f"citybrain/{IID}"
AFTER_FLOOD = 10  # valid commands after the flood, 0.2 s apart: every one must be answered
RSS_LIMIT_MB = 256.0  # half the unit's MemoryMax


@dataclass
class Tally:
    sent: collections.Counter[str] = field(default_factory=collections.Counter)
    codes: collections.Counter[str] = field(default_factory=collections.Counter)
    valid_ids: set[str] = field(default_factory=set)
    valid_ok: set[str] = field(default_factory=set)
    ok_for_hostile: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)


class Hostile:
    """One hostile payload (and MQTT 5 properties) per call, by kind."""

    def __init__(self, rng: random.Random, key: bytes) -> None:
        self.rng = rng
        self.key = key
        self.captured: list[bytes] = []

    def __call__(self) -> tuple[str, bytes, Properties | None]:
        rng = self.rng
        kind = rng.choice(
            [
                "bytes", "truncated", "nested", "wide", "surrogate", "huge", "types",
                "unsigned", "forged", "other_junction", "replay", "wild_response",
                "own_topic_response", "float_edge",
            ]
        )  # fmt: skip
        now = datetime.now(UTC)
        props: Properties | None = None
        if kind == "bytes":
            data = rng.randbytes(rng.randint(0, 512))
        elif kind == "truncated":
            whole = json.dumps(build_command("hold", {"phases": [2, 6]}, now=now, key=self.key))
            data = whole[: rng.randint(0, len(whole) - 1)].encode()
        elif kind == "nested":
            depth = rng.randint(17, 5000)
            data = ("[" * depth + "]" * depth).encode()
        elif kind == "wide":
            data = json.dumps({"id": "w", "params": list(range(rng.randint(257, 3000)))}).encode()
        elif kind == "surrogate":
            data = b'{"id": "\\ud800", "type": "hold", "sig": "00"}'
        elif kind == "huge":
            data = b'{"id": "' + b"x" * rng.randint(16 * 1024, 64 * 1024) + b'"}'
        elif kind == "types":
            data = json.dumps({"id": rng.random(), "type": [1], "params": "x", "sig": 5}).encode()
        elif kind == "unsigned":
            data = json.dumps(build_command("flash", {}, now=now, target=IID)).encode()
        elif kind == "forged":
            cmd = build_command("mmu_reset", {}, now=now, key=b"k" * 32, target=IID)
            data = json.dumps(cmd).encode()
        elif kind == "other_junction":
            cmd = build_command("preempt", {"input": 1}, now=now, key=self.key, target="hz-9")
            data = json.dumps(cmd).encode()
            self.captured.append(data)
        elif kind == "replay" and self.captured:
            data = rng.choice(self.captured)
        elif kind == "float_edge":
            data = b'{"id": "f", "type": "hold", "params": {"phases": [1e400]}, "sig": "0"}'
        else:  # a response topic the junction must not obey
            props = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
            props.ResponseTopic = f"{ROOT}/#" if kind == "wild_response" else f"{ROOT}/state"
            cmd = build_command("request_state", {}, now=now, key=self.key, target=IID)
            data = json.dumps(cmd).encode()
        return kind, data, props


def _client(port: int, name: str) -> paho.Client:
    client = paho.Client(CallbackAPIVersion.VERSION2, client_id=name, protocol=paho.MQTTv5)
    client.connect("127.0.0.1", port)
    client.loop_start()
    return client


def fuzz(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    rng = random.Random(args.seed)
    tally = Tally()
    with MosquittoBroker() as broker:
        sim = Emulator(workdir, seed=args.seed).start()
        env = {"EDGECTL_MQTT__MAX_COMMANDS_PER_S": str(args.max_commands_per_s)}
        daemon = DaemonProcess(workdir, EIGHT_PHASE, sim.url, broker=broker.url, env=env)
        try:
            daemon.start()
            daemon.wait_log(lambda e: e.get("event") == "mqtt_connected", 30)
            assert daemon.command_key is not None
            centre = _client(broker.port, "centre")

            def on_message(_c: Any, _u: Any, msg: paho.MQTTMessage) -> None:
                try:
                    body = json.loads(msg.payload)
                except ValueError:
                    return
                with tally.lock:
                    error = body.get("error") if isinstance(body, dict) else None
                    code = "ok" if not error else str(error.get("code"))
                    tally.codes[code] += 1
                    if code == "ok" and body.get("id") in tally.valid_ids:
                        tally.valid_ok.add(str(body["id"]))
                    elif code == "ok":
                        tally.ok_for_hostile += 1  # executed, yet not the centre's

            centre.on_message = on_message
            centre.subscribe(f"{ROOT}/cmd/response", qos=1)
            attacker = _client(broker.port, "attacker")
            hostile = Hostile(rng, daemon.command_key)
            started = time.monotonic()
            rss_peak = 0
            pid = daemon.process.pid if daemon.process else None
            for n in range(args.messages):
                if n % args.valid_every == 0:
                    cmd = build_command(
                        "request_state", {}, now=datetime.now(UTC), key=daemon.command_key,
                        target=IID,
                    )  # fmt: skip
                    with tally.lock:
                        tally.valid_ids.add(str(cmd["id"]))
                    centre.publish(f"{ROOT}/cmd", json.dumps(cmd), qos=1)
                    tally.sent["valid"] += 1
                kind, data, props = hostile()
                attacker.publish(f"{ROOT}/cmd", data, qos=rng.choice((0, 1)), properties=props)
                tally.sent[kind] += 1
                behind = started + (n + 1) / args.rate - time.monotonic()
                if behind > 0:
                    time.sleep(behind)
                if n % 1000 == 0 and pid:
                    rss_peak = max(rss_peak, _rss_kb(pid))
            flood_s = time.monotonic() - started
            time.sleep(3.0)  # the flood's tail drains, the rate limit refills
            during = len(tally.valid_ok)
            after: set[str] = set()
            for _ in range(AFTER_FLOOD):
                cmd = build_command(
                    "request_state", {}, now=datetime.now(UTC), key=daemon.command_key, target=IID
                )
                after.add(str(cmd["id"]))
                with tally.lock:
                    tally.valid_ids.add(str(cmd["id"]))
                centre.publish(f"{ROOT}/cmd", json.dumps(cmd), qos=1)
                time.sleep(0.2)
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and not after <= tally.valid_ok:
                time.sleep(0.2)
            alive = daemon.process is not None and daemon.process.running()
            attacker.loop_stop()
            centre.loop_stop()
        finally:
            daemon.stop()
            summary = sim.stop()
    events = daemon.log_events()
    return {
        "messages": args.messages,
        "flood_s": round(flood_s, 1),
        "rate_per_s": round(args.messages / flood_s),
        "daemon_alive_after": alive,
        "mqtt_sessions_lost": count_events(events, "mqtt_link_down"),
        "late_ticks": count_events(events, "late_tick"),
        "rss_peak_mb": round(rss_peak / 1024, 1),
        "valid_sent_during_flood": len(tally.valid_ids) - AFTER_FLOOD,
        "valid_answered_during_flood": during,
        "valid_answered_after_flood": f"{len(after & tally.valid_ok)} of {AFTER_FLOOD}",
        "ok_for_hostile": tally.ok_for_hostile,
        "daemon_dropped": _dropped(events),
        "responses_by_code": dict(tally.codes.most_common()),
        "sent_by_kind": dict(tally.sent.most_common()),
        "checker_findings": record_findings(EIGHT_PHASE, sim.record_path),
        "mmu_tripped": bool(summary.get("mmu", {}).get("tripped")),
    }


def _dropped(events: list[dict[str, Any]]) -> dict[str, int]:
    """The daemon's own count of what it dropped unanswered (its last rate-limit warning)."""
    warned = [e for e in events if e.get("event") == "incoming_rate_limited"]
    return {"rate_limited": int(warned[-1].get("commands", 0))} if warned else {}


def _rss_kb(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument("--rate", type=float, default=2000.0, help="messages per second")
    parser.add_argument("--valid-every", type=int, default=100)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--max-commands-per-s",
        type=float,
        default=20.0,
        help="the daemon's [mqtt] max_commands_per_s (raise it to make it parse every message)",
    )
    parser.add_argument("--json", type=Path, help="also write the result here")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="edgectl-fuzz-") as tmp:
        result = fuzz(args, Path(tmp))
    text = json.dumps(result, indent=2)
    print(text)
    if args.json:
        args.json.write_text(text + "\n", encoding="utf-8")
    good = (
        result["daemon_alive_after"]
        and result["mqtt_sessions_lost"] == 0
        and result["valid_answered_after_flood"] == f"{AFTER_FLOOD} of {AFTER_FLOOD}"
        and result["rss_peak_mb"] < RSS_LIMIT_MB
        and result["ok_for_hostile"] == 0
        and result["late_ticks"] == 0
        and not result["checker_findings"]
        and not result["mmu_tripped"]
    )
    return 0 if good else 1


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
