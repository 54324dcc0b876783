#!/usr/bin/env bash
# Set up everything voicebot needs on a fresh Debian machine, idempotently:
#   1. system packages (sipp, Kamailio, Chromium for the review-app tests),
#   2. a virtualenv in .venv with voicebot and its pinned dependencies (llama-cpp-python compiles once,
#      about 7 minutes on 2 cores; pip caches the wheel for later runs),
#   3. the configured models, pulled and verified (cached under ~/.cache/voicebot, about 1.5 GB),
#   4. the demo CRM in data/crm.db when there is none yet.
# Safe to rerun: each step skips what is already done.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }
PYTHON=${PYTHON:-python3.11}
command -v "$PYTHON" >/dev/null 2>&1 || PYTHON=python3
"$PYTHON" - <<'PY' || { echo "voicebot needs Python >= 3.11 (found $("$PYTHON" --version 2>&1))" >&2; exit 1; }
import sys; sys.exit(sys.version_info < (3, 11))
PY

APT_PACKAGES=(sip-tester kamailio chromium chromium-driver)
missing=()
for pkg in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
  say "installing system packages: ${missing[*]}"
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

if [ ! -x .venv/bin/python ]; then
  say "creating the virtualenv .venv"
  "$PYTHON" -m venv .venv
fi
say "installing voicebot and its dependencies (first run compiles llama-cpp-python, ~7 min)"
export CMAKE_BUILD_PARALLEL_LEVEL=${CMAKE_BUILD_PARALLEL_LEVEL:-2}
.venv/bin/python -m pip install --disable-pip-version-check -q --upgrade "pip>=24" wheel
.venv/bin/python -m pip install --disable-pip-version-check --progress-bar on -c constraints.txt -e ".[dev]" \
  | grep -v "^Requirement already satisfied" || true
.venv/bin/python -c "import voicebot, llama_cpp, faster_whisper, piper, pjsua2, webrtcvad" \
  || { echo "the Python install is incomplete; see the pip output above" >&2; exit 1; }

say "pulling and verifying the configured models"
.venv/bin/voicebot check-config config.yaml
.venv/bin/voicebot models pull
if [ ! -f data/crm.db ]; then
  say "creating the demo CRM (Northwind Supplies) in data/crm.db"
  .venv/bin/voicebot crm seed >/dev/null
fi
say "setup done"
