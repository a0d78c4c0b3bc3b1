"""Filtered masters: names, one canonical name per result, and bodies as packaged."""

from __future__ import annotations

import itertools

import m3u8
import pytest

from stb_origin.origin.masters import (
    Filter,
    Filtered,
    canonical_name,
    filtered,
    form_etag,
    parse_name,
)
from stb_origin.packager.playlists import (
    AudioEntry,
    IFrameEntry,
    VariantEntry,
    master_playlist,
    rewrite_master_uris,
)

AVC, HEVC = "avc1.64001f,mp4a.40.2", "hvc1.1.6.L150.B0,mp4a.40.2"
# name -> (width, height, bandwidth, codecs)
RUNGS = {
    "360p": (640, 360, 800_000, AVC),
    "720p": (1280, 720, 2_800_000, AVC),
    "1080p": (1920, 1080, 5_000_000, AVC),
    "2160p": (3840, 2160, 12_000_000, HEVC),
}
IFRAMES = {"if360": (640, 360, 100_000, "avc1.64001e"),
           "if1080": (1920, 1080, 300_000, "avc1.640028")}
SESSION_KEY = "/keys/0123456789abcdef0123456789abcdef/k0"


def ladder_master(rungs: dict[str, tuple[int, int, int, str]] = RUNGS,
                  iframes: dict[str, tuple[int, int, int, str]] = IFRAMES) -> bytes:
    """A master as the packager publishes it (start variant first, URIs under v1/)."""
    variants = [VariantEntry(f"{n}/index.m3u8", b, b, c, w, h, 30.0)
                for n, (w, h, b, c) in rungs.items()]
    trick = [IFrameEntry(f"{n}/index.m3u8", b, b, c, w, h) for n, (w, h, b, c) in iframes.items()]
    text = master_playlist(variants, trick, session_key_uri=SESSION_KEY)
    return rewrite_master_uris(text, "v1/").encode()


MASTER = ladder_master()


@pytest.mark.parametrize(("name", "expected"), [
    ("master.h720.m3u8", Filter(max_height=720)),
    ("master.h0720.m3u8", Filter(max_height=720)),
    ("master.c_avc1_mp4a.m3u8", Filter(families=frozenset({"avc1", "mp4a"}))),
    ("master.c_ec-3.h480.m3u8", Filter(max_height=480, families=frozenset({"ec-3"}))),
    ("master.c.m3u8", Filter(families=frozenset())),  # only variants with no CODECS
])
def test_names_of_filtered_masters(name: str, expected: Filter) -> None:
    assert parse_name(name) == expected


@pytest.mark.parametrize("name", [
    "master.m3u8", "index.m3u8", "master.x720.m3u8", "master.h.m3u8", "master.h720.h480.m3u8",
    "master.h720.c_avc1.h1.m3u8", "master.c_avc1.c_mp4a.m3u8", "master.h123456.m3u8",
    "master.h720.mp4", "master..m3u8", "master.c_a.b.m3u8", "master.c_.m3u8",
])
def test_other_names_are_not_forms(name: str) -> None:
    assert parse_name(name) is None


@pytest.mark.parametrize(("device", "name"), [
    (Filter(), "master.m3u8"),
    (Filter.for_device(3840, 2160, ["avc1.640033", "hvc1.2.4.L153", "mp4a.40.2"]),
     "master.m3u8"),
    # Snapped down to the ladder: a box capped at 1000 lines gets the 720 form.
    (Filter.for_device(None, 1000, []), "master.h720.m3u8"),
    (Filter.for_device(1280, 720, []), "master.h720.m3u8"),
    (Filter.for_device(1919, None, []), "master.h720.m3u8"),
    (Filter.for_device(1920, 1080, []), "master.h1080.m3u8"),
    # No HEVC drops the 2160 rung only: the height says the same, more briefly.
    (Filter.for_device(None, None, ["avc1.640028", "mp4a.40.2"]), "master.h1080.m3u8"),
    (Filter.for_device(None, 360, ["avc1", "mp4a", "hvc1"]), "master.h360.m3u8"),
    # Nothing to play: no variant this small, or no audio decoder.
    (Filter.for_device(None, 240, []), None),
    (Filter.for_device(None, None, ["avc1", "hvc1"]), None),
])
def test_a_device_gets_the_canonical_name_of_what_it_can_play(device: Filter,
                                                              name: str | None) -> None:
    assert canonical_name(MASTER, device) == name


def test_codecs_are_named_when_the_height_cannot_say_it() -> None:
    # The same sizes in both codecs: only the codec list tells them apart.
    both = {**{f"avc{h}": (w, h, b, AVC) for w, h, b, _ in RUNGS.values()},
            **{f"hevc{h}": (w, h, b * 2 // 3, HEVC) for w, h, b, _ in RUNGS.values()}}
    master = ladder_master(both)
    assert canonical_name(master, Filter.for_device(None, None, ["avc1", "mp4a"])) == (
        "master.c_avc1_mp4a.m3u8")
    assert canonical_name(master, Filter.for_device(None, 1080, ["avc1", "mp4a"])) == (
        "master.h1080.c_avc1_mp4a.m3u8")
    assert canonical_name(master, Filter.for_device(None, 1080, [])) == "master.h1080.m3u8"
    body = filtered(master, "master.c_avc1_mp4a.m3u8").body
    assert body is not None and b"hvc1" not in body and body.count(b"EXT-X-STREAM-INF") == 4


def test_a_form_is_the_master_of_the_variants_it_keeps_as_packaged() -> None:
    form = filtered(MASTER, "master.h1080.m3u8")
    kept = {n: r for n, r in RUNGS.items() if r[1] <= 1080}
    assert form == Filtered("master.h1080.m3u8", ladder_master(kept))
    body = form.body or b""
    # The start variant stays first, the session key stays, the I-frames are filtered too.
    assert body.index(b"v1/720p/index.m3u8") < body.index(b"v1/1080p/index.m3u8")
    assert f'#EXT-X-SESSION-KEY:METHOD=AES-128,URI="{SESSION_KEY}"'.encode() in body
    small = filtered(MASTER, "master.h720.m3u8").body or b""
    assert small == ladder_master({n: r for n, r in RUNGS.items() if r[1] <= 720},
                                  {"if360": IFRAMES["if360"]})


@pytest.mark.parametrize(("asked", "canonical"), [
    ("master.h1000.m3u8", "master.h720.m3u8"),
    ("master.h0720.m3u8", "master.h720.m3u8"),
    ("master.h4320.m3u8", "master.m3u8"),
    ("master.c_mp4a_avc1.m3u8", "master.h1080.m3u8"),
    ("master.c_avc1_mp4a_opus.h1080.m3u8", "master.h1080.m3u8"),
])
def test_other_spellings_point_to_the_canonical_name(asked: str, canonical: str) -> None:
    assert filtered(MASTER, asked) == Filtered(canonical)


def test_a_form_that_keeps_nothing_has_no_name() -> None:
    assert filtered(MASTER, "master.h100.m3u8") == Filtered(None)
    assert filtered(MASTER, "master.c_vp09.m3u8") == Filtered(None)


def test_every_canonical_name_is_served_and_distinct() -> None:
    bodies: dict[bytes, str] = {}
    for width, height, codecs in itertools.product(
            (None, 640, 1280, 1920, 4096), (None, 360, 500, 720, 1080, 2160),
            ([], ["avc1", "mp4a"], ["hvc1", "mp4a"], ["avc1", "hvc1", "mp4a"])):
        name = canonical_name(MASTER, Filter.for_device(width, height, codecs))
        if name is None or name == "master.m3u8":
            continue
        body = filtered(MASTER, name).body
        assert body is not None, name
        assert bodies.setdefault(body, name) == name  # one name per distinct result
    assert sorted(bodies.values()) == ["master.c_hvc1_mp4a.m3u8", "master.h1080.m3u8",
                                       "master.h360.m3u8", "master.h720.m3u8"]


def test_not_a_master() -> None:
    with pytest.raises(ValueError):
        filtered(b"#EXTM3U\n#EXTINF:4,\nseg.m4s\n", "master.h720.m3u8")
    with pytest.raises(ValueError):
        filtered(MASTER, "index.m3u8")


def test_each_form_has_its_own_etag() -> None:
    assert form_etag('"abc"', "master.h720.m3u8") == '"abc.h720"'
    assert form_etag('W/"abc"', "master.c_avc1.m3u8") == 'W/"abc.c_avc1"'


HDR_RUNGS = {
    "720p": (1280, 720, 2_800_000, AVC, "SDR"),
    "1080p": (1920, 1080, 5_000_000, AVC, "SDR"),
    "720p-hevc": (1280, 720, 1_800_000, HEVC, "PQ"),
    "1080p-hevc": (1920, 1080, 3_300_000, HEVC, "PQ"),
}


def hdr_master(rungs: dict[str, tuple[int, int, int, str, str]] = HDR_RUNGS) -> bytes:
    """What an HDR10 source is packaged as: H.264 SDR (tone-mapped) and HEVC PQ."""
    variants = [VariantEntry(f"{n}/index.m3u8", b, b, c, w, h, 30.0, video_range=r)
                for n, (w, h, b, c, r) in rungs.items()]
    return rewrite_master_uris(master_playlist(variants), "v1/").encode()


@pytest.mark.parametrize(("device", "name", "kept"), [
    # An HDR10 box that plays HEVC: everything.
    (Filter.for_device(None, None, ["avc1", "hvc1", "mp4a"], ["PQ"]), "master.m3u8",
     {"720p", "1080p", "720p-hevc", "1080p-hevc"}),
    # An SDR box, HEVC or not, never sees PQ. Here only H.264 is SDR, so the codecs
    # name the result (the shorter spelling comes first: c before r).
    (Filter.for_device(None, None, ["avc1", "hvc1", "mp4a"]), "master.c_avc1_mp4a.m3u8",
     {"720p", "1080p"}),
    (Filter.for_device(None, None, ["avc1", "hvc1", "mp4a"], ["HLG"]),
     "master.c_avc1_mp4a.m3u8", {"720p", "1080p"}),
    # An H.264-only box never sees hvc1 (the codec says what the range would).
    (Filter.for_device(None, None, ["avc1", "mp4a"], ["PQ"]), "master.c_avc1_mp4a.m3u8",
     {"720p", "1080p"}),
    (Filter.for_device(None, 720, ["avc1", "hvc1", "mp4a"], ["PQ"]), "master.h720.m3u8",
     {"720p", "720p-hevc"}),
    (Filter.for_device(None, 720, ["avc1", "hvc1", "mp4a"]), "master.h720.c_avc1_mp4a.m3u8",
     {"720p"}),
])
def test_video_range_filter(device: Filter, name: str, kept: set[str]) -> None:
    master = hdr_master()
    assert canonical_name(master, device) == name
    assert parse_name(name) is not None or name == "master.m3u8"
    body = master if name == "master.m3u8" else filtered(master, name).body
    assert body is not None
    playlist = m3u8.loads(body.decode())
    assert {p.uri.removeprefix("v1/").removesuffix("/index.m3u8")
            for p in playlist.playlists} == kept
    if "720p-hevc" not in kept:
        assert b"VIDEO-RANGE=PQ" not in body and b"hvc1" not in body


def test_ranges_in_names() -> None:
    assert parse_name("master.r_pq_sdr.m3u8") == Filter(ranges=frozenset({"PQ", "SDR"}))
    assert parse_name("master.h720.c_avc1.r_sdr.m3u8") == Filter(
        max_height=720, families=frozenset({"avc1"}), ranges=frozenset({"SDR"}))
    for name in ("master.r_.m3u8", "master.r_hdr.m3u8", "master.r_sdr.r_pq.m3u8",
                 "master.r_SDR.m3u8"):
        assert parse_name(name) is None, name
    # Where HEVC is in both ranges, only the range tells them apart.
    both = hdr_master({**HDR_RUNGS, "540p-hevc": (960, 540, 1_000_000, HEVC, "SDR")})
    sdr_box = Filter.for_device(None, None, ["avc1", "hvc1", "mp4a"])
    assert canonical_name(both, sdr_box) == "master.r_sdr.m3u8"
    body = filtered(both, "master.r_sdr.m3u8").body
    assert body is not None and b"VIDEO-RANGE=PQ" not in body
    assert body.count(b"EXT-X-STREAM-INF") == 3
    # Another spelling of the same result is sent to the canonical one.
    assert filtered(both, "master.c_avc1_hvc1_mp4a.r_sdr.m3u8") == Filtered(
        "master.r_sdr.m3u8")
    assert filtered(hdr_master(), "master.c_avc1_mp4a.r_sdr.m3u8") == Filtered(
        "master.c_avc1_mp4a.m3u8")
    # A master of SDR variants only (or one from before VIDEO-RANGE) needs no r part.
    assert canonical_name(MASTER, Filter.for_device(None, None, [])) == "master.m3u8"


def audio_groups_master() -> bytes:
    """Two rungs, each with the AAC group and again with the E-AC-3 group."""
    audio = [AudioEntry("a0/index.m3u8", "audio-aac", "English", "en", 2, True),
             AudioEntry("a1/index.m3u8", "audio-aac", "French", "fr", 2, False),
             AudioEntry("a2/index.m3u8", "audio-ec3", "English", "en", 6, True)]
    variants = [VariantEntry(f"{n}/index.m3u8", b + extra, b + extra, f"avc1.64001f,{codec}",
                             w, h, 30.0, audio_group=group)
                for group, codec, extra in (("audio-aac", "mp4a.40.2", 128_000),
                                            ("audio-ec3", "ec-3", 384_000))
                for n, (w, h, b) in {"360p": (640, 360, 800_000),
                                     "720p": (1280, 720, 2_800_000)}.items()]
    return rewrite_master_uris(master_playlist(variants, audio=audio), "v1/").encode()


def test_a_box_without_ec3_gets_neither_its_variants_nor_its_audio_group() -> None:
    master = audio_groups_master()
    name = canonical_name(master, Filter.for_device(None, None, ["avc1", "mp4a"]))
    assert name == "master.c_avc1_mp4a.m3u8"
    body = filtered(master, name).body
    assert body is not None
    kept = m3u8.loads(body.decode())
    assert {p.stream_info.audio for p in kept.playlists} == {"audio-aac"}
    assert [(m.group_id, m.name) for m in kept.media] == [("audio-aac", "English"),
                                                          ("audio-aac", "French")]
    assert "ec-3" not in body.decode()
    # A box that lists ec-3 keeps both groups: the packaged master, unfiltered.
    assert canonical_name(master, Filter.for_device(None, None, ["avc1", "mp4a", "ec-3"])) == (
        "master.m3u8")
    # One that lists only ec-3 audio gets the E-AC-3 variants and their group.
    only = filtered(master, "master.c_avc1_ec-3.m3u8").body
    assert only is not None and "mp4a" not in only.decode() and "audio-aac" not in only.decode()
