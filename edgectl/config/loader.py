"""Load a daemon configuration: TOML file + ``EDGECTL_*`` environment overrides → validated model.

Order of work:

1. The file is parsed with :mod:`tomllib`; a syntax error is one problem naming its line.
2. ``EDGECTL_*`` environment variables override keys of the document; ``__`` nests
   (``EDGECTL_MQTT__URL=mqtts://broker:8883`` sets ``[mqtt] url``; a numeric segment indexes a
   list, ``EDGECTL_PLANS__0__TIMING__2__YELLOW=4.0``). Only variables whose first segment is
   a top-level section of the configuration are used (``EDGECTL_CONFIG`` and the like are left
   to whoever reads them). Values are strings, converted by the model (``"4.0"`` → 4.0,
   ``"true"`` → True); a value starting with ``[`` or ``{`` is read as JSON. This is a small
   explicit merge rather than pydantic-settings because the models are plain frozen
   ``BaseModel`` s shared with remote plans, and the file must stay the base layer.
3. The document is validated by the frozen pydantic models (types, ranges, unknown keys).
4. The semantic checks of :func:`edgectl.config.validation.validate_config` run (rings against
   barriers, references, MUTCD/ITE plan bounds, cycle arithmetic).

Every problem of steps 3 and 4 is reported together: when the structure is invalid, the
offending keys are pruned and the semantic checks run on what remains (problems that only
follow from a pruned key are not reported twice). :class:`~edgectl.errors.ConfigError`
carries them all; warnings (``severity="warning"``) never reject a configuration.
Secrets: only file *paths* are configured; no value under ``[mqtt]`` is ever echoed.
"""

from __future__ import annotations

import json
import math
import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from edgectl.config.files import MAX_CONFIG_BYTES, FileRefused, file_problems, read_regular
from edgectl.config.model import DaemonConfig
from edgectl.config.settings import MqttSettings
from edgectl.config.validation import validate_config
from edgectl.errors import ConfigError, Problem

__all__ = [
    "ENV_PREFIX",
    "check_config_file",
    "check_config_text",
    "load_config",
    "parse_config",
    "validate_document",
]

ENV_PREFIX = "EDGECTL_"
_SECRET_SECTIONS = ("mqtt",)
_MAX_PRUNE_ROUNDS = 8
_PLACEHOLDER_INTERSECTION = {"id": "placeholder"}


def load_config(
    path: str | Path, *, environ: Mapping[str, str] | None = None, check_files: bool = False
) -> DaemonConfig:
    """Load and validate a configuration file; :class:`ConfigError` names every problem.

    ``check_files``: also check the files ``[mqtt]`` names (keys, passwords, certificates:
    :func:`edgectl.config.files.file_problems`), as the daemon and ``check-config`` do."""
    config, problems = check_config_file(path, environ=environ, check_files=check_files)
    if config is None:
        raise ConfigError(problems, source=str(path))
    return config


def parse_config(
    text: str, *, source: str = "<string>", environ: Mapping[str, str] | None = None
) -> DaemonConfig:
    """Like :func:`load_config`, from the text of a TOML document."""
    config, problems = check_config_text(text, source=source, environ=environ)
    if config is None:
        raise ConfigError(problems, source=source)
    return config


def check_config_file(
    path: str | Path,
    *,
    environ: Mapping[str, str] | None = None,
    check_files: bool = False,
) -> tuple[DaemonConfig | None, list[Problem]]:
    """Validate a file without raising: ``(config or None, every problem incl. warnings)``.

    The file must be a regular file of at most :data:`~edgectl.config.files.MAX_CONFIG_BYTES`
    (a FIFO or ``/dev/zero`` is refused at once). ``check_files``: see :func:`load_config`.
    """
    try:
        raw = read_regular(path, limit=MAX_CONFIG_BYTES, what="configuration")
    except FileRefused as exc:
        return None, [Problem("", str(exc))]
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        return None, [Problem("", f"not UTF-8 text (byte {exc.start})")]
    config, problems, document = _check_text(text, environ)
    mqtt = config.mqtt if config is not None else _mqtt_of(document)
    if check_files and mqtt is not None:
        more = file_problems(mqtt)
        problems = problems + more
        if any(p.severity == "error" for p in more):
            config = None
    if check_files and config is not None:
        more = _profile_problems(config)
        problems = problems + more
        if any(p.severity == "error" for p in more):
            config = None
    return config, problems


def _profile_problems(config: DaemonConfig) -> list[Problem]:
    """The field devices' profiles, read and checked as the daemon would open them (a v2
    profile also against the junction's channels and detectors)."""
    from edgectl.cabinet.fieldcheck import (
        device_profile_problems,
        field_zones,
        zone_config_problems,
    )

    channels = [c.id for c in config.channels]
    detectors = [d.id for d in config.detectors]
    wanted = {z.id: z.max_objects for z in config.zones}
    mapped: dict[int, int] = {}
    out: list[Problem] = []
    for i, device in enumerate(config.field.devices):
        where = f"field.devices[{i}].profile"
        out += device_profile_problems(
            device.profile, where=where, channels=channels, detectors=detectors
        )
        found = field_zones(device.profile)
        if found is not None:
            mapped.update(found)
            out += zone_config_problems(where, device.profile, found, wanted, extra_only=True)
    if config.zones or mapped:
        out += zone_config_problems("zones", "the field profiles", mapped, wanted)
    return out


def check_config_text(
    text: str, *, source: str = "<string>", environ: Mapping[str, str] | None = None
) -> tuple[DaemonConfig | None, list[Problem]]:
    """Validate TOML text without raising: ``(config or None, every problem incl. warnings)``.

    The config is ``None`` exactly when some problem has severity ``error``.
    """
    del source  # the caller names the source when it reports
    config, problems, _ = _check_text(text, environ)
    return config, problems


def _check_text(
    text: str, environ: Mapping[str, str] | None
) -> tuple[DaemonConfig | None, list[Problem], dict[str, Any] | None]:
    """:func:`check_config_text`, and the document after the environment overrides."""
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        return None, [Problem("", f"TOML syntax error: {exc}")], None
    except (RecursionError, ValueError) as exc:  # absurd nesting / odd characters
        return None, [Problem("", f"TOML document cannot be read: {type(exc).__name__}")], None
    env = os.environ if environ is None else environ
    overridden, env_problems = apply_env_overrides(document, env)
    if env_problems:
        return None, env_problems, document
    config, problems = validate_document(document, overridden=overridden)
    return config, problems, document


def _mqtt_of(document: Mapping[str, Any] | None) -> MqttSettings | None:
    """The ``[mqtt]`` section alone, when it is valid (the rest of the file may not be)."""
    section = None if document is None else document.get("mqtt", {})
    if not isinstance(section, Mapping):
        return None
    try:
        return MqttSettings.model_validate(dict(section))
    except (ValidationError, RecursionError, OverflowError):
        return None


def validate_document(
    document: Mapping[str, Any], *, overridden: Mapping[str, str] | None = None
) -> tuple[DaemonConfig | None, list[Problem]]:
    """Validate an already parsed document (a TOML table) without raising.

    ``overridden`` maps rendered paths to the environment variable that set them; problems at
    those paths say so.
    """
    sources = dict(overridden or {})
    if not isinstance(document, Mapping):
        return None, [Problem("", f"expected a table, got {type(document).__name__}")]
    try:
        config = DaemonConfig.model_validate(dict(document))
    except ValidationError as exc:
        structural = _render_errors(exc, sources)
        semantic = _semantic_after_pruning(dict(document), exc)
        return None, _dedupe(structural + semantic)
    except (RecursionError, OverflowError) as exc:
        return None, [Problem("", f"document cannot be validated: {type(exc).__name__}")]
    problems = validate_config(config)
    if any(p.severity == "error" for p in problems):
        return None, problems
    return config, problems


# --------------------------------------------------------------------------- env overrides


def _env_value(raw: str) -> Any:
    text = raw.strip()
    if text[:1] in ("[", "{"):
        try:
            return json.loads(text)
        except ValueError:
            return raw
    return raw


def apply_env_overrides(
    document: dict[str, Any], environ: Mapping[str, str]
) -> tuple[dict[str, str], list[Problem]]:
    """Merge ``EDGECTL_*`` variables into ``document`` in place.

    Returns ``(rendered path → variable name, problems)``.
    """
    sections = set(DaemonConfig.model_fields)
    applied: dict[str, str] = {}
    problems: list[Problem] = []
    for name in sorted(environ):
        if not name.upper().startswith(ENV_PREFIX):
            continue
        parts = [p.lower() for p in name[len(ENV_PREFIX) :].split("__")]
        if not parts or parts[0] not in sections or any(not p for p in parts):
            continue
        node: Any = document
        path = ""
        ok = True
        for i, part in enumerate(parts):
            last = i == len(parts) - 1
            if isinstance(node, list):
                if not part.isdigit() or int(part) >= len(node):
                    problems.append(Problem(path, f"{name}: no list item {part!r} to override"))
                    ok = False
                    break
                index = int(part)
                path = f"{path}[{index}]"
                if last:
                    node[index] = _env_value(environ[name])
                else:
                    node = node[index]
            elif isinstance(node, dict):
                path = f"{path}.{part}" if path else part
                if last:
                    node[part] = _env_value(environ[name])
                else:
                    child = node.get(part)
                    if child is None:
                        child = {}
                        node[part] = child
                    node = child
            else:
                problems.append(Problem(path, f"{name}: {path} is not a table"))
                ok = False
                break
        if ok:
            applied[path] = name
    return applied, problems


# --------------------------------------------------------------------------- error rendering


def render_loc(loc: tuple[int | str, ...]) -> str:
    """``('plans', 0, 'timing', '4', 'yellow')`` → ``plans[0].timing.4.yellow``."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part == "[key]":
            continue
        else:
            out = f"{out}.{part}" if out else str(part)
    return out


def _is_secret(path: str) -> bool:
    return any(path == s or path.startswith((f"{s}.", f"{s}[")) for s in _SECRET_SECTIONS)


def _describe(error: Mapping[str, Any], path: str) -> str:
    kind = error.get("type", "")
    if kind == "extra_forbidden":
        return "unknown key"
    if kind == "missing":
        return "missing required key"
    message = str(error.get("msg", "invalid value"))
    if (error.get("loc") or ())[-1:] == ("[key]",):
        message = f"invalid key: {message}"
    value = error.get("input")
    if not _is_secret(path) and isinstance(value, str | int | float | bool) and value is not None:
        shown = repr(value)
        if isinstance(value, float) and not math.isfinite(value):
            shown = str(value)
        if len(shown) <= 40:
            message = f"{message} (got {shown})"
    return message


def _errors(exc: ValidationError) -> list[Any]:
    """The errors of ``exc`` minus pydantic's echo of a bad list item as a too-short list."""
    errors = exc.errors(include_url=False)
    nested = {tuple(e["loc"])[:i] for e in errors for i in range(1, len(e["loc"]))}
    return [e for e in errors if not (e.get("type") == "too_short" and tuple(e["loc"]) in nested)]


def _render_errors(exc: ValidationError, sources: Mapping[str, str]) -> list[Problem]:
    problems: list[Problem] = []
    for error in _errors(exc):
        path = render_loc(tuple(error["loc"]))
        message = _describe(error, path)
        if path in sources:
            message = f"{message} (from {sources[path]})"
        problems.append(Problem(path, message))
    return problems


def _dedupe(problems: list[Problem]) -> list[Problem]:
    seen: set[Problem] = set()
    out: list[Problem] = []
    for p in problems:
        if p not in seen:
            seen.add(p)
            out.append(p)
    return out


# --------------------------------------------------------------------------- pruning


def _remove(document: Any, loc: tuple[int | str, ...]) -> bool:
    """Remove the item at ``loc`` (a pydantic error location) from the raw document."""
    node = document
    for part in loc[:-1]:
        if part == "[key]":
            break
        key = _lookup_key(node, part)
        if key is None:
            return False
        node = node[key]
    last = loc[-1]
    if last == "[key]":
        return _remove(document, loc[:-1])
    key = _lookup_key(node, last)
    if key is None:
        return False
    if isinstance(node, list):
        node[key] = _PRUNED
    else:
        del node[key]
    return True


class _Pruned:
    """Marks a pruned list item until the lists are compacted (keeps indices stable)."""


_PRUNED = _Pruned()


def _lookup_key(node: Any, part: int | str) -> Any:
    if isinstance(node, list):
        if isinstance(part, int) and 0 <= part < len(node):
            return part
        return None
    if isinstance(node, dict):
        if part in node:
            return part
        # pydantic reports dict keys as given; TOML keys are strings
        if str(part) in node:
            return str(part)
    return None


def _compact(node: Any) -> Any:
    if isinstance(node, list):
        return [_compact(v) for v in node if v is not _PRUNED]
    if isinstance(node, dict):
        return {k: _compact(v) for k, v in node.items()}
    return node


def _copy(node: Any) -> Any:
    if isinstance(node, list):
        return [_copy(v) for v in node]
    if isinstance(node, dict):
        return {k: _copy(v) for k, v in node.items()}
    return node


def _semantic_after_pruning(document: dict[str, Any], first: ValidationError) -> list[Problem]:
    """Semantic problems of what remains once every structurally bad key is removed.

    A missing required key removes the item holding it. Problems at (or inside, or around)
    a pruned path are dropped, and so are reference problems of pruned list items: they are
    consequences of an error already reported.
    """
    work = _copy(document)
    pruned: list[str] = []
    error = first
    for _ in range(_MAX_PRUNE_ROUNDS):
        changed = False
        for item in _errors(error):
            loc = tuple(item["loc"])
            if item.get("type") == "missing" and len(loc) > 1:
                loc = loc[:-1]
            if not loc:
                return []
            if loc[0] == "intersection":
                # not used by the semantic checks: a placeholder keeps them running
                if work.get("intersection") != _PLACEHOLDER_INTERSECTION:
                    work["intersection"] = dict(_PLACEHOLDER_INTERSECTION)
                    changed = True
                continue
            if _remove(work, loc):
                changed = True
                pruned.append(render_loc(loc))
        if not changed:
            return []
        work = _compact(work)
        try:
            config = DaemonConfig.model_validate(work)
        except ValidationError as exc:
            error = exc
            continue
        except (RecursionError, OverflowError):
            return []
        break
    else:
        return []
    # A pruned list item shifts the indices of later items: only keep problems when no list
    # item was pruned from the section they are in.
    pruned_items = {_section(p) for p in pruned if _is_list_item(p)}
    kept: list[Problem] = []
    for problem in validate_config(config):
        if any(_related(problem.path, p) for p in pruned):
            continue
        if pruned_items and (
            _section(problem.path) in pruned_items or "not defined" in problem.message
        ):
            continue
        kept.append(problem)
    return kept


def _section(path: str) -> str:
    return path.split(".", 1)[0].split("[", 1)[0]


def _is_list_item(path: str) -> bool:
    return path.endswith("]")


def _related(a: str, b: str) -> bool:
    def under(x: str, y: str) -> bool:
        return x == y or x.startswith((f"{y}.", f"{y}["))

    return under(a, b) or under(b, a)
