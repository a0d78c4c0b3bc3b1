"""One import of an XMLTV file: parse it, then plan and write it in one transaction."""

from __future__ import annotations

import logging
from datetime import datetime
from pathlib import Path
from typing import Any

from stb_origin import eventlog
from stb_origin.guide import store, xmltv
from stb_origin.services import Services

log = logging.getLogger("stb_origin.guide")

# An XMLTV file of a few hundred channels over two weeks is tens of MB; the whole
# file is parsed before anything is written, so this bounds the memory it takes.
MAX_XMLTV_BYTES = 64 * 1024 * 1024


def import_file(services: Services, path: Path, now: datetime,
                origin: str) -> dict[str, Any]:
    """Blocking (parsing a big file takes CPU): callers run it in a worker thread.
    Raises xmltv.XmltvError, and then nothing was written. Once written, listening
    boxes hear that the guide changed (``eventlog.GUIDE``)."""
    document = xmltv.parse(path)
    with services.db.session() as session:
        report = store.import_document(session, document, now)
    eventlog.publish(services.redis, eventlog.GUIDE, {
        "imported": report["imported"], "replaced": report["replaced"],
        "channels": report["channels"]})
    # XMLTV text never goes into a message: the counts and the origin are fields.
    log.info("guide imported", extra={"origin": origin, "imported": report["imported"],
                                      "replaced": report["replaced"],
                                      "skipped": report["skipped_by_reason"]})
    return report
