"""Artwork: an uploaded image made into a few sizes, stored under names that never
change meaning, and one row per title and kind naming them.

    art/{title}/{kind}.{digest}.{width}.{jpg|png}

The digest is of the uploaded bytes, so a new upload is a new name: the bytes
behind a name never change and the CDN may keep them for ever. The sizes of a
replaced image stay in storage: a box or an edge may still hold a title JSON
naming them.
"""

from __future__ import annotations

import hashlib
import re
import tempfile
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from stb_origin.catalog import images
from stb_origin.catalog.images import Format
from stb_origin.catalog.models import Artwork, ArtworkKind
from stb_origin.catalog.titles import get_title, touch
from stb_origin.db.types import utcnow
from stb_origin.storage import Storage, layout

NAME = re.compile(r"(?P<kind>[a-z]{1,16})\.[0-9a-f]{32}\.[1-9][0-9]{0,4}\.(?P<format>jpg|png)")
DIGEST_HEX = 32


def object_name(kind: str, digest: str, width: int, fmt: str) -> str:
    return f"{kind}.{digest}.{width}.{fmt}"


def parse_name(name: str) -> str | None:
    """The media type of a stored artwork name, or None when it names none."""
    match = NAME.fullmatch(name)
    if match is None or match["kind"] not in set(ArtworkKind):
        return None
    return images.JPEG.media_type if match["format"] == "jpg" else images.PNG.media_type


def artwork_urls(art: Artwork, base_url: str) -> list[dict[str, Any]]:
    base = base_url.rstrip("/")
    return [{"width": size["width"], "height": size["height"],
             "url": base + "/" + layout.art_key(art.title_id, object_name(
                 art.kind, art.digest, size["width"], art.format))}
            for size in art.sizes]


def make_sizes(storage: Storage, title_id: str, kind: str, fmt: Format, upload: Path,
               work_dir: Path) -> tuple[str, list[dict[str, int]]]:
    """Scale the upload and store every size; (digest, sizes). BadImage when it is
    no image we take."""
    digest = hashlib.sha256(upload.read_bytes()).hexdigest()[:DIGEST_HEX]
    work_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=work_dir, prefix="art-") as folder:
        made = images.scale(fmt, upload, Path(folder))
        for width, _height, path in made:
            storage.put_file(layout.art_key(title_id, object_name(kind, digest, width,
                                                                 fmt.name)),
                             path, fmt.media_type)
    return digest, [{"width": w, "height": h} for w, h, _ in made]


def record(session: Session, title_id: str, kind: str, fmt: Format, digest: str,
           sizes: list[dict[str, int]]) -> None:
    """Point the title's artwork of this kind at the stored sizes."""
    title = get_title(session, title_id)
    art = session.get(Artwork, (title_id, kind))
    if art is None:
        art = Artwork(title_id=title_id, kind=kind)
        session.add(art)
    art.digest, art.format, art.sizes, art.created_at = digest, fmt.name, sizes, utcnow()
    touch(session, title)
    session.flush()


def remove(session: Session, title_id: str, kind: str) -> bool:
    art = session.get(Artwork, (title_id, kind))
    if art is None:
        return False
    session.delete(art)
    touch(session, get_title(session, title_id))
    session.flush()
    return True
