"""The CLI through typer's runner: serve reports readiness; the benchmark prints its table."""

from __future__ import annotations

from typer.testing import CliRunner

from voicebot.cli import app

runner = CliRunner()


def test_help_lists_the_commands():
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    for command in ("serve", "check-config", "models", "bench"):
        assert command in result.output


def test_serve_loads_and_warms_every_model_and_reports(config):
    result = runner.invoke(app, ["serve", "--ready-only"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    for component, model in (("text to speech", config.tts.voice), ("speech to text", config.stt.model),
                              ("language model", config.llm.model), ("voice activity", "webrtcvad")):
        row = next(line for line in result.output.splitlines() if component in line)
        assert model in row
    assert "ready" in result.output


def test_bench_models_prints_a_table_of_medians_and_p95():
    result = runner.invoke(app, ["bench", "models", "--runs", "1"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "median" in result.output and "p95" in result.output
    for measure in ("short utterance", "long utterance", "time to first token", "tok/s", "time to first audio",
                    "real-time factor"):
        assert measure in result.output, measure


def test_version_prints_the_installed_version():
    from importlib.metadata import version

    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0, result.output
    assert result.output.strip() == f"voicebot {version('voicebot')}"


def test_check_config_takes_config_like_every_command(tmp_path):
    from pathlib import Path

    good = Path(__file__).resolve().parents[1] / "config.yaml"
    ok = runner.invoke(app, ["check-config", "--config", str(good)])
    assert ok.exit_code == 0, ok.output
    assert f"{good}: OK" in ok.output.replace("\n", "")
    bad = tmp_path / "bad.yaml"
    bad.write_text("sip:\n  port: 99999\n")
    result = runner.invoke(app, ["check-config", "--config", str(bad)])
    assert result.exit_code == 2
    assert "bad.yaml:2" in result.output and "port" in result.output
    missing = runner.invoke(app, ["check-config", "--config", str(tmp_path / "nope.yaml")])
    assert missing.exit_code == 2 and "no such config file" in missing.output


def test_bench_stt_prints_both_windows_on_a_clear_and_a_quiet_line(monkeypatch):
    import voicebot.bench_stt

    monkeypatch.setattr(voicebot.bench_stt, "PHRASINGS", ["Where is my order?", "Repairs."])
    result = runner.invoke(app, ["bench", "stt", "--runs", "1"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    for row in ("window 30 s (Whisper's own): wall", "window 10 s: CPU", "window 30 s (Whisper's own), line 26 dB down:",
                "window 10 s, line 26 dB down: wall"):
        assert row in result.output, row
    assert result.output.count("phrasings heard differently") == 3
