#!/usr/bin/env bash
# Quick start 2: set everything up, then run the whole test suite through the real models, sipp and Chromium.
# Extra arguments go to pytest (e.g. scripts/test.sh -k config).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
mkdir -p test-artifacts
exec .venv/bin/python -m pytest "$@"
