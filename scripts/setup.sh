#!/usr/bin/env bash
# Set up everything edgectl needs on a fresh Debian machine with Python >= 3.11:
# a virtualenv in .venv with the package (extras: dev, demo, report, sumo) at the versions of
# constraints.txt (what the tests ran), and, for the tests, Debian's mosquitto and nats-server
# (installed with apt when missing and we are root). Idempotent: a second run only checks.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
EXTRAS=${EDGECTL_EXTRAS:-dev,demo,report,sumo}
SYSTEM_PACKAGES=${EDGECTL_SYSTEM_PACKAGES:-1}

apt_install() {
    if [ "$(id -u)" != 0 ]; then
        echo "setup: please install: $* (sudo apt-get install $*)" >&2
        return 0
    fi
    if [ -z "${_APT_UPDATED:-}" ]; then
        apt-get update -qq
        _APT_UPDATED=1
    fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

if ! "$PYTHON" -c 'import sys; assert sys.version_info >= (3, 11)' 2>/dev/null; then
    echo "setup: Python >= 3.11 is required ($PYTHON)" >&2
    exit 1
fi
if [ ! -x .venv/bin/python ]; then
    if ! "$PYTHON" -m venv .venv 2>/dev/null; then
        rm -rf .venv
        apt_install python3-venv
        "$PYTHON" -m venv .venv
    fi
fi
stamp=.venv/.edgectl-installed
want="$(cat pyproject.toml constraints.txt | sha256sum | cut -c1-16)-$EXTRAS"
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    .venv/bin/python -m pip install -q --disable-pip-version-check --upgrade pip
    .venv/bin/python -m pip install -q --disable-pip-version-check -c constraints.txt \
        -e ".[$EXTRAS]"
    echo "$want" > "$stamp"
fi

if [ "$SYSTEM_PACKAGES" = 1 ]; then
    need=()
    [ -x /usr/sbin/mosquitto ] || command -v mosquitto >/dev/null 2>&1 || need+=(mosquitto)
    [ -x /usr/sbin/nats-server ] || command -v nats-server >/dev/null 2>&1 || need+=(nats-server)
    command -v openssl >/dev/null 2>&1 || need+=(openssl)
    # the real-systemd container test (tests/package/test_systemd_container.py)
    [ -x /usr/bin/systemd-nspawn ] || need+=(systemd-container)
    [ -x /usr/sbin/debootstrap ] || need+=(debootstrap)
    # kernel-made packet loss in a network namespace (tests/soak/test_netns_faults.py)
    [ -x /usr/sbin/nft ] || need+=(nftables)
    # Modbus stacks that are not pymodbus: an independent master and libmodbus (C) for a
    # gateway the interop tests compile (tests/sim/test_mbpoll.py, tests/field/test_interop.py)
    command -v mbpoll >/dev/null 2>&1 || need+=(mbpoll)
    [ -f /usr/include/modbus/modbus.h ] || need+=(libmodbus-dev)
    command -v gcc >/dev/null 2>&1 || need+=(gcc)
    if [ ${#need[@]} -gt 0 ]; then
        apt_install "${need[@]}"
    fi
fi
