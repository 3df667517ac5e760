"""The broker options of the centre-side tools (``edgectl cmd``, ``edgectl watch``) and the
client they make: one place, so both connect and refuse credentials the same way."""

from __future__ import annotations

import argparse
from pathlib import Path

import aiomqtt

from edgectl.config.settings import MqttProtocol
from edgectl.sync.link import cli_client


def add_broker_arguments(parser: argparse.ArgumentParser) -> None:
    """``--mqtt-version``, TLS files, credential files, ``--allow-plaintext-password``."""
    parser.add_argument("--mqtt-version", choices=("5", "3.1.1"), default="5")
    parser.add_argument("--ca-file", type=Path, help="CA certificate (TLS)")
    parser.add_argument("--cert-file", type=Path, help="client certificate (TLS)")
    parser.add_argument("--cert-key-file", type=Path, help="client certificate's key (TLS)")
    parser.add_argument("--username-file", type=Path)
    parser.add_argument("--password-file", type=Path)
    parser.add_argument(
        "--allow-plaintext-password",
        action="store_true",
        help="send the password even over plain mqtt:// (in clear)",
    )


def broker_client(args: argparse.Namespace, *, timeout: float | None = None) -> aiomqtt.Client:
    """The client for ``--broker`` and the options of :func:`add_broker_arguments`."""
    return cli_client(
        args.broker,
        protocol=MqttProtocol(args.mqtt_version),
        ca_file=args.ca_file,
        cert_file=args.cert_file,
        key_file=args.cert_key_file,
        username_file=args.username_file,
        password_file=args.password_file,
        allow_plaintext_password=args.allow_plaintext_password,
        timeout=timeout,
    )
