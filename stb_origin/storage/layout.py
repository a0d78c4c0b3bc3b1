"""Where everything lives in storage, and the names of the files the packager publishes.

    sources/{asset}/source{.ext}                      the uploaded master
    sources/{asset}/tracks/{track}{.ext}              a sidecar track (assets.tracks)
    hls/{asset}/master.m3u8                           the current master, written last
    hls/{asset}/{version}/master.m3u8 (+ filtered)    one published version
    hls/{asset}/{version}/{rendition}/index.m3u8, init.mp4 (fMP4), seg_00000.m4s | .ts
    hls/{asset}/{version}/iframes_{rendition}/...     trick play at that rendition's size,
                                                      one I-frame per segment
    hls/{asset}/{version}/thumbs.jpg                  a strip of thumbnails (packager.thumbnails)
    spans/{asset}/{plan}/{span}/...                   a long master's spans, until stitched
    art/{title}/{kind}.{digest}.{width}.{jpg|png}     catalog artwork, one object per size
"""

from __future__ import annotations

from stb_origin.db.types import ID
from stb_origin.storage.base import InvalidKey

HLS_ROOT = "hls/"
MASTER = "master.m3u8"
MEDIA_PLAYLIST = "index.m3u8"
INIT = "init.mp4"
IFRAMES = "iframes"
THUMBNAILS = "thumbs.jpg"


def segment_name(index: int, suffix: str) -> str:
    """A published segment's file name beside its media playlist; suffix: ".ts" ..."""
    return f"seg_{index:05d}{suffix}"


def iframes_name(rendition: str) -> str:
    """The folder of the I-frame track made at a rendition's size."""
    return f"{IFRAMES}_{rendition}"


def _checked(asset_id: str) -> str:
    if not ID.fullmatch(asset_id):
        raise InvalidKey(f"invalid asset id {asset_id!r}")
    return asset_id


def asset_prefix(asset_id: str) -> str:
    """Everything published for an asset, every version."""
    return f"{HLS_ROOT}{_checked(asset_id)}/"


def master_key(asset_id: str) -> str:
    return asset_prefix(asset_id) + MASTER


def source_prefix(asset_id: str) -> str:
    return f"sources/{_checked(asset_id)}/"


def source_key(asset_id: str, suffix: str) -> str:
    return source_prefix(asset_id) + "source" + (suffix or ".bin")


def spans_prefix(asset_id: str) -> str:
    """The encoded spans of a long master (stb_origin.chunked), every plan."""
    return f"spans/{_checked(asset_id)}/"


def track_key(asset_id: str, track_id: str, suffix: str) -> str:
    if not ID.fullmatch(track_id):
        raise InvalidKey(f"invalid track id {track_id!r}")
    return source_prefix(asset_id) + "tracks/" + track_id + suffix


# Catalog artwork, every size of every upload (catalog.artwork): served at /{key}.
ART_ROOT = "art/"


def art_prefix(title_id: str) -> str:
    if not ID.fullmatch(title_id):
        raise InvalidKey(f"invalid title id {title_id!r}")
    return f"{ART_ROOT}{title_id}/"


def art_key(title_id: str, name: str) -> str:
    return art_prefix(title_id) + name
