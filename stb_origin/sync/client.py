"""A reference box for ``GET /v1/sync``: the protocol's client side, on the standard
library only (urllib, sqlite3), so that a box's own code can be checked against it.

    cache = BoxCache(Path("box.db"))
    SyncClient("https://api.example.com", token, cache).sync()   # online: catch up
    cache.view(now)                                              # offline too

Each page is applied in one SQLite transaction together with its cursor, so a box
that loses power or network between pages resumes from the last page it kept.
"""

from __future__ import annotations

import gzip
import json
import sqlite3
import urllib.parse
import urllib.request
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

Json = dict[str, Any]
# The same as the server's (sync.items): older days are not kept.
GUIDE_PAST_DAYS = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS items (kind TEXT, id TEXT, data TEXT NOT NULL, gen INTEGER NOT NULL,
                                  PRIMARY KEY (kind, id));
CREATE TABLE IF NOT EXISTS state (key TEXT PRIMARY KEY, value TEXT);
"""


class BoxCache:
    """The box's copy: items by (kind, id), the cursor, and the snapshot generation.

    A snapshot (a page with ``reset``) writes a new generation; once it is complete
    (``phase`` is ``changes``) every item of an older generation is dropped.
    """

    def __init__(self, path: Path) -> None:
        self._db = sqlite3.connect(path, isolation_level=None)
        self._db.executescript(_SCHEMA)

    def close(self) -> None:
        self._db.close()

    def _get(self, key: str) -> str | None:
        row = self._db.execute("SELECT value FROM state WHERE key = ?", (key,)).fetchone()
        return None if row is None or row[0] is None else str(row[0])

    def _set(self, key: str, value: str | None) -> None:
        self._db.execute("INSERT OR REPLACE INTO state VALUES (?, ?)", (key, value))

    @property
    def cursor(self) -> str | None:
        return self._get("cursor")

    def apply(self, page: Json) -> None:
        with self._db:
            self._db.execute("BEGIN")
            gen = int(self._get("gen") or 0)
            pending = self._get("pending")
            if page["reset"]:
                pending = str(gen + 1)
                self._set("pending", pending)
            writing = int(pending) if pending is not None else gen
            for item in page["upserts"]:
                self._db.execute("INSERT OR REPLACE INTO items VALUES (?, ?, ?, ?)",
                                 (item["kind"], item["id"], json.dumps(item["data"]), writing))
            for item in page["deletes"]:
                self._db.execute("DELETE FROM items WHERE kind = ? AND id = ?",
                                 (item["kind"], item["id"]))
                if item["kind"] == "channel":
                    self._db.execute("DELETE FROM items WHERE kind = 'guide_day' AND id LIKE ?",
                                     (item["id"] + "/%",))
            if pending is not None and page["phase"] == "changes":
                self._db.execute("DELETE FROM items WHERE gen < ?", (int(pending),))
                self._set("gen", pending)
                self._set("pending", None)
            self._set("cursor", page["cursor"])

    def view(self, now: datetime) -> dict[str, dict[str, Json]]:
        """What the box shows: every item by kind and id, without guide days before
        yesterday (UTC). While a snapshot is under way, items of both generations."""
        first = now.astimezone(UTC).date() - timedelta(days=GUIDE_PAST_DAYS)
        found: dict[str, dict[str, Json]] = {}
        for kind, item_id, data in self._db.execute(
                "SELECT kind, id, data FROM items ORDER BY kind, id"):
            if kind == "guide_day" and date.fromisoformat(item_id.rpartition("/")[2]) < first:
                continue
            found.setdefault(kind, {})[item_id] = json.loads(data)
        return found


class SyncClient:
    def __init__(self, base_url: str, token: str, cache: BoxCache, limit: int = 500,
                 timeout_s: float = 30.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.token = token
        self.cache = cache
        self.limit = limit
        self.timeout_s = timeout_s

    def fetch(self, cursor: str | None) -> Json:
        query = {"limit": str(self.limit)}
        if cursor is not None:
            query["cursor"] = cursor
        request = urllib.request.Request(
            f"{self.base_url}/v1/sync?{urllib.parse.urlencode(query)}",
            headers={"Authorization": f"Bearer {self.token}", "Accept-Encoding": "gzip"})
        with urllib.request.urlopen(request, timeout=self.timeout_s) as answer:
            body = answer.read()
            if answer.headers.get("Content-Encoding") == "gzip":
                body = gzip.decompress(body)
        page: Json = json.loads(body)
        return page

    def sync(self, between_pages: Callable[[Json], None] | None = None) -> int:
        """Ask until the server says there is no more; how many pages it took."""
        pages = 0
        while True:
            page = self.fetch(self.cache.cursor)
            self.cache.apply(page)
            pages += 1
            if between_pages is not None:
                between_pages(page)
            if not page["more"]:
                return pages
