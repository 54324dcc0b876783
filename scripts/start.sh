#!/usr/bin/env bash
# Quick start 1: set everything up, then start the bot on its embedded defaults.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
exec .venv/bin/voicebot serve "$@"
