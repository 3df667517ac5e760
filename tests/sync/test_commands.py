"""The command pipeline, without a broker: every type, every refusal code, fuzzed input."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edgectl.errors import CommandError
from edgectl.sync.commands import COMMAND_TYPES, MAX_COMMAND_BYTES
from edgectl.sync.outbox import Outbox
from edgectl.sync.processor import CommandProcessor
from edgectl.sync.signing import build_command, canonical_json, sign
from tests.sync.conftest import IID, FakeHandler

NOW = datetime(2026, 11, 21, 6, 0, 0, tzinfo=UTC)
KEY = b"s3cret-key"

PLAN = {
    "id": 3,
    "name": "remote",
    "timing": {
        "2": {"min_green": 10.0, "max1": 40.0, "yellow": 4.0, "red_clear": 2.0},
        "4": {"min_green": 7.0, "max1": 25.0, "yellow": 3.5, "red_clear": 2.0},
    },
}

VALID_PARAMS: dict[str, dict[str, Any]] = {
    "set_mode": {"mode": "flash"},
    "set_plan": {"plan": PLAN},
    "place_call": {"phases": [4], "ped": True},
    "hold": {"phases": [2, 6], "duration_s": 30.0},
    "force_off": {"phases": [2]},
    "omit": {"phases": [3, 7]},
    "preempt": {"input": 1, "active": True, "phases": [2]},
    "request_state": {},
    "exit_flash": {},
    "mmu_reset": {},
    "priority": {"request": "ev-1", "phases": [4, 8], "eta_s": 60.0},
    "priority_cancel": {"request": "ev-1"},
    "tsp_checkin": {"request": "bus-1", "phase": 4, "eta_s": 20.0},
    "tsp_checkout": {"request": "bus-1"},
}


class Store:
    """An in-memory CommandStore."""

    def __init__(self) -> None:
        self.data: dict[str, dict[str, object]] = {}

    def command_response(self, command_id: str) -> dict[str, object] | None:
        return self.data.get(command_id)

    def remember_command(
        self, command_id: str, response: Mapping[str, object], *, now: datetime
    ) -> None:
        self.data[command_id] = dict(response)


def processor(
    handler: FakeHandler, *, key: bytes | None = None, store: Any = None
) -> CommandProcessor:
    return CommandProcessor(
        handler=handler,
        store=store or Store(),
        clock=lambda: NOW,
        key=key,
        max_age_s=60.0,
        target=IID,
    )


def raw(obj: object) -> bytes:
    return json.dumps(obj).encode()


def test_every_type_parsed_and_handed_to_the_handler() -> None:
    assert set(VALID_PARAMS) == set(COMMAND_TYPES)
    handler = FakeHandler()
    p = processor(handler, key=KEY)
    for ctype, params in VALID_PARAMS.items():
        cmd = build_command(ctype, params, now=NOW, key=KEY, target=IID, command_id=f"id-{ctype}")
        verdict = p.process(raw(cmd))
        assert verdict.ok, verdict.response
        assert verdict.executed
    assert [c.type for c in handler.applied] == list(VALID_PARAMS)
    plan_cmd = handler.applied[1]
    assert plan_cmd.type == "set_plan"
    assert not isinstance(plan_cmd.params.plan, int)
    assert plan_cmd.params.plan.timing[2].yellow == 4.0


def test_set_plan_by_id_and_defaults() -> None:
    handler = FakeHandler()
    verdict = processor(handler).process(raw(build_command("set_plan", {"plan": 2}, now=NOW)))
    assert verdict.ok
    assert handler.applied[0].params.plan == 2  # type: ignore[union-attr]


def test_canonical_json_and_signature_are_stable() -> None:
    obj = {"b": 1, "a": "é", "params": {"z": [1, 2], "y": None}}
    assert canonical_json(obj) == '{"a":"é","b":1,"params":{"y":null,"z":[1,2]}}'.encode()
    signed = {**obj, "sig": sign(obj, KEY)}
    assert sign(signed, KEY) == signed["sig"]  # sig itself is excluded


def _refused(p: CommandProcessor, payload: bytes) -> str:
    verdict = p.process(payload)
    assert not verdict.ok
    err = verdict.response["error"]
    assert isinstance(err, dict)
    assert err["message"]
    return str(err["code"])


@pytest.mark.parametrize(
    ("mutate", "code"),
    [
        (lambda c: b"{not json", "malformed_json"),
        (lambda c: b"\xff\xfe", "malformed_json"),
        (lambda c: b'{"a": NaN}', "malformed_json"),
        (lambda c: b"[1, 2]", "invalid_schema"),
        (lambda c: b" " * (MAX_COMMAND_BYTES + 1), "too_large"),
        (lambda c: raw({**c, "type": "launch_rockets"}), "unknown_type"),
        (lambda c: raw({k: v for k, v in c.items() if k != "type"}), "invalid_schema"),
        (lambda c: raw({**c, "params": {"phases": ["2"]}}), "invalid_schema"),
        (lambda c: raw({**c, "params": {"phases": [17]}}), "invalid_schema"),
        (lambda c: raw({**c, "params": {"phases": [2], "extra": 1}}), "invalid_schema"),
        (lambda c: raw({**c, "issued_at": "2026-11-21T06:00:00"}), "invalid_schema"),
        (lambda c: raw({**c, "id": ""}), "invalid_schema"),
    ],
)
def test_refusal_codes_before_signature(mutate: Any, code: str) -> None:
    handler = FakeHandler()
    cmd = build_command("hold", {"phases": [2]}, now=NOW, key=None)
    assert _refused(processor(handler), mutate(cmd)) == code
    assert handler.applied == []


def test_signature_required_when_keyed() -> None:
    handler = FakeHandler()
    p = processor(handler, key=KEY)
    unsigned = build_command("hold", {"phases": [2]}, now=NOW)
    assert _refused(p, raw(unsigned)) == "unsigned"
    wrong_key = build_command("hold", {"phases": [2]}, now=NOW, key=b"other")
    assert _refused(p, raw(wrong_key)) == "bad_signature"
    good = build_command("hold", {"phases": [2]}, now=NOW, key=KEY, target=IID)
    tampered = {**good, "params": {"phases": [4]}}
    assert _refused(p, raw(tampered)) == "bad_signature"
    assert handler.applied == []
    assert p.process(raw(good)).ok
    assert len(handler.applied) == 1


def test_expiry_stale_and_future() -> None:
    handler = FakeHandler()
    p = processor(handler)
    expired = build_command(
        "hold", {"phases": [2]}, now=NOW - timedelta(seconds=30), expires_in_s=10
    )
    assert _refused(p, raw(expired)) == "expired"
    stale = build_command(
        "hold", {"phases": [2]}, now=NOW - timedelta(seconds=61), expires_in_s=None
    )
    assert _refused(p, raw(stale)) == "stale"
    future = build_command("hold", {"phases": [2]}, now=NOW + timedelta(seconds=31))
    assert _refused(p, raw(future)) == "future"
    assert handler.applied == []


def test_duplicate_id_answered_again_without_reexecution(tmp_path: Path) -> None:
    handler = FakeHandler()
    outbox = Outbox(tmp_path)
    p = processor(handler, store=outbox)
    cmd = raw(build_command("force_off", {"phases": [2]}, now=NOW, command_id="dup-1"))
    first = p.process(cmd)
    again = p.process(cmd)
    assert first.ok
    assert again.duplicate
    assert again.response == first.response
    assert len(handler.applied) == 1
    # a restart (new processor, same database) still knows the id
    outbox.close()
    p2 = processor(handler, store=Outbox(tmp_path))
    third = p2.process(cmd)
    assert third.duplicate
    assert third.response == first.response
    assert len(handler.applied) == 1


def test_handler_refusal_and_crash_are_answers() -> None:
    handler = FakeHandler(refuse=CommandError("unsafe", "yellow 2.0 s < 3.0 s"))
    p = processor(handler)
    verdict = p.process(raw(build_command("set_plan", {"plan": PLAN}, now=NOW)))
    assert verdict.response["error"] == {"code": "unsafe", "message": "yellow 2.0 s < 3.0 s"}

    class Boom:
        def apply(self, command: object) -> Any:
            raise RuntimeError("bug")

    p2 = CommandProcessor(handler=Boom(), store=Store(), clock=lambda: NOW)
    verdict = p2.process(raw(build_command("hold", {"phases": [2]}, now=NOW)))
    assert verdict.code == "internal"


# --- fuzzing: hundreds of bad commands, each answered ok:false with a code ---

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4)
    ),
    max_leaves=12,
)

KNOWN_CODES = {
    "malformed_json",
    "too_large",
    "invalid_schema",
    "unknown_type",
    "bad_signature",
    "unsigned",
    "expired",
    "stale",
    "future",
}


def _bad_commands() -> st.SearchStrategy[bytes]:
    base = st.sampled_from(list(VALID_PARAMS)).map(
        lambda t: build_command(t, VALID_PARAMS[t], now=NOW, key=KEY, target=IID)
    )
    wrong_field = st.tuples(
        base,
        st.sampled_from(["id", "type", "issued_at", "expires_at", "params", "sig"]),
        json_values,
    ).map(lambda x: raw({**x[0], x[1]: x[2]}))
    wrong_params = st.tuples(
        base, st.dictionaries(st.text(max_size=8), json_values, min_size=1, max_size=4)
    ).map(lambda x: raw({**x[0], "params": {**x[0]["params"], **x[1], "bogus": 1}}))
    unsigned = base.map(lambda c: raw({k: v for k, v in c.items() if k != "sig"}))
    unknown = (
        st.text(min_size=1, max_size=20)
        .filter(lambda t: t not in COMMAND_TYPES)
        .map(
            lambda t: raw({"id": "x", "type": t, "issued_at": "2026-11-21T06:00:00Z", "params": {}})
        )
    )
    anything = json_values.map(raw)
    garbage = st.binary(max_size=64)
    return st.one_of(wrong_field, wrong_params, unsigned, unknown, anything, garbage)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(payload=_bad_commands())
def test_fuzzed_bad_commands_are_refused_with_a_code(payload: bytes) -> None:
    handler = FakeHandler()
    p = processor(handler, key=KEY)
    verdict = p.process(payload)
    if verdict.ok:
        # a mutation that happened to keep the command valid and correctly signed is fine
        # only if it really is valid: it must have gone through the handler
        assert len(handler.applied) == 1
        return
    assert verdict.code in KNOWN_CODES, verdict.response
    assert handler.applied == []
