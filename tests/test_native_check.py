"""The native-library check: a library that would crash the bot becomes one sentence and a non-zero exit.

The end-to-end test builds a tiny shared object that kills its process with SIGSEGV as soon as it is loaded
(what an AMX or AVX-512 build does on a CPU that cannot run it) and points llama-cpp-python at it with
LLAMA_CPP_LIB_PATH: `voicebot serve` must refuse to start with one line naming the model, the signal and the
fix, with no Python traceback, no fatal-error dump and no core file.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from voicebot.native_check import NativeLibraryError, Probe, Verdict, check, probe_key, run_probe

ROOT = Path(__file__).resolve().parents[1]
VOICEBOT = ROOT / ".venv" / "bin" / "voicebot"


def _probe(tmp_path: Path, kind: str = "llama") -> Probe:
    model = tmp_path / "model.gguf"
    model.write_bytes(b"GGUF")
    return Probe(kind, "language model", "qwen2.5-coder-1.5b", "llama.cpp (llama-cpp-python)", ("llama_cpp",),
                 model, "rebuild it portable")


def _crash_with(sig: int) -> list[str]:
    return [sys.executable, "-c", f"import os; os.kill(os.getpid(), {sig})"]


def test_a_crashing_child_becomes_one_sentence(tmp_path):
    verdict = run_probe(_probe(tmp_path), command=_crash_with(signal.SIGSEGV))
    assert not verdict.ok
    assert "\n" not in verdict.message
    assert "qwen2.5-coder-1.5b" in verdict.message and "SIGSEGV" in verdict.message
    assert "fix: rebuild it portable" in verdict.message


def test_sigill_is_named_too(tmp_path):
    verdict = run_probe(_probe(tmp_path), command=_crash_with(signal.SIGILL))
    assert "SIGILL" in verdict.message and "illegal instruction" in verdict.message.lower()


def test_an_ordinary_error_reports_its_last_line(tmp_path):
    verdict = run_probe(_probe(tmp_path), command=[sys.executable, "-c", "raise ValueError('bad magic in file')"])
    assert not verdict.ok and "crashed" not in verdict.message
    assert verdict.message.endswith("ValueError: bad magic in file")


def test_a_passing_child_is_ok(tmp_path):
    assert run_probe(_probe(tmp_path), command=[sys.executable, "-c", "pass"]).ok


def test_verdicts_are_cached_per_build_and_crashes_raise(tmp_path):
    runs: list[str] = []
    probe = _probe(tmp_path)

    def crashing(p: Probe) -> Verdict:
        runs.append(p.kind)
        return run_probe(p, command=_crash_with(signal.SIGSEGV))

    cache = tmp_path / "native-checks.json"
    for _ in range(2):
        with pytest.raises(NativeLibraryError, match="SIGSEGV"):
            check([probe], cache, run=crashing)
    assert runs == ["llama"], "the second start must reuse the cached verdict, not run the crash again"

    # a different build (the model file changed here) is checked again
    probe.model_path.write_bytes(b"GGUF v2")
    assert probe_key(probe) not in cache.read_text()
    assert check([probe], cache, run=lambda p: Verdict(True))[0].ok
    assert check([probe], cache, run=lambda p: pytest.fail("cached pass must not re-run"))[0].cached


def test_an_ordinary_error_is_not_cached(tmp_path):
    runs = []

    def failing(p: Probe) -> Verdict:
        runs.append(1)
        return Verdict(False, "failed: out of memory")

    for _ in range(2):
        with pytest.raises(NativeLibraryError):
            check([_probe(tmp_path)], tmp_path / "c.json", run=failing)
    assert len(runs) == 2


@pytest.mark.models
def test_serve_refuses_a_library_that_segfaults_with_one_line(tmp_path):
    """A model library that segfaults on load: one line on stderr, exit code 1, no traceback, no core."""
    cc = shutil.which("cc") or shutil.which("gcc")
    assert cc, "a C compiler is needed to build the crashing library (gcc is on every machine of this kind)"
    lib_dir = tmp_path / "badlib"
    lib_dir.mkdir()
    source = tmp_path / "boom.c"
    source.write_text("#include <signal.h>\n__attribute__((constructor)) static void boom(void) { raise(SIGSEGV); }\n")
    subprocess.run([cc, "-shared", "-fPIC", "-o", str(lib_dir / "libllama.so"), str(source)], check=True)

    env = {**os.environ, "LLAMA_CPP_LIB_PATH": str(lib_dir), "PYTHONFAULTHANDLER": "1"}
    done = subprocess.run([str(VOICEBOT), "serve", "--ready-only", "--config", str(ROOT / "config.yaml")],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert done.returncode == 1, done.stdout + done.stderr
    assert len(lines) == 1, done.stderr
    line = lines[0]
    assert line.startswith("error: the language model (qwen2.5-coder-1.5b) crashed llama.cpp")
    assert "SIGSEGV" in line and "fix:" in line and "scripts/setup.sh" in line
    for bad in ("Traceback", "Fatal Python error", "core dumped"):
        assert bad not in done.stdout + done.stderr
    assert not list(tmp_path.glob("core*"))


def _disassembly(lib: Path) -> str:
    objdump = shutil.which("objdump")
    assert objdump, "objdump (binutils, installed with gcc) is needed to inspect the build"
    return subprocess.run([objdump, "-d", "--no-show-raw-insn", str(lib)], capture_output=True, text=True,
                          check=True).stdout


def test_the_installed_llama_cpp_is_the_portable_build():
    """The default llama.cpp libraries have no AVX-512 (zmm registers) and no AMX tile instructions; the AVX-512
    variant, where setup placed one, has no AMX: a build with them faults on machines of this kind that cannot
    run them (see README, "Portable llama.cpp")."""
    from voicebot.native_check import AVX512_VARIANT, _package_dirs

    [package] = [d for d in _package_dirs("llama_cpp") if (d / "lib").is_dir()]
    default = sorted((package / "lib").glob("lib*.so"))
    assert any(p.name == "libggml-cpu.so" for p in default), default
    for lib in default:
        code = _disassembly(lib)
        assert "%zmm" not in code, f"{lib} uses AVX-512"
        for op in ("ldtilecfg", "tileloadd", "tdpbssd", "tdpbf16ps"):
            assert op not in code, f"{lib} uses AMX ({op})"
    for lib in sorted((package / AVX512_VARIANT).glob("lib*.so")):
        code = _disassembly(lib)
        for op in ("ldtilecfg", "tileloadd", "tdpbssd", "tdpbf16ps"):
            assert op not in code, f"{lib} uses AMX ({op})"
    assert (ROOT / ".venv" / ".llama-cpp-build").is_file(), "scripts/setup.sh records the portable build's key"


def test_a_crashing_llama_variant_falls_back_to_the_portable_build(tmp_path, monkeypatch, caplog):
    from voicebot.native_check import check_llama

    monkeypatch.delenv("LLAMA_CPP_LIB_PATH", raising=False)
    variant = tmp_path / "lib-avx512"
    variant.mkdir()
    tried: list[Path | None] = []

    def run(p: Probe) -> Verdict:
        tried.append(p.lib_dir)
        return run_probe(p, command=_crash_with(signal.SIGILL) if p.lib_dir else [sys.executable, "-c", "pass"])

    verdict = check_llama(_probe(tmp_path), tmp_path / "c.json", run=run, variants=[variant, None])
    assert verdict.ok and tried == [variant, None]
    assert "LLAMA_CPP_LIB_PATH" not in os.environ  # the portable default stays in use
    assert "lib-avx512 build failed its check" in caplog.text and "SIGILL" in caplog.text


def test_a_working_llama_variant_is_chosen(tmp_path, monkeypatch):
    from voicebot.native_check import check_llama

    monkeypatch.delenv("LLAMA_CPP_LIB_PATH", raising=False)
    variant = tmp_path / "lib-avx512"
    variant.mkdir()
    check_llama(_probe(tmp_path), tmp_path / "c.json", run=lambda p: Verdict(True), variants=[variant, None])
    assert os.environ["LLAMA_CPP_LIB_PATH"] == str(variant)


def test_when_every_llama_build_crashes_the_error_is_raised(tmp_path, monkeypatch):
    from voicebot.native_check import check_llama

    monkeypatch.delenv("LLAMA_CPP_LIB_PATH", raising=False)
    with pytest.raises(NativeLibraryError, match="SIGSEGV"):
        check_llama(_probe(tmp_path), tmp_path / "c.json", variants=[tmp_path, None],
                    run=lambda p: run_probe(p, command=_crash_with(signal.SIGSEGV)))
