#!/usr/bin/env bash
# Set up (scripts/setup.sh), then lint, type-check, check the import layers
# (docs/architecture.md) and run the default test suite.
# Extra arguments go to pytest (e.g. scripts/test.sh -m long).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
.venv/bin/python -m ruff check .
.venv/bin/python -m ruff format --check .
.venv/bin/python -m mypy
.venv/bin/lint-imports --no-cache
.venv/bin/python -m pytest "$@"
