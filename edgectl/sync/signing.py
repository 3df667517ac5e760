"""The canonical form of a command (RFC 8785, JCS) and its HMAC-SHA256 signature.

A centre in any language signs the JCS bytes of the command without ``sig``; edgectl checks
the signature before any costly parsing (see :mod:`edgectl.sync.processor`).

Keys have ids (:class:`Key`) so they can be rotated: a key file holds up to
:data:`~edgectl.config.files.MAX_KEYS` of them (:func:`read_keys`), a signed object may name
its key with ``"kid"`` (signed with it), and without ``kid`` every key is tried
(:func:`verifying_key`). The junction signs what it sends back the same way: its answers on
``…/cmd/response`` with the key the command was verified with, its outflow with
``[mqtt] outflow_key_file``; :func:`verify_response` is the centre's (and a neighbour's) check.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import math
import re
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

from edgectl.config.files import (
    MAX_SECRET_BYTES,
    MIN_COMMAND_KEY_BYTES,
    parse_key_file,
    read_regular,
)
from edgectl.errors import EdgectlError
from edgectl.sync.clock import iso_ms

# --- canonical form and signatures ---

MAX_SAFE_INTEGER = 2**53 - 1


def _jcs_string(s: str) -> str:
    try:
        s.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("a string holds a lone surrogate: not valid Unicode") from None
    # Python's escaping with ensure_ascii=False is ECMAScript's JSON.stringify for valid
    # Unicode: \" \\ \b \f \n \r \t, other controls as lowercase \u00xx, the rest literal
    return json.dumps(s, ensure_ascii=False)


def _jcs_number(x: int | float) -> str:
    """ECMAScript ``Number.prototype.toString`` of an IEEE 754 double (RFC 8785 §3.2.2.3)."""
    if isinstance(x, int):
        if abs(x) > MAX_SAFE_INTEGER:
            raise ValueError(f"integer {x} is outside the IEEE 754 safe range (±2^53 − 1)")
        return str(x)
    if math.isnan(x) or math.isinf(x):
        raise ValueError("NaN and Infinity are not JSON")
    if x == 0.0:
        return "0"
    sign = "-" if x < 0 else ""
    # repr() gives the shortest digits that round-trip, as ECMAScript requires
    mantissa, _, exp_text = repr(abs(x)).partition("e")
    int_part, _, frac_part = mantissa.partition(".")
    digits = (int_part + frac_part).lstrip("0")
    # n: the decimal point's position relative to the digit string (value = 0.digits × 10^n)
    n = len(int_part.lstrip("0")) + int(exp_text or 0)
    if not int_part.lstrip("0"):  # 0.000ddd
        n = int(exp_text or 0) - (len(frac_part) - len(frac_part.lstrip("0")))
    digits = digits.rstrip("0") or "0"
    k = len(digits)
    if k <= n <= 21:
        return sign + digits + "0" * (n - k)
    if 0 < n <= 21:
        return sign + digits[:n] + "." + digits[n:]
    if -6 < n <= 0:
        return sign + "0." + "0" * (-n) + digits
    e = n - 1
    exp = f"e{'+' if e >= 0 else '-'}{abs(e)}"
    if k == 1:
        return sign + digits + exp
    return sign + digits[0] + "." + digits[1:] + exp


def _jcs(value: object, out: list[str]) -> None:
    if value is None:
        out.append("null")
    elif value is True:
        out.append("true")
    elif value is False:
        out.append("false")
    elif isinstance(value, str):
        out.append(_jcs_string(value))
    elif isinstance(value, int | float):
        out.append(_jcs_number(value))
    elif isinstance(value, Mapping):
        out.append("{")
        keys = sorted(value, key=_utf16_key)
        for i, key in enumerate(keys):
            if i:
                out.append(",")
            out.append(_jcs_string(key))
            out.append(":")
            _jcs(value[key], out)
        out.append("}")
    elif isinstance(value, list | tuple):
        out.append("[")
        for i, item in enumerate(value):
            if i:
                out.append(",")
            _jcs(item, out)
        out.append("]")
    else:
        raise ValueError(f"{type(value).__name__} is not JSON")


def _utf16_key(key: object) -> bytes:
    if not isinstance(key, str):
        raise TypeError("object keys are strings")
    return key.encode("utf-16-be", "surrogatepass")  # big-endian: byte order = code unit order


def canonical_json(obj: Mapping[str, object]) -> bytes:
    """RFC 8785 (JCS): the bytes that are signed.

    Keys sorted by their UTF-16 code units, no whitespace, strings escaped as ECMAScript's
    ``JSON.stringify`` does, numbers as ECMAScript writes an IEEE 754 double (integers
    beyond ±2^53 − 1 are refused: they would not survive a round trip), UTF-8. Raises
    ``ValueError`` for what has no canonical form (NaN, lone surrogates, other types).
    """
    out: list[str] = []
    _jcs(obj, out)
    return "".join(out).encode("utf-8")


_SIG_RE = re.compile(r"^[0-9a-fA-F]{64}$")


def sign(obj: Mapping[str, object], key: bytes) -> str:
    """Hex HMAC-SHA256 of the canonical JSON (RFC 8785) of ``obj`` without its ``sig``.

    Raises ``ValueError`` when ``obj`` has no canonical form (e.g. a NaN, a lone surrogate).
    """
    unsigned = {k: v for k, v in obj.items() if k != "sig"}
    return hmac.new(key, canonical_json(unsigned), hashlib.sha256).hexdigest()


def verify(obj: Mapping[str, object], key: bytes) -> bool:
    """True when ``obj["sig"]`` is the signature of ``obj``; never raises."""
    sig = obj.get("sig")
    if not isinstance(sig, str) or not _SIG_RE.match(sig):
        return False
    try:
        expected = sign(obj, key)
    except (ValueError, TypeError, RecursionError):
        return False
    return hmac.compare_digest(expected, sig.lower())


def build_command(
    command_type: str,
    params: Mapping[str, object],
    *,
    now: datetime,
    key: bytes | Key | None = None,
    command_id: str | None = None,
    expires_in_s: float | None = 60.0,
    target: str | None = None,
) -> dict[str, object]:
    """A command object ready to publish (signed when ``key`` is given).

    ``target`` names the junction it is for; a junction that checks signatures refuses a
    command without it or for another junction (``wrong_target``). A :class:`Key` with an id
    puts that id in the command (``kid``, signed with it).
    """
    obj: dict[str, object] = {
        "id": command_id or uuid.uuid4().hex,
        "type": command_type,
        "issued_at": iso_ms(now),
        "params": dict(params),
    }
    if target is not None:
        obj["target"] = target
    if expires_in_s is not None:
        obj["expires_at"] = iso_ms(now + timedelta(seconds=expires_in_s))
    if isinstance(key, Key):
        return sign_with(obj, key)
    if key is not None:
        obj["sig"] = sign(obj, key)
    return obj


# --- keys with ids: rotation ---


@dataclass(frozen=True, slots=True)
class Key:
    """One HMAC-SHA256 key and its id (``""``: a key without one, as a bare key file holds)."""

    kid: str
    secret: bytes = field(repr=False)


def parse_keys(data: bytes, *, min_bytes: int = MIN_COMMAND_KEY_BYTES) -> tuple[Key, ...]:
    """The keys of a key file's bytes (``KEYID:SECRET`` lines or one bare secret; see
    :func:`edgectl.config.files.parse_key_file`); ``ValueError`` naming every problem."""
    pairs, problems = parse_key_file(data, min_bytes=min_bytes)
    if problems:
        raise ValueError("; ".join(problems))
    return tuple(Key(kid, secret) for kid, secret in pairs)


def read_keys(path: Path, *, min_bytes: int = MIN_COMMAND_KEY_BYTES) -> tuple[Key, ...]:
    """Every key of a key file, checked as ``check-config`` checks it; :class:`EdgectlError`
    says why not (the daemon keeps the keys it has when a reload finds a bad file)."""
    # stat first: a FIFO or /dev/zero given as a key never hangs or fills memory
    data = read_regular(path, limit=MAX_SECRET_BYTES, what="key file")
    try:
        return parse_keys(data, min_bytes=min_bytes)
    except ValueError as exc:
        raise EdgectlError(f"key file {path}: {exc}") from None


def read_key_files(
    command: Path | None, outflow: Path | None
) -> tuple[tuple[Key, ...], tuple[Key, ...]]:
    """The command keys and the outflow keys the files hold now (none for a file not
    configured); :class:`EdgectlError` says what is wrong. The policy (a key of at least 32
    bytes) is ``check-config``'s, at start and on reload."""
    return (
        read_keys(command, min_bytes=1) if command else (),
        read_keys(outflow, min_bytes=1) if outflow else (),
    )


def read_key(path: Path) -> bytes:
    """The first key's secret of a key file (any length: a bench's key)."""
    return read_keys(path, min_bytes=1)[0].secret


def pick_key(keys: Iterable[Key], kid: str | None = None) -> Key:
    """The key named ``kid``, or the first one; :class:`EdgectlError` when there is none."""
    ring = tuple(keys)
    for key in ring:
        if kid is None or key.kid == kid:
            return key
    named = f" with id {kid!r}" if kid is not None else ""
    raise EdgectlError(f"no key{named} (ids: {', '.join(repr(k.kid) for k in ring) or 'none'})")


def verifying_key(obj: Mapping[str, object], keys: Iterable[Key]) -> Key | None:
    """The key whose signature ``obj`` carries, or None; never raises.

    With a ``kid`` only the key of that id is tried (an unknown id verifies nothing); without
    one, every key (at most :data:`~edgectl.config.files.MAX_KEYS`).
    """
    kid = obj.get("kid")
    if kid is not None and not isinstance(kid, str):
        return None
    candidates = [k for k in keys if kid is None or k.kid == kid]
    for key in candidates:
        if verify(obj, key.secret):
            return key
    return None


def sign_with(obj: Mapping[str, object], key: Key) -> dict[str, object]:
    """``obj`` with ``kid`` (when the key has an id) and ``sig``, signed over both."""
    signed = {k: v for k, v in obj.items() if k not in ("sig", "kid")}
    if key.kid:
        signed["kid"] = key.kid
    signed["sig"] = sign(signed, key.secret)
    return signed


def verify_response(obj: Mapping[str, object], keys: Iterable[Key] | bytes) -> bool:
    """True when a message the junction published — an answer on ``…/cmd/response``, an
    ``…/outflow`` message — is signed by one of ``keys`` (a :class:`Key` list, or one raw
    key). The signature covers everything but ``sig``, ``ts`` and ``seq`` included, so a
    captured answer cannot be passed off as another. Never raises."""
    ring = (Key("", keys),) if isinstance(keys, bytes) else tuple(keys)
    if isinstance(keys, bytes) and "kid" in obj:
        ring = (Key(str(obj["kid"]), keys),)
    return verifying_key(obj, ring) is not None
