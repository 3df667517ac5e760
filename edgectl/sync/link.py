"""One MQTT connection to the centre, over aiomqtt 2.x (paho underneath).

- :func:`parse_broker_url`: ``mqtt://host:1883``, ``mqtts://host:8883``, ``unix:///path``.
- :class:`LinkConfig`: everything needed to connect, built once from
  :class:`~edgectl.config.settings.MqttSettings` (username/password read from their files,
  TLS context with CA and client certificate).
- :func:`cli_client`: the plain aiomqtt client of ``edgectl cmd`` and ``edgectl watch``.
- :func:`open_link`: an async context manager yielding a :class:`Link` — one FRESH aiomqtt
  client per connection (never reused across reconnects), with the will set.
- :class:`Backoff`: capped, full-jitter exponential backoff, the reconnect policy.

aiomqtt 2.x ignores the reason code of an MQTT 5 PUBACK, so a publish the broker refused
(ACL deny → 0x87) would look delivered. :class:`Link` therefore tracks its own
acknowledgements by packet id through paho's ``on_publish`` and raises
:class:`~edgectl.errors.PublishRefused` for a reason code ≥ 0x80. Every aiomqtt/paho error
is translated to :class:`~edgectl.errors.SyncError` at this boundary.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, cast
from urllib.parse import urlsplit

import aiomqtt
import paho.mqtt.client as paho
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from edgectl.config.files import MAX_SECRET_BYTES, FileRefused, read_regular
from edgectl.config.settings import MqttProtocol, MqttSettings
from edgectl.errors import PublishRefused, SyncError

PUBLISH_TIMEOUT_S = 10.0
CONNECT_TIMEOUT_S = 10.0
INBOX_MAX = 256
"""Incoming messages waiting to be handled, at most (each at most MaximumPacketSize)."""


@dataclass(frozen=True, slots=True)
class BrokerAddress:
    transport: Literal["tcp", "unix"]
    host: str  # hostname, or the socket path for unix
    port: int
    tls: bool


def redact_url(url: str) -> str:
    """``url`` with any ``user:password@`` replaced by ``***@``: safe to log or print."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        return url
    netloc, slash, tail = rest.partition("/")
    if "@" in netloc:
        netloc = "***@" + netloc.rsplit("@", 1)[1]
    return f"{scheme}{sep}{netloc}{slash}{tail}"


def parse_broker_url(url: str) -> BrokerAddress:
    """``mqtt://host[:1883]``, ``mqtts://host[:8883]`` (also ``tcp://``/``ssl://``), ``unix:///path``.

    Credentials in the URL (``mqtt://user:pw@host``) are refused, never dropped silently: they
    belong in files. No error message repeats them (:func:`redact_url`)."""
    shown = repr(redact_url(url))
    try:
        parts = urlsplit(url)
    except ValueError:
        raise SyncError(f"broker URL {shown}: not a valid URL") from None
    scheme = parts.scheme.lower()
    if "@" in parts.netloc:
        raise SyncError(
            f"broker URL {shown}: credentials in the URL are refused; "
            "give them as a username file and a password file"
        )
    if scheme == "unix":
        path = parts.path or parts.netloc
        if not path:
            raise SyncError(f"broker URL {shown}: no socket path")
        return BrokerAddress("unix", path, 1883, tls=False)  # paho wants a valid (unused) port
    if scheme not in ("mqtt", "tcp", "mqtts", "ssl", "tls"):
        raise SyncError(f"broker URL {shown}: scheme must be mqtt, mqtts or unix")
    tls = scheme in ("mqtts", "ssl", "tls")
    try:
        port = parts.port or (8883 if tls else 1883)
    except ValueError:
        raise SyncError(f"broker URL {shown}: bad port") from None
    if not parts.hostname:
        raise SyncError(f"broker URL {shown}: no host")
    return BrokerAddress("tcp", parts.hostname, port, tls=tls)


def _read_secret(path: Path, what: str) -> str:
    try:
        data = read_regular(path, limit=MAX_SECRET_BYTES, what=f"MQTT {what} file")
    except FileRefused as exc:
        raise SyncError(str(exc)) from exc
    try:
        return data.decode("utf-8").rstrip("\r\n")
    except UnicodeDecodeError as exc:
        raise SyncError(f"MQTT {what} file {path} is not UTF-8") from exc


def refuse_plaintext_password(address: BrokerAddress, *, has_password: bool, allowed: bool) -> None:
    """A password over plain TCP travels in clear: refused unless the caller opted in."""
    if has_password and address.transport == "tcp" and not address.tls and not allowed:
        raise SyncError(
            "a password over plain mqtt:// would travel in clear: use mqtts:// "
            "(or opt in: [mqtt] allow_plaintext_password, --allow-plaintext-password)"
        )


FAILOVER_AFTER_S = 5.0
"""A session that lasted this long and ended moves to the next broker without a back-off (a
shorter one backs off: a broker that accepts and drops at once must not be hammered)."""


@dataclass(slots=True)
class BrokerTurns:
    """Which broker to try next (``url``, then ``failover_urls``, round and round), and
    whether to back off first."""

    urls: tuple[str, ...]
    turn: int = 0

    def next(self) -> str:
        url = self.urls[self.turn % len(self.urls)]
        self.turn += 1
        return url

    def back_off(self, session_lasted_s: float | None) -> bool:
        """After an attempt (``None``: it never connected): wait before the next one? Not
        when a session that ran a while ended with other brokers to fail over to; otherwise
        once every broker of the round was tried."""
        several = len(self.urls) > 1
        if several and session_lasted_s is not None and session_lasted_s > FAILOVER_AFTER_S:
            return False
        return not several or self.turn % len(self.urls) == 0


@dataclass(frozen=True, slots=True)
class LinkConfig:
    address: BrokerAddress
    client_id: str
    protocol: MqttProtocol = MqttProtocol.V5
    keepalive: int = 30
    username: str | None = None
    password: str | None = None
    tls_context: ssl.SSLContext | None = None
    connect_timeout: float = CONNECT_TIMEOUT_S
    max_packet_size: int | None = None  # MQTT 5 MaximumPacketSize sent in CONNECT

    def __repr__(self) -> str:  # never print the password
        return (
            f"LinkConfig(address={self.address!r}, client_id={self.client_id!r}, "
            f"protocol={self.protocol.value!r}, username={self.username!r})"
        )

    @classmethod
    def from_settings(
        cls,
        settings: MqttSettings,
        *,
        client_id: str,
        url: str | None = None,
        max_packet_size: int | None = None,
    ) -> LinkConfig:
        """Read credential files and build the TLS context (blocking file reads, done once)."""
        address = parse_broker_url(url or settings.url)
        username = (
            _read_secret(settings.username_file, "username") if settings.username_file else None
        )
        password = (
            _read_secret(settings.password_file, "password") if settings.password_file else None
        )
        tls_context = None
        if address.tls or settings.ca_file or settings.cert_file:
            tls_context = make_tls_context(
                ca_file=settings.ca_file, cert_file=settings.cert_file, key_file=settings.key_file
            )
            address = BrokerAddress(address.transport, address.host, address.port, tls=True)
        refuse_plaintext_password(
            address,
            has_password=password is not None,
            allowed=settings.allow_plaintext_password,
        )
        return cls(
            address=address,
            client_id=settings.client_id or client_id,
            protocol=settings.protocol,
            keepalive=settings.keepalive,
            username=username,
            password=password,
            tls_context=tls_context,
            max_packet_size=max_packet_size,
        )


def make_tls_context(
    *, ca_file: Path | None, cert_file: Path | None, key_file: Path | None
) -> ssl.SSLContext:
    try:
        ctx = ssl.create_default_context(cafile=str(ca_file) if ca_file else None)
        if cert_file is not None:
            ctx.load_cert_chain(str(cert_file), str(key_file) if key_file else None)
    except (OSError, ssl.SSLError) as exc:
        raise SyncError(f"TLS setup failed: {exc}") from exc
    return ctx


def cli_client(
    url: str,
    *,
    protocol: MqttProtocol = MqttProtocol.V5,
    ca_file: Path | None = None,
    cert_file: Path | None = None,
    key_file: Path | None = None,
    username_file: Path | None = None,
    password_file: Path | None = None,
    allow_plaintext_password: bool = False,
    timeout: float | None = None,
) -> aiomqtt.Client:
    """The aiomqtt client of a command-line tool (``edgectl cmd``, ``edgectl watch``): the
    broker URL (no credentials in it), TLS when the scheme or a CA/certificate asks for it,
    user name and password from files, never a password in clear unless allowed.

    Raises :class:`~edgectl.errors.SyncError` with a one-line message that names no secret."""
    address = parse_broker_url(url)
    tls = None
    if address.tls or ca_file or cert_file:
        tls = make_tls_context(ca_file=ca_file, cert_file=cert_file, key_file=key_file)
        address = BrokerAddress(address.transport, address.host, address.port, tls=True)
    username = _read_secret(username_file, "username").strip() if username_file else None
    password = _read_secret(password_file, "password") if password_file else None
    refuse_plaintext_password(
        address, has_password=password is not None, allowed=allow_plaintext_password
    )
    v5 = protocol is MqttProtocol.V5
    return aiomqtt.Client(
        address.host,
        address.port,
        transport=address.transport,
        tls_context=tls,
        protocol=aiomqtt.ProtocolVersion.V5 if v5 else aiomqtt.ProtocolVersion.V311,
        username=username,
        password=password,
        timeout=timeout,
    )


class _AckingClient(aiomqtt.Client):
    """aiomqtt client that also reports each PUBACK's reason code by packet id, and keeps
    at most ``INBOX_MAX`` incoming messages waiting (aiomqtt's queue is unbounded: a flood
    of large messages grew a daemon past its ``MemoryMax``); more are dropped and counted."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.acks: dict[int, asyncio.Future[int]] = {}
        self.inbox_dropped = 0

    def _on_message(self, client: paho.Client, userdata: Any, message: paho.MQTTMessage) -> None:
        if self._queue.qsize() >= INBOX_MAX:
            self.inbox_dropped += 1
            return
        super()._on_message(client, userdata, message)

    def _on_publish(
        self,
        client: paho.Client,
        userdata: Any,
        mid: int,
        reason_code: ReasonCode,
        properties: Properties,
    ) -> None:
        fut = self.acks.pop(mid, None)
        if fut is not None and not fut.done():
            fut.set_result(int(getattr(reason_code, "value", 0)))
        super()._on_publish(client, userdata, mid, reason_code, properties)

    @property
    def disconnected(self) -> asyncio.Future[None]:
        return self._disconnected


class Link:
    """A live connection. Obtain one from :func:`open_link`."""

    def __init__(self, client: _AckingClient, config: LinkConfig) -> None:
        self._client = client
        self.config = config

    @property
    def v5(self) -> bool:
        return self.config.protocol is MqttProtocol.V5

    @property
    def is_connected(self) -> bool:
        return not self._client.disconnected.done()

    def send(
        self,
        topic: str,
        payload: bytes,
        *,
        qos: int = 1,
        retain: bool = False,
        correlation_data: bytes | None = None,
    ) -> asyncio.Future[int]:
        """Hand a message to the socket now; the future resolves to the PUBACK reason code.

        Messages sent in order reach the broker in order (pipelining).
        """
        props = None
        if self.v5 and correlation_data is not None:
            props = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
            props.CorrelationData = correlation_data
        try:
            info = self._client._client.publish(topic, payload, qos, retain, props)
        except (ValueError, OSError) as exc:
            raise SyncError(f"publish to {topic} failed: {exc}") from exc
        if info.rc != paho.MQTT_ERR_SUCCESS:
            raise SyncError(f"publish to {topic} failed: {paho.error_string(info.rc)}")
        fut: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        if qos == 0:
            fut.set_result(0)
        else:
            self._client.acks[info.mid] = fut
        return fut

    async def acked(
        self,
        fut: asyncio.Future[int],
        topic: str,
        timeout: float = PUBLISH_TIMEOUT_S,  # noqa: ASYNC109
    ) -> None:
        """Wait for a :meth:`send`'s PUBACK; raise PublishRefused / SyncError."""
        disconnected = self._client.disconnected
        try:
            async with asyncio.timeout(timeout):
                waiters: set[asyncio.Future[object]] = {
                    cast("asyncio.Future[object]", fut),
                    cast("asyncio.Future[object]", disconnected),
                }
                await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
        except TimeoutError:
            raise SyncError(f"no PUBACK for {topic} within {timeout:g} s") from None
        finally:
            if not fut.done():
                fut.cancel()
        if fut.cancelled():
            raise SyncError(f"connection lost before PUBACK for {topic}")
        code = fut.result()
        if code >= 0x80:
            name = str(ReasonCode(PacketTypes.PUBACK, identifier=code)) if self.v5 else ""
            raise PublishRefused(topic, code, name)

    async def publish(
        self,
        topic: str,
        payload: bytes,
        *,
        qos: int = 1,
        retain: bool = False,
        correlation_data: bytes | None = None,
        timeout: float = PUBLISH_TIMEOUT_S,  # noqa: ASYNC109
    ) -> None:
        fut = self.send(topic, payload, qos=qos, retain=retain, correlation_data=correlation_data)
        await self.acked(fut, topic, timeout)

    async def subscribe(self, topic: str, qos: int = 1) -> None:
        try:
            result = await self._client.subscribe(topic, qos)
        except aiomqtt.MqttError as exc:
            raise SyncError(f"subscribe to {topic} failed: {exc}") from exc
        for rc in result:
            value = rc if isinstance(rc, int) else int(rc.value)
            if value >= 0x80:
                raise SyncError(f"subscribe to {topic} refused ({value:#x})")

    @property
    def inbox_dropped(self) -> int:
        """Incoming messages dropped on this connection because ``INBOX_MAX`` were waiting."""
        return self._client.inbox_dropped

    async def messages(self) -> AsyncIterator[aiomqtt.Message]:
        """Incoming messages until the connection is lost (then SyncError)."""
        try:
            async for message in self._client.messages:
                yield message
        except aiomqtt.MqttError as exc:
            raise SyncError(f"connection lost: {exc}") from exc

    def abort(self) -> None:
        """Drop the TCP connection WITHOUT a DISCONNECT (the broker sends the will). Tests."""
        sock = self._client._client.socket()
        if isinstance(sock, socket.socket):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)


def _properties_v5(session_expiry: int = 0, max_packet_size: int | None = None) -> Properties:
    props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
    props.SessionExpiryInterval = session_expiry
    if max_packet_size is not None:
        # the broker drops a larger message for us instead of sending it (MQTT 5 §3.1.2.11.4)
        props.MaximumPacketSize = max_packet_size
    return props


@asynccontextmanager
async def open_link(
    config: LinkConfig,
    *,
    will: aiomqtt.Will | None = None,
    on_disconnect_error: Callable[[Exception], None] | None = None,
) -> AsyncIterator[Link]:
    """Connect with a fresh client; disconnect cleanly (DISCONNECT, no will) on exit."""
    addr = config.address
    v5 = config.protocol is MqttProtocol.V5
    client = _AckingClient(
        addr.host,
        addr.port,
        identifier=config.client_id,
        protocol=aiomqtt.ProtocolVersion.V5 if v5 else aiomqtt.ProtocolVersion.V311,
        will=will,
        clean_session=None if v5 else True,
        clean_start=True if v5 else paho.MQTT_CLEAN_START_FIRST_ONLY,
        properties=_properties_v5(max_packet_size=config.max_packet_size) if v5 else None,
        transport=addr.transport,
        keepalive=config.keepalive,
        timeout=config.connect_timeout,
        username=config.username,
        password=config.password,
        tls_context=config.tls_context if addr.tls else None,
        max_inflight_messages=100,
    )
    try:
        await client.__aenter__()
    except (aiomqtt.MqttError, ValueError, OSError) as exc:
        raise SyncError(f"cannot connect to {addr.host}:{addr.port}: {exc}") from exc
    try:
        yield Link(client, config)
    finally:
        lost = client.disconnected
        if lost.done() and not lost.cancelled():
            lost.exception()  # retrieved: the loss is reported by the caller, not by asyncio
        try:
            async with asyncio.timeout(2.0):
                await client.__aexit__(None, None, None)
        except (aiomqtt.MqttError, TimeoutError) as exc:
            if on_disconnect_error is not None:
                on_disconnect_error(exc)
        except Exception as exc:  # noqa: BLE001 - a broken socket at disconnect must not mask the real error
            if on_disconnect_error is not None:
                on_disconnect_error(exc)
