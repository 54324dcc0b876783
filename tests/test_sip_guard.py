"""The SIP guard without pjsua: the decision over raw requests (``decide``), and finding the pjsip_rx_data layout
in a fake rdata built the way pjsip lays it out (for the wheel's PJSIP_MAX_PKT_LEN and for others). The guard
against a real endpoint is tested in test_sip_hygiene.py."""

from __future__ import annotations

import ctypes
import socket
import struct

import pytest

from voicebot.telephony import sip_guard
from voicebot.telephony.sip_guard import Refusal, _Layout, _pkt_info, _TpInfo, decide


def request(method: str, cseq: str | None = None, to_tag: bool = False, start: str | None = None,
            to_header: str = "To") -> bytes:
    tag = ";tag=abc" if to_tag else ""
    return (f"{start or f'{method} sip:voicebot@10.0.0.1 SIP/2.0'}\r\n"
            "Via: SIP/2.0/UDP 10.0.0.9:5060;branch=z9hG4bK1\r\nFrom: <sip:+15550102030@10.0.0.9>;tag=f1\r\n"
            f"{to_header}: <sip:voicebot@10.0.0.1;transport=udp>{tag}\r\nCall-ID: 1@10.0.0.9\r\n"
            f"CSeq: {cseq or f'7 {method}'}\r\nContent-Length: 0\r\n\r\n").encode()


def allowed(ip: str) -> bool:
    return ip == "10.0.0.9"


@pytest.mark.parametrize("method", sorted(sip_guard.KNOWN_METHODS))
def test_every_method_pjsua_serves_passes_from_an_allowed_source(method):
    assert decide(request(method), "10.0.0.9", allowed) is None


def test_a_cseq_of_another_method_is_a_bad_request_from_anyone():
    assert decide(request("INVITE", cseq="1 BYE"), "10.0.0.9", allowed) == Refusal(
        400, "INVITE", "CSeq method 'BYE' is not the request's")
    assert decide(request("OPTIONS", cseq="1 INVITE"), "192.0.2.1", allowed).code == 400
    assert decide(request("INVITE", cseq="1 invite"), "10.0.0.9", allowed).code == 400  # methods are case-sensitive


def test_an_ack_is_never_answered():
    assert decide(request("ACK", cseq="1 INVITE"), "192.0.2.1", allowed) is None
    assert decide(request("ACK"), "192.0.2.1", allowed) is None


@pytest.mark.parametrize("method", ["OPTIONS", "MESSAGE", "FROBNICATE", "PUBLISH", "REGISTER"])
def test_out_of_dialog_from_a_refused_source_is_forbidden(method):
    assert decide(request(method), "192.0.2.1", allowed) == Refusal(403, method, "not in allowed_sources")


@pytest.mark.parametrize("method", ["INVITE", "SUBSCRIBE", "BYE", "CANCEL", "NOTIFY", "INFO"])
def test_what_pjsua2_callbacks_or_dialogs_refuse_is_left_to_them(method):
    """INVITE (onIncomingCall: 403, counted) and SUBSCRIBE (onIncomingSubscribe) are refused by the endpoint
    itself; the others belong to a dialog or a transaction pjsua answers 481 without."""
    assert decide(request(method), "192.0.2.1", allowed) is None


def test_in_a_dialog_a_refused_source_is_left_to_pjsua():
    """A dialled callee's OPTIONS or MESSAGE in the call comes from wherever the callee is."""
    assert decide(request("OPTIONS", to_tag=True), "192.0.2.1", allowed) is None
    assert decide(request("MESSAGE", to_tag=True, to_header="t"), "192.0.2.1", allowed) is None
    assert decide(request("FROBNICATE", to_tag=True), "192.0.2.1", allowed).code == 501


def test_a_tag_inside_the_uri_is_not_a_to_tag():
    message = request("OPTIONS").replace(b"transport=udp>", b"tag=sneaky>")
    assert decide(message, "192.0.2.1", allowed).code == 403


def test_an_unknown_method_is_not_implemented():
    assert decide(request("FROBNICATE"), "10.0.0.9", allowed) == Refusal(
        501, "FROBNICATE", "a method the bot does not implement")
    assert decide(request("PUBLISH"), "10.0.0.9", allowed).code == 501


def test_responses_and_oddities_pass():
    response = b"SIP/2.0 200 OK\r\nCSeq: 1 REGISTER\r\nTo: <sip:x@y>;tag=1\r\n\r\n"
    assert decide(response, "192.0.2.1", allowed) is None
    assert decide(b"", "192.0.2.1", allowed) is None
    assert decide(request("INVITE", start="INVITE sip:x"), "192.0.2.1", allowed) is None
    folded = request("INVITE").replace(b"CSeq: 7 INVITE", b"CSeq: 7\r\n INVITE")
    assert decide(folded, "10.0.0.9", allowed) is None


# -- the rdata layout ------------------------------------------------------------------------------------------
def fake_rdata(max_pkt_len: int, message: bytes, ip: str = "10.0.0.9", port: int = 5062,
               name: str | None = None) -> tuple[ctypes.Array, int]:
    """A buffer laid out like pjsip_rx_data: tp_info, pkt_info, then msg_info (msg_buf, len, msg, info) and the
    rest; returns it (keep it alive) and the address of the info text pjsip_rx_data_get_info would return."""
    pkt = _pkt_info(max_pkt_len)
    base = ctypes.sizeof(_TpInfo)
    msg_info = base + ctypes.sizeof(pkt)
    buf = ctypes.create_string_buffer(msg_info + 512)
    at = ctypes.addressof(buf)
    info = ctypes.create_string_buffer(b"Request msg OPTIONS/cseq=7 (rdata0x1)")
    fake_rdata.keep = info
    ctypes.memmove(at + base + pkt.packet.offset, message, len(message))
    struct.pack_into("<q", buf, base + pkt.len.offset, len(message))
    family = socket.AF_INET6 if ":" in ip else socket.AF_INET
    raw = socket.inet_pton(family, ip)
    sockaddr = (struct.pack("<H", family) + struct.pack(">H", port)
                + (raw if family == socket.AF_INET else b"\0" * 4 + raw + b"\0" * 4))
    ctypes.memmove(at + base + pkt.src_addr.offset, sockaddr, len(sockaddr))
    src_name = (name or ip).encode()
    ctypes.memmove(at + base + pkt.src_name.offset, src_name, len(src_name))
    struct.pack_into("<i", buf, base + pkt.src_port.offset, port)
    struct.pack_into("<QiiQQ", buf, msg_info, at + sip_guard.PACKET_AT, len(message), 0, 0,
                     ctypes.addressof(info))
    return buf, ctypes.addressof(info)


@pytest.mark.parametrize("max_pkt_len", [4000, 8000, 65536, 1999])
def test_the_layout_is_found_for_any_max_packet_length(max_pkt_len):
    message = request("OPTIONS")
    buf, info = fake_rdata(max_pkt_len, message)
    layout = _Layout.calibrate(ctypes.addressof(buf), info)
    assert layout is not None and abs(layout.max_pkt_len - max_pkt_len) < 8
    assert layout.message(ctypes.addressof(buf), info) == (message, "10.0.0.9")


def test_ipv6_sources_are_read_too():
    buf, info = fake_rdata(4000, request("OPTIONS"), ip="2001:db8::9")
    layout = _Layout.calibrate(ctypes.addressof(buf), info)
    assert layout is not None and layout.message(ctypes.addressof(buf), info)[1] == "2001:db8::9"


def test_an_rdata_that_does_not_fit_is_not_read():
    """src_name not the text of src_addr: no layout (the guard then lets everything pass to pjsua)."""
    buf, info = fake_rdata(4000, request("OPTIONS"), name="10.0.0.8")
    assert _Layout.calibrate(ctypes.addressof(buf), info) is None
    good, good_info = fake_rdata(4000, request("OPTIONS"))
    layout = _Layout.calibrate(ctypes.addressof(good), good_info)
    assert layout is not None and layout.message(ctypes.addressof(buf), info) is None
    assert layout.message(ctypes.addressof(good), info + 1) is None  # not this request's info pointer


def test_calibration_reads_stop_at_unmapped_memory_instead_of_crashing():
    assert sip_guard._read_safely(0, 100) == b""
    buf = ctypes.create_string_buffer(b"abc")
    assert sip_guard._read_safely(ctypes.addressof(buf), 3) == b"abc"
