"""Config validation: every problem named with file, line and field; unsafe YAML refused; CLI exit codes."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from typer.testing import CliRunner

from voicebot.cli import app
from voicebot.config import Config, ConfigError, load_config

ROOT = Path(__file__).resolve().parent.parent
runner = CliRunner()


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "bad.yaml"
    path.write_text(textwrap.dedent(text))
    return path


def problems(path: Path):
    with pytest.raises(ConfigError) as info:
        load_config(path)
    return info.value.problems


def test_shipped_config_is_valid_and_matches_defaults():
    config = load_config(ROOT / "config.yaml")
    defaults = Config.model_validate({}, context={"base_dir": ROOT})  # its unset zones: the demo's hours.yaml's
    # config.yaml documents the defaults: the two must not drift apart
    assert config.model_dump(exclude={"base_dir"}) == defaults.model_dump(exclude={"base_dir"})
    assert config.stt.model == "whisper-base"
    assert config.tts.voice == "piper-en_US-joe-medium"
    assert config.llm.model == "qwen2.5-coder-1.5b"


def test_unknown_key_names_file_line_and_field(tmp_path):
    path = write(tmp_path, """\
        sip:
          port: 5060
          listen_adress: 0.0.0.0
        """)
    [problem] = problems(path)
    assert (problem.file, problem.line, problem.field) == (str(path), 3, "sip.listen_adress")
    assert "unknown key" in problem.message
    assert str(problem).startswith(f"{path}:3: sip.listen_adress")


def test_every_error_is_listed_with_its_line(tmp_path):
    path = write(tmp_path, """\
        vad:
          aggressiveness: 7
          frame_ms: 25
        stt:
          beam_size: many
        llm:
          backend: cloud
        surprise: true
        """)
    found = {p.field: p for p in problems(path)}
    assert set(found) == {"vad.aggressiveness", "vad.frame_ms", "stt.beam_size", "llm.backend", "surprise"}
    assert found["vad.aggressiveness"].line == 2 and "less than or equal to 3" in found["vad.aggressiveness"].message
    assert found["vad.frame_ms"].line == 3
    assert found["stt.beam_size"].line == 5 and "'many'" in found["stt.beam_size"].message
    assert found["llm.backend"].line == 7
    assert found["surprise"].line == 8


def test_a_removed_key_says_why_at_its_line(tmp_path):
    path = write(tmp_path, """\
        audio:
          sample_rate: 8000
          frame_ms: 20
        vad:
          aggressiveness: 9
        """)
    found = {p.field: p for p in problems(path)}
    assert set(found) == {"audio.frame_ms", "vad.aggressiveness"}
    assert found["audio.frame_ms"].line == 3
    assert found["audio.frame_ms"].message.startswith("this key was removed: it did nothing; ")
    assert "vad.frame_ms" in found["audio.frame_ms"].message and "(got" not in found["audio.frame_ms"].message


def test_transfers_go_only_to_the_operator_or_a_listed_target():
    sip = Config().sip
    sip.operator_uri, sip.transfer_targets = "sip:operator@pbx", ["sip:sales@pbx"]
    assert sip.transfer_allowed("sip:operator@pbx") and sip.transfer_allowed("sip:sales@pbx")
    assert not sip.transfer_allowed("sip:someone@elsewhere") and not sip.transfer_allowed("sip:operator@pbx:5070")


def test_nested_list_item_errors_point_at_the_item(tmp_path):
    path = write(tmp_path, """\
        sip:
          allowed_sources:
            - 127.0.0.1
            - not-an-ip
          operator_uri: tel:+15550100
        """)
    found = {p.field: p for p in problems(path)}
    assert found["sip.allowed_sources"].line == 2 and "not-an-ip" in found["sip.allowed_sources"].message
    assert found["sip.operator_uri"].line == 5


def test_python_object_tag_is_refused_not_executed(tmp_path):
    marker = tmp_path / "pwned"
    path = write(tmp_path, f"""\
        sip:
          port: !!python/object/apply:os.system ["touch {marker}"]
        """)
    [problem] = problems(path)
    assert problem.line == 2 and "python/object" in problem.message
    assert not marker.exists()


def test_yaml_syntax_error_has_a_line(tmp_path):
    path = write(tmp_path, "sip:\n  port: [5060\nvad: {}\n")
    [problem] = problems(path)
    assert problem.line is not None and "invalid YAML" in problem.message


def test_top_level_must_be_a_mapping(tmp_path):
    [problem] = problems(write(tmp_path, "- a\n- b\n"))
    assert "mapping" in problem.message


def test_missing_file_is_a_clear_error(tmp_path):
    [problem] = problems(tmp_path / "nope.yaml")
    assert "cannot read" in problem.message


def test_relative_paths_resolve_against_the_config_folder(tmp_path):
    path = write(tmp_path, "store:\n  database: calls/here.db\n")
    config = load_config(path)
    assert config.path(config.store.database) == tmp_path / "calls" / "here.db"


def test_check_config_cli_ok_and_failure(tmp_path):
    ok = runner.invoke(app, ["check-config", str(ROOT / "config.yaml")])
    assert ok.exit_code == 0, ok.output
    assert "OK" in ok.output
    bad = write(tmp_path, "vad:\n  aggressiveness: 9\nllm:\n  temprature: 0.1\n")
    result = runner.invoke(app, ["check-config", str(bad)])
    assert result.exit_code == 2
    assert f"{bad}:2: vad.aggressiveness" in result.output
    assert f"{bad}:4: llm.temprature: unknown key" in result.output


def test_check_config_rejects_a_model_not_in_the_manifest(tmp_path):
    path = write(tmp_path, "stt:\n  model: whisper-huge\n")
    result = runner.invoke(app, ["check-config", str(path)])
    assert result.exit_code == 2
    assert "whisper-huge" in result.output


def test_broken_config_starts_nothing(tmp_path):
    bad = write(tmp_path, "sip:\n  port: 99999\n")
    result = runner.invoke(app, ["serve", "--config", str(bad)])
    assert result.exit_code == 2
    assert "sip.port" in result.output
    assert "ready" not in result.output


def test_an_alias_bomb_is_refused_at_once(tmp_path):
    """A 'billion laughs' file (2 KB, billions of values once expanded) is refused without expanding it."""
    import time

    lines = ['a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    lines += [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 9) + "]" for i in range(1, 10)]
    path = tmp_path / "bomb.yaml"
    path.write_text("\n".join(lines) + "\n")
    assert path.stat().st_size < 2500
    started = time.process_time()
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert time.process_time() - started < 5  # refused, not walked: a bound on the work, not a timing test
    assert "expands to more than" in str(info.value)


def test_ordinary_anchors_and_aliases_still_work(tmp_path):
    path = tmp_path / "anchors.yaml"
    path.write_text("escalation:\n  operator_phrases: &ops [\"operator\", \"a person\"]\n"
                    "sip:\n  port: 5070\n")
    assert load_config(path).sip.port == 5070


def test_a_duplicate_key_is_an_error_with_both_lines(tmp_path):
    path = tmp_path / "dup.yaml"
    path.write_text("sip:\n  port: 5070\nvad:\n  aggressiveness: 2\nsip:\n  port: 5080\n")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    [problem] = info.value.problems
    assert (problem.line, problem.field) == (5, "sip") and "first given at line 1" in problem.message
    nested = tmp_path / "dup2.yaml"
    nested.write_text("sip:\n  port: 5070\n  port: 5080\n")
    with pytest.raises(ConfigError, match=r"dup2.yaml:3: sip.port: duplicate key \(first given at line 2\)"):
        load_config(nested)
