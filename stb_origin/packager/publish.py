"""Publish a packaged asset to storage under a versioned prefix, master playlist last.

``publish`` writes ``hls/{asset_id}/{version}/...``: segments and init sections
first, then the media playlists that name them, then the version's own master.
``point_master_at`` then replaces ``hls/{asset_id}/master.m3u8`` (URIs pointing
into ``{version}/``), from that stored master. A player therefore never sees a
playlist naming something absent, and a re-run under a new version switches
over in one write. The pipeline points the master only while its run holds the
asset (``assets.runs``).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path

from stb_origin.packager.playlists import rewrite_master_uris
from stb_origin.storage.base import MEDIA_TYPES, ObjectNotFound, Storage
from stb_origin.storage.layout import MASTER, asset_prefix

# What a package holds; anything else in out_dir is a mistake, not something to serve.
CONTENT_TYPES = {suffix: MEDIA_TYPES[suffix]
                 for suffix in (".m3u8", ".mp4", ".m4s", ".ts", ".vtt", ".jpg")}
UPLOAD_WORKERS = 8  # object stores reward parallel PUTs; 8 keeps a laptop disk calm
VERSION = re.compile(r"^v[0-9A-Za-z_-]{1,39}$")


class PublishError(Exception):
    pass


def content_type(path: str | Path) -> str:
    suffix = Path(path).suffix
    try:
        return CONTENT_TYPES[suffix]
    except KeyError:
        raise PublishError(f"no content type for {Path(path).name!r}") from None


def publish(storage: Storage, asset_id: str, version: str, out_dir: Path,
            workers: int = UPLOAD_WORKERS) -> None:
    if not VERSION.match(version):
        raise PublishError(f"version must look like 'v<letters/digits>', not {version!r}")
    base = asset_prefix(asset_id)
    master = out_dir / MASTER
    if not master.is_file():
        raise PublishError(f"{master} is missing: package before publishing")
    files = sorted(p for p in out_dir.rglob("*") if p.is_file() and p != master)
    for path in files:
        content_type(path)  # refuse stray files before writing anything
    media = [p for p in files if p.suffix != ".m3u8"]
    playlists = [p for p in files if p.suffix == ".m3u8"]

    prefix = f"{base}{version}/"
    # Each phase completes before the next starts: playlists never name a missing object.
    for phase in (media, playlists, [master]):
        _upload(storage, [(prefix + p.relative_to(out_dir).as_posix(), p) for p in phase],
                workers)


def point_master_at(storage: Storage, asset_id: str, version: str) -> None:
    """Make ``version`` (published) the one ``hls/{asset_id}/master.m3u8`` serves."""
    base = asset_prefix(asset_id)
    own = storage.get_bytes(f"{base}{version}/{MASTER}").decode()
    storage.put_bytes(base + MASTER, rewrite_master_uris(own, f"{version}/").encode(),
                      content_type(MASTER))


def _upload(storage: Storage, items: Sequence[tuple[str, Path]], workers: int) -> None:
    if workers <= 1 or len(items) <= 1:
        for key, path in items:
            storage.put_file(key, path, content_type(path))
        return
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="publish") as pool:
        futures = [pool.submit(storage.put_file, key, path, content_type(path))
                   for key, path in items]
        try:
            for future in as_completed(futures):
                future.result()
        except BaseException:
            for future in futures:
                future.cancel()  # fail fast: the job retries the whole publish
            raise


def prune_old_versions(storage: Storage, asset_id: str, keep_version: str) -> list[str]:
    """Delete every ``hls/{asset_id}/v*/`` prefix but keep_version's; returns those deleted.

    Refuses unless keep_version is fully published, so a wrong argument cannot
    take an asset off the air.
    """
    if not VERSION.match(keep_version):
        raise PublishError(f"version must look like 'v<letters/digits>', not {keep_version!r}")
    base = asset_prefix(asset_id)
    try:
        storage.stat(f"{base}{keep_version}/{MASTER}")
    except ObjectNotFound:
        raise PublishError(f"{keep_version} of {asset_id} is not published; not pruning") from None
    old: set[str] = set()
    for key in storage.list_keys(base):
        head, sep, _ = key[len(base):].partition("/")
        if sep and head != keep_version and VERSION.match(head):
            old.add(head)
    for version in sorted(old):
        storage.delete_prefix(f"{base}{version}/")
    return sorted(old)


__all__ = ["CONTENT_TYPES", "PublishError", "content_type", "point_master_at",
           "prune_old_versions", "publish"]
