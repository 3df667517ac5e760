#!/usr/bin/env bash
# Set up (scripts/setup.sh, no test-only system packages), then run the demo:
# the cabinet emulator, an embedded MQTT broker and the daemon, with a live view.
# Arguments go to `edgectl demo` (e.g. scripts/demo.sh --duration 60).
set -euo pipefail
cd "$(dirname "$0")/.."
EDGECTL_SYSTEM_PACKAGES=0 EDGECTL_EXTRAS=demo scripts/setup.sh
exec .venv/bin/edgectl demo "$@"
