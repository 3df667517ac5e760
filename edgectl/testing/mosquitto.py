"""A real Mosquitto broker for tests, started from Debian's ``/usr/sbin/mosquitto``.

:class:`MosquittoBroker` writes a config into a private temporary directory, binds a free
loopback port (and optionally a unix socket and a TLS listener whose CA, server and client
certificates are generated on the fly with the ``openssl`` CLI), waits until the broker
accepts connections, and kills it by PID on exit. ``stop()`` / ``start()`` restart it on the
SAME port, which is what outage tests need::

    with MosquittoBroker(tls=True, acl="topic readwrite #\\n") as broker:
        url = broker.url            # mqtt://127.0.0.1:PORT
        broker.stop(); ...; broker.start()

The process handling (start, wait for the ports, stop by PID, restart, the context managers)
is :class:`edgectl.testing.broker.BrokerProcess`. :func:`mosquitto_available` tells a fixture
whether to skip.
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from edgectl.testing.broker import BrokerProcess, free_port, port_accepts

__all__ = [
    "MOSQUITTO",
    "SKIP_REASON",
    "MosquittoBroker",
    "TlsFiles",
    "free_port",
    "generate_tls",
    "issue_client_cert",
    "mosquitto_available",
    "which_mosquitto_passwd",
]

MOSQUITTO = Path("/usr/sbin/mosquitto")
MOSQUITTO_PASSWD = "mosquitto_passwd"  # noqa: S105 - a program name
SKIP_REASON = "mosquitto is not installed (/usr/sbin/mosquitto); run the project's setup script"


def mosquitto_available() -> bool:
    return MosquittoBroker.available()


@dataclass(frozen=True, slots=True)
class TlsFiles:
    """Certificates generated for a TLS listener (PEM files)."""

    ca_file: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=60)


def _sign(d: Path, stem: str, cn: str, extfile: str) -> None:
    """A key and a certificate for ``cn`` signed by the CA in ``d``: ``stem.key``/``stem.crt``."""
    _openssl(
        "req", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN={cn}",
        "-keyout", f"{stem}.key", "-out", f"{stem}.csr", cwd=d,
    )  # fmt: skip
    _openssl(
        "x509", "-req", "-in", f"{stem}.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
        "-CAcreateserial", "-days", "2", "-extfile", extfile, "-out", f"{stem}.crt", cwd=d,
    )  # fmt: skip


def generate_tls(directory: Path, *, client_cn: str = "edgectl-test") -> TlsFiles:
    """A throw-away CA, a server cert for 127.0.0.1/localhost and a client cert, by ``openssl``."""
    d = directory
    d.mkdir(parents=True, exist_ok=True)
    _openssl(
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-days",
        "2",
        "-subj",
        "/CN=edgectl test CA",
        "-keyout",
        "ca.key",
        "-out",
        "ca.crt",
        cwd=d,
    )
    (d / "server.ext").write_text(
        "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n"
    )
    (d / "client.ext").write_text("extendedKeyUsage=clientAuth\n")
    _sign(d, "server", "localhost", "server.ext")
    _sign(d, "client", client_cn, "client.ext")
    return TlsFiles(
        ca_file=d / "ca.crt",
        server_cert=d / "server.crt",
        server_key=d / "server.key",
        client_cert=d / "client.crt",
        client_key=d / "client.key",
    )


def issue_client_cert(tls: TlsFiles, cn: str) -> tuple[Path, Path]:
    """Another client certificate from the same throw-away CA: ``(cert, key)`` for ``cn``.

    With ``use_identity_as_username`` the broker sees ``cn`` as the username, so per-junction
    ACLs (``pattern … citybrain/%u/…``) can be tested with one certificate per junction.
    """
    d = tls.ca_file.parent
    safe = "".join(c if c.isalnum() or c in "-_" else "_" for c in cn)
    _sign(d, f"client-{safe}", cn, "client.ext")
    return d / f"client-{safe}.crt", d / f"client-{safe}.key"


class MosquittoBroker(BrokerProcess):
    """One mosquitto process on its own loopback port(s) with a generated configuration.

    - ``tls``: add a TLS listener (``tls_port``) requiring a client certificate signed by the
      generated CA (``tls_files``); the client's CN becomes its username.
    - ``unix_socket``: add a unix-socket listener (``socket_path``).
    - ``acl``: the text of an ACL file (mosquitto syntax).
    - ``users``: username → password; anonymous access is then refused.
    - ``persistence``: keep sessions, subscriptions and queued QoS 1 messages across
      ``stop()``/``start()`` (a persistent consumer then misses nothing during an outage).
    """

    program: ClassVar[Path] = MOSQUITTO
    skip_reason: ClassVar[str] = SKIP_REASON
    config_name: ClassVar[str] = "mosquitto.conf"
    log_name: ClassVar[str] = "mosquitto.log"

    def __init__(
        self,
        *,
        tls: bool = False,
        unix_socket: bool = False,
        acl: str | None = None,
        users: dict[str, str] | None = None,
        persistence: bool = False,
        start_timeout: float = 10.0,
    ) -> None:
        super().__init__(start_timeout=start_timeout)
        self._persistence = persistence
        self._tls = tls
        self._unix = unix_socket
        self._acl = acl
        self._users = dict(users or {})
        self.tls_port = 0
        self.tls_files: TlsFiles | None = None

    # --- paths and URLs ---

    @property
    def socket_path(self) -> Path:
        return self.directory / "mqtt.sock"

    @property
    def tls_url(self) -> str:
        return f"mqtts://127.0.0.1:{self.tls_port}"

    @property
    def unix_url(self) -> str:
        return f"unix://{self.socket_path}"

    # --- configuration ---

    def _configure(self, directory: Path) -> None:
        d = directory
        self.port = free_port()
        lines = [
            # stay the current user (as root, mosquitto would switch to "mosquitto" and lose
            # access to this private directory)
            f"user {pwd.getpwuid(os.getuid()).pw_name}",
            "per_listener_settings false",
            "log_dest stderr",
            "log_type all",
            "connection_messages true",
            "max_queued_messages 100000",
            f"listener {self.port} 127.0.0.1",
        ]
        if self._persistence:
            lines[1:1] = ["persistence true", f"persistence_location {d}/", "autosave_interval 1"]
        else:
            lines[1:1] = ["persistence false"]
        if self._unix:
            lines += [f"listener 0 {self.socket_path}"]
        if self._tls:
            self.tls_files = generate_tls(d / "tls")
            self.tls_port = free_port()
            tf = self.tls_files
            lines += [
                f"listener {self.tls_port} 127.0.0.1",
                f"cafile {tf.ca_file}",
                f"certfile {tf.server_cert}",
                f"keyfile {tf.server_key}",
                "require_certificate true",
                "use_identity_as_username true",
            ]
        if self._users:
            pw = d / "passwd"
            pw.write_text("")
            for user, password in self._users.items():
                subprocess.run(
                    [MOSQUITTO_PASSWD, "-b", str(pw), user, password],
                    check=True,
                    capture_output=True,
                    timeout=30,
                )
            pw.chmod(0o600)
            lines += [f"password_file {pw}", "allow_anonymous false"]
        else:
            lines += ["allow_anonymous true"]
        if self._acl is not None:
            acl = d / "acl"
            acl.write_text(self._acl)
            acl.chmod(0o600)
            lines += [f"acl_file {acl}"]
        (d / self.config_name).write_text("\n".join(lines) + "\n")

    def _accepts(self) -> bool:
        ports = [self.port] + ([self.tls_port] if self._tls else [])
        if not all(port_accepts(port) for port in ports):
            return False
        if self._unix:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
                try:
                    s.connect(str(self.socket_path))
                except OSError:
                    return False
        return True


def which_mosquitto_passwd() -> str | None:
    return shutil.which(MOSQUITTO_PASSWD)
