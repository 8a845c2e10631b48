"""Headers that lie: WAV written field by field, and MP4, MP3, FLAC, Ogg and Matroska
files with one field of a clean file changed.

Each function returns new bytes; a field that is not found raises, so a generator that
no longer matches its source fails loudly instead of yielding a clean file.
"""

from __future__ import annotations

import struct
from functools import cache

PCM = 1
FLOAT = 3
EXTENSIBLE = 0xFFFE


def wav(
    data: bytes,
    *,
    rate: int = 16_000,
    channels: int = 1,
    bits: int = 16,
    tag: int = PCM,
    block_align: int | None = None,
    byte_rate: int | None = None,
    riff_size: int | None = None,
    data_size: int | None = None,
    fmt_extra: bytes = b"",
    chunks: bytes = b"",
) -> bytes:
    """A WAV file whose every header field may be set, true or not (values wrap to their
    field width, as a forger's would)."""
    align = block_align if block_align is not None else channels * bits // 8
    fmt = struct.pack(
        "<HHIIHH",
        tag & 0xFFFF,
        channels & 0xFFFF,
        rate & 0xFFFFFFFF,
        (byte_rate if byte_rate is not None else rate * align) & 0xFFFFFFFF,
        align & 0xFFFF,
        bits & 0xFFFF,
    )
    fmt += fmt_extra
    body = (
        b"WAVE"
        + _chunk(b"fmt ", fmt)
        + chunks
        + b"data"
        + struct.pack("<I", (data_size if data_size is not None else len(data)) & 0xFFFFFFFF)
        + data
    )
    size = riff_size if riff_size is not None else len(body)
    return b"RIFF" + struct.pack("<I", size & 0xFFFFFFFF) + body


def extensible(valid_bits: int, subformat: bytes) -> bytes:
    """WAVE_FORMAT_EXTENSIBLE's extra fmt bytes: valid bits, channel mask, sub-format GUID."""
    return struct.pack("<HHI", 22, valid_bits & 0xFFFF, 0x4) + subformat


def _chunk(kind: bytes, payload: bytes) -> bytes:
    pad = b"\0" if len(payload) % 2 else b""
    return kind + struct.pack("<I", len(payload)) + payload + pad


def chunk(kind: bytes, payload: bytes, declared: int | None = None) -> bytes:
    """A RIFF chunk whose size field may lie."""
    size = declared if declared is not None else len(payload)
    return kind + struct.pack("<I", size & 0xFFFFFFFF) + payload


# ------------------------------------------------------------------------------ MP4
# Offsets from an atom's version byte: (32-bit version, 64-bit version, field width).
_MP4_FIELDS = {
    (b"mvhd", "timescale"): (12, 20, 4),
    (b"mvhd", "duration"): (16, 24, 4),
    (b"mdhd", "timescale"): (12, 20, 4),
    (b"mdhd", "duration"): (16, 24, 4),
    (b"tkhd", "duration"): (20, 28, 4),
    (b"stts", "delta"): (12, 12, 4),
    (b"stsz", "size"): (4, 4, 4),
    (b"stsz", "count"): (8, 8, 4),
    (b"stsd", "channels"): (32, 32, 2),
    (b"stsd", "rate"): (40, 40, 2),
}


def mp4(data: bytes, atom: bytes, field: str, value: int) -> bytes:
    """Every `atom` (all tracks) with `field` set to `value`."""
    short, long, width = _MP4_FIELDS[(atom, field)]
    out = bytearray(data)
    found = 0
    at = out.find(atom)
    while at >= 0:
        version = at + 4
        wide = out[version] == 1
        offset = version + (long if wide else short)
        size = 8 if wide and field == "duration" else width
        out[offset : offset + size] = (value % 2 ** (8 * size)).to_bytes(size, "big")
        found += 1
        at = out.find(atom, at + 4)
    if not found:
        raise ValueError(f"no {atom!r} atom")
    return bytes(out)


# ------------------------------------------------------------------------------ MP3
def id3(declared: int, body: bytes = b"") -> bytes:
    """An ID3v2.4 tag header claiming `declared` bytes (syncsafe), followed by `body`."""
    size = declared & 0x0FFFFFFF
    syncsafe = bytes((size >> shift) & 0x7F for shift in (21, 14, 7, 0))
    return b"ID3\x04\x00\x00" + syncsafe + body


def xing_frames(data: bytes, frames: int) -> bytes:
    """The frame count of LAME's Xing/Info tag set to `frames`."""
    at = max(data.find(b"Xing"), data.find(b"Info"))
    if at < 0:
        raise ValueError("no Xing/Info tag")
    out = bytearray(data)
    out[at + 8 : at + 12] = (frames & 0xFFFFFFFF).to_bytes(4, "big")
    return bytes(out)


# ----------------------------------------------------------------------------- FLAC
def flac_streaminfo(
    data: bytes,
    *,
    rate: int | None = None,
    channels: int | None = None,
    bits: int | None = None,
    total: int | None = None,
    max_block: int | None = None,
) -> bytes:
    """STREAMINFO with some fields replaced (rate 20 bits, channels 3, bits 5, total 36)."""
    if not data.startswith(b"fLaC"):
        raise ValueError("not FLAC")
    info = 8  # "fLaC" + the block header
    out = bytearray(data)
    if max_block is not None:
        out[info + 2 : info + 4] = (max_block & 0xFFFF).to_bytes(2, "big")
    packed = int.from_bytes(out[info + 10 : info + 18], "big")
    old_rate, old_channels = packed >> 44, ((packed >> 41) & 0x7) + 1
    old_bits, old_total = ((packed >> 36) & 0x1F) + 1, packed & (2**36 - 1)
    packed = (
        ((rate if rate is not None else old_rate) & 0xFFFFF) << 44
        | (((channels if channels is not None else old_channels) - 1) & 0x7) << 41
        | (((bits if bits is not None else old_bits) - 1) & 0x1F) << 36
        | ((total if total is not None else old_total) & (2**36 - 1))
    )
    out[info + 10 : info + 18] = packed.to_bytes(8, "big")
    return bytes(out)


# ------------------------------------------------------------------------------ Ogg
@cache
def _ogg_table() -> tuple[int, ...]:
    table = []
    for byte in range(256):
        crc = byte << 24
        for _ in range(8):
            crc = ((crc << 1) ^ 0x04C11DB7) if crc & 0x80000000 else crc << 1
        table.append(crc & 0xFFFFFFFF)
    return tuple(table)


def _ogg_crc(page: bytes) -> int:
    table, crc = _ogg_table(), 0
    for byte in page:
        crc = ((crc << 8) & 0xFFFFFFFF) ^ table[((crc >> 24) & 0xFF) ^ byte]
    return crc


def ogg_pages(data: bytes) -> list[tuple[int, int]]:
    """(start, end) of each page of an Ogg stream."""
    pages, at = [], data.find(b"OggS")
    while at >= 0 and at + 27 <= len(data):
        count = data[at + 26]
        lacing = data[at + 27 : at + 27 + count]
        end = at + 27 + count + sum(lacing)
        pages.append((at, end))
        at = data.find(b"OggS", end)
    return pages


def ogg_resigned(data: bytearray) -> bytes:
    """Every page's CRC recomputed, so an edit is read instead of skipped as damage."""
    for start, end in ogg_pages(bytes(data)):
        data[start + 22 : start + 26] = b"\0\0\0\0"
        data[start + 22 : start + 26] = struct.pack("<I", _ogg_crc(bytes(data[start:end])))
    return bytes(data)


def opus_head(data: bytes, *, channels: int | None = None, preskip: int | None = None) -> bytes:
    """OpusHead with a channel count or pre-skip that need not be true."""
    at = data.find(b"OpusHead")
    if at < 0:
        raise ValueError("no OpusHead")
    out = bytearray(data)
    if channels is not None:
        out[at + 9] = channels & 0xFF
    if preskip is not None:
        out[at + 10 : at + 12] = struct.pack("<H", preskip & 0xFFFF)
    return ogg_resigned(out)


def ogg_last_granule(data: bytes, granule: int) -> bytes:
    """The last page's granule position (where FFmpeg reads the length) set to `granule`."""
    start, _ = ogg_pages(data)[-1]
    out = bytearray(data)
    out[start + 6 : start + 14] = struct.pack("<q", granule)
    return ogg_resigned(out)


# ------------------------------------------------------------------------- Matroska
def mkv_float(data: bytes, element: bytes, value: float) -> bytes:
    """The first float element `element` (e.g. Duration 0x4489) set to `value`."""
    for size, fmt in ((0x88, ">d"), (0x84, ">f")):
        at = data.find(element + bytes([size]))
        if at >= 0:
            start = at + len(element) + 1
            out = bytearray(data)
            out[start : start + struct.calcsize(fmt)] = struct.pack(fmt, value)
            return bytes(out)
    raise ValueError(f"no float element {element.hex()}")


def mkv_uint(data: bytes, element: bytes, value: int) -> bytes:
    """The first one-byte unsigned element `element` (e.g. Channels 0x9F) set to `value`."""
    at = data.find(element + b"\x81")
    if at < 0:
        raise ValueError(f"no element {element.hex()}")
    out = bytearray(data)
    out[at + len(element) + 1] = value & 0xFF
    return bytes(out)


DURATION = b"\x44\x89"
SAMPLING_FREQUENCY = b"\xb5"
CHANNELS = b"\x9f"
