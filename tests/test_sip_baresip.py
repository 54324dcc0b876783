"""baresip, a SIP softphone nobody here wrote (Debian's package), calls the real bot through a Kamailio registrar.

`voicebot serve` (the pulled models, a seeded CRM) registers as botext at the registrar (registrar_support, on
127.0.0.2); baresip on 127.0.0.4, with no sound card (audio source: a WAV of silence from its aufile module;
player: its aubridge module), dials sip:botext@registrar; Kamailio finds the bot by its registration and relays
the call. baresip's sndfile module records what it received (its ``dump-...-dec.wav``), and the project's Whisper
transcribes that recording: it must be the bot's greeting.

Ports: 22100-22299 (registrar 22100, the bot 22102 with RTP 22104-22203, baresip 22220 and RTP 22230-22239).
"""

from __future__ import annotations

import shutil
import subprocess
import wave
from pathlib import Path

import pytest

from asr_support import assert_heard_any
from registrar_support import PASSWORD, REGISTRAR_IP, USER, Registrar
from serve_support import serving
from voicebot.audio import read_wav

pytestmark = [pytest.mark.timeout(300), pytest.mark.models]

REGISTRAR_PORT, BOT_PORT = 22100, 22102
BARESIP_IP, BARESIP_PORT, BARESIP_RTP = "127.0.0.4", 22220, "22230-22239"
MODULES = Path("/usr/lib/baresip/modules")


def baresip_or_fail() -> str:
    path = shutil.which("baresip")
    if path is None or not (MODULES / "sndfile.so").exists():
        pytest.fail("baresip is not installed: `apt-get install -y baresip` (scripts/setup.sh does)")
    return path


def baresip_folder(folder: Path) -> tuple[Path, Path]:
    """baresip's config folder (config, accounts) and the folder sndfile records into."""
    conf, recordings = folder / "baresip", folder / "recordings"
    conf.mkdir()
    recordings.mkdir()
    silence = folder / "silence.wav"
    with wave.open(str(silence), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(8000)
        wav.writeframes(b"\0" * 8000 * 2 * 30)
    (conf / "config").write_text(f"""\
poll_method\tepoll
sip_listen\t{BARESIP_IP}:{BARESIP_PORT}
rtp_ports\t{BARESIP_RTP}
audio_player\taubridge,nil
audio_alert\taubridge,nil
audio_source\taufile,{silence}
module_path\t{MODULES}
module\tg711.so
module\taufile.so
module\taubridge.so
module\tsndfile.so
module_tmp\taccount.so
module_app\tmenu.so
snd_path\t{recordings}
""")
    # no registration of its own (regint=0): it only places the call, at the registrar
    (conf / "accounts").write_text(f"<sip:baresip@{REGISTRAR_IP}:{REGISTRAR_PORT}>;regint=0\n")
    return conf, recordings


def test_baresip_calls_the_bot_through_the_registrar_and_hears_the_greeting(tmp_path, transcriber):
    binary = baresip_or_fail()
    registrar = Registrar(tmp_path, REGISTRAR_PORT)
    registrar.start()
    conf, recordings = baresip_folder(tmp_path)
    accounts = (f"  accounts:\n    - registrar: sip:{REGISTRAR_IP}:{REGISTRAR_PORT}\n      user: {USER}\n"
                f"      password: {PASSWORD}\n      expiry_s: 60\n")
    bot = tmp_path / "bot"
    bot.mkdir()
    try:
        # stop_timeout_s: the bot's after-call analysis may still be running its model; it is killed then
        with serving(bot, BOT_PORT, sip_extra=accounts, stop_timeout_s=15):
            registrar.wait_for(lambda: len(registrar.ok()) >= 1, 15, "the bot did not register")
            call = subprocess.run([binary, "-f", str(conf), "-e", f"/dial sip:{USER}@{REGISTRAR_IP}:{REGISTRAR_PORT}",
                                   "-t", "14"], cwd=tmp_path, capture_output=True, text=True, timeout=60)
            assert "Call established" in call.stdout, call.stdout[-3000:] + call.stderr[-2000:]
    finally:
        registrar.stop()
    calls = registrar.lines("CALL")
    assert len(calls) == 1 and f"CALL to {USER} relayed to sip:{USER}@127.0.0.1:{BOT_PORT}" in calls[0], calls
    assert f"contact=<sip:{USER}@127.0.0.1:{BOT_PORT};ob>" in registrar.ok()[0], registrar.ok()
    [heard] = sorted(recordings.glob("dump-*-dec.wav"))
    pcm, rate = read_wav(heard)
    assert len(pcm) / (2 * rate) > 5, f"only {len(pcm) / (2 * rate):.1f} s recorded"
    text = transcriber.transcribe(pcm, rate).text
    assert_heard_any(text, "automated assistant", "Northwind Supplies", "How can I help you", at_least=2)
