"""Where the transcode writes, one folder per rendition and one for trick play, with the
names that are published (``stb_origin.storage.layout``):

    out_dir/{rendition.name}/index.m3u8, init.mp4 (fMP4 only), seg_00000.m4s | seg_00000.ts, ...
    out_dir/iframes_{rendition.name}/...   the same, video only, one I-frame per segment,
                                           for each resolution tier (ladder.iframe_tiers)
"""

from __future__ import annotations

SEGMENT_PREFIX = "seg_"
SEGMENT_EXTENSIONS = {"fmp4": "m4s", "ts": "ts"}


def segment_template(segment_format: str) -> str:
    return f"{SEGMENT_PREFIX}%05d.{SEGMENT_EXTENSIONS[segment_format]}"

