"""Upload over HTTP → real worker → encrypted HLS → played by ffmpeg through the origin."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urljoin

import httpx
import m3u8
import pytest

from stb_origin.settings import Settings
from tests.conftest import require_tools
from tests.e2e.player import decoded_frames, decrypt, keyframe_times, play
from tests.e2e.stack import Stack
from tests.support.hls import init_key
from tests.support.media import make_clip, video_found

SECONDS = 6
FPS = 30


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    require_tools("ffmpeg", "ffprobe")
    return make_clip(tmp_path_factory.mktemp("media") / "master.mp4", seconds=SECONDS,
                     size="960x540", fps=FPS, audio=True)


def _backend_env(request: pytest.FixtureRequest, backend: str) -> dict[str, str]:
    if backend == "postgres":
        return {"STB_DATABASE_URL": request.getfixturevalue("postgres_url")}
    if backend == "s3":
        return request.getfixturevalue("s3_env")
    if backend == "fs-sqlite-ts":
        return {"STB_SEGMENT_FORMAT": "ts"}
    return {}


@pytest.fixture(params=["fs-sqlite", "postgres", "s3", "fs-sqlite-ts"])
def stack(request: pytest.FixtureRequest, tmp_path: Path, redis_url: str,
          settings: Settings) -> Iterator[Stack]:
    env = {
        "STB_REDIS_URL": redis_url,
        "STB_QUEUE_NAME": settings.queue_name,
        "STB_SEGMENT_SECONDS": "2",
        "STB_KEY_ROTATION_SEGMENTS": "2",
        "STB_X264_PRESET": "ultrafast",
        **_backend_env(request, request.param),
    }
    stack = Stack(tmp_path / "data", env).start()
    try:
        yield stack
    finally:
        stack.stop()


def test_upload_transcode_and_play_every_rendition(stack: Stack, clip: Path) -> None:
    write = stack.token("assets:write assets:read")
    response = stack.upload(clip, write, title="E2E clip")
    assert response.status_code == 202, response.text
    asset = response.json()
    assert response.headers["location"] == f"/v1/assets/{asset['id']}"
    assert asset["status"] == "queued"

    states = stack.wait_for(asset["id"], write)
    final = states[-1]
    assert final["status"] == "ready", final
    assert final["progress"] == 100
    progress = [s["progress"] for s in states]
    assert progress == sorted(progress), "progress never goes backwards"
    assert final["duration_s"] == pytest.approx(SECONDS, abs=0.1)
    video = [r for r in final["renditions"] if r["type"] == "video"]
    names = [r["name"] for r in video]
    assert len(names) >= 3 and max(r["height"] for r in video) == 540
    audio = [r for r in final["renditions"] if r["type"] == "audio"]
    assert [(a["name"], a["channels"]) for a in audio] == [("audio0_aac", 2)]

    master_url = urljoin(stack.base_url, final["playback"]["hls"])
    master_response = httpx.get(master_url, timeout=10)
    assert master_response.status_code == 200
    assert master_response.headers["content-type"].startswith("application/vnd.apple.mpegurl")
    master = m3u8.loads(master_response.text, uri=master_url)
    assert len(master.playlists) == len(names)
    assert master.iframe_playlists, "trick-play playlist is advertised"
    assert {p.stream_info.audio for p in master.playlists} == {"audio-aac"}

    playback = stack.token("playback", device="box-1")
    keyframes = []
    for variant in master.playlists:
        url = urljoin(master_url, variant.uri)
        result = play(url, playback)
        assert result.returncode == 0 and not result.errors, result.errors
        assert result.video_frames == SECONDS * FPS
        keyframes.append(keyframe_times(url, playback))
    # Audio is a rendition of its own (EXT-X-MEDIA), not muxed into the variants.
    [rendition] = master.media
    sound = play(urljoin(master_url, rendition.uri), playback)
    assert sound.returncode == 0 and not sound.errors, sound.errors
    assert sound.video_frames == 0 and sound.audio_frames > 0
    # Every rendition switches at the same instants: keyframes at each segment start.
    assert all(k == keyframes[0] for k in keyframes)
    assert [round(t - keyframes[0][0], 3) for t in keyframes[0]][:3] == [0.0, 2.0, 4.0]

    # Without a token the key is refused and nothing decodes.
    variant_url = urljoin(master_url, master.playlists[0].uri)
    denied = play(variant_url, None)
    assert denied.returncode != 0 or denied.video_frames == 0

    # Segments fetched on their own are ciphertext; with the key they decode.
    media_text = httpx.get(variant_url, timeout=10).text
    media = m3u8.loads(media_text, uri=variant_url)
    segment = media.segments[0]
    key_response = httpx.get(urljoin(variant_url, segment.key.uri),
                             headers={"Authorization": f"Bearer {playback}"}, timeout=10)
    assert key_response.status_code == 200 and len(key_response.content) == 16
    assert key_response.headers["cache-control"] == "private, no-store"
    key = key_response.content
    init = segment.init_section
    parts = []
    # The init section is encrypted with the key and IV in effect at its EXT-X-MAP:
    # the first segment's key, under an IV of its own.
    iv = bytes.fromhex(segment.key.iv.removeprefix("0x"))
    pieces = [(segment.uri, iv)]
    if init:
        init_uri, init_iv = init_key(media_text)
        assert init_uri == segment.key.uri and init_iv != iv
        pieces.insert(0, (init.uri, init_iv))
    for uri, piece_iv in pieces:
        body = httpx.get(urljoin(variant_url, uri), timeout=10)
        assert body.status_code == 200
        parts.append((body.content, piece_iv))
    cipher_file = stack.data_dir / "cipher.bin"
    cipher_file.write_bytes(b"".join(content for content, _ in parts))
    assert "h264" not in video_found(cipher_file)
    clear_file = stack.data_dir / "clear.bin"
    clear_file.write_bytes(b"".join(decrypt(content, key, iv) for content, iv in parts))
    assert decoded_frames(clear_file) == 2 * FPS


