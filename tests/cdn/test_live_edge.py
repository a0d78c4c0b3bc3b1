"""A live channel through the real nginx edge (deploy/cdn/nginx.conf), unchanged: live
playlists cached for about half a segment, segments for a year, catch-up until its
first segment leaves the DVR window."""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx

from stb_origin.live import urls
from stb_origin.live.lease import Leases
from stb_origin.live.publisher import Publisher
from stb_origin.services import Services
from tests.cdn.support import OriginServer
from tests.support import live

RENDITIONS = [{"name": "72p", "codecs": "avc1.64000b,mp4a.40.2", "bandwidth": 250_000,
               "width": 128, "height": 72}]


def _publish(publisher: Publisher, tmp_path: Path, seq: int, starts_at: datetime) -> bytes:
    data = f"segment {seq} ".encode() * 100
    path = tmp_path / f"{seq}.ts"
    path.write_bytes(data)
    publisher.publish(seq, 0, starts_at, 2.0, {"72p": path}, {"renditions": RENDITIONS})
    return data


def test_a_live_channel_through_the_edge(edge: httpx.Client, origin: OriginServer,
                                         services: Services, tmp_path: Path) -> None:
    channel_id = live.add_channel(services, ["udp://127.0.0.1:9"], ladder=[72], segment_s=2.0)
    epoch = Leases(services.redis, services.db, "r1", 5).claim(channel_id)
    assert epoch is not None
    publisher = Publisher(services, channel_id, epoch, key_rotation_s=600)
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=10)
    for seq in range(5):
        _publish(publisher, tmp_path, seq, start + timedelta(seconds=2 * seq))

    path = f"/hls/{channel_id}/{urls.LIVE}/72p.m3u8"
    first = edge.get(path)
    assert first.status_code == 200 and first.headers["cache-control"] == "public, max-age=1"
    assert re.findall(r"\d+-\d+\.ts", first.text) == [f"{epoch}-{n}.ts" for n in range(5)]
    assert edge.get(path).headers["x-cache-status"] == "HIT"
    assert origin.log.count(path) == 1

    # A new segment reaches boxes within the playlist's second at the edge (and the
    # origin's half-second copy).
    _publish(publisher, tmp_path, 5, start + timedelta(seconds=10))
    listed = time.monotonic()
    while f"{epoch}-5.ts" not in edge.get(path).text:
        assert time.monotonic() - listed < 4, "the new segment did not reach the edge"
        time.sleep(0.1)

    # Segments: a year, from the edge's copy after the first ask.
    segment = f"/hls/{channel_id}/{urls.SEGMENTS}/72p/{epoch}-2.ts"
    body = edge.get(segment)
    assert body.status_code == 200 and body.headers["content-type"] == "video/mp2t"
    assert body.headers["cache-control"] == "public, max-age=31536000, immutable"
    assert body.content == services.storage.get_bytes(segment.removeprefix("/"))
    assert edge.get(segment).headers["x-cache-status"] == "HIT"

    # Catch-up of the first three segments: ended, so cached long, but only until its
    # first segment would leave the four-hour DVR window.
    window = f"{int(start.timestamp())}-{int(start.timestamp()) + 6}"
    catchup = edge.get(f"/hls/{channel_id}/{urls.CATCHUP}{window}/72p.m3u8")
    assert catchup.status_code == 200 and catchup.text.rstrip().endswith("#EXT-X-ENDLIST")
    assert re.findall(r"\d+-\d+\.ts", catchup.text) == [f"{epoch}-{n}.ts" for n in range(3)]
    max_age = int(catchup.headers["cache-control"].rpartition("=")[2])
    assert 3000 < max_age <= 3600
    master = edge.get(f"/hls/{channel_id}/{urls.CATCHUP}{window}/master.m3u8")
    assert master.status_code == 200 and "72p.m3u8" in master.text
    assert "RESOLUTION=128x72" in master.text
