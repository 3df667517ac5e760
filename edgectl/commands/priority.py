"""``edgectl priority route``: a green wave along a route, from the centre.

::

    edgectl priority route --route amb-17.toml --positions - \\
        --broker mqtts://broker:8883 --ca-file ca.crt --key-file centre.key < gps.jsonl
    edgectl priority route --route amb-17.toml --positions trip.jsonl --pace --broker …
    edgectl priority route --route amb-17.toml --positions trip.jsonl --dry-run

The route file (TOML; :func:`edgectl.centre.route.parse_route`) names the junctions the
vehicle crosses, in order, with the phases serving it and each stop line's distance along the
route. ``--positions`` is a stream of JSON lines ``{"t": …, "position_m": …, "speed_mps": …}``
(a file, or ``-`` for standard input): ``t`` in seconds (any origin) — the fix is taken as
made when the line is read —, or an ISO 8601 time with a zone — the requests then carry the
absolute arrival time (``eta``), so a fix that waited in a queue is still right —, or omitted
(the time the line is read). ``--pace`` replays a file's numeric ``t`` in real time.

For every fix, :class:`edgectl.centre.route.GreenWave` says what to send: a signed
``priority`` to each of the next ``--ahead`` junctions whose ETA is within ``--horizon``, the
same request again when its ETA moved by more than ``--resend``, a ``priority_cancel`` once
the vehicle passed a stop line. At the end of the stream (or on SIGINT / SIGTERM) every
request still held is cancelled. Only the public MQTT contract is used (docs/mqtt.md):
``{prefix}/{junction}/cmd``, answers on ``…/cmd/response`` matched by ``id`` and, with
``--key-file``, only when the file's keys verify them. ``--junction-key J=FILE`` signs the
commands of junction ``J`` with another file's key (per-junction keys).

Each answer is printed as a JSON line: ``junction``, ``request``, ``command`` (``priority`` /
``priority_cancel``), ``eta_s`` (of a ``priority``), ``ok`` and the junction's ``result``
(``honoured``, ``green_at``, ``green_in_s``, ``lead_s``, ``reason``) or ``error``
(``code``, ``message``). ``--dry-run`` prints what would be sent instead, without a broker.
Exit status: 0 every command was answered ``ok``, 1 one was refused, 2 usage or connection
error, 3 (none refused but) one got no answer within ``--timeout``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import signal
import sys
import threading
import time
from collections.abc import AsyncGenerator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO, Any

import aiomqtt

from edgectl.centre.route import Cancel, GreenWave, Route, RouteError, Send, load_route
from edgectl.commands.broker import add_broker_arguments, broker_client
from edgectl.errors import EdgectlError
from edgectl.sync.clock import iso_ms, utc_now
from edgectl.sync.link import redact_url
from edgectl.sync.signing import Key, build_command, pick_key, read_keys, verify_response

EXIT_OK, EXIT_REFUSED, EXIT_ERROR, EXIT_TIMEOUT = 0, 1, 2, 3
MAX_LINE = 4096


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="priority_command", metavar="ACTION", required=True)
    route = sub.add_parser(
        "route",
        help="a green wave: requests to the junctions ahead of a vehicle, from its positions",
        description=__doc__.splitlines()[0] if __doc__ else None,
    )
    route.add_argument("--route", type=Path, required=True, help="the route file (TOML)")
    route.add_argument(
        "--positions", required=True, help="JSON lines {t, position_m, speed_mps}: a file or -"
    )
    route.add_argument("--broker", help="mqtt://host:1883, mqtts://…, unix://…")
    route.add_argument("--key-file", type=Path, help="HMAC-SHA256 key(s) to sign with")
    route.add_argument("--key-id", help="the key of --key-file to sign with (default: the first)")
    route.add_argument(
        "--junction-key",
        action="append",
        default=[],
        metavar="J=FILE",
        help="sign junction J's commands with FILE's first key (repeatable)",
    )
    route.add_argument("--prefix", default="citybrain", help="topic prefix")
    route.add_argument("--timeout", type=float, default=10.0, help="seconds to wait per answer")
    route.add_argument("--expires-in", type=float, default=30.0, help="commands' expiry (30 s)")
    route.add_argument("--pace", action="store_true", help="replay numeric t in real time")
    route.add_argument("--dry-run", action="store_true", help="print what would be sent")
    wave = route.add_argument_group("the wave")
    wave.add_argument("--ahead", type=int, default=3, help="junctions ahead holding a request (3)")
    wave.add_argument("--horizon", type=float, default=120.0, help="send within this ETA (120 s)")
    wave.add_argument("--resend", type=float, default=2.0, help="update when ETA moved (2 s)")
    wave.add_argument(
        "--resend-fraction",
        type=float,
        default=0.1,
        help="a later ETA: also by this share of it (0.1)",
    )
    wave.add_argument(
        "--checkout-timeout", type=float, default=30.0, help="junction check-out after ETA (30 s)"
    )
    wave.add_argument("--checkout-m", type=float, default=0.0, help="passed this far past (0 m)")
    wave.add_argument("--min-speed", type=float, default=2.0, help="speed floor (2 m/s)")
    wave.add_argument("--free-flow", type=float, help="speed of a queued vehicle (m/s)")
    add_broker_arguments(route)


# --- the positions ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Fix:
    """One position line: ``t`` in the wave's seconds; ``epoch`` when it was a UTC time."""

    t: float | None
    position_m: float
    speed_mps: float
    epoch: bool = False


def parse_fix(line: str, where: str) -> Fix:
    """A JSON line → :class:`Fix`; :class:`EdgectlError` names what is wrong."""
    if len(line) > MAX_LINE:
        raise EdgectlError(f"{where}: longer than {MAX_LINE} characters")
    try:
        data = json.loads(line)
    except ValueError as exc:
        raise EdgectlError(f"{where}: not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise EdgectlError(f"{where}: not a JSON object")
    values: dict[str, float] = {}
    for name in ("position_m", "speed_mps"):
        value = data.get(name)
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise EdgectlError(f"{where}: {name} missing or not a number")
        if not math.isfinite(value):
            raise EdgectlError(f"{where}: {name} is not finite")
        values[name] = float(value)
    raw_t = data.get("t")
    epoch = False
    t: float | None
    if raw_t is None:
        t = None
    elif isinstance(raw_t, str):
        try:
            when = datetime.fromisoformat(raw_t.replace("Z", "+00:00"))
        except ValueError:
            raise EdgectlError(f"{where}: t {raw_t!r} is not an ISO 8601 time") from None
        if when.tzinfo is None:
            raise EdgectlError(f"{where}: t {raw_t!r} has no zone")
        t, epoch = when.timestamp(), True
    elif isinstance(raw_t, int | float) and not isinstance(raw_t, bool) and math.isfinite(raw_t):
        t = float(raw_t)
    else:
        raise EdgectlError(f"{where}: t is neither seconds nor an ISO 8601 time")
    return Fix(t, values["position_m"], values["speed_mps"], epoch)


def _reader_thread(stream: IO[str], put: Callable[[str | None], None]) -> threading.Thread:
    """Lines of a (possibly blocking) stream, handed over one by one; ``None`` at the end.
    A daemon thread: a stdin that never closes does not keep the process alive."""

    def read() -> None:
        try:
            for line in stream:
                put(line)
        except (OSError, ValueError) as exc:  # unreadable, or closed at the end of the run
            put(json.dumps({"unreadable": str(exc)}))
        finally:
            put(None)

    thread = threading.Thread(target=read, name="edgectl[priority:positions]", daemon=True)
    thread.start()
    return thread


async def _lines(stream: IO[str], stop: asyncio.Event) -> AsyncGenerator[str, None]:
    """The lines of ``stream`` until its end or ``stop``."""
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[str | None] = asyncio.Queue()

    def put(line: str | None) -> None:
        with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
            loop.call_soon_threadsafe(queue.put_nowait, line)

    _reader_thread(stream, put)
    stopped = asyncio.ensure_future(stop.wait())
    try:
        while True:
            got = asyncio.ensure_future(queue.get())
            done, _ = await asyncio.wait({got, stopped}, return_when=asyncio.FIRST_COMPLETED)
            if got not in done:
                got.cancel()
                return
            line = got.result()
            if line is None:
                return
            yield line
    finally:
        stopped.cancel()


def _wave(args: argparse.Namespace, route: Route) -> GreenWave:
    return GreenWave(
        route,
        ahead=args.ahead,
        horizon_s=args.horizon,
        resend_s=args.resend,
        resend_fraction=args.resend_fraction,
        timeout_s=args.checkout_timeout,
        checkout_m=args.checkout_m,
        min_speed_mps=args.min_speed,
        free_flow_mps=args.free_flow,
    )


# --- the commands ------------------------------------------------------------------------------


def command_for(
    item: Send | Cancel,
    *,
    now: datetime,
    key: Key | None,
    expires_in_s: float | None,
    arrival_at: datetime | None = None,
) -> dict[str, object]:
    """The signed command of one send or cancel. ``arrival_at``: the absolute ETA (a fix
    with a UTC time) — sent as ``eta`` instead of ``eta_s``."""
    if isinstance(item, Send):
        params = item.params()
        if arrival_at is not None:
            del params["eta_s"]
            params["eta"] = iso_ms(arrival_at)
        kind = "priority"
    else:
        params, kind = item.params(), "priority_cancel"
    return build_command(
        kind, params, now=now, key=key, expires_in_s=expires_in_s, target=item.junction
    )


def _keys(
    args: argparse.Namespace, route: Route
) -> tuple[dict[str, Key | None], dict[str, tuple[Key, ...]]]:
    """Each junction's signing key, and the keys its answers must verify with (the file
    its key came from: a junction with a key of its own cannot be answered for by another)."""
    ring = read_keys(args.key_file, min_bytes=1) if args.key_file else ()
    if args.key_id is not None and not ring:
        raise EdgectlError("--key-id needs --key-file")
    default = pick_key(ring, args.key_id) if ring else None
    junctions = {stop.junction for stop in route.stops}
    signing: dict[str, Key | None] = dict.fromkeys(junctions, default)
    verifying: dict[str, tuple[Key, ...]] = dict.fromkeys(junctions, ring)
    for item in args.junction_key:
        junction, sep, path = str(item).partition("=")
        if not sep or not junction or not path:
            raise EdgectlError(f"--junction-key {item!r}: give JUNCTION=FILE")
        if junction not in junctions:
            raise EdgectlError(f"--junction-key {junction!r}: not a junction of the route")
        keys = read_keys(Path(path), min_bytes=1)
        signing[junction], verifying[junction] = keys[0], keys
    return signing, verifying


def _check_args(args: argparse.Namespace) -> None:
    if any(c in args.prefix for c in "+#\0") or not args.prefix:
        raise EdgectlError(f"--prefix {args.prefix!r}: not a valid topic prefix")
    for name in ("timeout", "expires_in"):
        value = getattr(args, name)
        if not math.isfinite(value) or value < 0 or (name == "timeout" and value == 0):
            raise EdgectlError(f"--{name.replace('_', '-')} {value}: not a number of seconds")
    if not args.dry_run and not args.broker:
        raise EdgectlError("--broker is needed (or --dry-run)")
    if args.pace and args.positions == "-":
        raise EdgectlError("--pace replays a file; standard input is read as it comes")


@dataclass
class _Pending:
    item: Send | Cancel
    sent_at: float  # monotonic
    future: asyncio.Future[dict[str, Any]]


class _Session:
    """The broker side: publish, match answers, print them."""

    def __init__(
        self,
        args: argparse.Namespace,
        client: aiomqtt.Client | None,
        keys: dict[str, Key | None],
        verifying: dict[str, tuple[Key, ...]],
        out: IO[str],
    ) -> None:
        self.args = args
        self.client = client
        self.keys = keys
        self.verifying = verifying
        self.out = out
        self.pending: dict[str, _Pending] = {}
        self.refused = False
        self.unanswered = False

    @property
    def exit_status(self) -> int:
        """1 when a command was refused, else 3 when one got no answer, else 0."""
        if self.refused:
            return EXIT_REFUSED
        return EXIT_TIMEOUT if self.unanswered else EXIT_OK

    async def send(self, item: Send | Cancel, arrival_at: datetime | None) -> None:
        command = command_for(
            item,
            now=utc_now(),
            key=self.keys.get(item.junction),
            expires_in_s=self.args.expires_in or None,
            arrival_at=arrival_at,
        )
        if self.client is None:  # --dry-run
            self._print(item, {"dry_run": True, "sent": command})
            return
        loop = asyncio.get_running_loop()
        self.pending[str(command["id"])] = _Pending(item, time.monotonic(), loop.create_future())
        topic = f"{self.args.prefix}/{item.junction}/cmd"
        await self.client.publish(topic, json.dumps(command), qos=1)

    async def answers(self) -> None:
        """Match every answer on the route's ``…/cmd/response`` topics to its command."""
        assert self.client is not None
        async for message in self.client.messages:
            raw = message.payload
            if not isinstance(raw, bytes | bytearray):
                continue
            try:
                body = json.loads(raw)
            except ValueError:
                continue
            if not isinstance(body, dict):
                continue
            pending = self.pending.get(str(body.get("id")))
            if pending is None or pending.future.done():
                continue
            ring = self.verifying.get(pending.item.junction, ())
            if ring and not verify_response(body, ring):
                continue  # forged, or another key: the real answer is waited for
            pending.future.set_result(body)
            self._answered(pending, body)

    def _answered(self, pending: _Pending, body: dict[str, Any]) -> None:
        ok = body.get("ok") is True
        extra: dict[str, Any] = {"ok": ok}
        if ok:
            extra["result"] = body.get("result")
        else:
            extra["error"] = body.get("error")
            self.refused = True
        if body.get("duplicate"):
            extra["duplicate"] = True
        self._print(pending.item, extra)

    def _print(self, item: Send | Cancel, extra: dict[str, Any]) -> None:
        line: dict[str, Any] = {"junction": item.junction, "request": item.request}
        if isinstance(item, Send):
            line |= {"command": "priority", "eta_s": round(item.eta_s, 1)}
        else:
            line["command"] = "priority_cancel"
        line |= extra
        print(json.dumps(line, ensure_ascii=False), file=self.out, flush=True)

    def expire(self, *, final: bool) -> None:
        """Report commands unanswered for ``--timeout`` (all of them when ``final``)."""
        now = time.monotonic()
        for cid, pending in list(self.pending.items()):
            if pending.future.done():
                del self.pending[cid]
            elif final or now - pending.sent_at > self.args.timeout:
                del self.pending[cid]
                pending.future.cancel()
                self.unanswered = True
                self._print(pending.item, {"ok": None, "error": {"code": "no_answer"}})

    async def drain(self) -> None:
        """Wait (at most ``--timeout``) for the answers still due."""
        waiting = [p.future for p in self.pending.values() if not p.future.done()]
        if waiting:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.args.timeout):
                    await asyncio.wait(waiting)
        self.expire(final=True)


async def _feed(
    args: argparse.Namespace, stream: IO[str], wave: GreenWave, session: _Session
) -> None:
    """Read the positions, run the wave, send; cancel what is held at the end."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    start = time.monotonic()
    first_t: float | None = None
    number = 0
    try:
        async with contextlib.aclosing(_lines(stream, stop)) as lines:
            async for line in lines:
                number += 1
                if not line.strip():
                    continue
                try:
                    fix = parse_fix(line, f"{args.positions}:{number}")
                except EdgectlError as exc:  # one garbled line of a live feed is skipped
                    print(f"edgectl priority: skipped: {exc}", file=sys.stderr)
                    continue
                t = fix.t if fix.t is not None else time.monotonic() - start
                if args.pace and fix.t is not None and not fix.epoch:
                    first_t = t if first_t is None else first_t
                    delay = (t - first_t) - (time.monotonic() - start)
                    if delay > 0:
                        with contextlib.suppress(TimeoutError):
                            async with asyncio.timeout(delay):
                                await stop.wait()
                    if stop.is_set():
                        break
                for item in wave.update(t, fix.position_m, fix.speed_mps):
                    arrival = None
                    if fix.epoch and isinstance(item, Send):
                        arrival = datetime.fromtimestamp(t, UTC) + timedelta(seconds=item.eta_s)
                    await session.send(item, arrival)
                session.expire(final=False)
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.remove_signal_handler(sig)
    for cancel in wave.finish():
        await session.send(cancel, None)


async def _run(args: argparse.Namespace, stream: IO[str]) -> int:
    route = load_route(args.route)
    _check_args(args)
    wave = _wave(args, route)
    keys, verifying = _keys(args, route)
    if args.dry_run:
        session = _Session(args, None, keys, verifying, sys.stdout)
        await _feed(args, stream, wave, session)
        return EXIT_OK
    client = broker_client(args, timeout=args.timeout)
    session = _Session(args, client, keys, verifying, sys.stdout)
    try:
        async with client:
            for junction in sorted({s.junction for s in route.stops}):
                await client.subscribe(f"{args.prefix}/{junction}/cmd/response", qos=1)
            async with asyncio.TaskGroup() as tg:
                reader = tg.create_task(session.answers(), name="edgectl[priority:answers]")
                try:
                    await _feed(args, stream, wave, session)
                    await session.drain()
                finally:
                    reader.cancel()
    except (aiomqtt.MqttError, BaseExceptionGroup) as exc:
        mqtt = _mqtt_error(exc)
        if mqtt is None:
            raise
        print(f"edgectl priority: {redact_url(args.broker)}: {mqtt}", file=sys.stderr)
        return EXIT_ERROR
    return session.exit_status


def _mqtt_error(exc: BaseException) -> aiomqtt.MqttError | None:
    """The broker's error in ``exc`` (itself, or the one a task group wrapped), else None."""
    if isinstance(exc, aiomqtt.MqttError):
        return exc
    if isinstance(exc, BaseExceptionGroup):
        for inner in exc.exceptions:
            found = _mqtt_error(inner)
            if found is not None:
                return found
    return None


def run(args: argparse.Namespace) -> int:
    try:
        if args.positions == "-":
            return asyncio.run(_run(args, sys.stdin))
        try:
            stream = Path(args.positions).open(encoding="utf-8")  # noqa: SIM115
        except OSError as exc:
            raise EdgectlError(f"--positions {args.positions}: {exc}") from exc
        with stream:
            return asyncio.run(_run(args, stream))
    except RouteError as exc:
        print(f"edgectl priority: {exc}", file=sys.stderr)
        for problem in exc.problems:
            print(f"  {problem}", file=sys.stderr)
        return EXIT_ERROR
    except EdgectlError as exc:
        print(f"edgectl priority: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        return EXIT_ERROR
