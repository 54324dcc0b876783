"""Kamailio in front of several voicebot workers: render its config, check it, run it, ask it for worker state.

pjsua2 answers at most 4 calls per process (docs/sip.md), so more calls need more processes. Kamailio (Debian's
package) listens on ``sip.listen_address:sip.port``, refuses callers outside ``sip.allowed_sources`` (the workers
only ever see the proxy's address) and hands each INVITE to a worker with the dispatcher module: call-load
dispatching (algorithm 10) with ``maxload=4`` per worker, OPTIONS pings every 2 s that take a dead worker out,
and a failure route that retries a failed, busy or draining worker's INVITE on the next one. Media does not
pass through the proxy: each worker's SDP names its own RTP address.

Everything generated lives in ``serve.run_dir``: ``kamailio.cfg``, ``dispatcher.list``, ``kamailio.pid``,
``kamailio.ctl`` (the binrpc socket ``kamcmd`` talks to) and ``kamailio.log``.
"""

from __future__ import annotations

import ipaddress
import os
import re
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import jinja2

from voicebot.config import Config
from voicebot.telephony.kamailio_front import (
    registrar_sources,
    render_tls,
    worker_transports,
)
from voicebot.telephony.kamailio_process import is_kamailio, kill_group, stop_pid

INSTALL_HINT = "install it: apt-get install -y kamailio (scripts/setup.sh does)"
TEMPLATE = Path(__file__).with_name("kamailio.cfg.j2")
CALL_LOAD = 10  # dispatcher algorithm: the worker with the fewest calls, none above maxload
MAX_LOAD = 4  # calls per worker: the pjsua2 wheel's PJSUA_MAX_CALLS
FR_TIMER_MS = 2000  # an INVITE a worker does not answer in this long goes to the next worker
PING_INTERVAL_S = 2


class KamailioError(RuntimeError):
    """Kamailio is missing, its config is refused, or it did not start."""


@dataclass(frozen=True)
class WorkerSlot:
    """Worker ``index``: the address it binds, the address the proxy sends to, its SIP port and RTP block."""

    index: int
    bind: str
    host: str
    port: int
    rtp_port: int
    rtp_ports: int

    @property
    def name(self) -> str:
        return f"w{self.index}"

    def uri(self, transports: list[str]) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        suffix = ";transport=tcp" if "udp" not in transports else ""
        return f"sip:{host}:{self.port}{suffix}"


@dataclass(frozen=True)
class RunFiles:
    """The files Kamailio's run uses, all under ``serve.run_dir``."""

    run_dir: Path

    @property
    def cfg(self) -> Path:
        return self.run_dir / "kamailio.cfg"

    @property
    def dispatcher(self) -> Path:
        return self.run_dir / "dispatcher.list"

    @property
    def pidfile(self) -> Path:
        return self.run_dir / "kamailio.pid"

    @property
    def ctl_socket(self) -> Path:
        return self.run_dir / "kamailio.ctl"

    @property
    def log(self) -> Path:
        return self.run_dir / "kamailio.log"

    @property
    def tls(self) -> Path:
        return self.run_dir / "tls.cfg"


def _ip(address: str) -> str:
    """An IP address as is; a host name (sip.listen_address may be one) resolved to its first address."""
    try:
        return str(ipaddress.ip_address(address))
    except ValueError:
        try:
            return socket.getaddrinfo(address, None, type=socket.SOCK_DGRAM)[0][4][0]
        except OSError as exc:
            raise KamailioError(f"sip.listen_address {address!r} does not resolve: {exc}") from exc


def _wildcard(address: str) -> bool:
    return ipaddress.ip_address(_ip(address)).is_unspecified


def proxy_host(config: Config) -> str:
    """The address the proxy reaches the workers from, and so the only source the workers accept: the listen
    address, or loopback when the proxy listens on every interface."""
    address = _ip(config.sip.listen_address)
    if _wildcard(address):
        return "::1" if ipaddress.ip_address(address).version == 6 else "127.0.0.1"
    return address


def worker_slots(config: Config, workers: int | None = None) -> list[WorkerSlot]:
    """The SIP and RTP ports of each worker: ``worker_base_port + i`` and ``rtp_base_port + i * block``."""
    serve = config.serve
    n = serve.workers if workers is None else workers
    # a wildcard listen address stays a wildcard for the workers, so their SDP names a real interface that
    # callers can send RTP to; the proxy reaches them over loopback then
    bind, host = config.sip.listen_address, proxy_host(config)
    return [WorkerSlot(i, bind, host, serve.worker_base_port + i,
                       serve.rtp_base_port + i * serve.rtp_ports_per_worker, serve.rtp_ports_per_worker)
            for i in range(n)]


def proxy_contact(config: Config) -> str | None:
    """host:port where a registrar reaches the proxy (the Contact worker 0 registers): the listen address and
    sip.port; None when the proxy listens on every interface (no one address to give: set contact_host)."""
    if _wildcard(config.sip.listen_address):
        return None
    host = _ip(config.sip.listen_address)
    return f"[{host}]:{config.sip.port}" if ":" in host else f"{host}:{config.sip.port}"


def spread_accounts(config: Config) -> list:
    """Worker 0's registrations: each account's Contact is the proxy (its ``contact_host`` if set, else the
    proxy's own address), so the registrar sends its calls to Kamailio, which dispatches them over all workers
    like any other call. A wildcard listen address without contact_host keeps the Contact at worker 0."""
    contact = proxy_contact(config)
    return [a if a.contact_host or contact is None else a.model_copy(update={"contact_host": contact})
            for a in config.sip.accounts]


def worker_config(config: Config, slot: WorkerSlot) -> Config:
    """The config one worker runs with: its own port, and only the proxy allowed to send it INVITEs. Worker 0
    owns the registrations (``sip.accounts``), so each is made once, with the proxy as their Contact
    (``spread_accounts``): the registrar's calls come through Kamailio and spread over all workers. Worker 0
    answers those on its plain account, with its own Contact, not on the registered account, whose Contact is
    the proxy (``SipWorker._select_account``)."""
    accounts = spread_accounts(config) if slot.index == 0 else []
    sip = config.sip.model_copy(update={
        "listen_address": slot.bind,
        "port": slot.port,
        "allowed_sources": [proxy_host(config)],
        "accounts": accounts,
        # TLS ends at Kamailio: the hop to the worker is plain SIP on loopback, so SRTP keys may come over it
        "transports": worker_transports(config),
        "tls": None,
        "srtp_secure_signaling": "none" if "tls" in config.sip.transports else config.sip.srtp_secure_signaling,
    })
    # a worker is one process on its own port: serve.workers 1 (model_copy keeps base_dir, skips validation)
    return config.model_copy(update={"sip": sip, "serve": config.serve.model_copy(update={"workers": 1})})


def _condition(sources: list[str]) -> str:
    """A Kamailio expression true when the source IP is in one of ``sources`` (addresses or networks)."""
    terms = []
    for source in sources:
        net = ipaddress.ip_network(source, strict=False)
        if net.version == 6:
            addr = f"[{net.network_address}]"
        else:
            addr = str(net.network_address)
        terms.append(f"src_ip == {addr}/{net.prefixlen}")
    return " || ".join(terms) if terms else "0"


def render_dispatcher(config: Config, workers: int | None = None) -> str:
    """Dispatcher list lines ``setid uri flags priority attrs``: set 1 is the workers, 4 calls each."""
    lines = ["# generated by voicebot: set 1 = the workers (setid uri flags priority attrs)"]
    for slot in worker_slots(config, workers):
        lines.append(f"1 {slot.uri(worker_transports(config))} 0 0 duid={slot.name};maxload={MAX_LOAD}")
    return "\n".join(lines) + "\n"


def render_config(config: Config, files: RunFiles, workers: int | None = None, debug: int = 2) -> str:
    """The kamailio.cfg text for this config (see kamailio.cfg.j2)."""
    sip = config.sip
    host = sip.listen_address
    bracket = f"[{host}]" if ":" in host else host
    tls = sip.tls if "tls" in sip.transports else None
    listen = [] if _wildcard(host) else [f"{proto}:{bracket}:{tls.port if proto == 'tls' else sip.port}"
                                         for proto in sip.transports]
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(TEMPLATE.parent)), undefined=jinja2.StrictUndefined,
                             keep_trailing_newline=True, autoescape=False)
    proxy = proxy_host(config)
    return env.get_template(TEMPLATE.name).render(
        debug=debug,
        children=4,
        listen=listen,
        port=sip.port,
        tcp="tcp" in sip.transports or tls is not None,  # TLS runs on Kamailio's TCP layer
        tls=tls,
        files=files,
        proxy_host=f"[{proxy}]" if ":" in proxy else proxy,
        fr_timer_ms=FR_TIMER_MS,
        ping_interval_s=PING_INTERVAL_S,
        allowed_condition=_condition(sip.allowed_sources + registrar_sources(config)),
        workers=worker_slots(config, workers),
        algorithm=CALL_LOAD,
        algorithm_name=f"call-load (algorithm {CALL_LOAD}), at most {MAX_LOAD} calls per worker",
    )


def kamailio_binary(name: str = "kamailio") -> str:
    """The path of ``kamailio`` (or ``kamcmd``); a clear error with the install command when it is missing."""
    # Debian installs them in /usr/sbin, which is not on every user's PATH
    path = shutil.which(name, path=os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/sbin"]))
    if path is None:
        raise KamailioError(f"{name} is not installed: {INSTALL_HINT}")
    return path


def check_config(cfg: Path) -> None:
    """``kamailio -c -f cfg``: raise KamailioError with Kamailio's own messages when it refuses the file."""
    proc = subprocess.run([kamailio_binary(), "-c", "-f", str(cfg)], capture_output=True, text=True, timeout=30)
    if proc.returncode != 0:
        lines = [line for line in (proc.stdout + proc.stderr).splitlines() if "ERROR" in line or "CRITICAL" in line]
        detail = "\n".join(lines[-10:]) or (proc.stdout + proc.stderr)[-2000:]
        raise KamailioError(f"kamailio refused {cfg}:\n{detail}")


def write_files(config: Config, run_dir: Path, workers: int | None = None) -> RunFiles:
    """Write kamailio.cfg and dispatcher.list under ``run_dir`` and check them with ``kamailio -c``."""
    files = RunFiles(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    files.dispatcher.write_text(render_dispatcher(config, workers))
    files.cfg.write_text(render_config(config, files, workers))
    if "tls" in config.sip.transports and config.sip.tls is not None:
        files.tls.write_text(render_tls(config))
    check_config(files.cfg)
    return files


def busy_ports(config: Config, workers: int | None = None) -> list[str]:
    """The proxy's and the workers' SIP sockets that something already holds (``udp 127.0.0.1:5060``).
    Kamailio itself would start anyway and share a UDP port with the old holder, taking part of its traffic."""
    sip = config.sip
    wanted = [(sip.listen_address, sip.port)] + [(s.bind, s.port) for s in worker_slots(config, workers)]
    busy = []
    for host, port in wanted:
        for proto in sip.transports:
            family = socket.AF_INET6 if ":" in host else socket.AF_INET
            kind = socket.SOCK_DGRAM if proto == "udp" else socket.SOCK_STREAM
            with socket.socket(family, kind) as sock:
                try:
                    sock.bind((host, port))
                except OSError:
                    busy.append(f"{proto} {host}:{port}")
    return busy


def stop_stale(files: RunFiles) -> int | None:
    """Stop a Kamailio left running from an earlier start (its pid in the pid file); returns its pid. A second
    instance would bind the same UDP port without an error and take part of the traffic."""
    try:
        pid = int(files.pidfile.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None
    files.pidfile.unlink(missing_ok=True)
    if pid == os.getpid() or not is_kamailio(pid):
        return None
    stop_pid(pid)
    return pid


class Kamailio:
    """One Kamailio process in the foreground (``-DD -E``) as a child of this one, logging to ``files.log``."""

    def __init__(self, files: RunFiles):
        self.files = files
        self.proc: subprocess.Popen | None = None
        self.stale_pid: int | None = None  # an earlier instance that start() stopped

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None else None

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def start(self, timeout_s: float = 10.0) -> None:
        """Start Kamailio and wait until its control socket answers; a stale instance is stopped first."""
        self.stale_pid = stop_stale(self.files)
        self.files.ctl_socket.unlink(missing_ok=True)
        log = open(self.files.log, "ab")  # noqa: SIM115 - the child keeps it
        try:
            self.proc = subprocess.Popen(
                [kamailio_binary(), "-f", str(self.files.cfg), "-DD", "-E", "-P", str(self.files.pidfile)],
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        finally:
            log.close()
        deadline = time.monotonic() + timeout_s
        while True:
            if self.proc.poll() is not None:
                raise KamailioError(f"kamailio exited with code {self.proc.returncode} at start; the end of "
                                    f"{self.files.log}:\n{self.log_tail()}")
            try:
                dispatcher_state(self.files)
                return
            except KamailioError:
                if time.monotonic() > deadline:
                    self.stop()
                    raise KamailioError(f"kamailio did not answer on {self.files.ctl_socket} within {timeout_s:.0f} "
                                        f"s; the end of {self.files.log}:\n{self.log_tail()}") from None
                time.sleep(0.1)

    def stop(self, timeout_s: float = 5.0) -> int | None:
        """Stop Kamailio (SIGTERM, then SIGKILL after ``timeout_s``); returns its exit code."""
        proc, self.proc = self.proc, None
        if proc is None:
            return None
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout_s)
            except subprocess.TimeoutExpired:
                kill_group(proc.pid)  # started with start_new_session: its children go too
                proc.wait()
        self.files.pidfile.unlink(missing_ok=True)
        return proc.returncode

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.files.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"


@dataclass(frozen=True)
class Destination:
    """One worker as the dispatcher sees it: ``flags`` AP = active and probed, IP = inactive (down)."""

    uri: str
    flags: str
    load: int | None = None

    @property
    def up(self) -> bool:
        return self.flags.startswith("A")


def dispatcher_state(files: RunFiles, timeout_s: float = 5.0) -> list[Destination]:
    """The destinations of every dispatcher set, from ``kamcmd dispatcher.list`` over the control socket."""
    try:
        proc = subprocess.run([kamailio_binary("kamcmd"), "-s", f"unix:{files.ctl_socket}", "dispatcher.list"],
                              capture_output=True, text=True, timeout=timeout_s)
    except subprocess.TimeoutExpired as exc:
        raise KamailioError(f"kamcmd dispatcher.list timed out on {files.ctl_socket}") from exc
    if proc.returncode != 0:
        raise KamailioError(f"kamcmd dispatcher.list failed: {(proc.stdout + proc.stderr).strip()[-500:]}")
    return parse_dispatcher_list(proc.stdout)


def parse_dispatcher_list(text: str) -> list[Destination]:
    """Parse kamcmd's ``dispatcher.list`` output: a ``DEST`` block with URI, FLAGS and (call-load) DLGLOAD each."""
    out = []
    for block in re.split(r"\bDEST:\s*{", text)[1:]:
        uri = re.search(r"\bURI:\s*(\S+)", block)
        flags = re.search(r"\bFLAGS:\s*(\S+)", block)
        load = re.search(r"\bDLGLOAD:\s*(\d+)", block)
        if uri and flags:
            out.append(Destination(uri.group(1), flags.group(1), int(load.group(1)) if load else None))
    return out
