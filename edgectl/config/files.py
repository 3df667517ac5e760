"""Files a configuration names (keys, passwords, certificates) and the config file itself.

:func:`read_regular` reads a small file safely: ``stat`` first (a FIFO must not hang the
reader, ``/dev/zero`` must not fill the memory), only a regular file, at most ``limit``
bytes. :func:`file_problems` lists every problem of each file reference of ``[mqtt]`` —
missing, not a regular file, unreadable, empty, too short (a command key under
:data:`MIN_COMMAND_KEY_BYTES`), too large, or a secret that others than its owner and group
can read, or its group can write — each with its path (``mqtt.command_key_file``).

A key file (``command_key_file``, ``outflow_key_file``) holds up to :data:`MAX_KEYS` keys, one
a line as ``KEYID:SECRET`` (so a key can be rotated: the new one is added, the daemon
reloaded, the signer switched, the old one removed); a bare ``SECRET`` line is the key with id
``""``, as a one-key file always was. :func:`parse_key_file` is the one reader, used by the
checks here and by :mod:`edgectl.sync.signing`, so the two can never disagree.
``edgectl check-config`` and ``edgectl run`` (at start and on reload) use it.

Why group-readable secrets pass: the shipped layout (``systemd/edgectl.tmpfiles.conf``) is
``root:edgectl 0640`` — the daemon's own group reads them, and the daemon never writes them.
"""

from __future__ import annotations

import os
import re
import stat
from pathlib import Path
from typing import TYPE_CHECKING

from edgectl.errors import EdgectlError, Problem

if TYPE_CHECKING:
    from edgectl.config.settings import MqttSettings

__all__ = [
    "MAX_CONFIG_BYTES",
    "MAX_KEYS",
    "MAX_SECRET_BYTES",
    "MIN_COMMAND_KEY_BYTES",
    "FileRefused",
    "file_problems",
    "parse_key_file",
    "read_regular",
]

MAX_CONFIG_BYTES = 4 * 1024 * 1024
MAX_SECRET_BYTES = 64 * 1024
"""Keys, passwords, user names."""
MAX_CERT_BYTES = 1024 * 1024
MIN_COMMAND_KEY_BYTES = 32
"""An HMAC-SHA256 key shorter than its 32-byte output is weaker than the hash."""
MAX_KEYS = 8
"""Keys in one key file: every one may be tried for a command without ``kid``."""
KEY_ID_RE = re.compile(r"[A-Za-z0-9._-]{1,64}")
"""A key id: what may stand before the first ``:`` of a ``KEYID:SECRET`` line."""
_OTHERS = 0o007 | 0o020  # any access by others, or write by the group


class FileRefused(EdgectlError):
    """A file that cannot (or must not) be read; the message names the file and why."""


def _kind(mode: int) -> str:
    for test, name in (
        (stat.S_ISDIR, "a directory"),
        (stat.S_ISFIFO, "a FIFO"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISSOCK, "a socket"),
    ):
        if test(mode):
            return name
    return "not a regular file"


def _reason(exc: OSError) -> str:
    if isinstance(exc, FileNotFoundError):
        return "missing (no such file)"
    if isinstance(exc, PermissionError):
        return "unreadable (permission denied)"
    return f"unreadable ({exc.strerror or exc})"


def read_regular(path: str | Path, *, limit: int, what: str = "file") -> bytes:
    """The bytes of a regular file of at most ``limit`` bytes; :class:`FileRefused` says why
    not. Never blocks on a FIFO and never reads more than ``limit + 1`` bytes."""
    try:
        info = os.stat(path)
    except OSError as exc:
        raise FileRefused(f"cannot read {what} {path}: {_reason(exc)}") from exc
    if not stat.S_ISREG(info.st_mode):
        raise FileRefused(f"{what} {path} is {_kind(info.st_mode)}, not a regular file")
    if info.st_size > limit:
        raise FileRefused(f"{what} {path} is too large ({info.st_size} bytes, at most {limit})")
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC)
    except OSError as exc:
        raise FileRefused(f"cannot read {what} {path}: {_reason(exc)}") from exc
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):  # swapped between stat and open
            raise FileRefused(f"{what} {path} is not a regular file")
        chunks: list[bytes] = []
        size = 0
        while size <= limit:
            chunk = os.read(fd, limit + 1 - size)
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
    except OSError as exc:
        raise FileRefused(f"cannot read {what} {path}: {_reason(exc)}") from exc
    finally:
        os.close(fd)
    if size > limit:
        raise FileRefused(f"{what} {path} is too large (more than {limit} bytes)")
    return b"".join(chunks)


def parse_key_file(data: bytes, *, min_bytes: int = 1) -> tuple[list[tuple[str, bytes]], list[str]]:
    """The ``(key id, secret)`` pairs of a key file's bytes, and every problem found.

    One key a line: ``KEYID:SECRET`` (KEYID of ``[A-Za-z0-9._-]``, up to 64) or a bare
    ``SECRET`` (id ``""``; a secret that itself holds a ``:`` after such a prefix is written
    ``:SECRET``). Blank lines and trailing whitespace are ignored, so ``echo secret > key``
    works. A file that is not UTF-8 text is one binary key (id ``""``), as before key ids.
    Problems: empty, more than :data:`MAX_KEYS` keys, an id given twice, a secret shorter
    than ``min_bytes``. The pairs are meaningful only when there is no problem.
    """
    content = data.rstrip()
    if not content:
        return [], ["empty"]
    keys: list[tuple[str, bytes]]
    try:
        lines = content.decode("utf-8").split("\n")
    except UnicodeDecodeError:
        keys = [("", content)]
    else:
        keys = []
        for raw_line in lines:
            line = raw_line.rstrip()
            if not line:
                continue
            kid, sep, text = line.partition(":")
            if not (sep and (kid == "" or KEY_ID_RE.fullmatch(kid))):
                kid, text = "", line
            keys.append((kid, text.encode("utf-8")))
    problems: list[str] = []
    if len(keys) > MAX_KEYS:
        problems.append(f"holds {len(keys)} keys, at most {MAX_KEYS}")
    ids = [kid for kid, _ in keys]
    for kid in sorted({k for k in ids if ids.count(k) > 1}):
        problems.append(
            f"key id {kid!r} is given twice" if kid else "more than one key without an id"
        )
    for kid, secret in keys:
        if len(secret) < min_bytes:
            named = f"key {kid!r}" if kid else "the key"
            problems.append(f"{named} is too short ({len(secret)} bytes, at least {min_bytes})")
    return keys, problems


def _reference(
    key: str,
    path: Path,
    *,
    secret: bool,
    limit: int,
    min_bytes: int = 1,
    key_file: bool = False,
) -> list[Problem]:
    out: list[Problem] = []
    try:
        data = read_regular(path, limit=limit)
    except FileRefused as exc:
        return [Problem(key, str(exc))]
    content = data.rstrip()  # as the readers do: `echo secret > key` works
    if key_file:
        _, problems = parse_key_file(data, min_bytes=min_bytes)
        out += [
            Problem(key, f"file {path}: {p}" if p != "empty" else f"file {path} is empty")
            for p in problems
        ]
    elif not content:
        out.append(Problem(key, f"file {path} is empty"))
    elif len(content) < min_bytes:
        out.append(
            Problem(key, f"file {path} is too short ({len(content)} bytes, at least {min_bytes})")
        )
    if secret:
        mode = os.stat(path).st_mode
        if mode & _OTHERS:
            out.append(
                Problem(
                    key,
                    f"file {path} has mode {stat.S_IMODE(mode):04o}: a secret must not be "
                    "readable by others nor writable by its group (chmod 0600 or 0640)",
                )
            )
    return out


def file_problems(mqtt: MqttSettings, *, section: str = "mqtt") -> list[Problem]:
    """Every problem of the files ``[mqtt]`` names (none when it names none)."""
    out: list[Problem] = []
    refs: list[tuple[str, Path | None, bool, int, int]] = [
        ("command_key_file", mqtt.command_key_file, True, MAX_SECRET_BYTES, MIN_COMMAND_KEY_BYTES),
        ("outflow_key_file", mqtt.outflow_key_file, True, MAX_SECRET_BYTES, MIN_COMMAND_KEY_BYTES),
        ("password_file", mqtt.password_file, True, MAX_SECRET_BYTES, 1),
        ("username_file", mqtt.username_file, False, MAX_SECRET_BYTES, 1),
        ("key_file", mqtt.key_file, True, MAX_CERT_BYTES, 1),
        ("cert_file", mqtt.cert_file, False, MAX_CERT_BYTES, 1),
        ("ca_file", mqtt.ca_file, False, MAX_CERT_BYTES, 1),
    ]
    for name, path, secret, limit, min_bytes in refs:
        if path is not None:
            out += _reference(
                f"{section}.{name}",
                path,
                secret=secret,
                limit=limit,
                min_bytes=min_bytes,
                key_file=name.endswith("_key_file"),
            )
    return out
