from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import m3u8
import pytest

from stb_origin.drm.keys import generate_key
from stb_origin.packager.package import VariantInput, package
from stb_origin.packager.publish import (
    PublishError,
    point_master_at,
    prune_old_versions,
    publish,
)
from stb_origin.storage.base import InvalidKey, ObjectInfo, ObjectNotFound, check_key
from tests.packager import support

ASSET = "0123456789abcdef0123456789abcdef"


class MemoryStorage:
    """A hand-written in-memory Storage that also records the order of writes."""

    def __init__(self) -> None:
        self.objects: dict[str, tuple[bytes, str]] = {}
        self.writes: list[str] = []

    def put_file(self, key: str, path: Path, content_type: str) -> None:
        self.put_bytes(key, path.read_bytes(), content_type)

    def put_bytes(self, key: str, data: bytes, content_type: str) -> None:
        self.objects[check_key(key)] = (data, content_type)
        self.writes.append(key)

    def stat(self, key: str) -> ObjectInfo:
        data, content_type = self._get(key)
        return ObjectInfo(key, len(data), f'"{hash(data):x}"', datetime.now(UTC), content_type)

    def read_chunks(self, key: str, start: int = 0, end: int | None = None,
                    chunk_size: int = 256 * 1024) -> Iterator[bytes]:
        data = self._get(key)[0]
        yield data[start:None if end is None else end + 1]

    def get_bytes(self, key: str) -> bytes:
        return self._get(key)[0]

    def download(self, key: str, path: Path) -> None:
        path.write_bytes(self._get(key)[0])

    def list_keys(self, prefix: str) -> Iterator[str]:
        yield from sorted(k for k in self.objects if k.startswith(prefix))

    def delete_prefix(self, prefix: str) -> int:
        doomed = [k for k in self.objects if k.startswith(prefix)]
        for key in doomed:
            del self.objects[key]
        return len(doomed)

    def check(self) -> None:
        pass

    def _get(self, key: str) -> tuple[bytes, str]:
        try:
            return self.objects[key]
        except KeyError:
            raise ObjectNotFound(key) from None


@pytest.fixture(scope="module")
def packaged(fmp4_work: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("packaged") / "out"
    variants = [VariantInput(n, w, h, 30.0) for n, w, h in support.RENDITIONS]
    iframes = [VariantInput(n, w, h, 30.0) for n, w, h in support.TRICKPLAY]
    package(fmp4_work, variants, [generate_key() for _ in range(2)],
            lambda k: f"/keys/{ASSET}/{k}", 2, out, iframes=iframes)
    return out


def test_publish_writes_everything_master_last(packaged: Path) -> None:
    storage = MemoryStorage()
    publish(storage, ASSET, "v1", packaged)
    assert f"hls/{ASSET}/master.m3u8" not in storage.objects, "pointed only when asked"
    point_master_at(storage, ASSET, "v1")

    base = f"hls/{ASSET}/"
    local = {p.relative_to(packaged).as_posix() for p in packaged.rglob("*") if p.is_file()}
    assert set(storage.objects) == {base + "v1/" + rel for rel in local} | {base + "master.m3u8"}
    types = {k.rpartition(".")[2]: t for k, (_, t) in storage.objects.items()}
    assert types == {"m3u8": "application/vnd.apple.mpegurl", "mp4": "video/mp4",
                     "m4s": "video/iso.segment"}

    writes = storage.writes
    assert writes[-1] == base + "master.m3u8"
    assert writes[-2] == base + "v1/master.m3u8"
    last_media = max(i for i, k in enumerate(writes) if not k.endswith(".m3u8"))
    first_playlist = min(i for i, k in enumerate(writes) if k.endswith(".m3u8"))
    assert last_media < first_playlist, "playlists only after everything they name"

    master = m3u8.loads(storage.get_bytes(base + "master.m3u8").decode())
    uris = [p.uri for p in master.playlists] + [p.uri for p in master.iframe_playlists]
    assert uris == ["v1/360p/index.m3u8", "v1/180p/index.m3u8",
                    "v1/iframes_360p/index.m3u8", "v1/iframes_180p/index.m3u8"]
    for uri in uris:
        assert base + uri in storage.objects
    # The version's own master keeps relative URIs and stays byte-identical.
    assert storage.get_bytes(base + "v1/master.m3u8") == (packaged / "master.m3u8").read_bytes()


def test_republish_then_prune_ends_consistent(packaged: Path) -> None:
    storage = MemoryStorage()
    other = f"hls/{'f' * 32}/v1/master.m3u8"
    storage.put_bytes(other, b"#EXTM3U\n", "application/vnd.apple.mpegurl")
    for version in ("v1", "v2"):
        publish(storage, ASSET, version, packaged)
        point_master_at(storage, ASSET, version)
    storage.put_bytes(f"hls/{ASSET}/notes.txt", b"kept", "text/plain")

    assert prune_old_versions(storage, ASSET, "v2") == ["v1"]

    base = f"hls/{ASSET}/"
    assert not any(k.startswith(base + "v1/") for k in storage.objects)
    master = m3u8.loads(storage.get_bytes(base + "master.m3u8").decode())
    for playlist in [*master.playlists, *master.iframe_playlists]:
        assert playlist.uri.startswith("v2/")
        media = m3u8.loads(storage.get_bytes(base + playlist.uri).decode())
        folder = base + playlist.uri.rpartition("/")[0] + "/"
        for segment in media.segments:
            assert folder + segment.uri in storage.objects
    assert other in storage.objects and base + "notes.txt" in storage.objects
    assert prune_old_versions(storage, ASSET, "v2") == []


def test_prune_refuses_an_unpublished_version(packaged: Path) -> None:
    storage = MemoryStorage()
    publish(storage, ASSET, "v1", packaged)
    with pytest.raises(PublishError, match="not published"):
        prune_old_versions(storage, ASSET, "v9")
    assert any(k.startswith(f"hls/{ASSET}/v1/") for k in storage.objects)


def test_stray_files_and_bad_names_are_refused_before_any_write(packaged: Path,
                                                                  tmp_path: Path) -> None:
    storage = MemoryStorage()
    with pytest.raises(PublishError, match="version"):
        publish(storage, ASSET, "../v1", packaged)
    with pytest.raises(InvalidKey, match="asset id"):
        publish(storage, "a/b", "v1", packaged)
    with pytest.raises(PublishError, match="missing"):
        publish(storage, ASSET, "v1", tmp_path)
    (tmp_path / "master.m3u8").write_text("#EXTM3U\n")
    (tmp_path / "key.bin").write_bytes(b"0" * 16)
    with pytest.raises(PublishError, match="key.bin"):
        publish(storage, ASSET, "v1", tmp_path)
    assert storage.writes == []


class FailingStorage(MemoryStorage):
    def put_file(self, key: str, path: Path, content_type: str) -> None:
        if key.endswith("seg_00002.m4s"):
            raise OSError("disk full")
        super().put_file(key, path, content_type)


@pytest.mark.parametrize("workers", [1, 8])
def test_a_failed_upload_publishes_no_playlist(packaged: Path, workers: int) -> None:
    storage = FailingStorage()
    with pytest.raises(OSError, match="disk full"):
        publish(storage, ASSET, "v1", packaged, workers=workers)
    assert not any(k.endswith(".m3u8") for k in storage.objects)
