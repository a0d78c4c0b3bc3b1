"""Filtered master playlists: the packaged master without the variants a device
cannot play, under one canonical name per distinct result.

Names sit beside ``master.m3u8`` (so its relative variant URIs still resolve):

    master.m3u8                     everything, as packaged
    master.h720.m3u8                variants at most 720 lines high
    master.c_avc1_mp4a.m3u8         variants whose codecs are all of these families
    master.h720.c_avc1_mp4a.m3u8    both
    master.r_sdr.m3u8               variants whose VIDEO-RANGE is one of these
    master.h720.c_avc1_mp4a.r_sdr.m3u8  all three

A codec family is the sample entry, the part of an RFC 6381 codec string before
the first dot (avc1, hvc1, mp4a, ec-3); profile and level are not compared: in
a ladder they follow the picture size, which the height caps. I-frame variants
are filtered by the same rule, and an audio rendition (EXT-X-MEDIA) stays only
while a kept variant names its group (a box without ``ec-3`` is offered no
E-AC-3 track); everything else (EXT-X-SESSION-KEY, the start variant listed
first, the order) stays as packaged. A variant without VIDEO-RANGE is SDR
(RFC 8216bis 4.4.6.2); every device shows SDR, so a box that declares no HDR
range still plays every master, only never a PQ or HLG variant.

The name is a function of the variants kept, not of what was asked for: h<H>
with H the highest kept height, present only when a taller variant was dropped,
c_<families> with the kept families, sorted, present only when a variant was
dropped for its codecs, and r_<ranges> likewise for the kept video ranges. Any
other spelling that keeps the same variants (a cap of 1000 on a ladder topping
out below it at 720, families in another order or absent from the ladder) is
answered with a redirect to the canonical name, so the CDN caches one copy per
result.
"""

from __future__ import annotations

import functools
import itertools
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import m3u8

_FORM = re.compile(r"master((?:\.[a-z][A-Za-z0-9_-]{0,200}){1,3})\.m3u8")
_HEIGHT = re.compile(r"h(\d{1,5})")
_CODECS = re.compile(r"c((?:_[A-Za-z0-9-]{1,32}){0,32})")
_RANGES = re.compile(r"r((?:_(?:sdr|pq|hlg)){1,3})")
SDR = "SDR"


def family(codec: str) -> str:
    return codec.strip().partition(".")[0]


@dataclass(frozen=True)
class Filter:
    """What a device can play; None: no limit."""

    max_height: int | None = None
    max_width: int | None = None
    families: frozenset[str] | None = None
    ranges: frozenset[str] | None = None  # VIDEO-RANGE values, upper case

    def keeps(self, width: int, height: int, families: frozenset[str],
              video_range: str = SDR) -> bool:
        return ((self.max_height is None or height <= self.max_height)
                and (self.max_width is None or width <= self.max_width)
                and (self.families is None or families <= self.families)
                and (self.ranges is None or video_range in self.ranges))

    @classmethod
    def for_device(cls, max_width: int | None, max_height: int | None,
                   codecs: Iterable[str], video_ranges: Iterable[str] = ()) -> Filter:
        # No codec list means the device did not say: every codec is kept. HDR is
        # the other way round: only a range it declares, besides SDR, is kept, as an
        # SDR screen shows PQ or HLG washed out or wrong.
        families = frozenset(family(c) for c in codecs)
        return cls(max_height=max_height, max_width=max_width, families=families or None,
                   ranges=frozenset({SDR, *video_ranges}))


def parse_name(name: str) -> Filter | None:
    """The filter a filtered-master name asks for; None when ``name`` is not one."""
    match = _FORM.fullmatch(name)
    if match is None:
        return None
    height: int | None = None
    families: frozenset[str] | None = None
    ranges: frozenset[str] | None = None
    for part in match.group(1).split(".")[1:]:
        if (h := _HEIGHT.fullmatch(part)) and height is None:
            height = int(h.group(1))
        elif (c := _CODECS.fullmatch(part)) and families is None:
            families = frozenset(f for f in c.group(1).split("_") if f)
        elif (r := _RANGES.fullmatch(part)) and ranges is None:
            ranges = frozenset(x.upper() for x in r.group(1).split("_") if x)
        else:
            return None
    return Filter(max_height=height, families=families, ranges=ranges)


@dataclass(frozen=True)
class _Variant:
    width: int
    height: int
    families: frozenset[str]
    video_range: str

    def kept_by(self, wanted: Filter) -> bool:
        return wanted.keeps(self.width, self.height, self.families, self.video_range)


def _variant(resolution: tuple[int, int] | None, codecs: str | None,
             video_range: str | None) -> _Variant:
    # No RESOLUTION (audio only) passes any size cap; no CODECS, any codec filter.
    width, height = resolution or (0, 0)
    return _Variant(width, height, frozenset(family(c) for c in (codecs or "").split(",")
                                             if c.strip()), video_range or SDR)


def _variants(playlist: m3u8.M3U8) -> list[_Variant]:
    return [_variant(p.stream_info.resolution, p.stream_info.codecs, p.stream_info.video_range)
            for p in playlist.playlists]


def _iframe_variants(playlist: m3u8.M3U8) -> list[_Variant]:
    return [_variant(p.iframe_stream_info.resolution, p.iframe_stream_info.codecs,
                     p.iframe_stream_info.video_range)
            for p in playlist.iframe_playlists]


_PARTS = ("h", "c", "r")


def _name_for(variants: Sequence[_Variant], kept: Sequence[_Variant]) -> str:
    height = max(v.height for v in kept)
    families = frozenset[str]().union(*(v.families for v in kept))
    ranges = frozenset(v.video_range for v in kept)
    spelled = {"h": f".h{height}", "c": ".c" + "".join(f"_{f}" for f in sorted(families)),
               "r": ".r" + "".join(f"_{r.lower()}" for r in sorted(ranges))}
    # The shortest spelling that keeps exactly these (parts in h, c, r order), so
    # the name follows from the variants kept and nothing else.
    for parts in (p for n in range(len(_PARTS) + 1) for p in itertools.combinations(_PARTS, n)):
        limit = Filter(max_height=height if "h" in parts else None,
                       families=families if "c" in parts else None,
                       ranges=ranges if "r" in parts else None)
        if [v for v in variants if v.kept_by(limit)] == list(kept):
            return "master" + "".join(spelled[p] for p in parts) + ".m3u8"
    raise AssertionError("h, c and r together keep exactly the variants they were taken from")


@dataclass(frozen=True)
class Filtered:
    """A filtered master: its ``body`` when ``name`` was canonical; else ``name``
    is where the canonical form lives; both None when nothing is left."""

    name: str | None
    body: bytes | None = None


def _parse(text: bytes) -> m3u8.M3U8:
    playlist = m3u8.loads(text.decode("utf-8"))
    if not playlist.is_variant:
        raise ValueError("not a master playlist")
    return playlist


def _canonical(variants: Sequence[_Variant], wanted: Filter) -> str | None:
    kept = [v for v in variants if v.kept_by(wanted)]
    if not kept:
        return None
    # Within a ladder width follows height: a width cap drops what a height cap
    # at the tallest variant kept drops, and the name needs no w part.
    height = max(v.height for v in kept)
    families = frozenset[str]().union(*(v.families for v in kept))
    ranges = frozenset(v.video_range for v in kept)
    return _name_for(variants, [v for v in variants if v.height <= height
                                and v.families <= families and v.video_range in ranges])


def canonical_name(master: bytes, wanted: Filter) -> str | None:
    """The name of the master that keeps what ``wanted`` can play; None if nothing."""
    return _canonical(_variants(_parse(master)), wanted)


# The origin answers every edge miss for a form from the same master bytes:
# remember the last results rather than parse the master each time.
@functools.lru_cache(maxsize=512)
def filtered(master: bytes, name: str) -> Filtered:
    """The master ``name`` asks for, or where its canonical spelling lives.
    ``name`` must be a form (parse_name is not None)."""
    wanted = parse_name(name)
    if wanted is None:
        raise ValueError(f"not a filtered master name: {name!r}")
    playlist = _parse(master)
    variants = _variants(playlist)
    canonical = _canonical(variants, wanted)
    if canonical != name:
        return Filtered(canonical)
    iframes = _iframe_variants(playlist)
    playlist.playlists[:] = [p for p, v in zip(playlist.playlists, variants, strict=True)
                             if v.kept_by(wanted)]
    playlist.iframe_playlists[:] = [
        p for p, v in zip(playlist.iframe_playlists, iframes, strict=True) if v.kept_by(wanted)]
    groups = {p.stream_info.audio for p in playlist.playlists}
    playlist.media[:] = [m for m in playlist.media if m.type != "AUDIO" or m.group_id in groups]
    return Filtered(name, str(playlist.dumps()).encode("utf-8"))


def form_etag(etag: str, name: str) -> str:
    """The master's ETag marked with the form: each form is its own representation."""
    weak, _, opaque = etag.rpartition('"')[0].partition('"')
    form = name.removeprefix("master.").removesuffix(".m3u8")
    return f'{weak}"{opaque}.{form}"'
