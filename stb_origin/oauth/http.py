"""What the OAuth handlers take from the app: its services and its clock."""

from __future__ import annotations

import time
from collections.abc import Callable

from starlette.requests import Request

from stb_origin.services import Services


def services_of(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


def clock_of(request: Request) -> Callable[[], float]:
    """Time as the OAuth endpoints see it: tests set ``app.state.oauth_clock``
    to move past expiries and poll intervals without sleeping."""
    clock: Callable[[], float] = getattr(request.app.state, "oauth_clock", time.time)
    return clock
