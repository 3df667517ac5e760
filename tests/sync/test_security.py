"""Per-junction ACLs with client certificates: junction A can neither speak as junction B
nor command it, and the daemon's link reports the refusal instead of losing it silently."""

from __future__ import annotations

from pathlib import Path

import pytest

from edgectl.errors import PublishRefused, SyncError
from edgectl.sync.link import LinkConfig, open_link
from edgectl.testing.mosquitto import (
    SKIP_REASON,
    MosquittoBroker,
    issue_client_cert,
    mosquitto_available,
)
from tests.sync.conftest import settings

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

user centre
topic readwrite citybrain/#
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
                "citybrain/hz-A/cmd",  # command itself (only the centre commands)
            ):
                with pytest.raises(PublishRefused) as info:
                    await a.publish(topic, b"{}")
                assert info.value.reason_code == 0x87, topic  # not authorized
        async with open_link(_link(broker, "centre")) as centre:
            await centre.publish("citybrain/hz-B/cmd", b"{}")  # the centre may


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
