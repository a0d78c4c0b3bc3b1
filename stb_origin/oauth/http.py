"""The clock the OAuth handlers read, which tests move."""

from __future__ import annotations

import time
from collections.abc import Callable

from starlette.requests import Request


def clock_of(request: Request) -> Callable[[], float]:
    """Time as the OAuth endpoints see it: tests set ``app.state.oauth_clock``
    to move past expiries and poll intervals without sleeping."""
    clock: Callable[[], float] = getattr(request.app.state, "oauth_clock", time.time)
    return clock
