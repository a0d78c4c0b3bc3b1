"""Cache-Control for answers no cache may keep: the two kinds there are."""

from __future__ import annotations

# Answers about one caller or one moment (API JSON, errors, health): never kept by a
# CDN or shared cache, since the next request may carry another token.
NO_STORE = {"Cache-Control": "no-store"}
# Content keys: not even the browser keeps them; Pragma for HTTP/1.0 caches.
NO_STORE_PRIVATE = {"Cache-Control": "private, no-store", "Pragma": "no-cache"}
