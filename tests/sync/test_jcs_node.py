"""A centre in another language can sign: a command signed in Node.js with an independent
RFC 8785 implementation (the npm ``canonicalize`` package) is verified by edgectl."""

from __future__ import annotations

import json
import shutil
import subprocess
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from edgectl.sync.processor import CommandProcessor
from edgectl.sync.signing import canonical_json, sign
from tests.sync.conftest import IID, FakeHandler

KEY = "centre-key-ünïcödé-0123456789"

SIGNER = r"""
const crypto = require("crypto");
const canonicalize = require("canonicalize");
const [key, text] = [process.argv[2], require("fs").readFileSync(0, "utf8")];
const cmd = JSON.parse(text);
const canonical = canonicalize(cmd);
cmd.sig = crypto.createHmac("sha256", Buffer.from(key, "utf8")).update(canonical, "utf8")
  .digest("hex");
process.stdout.write(JSON.stringify({cmd, canonical}));
"""


@pytest.fixture(scope="module")
def node_signer(tmp_path_factory: pytest.TempPathFactory) -> Path:
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        pytest.skip("node/npm not installed: cannot run an independent JCS implementation")
    d = tmp_path_factory.mktemp("jcs-node")
    try:
        done = subprocess.run(
            [npm, "install", "--prefix", str(d), "--no-audit", "--no-fund", "canonicalize@2"],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
    except subprocess.TimeoutExpired:
        pytest.skip("npm registry not reachable in 120 s")
    if done.returncode != 0:
        pytest.skip(
            f"npm install canonicalize failed (registry unavailable?): {done.stderr[-300:]}"
        )
    script = d / "sign.js"
    script.write_text(SIGNER)
    return script


def _node_sign(script: Path, cmd: dict[str, Any]) -> tuple[dict[str, Any], str]:
    done = subprocess.run(
        ["node", str(script), KEY],
        input=json.dumps(cmd),
        capture_output=True,
        text=True,
        cwd=script.parent,
        timeout=30,
        check=True,
    )
    out = json.loads(done.stdout)
    return out["cmd"], out["canonical"]


def test_a_command_signed_by_node_canonicalize_is_verified(node_signer: Path) -> None:
    now = datetime.now(UTC)
    cmd: dict[str, Any] = {
        "id": "centre-ß-€-😀-1",
        "type": "set_plan",
        "target": IID,
        "issued_at": now.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "params": {
            "plan": {
                "id": 7,
                "name": 'Früh-Spitze ☀ \u2028 \t "quoted" \\',
                "timing": {
                    "2": {"min_green": 10, "max1": 40.5, "yellow": 4.0, "red_clear": 2},
                    "4": {"min_green": 7, "max1": 25, "yellow": 3.5, "red_clear": 2.0},
                    "10": {"min_green": 5, "max1": 20, "yellow": 3.0, "red_clear": 1.5},
                },
            }
        },
    }
    signed, node_canonical = _node_sign(node_signer, cmd)
    # the same bytes, independently produced
    unsigned = {k: v for k, v in signed.items() if k != "sig"}
    assert canonical_json(unsigned).decode("utf-8") == node_canonical
    handler = FakeHandler()
    processor = CommandProcessor(
        handler=handler,
        store=_NoStore(),
        clock=lambda: now,
        key=KEY.encode(),
        target=IID,
    )
    # what the centre publishes: Node's JSON.stringify of the signed object (any key order)
    verdict = processor.process(json.dumps(signed, ensure_ascii=False).encode())
    assert verdict.code is None, verdict.response
    assert verdict.executed
    assert handler.applied[0].id == "centre-ß-€-😀-1"
    # one changed character anywhere and the signature fails
    tampered = {**signed, "params": {"plan": {**signed["params"]["plan"], "name": "x"}}}
    assert processor.process(json.dumps(tampered).encode()).code == "bad_signature"


class _NoStore:
    def command_response(self, command_id: str) -> dict[str, object] | None:
        return None

    def remember_command(self, command_id: str, response: Any, *, now: datetime) -> None:
        return None


def test_non_ascii_keys_and_numbers_canonicalised_like_node(node_signer: Path) -> None:
    """Keys sorted by UTF-16 code units (a key above the BMP before one just below it), every
    kind of number, nested arrays and objects: the same bytes and the same signature."""
    obj: dict[str, Any] = {
        "\u20ac": {"ö": [1, 2.5, -0.0, 1e21, 1e-7, 333333333.3333333, 0.1]},
        "\r": "line\nbreak \u2028 \x7f \x1f",
        "\ufb33": [{"z": True, "a": None, "é": False}],
        "\U0001f600": {"nested": {"ключ": "значение", "키": [[], {}]}},
        "1": 9007199254740991,
        "target": IID,
    }
    signed, node_canonical = _node_sign(node_signer, obj)
    assert canonical_json(obj).decode("utf-8") == node_canonical
    assert sign(obj, KEY.encode()) == signed["sig"]
