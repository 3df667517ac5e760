"""Per-junction ACLs with client certificates: junction A can neither speak as junction B
nor command it, and the daemon's link reports the refusal instead of losing it silently."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from edgectl.config.model import Neighbour
from edgectl.errors import PublishRefused, SyncError
from edgectl.sync.clock import iso_ms
from edgectl.sync.link import LinkConfig, open_link
from edgectl.sync.service import SyncService
from edgectl.testing.mosquitto import (
    SKIP_REASON,
    MosquittoBroker,
    issue_client_cert,
    mosquitto_available,
)
from tests.sync.conftest import FakeHandler, eventually, running, settings

pytestmark = [pytest.mark.mqtt, pytest.mark.skipif(not mosquitto_available(), reason=SKIP_REASON)]

# the client certificate's CN is the username; each junction may write only its own topics
# and read only its own commands; the centre may command anyone
ACL = """\
pattern readwrite citybrain/%u/status
pattern readwrite citybrain/%u/state
pattern readwrite citybrain/%u/events
pattern readwrite citybrain/%u/telemetry
pattern read citybrain/%u/cmd
pattern readwrite citybrain/%u/cmd/response
pattern write citybrain/%u/outflow

user centre
topic readwrite citybrain/#

user hz-B
topic read citybrain/hz-A/outflow
"""


def _link(broker: MosquittoBroker, cn: str) -> LinkConfig:
    assert broker.tls_files is not None
    cert, key = issue_client_cert(broker.tls_files, cn)
    return LinkConfig.from_settings(
        settings(broker.tls_url, ca_file=broker.tls_files.ca_file, cert_file=cert, key_file=key),
        client_id=f"{cn}-probe",
    )


async def test_junction_a_cannot_publish_as_b_or_command_b(tmp_path: Path) -> None:
    with MosquittoBroker(tls=True, acl=ACL) as broker:
        async with open_link(_link(broker, "hz-A")) as a:
            await a.publish("citybrain/hz-A/status", b'{"online": true}')  # its own: fine
            await a.publish("citybrain/hz-A/events", b"{}")
            for topic in (
                "citybrain/hz-B/status",  # speak as B
                "citybrain/hz-B/state",
                "citybrain/hz-B/events",
                "citybrain/hz-B/cmd",  # command B
                "citybrain/hz-B/outflow",  # feed B's neighbours made-up traffic
                "citybrain/hz-A/cmd",  # command itself (only the centre commands)
            ):
                with pytest.raises(PublishRefused) as info:
                    await a.publish(topic, b"{}")
                assert info.value.reason_code == 0x87, topic  # not authorized
        async with open_link(_link(broker, "centre")) as centre:
            await centre.publish("citybrain/hz-B/cmd", b"{}")  # the centre may


async def test_a_junction_hears_only_the_neighbours_the_acl_allows(
    tmp_path: Path, handler: FakeHandler
) -> None:
    """hz-B may read hz-A's outflow but not hz-C's (mosquitto grants the subscription and
    filters the messages): hz-A's departures arrive, hz-C's never, and the link stays up."""
    with MosquittoBroker(tls=True, acl=ACL) as broker:
        assert broker.tls_files is not None
        cert, key = issue_client_cert(broker.tls_files, "hz-B")
        mqtt = settings(
            broker.tls_url, ca_file=broker.tls_files.ca_file, cert_file=cert, key_file=key
        )
        service = SyncService(
            mqtt,
            intersection_id="hz-B",
            state_dir=tmp_path,
            handler=handler,
            version="0.1.0-test",
            config_digest="sha256:abc",
            neighbours=[
                Neighbour(intersection=i, detectors=(2,), phase=4, travel_s=20.0)
                for i in ("hz-A", "hz-C")
            ],
        )
        async with running(service):
            await eventually(lambda: service.connected and service.metrics.published["status"] > 0)
            now = datetime.now(UTC)
            dep = {"detector": 2, "at": iso_ms(now)}
            body = json.dumps({"ts": iso_ms(now), "seq": 1, "departures": [dep]}).encode()
            for junction in ("hz-C", "hz-A"):  # hz-C's is through the broker first (PUBACK)
                async with open_link(_link(broker, junction)) as upstream:
                    await upstream.publish(f"citybrain/{junction}/outflow", body, qos=1)
            await eventually(lambda: service.inbox.pending()["hz-A"] == 1)
            assert service.inbox.pending()["hz-C"] == 0
            assert service.metrics.connects == 1, "the link was never dropped"


async def test_a_certificate_from_another_ca_is_refused(tmp_path: Path) -> None:
    from edgectl.testing.mosquitto import generate_tls

    other = generate_tls(tmp_path / "other-ca", client_cn="hz-A")
    with MosquittoBroker(tls=True, acl=ACL) as broker:
        assert broker.tls_files is not None
        cfg = LinkConfig.from_settings(
            settings(
                broker.tls_url,
                ca_file=broker.tls_files.ca_file,
                cert_file=other.client_cert,
                key_file=other.client_key,
            ),
            client_id="intruder",
        )
        with pytest.raises(SyncError):
            async with open_link(cfg):
                pass
