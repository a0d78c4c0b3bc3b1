"""RFC 6381 CODECS strings read from the encoded bytes themselves.

H.264 gives ``avc1.PPCCLL`` (profile_idc, constraint flags, level_idc) from the
avcC box of an fMP4 init segment or from the first SPS in a TS segment; HEVC
gives ``hvc1.<profile>.<compatibility>.<tier><level>.<constraints>`` (ISO/IEC
14496-15 annex E) from the hvcC box of an fMP4 init segment (HEVC is only ever
packaged as fMP4: Apple's HLS authoring spec 1.5); AAC
gives ``mp4a.40.<audio object type>`` from the esds AudioSpecificConfig or an
ADTS header; AC-3 and E-AC-3 are ``ac-3`` and ``ec-3`` (Apple's HLS authoring
spec). A track may be video, audio or both (audio-only renditions have no video).
Reading the bitstream rather than trusting the encoder options means the
manifest always describes what was really encoded.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

# How much of a TS segment to scan: the first access unit carries the SPS.
TS_SCAN_BYTES = 2 << 20
TS_PACKET = 188

_TS_H264 = 0x1B
_TS_AAC_ADTS = 0x0F
# ATSC A/52 stream types, which ffmpeg's MPEG-TS muxer writes.
_TS_DOLBY = {0x81: "ac-3", 0x87: "ec-3"}
_MP4_DOLBY = {b"ac-3": "ac-3", b"ec-3": "ec-3"}


class CodecError(ValueError):
    """The stream is not one we can describe (unknown codec or malformed)."""


@dataclass(frozen=True)
class Codecs:
    video: str | None
    audio: str | None = None

    def __post_init__(self) -> None:
        if self.video is None and self.audio is None:
            raise CodecError("neither a known video nor a known audio track")

    def __str__(self) -> str:
        return ",".join(c for c in (self.video, self.audio) if c is not None)


def read_codecs(path: Path) -> Codecs:
    """Codecs of an fMP4 init segment (.mp4) or an MPEG-TS segment (.ts)."""
    if path.suffix == ".ts":
        return ts_codecs(path.read_bytes()[:TS_SCAN_BYTES - TS_SCAN_BYTES % TS_PACKET])
    return mp4_codecs(path.read_bytes())


def avc1(profile_idc: int, constraints: int, level_idc: int) -> str:
    return f"avc1.{profile_idc:02x}{constraints:02x}{level_idc:02x}"


def hvc1(profile_space: int, tier: int, profile_idc: int, compatibility: int,
         constraints: bytes, level_idc: int) -> str:
    """ISO/IEC 14496-15 E.3: the compatibility flags bit-reversed in hex, the six
    constraint bytes in hex with trailing zero bytes left out."""
    space = "" if profile_space == 0 else "ABC"[profile_space - 1]
    flags = int(f"{compatibility:032b}"[::-1], 2)
    kept = constraints.rstrip(b"\x00")
    parts = [f"hvc1.{space}{profile_idc}", f"{flags:X}", f"{'LH'[tier]}{level_idc}",
             *(f"{b:X}" for b in kept)]
    return ".".join(parts)


def mp4a(audio_object_type: int) -> str:
    # 0x40 is the MPEG-4 Audio objectTypeIndication; ADTS/AAC is always that.
    return f"mp4a.40.{audio_object_type}"


# --- fMP4 -------------------------------------------------------------------

_CONTAINERS = {b"moov", b"trak", b"mdia", b"minf", b"stbl"}
# Bytes between a sample entry's header and its child boxes (ISO/IEC 14496-12).
_VISUAL_ENTRY = 78
_AUDIO_ENTRY = 28


def mp4_codecs(data: bytes) -> Codecs:
    video: str | None = None
    audio: str | None = None
    for entry_type, body in _sample_entries(data):
        if entry_type in (b"avc1", b"avc3"):
            avcc = _child(body[_VISUAL_ENTRY:], b"avcC")
            if avcc is None or len(avcc) < 4:
                raise CodecError("avc1 sample entry without an avcC box")
            video = video or avc1(avcc[1], avcc[2], avcc[3])
        elif entry_type == b"hvc1":
            video = video or _hvcc_codec(_child(body[_VISUAL_ENTRY:], b"hvcC"))
        elif entry_type == b"mp4a":
            esds = _child(body[_AUDIO_ENTRY:], b"esds")
            if esds is None:
                raise CodecError("mp4a sample entry without an esds box")
            audio = audio or mp4a(_esds_object_type(esds[4:]))
        elif entry_type in _MP4_DOLBY:
            audio = audio or _MP4_DOLBY[entry_type]
        else:
            raise CodecError(f"unsupported sample entry {entry_type.decode(errors='replace')!r}")
    return Codecs(video, audio)


def _hvcc_codec(hvcc: bytes | None) -> str:
    # HEVCDecoderConfigurationRecord: version, then profile_space(2) tier(1)
    # profile_idc(5), 32 compatibility flags, 48 constraint bits, level_idc.
    if hvcc is None or len(hvcc) < 13:
        raise CodecError("hvc1 sample entry without an hvcC box")
    return hvc1(hvcc[1] >> 6, (hvcc[1] >> 5) & 1, hvcc[1] & 0x1F,
                int.from_bytes(hvcc[2:6], "big"), hvcc[6:12], hvcc[12])


def _boxes(data: bytes) -> Iterator[tuple[bytes, bytes]]:
    pos = 0
    while pos + 8 <= len(data):
        size = int.from_bytes(data[pos:pos + 4], "big")
        kind = data[pos + 4:pos + 8]
        header = 8
        if size == 1:
            size = int.from_bytes(data[pos + 8:pos + 16], "big")
            header = 16
        elif size == 0:
            size = len(data) - pos
        if size < header or pos + size > len(data):
            raise CodecError(f"truncated or malformed box {kind!r}")
        yield kind, data[pos + header:pos + size]
        pos += size


def _child(data: bytes, kind: bytes) -> bytes | None:
    return next((body for k, body in _boxes(data) if k == kind), None)


def _sample_entries(data: bytes) -> Iterator[tuple[bytes, bytes]]:
    for kind, body in _boxes(data):
        if kind in _CONTAINERS:
            yield from _sample_entries(body)
        elif kind == b"stsd":
            # FullBox header (4) + entry_count (4), then the entries as boxes.
            yield from _boxes(body[8:])


def _esds_object_type(data: bytes) -> int:
    tag, es = _descriptor(data)
    if tag != 0x03:
        raise CodecError("esds without an ES_Descriptor")
    flags = es[2]
    pos = 3
    if flags & 0x80:  # streamDependenceFlag
        pos += 2
    if flags & 0x40:  # URL_Flag
        pos += 1 + es[pos]
    if flags & 0x20:  # OCRstreamFlag
        pos += 2
    tag, config = _descriptor(es[pos:])
    if tag != 0x04 or config[0] != 0x40:
        raise CodecError("esds is not MPEG-4 Audio")
    tag, specific = _descriptor(config[13:])
    if tag != 0x05 or not specific:
        raise CodecError("esds without an AudioSpecificConfig")
    return _asc_object_type(specific)


def _descriptor(data: bytes) -> tuple[int, bytes]:
    if not data:
        raise CodecError("truncated esds")
    tag, size, pos = data[0], 0, 1
    for _ in range(4):  # sizes are 7 bits a byte, high bit means "more"
        byte = data[pos]
        pos += 1
        size = (size << 7) | (byte & 0x7F)
        if not byte & 0x80:
            break
    return tag, data[pos:pos + size]


def _asc_object_type(asc: bytes) -> int:
    aot = asc[0] >> 3
    if aot == 31:  # escape: six more bits
        aot = 32 + (((asc[0] & 0x07) << 3) | (asc[1] >> 5))
    return aot


# --- MPEG-TS ----------------------------------------------------------------

def ts_codecs(data: bytes) -> Codecs:
    streams = _ts_elementary_streams(data)
    video = audio = None
    for stream_type, payload in streams:
        if stream_type == _TS_H264 and video is None:
            video = _sps_codec(payload)
        elif stream_type == _TS_AAC_ADTS and audio is None:
            audio = _adts_codec(payload)
        elif stream_type in _TS_DOLBY and audio is None:
            audio = _TS_DOLBY[stream_type]
    return Codecs(video, audio)


def _ts_elementary_streams(data: bytes) -> list[tuple[int, bytes]]:
    """(stream_type, concatenated PES payloads) per elementary stream, in PMT order."""
    pmt_pid: int | None = None
    types: dict[int, int] = {}
    order: list[int] = []
    payloads: dict[int, bytearray] = {}
    for pos in range(0, len(data) - TS_PACKET + 1, TS_PACKET):
        packet = data[pos:pos + TS_PACKET]
        if packet[0] != 0x47:
            raise CodecError("lost MPEG-TS sync")
        pid = ((packet[1] & 0x1F) << 8) | packet[2]
        start = bool(packet[1] & 0x40)
        adaptation = (packet[3] >> 4) & 0x3
        offset = 4 + (1 + packet[4] if adaptation & 0x2 else 0)
        if not adaptation & 0x1 or offset >= TS_PACKET:
            continue
        payload = packet[offset:]
        if pid == 0 and start and pmt_pid is None:
            pmt_pid = _pat_first_pmt(payload)
        elif pid == pmt_pid and start and not types:
            for es_pid, stream_type in _pmt_streams(payload):
                types[es_pid] = stream_type
                order.append(es_pid)
        elif pid in types:
            if start:
                if payload[:3] != b"\x00\x00\x01":
                    raise CodecError("PES packet without a start code")
                payload = payload[9 + payload[8]:]
                payloads.setdefault(pid, bytearray())
            if pid in payloads:
                payloads[pid] += payload
    return [(types[pid], bytes(payloads.get(pid, b""))) for pid in order]


def _psi_section(payload: bytes) -> bytes:
    section = payload[1 + payload[0]:]  # skip pointer_field
    length = ((section[1] & 0x0F) << 8) | section[2]
    return section[:3 + length - 4]  # without the CRC


def _pat_first_pmt(payload: bytes) -> int:
    section = _psi_section(payload)
    for pos in range(8, len(section) - 3, 4):
        program = int.from_bytes(section[pos:pos + 2], "big")
        if program != 0:  # 0 is the network PID
            return ((section[pos + 2] & 0x1F) << 8) | section[pos + 3]
    raise CodecError("PAT lists no program")


def _pmt_streams(payload: bytes) -> Iterator[tuple[int, int]]:
    section = _psi_section(payload)
    info_length = ((section[10] & 0x0F) << 8) | section[11]
    pos = 12 + info_length
    while pos + 5 <= len(section):
        stream_type = section[pos]
        es_pid = ((section[pos + 1] & 0x1F) << 8) | section[pos + 2]
        es_info = ((section[pos + 3] & 0x0F) << 8) | section[pos + 4]
        yield es_pid, stream_type
        pos += 5 + es_info


def _sps_codec(annexb: bytes) -> str:
    pos = annexb.find(b"\x00\x00\x01")
    while pos != -1:
        nal = pos + 3
        if nal < len(annexb) and annexb[nal] & 0x1F == 7:
            rbsp = _unescape(annexb[nal + 1:nal + 16])
            if len(rbsp) < 3:
                break
            return avc1(rbsp[0], rbsp[1], rbsp[2])
        pos = annexb.find(b"\x00\x00\x01", nal)
    raise CodecError("no SPS in the first H.264 access unit")


def _unescape(ebsp: bytes) -> bytes:
    # Drop emulation-prevention bytes (00 00 03 -> 00 00).
    return ebsp.replace(b"\x00\x00\x03", b"\x00\x00")


def _adts_codec(adts: bytes) -> str:
    if len(adts) < 3 or adts[0] != 0xFF or adts[1] & 0xF0 != 0xF0:
        raise CodecError("AAC stream does not start with an ADTS header")
    return mp4a(((adts[2] >> 6) & 0x3) + 1)


__all__ = ["CodecError", "Codecs", "avc1", "hvc1", "mp4_codecs", "mp4a", "read_codecs", "ts_codecs"]
