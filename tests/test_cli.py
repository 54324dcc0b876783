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
