"""Sync cursors: where a box is, sealed so that it can neither read nor forge one.

A cursor is the server's own note to itself, handed to the box and handed back:
in which phase the box is (a snapshot, walking the items in order, or the change
log after a sequence number), how far, and when the note was written. It is
sealed with the key-encryption key (``envelope``), bound to the account: a cursor
altered, cut short or made for another account does not open, and the box gets a
400 rather than a silent start over.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from datetime import UTC, datetime

from stb_origin.envelope import Envelope, UnwrapError

CONTEXT = b"sync-cursor"
SNAPSHOT = "snapshot"
CHANGES = "changes"
# A cursor is short; anything much longer is not one of ours.
MAX_LENGTH = 512


class BadCursor(ValueError):
    pass


@dataclass(frozen=True)
class Cursor:
    phase: str  # SNAPSHOT or CHANGES
    # The change log's last number when the snapshot began; in CHANGES, the last row sent.
    seq: int
    # No change log row after ``seq`` is older than this (how old the cursor is).
    issued_at: datetime
    # When what the box holds was read: what the clock changed after it is sent again.
    read_at: datetime
    # SNAPSHOT only: which part of the walk (``pages.PARTS``) and the last id sent in it.
    part: str = ""
    after: str = ""


def seal(envelope: Envelope, account_id: str, cursor: Cursor) -> str:
    note = json.dumps([cursor.phase, cursor.seq, cursor.issued_at.timestamp(),
                       cursor.read_at.timestamp(), cursor.part, cursor.after],
                      separators=(",", ":")).encode()
    blob = envelope.seal(note, CONTEXT, account_id)
    return base64.urlsafe_b64encode(blob).rstrip(b"=").decode()


def open_cursor(envelope: Envelope, account_id: str, text: str) -> Cursor:
    if len(text) > MAX_LENGTH or not text.isascii():
        raise BadCursor("cursor: not a cursor this server gave")
    try:
        blob = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
        phase, seq, issued, read, part, after = json.loads(
            envelope.open(blob, CONTEXT, account_id))
    except (binascii.Error, ValueError, UnwrapError):
        raise BadCursor("cursor: not a cursor this server gave to this account (pass the"
                        " cursor of the last page as it was, or none for a full copy)") from None
    return Cursor(phase, seq, datetime.fromtimestamp(issued, UTC),
                  datetime.fromtimestamp(read, UTC), part, after)
