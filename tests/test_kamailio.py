"""Kamailio in front of several workers: the generated config, real Kamailio with stand-in workers, and
`voicebot serve --workers 2` with the real models answering 8 concurrent calls through it.

Ports: 19000-19999 only (stand-in tests 19000-19899, the end-to-end tests 19100-19399 and 19900-19999).
"""

from __future__ import annotations

import re
import signal
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from sip_support import (_RECV_BYE, PCAP_DIR, finish_sipp_calls, run_sipp, scenario, sipp_binary, start_sipp_calls,
                         via_proxy)
from voicebot.config import ConfigError, load_config
from voicebot.telephony import kamailio
from voicebot.telephony.kamailio import Kamailio, KamailioError, RunFiles

PROXY = 19000  # Kamailio in the stand-in tests; stand-in workers on 19010.., callers on 19020..


def kamailio_or_fail() -> None:
    try:
        kamailio.kamailio_binary()
        kamailio.kamailio_binary("kamcmd")
    except KamailioError as exc:
        pytest.fail(str(exc))


def write_config(folder: Path, text: str):
    path = folder / "config.yaml"
    path.write_text(text)
    return load_config(path)


def two_worker_config(folder: Path, sources: str = "[127.0.0.0/8]", transports: str = "[udp]"):
    return write_config(folder, f"""\
sip:
  port: {PROXY}
  transports: {transports}
  allowed_sources: {sources}
serve:
  workers: 2
  worker_base_port: 19010
  rtp_base_port: 19400
  rtp_ports_per_worker: 100
  metrics_port: 0
  run_dir: run
""")


# -- the generated files --------------------------------------------------------------------------------------
def test_rendered_config_passes_kamailio_check_and_enforces_the_allow_list(tmp_path):
    kamailio_or_fail()
    config = two_worker_config(tmp_path, sources="[127.0.0.0/8, 10.1.2.3, '2001:db8::/32']",
                               transports="[udp, tcp]")
    files = kamailio.write_files(config, tmp_path / "run")  # runs `kamailio -c -f`; raises when refused
    text = files.cfg.read_text()
    assert f"listen=udp:127.0.0.1:{PROXY}" in text and f"listen=tcp:127.0.0.1:{PROXY}" in text
    assert "disable_tcp" not in text
    # the allow-list: every source, and 403 for the rest
    condition = "src_ip == 127.0.0.0/8 || src_ip == 10.1.2.3/32 || src_ip == [2001:db8::]/32"
    assert f"if ({condition})" in text
    assert 'sl_send_reply("403", "Forbidden")' in text
    # sanity, max-forwards, record-route / loose-route, call-load dispatching, health checks, failover
    for needle in ('sanity_check(', 'mf_process_maxfwd_header("10")', "record_route()", "loose_route()",
                   'ds_select_dst("1", "10")', 'modparam("dispatcher", "ds_hash_size", 9)', "ds_load_update()",
                   'modparam("dispatcher", "ds_ping_method", "OPTIONS")',
                   'modparam("dispatcher", "ds_ping_interval", 2)', 'modparam("dispatcher", "ds_probing_mode", 1)',
                   'modparam("tm", "fr_timer", 2000)', "ds_next_dst()", 'ds_mark_dst("ip")',
                   'sl_send_reply("503", "Service Unavailable")', f'"unix:{files.ctl_socket}"',
                   f'"list_file", "{files.dispatcher}"'):
        assert needle in text, needle


def test_udp_only_config_disables_tcp_and_still_checks(tmp_path):
    kamailio_or_fail()
    files = kamailio.write_files(two_worker_config(tmp_path), tmp_path / "run")
    text = files.cfg.read_text()
    assert "disable_tcp=yes" in text and f"listen=udp:127.0.0.1:{PROXY}" in text
    assert "listen=tcp" not in text


def test_dispatcher_list_has_one_line_per_worker_with_call_load_attributes(tmp_path):
    config = two_worker_config(tmp_path)
    lines = kamailio.render_dispatcher(config).splitlines()
    assert lines[1:] == ["1 sip:127.0.0.1:19010 0 0 duid=w0;maxload=4",
                         "1 sip:127.0.0.1:19011 0 0 duid=w1;maxload=4"]
    assert kamailio.render_dispatcher(config, workers=3).splitlines()[-1] == \
        "1 sip:127.0.0.1:19012 0 0 duid=w2;maxload=4"


def test_tcp_only_workers_are_reached_over_tcp(tmp_path):
    config = two_worker_config(tmp_path, transports="[tcp]")
    assert "1 sip:127.0.0.1:19010;transport=tcp 0 0 duid=w0;maxload=4" in kamailio.render_dispatcher(config)


def test_each_worker_gets_its_port_its_rtp_block_and_only_the_proxy_as_source(tmp_path):
    config = two_worker_config(tmp_path)
    slots = kamailio.worker_slots(config)
    assert [(s.name, s.port, s.rtp_port, s.rtp_ports) for s in slots] == [("w0", 19010, 19400, 100),
                                                                         ("w1", 19011, 19500, 100)]
    worker = kamailio.worker_config(config, slots[1])
    assert (worker.sip.listen_address, worker.sip.port, worker.sip.allowed_sources) == ("127.0.0.1", 19011,
                                                                                      ["127.0.0.1"])
    assert worker.sip.operator_uri == config.sip.operator_uri and worker.base_dir == config.base_dir
    assert config.sip.port == PROXY  # the original is untouched


def test_wildcard_listen_address_binds_workers_everywhere_and_reaches_them_over_loopback(tmp_path):
    kamailio_or_fail()
    config = write_config(tmp_path, f"sip:\n  listen_address: 0.0.0.0\n  port: {PROXY}\n  transports: [udp]\n"
                                    "serve:\n  workers: 2\n  worker_base_port: 19010\n  metrics_port: 0\n")
    files = kamailio.write_files(config, tmp_path / "run")
    text = files.cfg.read_text()
    assert f"port={PROXY}" in text and "listen=" not in text
    slot = kamailio.worker_slots(config)[0]
    assert (slot.bind, slot.uri(["udp"])) == ("0.0.0.0", "sip:127.0.0.1:19010")
    assert kamailio.worker_config(config, slot).sip.allowed_sources == ["127.0.0.1"]


def test_serve_section_validation_names_the_clash(tmp_path):
    def problems(text: str) -> list[str]:
        with pytest.raises(ConfigError) as info:
            write_config(tmp_path, text)
        return [str(p) for p in info.value.problems]

    [clash] = problems("sip:\n  port: 5081\nserve:\n  workers: 2\n  worker_base_port: 5080\n")
    assert "worker ports 5080-5081 include sip.port 5081" in clash
    [many] = problems("serve:\n  workers: 17\n")
    assert "serve.workers" in many and "less than or equal to 16" in many
    [rtp] = problems("serve:\n  workers: 3\n  worker_base_port: 21000\n  rtp_base_port: 20000\n")
    assert "overlap the worker SIP ports 21000-21002" in rtp
    [far] = problems("serve:\n  workers: 2\n  rtp_base_port: 65000\n")
    assert "goes past port 65535" in far
    [port] = problems("serve:\n  metrics_port: 70000\n")
    assert "serve.metrics_port" in port
    [address] = problems("serve:\n  metrics_address: localhost\n")
    assert "'localhost' is not an IP address" in address
    # one worker uses none of the worker ports: they may overlap sip.port then
    assert write_config(tmp_path, "sip:\n  port: 5080\n").serve.workers == 1


def test_workers_option_is_checked_against_the_ports(tmp_path):
    from typer.testing import CliRunner

    from voicebot.cli import app

    cfg = tmp_path / "config.yaml"
    cfg.write_text("sip:\n  port: 5082\nserve:\n  worker_base_port: 5080\n")
    result = CliRunner().invoke(app, ["serve", "--workers", "3", "--config", str(cfg)])
    assert result.exit_code == 2
    assert "worker ports 5080-5082 include sip.port 5082" in result.output


def test_missing_kamailio_names_the_install_command(monkeypatch):
    monkeypatch.setattr(kamailio.shutil, "which", lambda name, path=None: None)
    with pytest.raises(KamailioError, match=r"apt-get install -y kamailio \(scripts/setup.sh does\)"):
        kamailio.kamailio_binary()


def test_a_refused_config_shows_kamailios_error(tmp_path):
    kamailio_or_fail()
    bad = tmp_path / "bad.cfg"
    bad.write_text('#!KAMAILIO\nloadmodule "no_such_module.so"\nrequest_route { exit; }\n')
    with pytest.raises(KamailioError, match="refused"):
        kamailio.check_config(bad)


def test_parse_dispatcher_list():
    text = """{
        NRSETS: 1
        RECORDS: { SET: { ID: 1 TARGETS: {
            DEST: { URI: sip:127.0.0.1:5081 FLAGS: AP PRIORITY: 0 ATTRS: { BODY: duid=w1;maxload=4 }
                    RUNTIME: { DLGLOAD: 3 } }
            DEST: { URI: sip:127.0.0.1:5080 FLAGS: IP PRIORITY: 0 RUNTIME: { DLGLOAD: 0 } } } } } }"""
    dests = kamailio.parse_dispatcher_list(text)
    assert [(d.uri, d.flags, d.load, d.up) for d in dests] == [("sip:127.0.0.1:5081", "AP", 3, True),
                                                               ("sip:127.0.0.1:5080", "IP", 0, False)]


# -- real Kamailio in front of stand-in workers (sipp UAS processes) ------------------------------------------
STAND_IN = """<?xml version="1.0" encoding="ISO-8859-1" ?>
<!DOCTYPE scenario SYSTEM "sipp.dtd">
<scenario name="stand-in worker">
  <recv request="INVITE" crlf="true"/>
  <send>
    <![CDATA[
      SIP/2.0 {status}
      [last_Via:]
      [last_Record-Route:]
      [last_From:]
      [last_To:];tag=[pid]SIPpTag01[call_number]
      [last_Call-ID:]
      [last_CSeq:]
      Contact: <sip:[local_ip]:[local_port];transport=[transport]>
{body}    ]]>
  </send>
{rest}</scenario>
"""
_SDP = """      Content-Type: application/sdp
      Content-Length: [len]

      v=0
      o=user1 53655765 2353687637 IN IP[local_ip_type] [local_ip]
      s=-
      c=IN IP[media_ip_type] [media_ip]
      t=0 0
      m=audio [media_port] RTP/AVP 8
      a=rtpmap:8 PCMA/8000
"""
_ANSWERED = '  <recv request="ACK" crlf="true"/>\n' + _RECV_BYE


class StandIn:
    """A sipp UAS playing a worker: answers INVITEs (200 with the Record-Route echoed, or ``status``), OPTIONS
    pings (-aa) and echoes RTP. One process each: a real worker is a process of its own too."""

    def __init__(self, folder: Path, index: int, status: str = "200 OK"):
        self.port = 19010 + index
        self.log = folder / f"stand-in-{index}.log"
        answered = status.startswith("200")
        xml = STAND_IN.format(status=status, body=_SDP if answered else "      Content-Length: 0\n",
                              rest=_ANSWERED if answered else '  <recv request="ACK"/>\n')
        scen = folder / f"stand-in-{index}.xml"
        scen.write_text(xml)
        self.proc = subprocess.Popen(
            [sipp_binary(), "-sf", str(scen), "-aa", "-rtp_echo", "-i", "127.0.0.1", "-p", str(self.port),
             "-mp", str(19400 + 100 * index), "-nostdin", "-trace_msg", "-message_file", str(self.log)],
            stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)

    def invites(self) -> int:
        """INVITEs this stand-in received so far."""
        try:
            return len(re.findall(r"^INVITE sip:", self.log.read_text(errors="replace"), re.MULTILINE))
        except OSError:
            return 0

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


@pytest.fixture
def proxy(tmp_path):
    """Kamailio (from the generated config) in front of two stand-in workers; yields (files, stand_ins)."""
    kamailio_or_fail()
    stand_ins: list[StandIn] = []
    proc = Kamailio(RunFiles(tmp_path / "run"))

    def start(statuses=("200 OK", "200 OK"), sources="[127.0.0.0/8]"):
        config = two_worker_config(tmp_path, sources=sources)
        files = kamailio.write_files(config, tmp_path / "run")
        stand_ins.extend(StandIn(tmp_path, i, status) for i, status in enumerate(statuses))
        proc.start()
        deadline = time.monotonic() + 10
        while not all(d.flags == "AP" for d in kamailio.dispatcher_state(files)):
            assert time.monotonic() < deadline, kamailio.dispatcher_state(files)
            time.sleep(0.2)
        return files, stand_ins

    yield start
    proc.stop()
    for stand_in in stand_ins:
        stand_in.kill()


def calls(tmp_path: Path, n: int, hold_ms: int, name: str, local_port: int, media_port: int,
          expect: int = 200) -> subprocess.Popen:
    xml = via_proxy(scenario(hold_ms=hold_ms)) if expect == 200 else scenario(expect=expect)
    return start_sipp_calls(tmp_path, xml, PROXY, local_port, media_port, name, calls=n, limit=n, timeout_s=40)


@pytest.mark.timeout(120)
def test_kamailio_spreads_calls_over_both_workers_and_takes_a_dead_one_out(tmp_path, proxy):
    files, (w0, w1) = proxy()
    # 8 calls at once: call-load puts 4 on each worker (maxload=4), so a 9th gets a fast 503 from the proxy
    eight = calls(tmp_path, 8, 3000, "eight", 19020, 19600)
    deadline = time.monotonic() + 10
    while sum(d.load or 0 for d in kamailio.dispatcher_state(files)) < 8:
        assert eight.poll() is None and time.monotonic() < deadline, kamailio.dispatcher_state(files)
        time.sleep(0.1)
    assert sorted(d.load for d in kamailio.dispatcher_state(files)) == [4, 4]
    ninth = finish_sipp_calls(calls(tmp_path, 1, 0, "ninth", 19021, 19700, expect=503), tmp_path, "ninth")
    assert ninth.returncode == 0, ninth.stdout
    result = finish_sipp_calls(eight, tmp_path, "eight")
    assert result.returncode == 0, result.stdout  # every call answered, held and hung up through the proxy
    assert (w0.invites(), w1.invites()) == (4, 4)
    assert [d.load for d in kamailio.dispatcher_state(files)] == [0, 0]  # BYEs released the load

    # a worker dies: the OPTIONS pings (every 2 s, fr_timer 2 s) take it out, calls go to the other
    w1.kill()
    killed = time.monotonic()
    while any(d.up for d in kamailio.dispatcher_state(files) if d.uri.endswith(":19011")):
        assert time.monotonic() - killed < 10, kamailio.dispatcher_state(files)
        time.sleep(0.2)
    print(f"dead worker marked down after {time.monotonic() - killed:.1f} s")
    after = finish_sipp_calls(calls(tmp_path, 4, 500, "after", 19022, 19800), tmp_path, "after")
    assert after.returncode == 0, after.stdout
    assert w0.invites() == 8 and w1.invites() == 4


@pytest.mark.timeout(120)
def test_an_invite_to_a_worker_that_just_died_is_retried_on_the_other(tmp_path, proxy):
    files, (w0, w1) = proxy()
    w0.kill()  # not yet noticed by the pings: the INVITE times out (fr_timer 2 s) and the failure route retries
    started = time.monotonic()
    result = finish_sipp_calls(calls(tmp_path, 2, 500, "retry", 19020, 19600), tmp_path, "retry")
    assert result.returncode == 0, result.stdout
    assert w1.invites() == 2
    assert time.monotonic() - started < 15
    assert not [d for d in kamailio.dispatcher_state(files) if d.uri.endswith(":19010")][0].up


@pytest.mark.timeout(120)
def test_a_draining_worker_s_503_goes_to_the_next_and_503_when_none_takes_it(tmp_path, proxy):
    files, (draining, w1) = proxy(statuses=("503 Service Unavailable", "200 OK"))
    # two calls at once: call-load sends one of them to the draining worker first; it is retried on the other
    result = finish_sipp_calls(calls(tmp_path, 2, 1500, "two", 19020, 19600), tmp_path, "two")
    assert result.returncode == 0, result.stdout
    assert draining.invites() >= 1 and w1.invites() == 2
    assert [d.load for d in kamailio.dispatcher_state(files)] == [0, 0]
    w1.kill()
    deadline = time.monotonic() + 10
    while any(d.up for d in kamailio.dispatcher_state(files) if d.uri.endswith(":19011")):
        assert time.monotonic() < deadline
        time.sleep(0.2)
    refused = finish_sipp_calls(calls(tmp_path, 1, 0, "refused", 19021, 19700, expect=503), tmp_path, "refused")
    assert refused.returncode == 0, refused.stdout


@pytest.mark.timeout(60)
def test_a_caller_outside_the_allow_list_gets_403_from_the_proxy(tmp_path, proxy):
    files, (w0, w1) = proxy(sources="[127.0.0.1]")
    result = run_sipp(tmp_path, scenario(expect=403), target_port=PROXY, local_port=19020, media_port=19600,
                      local_ip="127.0.0.5")
    assert result.returncode == 0, result.stdout
    assert w0.invites() + w1.invites() == 0
    allowed = finish_sipp_calls(calls(tmp_path, 1, 200, "allowed", 19021, 19700), tmp_path, "allowed")
    assert allowed.returncode == 0, allowed.stdout


def test_a_stale_kamailio_from_the_pid_file_is_stopped_before_a_new_start(tmp_path):
    kamailio_or_fail()
    files = kamailio.write_files(two_worker_config(tmp_path), tmp_path / "run")
    old = subprocess.Popen(["kamailio", "-f", str(files.cfg), "-DD", "-E", "-P", str(files.pidfile)],
                           stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT, start_new_session=True)
    new = Kamailio(files)
    try:
        deadline = time.monotonic() + 5
        while not files.pidfile.exists():
            assert time.monotonic() < deadline
            time.sleep(0.05)
        new.start()
        assert old.wait(5) is not None
        assert int(files.pidfile.read_text()) == new.pid
    finally:
        new.stop()
        if old.poll() is None:
            old.kill()
    assert not files.pidfile.exists()


# -- the supervisor with stand-in workers (no models) ----------------------------------------------------------
def supervisor_for(tmp_path: Path, monkeypatch, worker_cmd):
    """A Supervisor on the stand-in ports whose workers are ``worker_cmd(index, port)``; its output in a buffer."""
    import io

    from rich.console import Console

    from voicebot import metrics, supervisor

    monkeypatch.setenv(metrics.MULTIPROC_ENV, "")  # prepare() sets it: give it back after the test
    config = two_worker_config(tmp_path)
    slots = {s.index: s for s in kamailio.worker_slots(config)}
    monkeypatch.setattr(supervisor, "worker_command", lambda index, path: worker_cmd(index, slots[index].port))
    out = io.StringIO()
    return supervisor.Supervisor(config, tmp_path / "config.yaml", 2, Console(file=out, width=200)), out


def stand_in_worker(tmp_path: Path):
    from voicebot.supervisor import READY_PREFIX

    xml = tmp_path / "stand-in.xml"
    xml.write_text(STAND_IN.format(status="200 OK", body=_SDP, rest=_ANSWERED))

    def command(index: int, port: int) -> list[str]:
        return ["sh", "-c", f"echo '{READY_PREFIX} index={index} pid='$$' port={port}'; exec {sipp_binary()} "
                f"-sf {xml} -aa -i 127.0.0.1 -p {port} -mp {19400 + 100 * index} -nostdin >/dev/null 2>&1"]
    return command


def wait_for(out, text: str, timeout_s: float = 20) -> None:
    deadline = time.monotonic() + timeout_s
    while text not in out.getvalue():
        assert time.monotonic() < deadline, f"{text!r} not in:\n{out.getvalue()}"
        time.sleep(0.1)


@pytest.mark.timeout(90)
def test_supervisor_starts_kamailio_restarts_a_dead_worker_and_stops_cleanly(tmp_path, monkeypatch):
    import threading

    kamailio_or_fail()
    sup, out = supervisor_for(tmp_path, monkeypatch, stand_in_worker(tmp_path))
    problems: list[BaseException] = []

    def drive() -> None:
        try:
            wait_for(out, "answering calls")
            assert all(d.flags == "AP" for d in kamailio.dispatcher_state(sup.files))
            result = finish_sipp_calls(calls(tmp_path, 2, 300, "two", 19020, 19600), tmp_path, "two")
            assert result.returncode == 0, result.stdout
            sup.workers[1].proc.kill()  # a worker dies: logged, restarted
            wait_for(out, "worker w1 ready again")
        except BaseException as exc:  # noqa: BLE001 - reported by the test below
            problems.append(exc)
        finally:
            sup.stopping.set()  # what SIGTERM does

    driver = threading.Thread(target=drive)
    driver.start()
    code = sup.run()
    driver.join()
    text = out.getvalue()
    assert not problems, problems
    assert code == 0, text
    assert "2 workers behind Kamailio" in text and "up" in text
    assert "worker w1 (pid" in text and "exited with code -9" in text
    assert text.rstrip().endswith("stopped.")
    assert not sup.kamailio.alive() and not sup.files.pidfile.exists()
    assert all(w.proc.poll() is not None for w in sup.workers)


@pytest.mark.timeout(60)
def test_supervisor_reports_a_worker_that_dies_while_loading(tmp_path, monkeypatch):
    kamailio_or_fail()
    sup, out = supervisor_for(tmp_path, monkeypatch, lambda index, port: [
        "sh", "-c", "echo loading; echo 'no model here' >&2; exit 3"] if index == 1 else ["sleep", "30"])
    assert sup.run() == 1
    text = out.getvalue()
    assert "worker w1 (pid" in text and "exited with code 3 while loading" in text and "no model here" in text
    assert sup.workers[0].proc.poll() is not None  # the other worker was stopped too
    assert not sup.kamailio.alive()


def test_supervisor_refuses_ports_in_use(tmp_path, monkeypatch):
    import socket

    kamailio_or_fail()
    sup, out = supervisor_for(tmp_path, monkeypatch, lambda index, port: ["true"])
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as held:
        held.bind(("127.0.0.1", 19011))
        assert sup.run() == 1
    assert "in use already: udp 127.0.0.1:19011" in out.getvalue()
    assert all(w.proc is None for w in sup.workers)  # nothing was started


# -- the real thing: voicebot serve --workers 2, real models, behind Kamailio ----------------------------------
SERVE_PORT = 19100  # Kamailio; workers 19110-19111, their RTP 19200-19399, metrics 19190, sipp 19120.., RTP 19900..
METRICS_PORT = 19190
DRAIN_S = 20


def serve_settings(drain_s: float = DRAIN_S) -> str:
    return (f"  worker_base_port: 19110\n  rtp_base_port: 19200\n  rtp_ports_per_worker: 100\n"
            f"  metrics_port: {METRICS_PORT}\n  drain_timeout_s: {drain_s}\n")


def metric_sum(text: str, name: str) -> float:
    """The sum of every sample of ``name`` (all label sets) in a Prometheus text exposition."""
    total = 0.0
    for line in text.splitlines():
        if re.match(rf"{re.escape(name)}(\{{.*\}})?\s", line):
            total += float(line.rsplit(" ", 1)[1])
    return total


def speaking_caller(speech_ms: int, greeting_ms: int = 9000, hold_ms: int = 1000) -> str:
    """A caller behind the proxy: listens to the greeting, speaks (sipp's speech sample, cut short), hangs up."""
    xml = scenario(pcaps=[(str(PCAP_DIR / "g711a.pcap"), speech_ms)], hold_ms=hold_ms)
    first_audio = '  <nop><action><exec play_pcap_audio'
    xml = xml.replace(first_audio, f'  <pause milliseconds="{greeting_ms}"/>\n' + first_audio, 1)
    return via_proxy(xml)


@pytest.mark.models
@pytest.mark.timeout(480)
def test_serve_two_workers_behind_kamailio_answers_8_concurrent_calls_then_drains_on_sigterm(tmp_path):
    """8 concurrent calls spread over both workers, every one recorded and counted in /metrics; then, with one
    call live, SIGTERM: the supervisor forwards it, both workers drain, a new call gets 503 and the live call
    finishes and is recorded, and everything (Kamailio too) exits 0. (One server for both: a start of two workers
    with their models is a minute of the suite.)"""
    from serve_support import serving

    with serving(tmp_path, SERVE_PORT, extra=serve_settings(), args=("--workers", "2"), load_timeout_s=300,
                 stop_timeout_s=DRAIN_S + 60) as served:
        assert "2 workers behind Kamailio" in served.text, served.text
        assert "no answer to OPTIONS" not in served.text, served.text
        started = time.monotonic()
        caller = start_sipp_calls(tmp_path, speaking_caller(3000), SERVE_PORT, 19120, 19900, "eight", calls=8,
                                  timeout_s=120)
        result = finish_sipp_calls(caller, tmp_path, "eight", timeout_s=150)
        print(f"8 concurrent calls took {time.monotonic() - started:.1f} s")
        assert result.returncode == 0, result.stdout + served.text[-4000:]
        store = served.store()
        deadline = time.monotonic() + 60
        while any(c.outcome == "in_progress" for c in store.list_calls()):  # the last records are written
            assert time.monotonic() < deadline, [(c.id, c.outcome) for c in store.list_calls()]
            time.sleep(0.5)
        text = ""
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            text = httpx.get(f"http://127.0.0.1:{METRICS_PORT}/metrics", timeout=5).text
            if metric_sum(text, "voicebot_calls_total") == 8 and metric_sum(text, "voicebot_active_calls") == 0:
                break
            time.sleep(0.5)
        assert metric_sum(text, "voicebot_calls_total") == 8, text
        assert metric_sum(text, "voicebot_active_calls") == 0, text
        eight = store.list_calls()
        assert len(eight) == 8
        assert {c.worker for c in eight} == {"w0", "w1"}  # both workers served calls

        # a live call: greeting, a few seconds of speech, hang up ~14 s after answering
        live = start_sipp_calls(tmp_path, speaking_caller(3000, greeting_ms=8000, hold_ms=3000), SERVE_PORT,
                                19122, 19960, "live", timeout_s=90)
        deadline = time.monotonic() + 30
        while len(store.list_calls()) < 9:
            assert time.monotonic() < deadline and live.poll() is None, served.text[-3000:]
            time.sleep(0.2)
        time.sleep(1.0)
        stopping = time.monotonic()
        served.process.send_signal(signal.SIGTERM)  # the supervisor forwards it: both workers drain
        time.sleep(1.5)
        refused = run_sipp(tmp_path, scenario(expect=503), target_port=SERVE_PORT, local_port=19121,
                           media_port=19950, timeout_s=20)
        assert refused.returncode == 0, refused.stdout + served.text[-3000:]
        result = finish_sipp_calls(live, tmp_path, "live", timeout_s=90)
        assert result.returncode == 0, result.stdout + served.text[-3000:]
        served.process.wait(timeout=DRAIN_S + 30)
    print(f"SIGTERM to exit, with a call live: {time.monotonic() - stopping:.1f} s")
    assert served.exit_code == 0, served.text[-6000:]
    calls_ = store.list_calls()
    assert len(calls_) == 9
    for call in calls_:
        assert call.outcome not in ("in_progress", "interrupted"), (call.id, call.outcome, call.outcome_reason)
        turns = store.turns(call.id)
        assert turns and turns[0].role == "bot" and "automated assistant" in turns[0].text, (call.id, turns)
    store.close()
    assert not (tmp_path / "data" / "run" / "kamailio.pid").exists()  # Kamailio was stopped too
