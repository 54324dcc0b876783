"""SIP over TLS and SRTP (sip.tls, sip.srtp): the certificate checks with file:line errors, the SRTP policy, and
real calls on loopback: `voicebot call` (its own process and pjsua2 endpoint) over TLS with SRTP mandatory hears
the bot's greeting (Piper speech, transcribed by Whisper); a plain-RTP offer from sipp is refused with 488 and one
clear log line; a caller that does not trust the bot's certificate gets no call. Test certificates are made at
test time with the openssl command (a CA, the bot's certificate for 127.0.0.1 and localhost, a stranger CA).

Ports: 22000-22099 (this file's share of 22000-22499).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
import subprocess
import sys
import time
from pathlib import Path

import pytest

from asr_support import assert_heard
from sip_support import scenario, sipp_binary
from voicebot.config import ConfigError, load_config
from voicebot.telephony import sip_tls

pytestmark = pytest.mark.timeout(90)

ROOT = Path(__file__).resolve().parent.parent
BOT_SIP, BOT_TLS, BOT_RTP = 22000, 22001, 22010  # RTP 22010-22019
SIPP_PORT, SIPP_MEDIA = 22030, 22040
GREETING = "Hello, you are speaking with the automated assistant of Northwind Supplies."


def openssl(*args: str, cwd: Path) -> None:
    proc = subprocess.run(["openssl", *args], cwd=cwd, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, f"openssl {' '.join(args)}: {proc.stderr[-2000:]}"


def make_certs(folder: Path) -> Path:
    """ca.pem/ca.key, bot.pem/bot.key (signed by the CA, for IP 127.0.0.1 and localhost), other-ca.pem."""
    folder.mkdir(parents=True, exist_ok=True)
    for name in ("ca", "other-ca"):
        openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{name}.key", "-out", f"{name}.pem",
                "-days", "2", "-subj", f"/CN=voicebot test {name}", cwd=folder)
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "bot.key", "-out", "bot.csr", "-subj", "/CN=localhost",
            cwd=folder)
    (folder / "ext.cnf").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n")
    openssl("x509", "-req", "-in", "bot.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial", "-out",
            "bot.pem", "-days", "2", "-extfile", "ext.cnf", cwd=folder)
    return folder


@pytest.fixture(scope="module")
def certs(tmp_path_factory) -> Path:
    return make_certs(tmp_path_factory.mktemp("certs"))


def tls_yaml(certs: Path, srtp: str = "mandatory", ca: str = "ca.pem", transports: str = "[udp, tls]") -> str:
    return f"""\
models:
  dir: {ROOT / 'models'}
sip:
  listen_address: 127.0.0.1
  port: {BOT_SIP}
  transports: {transports}
  tls:
    port: {BOT_TLS}
    cert_file: {certs / 'bot.pem'}
    key_file: {certs / 'bot.key'}
    ca_file: {certs / ca}
  srtp: {srtp}
"""


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(text)
    return path


# -- config and policy ----------------------------------------------------------------------------------------
def test_tls_files_are_checked_where_the_config_names_them(tmp_path, certs):
    good = load_config(write(tmp_path, "good.yaml", tls_yaml(certs)))
    assert good.sip.tls.port == BOT_TLS and good.sip.srtp == "mandatory"
    assert sip_tls.describe(good.sip) == (f"SIP over TLS on port {BOT_TLS} (certificate {certs / 'bot.pem'}); "
                                          "SRTP mandatory (SDES; keys only over tls)")  # serve's banner line
    assert sip_tls.describe(load_config(None).sip) is None

    def problems(text: str) -> str:
        with pytest.raises(ConfigError) as err:
            load_config(write(tmp_path, "bad.yaml", text))
        return str(err.value)

    bad = tmp_path / "bad.yaml"
    assert f"{bad}:9: sip.tls.cert_file:" in problems(tls_yaml(certs).replace("bot.pem", "missing.pem"))
    assert "cannot read" in problems(tls_yaml(certs).replace("bot.pem", "missing.pem"))
    mismatch = problems(tls_yaml(certs).replace("bot.key", "ca.key"))
    assert f"{bad}:10: sip.tls.key_file:" in mismatch and "is not the key of the certificate" in mismatch
    assert f"{bad}:10: sip.tls.key_file:" in problems(tls_yaml(certs).replace("bot.key", "bot.pem"))  # no key
    assert f"{bad}:11: sip.tls.ca_file:" in problems(tls_yaml(certs).replace("ca.pem", "ca.key"))  # no cert
    no_section = problems("sip:\n  transports: [udp, tls]\n")
    assert "add a sip.tls section" in no_section
    clear_keys = problems("sip:\n  transports: [udp]\n  srtp: optional\n")
    assert "needs tls in sip.transports" in clear_keys
    load_config(write(tmp_path, "sdes-over-udp.yaml", "sip:\n  transports: [udp]\n  srtp: optional\n"
                                                      "  srtp_secure_signaling: none\n"))  # allowed when said
    # expiry: the same certificate, judged three days on
    later = dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=3)
    assert "expired on" in sip_tls.file_problem("cert_file", certs / "bot.pem", now=later)
    assert sip_tls.file_problem("cert_file", certs / "bot.pem") is None


def test_srtp_policy_and_pjsua_constants():
    import pjsua2 as pj

    assert sip_tls.SRTP_USE == {"off": pj.PJMEDIA_SRTP_DISABLED, "optional": pj.PJMEDIA_SRTP_OPTIONAL,
                                "mandatory": pj.PJMEDIA_SRTP_MANDATORY}
    config = load_config(None)
    sip = config.sip.model_copy(update={"srtp": "mandatory", "transports": ["udp", "tls"]})
    head = "INVITE sip:bot@h SIP/2.0\r\nVia: SIP/2.0/{hop} 127.0.0.1:5;branch=z9hG4bK1\r\n\r\n"
    plain = head.format(hop="UDP") + "v=0\r\nm=audio 4000 RTP/AVP 0\r\n"
    keyed = "v=0\r\nm=audio 4000 RTP/SAVP 0\r\na=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:abc\r\n"
    assert "plain RTP offered" in sip_tls.srtp_refusal(sip, plain)
    assert "came over UDP, not TLS" in sip_tls.srtp_refusal(sip, head.format(hop="UDP") + keyed)
    assert sip_tls.srtp_refusal(sip, head.format(hop="TLS") + keyed) is None
    assert sip_tls.srtp_refusal(sip, head.format(hop="TLS")) is None  # no offer: pjsua offers SRTP itself
    assert sip_tls.srtp_refusal(sip.model_copy(update={"srtp": "optional"}), plain) is None
    assert sip_tls.hop_transport("INVITE x SIP/2.0\r\nv: SIP/2.0/TLS a\r\n\r\n") == "tls"


# -- real calls -----------------------------------------------------------------------------------------------
async def run_caller(uri: str, config: Path, *args: str, timeout_s: float = 60) -> tuple[int, dict, str]:
    cmd = [sys.executable, "-m", "voicebot.call_cli", uri, "--json", "--config", str(config), *args]
    proc = await asyncio.create_subprocess_exec(*cmd, cwd=ROOT, stdout=asyncio.subprocess.PIPE,
                                                stderr=asyncio.subprocess.PIPE)
    try:
        out, err = await asyncio.wait_for(proc.communicate(), timeout_s)
    except TimeoutError:
        proc.kill()
        out, err = await proc.communicate()
    text = out.decode(errors="replace").strip()
    data = json.loads(text.splitlines()[-1]) if text else {}
    return proc.returncode, data, err.decode(errors="replace")


class Greeter:
    """on_call: play the greeting, then listen until the caller hangs up."""

    def __init__(self, greeting: bytes):
        self.greeting, self.calls = greeting, []

    async def __call__(self, call) -> None:
        self.calls.append(call.info)
        call.play(self.greeting)
        async for _ in call.events():
            pass


@pytest.mark.models
def test_voicebot_call_over_tls_with_srtp_mandatory_hears_the_greeting(tmp_path, certs, synthesizer, caplog):
    """The bot (a SipWorker in this process, pjsip logging every message) answers on its TLS port with SRTP
    mandatory; `voicebot call sip:voicebot@127.0.0.1:22001;transport=tls` with the same policy transcribes the
    greeting. pjsip's own log shows the INVITE came over TLS and both SDPs carried SDES keys (RTP/SAVP)."""
    from voicebot.telephony.sip import SipWorker

    config_path = write(tmp_path, "config.yaml", tls_yaml(certs))
    config = load_config(config_path)
    bot = Greeter(synthesizer.cached(GREETING, 16000))
    caplog.set_level(logging.DEBUG, logger="voicebot.pjsip")

    async def main():
        async with SipWorker(config, bot, rtp_port=BOT_RTP, rtp_port_range=10, sample_rate=16000, log_level=5):
            return await run_caller(f"sip:voicebot@127.0.0.1:{BOT_TLS};transport=tls", config_path, "--hold", "3")

    code, data, err = asyncio.run(main())
    assert code == 0, err[-3000:]
    assert len(bot.calls) == 1
    assert data["bot_utterances"], data
    assert_heard(" ".join(u["text"] for u in data["bot_utterances"]), GREETING)
    pjsip = "\n".join(r.getMessage() for r in caplog.records if r.name == "voicebot.pjsip")
    invite = pjsip[pjsip.index("INVITE sip:voicebot@127.0.0.1"):][:3000]
    assert "Via: SIP/2.0/TLS" in invite and "RTP/SAVP" in invite and "a=crypto:" in invite, invite
    ok = pjsip[pjsip.index("SIP/2.0 200 OK", pjsip.index("INVITE sip:voicebot@127.0.0.1")):][:3000]
    assert "RTP/SAVP" in ok and "a=crypto:" in ok, ok


def test_a_plain_rtp_offer_to_a_mandatory_srtp_bot_gets_488_and_one_clear_log_line(tmp_path, certs, caplog):
    from voicebot.telephony.sip import SipWorker

    config = load_config(write(tmp_path, "config.yaml", tls_yaml(certs)))
    caplog.set_level(logging.INFO, logger="voicebot")
    xml = write(tmp_path, "plain.xml", scenario(expect=488))
    cmd = [sipp_binary(), f"127.0.0.1:{BOT_SIP}", "-sf", str(xml), "-i", "127.0.0.1", "-p", str(SIPP_PORT),
           "-mp", str(SIPP_MEDIA), "-m", "1", "-nostdin", "-timeout", "15s", "-timeout_error", "-recv_timeout", "8s"]

    async def main():
        bot = Greeter(b"")
        async with SipWorker(config, bot, rtp_port=BOT_RTP, rtp_port_range=10, sample_rate=16000):
            sipp = await asyncio.to_thread(subprocess.run, cmd, cwd=tmp_path, capture_output=True, text=True,
                                           timeout=40)
        return sipp, bot

    sipp, bot = asyncio.run(main())
    assert sipp.returncode == 0, sipp.stdout[-3000:]
    assert bot.calls == []
    refusals = [r.getMessage() for r in caplog.records if "refused (488)" in r.getMessage()]
    assert refusals == ["INVITE from 127.0.0.1 refused (488): plain RTP offered (RTP/AVP, no SDES key) and "
                        "sip.srtp is mandatory"], refusals
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], caplog.text[-3000:]


def test_a_caller_that_does_not_trust_the_bot_s_certificate_gets_no_call(tmp_path, certs):
    """verify_server (on by default) with a CA that did not sign the bot's certificate: the TLS handshake fails,
    the call is not made, and the bot never sees an INVITE."""
    from voicebot.telephony.sip import SipWorker

    config_path = write(tmp_path, "config.yaml", tls_yaml(certs))
    stranger = write(tmp_path, "stranger.yaml", tls_yaml(certs, ca="other-ca.pem"))
    bot = Greeter(b"")

    async def main():
        async with SipWorker(load_config(config_path), bot, rtp_port=BOT_RTP, rtp_port_range=10, sample_rate=16000):
            return await run_caller(f"sip:voicebot@127.0.0.1:{BOT_TLS};transport=tls", stranger,
                                    "--no-transcribe", "--timeout", "8")

    code, data, err = asyncio.run(main())
    assert code == 1, (data, err[-2000:])
    assert data.get("error"), data
    assert bot.calls == []


# -- serve --workers N: TLS ends at Kamailio ------------------------------------------------------------------
WORKER_SCRIPT = """
import asyncio, logging, signal, sys
import numpy as np
from voicebot.config import load_config
from voicebot.telephony.kamailio import worker_config, worker_slots
from voicebot.telephony.sip import SipWorker

logging.basicConfig(level=logging.DEBUG, stream=sys.stdout, format="%(name)s %(message)s")
config = load_config(sys.argv[1])
slot = worker_slots(config)[int(sys.argv[2])]
tone = (np.sin(np.arange(16000) * 2 * np.pi * 440 / 16000) * 8000).astype(np.int16).tobytes()

async def on_call(call):
    print("ANSWERED", call.info.remote, flush=True)
    call.play(tone)
    async for _ in call.events():
        pass

async def main():
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    mine = worker_config(config, slot)
    print("TRANSPORTS", mine.sip.transports, mine.sip.tls, flush=True)
    async with SipWorker(mine, on_call, rtp_port=int(sys.argv[3]), rtp_port_range=10, sample_rate=16000,
                         log_level=5):
        print("READY", flush=True)
        await stop.wait()
    print("STOPPED", flush=True)

asyncio.run(main())
"""


def test_with_workers_tls_ends_at_kamailio_and_srtp_goes_through_to_the_worker(tmp_path, certs):
    """`serve --workers 2` as configured: Kamailio listens for TLS (its tls module, the system OpenSSL) and
    speaks plain SIP to the workers; `voicebot call ...;transport=tls` with SRTP mandatory reaches a worker,
    whose pjsip log shows the SDES-keyed offer (the caller's TLS Via under Kamailio's UDP one) and which the
    caller hears."""
    import os
    import signal

    from voicebot.telephony import kamailio as kam

    proxy_port, proxy_tls, workers_base = 22050, 22051, 22052
    text = tls_yaml(certs).replace(f"port: {BOT_SIP}", f"port: {proxy_port}").replace(
        f"port: {BOT_TLS}", f"port: {proxy_tls}") + (
        f"serve:\n  workers: 2\n  worker_base_port: {workers_base}\n  rtp_base_port: 22300\n"
        "  rtp_ports_per_worker: 100\n  metrics_port: 0\n  run_dir: run\n")
    path = write(tmp_path, "config.yaml", text)
    config = load_config(path)
    files = kam.write_files(config, config.path(config.serve.run_dir))
    cfg = files.cfg.read_text()
    assert f"listen=tls:127.0.0.1:{proxy_tls}" in cfg and 'loadmodule "tls.so"' in cfg
    assert f"certificate = {certs / 'bot.pem'}" in files.tls.read_text()
    proxy = kam.Kamailio(files)
    proxy.start()
    script = write(tmp_path, "worker.py", WORKER_SCRIPT)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    procs = [subprocess.Popen([sys.executable, str(script), str(path), str(i), str(22060 + 10 * i)], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=ROOT)
             for i in range(2)]
    outputs = []
    try:
        for proc in procs:
            seen = ""
            while "READY" not in seen:
                line = proc.stdout.readline()
                assert line, "a worker died at start:\n" + seen[-3000:]
                seen += line
            assert "TRANSPORTS ['udp'] None" in seen, seen[-2000:]
        deadline = time.monotonic() + 10
        while [d.up for d in kam.dispatcher_state(files)] != [True, True]:
            assert time.monotonic() < deadline, "Kamailio does not see both workers up:\n" + proxy.log_tail()
            time.sleep(0.2)
        code, data, err = asyncio.run(run_caller(f"sip:voicebot@127.0.0.1:{proxy_tls};transport=tls", path,
                                                 "--no-transcribe", "--hold", "2"))
    finally:
        proxy.stop()
        for proc in procs:
            proc.send_signal(signal.SIGTERM)
        for proc in procs:
            try:
                outputs.append(proc.communicate(timeout=15)[0])
            except subprocess.TimeoutExpired:
                proc.kill()
                outputs.append(proc.communicate()[0])
    assert code == 0, err[-3000:] + proxy.log_tail(30)
    assert data["bot_utterances"], data  # the worker's tone, heard through SRTP
    [answering] = [out for out in outputs if "ANSWERED" in out]
    invite = answering[answering.index("INVITE sip:voicebot@"):][:4000]
    assert "Via: SIP/2.0/UDP" in invite and "Via: SIP/2.0/TLS" in invite, invite
    assert "RTP/SAVP" in invite and "a=crypto:" in invite, invite
