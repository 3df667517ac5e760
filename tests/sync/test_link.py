"""Transport options against a real mosquitto: TLS + client cert, unix socket, passwords,
an ACL deny reported (MQTT 5 PUBACK reason code), backoff, URL parsing."""

from __future__ import annotations

import dataclasses
import random
from datetime import UTC, datetime
from pathlib import Path

import pytest

from edgectl.backoff import Backoff
from edgectl.errors import PublishRefused, SyncError
from edgectl.sync.link import LinkConfig, open_link, parse_broker_url
from edgectl.testing.mosquitto import SKIP_REASON, MosquittoBroker, mosquitto_available
from tests.sync.conftest import (
    IID,
    PREFIX,
    FakeHandler,
    eventually,
    make_service,
    running,
    settings,
)

ROOT = f"{PREFIX}/{IID}"


def test_parse_broker_url() -> None:
    a = parse_broker_url("mqtt://broker.example:1884")
    assert (a.transport, a.host, a.port, a.tls) == ("tcp", "broker.example", 1884, False)
    assert parse_broker_url("mqtts://b").port == 8883
    assert parse_broker_url("mqtts://b").tls
    u = parse_broker_url("unix:///run/mosquitto.sock")
    assert (u.transport, u.host) == ("unix", "/run/mosquitto.sock")
    for bad in ("http://x", "mqtt://", "mqtt://h:notaport", "unix://"):
        with pytest.raises(SyncError):
            parse_broker_url(bad)


def test_backoff_is_capped_and_jittered() -> None:
    b = Backoff(0.5, 30.0, rng=random.Random(1))
    delays = [b.next() for _ in range(20)]
    assert all(0.25 <= d <= 30.0 for d in delays)
    assert max(delays[10:]) > 5.0  # it grows…
    assert len(set(delays)) >= 15  # …with jitter
    b.reset()
    assert b.next() <= 0.5


async def test_tls_with_client_certificate(
    tls_broker: MosquittoBroker, tmp_path: Path, handler: FakeHandler
) -> None:
    tf = tls_broker.tls_files
    assert tf is not None
    service = make_service(
        tls_broker.tls_url,
        tmp_path,
        handler,
        ca_file=tf.ca_file,
        cert_file=tf.client_cert,
        key_file=tf.client_key,
    )
    async with running(service):
        await eventually(lambda: service.connected and service.metrics.published["status"] >= 1)
    # without the client certificate the broker refuses the handshake
    cfg = LinkConfig.from_settings(
        settings(tls_broker.tls_url, ca_file=tf.ca_file), client_id="no-cert"
    )
    # (TLS 1.3: the refusal arrives after the handshake; aiomqtt waits for a CONNACK)
    cfg = dataclasses.replace(cfg, connect_timeout=1.0)
    with pytest.raises(SyncError):
        async with open_link(cfg):
            pass


async def test_unix_socket(
    tls_broker: MosquittoBroker, tmp_path: Path, handler: FakeHandler
) -> None:
    service = make_service(tls_broker.unix_url, tmp_path, handler)
    async with running(service):
        await eventually(lambda: service.connected and service.metrics.published["status"] >= 1)


async def test_username_password_from_files(tmp_path: Path, handler: FakeHandler) -> None:
    if not mosquitto_available():
        pytest.skip(SKIP_REASON)
    (tmp_path / "user").write_text("junction\n")
    (tmp_path / "pass").write_text("pa55word\n")
    with MosquittoBroker(users={"junction": "pa55word"}) as broker:
        service = make_service(
            broker.url,
            tmp_path / "s",
            handler,
            username_file=tmp_path / "user",
            password_file=tmp_path / "pass",
            allow_plaintext_password=True,  # a test broker on 127.0.0.1
        )
        async with running(service):
            await eventually(lambda: service.connected)
        (tmp_path / "pass").write_text("wrong\n")
        cfg = LinkConfig.from_settings(
            settings(
                broker.url,
                username_file=tmp_path / "user",
                password_file=tmp_path / "pass",
                allow_plaintext_password=True,
            ),
            client_id="x",
        )
        assert "wrong" not in repr(cfg)
        with pytest.raises(SyncError):
            async with open_link(cfg):
                pass


ACL = f"""\
topic readwrite {ROOT}/status
topic readwrite {ROOT}/state
topic readwrite {ROOT}/events
topic read {ROOT}/cmd
topic readwrite {ROOT}/cmd/response
"""


async def test_acl_denied_publish_is_reported_and_kept(
    tmp_path: Path, handler: FakeHandler
) -> None:
    if not mosquitto_available():
        pytest.skip(SKIP_REASON)
    with MosquittoBroker(acl=ACL) as broker:
        cfg = LinkConfig.from_settings(settings(broker.url), client_id="acl-probe")
        async with open_link(cfg) as link:
            with pytest.raises(PublishRefused) as info:
                await link.publish(f"{ROOT}/telemetry", b"{}")
            assert info.value.reason_code == 0x87  # not authorized
            await link.publish(f"{ROOT}/events", b"{}")  # allowed: no error

        service = make_service(broker.url, tmp_path, handler)
        async with running(service):
            await eventually(lambda: service.connected)
            service.add_telemetry({"n": 1})
            service.add_events([(datetime.now(UTC), 1, 2)])
            await eventually(lambda: service.metrics.refused["telemetry"] >= 1)
            await eventually(lambda: service.metrics.published["events"] >= 1)
            assert service.metrics.outbox_depth == 1  # the refused row is kept for later
