#!/usr/bin/env bash
# Quick start 2: set everything up, then run the whole test suite through the real models, sipp, Chromium and real
# recordings.
# Extra arguments go to pytest (e.g. scripts/test.sh -k config).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
.venv/bin/python scripts/pull_recordings.py  # recorded street, train and crowd noise and a human voice (Debian)
mkdir -p test-artifacts
exec .venv/bin/python -m pytest "$@"
