"""``edgectl cmd``: send one signed command to a junction and wait for its answer.

::

    edgectl cmd --broker mqtt://broker:1883 --intersection hz-0001 hold phases=[2,6]
    edgectl cmd --broker mqtts://broker:8883 --ca-file ca.crt --intersection hz-0001 \\
        --key-file /etc/edgectl/cmd.key set_plan plan=@plan.toml
    edgectl cmd … --key-file keys --key-id k2 exit_flash   # a file of KEYID:SECRET lines

``--key-file`` may hold several keys, one a line as ``KEYID:SECRET`` (a bare secret is the key
without an id): the command is signed with ``--key-id``'s, or the first; a key with an id puts
``kid`` in the command. The junction signs its answer with the key the command was verified
with; with ``--key-file`` an answer that no key of the file verifies (forged, or the junction
holds other keys) is not taken for the answer: the real one is waited for, and if none comes
the unverified one is printed with a warning and the exit status is 1.

``k=v`` parameters: the value is parsed as JSON when it parses (``phases=[2,6]``,
``active=false``, ``input=1``), else taken as a string (``mode=flash``); ``k=@FILE`` reads a
TOML or JSON file (a plan: a table with ``id``/``timing``…, or a config file with exactly one
``[[plans]]``).

With MQTT 5 (default) the command carries a response topic and correlation data; with 3.1.1
the answer is matched by ``id`` on ``…/cmd/response``. The answer is printed as JSON.
Exit status: 0 the command was applied (``ok``), 1 refused, 2 usage or connection error,
3 no answer within ``--timeout``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import sys
import tomllib
import uuid
from pathlib import Path
from typing import Any

import aiomqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from edgectl.commands.broker import add_broker_arguments, broker_client
from edgectl.errors import EdgectlError
from edgectl.sync.clock import utc_now
from edgectl.sync.commands import COMMAND_TYPES
from edgectl.sync.link import redact_url
from edgectl.sync.signing import Key, build_command, pick_key, read_keys, verify_response

EXIT_OK, EXIT_REFUSED, EXIT_ERROR, EXIT_TIMEOUT = 0, 1, 2, 3


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("type", choices=COMMAND_TYPES, help="command type")
    parser.add_argument("params", nargs="*", metavar="k=v", help="parameters (JSON values)")
    parser.add_argument("--broker", required=True, help="mqtt://host:1883, mqtts://…, unix://…")
    parser.add_argument("--intersection", required=True, help="intersection id")
    parser.add_argument(
        "--key-file", type=Path, help="HMAC-SHA256 key(s) to sign with (KEYID:SECRET lines)"
    )
    parser.add_argument("--key-id", help="the key of --key-file to sign with (default: the first)")
    parser.add_argument("--prefix", default="citybrain", help="topic prefix")
    parser.add_argument("--timeout", type=float, default=10.0, help="seconds to wait (10)")
    parser.add_argument("--id", dest="command_id", help="command id (default: random)")
    parser.add_argument(
        "--expires-in",
        type=float,
        default=60.0,
        help="seconds until expires_at (60); 0 = no expiry",
    )
    add_broker_arguments(parser)


def parse_params(items: list[str]) -> dict[str, object]:
    """``k=v`` → dict; JSON values when they parse, ``@FILE`` reads TOML/JSON."""
    params: dict[str, object] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise EdgectlError(f"parameter {item!r} is not k=v")
        if value.startswith("@"):
            params[key] = _load_file(Path(value[1:]))
            continue
        try:
            params[key] = json.loads(value)
        except ValueError:
            params[key] = value
    return params


def _load_file(path: Path) -> object:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise EdgectlError(f"cannot read {path}: {exc}") from exc
    try:
        data: Any = json.loads(text) if path.suffix == ".json" else tomllib.loads(text)
    except (ValueError, tomllib.TOMLDecodeError) as exc:
        raise EdgectlError(f"{path}: {exc}") from exc
    if isinstance(data, dict) and isinstance(data.get("plans"), list):
        plans = data["plans"]
        if len(plans) != 1:
            raise EdgectlError(f"{path}: has {len(plans)} plans; give a file with exactly one")
        return plans[0]
    return data


def check_args(args: argparse.Namespace) -> None:
    """What argparse cannot check: an MQTT topic level, finite durations. EdgectlError."""
    for name in ("intersection", "prefix"):
        value = str(getattr(args, name))
        if (
            not value
            or any(c in value for c in "+#\0")
            or (name == "intersection" and "/" in value)
        ):
            raise EdgectlError(
                f"--{name} {value!r}: not a valid topic level (no '+', '#', '/' or NUL)"
            )
    if not math.isfinite(args.expires_in) or args.expires_in < 0:
        raise EdgectlError(f"--expires-in {args.expires_in}: seconds >= 0 (0 = no expiry)")
    if not math.isfinite(args.timeout) or args.timeout <= 0:
        raise EdgectlError(f"--timeout {args.timeout}: seconds > 0")


def run(args: argparse.Namespace) -> int:
    try:
        check_args(args)
        return asyncio.run(_send(args))
    except EdgectlError as exc:
        print(f"edgectl cmd: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        return EXIT_ERROR


async def _send(args: argparse.Namespace) -> int:
    params = parse_params(args.params)
    keys: tuple[Key, ...] = read_keys(args.key_file, min_bytes=1) if args.key_file else ()
    if args.key_id is not None and not keys:
        raise EdgectlError("--key-id needs --key-file")
    key = pick_key(keys, args.key_id) if keys else None
    command = build_command(
        args.type,
        params,
        now=utc_now(),
        key=key,
        command_id=args.command_id,
        expires_in_s=args.expires_in or None,
        target=args.intersection,
    )
    v5 = args.mqtt_version == "5"
    root = f"{args.prefix}/{args.intersection}"
    response_topic = f"{root}/cmd/response"
    private_topic = f"{response_topic}/{uuid.uuid4().hex[:12]}"
    client = broker_client(args, timeout=args.timeout)
    props = None
    if v5:
        props = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
        props.ResponseTopic = private_topic
        props.CorrelationData = str(command["id"]).encode()
    try:
        async with client:
            await client.subscribe(response_topic, qos=1)
            if v5:
                await client.subscribe(private_topic, qos=1)
            await client.publish(f"{root}/cmd", json.dumps(command), qos=1, properties=props)
            unverified: list[dict[str, Any]] = []
            try:
                async with asyncio.timeout(args.timeout):
                    answer = await _answer(
                        client, str(command["id"]), private_topic, keys, unverified
                    )
            except TimeoutError:
                if unverified:
                    print(
                        "edgectl cmd: the answer is not signed by a key of --key-file "
                        "(forged, or the junction holds other keys)",
                        file=sys.stderr,
                    )
                    print(json.dumps(unverified[0], ensure_ascii=False))
                    return EXIT_REFUSED
                print(
                    f"edgectl cmd: no answer to {command['id']} within {args.timeout:g} s",
                    file=sys.stderr,
                )
                return EXIT_TIMEOUT
    except aiomqtt.MqttError as exc:
        print(f"edgectl cmd: {redact_url(args.broker)}: {exc}", file=sys.stderr)
        return EXIT_ERROR
    print(json.dumps(answer, ensure_ascii=False))
    return EXIT_OK if answer.get("ok") is True else EXIT_REFUSED


async def _answer(
    client: aiomqtt.Client,
    command_id: str,
    private_topic: str,
    keys: tuple[Key, ...] = (),
    unverified: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """The response with our id, or anything on our private MQTT 5 response topic (its
    correlation data is ours; a payload refused before parsing has no id). With ``keys`` only
    an answer they verify; the others are kept in ``unverified``."""
    async for message in client.messages:
        raw = message.payload
        if not isinstance(raw, bytes | bytearray):
            continue
        try:
            body = json.loads(raw)
        except ValueError:
            continue
        if isinstance(body, dict) and (
            body.get("id") == command_id or str(message.topic) == private_topic
        ):
            if not keys or verify_response(body, keys):
                return body
            if unverified is not None:
                unverified.append(body)
    raise EdgectlError("connection closed before the answer")
