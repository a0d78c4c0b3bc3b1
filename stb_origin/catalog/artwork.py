"""Artwork names: where each size is stored and the URL it is served at.

    art/{title}/{kind}.{digest}.{width}.{jpg|png}

The digest is of the uploaded image, so a new upload is a new name: the bytes
behind a name never change and the CDN may keep them for ever.
"""

from __future__ import annotations

from typing import Any

from stb_origin.catalog.models import Artwork
from stb_origin.storage import layout


def object_name(kind: str, digest: str, width: int, fmt: str) -> str:
    return f"{kind}.{digest}.{width}.{fmt}"


def artwork_urls(art: Artwork, base_url: str) -> list[dict[str, Any]]:
    base = base_url.rstrip("/")
    return [{"width": size["width"], "height": size["height"],
             "url": base + "/" + layout.art_key(art.title_id, object_name(
                 art.kind, art.digest, size["width"], art.format))}
            for size in art.sizes]
