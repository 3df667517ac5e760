"""Key files with key ids: parsing, ``kid`` selection, rotation, and re-reading on reload.

Rotation, as the centre runs it: add the new key to every junction's file, reload (SIGHUP),
sign with the new key, remove the old one and reload again. The reload test drives a daemon
built as ``edgectl run`` builds it (:func:`edgectl.daemon.assemble.build_daemon`) against a
``memory://`` field and a real mosquitto, and reloads it as the SIGHUP handler does.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiomqtt
import pytest

from edgectl.config.files import MAX_KEYS, file_problems, parse_key_file
from edgectl.config.loader import load_config
from edgectl.config.model import DaemonConfig
from edgectl.config.settings import MqttSettings
from edgectl.daemon.assemble import build_daemon
from edgectl.daemon.loop import Daemon
from edgectl.errors import EdgectlError
from edgectl.sync.processor import CommandProcessor
from edgectl.sync.signing import (
    Key,
    build_command,
    pick_key,
    read_key,
    read_keys,
    verify_response,
)
from edgectl.testing.consumer import Consumer, consuming, eventually
from edgectl.testing.mosquitto import MosquittoBroker
from tests.daemon.conftest import running
from tests.daemon.test_reload_status import EIGHT_PHASE, configure
from tests.sync.conftest import FakeHandler
from tests.sync.test_commands import NOW, Store

IID = "hz-0001"
S1 = b"first-secret-0123456789abcdef0123456789"
S2 = b"second-secret-0123456789abcdef012345678"
K1, K2 = Key("k1", S1), Key("k2", S2)


def write(path: Path, text: bytes) -> Path:
    path.write_bytes(text)
    path.chmod(0o600)
    return path


# --- the file format -----------------------------------------------------------------------


def test_a_bare_secret_is_the_key_without_an_id() -> None:
    assert parse_key_file(S1 + b"\n") == ([("", S1)], [])
    # binary keys (not UTF-8) stay one key, whatever bytes they hold
    binary = bytes(range(256))[::-1] + b"\n:x\n"
    assert parse_key_file(binary) == ([("", binary.rstrip())], [])


def test_key_id_lines() -> None:
    text = b"k1:" + S1 + b"\r\n\n  \nk2:" + S2 + b"\n:" + b"a:b" + S1 + b"\n"
    keys, problems = parse_key_file(text)
    assert problems == []
    assert keys == [("k1", S1), ("k2", S2), ("", b"a:b" + S1)]  # ":SECRET" escapes a colon
    # what is not an id before the colon is part of a bare secret
    assert parse_key_file(b"not an id:" + S1)[0] == [("", b"not an id:" + S1)]


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        (b"   \n", "empty"),
        (b"".join(b"k%d:%s\n" % (i, S1) for i in range(MAX_KEYS + 1)), "at most 8"),
        (b"k1:" + S1 + b"\nk1:" + S2, "'k1' is given twice"),
        (S1 + b"\n" + S2, "more than one key without an id"),
        (b"k1:" + S1 + b"\nk2:short", "key 'k2' is too short (5 bytes, at least 32)"),
    ],
)
def test_key_file_problems(text: bytes, problem: str) -> None:
    _, problems = parse_key_file(text, min_bytes=32)
    assert any(problem in p for p in problems), problems


def test_check_config_checks_every_key(tmp_path: Path) -> None:
    good = write(tmp_path / "good", b"k1:" + S1 + b"\nk2:" + S2 + b"\n")
    assert file_problems(MqttSettings(command_key_file=good, outflow_key_file=good)) == []
    weak = write(tmp_path / "weak", b"k1:" + S1 + b"\nk2:tiny\n")
    found = file_problems(MqttSettings(command_key_file=weak, outflow_key_file=weak))
    assert [p.path for p in found] == ["mqtt.command_key_file", "mqtt.outflow_key_file"]
    assert all("key 'k2' is too short" in p.message for p in found)
    shared = write(tmp_path / "shared", S1)
    shared.chmod(0o644)
    (loose,) = file_problems(MqttSettings(outflow_key_file=shared))
    assert loose.path == "mqtt.outflow_key_file" and "mode 0644" in loose.message


def test_read_keys_and_pick(tmp_path: Path) -> None:
    path = write(tmp_path / "keys", b"k1:" + S1 + b"\nk2:" + S2 + b"\n")
    keys = read_keys(path)
    assert keys == (K1, K2)
    assert pick_key(keys) == K1 and pick_key(keys, "k2") == K2
    with pytest.raises(EdgectlError, match="no key with id 'k3'"):
        pick_key(keys, "k3")
    assert read_key(path) == S1  # the first key's secret
    assert "secret" not in repr(K1)  # never in a log line
    with pytest.raises(EdgectlError, match="too short"):
        read_keys(write(tmp_path / "short", b"k1:abc"))


# --- kid selection in the pipeline ---------------------------------------------------------


def processor(keys: tuple[Key, ...]) -> tuple[CommandProcessor, FakeHandler]:
    handler = FakeHandler()
    p = CommandProcessor(handler=handler, store=Store(), clock=lambda: NOW, keys=keys, target=IID)
    return p, handler


def command(key: Key | bytes, cid: str, **extra: Any) -> bytes:
    obj = build_command("place_call", {"phases": [2]}, now=NOW, key=key, target=IID, command_id=cid)
    obj.update(extra)
    return json.dumps(obj).encode()


def test_kid_names_the_key_and_without_one_every_key_is_tried() -> None:
    p, handler = processor((K1, K2))
    named = p.process(command(K2, "named"))
    assert named.ok and named.key == K2
    assert json.loads(command(K2, "x"))["kid"] == "k2"  # the id travels, inside the signature
    bare = p.process(command(S2, "bare"))  # no kid: k1 tried, then k2
    assert bare.ok and bare.key == K2
    assert [c.id for c in handler.applied] == ["named", "bare"]


def test_a_kid_is_signed_and_must_name_a_key() -> None:
    p, handler = processor((K1, K2))
    # signed with k2, relabelled k1: the kid is under the signature
    relabelled = p.process(command(K2, "relabelled", kid="k1"))
    assert relabelled.code == "bad_signature"
    unknown = p.process(command(Key("k9", S1), "unknown"))
    assert unknown.code == "bad_signature"
    assert "no key with id 'k9'" in str(unknown.response["error"])
    not_a_string = p.process(command(K1, "num", kid=7))
    assert not_a_string.code == "bad_signature"
    assert handler.applied == []


def test_rotation_in_the_pipeline() -> None:
    p, _ = processor((K1,))
    assert p.process(command(K1, "1")).ok
    assert p.process(command(K2, "2")).code == "bad_signature"
    p.set_keys((K1, K2))  # the new key added
    assert p.process(command(K2, "3")).ok and p.process(command(K1, "4")).ok
    p.set_keys((K2,))  # the old key removed
    assert p.process(command(K1, "5")).code == "bad_signature"
    assert p.process(command(K2, "6")).ok
    with pytest.raises(ValueError, match="at least one key"):
        p.set_keys(())


# --- re-read on reload, through the daemon -------------------------------------------------


@pytest.fixture
def keyed(tmp_path: Path) -> tuple[DaemonConfig, Path]:
    keys = write(tmp_path / "command.keys", b"k1:" + S1 + b"\n")
    config = configure(
        load_config(EIGHT_PHASE, environ={}),
        mqtt={
            "url": "mqtt://127.0.0.1:1",
            "backoff_initial": 0.05,
            "backoff_max": 0.3,
            "command_key_file": str(keys),
        },
        daemon={"state_dir": str(tmp_path / "state"), "metrics_listen": ""},
        field={"devices": [{"name": "cabinet", "url": f"memory://keys-{uuid.uuid4().hex[:8]}"}]},
    )
    return config, keys


async def reload(daemon: Daemon, new: DaemonConfig) -> None:
    """What SIGHUP does (the file read again: here the same configuration)."""
    daemon.reloader.loader = lambda: new
    daemon.request_reload()
    await eventually(lambda: not daemon._reload_requested, 5.0, "the reload handled")


class Centre:
    """Sends signed commands and collects the answers."""

    def __init__(self, broker: MosquittoBroker, answers: Consumer) -> None:
        self.broker = broker
        self.answers = answers
        self.sent = 0

    async def send(self, key: Key) -> dict[str, Any]:
        self.sent += 1
        cid = f"c{self.sent}"
        now = datetime.now(UTC)
        cmd = build_command("request_state", {}, now=now, key=key, target=IID, command_id=cid)
        async with aiomqtt.Client("127.0.0.1", self.broker.port) as c:
            await c.publish(f"citybrain/{IID}/cmd", json.dumps(cmd), qos=1)
        await eventually(lambda: self._answer(cid) is not None, 10.0, f"the answer to {cid}")
        answer = self._answer(cid)
        assert answer is not None
        return answer

    def _answer(self, cid: str) -> dict[str, Any] | None:
        for m in self.answers.messages:
            if m.payload.get("id") == cid:
                return dict(m.payload)
        return None


async def test_reload_rereads_the_key_file_and_refuses_a_bad_one(
    keyed: tuple[DaemonConfig, Path], broker: MosquittoBroker
) -> None:
    config, keys = keyed
    config = configure(config, mqtt={"url": broker.url})
    daemon, _ = build_daemon(config)
    async with (
        running(daemon),
        consuming(broker.url, f"citybrain/{IID}/cmd/response") as answers,
    ):
        await eventually(lambda: daemon.sync is not None and daemon.sync.connected, 20.0)
        centre = Centre(broker, answers)
        assert (await centre.send(K1))["ok"] is True
        assert (await centre.send(K2))["error"]["code"] == "bad_signature"

        # 1. the new key added to the file, the daemon reloaded: both keys verify
        write(keys, b"k1:" + S1 + b"\nk2:" + S2 + b"\n")
        await reload(daemon, config)
        assert daemon.config is config
        answer = await centre.send(K2)
        assert answer["ok"] is True and answer["kid"] == "k2"
        assert verify_response(answer, (K2,))  # answered with the key it was verified with
        assert (await centre.send(K1))["ok"] is True

        # 2. the old key removed, reloaded again: k1 is refused
        write(keys, b"k2:" + S2 + b"\n")
        await reload(daemon, config)
        assert (await centre.send(K1))["error"]["code"] == "bad_signature"
        assert (await centre.send(K2))["ok"] is True

        # 3. a bad key file: the reload is refused, the keys in force stay
        plan2 = configure(config, control={"plan": 2})
        for bad in (b"", b"".join(b"k%d:%s\n" % (i, S1) for i in range(9)), None):
            if bad is None:
                keys.unlink()
            else:
                write(keys, bad)
            await reload(daemon, plan2)
            assert daemon.config is config, "a bad key file refuses the whole reload"
            assert (await centre.send(K2))["ok"] is True

        # 4. the key file's path is read at start: a change needs a restart
        other = write(keys.parent / "other.keys", b"k1:" + S1 + b"\n")
        moved = configure(config, mqtt={"command_key_file": str(other)})
        await reload(daemon, moved)
        assert daemon.config is config
        assert (await centre.send(K1))["error"]["code"] == "bad_signature"


# --- edgectl cmd --key-id -----------------------------------------------------------------


async def test_cmd_signs_with_the_named_key_and_checks_the_answer(
    broker: MosquittoBroker, tmp_path: Path
) -> None:
    from tests.sync.conftest import make_service
    from tests.sync.conftest import running as running_service
    from tests.sync.test_cli import edgectl

    junction = write(tmp_path / "junction.keys", b"k2:" + S2 + b"\n")  # k1 already removed
    centre = write(tmp_path / "centre.keys", b"k1:" + S1 + b"\nk2:" + S2 + b"\n")
    service = make_service(broker.url, tmp_path / "state", FakeHandler(), command_key_file=junction)
    base = ("cmd", "--broker", broker.url, "--intersection", IID, "--timeout", "3")
    async with running_service(service):
        await eventually(lambda: service.connected)
        rc, out, err = await edgectl(
            *base, "--key-file", str(centre), "--key-id", "k2", "exit_flash"
        )
        assert rc == 0, (out, err)
        answer = json.loads(out)
        assert answer["ok"] is True and answer["kid"] == "k2"
        # the first key (k1) by default: refused, and that refusal is a verified answer
        rc, out, err = await edgectl(*base, "--key-file", str(centre), "exit_flash")
        assert rc == 1 and json.loads(out)["error"]["code"] == "bad_signature", (out, err)
        # an answer no key of the file verifies is not trusted
        stranger = write(tmp_path / "stranger.keys", b"k1:" + b"z" * 40 + b"\n")
        rc, out, err = await edgectl(*base, "--key-file", str(stranger), "exit_flash")
        assert rc == 1 and "not signed by a key of --key-file" in err
        rc, _, err = await edgectl(*base, "--key-file", str(centre), "--key-id", "k9", "exit_flash")
        assert rc == 2 and "no key with id 'k9'" in err
