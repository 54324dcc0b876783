"""Checks, in a child process, that each native model library runs on this CPU before the bot trusts it.

Why: llama.cpp, CTranslate2 (Whisper) and ONNX Runtime (Piper) are compiled code. A build made for another
CPU (``-march=native`` on a host with AVX-512 or AMX, or a VM that advertises AMX but never enables its tile
state) does not raise an exception: it kills the process with SIGSEGV or SIGILL at the first instruction it
cannot run, which in ``voicebot serve`` means a Python fatal-error dump and no call answered. So before the
parent process loads a library, a throwaway child loads the model and runs it briefly (a few tokens, a
transcription of silence, one synthesised word). A crash there becomes one sentence naming the model, the
signal and the fix; the parent never touches the faulty code.

The verdict is cached per library build, CPU and model (paths, sizes and modification times of the shared
objects, the CPU's flags, the model file), so the check costs a few seconds once and nothing afterwards.
Only passes and crashes by signal are cached: an ordinary error (a damaged model file, no memory) is reported
but checked again next time.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import logging
import os
import resource
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from voicebot.fileio import write_text_atomic
from voicebot.models import ModelError

log = logging.getLogger(__name__)

PROBE_VERSION = "1"
REBUILD_FIX = ("rebuild it portable with `VOICEBOT_REBUILD_LLAMA=1 scripts/setup.sh` "
               "(see the README, \"Portable llama.cpp\")")
REINSTALL_FIX = "reinstall the Python packages with `rm -rf .venv && scripts/setup.sh`"


class NativeLibraryError(ModelError):
    """A native model library crashed or failed in its check process; the message is one line."""


@dataclass(frozen=True)
class Probe:
    """One native library to try: which component, which model file, how to fix a crash."""

    kind: str            # "llama" | "whisper" | "piper" | "embed": what the child process runs
    component: str       # "language model"
    model: str           # the manifest name, e.g. "qwen2.5-coder-1.5b"
    library: str         # "llama.cpp (llama-cpp-python)"
    packages: tuple[str, ...]  # import names whose shared objects make up the build
    model_path: Path
    fix: str
    threads: int = 2
    lib_dir: Path | None = None  # llama.cpp only: a build variant's folder (LLAMA_CPP_LIB_PATH) instead of the default

    def describe(self) -> str:
        return f"{self.library}, {self.lib_dir.name} build" if self.lib_dir else self.library


@dataclass(frozen=True)
class Verdict:
    ok: bool
    message: str = ""
    checked_s: float = 0.0
    cached: bool = False


def _package_dirs(package: str) -> list[Path]:
    """The folders a package's shared objects live in, found without importing it (importing loads them)."""
    spec = importlib.util.find_spec(package)
    if spec is None:
        return []
    dirs = [Path(p) for p in (spec.submodule_search_locations or [])]
    if spec.origin and not dirs:
        dirs = [Path(spec.origin).parent]
    extra = [d.parent / f"{package}.libs" for d in dirs]  # auditwheel puts vendored libraries here
    if package == "llama_cpp" and os.environ.get("LLAMA_CPP_LIB_PATH"):
        extra.append(Path(os.environ["LLAMA_CPP_LIB_PATH"]))
    return dirs + [d for d in extra if d.is_dir()]


def library_files(packages: Sequence[str]) -> list[Path]:
    files: list[Path] = []
    for package in packages:
        for folder in _package_dirs(package):
            files.extend(sorted(p for p in folder.rglob("*.so*") if p.is_file()))
    return files


def _cpu_flags() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith(("flags", "Features")):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return os.uname().machine


def probe_key(probe: Probe) -> str:
    """Identifies one library build on one CPU with one model: a change to any of them checks again."""
    digest = hashlib.sha256(f"{PROBE_VERSION}\n{probe.kind}\n{sys.version}\n{_cpu_flags()}\n{probe.lib_dir}\n".encode())
    extra = sorted(p for p in probe.lib_dir.glob("*.so*") if p.is_file()) if probe.lib_dir else []
    for path in [*library_files(probe.packages), *extra, probe.model_path]:
        try:
            st = path.stat()
        except OSError:
            continue
        digest.update(f"{path.resolve()} {st.st_size} {st.st_mtime_ns}\n".encode())
    return f"{probe.kind}-{digest.hexdigest()[:20]}"


class VerdictCache:
    """A small JSON file of key -> verdict, written atomically (a torn write only costs a re-check)."""

    def __init__(self, path: Path, keep: int = 32):
        self.path = path
        self.keep = keep

    def _read(self) -> dict[str, dict]:
        try:
            data = json.loads(self.path.read_text())
            return data if isinstance(data, dict) else {}
        except (OSError, ValueError):
            return {}

    def get(self, key: str) -> Verdict | None:
        entry = self._read().get(key)
        if not isinstance(entry, dict):
            return None
        return Verdict(bool(entry.get("ok")), str(entry.get("message", "")), float(entry.get("checked_s", 0)),
                       cached=True)

    def put(self, key: str, verdict: Verdict) -> None:
        data = self._read()
        while len(data) >= self.keep:  # old builds' verdicts: drop the oldest
            data.pop(min(data, key=lambda k: str(data[k].get("at", "")) if isinstance(data[k], dict) else ""))
        data[key] = {"ok": verdict.ok, "message": verdict.message, "checked_s": round(verdict.checked_s, 2),
                     "at": time.strftime("%Y-%m-%dT%H:%M:%S")}
        try:
            write_text_atomic(self.path, json.dumps(data, indent=1, sort_keys=True))
        except OSError:
            pass  # a read-only cache only means the check runs again next time


def _no_core_dump() -> None:  # runs in the child before exec
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


def _signal_text(number: int) -> str:
    try:
        sig = signal.Signals(number)
    except ValueError:
        return f"signal {number}"
    return f"{sig.name} ({signal.strsignal(sig) or sig.name})".replace(" (Segmentation fault)",
                                                                         " (segmentation fault)")


def run_probe(probe: Probe, timeout_s: float = 180.0,
              command: Sequence[str] | None = None) -> Verdict:
    """Run the probe in a child process and turn its end into a verdict. ``command`` replaces the child's
    command line (tests use it to stand in a process that crashes)."""
    argv = list(command) if command is not None else [
        sys.executable, "-m", "voicebot.native_check", probe.kind, str(probe.model_path), str(probe.threads)]
    env = {k: v for k, v in os.environ.items() if k != "PYTHONFAULTHANDLER"}
    if probe.lib_dir is not None:
        env["LLAMA_CPP_LIB_PATH"] = str(probe.lib_dir)
    started = time.perf_counter()
    try:
        done = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, text=True, errors="replace",
                              timeout=timeout_s, env=env, preexec_fn=_no_core_dump)
    except subprocess.TimeoutExpired:
        return Verdict(False, f"the {probe.component} ({probe.model}) did not finish its {probe.library} check "
                              f"in {timeout_s:.0f} s; the machine may be overloaded or out of memory")
    elapsed = time.perf_counter() - started
    if done.returncode == 0:
        return Verdict(True, checked_s=elapsed)
    if done.returncode < 0:
        return Verdict(False, f"the {probe.component} ({probe.model}) crashed {probe.describe()} with "
                              f"{_signal_text(-done.returncode)} in a check process, so the bot did not start: "
                              f"this build cannot run on this CPU; fix: {probe.fix}", checked_s=elapsed)
    lines = [line for line in (done.stderr or "").strip().splitlines() if line.strip()]
    last = lines[-1].strip() if lines else f"exit code {done.returncode}"
    return Verdict(False, f"the {probe.component} ({probe.model}) failed its {probe.library} check: {last}",
                   checked_s=elapsed)


def check(probes: Sequence[Probe], cache_path: Path,
          on_probe: Callable[[Probe, Verdict], None] | None = None,
          run: Callable[[Probe], Verdict] = run_probe) -> list[Verdict]:
    """Check each probe (from the cache when this build, CPU and model passed before). Raises
    NativeLibraryError with a one-line message at the first failure."""
    cache = VerdictCache(cache_path)
    verdicts = []
    for probe in probes:
        key = probe_key(probe)
        verdict = cache.get(key)
        if verdict is None:
            verdict = run(probe)
            crashed = "crashed" in verdict.message
            if verdict.ok or crashed:
                cache.put(key, verdict)
        if on_probe:
            on_probe(probe, verdict)
        verdicts.append(verdict)
        if not verdict.ok:
            raise NativeLibraryError(verdict.message)
    return verdicts


# -- llama.cpp build variants ---------------------------------------------------------------------------------

# scripts/setup.sh builds llama.cpp twice where the CPU allows: the portable default (x86-64-v3, AVX2) in the
# package's lib/, and an AVX-512 variant (F, CD, VL, DQ, BW and VNNI; never AMX) in lib-avx512/, which is about
# 15% faster at reading prompts. The variant is tried first only when the CPU reports every one of its
# instruction sets, and only if its check process survives; otherwise the portable build is used.
AVX512_VARIANT = "lib-avx512"
AVX512_FLAGS = frozenset({"avx512f", "avx512cd", "avx512vl", "avx512dq", "avx512bw", "avx512_vnni"})


def llama_variants() -> list[Path | None]:
    """Library folders to try for llama.cpp, best first; None is the package's own (portable) lib/."""
    if os.environ.get("LLAMA_CPP_LIB_PATH") or "llama_cpp" in sys.modules:
        return [None]  # chosen by the admin, or loaded already: nothing to choose
    dirs = _package_dirs("llama_cpp")
    variant = dirs[0] / AVX512_VARIANT if dirs else None
    if variant is not None and (variant / "libllama.so").is_file() and AVX512_FLAGS <= set(_cpu_flags().split()):
        return [variant, None]
    return [None]


def check_llama(probe: Probe, cache_path: Path, run: Callable[[Probe], Verdict] = run_probe,
                variants: Sequence[Path | None] | None = None) -> Verdict:
    """Check llama.cpp's variants best first and use the first that runs (``LLAMA_CPP_LIB_PATH`` is set for this
    process before llama_cpp is imported). A crashing variant falls back to the next with a log line; only when
    the last one fails is NativeLibraryError raised."""
    choices = list(variants if variants is not None else llama_variants())
    for i, lib_dir in enumerate(choices):
        candidate = replace(probe, lib_dir=lib_dir)
        try:
            [verdict] = check([candidate], cache_path, run=run)
        except NativeLibraryError as exc:
            if i == len(choices) - 1:
                raise
            log.warning("llama.cpp's %s build failed its check on this CPU, so the next build is used (%s)",
                        lib_dir.name if lib_dir else "default", exc)
            continue
        if lib_dir is not None:
            os.environ["LLAMA_CPP_LIB_PATH"] = str(lib_dir)
        return verdict
    raise NativeLibraryError(f"no llama.cpp build to check for the {probe.component}")


# -- the child side ------------------------------------------------------------------------------------------

def _child(kind: str, model_path: str, threads: int) -> None:
    if kind == "llama":
        from llama_cpp import Llama

        # the same settings as the bot (voicebot.llm.embedded), so the same CPU kernels are exercised
        llm = Llama(model_path=model_path, n_ctx=512, n_threads=threads, n_threads_batch=threads, n_batch=512,
                    seed=7, verbose=False)
        out = llm.create_completion("The capital of France is", max_tokens=4, temperature=0.0)
        if not out["choices"][0]["text"]:
            raise SystemExit("the model produced no tokens")
    elif kind == "whisper":
        import numpy as np
        from faster_whisper import WhisperModel

        model = WhisperModel(model_path, device="cpu", compute_type="int8", cpu_threads=threads)
        segments, _info = model.transcribe(np.zeros(16000, dtype=np.float32), language="en", beam_size=1)
        list(segments)
    elif kind == "piper":
        from piper import PiperVoice

        onnx = next(Path(model_path).glob("*.onnx"), None) if Path(model_path).is_dir() else Path(model_path)
        if onnx is None:
            raise SystemExit(f"no .onnx voice in {model_path}")
        voice = PiperVoice.load(str(onnx))
        if not any(chunk.audio_int16_bytes for chunk in voice.synthesize("Hello.")):
            raise SystemExit("the voice produced no audio")
    elif kind == "embed":
        from voicebot.knowledge.embed import E5Embedder

        vectors = E5Embedder(model_path, threads=threads).queries(["where is my order"])
        if vectors.shape[0] != 1 or not abs(float((vectors[0] ** 2).sum()) - 1.0) < 1e-3:
            raise SystemExit("the embedding engine returned no unit vector")
    else:
        raise SystemExit(f"unknown probe kind {kind!r}")


if __name__ == "__main__":  # python -m voicebot.native_check KIND MODEL_PATH THREADS
    _child(sys.argv[1], sys.argv[2], int(sys.argv[3]))
