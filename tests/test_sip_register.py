"""Registration at a PBX (``sip.accounts``) against a real Kamailio registrar with digest auth on loopback.

Kamailio (registrar + usrloc in memory + auth with the password in its config) listens on 127.0.0.2 and logs
every REGISTER it gets (user, digest user, whether the digest checked out); the bot is a real pjsua2 endpoint on
127.0.0.1; callers are sipp processes on 127.0.0.3 (outside ``sip.allowed_sources``, which is 10.99.0.0/16 here).

Ports: 20000-20999 only (other suites use 17000-19999): each test takes its own block of 20 (``Block``).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from prometheus_client import REGISTRY

from registrar_support import BOT_IP, OUTSIDE_IP, PASSWORD, REGISTRAR_IP, USER, Registrar
from sip_support import scenario, sipp_binary, via_proxy
from voicebot.config import Config, ConfigError, load_config
from voicebot.telephony.sip import SipWorker
from voicebot.telephony.sip_register import backoff, read_password, uri_host_port

pytestmark = pytest.mark.timeout(90)

class Block:
    """20 loopback ports for one test: registrar +0, bot SIP +2, bot RTP +4..+13, sipp +14, sipp media +16."""

    def __init__(self, index: int):
        assert 0 <= index < 50
        self.base = 20000 + 20 * index

    registrar = property(lambda self: self.base)
    bot = property(lambda self: self.base + 2)
    rtp = property(lambda self: self.base + 4)
    sipp = property(lambda self: self.base + 14)
    media = property(lambda self: self.base + 16)


@pytest.fixture
def registrar(request, tmp_path):
    made: list[Registrar] = []

    def make(block: Block) -> Registrar:
        reg = Registrar(tmp_path, block.registrar)
        made.append(reg)
        reg.start()
        return reg

    yield make
    for reg in made:
        reg.stop()


def bot_config(block: Block, folder: Path, password: str = PASSWORD, expiry_s: int = 60, retry_s: int = 2,
               extra: str = "") -> Config:
    path = folder / "config.yaml"
    path.write_text(f"""\
sip:
  listen_address: {BOT_IP}
  port: {block.bot}
  transports: [udp]
  allowed_sources: [10.99.0.0/16]
  accounts:
    - registrar: sip:{REGISTRAR_IP}:{block.registrar}
      user: {USER}
      password: {password}
      expiry_s: {expiry_s}
      retry_s: {retry_s}
      max_retry_s: 60
{extra}""")
    return load_config(path)


class Answer:
    """on_call: note the call, then wait until it ends."""

    def __init__(self):
        self.calls = []

    async def __call__(self, call) -> None:
        self.calls.append(call.info)
        async for _ in call.events():
            pass


def worker_for(config: Config, block: Block, on_call=None, log_level: int = 1) -> SipWorker:
    return SipWorker(config, on_call or Answer(), rtp_port=block.rtp, rtp_port_range=10, log_level=log_level)


async def until(predicate, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        assert time.monotonic() < deadline, what
        await asyncio.sleep(0.05)


def registered(worker: SipWorker) -> bool:
    return bool(worker.registrations) and worker.registrations[0].state == "registered"


def gauge(name: str) -> float | None:
    return REGISTRY.get_sample_value("voicebot_sip_registered", {"account": name})


def run_sipp_call(tmp_path: Path, block: Block, host: str, port: int, user: str, expect: int = 200,
                  routed: bool = False) -> subprocess.CompletedProcess:
    """One sipp call from OUTSIDE_IP to sip:user@host:port (through a record-routing proxy when ``routed``)."""
    xml = scenario(expect=expect, hold_ms=500)
    xml = (via_proxy(xml) if routed else xml).replace("sip:voicebot@", f"sip:{user}@")
    scen = tmp_path / f"call-{port}-{expect}.xml"
    scen.write_text(xml)
    cmd = [sipp_binary(), f"{host}:{port}", "-sf", str(scen), "-i", OUTSIDE_IP, "-p", str(block.sipp),
           "-mp", str(block.media), "-m", "1", "-l", "1", "-nostdin", "-trace_err",
           "-error_file", str(tmp_path / "sipp-errors.log"), "-timeout", "20s", "-timeout_error",
           "-recv_timeout", "10s"]
    proc = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=40)
    errors = tmp_path / "sipp-errors.log"
    proc.stdout += errors.read_text(errors="replace")[-3000:] if errors.exists() else ""
    return proc


# -- pure parts -----------------------------------------------------------------------------------------------
def test_accounts_config_needs_exactly_one_password_source_and_masks_it(tmp_path, monkeypatch):
    config = bot_config(Block(0), tmp_path)
    acc = config.sip.accounts[0]
    assert acc.name == f"{USER}@{REGISTRAR_IP}:20000"
    dumped = str(config.model_dump(mode="json")) + repr(config) + str(config.model_dump())
    assert PASSWORD not in dumped and "**********" in dumped
    assert read_password(acc, config.path) == PASSWORD
    (tmp_path / "pw.txt").write_text("from-a-file\n")
    config.sip.accounts[0] = acc.model_copy(update={"password": None, "password_file": "pw.txt"})
    assert read_password(config.sip.accounts[0], config.path) == "from-a-file"  # relative to the config file
    monkeypatch.setenv("VB_TEST_PW", "from-env")
    config.sip.accounts[0] = acc.model_copy(update={"password": None, "password_env": "VB_TEST_PW"})
    assert read_password(config.sip.accounts[0], config.path) == "from-env"
    with pytest.raises(Exception, match="VB_UNSET_PW"):
        read_password(acc.model_copy(update={"password": None, "password_env": "VB_UNSET_PW"}), config.path)

    def problems(account_yaml: str) -> str:
        path = tmp_path / "bad.yaml"
        path.write_text("sip:\n  accounts:\n    - " + account_yaml.replace("\n", "\n      ") + "\n")
        with pytest.raises(ConfigError) as err:
            load_config(path)
        return str(err.value)

    assert "exactly one of password" in problems("registrar: sip:pbx\nuser: a")
    assert "exactly one of password" in problems("registrar: sip:pbx\nuser: a\npassword: x\npassword_env: Y")
    assert "registrar SIP URI" in problems("registrar: pbx.example.com\nuser: a\npassword: x")
    assert "user name only" in problems("registrar: sip:pbx\nuser: a@b\npassword: x")
    assert uri_host_port("sip:[::1]:5070;transport=tcp") == ("::1", 5070)
    assert [backoff(acc, n) for n in (1, 2, 3, 4, 5, 6, 7)] == [2, 4, 8, 16, 32, 60, 60]


def test_a_tcp_account_needs_the_tcp_transport(tmp_path):
    block = Block(1)
    config = bot_config(block, tmp_path)
    config.sip.accounts[0] = config.sip.accounts[0].model_copy(update={"transport": "tcp"})

    async def main():
        with pytest.raises(RuntimeError, match="transport tcp is not in sip.transports"):
            async with worker_for(config, block):
                pass
    asyncio.run(main())
    assert not [t for t in threading.enumerate() if t.name.startswith("pjsua2-")]


# -- against Kamailio -----------------------------------------------------------------------------------------
def test_registers_with_digest_refreshes_and_unregisters_on_drain(tmp_path, registrar, caplog):
    block = Block(2)
    reg = registrar(block)
    config = bot_config(block, tmp_path, expiry_s=10)
    name = config.sip.accounts[0].name
    caplog.set_level(logging.INFO, logger="voicebot")

    async def main():
        worker = worker_for(config, block)
        async with worker:
            await until(lambda: registered(worker), 10, "not registered")
            assert gauge(name) == 1.0
            first = time.monotonic()
            # expiry 10 s: pjsua refreshes 3 s before it, so the next authenticated REGISTER ~7 s later
            await asyncio.to_thread(reg.wait_for, lambda: len(reg.ok()) >= 2, 14, "no refresh")
            elapsed = time.monotonic() - first
            assert registered(worker)
            await worker.drain(timeout_s=1)
        return elapsed

    elapsed = asyncio.run(main())
    assert 5 <= elapsed <= 10, elapsed
    oks = reg.ok()
    assert all(f"user={USER} authuser={USER}" in line and "expires=10" in line for line in oks[:2]), oks
    assert any("expires=0" in line for line in oks), "no unregister at drain: " + "\n".join(oks)
    assert not [line for line in reg.lines() if " bad " in line]
    assert gauge(name) == 0.0
    text = caplog.text
    assert f"registering {name}" in text and f"registered {name}" in text and f"unregistered {name}" in text
    assert len(re.findall(rf"(?<!un)registered {re.escape(name)} \(", text)) == 1  # refreshes: not at INFO
    assert PASSWORD not in text


def test_a_call_through_the_registrar_is_answered_and_a_direct_outside_call_gets_403(tmp_path, registrar):
    block = Block(3)
    reg = registrar(block)
    (tmp_path / "callers.txt").write_text("alice:caller-password\n")  # direct callers must authenticate ...
    config = bot_config(block, tmp_path, extra="  auth_users_file: callers.txt\n")
    answer = Answer()

    async def main():
        worker = worker_for(config, block, answer)
        async with worker:
            await until(lambda: registered(worker), 10, "not registered")
            through = await asyncio.to_thread(run_sipp_call, tmp_path, block, REGISTRAR_IP, block.registrar, USER,
                                              200, True)
            await until(lambda: worker.stats.ended >= 1, 5, "the call did not end")
            direct = await asyncio.to_thread(run_sipp_call, tmp_path, block, BOT_IP, block.bot, USER, 403)
        return worker, through, direct

    worker, through, direct = asyncio.run(main())
    assert through.returncode == 0, through.stdout[-3000:] + "\n".join(reg.lines(""))
    assert any("CALL to botext relayed" in line for line in reg.lines("CALL")), reg.lines("CALL")
    assert len(answer.calls) == 1 and answer.calls[0].remote.startswith(REGISTRAR_IP + ":")
    assert direct.returncode == 0, direct.stdout[-3000:]
    assert worker.stats.answered == 1 and worker.stats.rejected_forbidden == 1
    assert worker.stats.challenged == 0  # ... the registrar's calls are exempt


def test_re_registers_after_the_registrar_restarts(tmp_path, registrar):
    """Kamailio keeps bindings in memory only: a restart forgets the bot, and calls get 404 until the bot's
    next refresh registers it again; a REGISTER the stopped registrar never answered is retried after retry_s."""
    block = Block(4)
    reg = registrar(block)
    config = bot_config(block, tmp_path, expiry_s=10, retry_s=2)

    async def main():
        worker = worker_for(config, block, Answer())
        async with worker:
            await until(lambda: registered(worker), 10, "not registered")
            await asyncio.to_thread(reg.stop)
            before = len(reg.ok())
            await asyncio.sleep(1)
            await asyncio.to_thread(reg.start)
            # forgotten: a call through the registrar finds nobody
            lost = await asyncio.to_thread(run_sipp_call, tmp_path, block, REGISTRAR_IP, block.registrar, USER, 404)
            await asyncio.to_thread(reg.wait_for, lambda: len(reg.ok()) > before, 15, "no re-registration")
            await until(lambda: registered(worker), 5, "not registered again")
            back = await asyncio.to_thread(run_sipp_call, tmp_path, block, REGISTRAR_IP, block.registrar, USER,
                                           200, True)
        return worker, lost, back

    worker, lost, back = asyncio.run(main())
    assert lost.returncode == 0, lost.stdout[-3000:]
    assert back.returncode == 0, back.stdout[-3000:] + "\n".join(reg.lines(""))
    assert worker.stats.answered == 1


def test_a_wrong_password_is_reported_once_and_retried_with_backoff(tmp_path, registrar, caplog):
    block = Block(5)
    reg = registrar(block)
    config = bot_config(block, tmp_path, password="not-the-password", retry_s=1)
    name = config.sip.accounts[0].name
    caplog.set_level(logging.DEBUG, logger="voicebot")

    async def main():
        worker = worker_for(config, block)
        async with worker:
            await asyncio.sleep(8)
            return worker.registrations[0].failures, worker.registrations[0].state

    failures, state = asyncio.run(main())
    attempts = [line for line in reg.lines() if " bad " in line]
    # backoff 1, 2, 4 s: attempts at 0, 1, 3, 7 s, each a REGISTER with the wrong digest (and one without)
    assert 3 <= len(attempts) <= 5, attempts
    assert 3 <= failures <= 5 and state == "failed"
    assert not reg.ok()
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR and "registration" in r.getMessage()]
    assert len(errors) == 1, [r.getMessage() for r in errors]
    assert "wrong password" in errors[0].getMessage() and name in errors[0].getMessage()
    assert "401" in errors[0].getMessage()
    assert gauge(name) == 0.0
    assert REGISTRY.get_sample_value("voicebot_sip_register_failures_total",
                                     {"account": name, "code": "401"}) >= 3


def test_the_password_never_reaches_any_log_line_even_pjsips_own(tmp_path, registrar, caplog):
    """pjsip at its most verbose (level 6: every SIP message, the account config) through voicebot.pjsip."""
    block = Block(6)
    reg = registrar(block)
    config = bot_config(block, tmp_path)
    caplog.set_level(logging.DEBUG)

    async def main():
        worker = worker_for(config, block, log_level=6)
        async with worker:
            await until(lambda: registered(worker), 10, "not registered")
            await worker.drain(timeout_s=1)

    asyncio.run(main())
    pjsip = [r.getMessage() for r in caplog.records if r.name == "voicebot.pjsip"]
    assert any("Authorization: Digest" in m and f'username="{USER}"' in m for m in pjsip), "no REGISTER logged"
    assert len(reg.ok()) >= 1
    everything = caplog.text + "\n".join(pjsip)
    assert PASSWORD not in everything
    assert not re.search(re.escape(PASSWORD[:10]), everything)


# -- serve --workers N: worker 0 owns the registration (one binding), the others register nothing --------------
WORKER_SCRIPT = """
import asyncio, signal, sys
from voicebot.config import load_config
from voicebot.telephony.kamailio import worker_config, worker_slots
from voicebot.telephony.sip import SipWorker

config = load_config(sys.argv[1])
slot = worker_slots(config)[int(sys.argv[2])]

async def on_call(call):
    print("ANSWERED", call.info.remote, flush=True)
    async for _ in call.events():
        pass

async def main():
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    worker = SipWorker(worker_config(config, slot), on_call, rtp_port=int(sys.argv[3]), rtp_port_range=10)
    async with worker:
        print("READY", [r.name for r in worker.registrations], flush=True)
        await stop.wait()
        await worker.drain(timeout_s=2)
    print("STOPPED", flush=True)

asyncio.run(main())
"""


def test_with_workers_one_registration_and_the_registrar_s_calls_spread_over_the_workers(tmp_path, registrar):
    """Kamailio and two worker processes as `serve --workers 2` configures them: worker 0 registers once, giving
    the proxy as its Contact; four calls at once through the registrar (from 127.0.0.3, outside allowed_sources:
    Kamailio trusts the registrar's address) come through the proxy and land on both workers."""
    from voicebot.telephony import kamailio as kam

    reg = registrar(Block(40))  # 20800: the registrar on 127.0.0.2
    proxy_port, workers_base = 20802, 20804  # where Kamailio would listen; the workers on 20804-20805
    path = tmp_path / "config.yaml"
    path.write_text(f"""\
sip:
  listen_address: {BOT_IP}
  port: {proxy_port}
  transports: [udp]
  allowed_sources: [10.99.0.0/16]
  accounts:
    - registrar: sip:{REGISTRAR_IP}:{reg.port}
      user: {USER}
      password: {PASSWORD}
      expiry_s: 60
serve:
  workers: 2
  worker_base_port: {workers_base}
  rtp_base_port: 20600
  rtp_ports_per_worker: 100
  metrics_port: 0
  run_dir: run
""")
    config = load_config(path)
    first, second = (kam.worker_config(config, slot) for slot in kam.worker_slots(config))
    assert len(first.sip.accounts) == 1 and second.sip.accounts == []
    assert first.sip.accounts[0].contact_host == f"{BOT_IP}:{proxy_port}"
    proxy = kam.Kamailio(kam.write_files(config, config.path(config.serve.run_dir)))
    proxy.start()
    script = tmp_path / "worker.py"
    script.write_text(WORKER_SCRIPT)
    root = Path(__file__).resolve().parent.parent
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(root), os.environ.get("PYTHONPATH")]))}
    procs = [subprocess.Popen([sys.executable, str(script), str(path), str(i), str(20810 + 20 * i)], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=root)
             for i in range(2)]
    outputs, ready = [], []
    try:
        for proc in procs:  # pjlib prints a few lines of its own before its log goes through logging
            seen = ""
            while not seen.endswith("\n") or not seen.splitlines()[-1].startswith("READY"):
                line = proc.stdout.readline()
                assert line, "a worker died at start:\n" + seen[-3000:]
                seen += line
            ready.append(seen.splitlines()[-1])
        reg.wait_for(lambda: len(reg.ok()) >= 1, 10, "worker 0 did not register")
        reg.wait_for(lambda: [d.up for d in kam.dispatcher_state(proxy.files)] == [True, True], 10,
                     "Kamailio does not see both workers up")
        xml = via_proxy(scenario(hold_ms=2000)).replace("sip:voicebot@", f"sip:{USER}@")
        scen = tmp_path / "four-calls.xml"
        scen.write_text(xml)
        four = subprocess.run([sipp_binary(), f"{REGISTRAR_IP}:{reg.port}", "-sf", str(scen), "-i", OUTSIDE_IP,
                               "-p", "20850", "-mp", "20860", "-m", "4", "-l", "4", "-r", "10", "-nostdin",
                               "-timeout", "25s", "-timeout_error", "-recv_timeout", "10s", "-trace_err",
                               "-error_file", str(tmp_path / "sipp-err.log")],
                              cwd=tmp_path, capture_output=True, text=True, timeout=40)
        errors = tmp_path / "sipp-err.log"
        assert four.returncode == 0, (four.stdout[-2000:] + "\n".join(reg.lines("")) + proxy.log_tail(40)
                                      + (errors.read_text()[-4000:] if errors.exists() else ""))
    finally:
        proxy.stop()
        for proc in procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in procs:
            try:
                out, _ = proc.communicate(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                out, _ = proc.communicate()
            outputs.append(out)
    answered = [out.count(f"ANSWERED {BOT_IP}:{proxy_port}") for out in outputs]  # each came via the proxy
    assert sum(answered) == 4 and min(answered) >= 1, outputs
    assert ready == [f"READY ['{USER}@{REGISTRAR_IP}:{reg.port}']", "READY []"], ready
    contacts = {line.split("contact=")[1] for line in reg.ok() if "expires=60" in line}
    assert contacts == {f"<sip:{USER}@{BOT_IP}:{proxy_port}>"}, reg.ok()  # one binding: the proxy
    calls = reg.lines("CALL")
    assert len(calls) == 4 and all(f"relayed to sip:{USER}@{BOT_IP}:{proxy_port} " in c for c in calls), calls
    assert any("expires=0" in line for line in reg.ok()), "worker 0 did not unregister at its drain"
    assert all("STOPPED" in out for out in outputs), outputs


def test_a_call_to_the_pbx_goes_out_on_the_account_and_answers_its_407(tmp_path, registrar):
    """A transfer target on the PBX (here sip:operator@registrar, which demands proxy auth): dialled on the
    registered account, whose credentials answer the 407; the plain account (no registration) gets the 407."""
    from sip_support import start_sipp, wait_sipp
    from voicebot.telephony.sip import SipDialError

    block = Block(7)
    reg = registrar(block)
    operator = start_sipp(tmp_path, block.registrar + 18, block.registrar + 6, builtin="uas", rtp_echo=True,
                          local_ip=OUTSIDE_IP, timeout_s=25)
    target = f"sip:operator@{REGISTRAR_IP}:{block.registrar}"

    async def main():
        worker = worker_for(bot_config(block, tmp_path), block)
        async with worker:
            await until(lambda: registered(worker), 10, "not registered")
            call = await worker.dial(target, timeout_s=10)
            await asyncio.sleep(0.5)
            await call.hangup()
        plain = SipWorker(Config(), None, port=0, transports=["udp"], rtp_port=block.rtp, rtp_port_range=10)
        async with plain:
            with pytest.raises(SipDialError) as refused:
                await plain.dial(target, timeout_s=10)
        return refused.value

    refused = asyncio.run(main())
    result = wait_sipp(operator, 10)
    assert result.returncode == 0, result.stdout[-3000:]
    assert any(f"OPER authuser={USER} ok" in line for line in reg.lines("OPER")), reg.lines("OPER")
    assert refused.status == 407, refused


def test_voicebot_call_registers_dials_through_the_registrar_on_its_account_and_keeps_to_its_rtp_ports(
        tmp_path, registrar):
    """`voicebot call --register account.yaml --rtp-port P --rtp-ports 10` (the CLI, its own process): it
    registers as caller1 (digest user botext, the one the registrar knows) before dialling, the INVITE to
    sip:botext@registrar reaches the bot by its registration, and the caller's SDP offers an RTP port in its
    range."""
    block = Block(8)
    reg = registrar(block)
    caller_rtp = block.base + 600  # 20760-20769: free in this file's blocks
    account = tmp_path / "caller-account.yaml"
    (tmp_path / "caller-pw.txt").write_text(PASSWORD + "\n")
    account.write_text(f"registrar: sip:{REGISTRAR_IP}:{block.registrar}\nuser: caller1\nauth_user: {USER}\n"
                       "password_file: caller-pw.txt\nexpiry_s: 60\n")
    caller_config = tmp_path / "caller.yaml"
    caller_config.write_text("sip:\n  listen_address: 127.0.0.1\n")
    answer = Answer()
    root = Path(__file__).resolve().parent.parent

    async def main():
        worker = worker_for(bot_config(block, tmp_path), block, answer)
        async with worker:
            await until(lambda: registered(worker), 10, "the bot did not register")
            cmd = [sys.executable, "-m", "voicebot.call_cli", f"sip:{USER}@{REGISTRAR_IP}:{block.registrar}",
                   "-c", str(caller_config), "--register", str(account), "--rtp-port", str(caller_rtp),
                   "--rtp-ports", "10", "--no-wait-greeting", "--hold", "0.5", "--no-transcribe", "--json",
                   "--timeout", "10"]
            return await asyncio.to_thread(subprocess.run, cmd, capture_output=True, text=True, timeout=60,
                                           cwd=root)

    proc = asyncio.run(main())
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:] + "\n".join(reg.lines(""))
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    assert report["uri"] == f"sip:{USER}@{REGISTRAR_IP}:{block.registrar}" and report["codec"]
    assert any("user=caller1 authuser=botext" in line and " ok " in line for line in reg.lines()), reg.lines()
    calls = reg.lines("CALL")
    assert len(calls) == 1 and f"CALL to {USER} relayed" in calls[0] and "from +15550102030" in calls[0], calls
    port = int(re.search(r"m=audio (\d+)", calls[0]).group(1))
    assert caller_rtp <= port < caller_rtp + 10, calls[0]
    assert len(answer.calls) == 1 and answer.calls[0].remote.startswith(REGISTRAR_IP + ":")


def test_voicebot_call_reports_a_refused_registration_and_bad_options_without_dialling(tmp_path, registrar):
    block = Block(9)
    reg = registrar(block)
    root = Path(__file__).resolve().parent.parent
    caller_config = tmp_path / "caller.yaml"
    caller_config.write_text("sip:\n  listen_address: 127.0.0.1\n")
    bad = tmp_path / "bad-account.yaml"
    bad.write_text(f"registrar: sip:{REGISTRAR_IP}:{block.registrar}\nuser: {USER}\npassword_env: VB_CALL_PW\n"
                   "expiry: 60\n")

    def run(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
        cmd = [sys.executable, "-m", "voicebot.call_cli", f"sip:{USER}@{REGISTRAR_IP}:{block.registrar}", "-c",
               str(caller_config), "--no-transcribe", "--no-wait-greeting", "--hold", "0", "--timeout", "5", *args]
        return subprocess.run(cmd, capture_output=True, text=True, timeout=60, cwd=root,
                              env={**os.environ, **(env or {})})

    typo = run("--register", str(bad))
    assert typo.returncode == 1 and f"{bad}:4: expiry: unknown key" in typo.stderr, typo.stderr[-2000:]
    inline = run("--registrar", f"sip:{REGISTRAR_IP}:{block.registrar}", "--user", USER)
    assert inline.returncode == 1 and "--password-env or --password-file" in inline.stderr, inline.stderr[-2000:]
    odd = run("--rtp-port", "20001")
    assert odd.returncode == 1 and "an even port" in odd.stderr, odd.stderr[-2000:]
    assert not reg.lines(), reg.lines()  # none of these sent a REGISTER
    wrong = run("--registrar", f"sip:{REGISTRAR_IP}:{block.registrar}", "--user", USER, "--password-env",
                "VB_CALL_PW", env={"VB_CALL_PW": "not-the-password"})
    assert wrong.returncode == 1, wrong.stderr[-2000:]
    assert "registering botext@" in wrong.stderr and "401" in wrong.stderr and "wrong password" in wrong.stderr
    assert "not-the-password" not in wrong.stderr + wrong.stdout
    assert not reg.lines("CALL"), reg.lines("CALL")  # it did not dial into the refusal
