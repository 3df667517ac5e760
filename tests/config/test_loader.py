"""Config loading: every problem named with its path, env overrides, secrets, never a crash."""

from __future__ import annotations

import contextlib
import copy
import re
import tomllib
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edgectl.cli import main
from edgectl.config.loader import (
    check_config_file,
    check_config_text,
    load_config,
    parse_config,
    render_loc,
    validate_document,
)
from edgectl.config.model import DaemonConfig, Mode
from edgectl.errors import ConfigError, Problem

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = sorted((ROOT / "edgectl" / "examples").glob("*.toml"))
INVALID = sorted((Path(__file__).parent / "invalid").glob("*.toml"))
EXPECT = re.compile(r"^# expect: (?P<path>\S+) :: (?P<fragment>.+)$")
NO_ENV: dict[str, str] = {}


def expectations(path: Path) -> list[tuple[str, str]]:
    out = []
    for line in path.read_text().splitlines():
        m = EXPECT.match(line)
        if m:
            where = "" if m["path"] == "<root>" else m["path"]
            out.append((where, m["fragment"]))
    return out


def test_there_are_invalid_fixtures() -> None:
    assert len(INVALID) >= 8
    assert all(expectations(p) for p in INVALID)


@pytest.mark.parametrize("path", INVALID, ids=[p.stem for p in INVALID])
def test_invalid_config_names_every_problem(path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(path, environ=NO_ENV)
    errors = [p for p in info.value.problems if p.severity == "error"]
    expected = expectations(path)
    unmatched = list(errors)
    for where, fragment in expected:
        hit = next((p for p in unmatched if p.path == where and fragment in p.message), None)
        assert hit is not None, (
            f"{path.name}: no problem at {where!r} containing {fragment!r}; got:\n"
            + "\n".join(map(str, errors))
        )
        unmatched.remove(hit)
    assert unmatched == [], f"{path.name}: unexpected problems:\n" + "\n".join(map(str, unmatched))
    assert info.value.source == str(path)


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_examples_are_valid(path: Path) -> None:
    config = load_config(path, environ=NO_ENV)
    assert isinstance(config, DaemonConfig)
    config2, problems = check_config_file(path, environ=NO_ENV)
    assert config2 == config
    assert all(p.severity == "warning" for p in problems)


def test_both_examples_exist() -> None:
    assert {p.stem for p in EXAMPLES} >= {"eight_phase", "two_phase"}


def test_syntax_error_names_the_line() -> None:
    with pytest.raises(ConfigError) as info:
        parse_config('[intersection]\nid = "x"\n\n[[phases]\n', source="s.toml", environ=NO_ENV)
    (problem,) = info.value.problems
    assert problem.path == ""
    assert "TOML syntax error" in problem.message
    assert "line 4" in problem.message
    assert str(info.value).startswith("s.toml: 1 problem(s)")


def test_unreadable_file(tmp_path: Path) -> None:
    config, problems = check_config_file(tmp_path / "missing.toml", environ=NO_ENV)
    assert config is None
    assert "cannot read" in problems[0].message


def test_not_utf8(tmp_path: Path) -> None:
    f = tmp_path / "latin1.toml"
    f.write_bytes(b'[intersection]\nid = "caf\xe9"\n')
    config, problems = check_config_file(f, environ=NO_ENV)
    assert config is None
    assert "UTF-8" in problems[0].message


def test_render_loc() -> None:
    assert render_loc(("plans", 0, "timing", "4", "yellow")) == "plans[0].timing.4.yellow"
    assert render_loc(("phases", 2, "min_green")) == "phases[2].min_green"
    assert render_loc(("plans", 0, "timing", "x", "[key]")) == "plans[0].timing.x"
    assert render_loc(()) == ""


def test_invalid_dict_key_is_named() -> None:
    text = (ROOT / "edgectl" / "examples" / "two_phase.toml").read_text()
    text = text.replace("[plans.timing.4]", "[plans.timing.four]", 1)
    config, problems = check_config_text(text, environ=NO_ENV)
    assert config is None
    assert any(p.path == "plans[0].timing.four" and "invalid key" in p.message for p in problems)


# --------------------------------------------------------------------------- environment


def two_phase_text() -> str:
    return (ROOT / "edgectl" / "examples" / "two_phase.toml").read_text()


def test_env_overrides_nested_keys() -> None:
    env = {
        "EDGECTL_MQTT__URL": "mqtts://broker.example:8883",
        "EDGECTL_MQTT__KEEPALIVE": "45",
        "EDGECTL_MQTT__ALLOW_UNSIGNED_COMMANDS": "true",
        "EDGECTL_CONTROL__MODE": "fixed",
        "EDGECTL_CONTROL__PLAN": "2",
        "EDGECTL_CONTROL__REST_IN_RED": "true",
        "EDGECTL_PLANS__0__TIMING__2__YELLOW": "4.5",
        "EDGECTL_FIELD__DEVICES": '[{"name": "cabinet", "url": "modbus+tcp://127.0.0.1:1502"}]',
        "EDGECTL_CONFIG": "/etc/edgectl/edgectl.toml",  # not a section: ignored
        "OTHER": "x",
    }
    config = parse_config(two_phase_text(), environ=env)
    assert config.mqtt.url == "mqtts://broker.example:8883"
    assert config.mqtt.keepalive == 45
    assert config.control.mode is Mode.FIXED
    assert config.control.plan == 2
    assert config.control.rest_in_red is True
    assert config.plan(1).timing[2].yellow == 4.5
    assert config.field.devices[0].url == "modbus+tcp://127.0.0.1:1502"


def test_env_override_problem_names_the_variable() -> None:
    env = {"EDGECTL_CONTROL__STARTUP_FLASH": "forever", "EDGECTL_PLANS__0__TIMING__2__YELLOW": "9"}
    with pytest.raises(ConfigError) as info:
        parse_config(two_phase_text(), environ=env)
    got = {(p.path, p.message) for p in info.value.problems if p.severity == "error"}
    assert any(
        path == "control.startup_flash" and "(from EDGECTL_CONTROL__STARTUP_FLASH)" in msg
        for path, msg in got
    )
    assert ("plans[0].timing.2.yellow", "yellow 9 s outside 3–6 s") in got


def test_env_override_unknown_key_and_bad_index() -> None:
    env = {"EDGECTL_MQTT__URLL": "mqtt://x", "EDGECTL_PLANS__7__NAME": "x"}
    config, problems = check_config_text(two_phase_text(), environ=env)
    assert config is None
    messages = [str(p) for p in problems]
    assert any("EDGECTL_PLANS__7__NAME" in m and "no list item" in m for m in messages)


def test_env_from_os_environ(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EDGECTL_MQTT__PREFIX", "city-x")
    assert parse_config(two_phase_text()).mqtt.prefix == "city-x"


def test_secrets_are_never_echoed() -> None:
    env = {"EDGECTL_MQTT__URL": "mqtt://user:hunter2@broker", "EDGECTL_MQTT__KEEPALIVE": "hunter2"}
    text = two_phase_text() + '\n[mqtt]\npassword = "hunter2"\n'
    with pytest.raises(ConfigError) as info:
        parse_config(text, environ=env)
    rendered = str(info.value) + "\n".join(map(str, info.value.problems))
    assert "hunter2" not in rendered
    # credentials in the URL are refused, never dropped silently (and never echoed)
    assert {p.path for p in info.value.problems} == {
        "mqtt.password",
        "mqtt.keepalive",
        "mqtt.url",
        "mqtt.command_key_file",
    }


# --------------------------------------------------------------------------- check-config CLI


def test_check_config_valid(capsys: pytest.CaptureFixture[str]) -> None:
    rc = main(["check-config", str(ROOT / "edgectl" / "examples" / "eight_phase.toml")])
    out = capsys.readouterr()
    assert rc == 0
    assert out.out.endswith(
        "ok: intersection hz-0001: 8 phases, 2 rings, 2 barriers, 12 channels, 12 detectors, "
        "2 plans\n"
    )
    assert "warning" not in out.out
    assert out.err == ""


def test_check_config_lists_warnings_without_failing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The lefts' 1.5 s red clearance is short for the full 22 m width (ITE: 2.0 s)."""
    text = (ROOT / "edgectl" / "examples" / "eight_phase.toml").read_text()
    wide = text.replace("intersection_width_m = 14.0", "intersection_width_m = 22.0")
    assert wide != text
    path = tmp_path / "wide.toml"
    path.write_text(wide)
    rc = main(["check-config", str(path)])
    out = capsys.readouterr()
    assert rc == 0
    assert "2 plans (8 warning(s))" in out.out
    assert (
        "warning: plans[0].timing.1.red_clear: red clearance 1.5 s is below the ITE value "
        "2.0 s for 22 m at 50 km/h" in out.out
    )
    assert out.err == ""


def test_check_config_invalid_lists_every_problem(capsys: pytest.CaptureFixture[str]) -> None:
    path = Path(__file__).parent / "invalid" / "bad_timing.toml"
    rc = main(["check-config", str(path)])
    err = capsys.readouterr().err.splitlines()
    assert rc == 1
    problem_lines = [line for line in err if ": error: " in line]
    assert len(problem_lines) == len(expectations(path))
    assert f"{path}: error: plans[0].timing.2.yellow: yellow 2.5 s outside 3–6 s" in err
    assert err[-1] == f"{path}: invalid: {len(problem_lines)} error(s)"


def test_check_config_quiet(capsys: pytest.CaptureFixture[str]) -> None:
    rc = main(["check-config", "-q", str(ROOT / "edgectl" / "examples" / "eight_phase.toml")])
    assert rc == 0
    assert capsys.readouterr().out == ""


def test_check_config_missing_file(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert main(["check-config", str(tmp_path / "nope.toml")]) == 1
    assert "cannot read" in capsys.readouterr().err


# --------------------------------------------------------------------------- never a crash


def assert_outcome(config: DaemonConfig | None, problems: list[Problem]) -> None:
    has_error = any(p.severity == "error" for p in problems)
    assert (config is None) == has_error
    for p in problems:
        assert isinstance(p.path, str)
        assert isinstance(p.message, str)
        assert p.message


@settings(
    max_examples=150,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(st.text(max_size=400))
def test_random_text_never_crashes(text: str) -> None:
    assert_outcome(*check_config_text(text, environ=NO_ENV))
    with contextlib.suppress(ConfigError):
        parse_config(text, environ=NO_ENV)


TOML_LINES = [
    "[intersection]", 'id = "x"', "[[phases]]", "id = 2", "id = 4", "startup = true",
    "pedestrian = true", "crossing_m = 1e9", "[[rings]]", "sequence = [2, 4]", "sequence = []",
    "[[barriers]]", "phases = [2]", "phases = [4, 2]", "[[channels]]", "phase = 2",
    'source = "overlap"', "overlap_parents = [2, 4]", "[[detectors]]", "call_phases = [9]",
    "[[plans]]", "id = 1", "[plans.timing.2]", "[plans.timing.4]", "min_green = -1",
    "min_green = 5.0", "max1 = nan", "max1 = 40.0", "yellow = inf", "yellow = 4.0",
    "red_clear = 2.0", "[plans.coordination]", "cycle = 0", "splits = { 2 = 30.0 }",
    "[control]", 'mode = "coordinated"', "plan = 99", "[mqtt]", 'url = "mqtt://u:p@h"',
    "x = [1, [2, [3]]]", "a.b.c = 1", "= =", "[[", '"""',
]  # fmt: skip


@settings(
    max_examples=200,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(st.lists(st.one_of(st.sampled_from(TOML_LINES), st.text(max_size=15)), max_size=40))
def test_random_toml_documents_never_crash(lines: list[str]) -> None:
    assert_outcome(*check_config_text("\n".join(lines), environ=NO_ENV))


toml_keys = st.sampled_from(
    [
        "intersection", "id", "phases", "rings", "barriers", "channels", "detectors", "plans",
        "timing", "coordination", "splits", "sequence", "min_green", "max1", "yellow", "control",
        "mode", "plan", "mqtt", "field", "devices", "phase", "source", "2", "4", "x",
    ]
)  # fmt: skip
scalars = st.one_of(
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
    st.booleans(),
)
documents = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=4), st.dictionaries(toml_keys, children, max_size=5)
    ),
    max_leaves=25,
)


@settings(
    max_examples=200,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(st.dictionaries(toml_keys, documents, max_size=8))
def test_random_dicts_never_crash(document: dict[str, Any]) -> None:
    assert_outcome(*validate_document(document))


EIGHT = tomllib.loads((ROOT / "edgectl" / "examples" / "eight_phase.toml").read_text())


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix] if prefix else []
    if isinstance(node, dict):
        for k, v in node.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            out += _paths(v, (*prefix, i))
    return out


EIGHT_PATHS = _paths(EIGHT)


@settings(
    max_examples=200,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(
    st.lists(
        st.tuples(st.sampled_from(EIGHT_PATHS), st.one_of(scalars, documents)),
        min_size=1,
        max_size=4,
    )
)
def test_mutated_example_never_crashes(mutations: list[tuple[tuple[Any, ...], Any]]) -> None:
    document = copy.deepcopy(EIGHT)
    for path, value in mutations:
        node: Any = document
        try:
            for part in path[:-1]:
                node = node[part]
            node[path[-1]] = value
        except (KeyError, IndexError, TypeError):
            continue
    assert_outcome(*validate_document(document))


def test_a_plan_whose_hand_over_outlasts_the_units_stop_timeout_is_warned() -> None:
    # walk 7 + pedestrian clearance 35 + yellow + red clearance > TimeoutStopSec=45s − flush
    long_crossing = two_phase_text().replace("ped_clear = ", "ped_clear = 35.0 #", 1)
    _, problems = check_config_text(long_crossing, environ={})
    found = [p for p in problems if "TimeoutStopSec" in p.message]
    assert found and all(p.severity == "warning" for p in found), problems
    _, problems = check_config_text(two_phase_text(), environ={})
    assert not [p for p in problems if "TimeoutStopSec" in p.message]
