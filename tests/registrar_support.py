"""A real Kamailio registrar with digest auth on loopback, for the registration tests and the outside clients
(baresip) that call the bot through it.

Kamailio (registrar + usrloc in memory + auth with the password in its config) listens on REGISTRAR_IP and logs
every REGISTER it gets (user, digest user, whether the digest checked out) and every call it relays (with the
offer's m= line); only USER with PASSWORD may register. INVITEs to ``operator`` need proxy auth and go to
OUTSIDE_IP:port+18.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path

import pytest

PASSWORD = "Zq7-reg-Secret-41x"
USER = "botext"
REGISTRAR_IP, BOT_IP, OUTSIDE_IP = "127.0.0.2", "127.0.0.1", "127.0.0.3"


KAMAILIO_CFG = """#!KAMAILIO
debug=2
log_stderror=yes
children=1
disable_tcp=yes
listen=udp:{ip}:{port}
mpath="/usr/lib/x86_64-linux-gnu/kamailio/modules/"
loadmodule "tm.so"
loadmodule "sl.so"
loadmodule "rr.so"
loadmodule "pv.so"
loadmodule "maxfwd.so"
loadmodule "textops.so"
loadmodule "siputils.so"
loadmodule "xlog.so"
loadmodule "usrloc.so"
loadmodule "registrar.so"
loadmodule "auth.so"
loadmodule "sdpops.so"
modparam("usrloc", "db_mode", 0)
modparam("registrar", "min_expires", 5)
modparam("registrar", "default_expires", 60)

request_route {{
    if (is_method("REGISTER")) {{
        if (!is_present_hf("Authorization")) {{
            xlog("L_ALERT", "REG user=$tU noauth expires=$hdr(Expires)\\n");
            www_challenge("$td", "0");
            exit;
        }}
        if ($aU != "{user}" || !pv_www_authenticate("$td", "{password}", "0")) {{
            xlog("L_ALERT", "REG user=$tU authuser=$aU realm=$ar bad expires=$hdr(Expires)\\n");
            www_challenge("$td", "0");
            exit;
        }}
        xlog("L_ALERT", "REG user=$tU authuser=$aU realm=$ar ok expires=$hdr(Expires) contact=$ct\\n");
        if (!save("location")) {{ sl_reply_error(); }}
        exit;
    }}
    if (has_totag()) {{
        if (loose_route()) {{ t_relay(); exit; }}
        if (is_method("ACK")) {{ t_relay(); exit; }}
        sl_send_reply("404", "Not here");
        exit;
    }}
    if (is_method("INVITE") && $rU == "operator") {{
        if (!pv_proxy_authenticate("$td", "{password}", "0") || $au != "{user}") {{
            xlog("L_ALERT", "OPER challenge authuser=$au\\n");
            proxy_challenge("$td", "0");
            exit;
        }}
        xlog("L_ALERT", "OPER authuser=$au ok\\n");
        consume_credentials();
        record_route();
        $du = "sip:{outside}:{operator}";
        t_relay();
        exit;
    }}
    if (is_method("INVITE")) {{
        if (!lookup("location")) {{
            xlog("L_ALERT", "CALL to $rU: not registered\\n");
            sl_send_reply("404", "Not Registered");
            exit;
        }}
        sdp_get_line_startswith("$avp(mline)", "m=audio");
        xlog("L_ALERT", "CALL to $tU relayed to $ru from $fU media $avp(mline)\\n");
        record_route();
        t_relay();
        exit;
    }}
    t_relay();
}}
"""


def kamailio_or_fail() -> str:
    path = shutil.which("kamailio") or ("/usr/sbin/kamailio" if Path("/usr/sbin/kamailio").exists() else None)
    if path is None:
        pytest.fail("kamailio is not installed: `apt-get install -y kamailio` (Debian) provides it")
    return path


class Registrar:
    """A real Kamailio registrar on REGISTRAR_IP:port; ``lines()`` are its REG/CALL log lines."""

    def __init__(self, folder: Path, port: int):
        self.folder, self.port = folder, port
        self.cfg = folder / "registrar.cfg"
        self.cfg.write_text(KAMAILIO_CFG.format(ip=REGISTRAR_IP, port=port, user=USER, password=PASSWORD,
                                                outside=OUTSIDE_IP, operator=port + 18))
        self.log = folder / "registrar.log"
        self.proc: subprocess.Popen | None = None
        check = subprocess.run([kamailio_or_fail(), "-c", "-f", str(self.cfg)], capture_output=True, text=True)
        assert check.returncode == 0, check.stderr[-3000:]

    def start(self) -> None:
        out = open(self.log, "ab")  # noqa: SIM115 - the child keeps it
        self.proc = subprocess.Popen([kamailio_or_fail(), "-f", str(self.cfg), "-DD", "-E"], stdout=out,
                                     stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
        out.close()
        deadline = time.monotonic() + 10
        while "INFO: <core>" not in self.text() and "listening on" not in self.text():
            assert self.proc.poll() is None, self.text()[-3000:]
            assert time.monotonic() < deadline, "kamailio did not start: " + self.text()[-3000:]
            time.sleep(0.05)
        time.sleep(0.3)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def lines(self, kind: str = "REG") -> list[str]:
        return [line for line in self.text().splitlines() if f"{kind} " in line and "ALERT" in line]

    def ok(self) -> list[str]:
        return [line for line in self.lines() if " ok " in line]

    def wait_for(self, predicate, timeout_s: float, what: str) -> None:
        deadline = time.monotonic() + timeout_s
        while not predicate():
            assert time.monotonic() < deadline, f"{what}; registrar log:\n" + "\n".join(self.lines("")[-30:])
            time.sleep(0.1)
