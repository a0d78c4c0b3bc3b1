from __future__ import annotations

import dataclasses
import os
import re

import m3u8
import pytest

from stb_origin.packager import playlists
from stb_origin.packager.playlists import (
    START_BANDWIDTH,
    IFrameEntry,
    InitSection,
    MediaSegment,
    VariantEntry,
    master_playlist,
    media_playlist,
    order_variants,
    rewrite_master_uris,
    target_duration,
)
from tests.support.hls import init_key

IV_ATTR = re.compile(r"^0x[0-9a-f]{32}$")


def segments(count: int = 5, rotation: int = 2) -> list[MediaSegment]:
    durations = [4.0] * (count - 1) + [1.5]
    return [MediaSegment(f"seg_{i:05d}.m4s", durations[i], f"/keys/a/k{i // rotation}",
                         os.urandom(16)) for i in range(count)]


def init_section(key_uri: str = "/keys/a/k0") -> InitSection:
    return InitSection("init.mp4", key_uri, os.urandom(16))


def test_media_playlist_parses_back_with_every_tag() -> None:
    segs = segments()
    init = init_section()
    text = media_playlist(segs, init)
    parsed = m3u8.loads(text)
    assert parsed.version == 7
    assert parsed.playlist_type == "vod"
    assert parsed.target_duration == 4
    assert parsed.is_independent_segments and parsed.is_endlist
    assert not parsed.is_i_frames_only
    assert [s.uri for s in parsed.segments] == [s.uri for s in segs]
    assert [s.duration for s in parsed.segments] == [s.duration for s in segs]
    for seg, parsed_seg in zip(segs, parsed.segments, strict=True):
        assert parsed_seg.key.method == "AES-128"
        assert parsed_seg.key.uri == seg.key_uri
        assert IV_ATTR.match(parsed_seg.key.iv) and parsed_seg.key.iv == "0x" + seg.iv.hex()
        assert parsed_seg.init_section.uri == "init.mp4"
    lines = text.splitlines()
    # An explicit IV on every EXT-X-KEY: one for the init section, then one per
    # segment, each right before its segment.
    assert sum(ln.startswith("#EXT-X-KEY:") for ln in lines) == len(segs) + 1
    assert all(",IV=0x" in ln for ln in lines if ln.startswith("#EXT-X-KEY:"))
    assert lines.count('#EXT-X-MAP:URI="init.mp4"') == 1
    assert init_key(text) == (init.key_uri, init.iv)


def test_the_init_section_has_its_own_key_line_before_the_first_segment() -> None:
    segs = segments()
    init = init_section()
    lines = media_playlist(segs, init).splitlines()
    at_map = lines.index('#EXT-X-MAP:URI="init.mp4"')
    assert lines[at_map - 1] == (f'#EXT-X-KEY:METHOD=AES-128,URI="{init.key_uri}",'
                                 f"IV=0x{init.iv.hex()}")
    assert lines[at_map + 1] == (f'#EXT-X-KEY:METHOD=AES-128,URI="{segs[0].key_uri}",'
                                 f"IV=0x{segs[0].iv.hex()}")
    assert lines[at_map + 3] == segs[0].uri


def test_ts_media_playlist_has_no_map() -> None:
    text = media_playlist(segments(3))
    assert "#EXT-X-MAP" not in text
    assert m3u8.loads(text).segment_map == []


def test_iframe_playlist() -> None:
    parsed = m3u8.loads(media_playlist(segments(), init_section(), i_frames_only=True))
    assert parsed.is_i_frames_only
    assert all(s.key.iv for s in parsed.segments)


def test_target_duration_rounds_to_nearest() -> None:
    assert target_duration([4.0, 4.4, 1.0]) == 4
    assert target_duration([4.0, 4.5]) == 5
    assert target_duration([0.2]) == 1


def test_master_playlist() -> None:
    low = VariantEntry("180p/index.m3u8", 400_000, 350_000, "avc1.42c00d,mp4a.40.2",
                       320, 180, 29.97003)
    high = VariantEntry("720p/index.m3u8", 3_000_000, 2_500_000, "avc1.64001f,mp4a.40.2",
                        1280, 720, 29.97003)
    trick = IFrameEntry("iframes/index.m3u8", 90_000, 70_000, "avc1.42c00d", 320, 180)
    text = master_playlist([low, high], [trick])
    parsed = m3u8.loads(text)
    assert parsed.is_variant and parsed.is_independent_segments
    assert [p.uri for p in parsed.playlists] == ["720p/index.m3u8", "180p/index.m3u8"]
    info = parsed.playlists[0].stream_info
    assert (info.bandwidth, info.average_bandwidth) == (3_000_000, 2_500_000)
    assert info.codecs == "avc1.64001f,mp4a.40.2"
    assert info.resolution == (1280, 720)
    assert info.frame_rate == 29.97
    [iframe] = parsed.iframe_playlists
    assert iframe.uri == "iframes/index.m3u8"
    assert iframe.iframe_stream_info.bandwidth == 90_000
    assert iframe.iframe_stream_info.codecs == "avc1.42c00d"
    assert iframe.iframe_stream_info.resolution == (320, 180)
    assert "#EXT-X-I-FRAME-STREAM-INF:" in text and "FRAME-RATE=29.97," in text

    rewritten = m3u8.loads(rewrite_master_uris(text, "v1/"))
    assert [p.uri for p in rewritten.playlists] == ["v1/720p/index.m3u8", "v1/180p/index.m3u8"]
    assert rewritten.iframe_playlists[0].uri == "v1/iframes/index.m3u8"
    assert rewritten.playlists[0].stream_info.codecs == info.codecs


def _variant(name: str, bandwidth: int) -> VariantEntry:
    return VariantEntry(f"{name}/index.m3u8", bandwidth, bandwidth * 4 // 5, "avc1.64001f",
                        1280, 720, 30.0)


LADDER = [_variant("1080p", 7_800_000), _variant("720p", 4_000_000),
          _variant("540p", 2_700_000), _variant("432p", 1_500_000),
          _variant("360p", 560_000), _variant("234p", 260_000)]


def test_start_variant_first_then_highest_first() -> None:
    names = [v.uri.split("/")[0] for v in order_variants(list(reversed(LADDER)))]
    assert START_BANDWIDTH == 3_000_000
    assert names == ["540p", "1080p", "720p", "432p", "360p", "234p"]
    # None: plain highest first.
    assert order_variants(LADDER[::-1], None) == LADDER
    # Every variant above the start bandwidth: the lowest starts.
    assert order_variants(LADDER[:2], 1_000_000) == [LADDER[1], LADDER[0]]
    # The start bandwidth is a peak: a variant exactly at it may start.
    assert order_variants(LADDER, 4_000_000)[0] == LADDER[1]


def test_master_lists_the_start_variant_first_and_the_session_key() -> None:
    text = master_playlist(LADDER, session_key_uri="/keys/a/k0")
    parsed = m3u8.loads(text)
    assert [p.uri for p in parsed.playlists][:2] == ["540p/index.m3u8", "1080p/index.m3u8"]
    [key] = parsed.session_keys
    assert (key.method, key.uri, key.iv) == ("AES-128", "/keys/a/k0", None)
    assert text.count("#EXT-X-SESSION-KEY:") == 1
    # The session key survives the rewrite into the version prefix, its URI untouched.
    rewritten = m3u8.loads(rewrite_master_uris(text, "v1/"))
    assert [k.uri for k in rewritten.session_keys] == ["/keys/a/k0"]
    assert rewritten.playlists[0].uri == "v1/540p/index.m3u8"
    assert "SESSION-KEY" not in master_playlist(LADDER)
    with pytest.raises(ValueError):
        master_playlist(LADDER, session_key_uri='/keys/"x')


def test_empty_inputs_are_refused() -> None:
    with pytest.raises(ValueError):
        media_playlist([])
    with pytest.raises(ValueError):
        master_playlist([])
    with pytest.raises(ValueError):
        rewrite_master_uris(media_playlist(segments(2)), "v1/")


def test_unquotable_uris_and_bad_ivs_are_refused() -> None:
    for key_uri in ['/keys/a"b', "/keys/a\nb", ""]:
        with pytest.raises(ValueError):
            MediaSegment("seg_00000.ts", 4.0, key_uri, os.urandom(16))
    with pytest.raises(ValueError):
        MediaSegment("seg_00000.ts", 4.0, "/keys/a/b", os.urandom(8))
    with pytest.raises(ValueError):
        InitSection("init.mp4", "/keys/a/b", os.urandom(8))
    with pytest.raises(ValueError):
        InitSection('init".mp4', "/keys/a/b", os.urandom(16))


def _audio(**changes: object) -> playlists.AudioEntry:
    fields: dict[str, object] = {"uri": "audio0_aac/index.m3u8", "group_id": "audio-aac",
                                 "name": "English", "language": "en", "channels": 2,
                                 "default": True}
    return playlists.AudioEntry(**{**fields, **changes})  # type: ignore[arg-type]


@pytest.mark.parametrize("changes", [
    {"name": 'say "hi"'}, {"name": "two\nlines"}, {"name": "sep\u2028"}, {"name": "bidi\u202e"},
    {"name": ""}, {"name": " padded"}, {"name": "x" * 65},
    {"language": 'en"'}, {"language": "en\n"}, {"language": "english"},
    {"group_id": 'a"b'}, {"group_id": "Audio AAC"}, {"channels": 0}, {"channels": 100},
    {"uri": "../x/index.m3u8"}, {"uri": 'a"/index.m3u8'},
])
def test_unusable_audio_attributes_are_refused(changes: dict[str, object]) -> None:
    with pytest.raises(ValueError, match="unusable|BCP-47|outside"):
        _audio(**changes)


def test_audio_groups_need_one_default_and_unique_names() -> None:
    variant = playlists.VariantEntry("360p/index.m3u8", 1000, 900, "avc1.42c01e,mp4a.40.2",
                                     640, 360, 30.0, audio_group="audio-aac")
    fr = _audio(uri="audio1_aac/index.m3u8", name="French", language="fr", default=False)
    with pytest.raises(ValueError, match="exactly one DEFAULT"):
        playlists.master_playlist([variant], audio=[_audio(default=False), fr])
    with pytest.raises(ValueError, match="exactly one DEFAULT"):
        playlists.master_playlist([variant],
                                  audio=[_audio(), dataclasses.replace(fr, default=True)])
    with pytest.raises(ValueError, match="repeats a NAME"):
        playlists.master_playlist([variant],
                                  audio=[_audio(), dataclasses.replace(fr, name="English")])
    with pytest.raises(ValueError, match="names no listed audio group"):
        playlists.master_playlist([dataclasses.replace(variant, audio_group="audio-ec3")],
                                  audio=[_audio(), fr])
    text = playlists.master_playlist([variant], audio=[_audio(), fr])
    assert ('#EXT-X-MEDIA:URI="audio1_aac/index.m3u8",TYPE=AUDIO,GROUP-ID="audio-aac",'
            'LANGUAGE="fr",NAME="French",DEFAULT=NO,AUTOSELECT=YES,CHANNELS="2"') in text
    assert 'AUDIO="audio-aac"' in text
    no_language = playlists.master_playlist([variant], audio=[_audio(language=None)])
    assert "LANGUAGE" not in no_language


def test_rewritten_master_prefixes_audio_renditions() -> None:
    variant = playlists.VariantEntry("360p/index.m3u8", 1000, 900, "avc1.42c01e,mp4a.40.2",
                                     640, 360, 30.0, audio_group="audio-aac")
    text = playlists.rewrite_master_uris(playlists.master_playlist([variant], audio=[_audio()]),
                                         "v1/")
    master = m3u8.loads(text)
    assert [m.uri for m in master.media] == ["v1/audio0_aac/index.m3u8"]
    assert master.playlists[0].stream_info.audio == "audio-aac"


def test_audio_only_variant_has_no_picture_attributes() -> None:
    # RFC 8216 4.3.4.2: RESOLUTION is for variants with video; FRAME-RATE likewise.
    variant = playlists.VariantEntry("audio0_aac/index.m3u8", 140_000, 130_000, "mp4a.40.2",
                                     audio_group="audio-aac")
    text = playlists.master_playlist([variant], audio=[_audio()])
    lines = text.splitlines()
    stream_inf = next(line for line in lines if line.startswith("#EXT-X-STREAM-INF:"))
    assert stream_inf == ('#EXT-X-STREAM-INF:BANDWIDTH=140000,AVERAGE-BANDWIDTH=130000,'
                          'CODECS="mp4a.40.2",AUDIO="audio-aac"')
    assert lines[lines.index(stream_inf) + 1] == "audio0_aac/index.m3u8"
