#!/usr/bin/env bash
# Set up everything voicebot needs on a fresh Debian machine, idempotently:
#   1. system packages (sipp, Kamailio with its TLS module, baresip, openssl, Chromium for the review-app tests,
#      qemu-user for the test of the int8 models on a CPU without VNNI),
#   2. a virtualenv in .venv with voicebot and its pinned dependencies (llama-cpp-python compiles once per
#      machine, portable, about 6 minutes on 2 cores, into ~/.cache/voicebot/llama-cpp),
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

APT_PACKAGES=(sip-tester kamailio kamailio-tls-modules baresip openssl chromium chromium-driver qemu-user)
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
export CMAKE_BUILD_PARALLEL_LEVEL=${CMAKE_BUILD_PARALLEL_LEVEL:-$(nproc 2>/dev/null || echo 2)}
.venv/bin/python -m pip install --disable-pip-version-check -q --upgrade "pip>=24" wheel

# llama.cpp, built portable: never -march=native. The build host's CPU must not decide the instructions: a
# library compiled on a CPU that advertises AMX or AVX-512 faults (SIGSEGV/SIGILL) on a machine of the same
# kind that cannot run them, and pip's own wheel cache is keyed by the sdist only, so it would hand such a
# wheel to the next machine. We build x86-64-v3 (AVX2, FMA, F16C, BMI2; no AVX-512, no AMX) with
# --no-cache-dir into voicebot's cache under a key made of the version and these flags, and install that
# file. On a CPU with AVX-512 (F, CD, VL, DQ, BW, VNNI) a second build with those (never AMX) goes beside it in
# llama_cpp/lib-avx512; voicebot uses it only if its check process runs (voicebot/native_check.py).
# See the README, "Portable llama.cpp", for the choice and the figures.
LLAMA_CPP_VERSION=$(sed -n 's/^llama[-_]cpp[-_]python==//ip' constraints.txt)
LLAMA_CPP_CACHE="${VOICEBOT_CACHE:-$HOME/.cache/voicebot}/llama-cpp"
LLAMA_CPP_COMMON="-DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_BMI2=ON \
-DGGML_AVX_VNNI=OFF"
LLAMA_CPP_TAIL="-DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF -DGGML_AMX_BF16=OFF -DGGML_BACKEND_DL=OFF -DGGML_CPU_ALL_VARIANTS=OFF \
-DLLAVA_BUILD=OFF"
LLAMA_CPP_CMAKE_ARGS="$LLAMA_CPP_COMMON -DGGML_AVX512=OFF -DGGML_AVX512_VBMI=OFF -DGGML_AVX512_VNNI=OFF -DGGML_AVX512_BF16=OFF \
$LLAMA_CPP_TAIL"
LLAMA_CPP_AVX512_ARGS="$LLAMA_CPP_COMMON -DGGML_AVX512=ON -DGGML_AVX512_VBMI=OFF -DGGML_AVX512_VNNI=ON -DGGML_AVX512_BF16=OFF \
$LLAMA_CPP_TAIL"
if [ "${VOICEBOT_REBUILD_LLAMA:-0}" = 1 ]; then  # asked for by the native-library check's error message
  rm -rf "$LLAMA_CPP_CACHE" .venv/.llama-cpp-build .venv/.llama-cpp-avx512
fi

llama_wheel() {  # NAME "CMAKE ARGS" "WHAT": the folder holding that build's wheel, built once per machine
  local key dir build_dir
  key=$(printf '%s %s %s' "$LLAMA_CPP_VERSION" "$(uname -m)" "$2" | sha256sum | cut -c1-12)
  dir="$LLAMA_CPP_CACHE/$LLAMA_CPP_VERSION-$1-$key"
  if ! ls "$dir"/llama_cpp_python-*.whl >/dev/null 2>&1; then
    say "building llama-cpp-python $LLAMA_CPP_VERSION, $3 (~6 min on 2 cores, once per machine)" >&2
    build_dir=$(mktemp -d)
    CMAKE_ARGS="$2" FORCE_CMAKE=1 .venv/bin/python -m pip wheel --disable-pip-version-check \
      --no-cache-dir --no-deps --no-binary llama-cpp-python -w "$build_dir" "llama-cpp-python==$LLAMA_CPP_VERSION" >&2
    mkdir -p "$dir"
    mv "$build_dir"/llama_cpp_python-*.whl "$dir"/ && rmdir "$build_dir"
  fi
  echo "$dir"
}

LLAMA_CPP_WHEELS=$(llama_wheel portable "$LLAMA_CPP_CMAKE_ARGS" "portable (x86-64-v3: AVX2, no AVX-512, no AMX)")
LLAMA_CPP_KEY=$(basename "$LLAMA_CPP_WHEELS")
if [ "$(cat .venv/.llama-cpp-build 2>/dev/null)" != "$LLAMA_CPP_KEY" ]; then
  say "installing the portable llama-cpp-python build $LLAMA_CPP_KEY"
  .venv/bin/python -m pip install --disable-pip-version-check -q --no-cache-dir --force-reinstall --no-deps \
    "$LLAMA_CPP_WHEELS"/llama_cpp_python-*.whl
  .venv/bin/python -m pip install --disable-pip-version-check -q -c constraints.txt \
    "llama-cpp-python==$LLAMA_CPP_VERSION" | grep -v "^Requirement already satisfied" || true
  echo "$LLAMA_CPP_KEY" > .venv/.llama-cpp-build
  rm -f .venv/.llama-cpp-avx512
fi
cpu_flags=" $(grep -m1 '^flags' /proc/cpuinfo 2>/dev/null | cut -d: -f2) "
has_avx512=1
for flag in avx512f avx512cd avx512vl avx512dq avx512bw avx512_vnni; do
  case "$cpu_flags" in *" $flag "*) ;; *) has_avx512=0 ;; esac
done
if [ "$has_avx512" = 1 ]; then
  LLAMA_CPP_AVX512=$(llama_wheel avx512 "$LLAMA_CPP_AVX512_ARGS" "AVX-512 variant (F/CD/VL/DQ/BW/VNNI, no AMX)")
  if [ "$(cat .venv/.llama-cpp-avx512 2>/dev/null)" != "$(basename "$LLAMA_CPP_AVX512")" ]; then
    say "placing the AVX-512 llama.cpp variant beside the portable one"
    .venv/bin/python - "$LLAMA_CPP_AVX512" <<'PY'
import pathlib, shutil, sys, sysconfig, zipfile
wheel = next(pathlib.Path(sys.argv[1]).glob("llama_cpp_python-*.whl"))
target = pathlib.Path(sysconfig.get_paths()["purelib"]) / "llama_cpp" / "lib-avx512"
shutil.rmtree(target, ignore_errors=True)
target.mkdir(parents=True)
with zipfile.ZipFile(wheel) as zf:
    for name in zf.namelist():
        if name.startswith("llama_cpp/lib/") and not name.endswith("/"):
            (target / pathlib.Path(name).name).write_bytes(zf.read(name))
PY
    basename "$LLAMA_CPP_AVX512" > .venv/.llama-cpp-avx512
  fi
fi

say "installing voicebot and its dependencies"
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
