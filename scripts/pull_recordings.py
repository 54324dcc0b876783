#!/usr/bin/env python3
"""Pull the real recordings the tests play into calls: street, crowd and train noise, an office's keyboard and
phone, and a human voice.

Why recordings and not synthesis: Piper's voices and generated hiss are what the tests mostly use, and a model
tuned on them can still fail on a real street or a real person. These machines reach Debian's archive, and a few
of its data packages carry freely licensed field recordings and telephone prompts, so the tests fetch them the way
the models are fetched: downloaded once per machine (``apt-get download``, nothing installed), the listed files
taken out of the package, checked against their sha256 and kept under ``$VOICEBOT_CACHE/recordings`` (default
``~/.cache/voicebot/recordings``). Nothing is committed: the packages' licences (GPL-2, GPL-2+, CC-BY-SA-3.0)
travel with the packages, and their copyright files are kept beside the recordings.

``scripts/test.sh`` runs this before the tests; a test that needs a recording fails when it is missing
(``tests/recordings.py``). Safe to rerun: what is there and matches is kept.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

# package -> {name under recordings/: (path inside the package, sha256)}
RECORDINGS: dict[str, dict[str, tuple[str, str]]] = {
    "btanks-data": {  # GPL-2 (with an exception for the game's data): street and vehicle field recordings
        "street.ogg": ("usr/share/games/btanks/data/sounds/ambient/city.ogg",
                       "37ef129e2c41870542b5da28fd52ee5f46a4978c29603fa2ad0e546e467ca940"),
        "train.ogg": ("usr/share/games/btanks/data/sounds/train.ogg",
                      "4bd7b87b6a8c39c2cb2049d50a86b63088f565c3dddc38865b229539f17e46dc"),
    },
    "lmms-common": {  # GPL-2+: a crowd
        "crowd.ogg": ("usr/share/lmms/samples/misc/raving_crowd01.ogg",
                      "2ca45e2e14d986dd7290b75d32065bf785a09fea331cc3eb1e3241d2eb16359e"),
    },
    "bucklespring-data": {  # GPL-2+: a real keyboard (an IBM Model M), each key recorded going down (-0), up (-1)
        f"office/key-{code}-{edge}.wav": (f"usr/share/buckle/wav/{code}-{edge}.wav", sha)
        for (code, edge), sha in {
            ("1e", 0): "4b16d0c174a9e4d64cda06ab6d9b760e4ad1a69d0140c384ffa57696a37e0537",
            ("1e", 1): "e87acc364a7aa24e34b56e52bee3f47e84ab9d8306a45d9414666b28a8f7b296",
            ("1f", 0): "f2dc22e920015e3b1c94d81c45148d4d8805cadd30c94e7e6176677c5e5f1878",
            ("1f", 1): "8e33347d371fe6403d4215ea4afa7a39af4343fe9d8be8d34e6262f16df6cbf7",
            ("20", 0): "5933a320c0f93d50610059dad2876ac832bb182b746f54a5fd71e033c0906ddd",
            ("20", 1): "10062db1bb87bc760ab3e22e62b3d0d6ac60b94e4441f144f2b3fc1017ad0491",
            ("21", 0): "3e6f59cb710b3cdd2522d9b6eca32cb778582b610072431e53db14894a3f53de",
            ("21", 1): "d096b6b009dca325d8fea0da54b9150ddb625f578350297cd74abf311ac7d2cc",
            ("39", 0): "fbe0a63fd3fa9c25fff62d2ff737a9e356ae250cb84a75b24c21722d71b01b5b",
            ("39", 1): "f6f56b249585e4ba79f02fb4f9d276222c7c4bf0958fecbcbd5b268e81271391",
        }.items()
    },
    "sound-theme-freedesktop": {  # GPL-2+ (these files): a desk phone ringing in the office
        "office/phone-ring.oga": ("usr/share/sounds/freedesktop/stereo/phone-incoming-call.oga",
                                  "23957c68c49a23c056bbaa75b17cb56acfcab190f493c8f9b95781e6251b6e7a"),
    },
    "asterisk-core-sounds-en-wav": {  # CC-BY-SA-3.0, recorded by Allison Smith: a human voice at 8 kHz
        **{f"voice/digit-{d}.wav": (f"usr/share/asterisk/sounds/en_US_f_Allison/digits/{d}.wav", sha)
           for d, sha in enumerate((
               "62debe1daf11756460c0de78d0e1ac7fe28b12fb51a30df3364ce74b90f05d31",
               "fb38aca5558d50f7bd4d7986adeea19b97eba894c574fc92acc3b33b480eb701",
               "6ef0a6b67a1741e950c491ef664bbfb424b63fab314d616d6f0e467cc0838dee",
               "4ec0371d15f721c61be36fe6ca54d0de29d9b9a48062634969556c50ff81faed",
               "f1c007fbd2eefa235ea10260b79527b89b88f6d2182008e86221572ad92f204f",
               "412b4b7729a8bae7b2b13ad8af9f6989abba8a4b9d5fc1c499b13a3b986653a5",
               "89c80e3c120f90112159d911568d2ca4a13f369a864ee26e882802385fab2474",
               "125c9acb8b5b6549079233c922782bfdf585d8c438906467921329669c6939fe",
               "854114f9f3bb94d36490b2951957a662e75212648a5e2330f1f3c56184d30488",
               "535d4117923ad8bac20185eb0746b421479ddec4f4acd2329285096a573d6e34"))},
        "voice/hello-world.wav": ("usr/share/asterisk/sounds/en_US_f_Allison/hello-world.wav",
                                  "825062c567f19c4665b6ba04901e17de5d0c92731ea2ac0c4c37e62af134a78a"),
        "voice/goodbye.wav": ("usr/share/asterisk/sounds/en_US_f_Allison/vm-goodbye.wav",
                              "b6232dee2b67fd5c6c41befd1db1d2197eb3952a37d20f4f5f11df4a5ef6af7d"),
        "voice/thank-you.wav": ("usr/share/asterisk/sounds/en_US_f_Allison/auth-thankyou.wav",
                                "65cde7fe769fc91c325bc5f51044e9beff54bf3a3c80e889f98af50fded453d1"),
        "voice/one-moment-please.wav": ("usr/share/asterisk/sounds/en_US_f_Allison/one-moment-please.wav",
                                        "3343bcc61163f2d72ce13ba6f5b3abcf7bfaee0b052c011a4630cc4eb6fb332b"),
        "voice/please-try-again.wav": ("usr/share/asterisk/sounds/en_US_f_Allison/please-try-again.wav",
                                       "52f03a0835c3ce33b963f67a160cb7aa72f3400839b1dbe6d6be59893e73679f"),
    },
}


def cache_dir() -> Path:
    return Path(os.environ.get("VOICEBOT_CACHE") or Path.home() / ".cache" / "voicebot") / "recordings"


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _present(folder: Path, files: dict[str, tuple[str, str]]) -> bool:
    return all((folder / name).is_file() and _sha256(folder / name) == sha for name, (_, sha) in files.items())


def pull(folder: Path | None = None) -> Path:
    """Fetch every package whose recordings are missing or changed; return the recordings folder."""
    folder = folder or cache_dir()
    for package, files in RECORDINGS.items():
        if _present(folder, files):
            continue
        print(f"==> fetching recordings from the Debian package {package}", flush=True)
        with tempfile.TemporaryDirectory() as tmp:
            got = subprocess.run(["apt-get", "download", "-q", package], cwd=tmp, capture_output=True, text=True)
            if got.returncode != 0 and os.geteuid() == 0:  # a machine whose package lists were never fetched
                subprocess.run(["apt-get", "update", "-qq"], capture_output=True)
                got = subprocess.run(["apt-get", "download", "-q", package], cwd=tmp, capture_output=True, text=True)
            if got.returncode != 0:
                sys.exit(f"apt-get download {package} failed (does this machine reach Debian's archive? "
                         f"run 'apt-get update' first):\n{got.stderr.strip()}")
            deb = next(Path(tmp).glob("*.deb"))
            root = Path(tmp) / "x"
            subprocess.run(["dpkg-deb", "-x", str(deb), str(root)], check=True)
            for name, (inside, sha) in files.items():
                source = root / inside
                if not source.is_file() or _sha256(source) != sha:
                    sys.exit(f"{deb.name}: {inside} is missing or not the recording expected (sha256 "
                             f"{sha[:12]}...); the package changed: update scripts/pull_recordings.py")
                (folder / name).parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(source, folder / name)
            for copyright_file in root.glob("usr/share/doc/*/copyright"):
                shutil.copyfile(copyright_file, folder / f"{package}.copyright")
    return folder


if __name__ == "__main__":
    print(f"recordings in {pull()}")
