"""The HTTP app for ASGI servers that import a factory (granian, uvicorn --factory).

Settings come from the environment, as for every ``stb-origin`` command.
"""

from __future__ import annotations

from starlette.applications import Starlette

from stb_origin import migrations
from stb_origin.app import for_server
from stb_origin.observability import logs
from stb_origin.services import build_services
from stb_origin.settings import from_env


def create() -> Starlette:
    logs.configure()
    settings = from_env()
    # Under `stb-origin serve --server granian` the schema is at head already and
    # this costs a lock and a read; any other ASGI server gets it upgraded here.
    migrations.upgrade(settings.resolved_database_url)
    return for_server(build_services(settings))
