"""Write caller speech as a pcap of RTP packets (G.711, 20 ms each) that sipp's ``play_pcap_audio`` replays.

sipp reads libpcap files of Ethernet/IPv4/UDP packets and sends each UDP payload (here: an RTP packet) at the
time offset it was captured at, so a WAV becomes a pcap with one 172-byte packet per 20 ms. The addresses and
ports inside are placeholders: sipp rewrites them for the call. The SDP of the scenario must offer the same
payload type (0 = PCMU, 8 = PCMA).
"""

from __future__ import annotations

import struct
from pathlib import Path

from voicebot.audio import alaw_encode, read_wav, resample, ulaw_encode

PAYLOAD_TYPES = {"PCMU": 0, "PCMA": 8}
RATE = 8000
SAMPLES_PER_PACKET = 160  # 20 ms at 8 kHz
_PCAP_HEADER = struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1)  # LINKTYPE_ETHERNET


def _ip_checksum(header: bytes) -> int:
    total = sum(struct.unpack("!10H", header))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def _udp_frame(payload: bytes, src_port: int = 6000, dst_port: int = 6002) -> bytes:
    udp = struct.pack("!HHHH", src_port, dst_port, 8 + len(payload), 0) + payload
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 0, 0x4000, 64, 17, 0,
                     bytes([127, 0, 0, 1]), bytes([127, 0, 0, 1]))
    ip = ip[:10] + struct.pack("!H", _ip_checksum(ip)) + ip[12:]
    ethernet = b"\0" * 12 + b"\x08\x00"
    return ethernet + ip + udp


def rtp_packets(pcm8k: bytes, codec: str = "PCMA", ssrc: int = 0x5EED1234) -> list[bytes]:
    """RTP packets (12-byte header + 160 G.711 bytes) for 8 kHz s16le audio, padded to whole packets."""
    if codec not in PAYLOAD_TYPES:
        raise ValueError(f"codec must be one of {', '.join(PAYLOAD_TYPES)}, not {codec!r}")
    frame = SAMPLES_PER_PACKET * 2
    pcm8k = pcm8k + b"\0" * (-len(pcm8k) % frame)
    encode = alaw_encode if codec == "PCMA" else ulaw_encode
    packets = []
    for i, offset in enumerate(range(0, len(pcm8k), frame)):
        marker = 0x80 if i == 0 else 0
        header = struct.pack("!BBHII", 0x80, marker | PAYLOAD_TYPES[codec], i & 0xFFFF,
                             (i * SAMPLES_PER_PACKET) & 0xFFFFFFFF, ssrc)
        packets.append(header + encode(pcm8k[offset:offset + frame]))
    return packets


def write_rtp_pcap(pcm: bytes, sample_rate: int, out: Path, codec: str = "PCMA") -> int:
    """Write ``pcm`` (s16le mono at ``sample_rate``) to ``out`` as an RTP pcap; returns the packet count."""
    pcm8k = resample(pcm, sample_rate, RATE) if sample_rate != RATE else pcm
    packets = rtp_packets(pcm8k, codec)
    with open(out, "wb") as f:
        f.write(_PCAP_HEADER)
        for i, packet in enumerate(packets):
            frame = _udp_frame(packet)
            usec = i * 20_000
            f.write(struct.pack("<IIII", usec // 1_000_000, usec % 1_000_000, len(frame), len(frame)))
            f.write(frame)
    return len(packets)


def wav_to_rtp_pcap(wav: Path, out: Path, codec: str = "PCMA") -> int:
    """Convert a mono 16-bit WAV to an RTP pcap for sipp; returns the packet count."""
    pcm, rate = read_wav(wav)
    return write_rtp_pcap(pcm, rate, out, codec)
