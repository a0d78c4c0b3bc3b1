"""The HTTP app for ASGI servers that import a factory (granian, uvicorn --factory).

Settings come from the environment, as for every ``stb-origin`` command.
"""

from __future__ import annotations

from starlette.applications import Starlette

from stb_origin.app import create_app
from stb_origin.observability import logs
from stb_origin.services import build_services
from stb_origin.settings import from_env


def create() -> Starlette:
    logs.configure()
    return create_app(build_services(from_env()))
