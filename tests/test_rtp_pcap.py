"""The WAV -> RTP pcap writer that feeds sipp's play_pcap_audio (the real sipp playback is in test_sip_serve)."""

from __future__ import annotations

import math
import struct

import pytest

from voicebot.audio import alaw_decode, rms_dbfs, write_wav
from voicebot.tools.rtp_pcap import rtp_packets, wav_to_rtp_pcap

TONE_16K = b"".join(struct.pack("<h", int(8000 * math.sin(2 * math.pi * 440 * i / 16000))) for i in range(16000))


def read_pcap(path):
    data = path.read_bytes()
    magic, major, minor, _, _, snaplen, link = struct.unpack("<IHHiIII", data[:24])
    assert (magic, major, minor, link) == (0xA1B2C3D4, 2, 4, 1)
    packets, offset = [], 24
    while offset < len(data):
        sec, usec, incl, orig = struct.unpack("<IIII", data[offset:offset + 16])
        frame = data[offset + 16:offset + 16 + incl]
        assert incl == orig == len(frame)
        packets.append((sec + usec / 1e6, frame))
        offset += 16 + incl
    return packets


def test_a_wav_becomes_20ms_rtp_packets_sipp_can_replay(tmp_path):
    wav = tmp_path / "tone.wav"
    write_wav(wav, TONE_16K, 16000)  # 1 s
    out = tmp_path / "tone.pcap"
    assert wav_to_rtp_pcap(wav, out, codec="PCMA") == 50
    packets = read_pcap(out)
    assert len(packets) == 50
    assert [round(t, 3) for t, _ in packets[:3]] == [0.0, 0.02, 0.04]
    payload = bytearray()
    for i, (_, frame) in enumerate(packets):
        assert frame[12:14] == b"\x08\x00" and frame[23] == 17  # Ethernet carrying IPv4 carrying UDP
        udp_len = struct.unpack("!H", frame[38:40])[0]
        rtp = frame[42:]
        assert udp_len == 8 + len(rtp) == 8 + 12 + 160
        version, mpt, seq, ts, _ = struct.unpack("!BBHII", rtp[:12])
        assert version == 0x80 and mpt & 0x7F == 8 and (mpt & 0x80) == (0x80 if i == 0 else 0)
        assert (seq, ts) == (i, i * 160)
        payload += rtp[12:]
    decoded = alaw_decode(bytes(payload))
    assert rms_dbfs(decoded) > -20  # the tone survived resampling and A-law


def test_pcmu_and_bad_codec():
    assert all(p[1] & 0x7F == 0 for p in rtp_packets(b"\0" * 320, codec="PCMU"))
    with pytest.raises(ValueError, match="PCMU, PCMA"):
        rtp_packets(b"\0" * 320, codec="G729")
