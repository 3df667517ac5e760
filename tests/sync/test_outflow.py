"""Outflow messages: what a junction accepts from a neighbour, and the arrivals it projects."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edgectl.config.model import Neighbour
from edgectl.sync.clock import iso_ms
from edgectl.sync.outflow import (
    MAX_DEPARTURE_AGE_S,
    MAX_DEPARTURES,
    MAX_OUTFLOW_BYTES,
    Departure,
    NeighbourInbox,
    OutflowBuffer,
    OutflowCode,
    outflow_body,
    parse_outflow,
)

NOW = datetime(2026, 11, 21, 6, 0, 0, tzinfo=UTC)


def at(seconds: float) -> datetime:
    """Wall time ``seconds`` after NOW (negative: before)."""
    return NOW + timedelta(seconds=seconds)


def message(
    departures: list[tuple[int, float]] | None = None, *, ts: float = 0.0, seq: int = 1
) -> dict[str, Any]:
    deps = departures if departures is not None else [(2, -1.0)]
    return {
        "ts": iso_ms(at(ts)),
        "seq": seq,
        "departures": [{"detector": d, "at": iso_ms(at(s))} for d, s in deps],
    }


def raw(obj: object) -> bytes:
    return json.dumps(obj).encode()


# --- parsing -------------------------------------------------------------------------------


def test_a_good_message_is_accepted() -> None:
    verdict = parse_outflow(raw(message([(2, -1.5), (6, -0.25)], seq=7)), now=NOW)
    assert verdict.ok and verdict.code is None and verdict.seq == 7
    assert verdict.departures == (Departure(at(-1.5), 2), Departure(at(-0.25), 6))


def test_the_published_body_round_trips() -> None:
    deps = [Departure(at(-2.0), 3), Departure(at(-0.5), 7)]
    body = {**outflow_body(deps), "ts": iso_ms(NOW), "seq": 1}
    assert parse_outflow(raw(body), now=NOW).departures == tuple(deps)


def test_unknown_keys_are_ignored() -> None:
    """Forward compatibility: a newer publisher may add keys (a lane, a speed …)."""
    obj = message()
    obj["historical"] = False
    obj["departures"][0]["lane"] = 2
    assert parse_outflow(raw(obj), now=NOW).ok


def _with(**changes: Any) -> bytes:
    obj = message()
    for key, value in changes.items():
        if key.startswith("d_"):
            obj["departures"][0][key[2:]] = value
        elif value is ...:
            del obj[key]
        else:
            obj[key] = value
    return raw(obj)


BAD: list[tuple[str, bytes, OutflowCode]] = [
    ("oversized", b"{" + b" " * MAX_OUTFLOW_BYTES + b"}", OutflowCode.TOO_LARGE),
    ("not json", b'{"ts": ', OutflowCode.MALFORMED_JSON),
    ("not utf-8", b"\xff\xfe{}", OutflowCode.MALFORMED_JSON),
    ("NaN", b'{"ts": NaN}', OutflowCode.MALFORMED_JSON),
    ("a list", b"[1, 2]", OutflowCode.INVALID_SCHEMA),
    ("no departures", _with(departures=...), OutflowCode.INVALID_SCHEMA),
    ("no ts", _with(ts=...), OutflowCode.INVALID_SCHEMA),
    ("departures not a list", _with(departures={"2": "x"}), OutflowCode.INVALID_SCHEMA),
    ("detector as text", _with(d_detector="2"), OutflowCode.INVALID_SCHEMA),
    ("detector a bool", _with(d_detector=True), OutflowCode.INVALID_SCHEMA),
    ("detector 0", _with(d_detector=0), OutflowCode.INVALID_SCHEMA),
    ("detector 65", _with(d_detector=65), OutflowCode.INVALID_SCHEMA),
    ("detector a float", _with(d_detector=2.0), OutflowCode.INVALID_SCHEMA),
    ("at a number", _with(d_at=1_790_000_000), OutflowCode.INVALID_SCHEMA),
    ("at without zone", _with(d_at="2026-11-21T05:59:59.000"), OutflowCode.INVALID_SCHEMA),
    ("at garbage", _with(d_at="yesterday"), OutflowCode.INVALID_SCHEMA),
    ("seq negative", _with(seq=-1), OutflowCode.INVALID_SCHEMA),
    ("seq text", _with(seq="1"), OutflowCode.INVALID_SCHEMA),
    ("too many", raw(message([(2, -0.1)] * (MAX_DEPARTURES + 1))), OutflowCode.TOO_MANY),
    ("stale", raw(message([(2, -31.0)], ts=-30.0)), OutflowCode.STALE),
    ("far future", raw(message([(2, 3599.0)], ts=3600.0)), OutflowCode.FUTURE),
    ("year 9999", raw(message([(2, 1e11)], ts=1e11)), OutflowCode.FUTURE),
    ("departure after ts", raw(message([(2, 30.0)])), OutflowCode.BAD_TIME),
    (
        "departure long before ts",
        raw(message([(2, -1.0), (6, -MAX_DEPARTURE_AGE_S - 1.0)])),
        OutflowCode.BAD_TIME,
    ),
]


@pytest.mark.parametrize(("data", "code"), [b[1:] for b in BAD], ids=[b[0] for b in BAD])
def test_bad_messages_are_refused_whole_with_a_code(data: bytes, code: OutflowCode) -> None:
    verdict = parse_outflow(data, now=NOW)
    assert verdict.code is code, verdict.message
    assert not verdict.ok and verdict.departures == ()
    assert verdict.message


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=512))
def test_no_bytes_make_it_raise(data: bytes) -> None:
    verdict = parse_outflow(data, now=NOW)
    assert verdict.ok or verdict.code is not None


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None)
@given(
    ts=st.one_of(JSON, st.datetimes(timezones=st.just(UTC)).map(iso_ms)),
    seq=JSON,
    departures=st.lists(
        st.dictionaries(
            st.sampled_from(["detector", "at", "x"]),
            st.one_of(JSON, st.datetimes(timezones=st.just(UTC)).map(iso_ms)),
        ),
        max_size=5,
    )
    | JSON,
)
def test_no_json_makes_it_raise(ts: object, seq: object, departures: object) -> None:
    verdict = parse_outflow(raw({"ts": ts, "seq": seq, "departures": departures}), now=NOW)
    assert verdict.ok or verdict.code is not None


# --- the inbox: departures → projected arrivals in controller time -------------------------

J1 = Neighbour(intersection="J1", detectors=(2, 6), phase=4, travel_s=24.0)
J2 = Neighbour(intersection="J2", detectors=(1,), phase=4, travel_s=10.0)
J1_LEFT = Neighbour(intersection="J1", detectors=(5,), phase=3, travel_s=20.0)


def test_departures_become_arrivals_in_controller_time() -> None:
    inbox = NeighbourInbox([J1])
    inbox.receive("J1", raw(message([(2, -4.0), (6, -1.0)])), now=NOW)
    # controller clock 100.0 at wall NOW: left 4 s ago + 24 s travel = in 20 s
    assert inbox.projections(wall_now=NOW, controller_now=100.0) == {4: (120.0, 123.0)}
    # the controller clock is its own: the same departures against another reading
    later = inbox.projections(wall_now=at(2.0), controller_now=7.5)
    assert later == {4: (7.5 + 18.0, 7.5 + 21.0)}


def test_only_the_configured_detectors_of_a_neighbour_count() -> None:
    """The upstream publishes every stop bar; those of other directions are not an error."""
    inbox = NeighbourInbox([J1, J1_LEFT])
    inbox.receive("J1", raw(message([(2, -4.0), (5, -2.0), (8, -1.0)])), now=NOW)
    assert inbox.projections(wall_now=NOW, controller_now=0.0) == {3: (18.0,), 4: (20.0,)}
    assert inbox.results == {("J1", "accepted"): 1}


def test_neighbours_feeding_one_phase_are_merged_in_order() -> None:
    inbox = NeighbourInbox([J1, J2])
    inbox.receive("J1", raw(message([(2, -10.0)])), now=NOW)
    inbox.receive("J2", raw(message([(1, -2.0)])), now=NOW)
    assert inbox.projections(wall_now=NOW, controller_now=0.0) == {4: (8.0, 14.0)}


def test_a_repeated_message_counts_each_vehicle_once() -> None:
    inbox = NeighbourInbox([J1])
    data = raw(message([(2, -4.0)]))
    inbox.receive("J1", data, now=NOW)
    version = inbox.version
    inbox.receive("J1", data, now=NOW)
    assert inbox.version == version, "nothing new: the control loop need not re-project"
    assert inbox.projections(wall_now=NOW, controller_now=0.0) == {4: (20.0,)}


def test_arrivals_in_the_past_or_beyond_the_horizon_are_left_out() -> None:
    inbox = NeighbourInbox([J1])
    # 30 s ago + 24 s: already arrived; 4 s ahead of our clock (skew): 28 s, within 24 + 5
    inbox.receive("J1", raw(message([(2, -30.0), (6, 4.0)], ts=4.5)), now=NOW)
    assert inbox.projections(wall_now=NOW, controller_now=0.0) == {4: (28.0,)}


def test_a_silent_neighbour_ages_out() -> None:
    inbox = NeighbourInbox([J1])
    inbox.receive("J1", raw(message([(2, -1.0), (6, -0.5)])), now=NOW)
    assert inbox.projections(wall_now=NOW, controller_now=0.0)[4]
    assert inbox.projections(wall_now=at(23.2), controller_now=23.2) == {4: (23.5,)}
    assert inbox.projections(wall_now=at(40.0), controller_now=40.0) == {4: ()}
    assert inbox.pending() == {"J1": 0}, "forgotten, not only hidden"


def test_a_refused_message_changes_nothing_and_is_counted() -> None:
    inbox = NeighbourInbox([J1])
    inbox.receive("J1", raw(message([(2, -4.0)])), now=NOW)
    before = inbox.projections(wall_now=NOW, controller_now=0.0)
    for data in (b"garbage", raw(message([(6, -1.0)], ts=-60.0)), raw(message([(6, 9.0)]))):
        assert not inbox.receive("J1", data, now=NOW).ok
    assert inbox.projections(wall_now=NOW, controller_now=0.0) == before
    assert inbox.results == {
        ("J1", "accepted"): 1,
        ("J1", "malformed_json"): 1,
        ("J1", "stale"): 1,
        ("J1", "bad_time"): 1,
    }


def test_an_inbox_without_neighbours_projects_nothing() -> None:
    inbox = NeighbourInbox([])
    assert inbox.phases == () and inbox.projections(wall_now=NOW, controller_now=0.0) == {}
    assert not inbox.receive("J9", raw(message()), now=NOW).ok


# --- the publisher's buffer ----------------------------------------------------------------


def test_the_buffer_sends_only_fresh_departures_and_is_bounded() -> None:
    buf = OutflowBuffer()
    buf.add([(at(-MAX_DEPARTURE_AGE_S - 1.0), 2), (at(-1.0), 6)])
    assert buf.take(NOW) == [Departure(at(-1.0), 6)]
    assert buf.dropped == 1 and len(buf) == 0
    buf.add((at(-30.0 + 0.1 * i), 2) for i in range(MAX_DEPARTURES + 10))  # oldest first
    taken = buf.take(NOW)
    assert len(taken) == MAX_DEPARTURES and buf.dropped == 11
    assert taken[0].at == at(-30.0 + 1.0), "the newest are kept"
