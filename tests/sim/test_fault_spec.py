"""The --fault grammar."""

from __future__ import annotations

import math

import pytest

from firmware_sim.faults import FaultKind, FaultSpec, parse_fault


@pytest.mark.parametrize(
    ("text", "spec"),
    [
        ("drop:0.3@10+20", FaultSpec(FaultKind.DROP, 0.3, 10.0, 20.0)),
        ("delay:0.2@5", FaultSpec(FaultKind.DELAY, 0.2, 5.0, math.inf)),
        ("corrupt:0.5", FaultSpec(FaultKind.CORRUPT, 0.5, 0.0, math.inf)),
        ("silent@30+10", FaultSpec(FaultKind.SILENT, 0.0, 30.0, 10.0)),
        ("stuck:3@20+30", FaultSpec(FaultKind.STUCK, 3.0, 20.0, 30.0)),
        ("chatter:4@1", FaultSpec(FaultKind.CHATTER, 4.0, 1.0, math.inf)),
        ("dead:5@0+1", FaultSpec(FaultKind.DEAD, 5.0, 0.0, 1.0)),
        ("power_cycle@60", FaultSpec(FaultKind.POWER_CYCLE, 0.0, 60.0, 0.0)),
    ],
)
def test_parse(text: str, spec: FaultSpec) -> None:
    assert parse_fault(text) == spec
    assert parse_fault(str(spec)) == spec


@pytest.mark.parametrize(
    "text",
    [
        "",
        "drop",
        "drop:1.5",
        "stuck:0",
        "stuck:2.5",
        "silent:3",
        "explode:1",
        "drop:0.1@x",
        "delay:99",
        "power_cycle:1@3",
    ],
)
def test_reject(text: str) -> None:
    with pytest.raises(ValueError, match=r"."):
        parse_fault(text)


def test_window() -> None:
    spec = parse_fault("drop:0.3@10+20")
    assert not spec.active(9.99)
    assert spec.active(10.0)
    assert spec.active(29.9)
    assert not spec.active(30.0)
