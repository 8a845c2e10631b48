"""The hostile-media corpus: several hundred broken, lying and non-media files, built by
code from the committed `speech.mp4` and seeded tones and noise.

Each `Case` builds its bytes on demand and deterministically (fixed seeds), so a failure
names a file anyone can rebuild. `FAST` (about a hundred cases, at least one of every
family) runs in `make test`; the rest carry the `long` marker and run in `make test-long`.
A case marked `refused` must be refused when probed (at upload); every other case may be
accepted or refused, but never crash anything or become a job that does not end.
"""

from __future__ import annotations

import gzip
import io
import random
import sys
import zipfile
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import partial
from typing import Any

from tests.conftest import FIXTURES
from tests.hostile import lies
from tests.hostile.sources import SPECS, Spec, clean, encode, long_silence, signal, video_only

Build = Callable[[], bytes]


@dataclass(frozen=True)
class Case:
    """One file of the corpus: its name (family/source/variant), the name it is uploaded
    under, and how to build it."""

    name: str
    filename: str
    build: Build
    fast: bool = False
    refused: bool = False


# The sources every mutation is applied to: one of each container and codec family.
MUTATED = (
    "pcm16.wav",
    "ima.wav",
    "tone.mp3",
    "tone.flac",
    "opus.ogg",
    "vorbis.ogg",
    "live.webm",
    "aac.mkv",
    "ac3.mkv",
    "video.mkv",
    "tone.m4a",
    "alac.m4a",
    "speech.mp4",
    "amr.3gp",
    "tone.aac",
    "mp2.ts",
)
CUTS = (0.001, 0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.999, 4, 45, 300)
FLIPS = ((1, 1), (8, 1), (64, 1), (1, 2), (8, 2), (64, 2))


# ------------------------------------------------------------------------ mutations
def truncated(source: str, cut: float) -> bytes:
    """The first `cut` bytes (a whole number) or fraction of the file."""
    data = clean(source)
    end = int(cut) if cut >= 1 else int(len(data) * cut)
    return data[:end]


def flipped(source: str, count: int, seed: int, header: int | None = None) -> bytes:
    """`count` bits flipped at seeded places (within the first `header` bytes if given)."""
    data = bytearray(clean(source))
    rng = random.Random(f"{source}/{count}/{seed}/{header}")
    span = min(header or len(data), len(data))
    for _ in range(count):
        at = rng.randrange(span)
        data[at] ^= 1 << rng.randrange(8)
    return bytes(data)


def overwritten(source: str, where: float, fill: str) -> bytes:
    """512 bytes at `where` (a fraction) replaced by zeros, 0xFF or seeded noise."""
    data = bytearray(clean(source))
    at = int(len(data) * where)
    run = {
        "zeros": bytes(512),
        "ones": b"\xff" * 512,
        "noise": random.Random(source).randbytes(512),
    }[fill]
    data[at : at + 512] = run
    return bytes(data)


def spliced(source: str, how: str) -> bytes:
    """The file's halves swapped, 1000 seeded bytes before it, or the file twice."""
    data = clean(source)
    half = len(data) // 2
    if how == "swapped":
        return data[half:] + data[:half]
    if how == "junk-first":
        return random.Random(source).randbytes(1000) + data
    return data + data  # "doubled"


def mutations() -> Iterator[Case]:
    """Every mutation of every source; the fast half takes a different few of each."""
    for i, source in enumerate(MUTATED):
        yield from _truncations(i, source)
        yield from _flips(i, source)
        yield from _runs_and_splices(i, source)


def _truncations(i: int, source: str) -> Iterator[Case]:
    for j, cut in enumerate(CUTS):
        label = f"{cut:g}B" if cut >= 1 else f"{cut:.1%}"
        build = partial(truncated, source, cut)
        yield Case(f"truncated/{source}@{label}", source, build, fast=j == i % len(CUTS))


def _flips(i: int, source: str) -> Iterator[Case]:
    for j, (count, seed) in enumerate(FLIPS):
        name = f"flipped/{source}/{count}bits/seed{seed}"
        build = partial(flipped, source, count, seed)
        yield Case(name, source, build, fast=j == i % len(FLIPS))
    for seed in (1, 2):
        build = partial(flipped, source, 4, seed, 256)
        fast = seed == 1 and i % 4 == 0
        yield Case(f"flipped-header/{source}/seed{seed}", source, build, fast)


def _runs_and_splices(i: int, source: str) -> Iterator[Case]:
    for j, (where, fill) in enumerate(((0.4, "zeros"), (0.6, "ones"), (0.2, "noise"))):
        build = partial(overwritten, source, where, fill)
        fast = i % 4 == 1 and j == (i // 4) % 3
        yield Case(f"overwritten/{source}/{fill}@{where:.0%}", source, build, fast)
    for j, how in enumerate(("swapped", "junk-first", "doubled")):
        fast = i % 3 == 0 and j == (i // 3) % 3
        yield Case(f"spliced/{source}/{how}", source, partial(spliced, source, how), fast)


# ---------------------------------------------------------------------- clean files
# Files FFmpeg decodes but vtx must refuse: codecs or demuxers off the whitelists.
NOT_WHITELISTED = {"wavpack.mkv", "tta.mkv", "g722.wav", "g726.wav", "yamaha.wav", "pcm64.wav"}
NOT_WHITELISTED |= {"pcm.w64"}
FAST_CLEAN = {"pcm16.wav", "live.webm", "amr.3gp", "surround.wav", "wavpack.mkv", "pcm.w64"}


def cleans() -> Iterator[Case]:
    for spec in SPECS:
        yield Case(
            f"clean/{spec.name}",
            spec.name,
            partial(clean, spec.name),
            fast=spec.name in FAST_CLEAN,
            refused=spec.name in NOT_WHITELISTED,
        )


# ------------------------------------------------------------------------- WAV lies
def _wav(payload: str, **fields: Any) -> bytes:
    """A forged WAV around the 2 s tone (`tone`), 40 KB of zeros (`zeros`) or nothing."""
    data = {
        "tone": signal(16_000, 1, 2.0, 0).tobytes(),
        "zeros": bytes(40_000),
        "none": b"",
    }[payload]
    return lies.wav(data, **fields)


_GUID_TAIL = bytes.fromhex("000000001000800000aa00389b71")
# (name, payload, fields, refused, fast)
WAV_LIES: tuple[tuple[str, str, dict[str, Any], bool, bool], ...] = (
    ("1hz-40kb", "zeros", {"rate": 1}, True, True),  # the 5.8 h at 16 kHz
    ("1hz", "tone", {"rate": 1}, True, False),
    ("100hz", "tone", {"rate": 100}, True, False),
    ("4khz", "tone", {"rate": 4_000}, True, True),
    ("7999hz", "tone", {"rate": 7_999}, True, False),
    ("8000hz", "tone", {"rate": 8_000}, False, True),
    ("192khz", "tone", {"rate": 192_000}, False, False),
    ("192001hz", "tone", {"rate": 192_001}, True, False),
    ("0hz", "tone", {"rate": 0}, True, False),
    ("4ghz", "tone", {"rate": 0xFFFFFFFF}, True, False),
    ("0-channels", "tone", {"channels": 0}, True, True),
    ("3-channels", "tone", {"channels": 3}, False, False),
    ("9-channels", "tone", {"channels": 9, "block_align": 18}, False, False),
    ("32-channels", "tone", {"channels": 32}, False, True),
    ("33-channels", "tone", {"channels": 33}, True, False),
    ("255-channels", "tone", {"channels": 255}, True, False),
    ("65535-channels", "tone", {"channels": 65_535}, True, True),
    ("0-bits", "tone", {"bits": 0}, False, False),
    ("1-bit", "tone", {"bits": 1}, False, False),
    ("7-bits", "tone", {"bits": 7}, False, False),
    ("12-bits", "tone", {"bits": 12}, False, True),
    ("24-bits", "tone", {"bits": 24}, False, False),
    ("32-bits", "tone", {"bits": 32}, False, False),
    ("64-bits", "tone", {"bits": 64}, False, False),
    ("65535-bits", "tone", {"bits": 65_535}, False, False),
    ("float-16-bits", "tone", {"tag": lies.FLOAT}, False, False),
    ("float-32", "tone", {"tag": lies.FLOAT, "bits": 32}, False, False),
    ("float-64", "tone", {"tag": lies.FLOAT, "bits": 64}, False, True),
    ("alaw-16-bits", "tone", {"tag": 6}, False, False),
    ("mp3-tag-pcm-data", "tone", {"tag": 0x55}, False, True),
    ("ima-tag-pcm-data", "tone", {"tag": 0x11}, False, False),
    ("unknown-tag", "tone", {"tag": 0x1234}, True, False),
    ("tag-0", "tone", {"tag": 0}, True, False),
    (
        "extensible-12-bits",
        "tone",
        {"tag": lies.EXTENSIBLE, "fmt_extra": lies.extensible(12, b"\x01\x00" + _GUID_TAIL)},
        False,
        False,
    ),
    (
        "extensible-bogus-guid",
        "tone",
        {"tag": lies.EXTENSIBLE, "fmt_extra": lies.extensible(16, bytes(range(16)))},
        True,
        True,
    ),
    ("block-align-0", "tone", {"block_align": 0}, False, False),
    ("block-align-1", "tone", {"block_align": 1}, False, False),
    ("block-align-65535", "tone", {"block_align": 65_535}, False, True),
    ("byte-rate-0", "tone", {"byte_rate": 0}, False, False),
    ("riff-size-0", "tone", {"riff_size": 0}, False, False),
    ("riff-size-4", "tone", {"riff_size": 4}, False, False),
    ("riff-size-max", "tone", {"riff_size": 0xFFFFFFFF}, False, True),
    ("data-size-0", "tone", {"data_size": 0}, False, False),
    ("data-size-1", "tone", {"data_size": 1}, False, False),
    ("data-size-3", "tone", {"data_size": 3}, False, False),
    ("data-size-max", "tone", {"data_size": 0xFFFFFFFF}, False, True),
    ("data-size-2g", "tone", {"data_size": 0x7FFFFFFF}, False, False),
    ("no-samples", "none", {}, False, True),
    ("no-samples-size-max", "none", {"data_size": 0xFFFFFFFF}, False, False),
    ("list-chunk-huge", "tone", {"chunks": lies.chunk(b"LIST", b"INFO", 0x7FFFFFF0)}, False, True),
    ("fact-1-sample", "tone", {"chunks": lies.chunk(b"fact", b"\x01\0\0\0")}, False, False),
    ("fact-max", "tone", {"chunks": lies.chunk(b"fact", b"\xff\xff\xff\xff")}, False, False),
    ("junk-chunk-odd", "tone", {"chunks": lies.chunk(b"junk", b"abc", 3)}, False, False),
    ("second-data", "tone", {"chunks": lies.chunk(b"data", b"\0" * 64)}, False, False),
)


def wav_lies() -> Iterator[Case]:
    for name, payload, fields, refused, fast in WAV_LIES:
        yield Case(f"wav/{name}", f"{name}.wav", partial(_wav, payload, **fields), fast, refused)
    yield Case(
        "wav/no-fmt",
        "no-fmt.wav",
        lambda: b"RIFF\x24\0\0\0WAVE" + lies.chunk(b"data", bytes(1000)),
        refused=True,
    )
    yield Case(
        "wav/fmt-size-huge",
        "fmt-size-huge.wav",
        lambda: b"RIFF\xff\xff\xff\xffWAVE" + lies.chunk(b"fmt ", bytes(16), 0xFFFFFFF0),
        fast=True,
        refused=True,
    )
    yield Case(
        "wav/fmt-size-2",
        "fmt-size-2.wav",
        lambda: b"RIFF\x40\0\0\0WAVE" + lies.chunk(b"fmt ", b"\x01\0", 2) + _pcm_chunk(),
    )
    yield Case("wav/data-before-fmt", "data-before-fmt.wav", _data_before_fmt)


def _pcm_chunk() -> bytes:
    return lies.chunk(b"data", signal(16_000, 1, 1.0, 0).tobytes())


def _data_before_fmt() -> bytes:
    whole = _wav("tone")
    fmt = whole[12:36]
    return whole[:12] + _pcm_chunk() + fmt


# ------------------------------------------------------------------ MP4 and friends
MP4_LIES = (
    ("mvhd", "duration", 0),
    ("mvhd", "duration", 1),
    ("mvhd", "duration", 0xFFFFFFFF),
    ("mvhd", "timescale", 0),
    ("mvhd", "timescale", 1),
    ("mvhd", "timescale", 0xFFFFFFFF),
    ("mdhd", "duration", 0),
    ("mdhd", "duration", 1),
    ("mdhd", "duration", 0xFFFFFFFF),
    ("mdhd", "timescale", 0),
    ("mdhd", "timescale", 1),
    ("mdhd", "timescale", 0xFFFFFFFF),
    ("tkhd", "duration", 0xFFFFFFFF),
    ("stts", "delta", 0),
    ("stts", "delta", 1),
    ("stts", "delta", 0xFFFFFFFF),
    ("stsz", "count", 0),
    ("stsz", "count", 0xFFFFFFFF),
    ("stsz", "size", 1),
    ("stsd", "channels", 0),
    ("stsd", "channels", 65_535),
    ("stsd", "rate", 1),
    ("stsd", "rate", 7_999),
)
FAST_MP4 = {("mvhd", "duration", 0xFFFFFFFF), ("mdhd", "timescale", 1), ("stts", "delta", 0)}
FAST_MP4 |= {("stsz", "count", 0xFFFFFFFF), ("stsd", "rate", 1)}


def _mp4(source: str, atom: str, field: str, value: int) -> bytes:
    return lies.mp4(clean(source), atom.encode(), field, value)


def mp4_lies() -> Iterator[Case]:
    for atom, field, value in MP4_LIES:
        for source in ("tone.m4a", "speech.mp4"):
            if source == "speech.mp4" and atom in ("stsz", "stsd"):
                continue  # the video track comes first there: covered by tone.m4a
            yield Case(
                f"mp4/{source}/{atom}.{field}={value}",
                source,
                partial(_mp4, source, atom, field, value),
                fast=source == "tone.m4a" and (atom, field, value) in FAST_MP4,
            )
    yield Case("mp4/audio-entry-renamed", "speech.mp4", _renamed_entry, fast=True)


def _renamed_entry() -> bytes:
    """speech.mp4 with its AAC sample entry renamed (FFmpeg still finds AAC in `esds`)."""
    return clean("speech.mp4").replace(b"mp4a", b"xq4a")


# ------------------------------------------------------------------------ MP3 lies
def _long_mp3() -> bytes:
    return encode(Spec("long.mp3", "mp3", "libmp3lame", 8_000, seconds=60.0))


def mp3_lies() -> Iterator[Case]:
    mp3: Callable[[], bytes] = partial(clean, "tone.mp3")
    yield Case("mp3/id3-huge", "id3-huge.mp3", lambda: lies.id3(0x0FFFFFFF) + mp3(), True)
    yield Case("mp3/id3-past-end", "id3-past-end.mp3", lambda: lies.id3(len(mp3()) + 10) + mp3())
    yield Case(
        "mp3/id3-garbage",
        "id3-garbage.mp3",
        lambda: lies.id3(100, random.Random(3).randbytes(4096)) + mp3(),
    )
    yield Case("mp3/id3-stacked", "id3-stacked.mp3", lambda: lies.id3(0) * 500 + mp3(), True)
    yield Case("mp3/id3-only", "id3-only.mp3", lambda: lies.id3(0x0FFFFFFF), refused=True)
    for frames in (0, 1, 0xFFFFFFFF):
        yield Case(
            f"mp3/info-frames={frames}",
            "tone.mp3",
            partial(lambda n: lies.xing_frames(mp3(), n), frames),
            fast=frames == 1,
        )
    # Declares one frame (0.14 s), holds a minute: decoding must stop at the budget.
    yield Case(
        "mp3/long-declares-one-frame",
        "long.mp3",
        lambda: lies.xing_frames(_long_mp3(), 1),
        fast=True,
    )
    yield Case("mp3/joined-44k-8k", "joined.mp3", lambda: mp3() + clean("low.mp3"), True)


# ----------------------------------------------------------------------- FLAC lies
FLAC_LIES: tuple[tuple[str, dict[str, int], bool, bool], ...] = (
    # Each frame names its own rate, which FFmpeg believes over STREAMINFO's.
    ("rate-1", {"rate": 1}, False, True),
    ("rate-7999", {"rate": 7_999}, False, False),
    ("rate-0", {"rate": 0}, False, False),
    ("rate-655350", {"rate": 655_350}, False, False),
    ("rate-max", {"rate": 0xFFFFF}, False, False),
    ("channels-8", {"channels": 8}, False, True),
    ("bits-4", {"bits": 4}, False, False),
    ("bits-32", {"bits": 32}, False, False),
    ("total-0", {"total": 0}, False, True),
    ("total-1", {"total": 1}, False, False),
    ("total-max", {"total": 2**36 - 1}, False, True),
    ("max-block-0", {"max_block": 0}, False, False),
    ("max-block-65535", {"max_block": 65_535}, False, False),
)


def _silence(total: int) -> bytes:
    return lies.flac_streaminfo(long_silence(120, 8_000), total=total)


def flac_lies() -> Iterator[Case]:
    for name, fields, refused, fast in FLAC_LIES:
        yield Case(
            f"flac/{name}",
            "tone.flac",
            partial(lambda f: lies.flac_streaminfo(clean("tone.flac"), **f), fields),
            fast,
            refused,
        )
    # Two minutes of silence declared as one second: decoding must stop at the budget.
    yield Case("flac/silence-declared-1s", "silence.flac", partial(_silence, 8_000), fast=True)
    # The same with no length in the header: counted from the packets, then decoded whole.
    yield Case("flac/silence-length-unknown", "silence.flac", partial(_silence, 0))


# ------------------------------------------------------------ Ogg and Matroska lies
def ogg_lies() -> Iterator[Case]:
    opus: Callable[[], bytes] = partial(clean, "opus.ogg")
    for channels in (0, 3, 255):
        yield Case(
            f"ogg/opus-channels={channels}",
            "opus.ogg",
            partial(lambda n: lies.opus_head(opus(), channels=n), channels),
            fast=channels == 255,
        )
    yield Case("ogg/opus-preskip-max", "opus.ogg", lambda: lies.opus_head(opus(), preskip=0xFFFF))
    for granule in (0, 1, -1, 2**62):
        yield Case(
            f"ogg/opus-last-granule={granule}",
            "opus.ogg",
            partial(lambda g: lies.ogg_last_granule(opus(), g), granule),
            fast=granule == 2**62,
        )
    yield Case(
        "ogg/vorbis-last-granule=1",
        "vorbis.ogg",
        lambda: lies.ogg_last_granule(clean("vorbis.ogg"), 1),
    )


MKV_LIES: tuple[tuple[str, bytes, float, bool], ...] = (
    ("duration=0", lies.DURATION, 0.0, False),
    ("duration=1ms", lies.DURATION, 1.0, True),
    ("duration=1e15", lies.DURATION, 1e15, False),
    ("duration=nan", lies.DURATION, float("nan"), True),
    ("duration=inf", lies.DURATION, float("inf"), False),
    ("duration=-1", lies.DURATION, -1.0, False),
    ("rate=1", lies.SAMPLING_FREQUENCY, 1.0, True),
    ("rate=7999", lies.SAMPLING_FREQUENCY, 7999.0, False),
    ("rate=1e9", lies.SAMPLING_FREQUENCY, 1e9, False),
)


def mkv_lies() -> Iterator[Case]:
    for source in ("aac.mkv", "opus.webm"):
        for name, element, value, fast in MKV_LIES:
            yield Case(
                f"mkv/{source}/{name}",
                source,
                partial(lambda s, e, v: lies.mkv_float(clean(s), e, v), source, element, value),
                fast=fast and source == "aac.mkv",
            )
        for channels in (0, 255):
            yield Case(
                f"mkv/{source}/channels={channels}",
                source,
                partial(lambda s, n: lies.mkv_uint(clean(s), lies.CHANNELS, n), source, channels),
                fast=channels == 255 and source == "opus.webm",
            )


# ------------------------------------------------------- rates that change mid-stream
def joined() -> Iterator[Case]:
    def adts(rate: int) -> bytes:
        return encode(Spec(f"{rate}.aac", "adts", "aac", rate))

    yield Case("joined/adts-16k-8k", "joined.aac", lambda: adts(16_000) + adts(8_000), True)
    # Starts at 16 kHz and drops below 8 kHz: refused while decoding, not only at the probe.
    yield Case("joined/adts-16k-7350", "joined.aac", lambda: adts(16_000) + adts(7_350), True)
    yield Case("rate/adts-7350", "low.aac", lambda: adts(7_350), refused=True)
    yield Case("joined/ts-twice", "joined.ts", lambda: clean("mp2.ts") * 2)


# ------------------------------------------------------------------------ playlists
def _victim() -> str:
    """A media file that exists where the suite runs: what a playlist would make it read."""
    return str((FIXTURES / "speech.mp4").resolve())


def _hls() -> bytes:
    return (
        "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:30\n"
        f"#EXTINF:25.0,\n{_victim()}\n#EXT-X-ENDLIST\n"
    ).encode()


PLAYLISTS: tuple[tuple[str, Callable[[], str], bool], ...] = (
    ("hls-file-uri", lambda: f"#EXTM3U\n#EXTINF:25.0,\nfile://{_victim()}\n#EXT-X-ENDLIST\n", True),
    ("hls-http", lambda: "#EXTM3U\n#EXTINF:5.0,\nhttp://127.0.0.1:9/x.ts\n#EXT-X-ENDLIST\n", False),
    (
        "hls-key",
        lambda: (
            '#EXTM3U\n#EXT-X-KEY:METHOD=AES-128,URI="/etc/passwd"\n'
            f"#EXTINF:25.0,\n{_victim()}\n#EXT-X-ENDLIST\n"
        ),
        False,
    ),
    ("ffconcat", lambda: f"ffconcat version 1.0\nfile '{_victim()}'\n", True),
    ("concat-bare", lambda: f"file '{_victim()}'\n", False),
    ("concat-protocol", lambda: f"concat:{_victim()}|{_victim()}", False),
    (
        "sdp",
        lambda: (
            "v=0\no=- 0 0 IN IP4 127.0.0.1\ns=x\nc=IN IP4 127.0.0.1\nt=0 0\n"
            "m=audio 5004 RTP/AVP 0\n"
        ),
        True,
    ),
    ("pls", lambda: f"[playlist]\nFile1={_victim()}\nNumberOfEntries=1\n", False),
    (
        "dash",
        lambda: (
            '<?xml version="1.0"?><MPD xmlns="urn:mpeg:dash:schema:mpd:2011" type="static">'
            f"<Period><AdaptationSet><Representation><BaseURL>{_victim()}</BaseURL>"
            "</Representation></AdaptationSet></Period></MPD>"
        ),
        False,
    ),
)


def playlists() -> Iterator[Case]:
    for name in ("talk.m3u8", "talk.wav", "talk.mp3", "talk.mp4"):
        yield Case(f"playlist/hls-local/{name}", name, _hls, fast=name != "talk.mp3", refused=True)
    for name, text, fast in PLAYLISTS:
        for filename in (f"{name}.txt", "talk.wav"):
            yield Case(
                f"playlist/{name}/{filename}",
                filename,
                partial(lambda t: t().encode(), text),
                fast=fast and filename == "talk.wav",
                refused=True,
            )


# ------------------------------------------------------------------------ non-media
def _zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr(zipfile.ZipInfo("talk.wav", (2020, 1, 1, 0, 0, 0)), clean("pcm16.wav"))
    return buffer.getvalue()


def _png() -> bytes:
    def part(kind: bytes, body: bytes) -> bytes:
        crc = zlib.crc32(kind + body).to_bytes(4, "big")
        return len(body).to_bytes(4, "big") + kind + body + crc

    header = (1).to_bytes(4, "big") * 2 + b"\x08\x00\x00\x00\x00"
    return (
        b"\x89PNG\r\n\x1a\n"
        + part(b"IHDR", header)
        + part(b"IDAT", zlib.compress(b"\0\0"))
        + part(b"IEND", b"")
    )


def _elf() -> bytes:
    """The start of the Python interpreter running the tests: a real ELF binary."""
    with open(sys.executable, "rb") as handle:
        return handle.read(64 * 1024)


NON_MEDIA: tuple[tuple[str, str, Build, bool], ...] = (
    ("text", "talk.mp4", lambda: b"This is not a recording, only text.\n" * 200, True),
    (
        "html",
        "talk.wav",
        lambda: b"<!doctype html><html><body><video src=x></video></body></html>",
        True,
    ),
    ("json", "talk.mp3", lambda: b'{"audio": "talk.wav", "duration": 3600}', False),
    ("xml", "talk.ogg", lambda: b'<?xml version="1.0"?><audio length="1"/>', False),
    ("zip", "talk.wav", _zip, True),
    ("gzip", "talk.wav", lambda: gzip.compress(clean("pcm16.wav"), mtime=0), False),
    ("elf", "talk.mp4", _elf, True),
    ("pe", "talk.exe", lambda: b"MZ" + bytes(58) + b"\x40\0\0\0PE\0\0" + bytes(1000), False),
    ("script", "talk.sh", lambda: b"#!/bin/sh\nrm -rf /\n", False),
    ("png", "talk.png", _png, True),
    ("jpeg", "talk.jpg", lambda: b"\xff\xd8\xff\xe0\0\x10JFIF\0" + bytes(2000), False),
    ("pdf", "talk.pdf", lambda: b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n", False),
    ("noise", "talk.wav", lambda: random.Random(7).randbytes(64 * 1024), True),
    ("zeros", "talk.wav", lambda: bytes(64 * 1024), False),
    ("ones", "talk.mp3", lambda: b"\xff" * 64 * 1024, False),
    ("one-byte", "talk.wav", lambda: b"R", True),
    ("one-nul", "talk.mp3", lambda: b"\0", False),
    ("riff-only", "talk.wav", lambda: b"RIFF", False),
    ("riff-wave-only", "talk.wav", lambda: b"RIFF\x04\0\0\0WAVE", False),
    ("flac-magic", "talk.flac", lambda: b"fLaC", False),
    ("ogg-magic", "talk.ogg", lambda: b"OggS\0\x02" + bytes(100), False),
    ("ebml-magic", "talk.webm", lambda: b"\x1aE\xdf\xa3" + bytes(100), False),
    ("ftyp-only", "talk.m4a", lambda: b"\0\0\0\x18ftypM4A \0\0\0\0M4A mp42", True),
)


def non_media() -> Iterator[Case]:
    for name, filename, build, fast in NON_MEDIA:
        yield Case(f"non-media/{name}", filename, build, fast, refused=True)
    yield Case("non-media/empty", "talk.wav", lambda: b"", fast=True, refused=True)


# ------------------------------------------------------ nothing to hear, or no audio
def _empty_track(container: str, codec: str, rate: int) -> bytes:
    return encode(Spec("empty", container, codec, rate, seconds=0.0))


EMPTY: tuple[tuple[str, str, str, int, bool], ...] = (
    ("flac", "flac", "flac", 16_000, True),
    ("m4a", "ipod", "aac", 16_000, False),
    ("ogg", "ogg", "libopus", 48_000, True),
    ("webm", "webm", "libopus", 48_000, False),
    ("mp3", "mp3", "libmp3lame", 44_100, False),
)


def silent() -> Iterator[Case]:
    for name, container, codec, rate, fast in EMPTY:
        yield Case(
            f"no-samples/{name}",
            f"empty.{name}",
            partial(_empty_track, container, codec, rate),
            fast,
        )
    yield Case("no-audio/h264.mp4", "video.mp4", video_only, fast=True)
    yield Case(
        "no-audio/h264-truncated.mp4", "video.mp4", lambda: video_only()[: len(video_only()) // 2]
    )


# --------------------------------------------------------------------------- corpus
def _all() -> list[Case]:
    families: list[Callable[[], Iterator[Case]]] = [cleans, mutations, wav_lies, mp4_lies]
    families += [mp3_lies, flac_lies, ogg_lies, mkv_lies, joined, playlists, non_media, silent]
    cases = [case for family in families for case in family()]
    names = [case.name for case in cases]
    if len(set(names)) != len(names):
        raise ValueError("two corpus cases share a name")
    return cases


CASES = _all()
FAST = [case for case in CASES if case.fast]
LONG = [case for case in CASES if not case.fast]
