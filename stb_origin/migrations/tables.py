"""Every module that defines tables, in one visible list.

Importing them registers their tables with ``Base.metadata``: the migrations'
autogenerate and the schema tests compare the database against that metadata,
so a table module missing here would look like a table to drop.
"""

from __future__ import annotations

import importlib

from sqlalchemy import MetaData

from stb_origin.db import Base

TABLE_MODULES = (
    "stb_origin.db.changes",
    "stb_origin.assets.records",
    "stb_origin.assets.tracks",
    "stb_origin.assets.channels",
    "stb_origin.accounts.models",
    "stb_origin.auth.keyring",
    "stb_origin.drm.keystore",
    "stb_origin.drm.audit",
    "stb_origin.oauth.models",
    "stb_origin.live.index",
    "stb_origin.live.clips",
    "stb_origin.live.listeners",
    "stb_origin.guide.models",
    "stb_origin.activity.models",
    "stb_origin.catalog.models",
    "stb_origin.ingest.tus_records",
    "stb_origin.webhooks.models",
)


def metadata() -> MetaData:
    """The models' metadata, with every table module loaded."""
    for name in TABLE_MODULES:
        importlib.import_module(name)
    return Base.metadata
