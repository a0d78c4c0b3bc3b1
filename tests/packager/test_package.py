from __future__ import annotations

import collections
import shutil
from pathlib import Path

import m3u8
import pytest

from stb_origin import proc
from stb_origin.drm.keys import ContentKey, generate_key
from stb_origin.packager.codecs import read_codecs
from stb_origin.packager.package import (
    NotEnoughKeys,
    PackageResult,
    PackagingError,
    VariantInput,
    count_segments,
    keys_needed,
    package,
    peak_bitrate,
)
from tests.packager import support
from tests.support.hls import init_key
from tests.support.media import video_found

ASSET = "0123456789abcdef0123456789abcdef"
VARIANTS = [VariantInput(name, w, h, float(support.FPS)) for name, w, h in support.RENDITIONS]
SEGMENTS = support.SECONDS // support.SEGMENT_S
IFRAMES = [VariantInput(name, w, h, float(support.FPS)) for name, w, h in support.TRICKPLAY]
TRICKS = [t.name for t in IFRAMES]
TRACKS = [name for name, _, _ in support.RENDITIONS] + TRICKS


def key_uri(key_id: str) -> str:
    return f"/keys/{ASSET}/{key_id}"


def make_package(work: Path, out: Path, rotation: int) -> tuple[PackageResult, list[ContentKey]]:
    keys = [generate_key() for _ in range(keys_needed(count_segments(work), rotation))]
    return package(work, VARIANTS, keys, key_uri, rotation, out, iframes=IFRAMES), keys


def serve_keys(server: support.HlsServer, keys: list[ContentKey]) -> None:
    server.keys.update({key_uri(k.key_id): k.key for k in keys})


def test_keys_needed() -> None:
    assert keys_needed(4, 1) == 4
    assert keys_needed(4, 2) == 2
    assert keys_needed(5, 2) == 3
    assert keys_needed(4, 10) == 1
    with pytest.raises(ValueError):
        keys_needed(4, 0)


def test_count_segments(work_dir: Path) -> None:
    assert count_segments(work_dir) == SEGMENTS


@pytest.mark.parametrize("rotation", [1, 2, 10])
def test_every_track_plays_over_http_with_the_expected_frames(
        work_dir: Path, clear_frames: dict[str, collections.Counter[int]], tmp_path: Path,
        rotation: int) -> None:
    result, keys = make_package(work_dir, tmp_path / "out", rotation)
    assert len(result.key_ids) == keys_needed(SEGMENTS, rotation)
    with support.serve(tmp_path / "out") as server:
        serve_keys(server, keys)
        for track in TRACKS:
            frames = support.decode(f"{server.base}/{track}/index.m3u8")
            assert frames == clear_frames[track], track
            if track not in TRICKS:
                assert frames[0] == support.SECONDS * support.FPS
        for track in TRICKS:
            assert support.decode(f"{server.base}/{track}/index.m3u8") == {0: SEGMENTS}
        # Every key was fetched from the key URI the playlists name.
        assert {key_uri(k) for k in result.key_ids} <= set(server.requests)


def test_master_plays(fmp4_work: Path, tmp_path: Path) -> None:
    _, keys = make_package(fmp4_work, tmp_path / "out", 2)
    with support.serve(tmp_path / "out") as server:
        serve_keys(server, keys)
        frames = support.decode(f"{server.base}/master.m3u8")
    # ffmpeg opens every variant of a master as its own program: 2 x (video, audio).
    assert sorted(frames.values()) == sorted([support.SECONDS * support.FPS] * 2
                                             + [frames[1]] * 2)


def test_playback_fails_when_the_key_server_refuses(work_dir: Path, tmp_path: Path) -> None:
    _, keys = make_package(work_dir, tmp_path / "out", 2)
    with support.serve(tmp_path / "out") as server:
        serve_keys(server, keys)
        server.deny_keys = True
        with pytest.raises(proc.ProcessFailed):
            support.decode(f"{server.base}/360p/index.m3u8")
        assert any(r.startswith("/keys/") for r in server.requests)


def test_a_raw_encrypted_segment_does_not_decode(work_dir: Path, tmp_path: Path) -> None:
    make_package(work_dir, tmp_path / "out", 2)
    track = tmp_path / "out" / "360p"
    raw = tmp_path / "raw"
    init = track / "init.mp4"
    segment = min(track.glob("seg_00001.*"))
    raw.write_bytes((init.read_bytes() if init.exists() else b"") + segment.read_bytes())
    found = video_found(raw)
    assert "h264" not in found and "640,360" not in found, found


@pytest.mark.parametrize("tier", IFRAMES, ids=TRICKS)
def test_iframe_segments_decrypt_to_exactly_one_keyframe_at_the_tier_size(
        work_dir: Path, tmp_path: Path, tier: VariantInput) -> None:
    _, keys = make_package(work_dir, tmp_path / "out", 1)
    by_uri = {key_uri(k.key_id): k.key for k in keys}
    track = tmp_path / "out" / tier.name
    playlist = m3u8.loads((track / "index.m3u8").read_text())
    assert playlist.is_i_frames_only
    init = b""
    if playlist.segment_map:
        uri, iv = init_key((track / "index.m3u8").read_text())
        init = support.decrypt((track / "init.mp4").read_bytes(), by_uri[uri], iv)
    assert len(playlist.segments) == SEGMENTS
    for i, segment in enumerate(playlist.segments):
        clear = support.decrypt((track / segment.uri).read_bytes(), by_uri[segment.key.uri],
                                bytes.fromhex(segment.key.iv[2:]))
        sample = tmp_path / f"frame{i}{Path(segment.uri).suffix}"
        sample.write_bytes(init + clear)
        assert support.probe_frames(sample) == ["1,I"], segment.uri
        assert support.probe_size(sample) == (tier.width, tier.height), segment.uri


def test_segment_i_uses_the_same_key_in_every_track(work_dir: Path, tmp_path: Path) -> None:
    result, keys = make_package(work_dir, tmp_path / "out", 2)
    per_track = {t: m3u8.loads((tmp_path / "out" / t / "index.m3u8").read_text())
                 for t in TRACKS}
    expected = [key_uri(keys[i // 2].key_id) for i in range(SEGMENTS)]
    ivs: list[str] = []
    for track, playlist in per_track.items():
        assert [s.key.uri for s in playlist.segments] == expected, track
        ivs += [s.key.iv for s in playlist.segments]
        if playlist.segment_map:
            # The init section: the first segment's key, an IV of its own.
            uri, iv = init_key((tmp_path / "out" / track / "index.m3u8").read_text())
            assert uri == expected[0], track
            ivs.append("0x" + iv.hex())
    assert len(set(ivs)) == len(ivs), "IVs are fresh per segment and init section"
    assert result.key_ids == tuple(k.key_id for k in keys)


def test_output_layout_and_no_key_material(work_dir: Path, tmp_path: Path) -> None:
    result, keys = make_package(work_dir, tmp_path / "out", 1)
    out = tmp_path / "out"
    ext = ".m4s" if (work_dir / TRICKS[0] / "init.mp4").exists() else ".ts"
    expected = {"master.m3u8"}
    for track in TRACKS:
        expected |= {f"{track}/index.m3u8"} | {f"{track}/seg_{i:05d}{ext}"
                                               for i in range(SEGMENTS)}
        if ext == ".m4s":
            expected.add(f"{track}/init.mp4")
    files = {p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()}
    assert files == expected
    for path in out.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            for k in keys:
                for form in (k.key, k.key.hex().encode(), k.key.hex().upper().encode()):
                    assert form not in data, f"key material in {path}"
    assert result.segment_count == SEGMENTS
    assert result.duration_s == support.SECONDS


def test_master_describes_the_real_segments(work_dir: Path, tmp_path: Path) -> None:
    result, _ = make_package(work_dir, tmp_path / "out", 2)
    out = tmp_path / "out"
    master = m3u8.loads((out / "master.m3u8").read_text())
    assert master.is_independent_segments
    bandwidths = [p.stream_info.bandwidth for p in master.playlists]
    assert bandwidths == sorted(bandwidths, reverse=True)
    assert [p.uri for p in master.playlists] == ["360p/index.m3u8", "180p/index.m3u8"]
    audio = ",mp4a.40.2"
    for playlist, (name, w, h) in zip(master.playlists, support.RENDITIONS, strict=True):
        info = playlist.stream_info
        assert info.resolution == (w, h)
        assert info.frame_rate == support.FPS
        assert info.codecs.startswith("avc1.42c0") and info.codecs.endswith(audio)
        media = m3u8.loads((out / name / "index.m3u8").read_text())
        sizes = [(out / name / s.uri).stat().st_size for s in media.segments]
        durations = [s.duration for s in media.segments]
        init = out / name / "init.mp4"
        init_size = init.stat().st_size if init.exists() else 0
        assert info.average_bandwidth == -(-(init_size + sum(sizes)) * 8 // support.SECONDS)
        assert info.bandwidth == peak_bitrate(sizes, durations, media.target_duration,
                                              init_size)
        assert info.bandwidth >= info.average_bandwidth
        facts = next(r for r in result.renditions if r.name == name)
        assert (facts.bandwidth, facts.average_bandwidth, facts.codecs) == (
            info.bandwidth, info.average_bandwidth, info.codecs)
        assert facts.to_json()["segment_count"] == SEGMENTS
    # One I-frame stream per tier, highest first, each describing its own track.
    assert [i.uri for i in master.iframe_playlists] == [f"{t}/index.m3u8" for t in TRICKS]
    for iframe, tier, facts in zip(master.iframe_playlists, IFRAMES, result.iframes,
                                   strict=True):
        info = iframe.iframe_stream_info
        assert info.resolution == (tier.width, tier.height)
        media = m3u8.loads((out / tier.name / "index.m3u8").read_text())
        assert media.is_i_frames_only
        sizes = [(out / tier.name / s.uri).stat().st_size for s in media.segments]
        init = out / tier.name / "init.mp4"
        init_size = init.stat().st_size if init.exists() else 0
        assert info.bandwidth == peak_bitrate(sizes, [s.duration for s in media.segments],
                                              media.target_duration, init_size)
        assert info.average_bandwidth == -(-(init_size + sum(sizes)) * 8 // support.SECONDS)
        clear = work_dir / tier.name / ("init.mp4" if init.exists() else "seg_00000.ts")
        assert info.codecs == str(read_codecs(clear))
        assert info.codecs.startswith("avc1.") and "mp4a" not in info.codecs
        assert (facts.name, facts.width, facts.height, facts.bandwidth, facts.codecs) == (
            tier.name, tier.width, tier.height, info.bandwidth, info.codecs)
    small, large = master.iframe_playlists[1], master.iframe_playlists[0]
    assert 0 < small.iframe_stream_info.bandwidth < large.iframe_stream_info.bandwidth


def test_track_names_must_be_unique(fmp4_work: Path, tmp_path: Path) -> None:
    twice = [VariantInput("180p", 320, 180, 30.0)]
    with pytest.raises(PackagingError, match="unique"):
        package(fmp4_work, VARIANTS, [generate_key() for _ in range(4)], key_uri, 1,
                tmp_path / "out", iframes=twice)


def test_too_few_keys_is_a_clear_error(fmp4_work: Path, tmp_path: Path) -> None:
    with pytest.raises(NotEnoughKeys, match="need 4 keys, got 3"):
        package(fmp4_work, VARIANTS, [generate_key() for _ in range(3)], key_uri, 1,
                tmp_path / "out")


def test_misaligned_tracks_are_refused(fmp4_work: Path, tmp_path: Path) -> None:
    work = tmp_path / "work"
    shutil.copytree(fmp4_work, work)
    playlist = m3u8.loads((work / "180p" / "index.m3u8").read_text())
    playlist.segments.pop()
    (work / "180p" / "index.m3u8").write_text(playlist.dumps())
    with pytest.raises(PackagingError, match="segment"):
        count_segments(work)
    with pytest.raises(PackagingError, match="not aligned"):
        package(work, VARIANTS, [generate_key() for _ in range(4)], key_uri, 1,
                tmp_path / "out")


def test_peak_bitrate_follows_rfc_8216_windows() -> None:
    # Target 2 s: runs of 1 to 3 s count. The 0.5 s tail alone (6400 b/s) does
    # not; the tail with the segment before it (1400 B in 2.5 s) does.
    assert peak_bitrate([1000, 1000, 400], [2.0, 2.0, 0.5], 2) == 4480
    # A heavy segment shows through.
    assert peak_bitrate([1000, 3000, 1000], [2.0, 2.0, 2.0], 2) == 12000
    # The init section is paid once per run.
    assert peak_bitrate([1000, 1000], [2.0, 2.0], 2, init_size=500) == 6000
    # Nothing long enough: the whole stream counts.
    assert peak_bitrate([100], [0.5], 4) == 1600


def test_a_non_empty_out_dir_is_refused(fmp4_work: Path, tmp_path: Path) -> None:
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "stale.m4s").write_bytes(b"old")
    with pytest.raises(PackagingError, match="not empty"):
        make_package(fmp4_work, tmp_path / "out", 2)


def test_master_starts_on_the_start_variant_and_names_the_first_key(
        fmp4_work: Path, tmp_path: Path) -> None:
    keys = [generate_key() for _ in range(keys_needed(count_segments(fmp4_work), 2))]
    default = package(fmp4_work, VARIANTS, keys, key_uri, 2, tmp_path / "default")
    bandwidths = {r.name: r.bandwidth for r in default.renditions}
    assert bandwidths["360p"] > bandwidths["180p"]
    master = m3u8.loads((tmp_path / "default" / "master.m3u8").read_text())
    # Both under START_BANDWIDTH: the higher one starts, as highest-first would have it.
    assert [p.uri for p in master.playlists] == ["360p/index.m3u8", "180p/index.m3u8"]
    [session_key] = master.session_keys
    first = m3u8.loads((tmp_path / "default" / "360p" / "index.m3u8").read_text()).segments[0]
    assert session_key.uri == first.key.uri == key_uri(keys[0].key_id)
    assert session_key.method == first.key.method == "AES-128"
    assert session_key.iv is None

    # A start bandwidth below the top variant lists a lower one first, the rest highest first.
    package(fmp4_work, VARIANTS, keys, key_uri, 2, tmp_path / "low",
            start_bandwidth=bandwidths["360p"] - 1, session_key=False)
    master = m3u8.loads((tmp_path / "low" / "master.m3u8").read_text())
    assert [p.uri for p in master.playlists] == ["180p/index.m3u8", "360p/index.m3u8"]
    assert master.session_keys == []
