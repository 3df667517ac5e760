"""``edgectl init [--example NAME] [--profile builtin:NAME] [--secrets-dir DIR] [--force]
[PATH]``: a production configuration to start from.

Writes one commented TOML file: the junction of a packaged example (``eight_phase``, the
standard NEMA dual-ring four-arm junction, or ``two_phase``), then the sections a cabinet
needs in production — ``[field]`` (the cabinet's Modbus device with its register-map
profile), ``[mqtt]`` (TLS to the centre, credentials and the command key read from files,
outbox bounds) and ``[daemon]`` (state directory, metrics, log level). The addresses in it
are placeholders (TEST-NET and ``example.net``) to replace. ``edgectl check-config`` accepts it
without a warning once the four files it names under ``--secrets-dir`` (default
``/etc/edgectl``: ``mqtt-ca.pem``, ``mqtt-username``, ``mqtt-password``, ``command.key``)
exist — check-config, like the daemon, reads them (a missing one is an error). ``PATH``
defaults to ``edgectl.toml``; ``-`` writes to stdout. An existing file is never overwritten
without ``--force``.

    edgectl init /etc/edgectl/edgectl.toml
    edgectl init --example two_phase - | less
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from edgectl.commands.examples import DEFAULT_EXAMPLE, EXAMPLES, example_text

DEFAULT_PATH = "edgectl.toml"
DEFAULT_SECRETS_DIR = "/etc/edgectl"
#: the files [mqtt] names, under --secrets-dir
SECRET_FILES = {
    "ca_file": "mqtt-ca.pem",
    "username_file": "mqtt-username",
    "password_file": "mqtt-password",
    "command_key_file": "command.key",
}

HEADER = """\
# edgectl configuration, written by `edgectl init` (edgectl {version}) from the packaged
# example junction "{example}" and the cabinet profile {profile}.
#
# Replace the junction below with yours (docs/configuration.md lists every key), and the
# placeholder addresses and files of [field], [mqtt] and [daemon] with the cabinet's. Check
# every change before a start or a reload:
#
#     edgectl check-config {path}
#
# Every key can also be set from the environment, EDGECTL_<SECTION>__<KEY>, e.g.
# EDGECTL_MQTT__URL=mqtts://broker:8883 (the unit file sets EDGECTL_DAEMON__STATE_DIR).

"""

PRODUCTION = """

# =============================================================================================
# Production: the cabinet, the centre, the daemon.
# =============================================================================================

[field]
# Control tick (s): 0.1 = 10 Hz, what the timing plans above assume.
tick = 0.1
# A detector device silent this long (s) marks its detectors failed (fail-safe calls).
detector_loss_s = 1.0

# The cabinet: detectors, load switches and the MMU in one Modbus device. Modbus TCP:
#   url = "modbus+tcp://HOST:502?unit=1"
# or Modbus RTU on RS-485 (the unit allows /dev/ttyS*, ttyUSB*, ttyACM*, ttyAMA*):
#   url = "modbus+rtu:///dev/ttyUSB0?baudrate=115200&unit=1"
[[field.devices]]
name = "cabinet"
url = "modbus+tcp://192.0.2.10:502?unit=1"
role = "cabinet"
# The register map and wiring of the cabinet: builtin:NAME or the path of a profile TOML.
profile = "{profile}"
# Per-request timeout (s) and retries: a 10 Hz loop has 100 ms for a read and a write.
timeout = 0.08
retries = 1

[mqtt]
# The centre's broker: TLS (mqtts://) in production; "" turns the link off.
url = "mqtts://broker.example.net:8883"
prefix = "citybrain"
protocol = "5"
keepalive = 30
# Secrets are never written here: each is read from its own file (owner root, group
# edgectl, mode 0640). check-config and the daemon refuse a missing, empty or
# world-readable one.
ca_file = "{secrets}/mqtt-ca.pem"
username_file = "{secrets}/mqtt-username"
password_file = "{secrets}/mqtt-password"
# Client-certificate authentication instead of a password:
#   cert_file = "{secrets}/mqtt-client.pem"
#   key_file = "{secrets}/mqtt-client.key"
# HMAC-SHA256 key (at least 32 bytes) the centre signs commands with (docs/mqtt.md), e.g.
#   head -c 32 /dev/urandom | base64 > {secrets}/command.key
command_key_file = "{secrets}/command.key"
command_max_age_s = 60.0
# Store-and-forward while the centre is unreachable: the outbox under state_dir keeps at
# most this many messages, none older than this (the oldest go first).
outbox_max_rows = 100000
outbox_max_age_s = 604800.0
# The event log for `edgectl export-events` (ATSPM CSV): 7 days, at most 5 million events.
event_log_max_age_s = 604800.0
event_log_max_rows = 5000000

[daemon]
# Outbox, sequence numbers and the event log. systemd's StateDirectory= creates it.
state_dir = "/var/lib/edgectl"
# Prometheus metrics (host:port); "" turns them off.
metrics_listen = "127.0.0.1:9108"
log_level = "info"
# Per-component levels, e.g. log_levels = {{ field = "debug" }}
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "path",
        nargs="?",
        default=DEFAULT_PATH,
        metavar="PATH",
        help=f"where to write it (default {DEFAULT_PATH}; '-' = stdout)",
    )
    parser.add_argument(
        "--example",
        choices=sorted(EXAMPLES),
        default=DEFAULT_EXAMPLE,
        help=f"the junction to start from (default {DEFAULT_EXAMPLE})",
    )
    parser.add_argument(
        "--profile",
        metavar="builtin:NAME",
        help="cabinet profile of the field device (default: the one the example is wired for)",
    )
    parser.add_argument(
        "--secrets-dir",
        default=DEFAULT_SECRETS_DIR,
        metavar="DIR",
        help=f"where [mqtt]'s CA, credentials and command key live (default {DEFAULT_SECRETS_DIR})",
    )
    parser.add_argument("--force", action="store_true", help="overwrite an existing PATH")


def render(
    example: str = DEFAULT_EXAMPLE,
    profile: str | None = None,
    path: str = "",
    secrets_dir: str = DEFAULT_SECRETS_DIR,
) -> str:
    """The text ``edgectl init`` writes (``path`` only appears in the header's advice)."""
    from edgectl import __version__

    chosen = profile or EXAMPLES[example]
    header = HEADER.format(
        version=__version__, example=example, profile=chosen, path=path or DEFAULT_PATH
    )
    production = PRODUCTION.format(profile=chosen, secrets=secrets_dir.rstrip("/") or "")
    return header + example_text(example).rstrip("\n") + "\n" + production


def profile_errors(example: str, profile: str) -> list[str]:
    """What is wrong with ``profile`` for the junction of ``example``: the very check
    ``check-config`` makes of a field device's profile (a v1 register map, or a v2 profile
    also against the junction's channels and detectors), errors only."""
    from edgectl.cabinet.fieldcheck import (
        device_profile_problems,
        field_zones,
        zone_config_problems,
    )
    from edgectl.config.loader import check_config_text

    config, _ = check_config_text(example_text(example), environ={})
    channels = [] if config is None else [c.id for c in config.channels]
    detectors = [] if config is None else [d.id for d in config.detectors]
    problems = device_profile_problems(
        profile, where="--profile", channels=channels, detectors=detectors
    )
    mapped = field_zones(profile)
    if mapped:  # zone sensors need the junction's [[zones]], which the examples written here lack
        zones = {} if config is None else {z.id: z.max_objects for z in config.zones}
        problems += zone_config_problems("--profile", profile, mapped, zones, extra_only=True)
    return [p.message for p in problems if p.severity == "error"]


def run(args: argparse.Namespace) -> int:
    if args.profile is not None:
        errors = profile_errors(args.example, args.profile)
        for message in errors:
            print(f"edgectl init: --profile {args.profile}: {message}", file=sys.stderr)
        if errors:
            return 2
    to_stdout = args.path == "-"
    if not Path(args.secrets_dir).is_absolute() or '"' in args.secrets_dir:
        print("edgectl init: --secrets-dir must be an absolute path", file=sys.stderr)
        return 2
    text = render(args.example, args.profile, "" if to_stdout else args.path, args.secrets_dir)
    if to_stdout:
        sys.stdout.write(text)
        return 0
    target = Path(args.path)
    try:
        with target.open("w" if args.force else "x", encoding="utf-8") as fh:
            fh.write(text)
    except FileExistsError:
        print(f"edgectl init: {target} exists (use --force to overwrite it)", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"edgectl init: cannot write {target}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    print(f"wrote {target}; check it with: edgectl check-config {target}")
    return 0
