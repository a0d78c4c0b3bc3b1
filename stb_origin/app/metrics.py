"""GET /metrics: what Prometheus scrapes, kept from the public.

With ``STB_METRICS_TOKEN`` set, every scrape must send it as a bearer token
(Prometheus: ``authorization: {credentials_file: ...}``). Without it, only
loopback clients that did not come through a proxy are answered, so a
sidecar or node-local Prometheus works on a laptop with no set-up while the
CDN, which always forwards, is refused. Never cacheable either way.
"""

from __future__ import annotations

import hmac
import ipaddress
from collections.abc import Iterator

import anyio
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest
from prometheus_client.metrics_core import Metric
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from stb_origin.observability import metrics
from stb_origin.observability.redis_metrics import RedisCollector
from stb_origin.queues import webhook_queue
from stb_origin.services import Services
from stb_origin.web.errors import ApiError
from stb_origin.web.headers import NO_STORE
from stb_origin.webhooks.backlog import Backlog

# A request that carries any of these came through a proxy (the CDN, a local
# nginx): its peer address says nothing about the real client.
_PROXY_HEADERS = ("forwarded", "x-forwarded-for", "x-real-ip", "via")


class _ProcessMetrics:
    """This process's prometheus_client metrics (and its process/GC collectors)."""

    def collect(self) -> Iterator[Metric]:
        yield from REGISTRY.collect()


def build_registry(services: Services) -> CollectorRegistry:
    registry = CollectorRegistry()
    registry.register(_ProcessMetrics())
    queues = [services.queue, webhook_queue(services.redis, services.settings)]
    registry.register(RedisCollector(services.redis, metrics.SHARED, metrics.QUEUE, queues))
    registry.register(Backlog(services))
    return registry


def _is_loopback(host: str) -> bool:
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_loopback


def check_access(request: Request, token: str | None) -> None:
    if token:
        scheme, _, given = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(),
                                                                 token.encode()):
            raise ApiError(401, "unauthorized", "metrics need the metrics bearer token",
                           {"WWW-Authenticate": 'Bearer realm="stb-origin-metrics"', **NO_STORE})
        return
    client = request.client
    if (client is None or not _is_loopback(client.host)
            or any(name in request.headers for name in _PROXY_HEADERS)):
        raise ApiError(403, "forbidden",
                       "metrics are served to loopback clients only (set STB_METRICS_TOKEN)",
                       NO_STORE)


def routes(services: Services) -> list[Route]:
    registry = build_registry(services)

    async def metrics_page(request: Request) -> Response:
        check_access(request, services.settings.metrics_token)
        # The collector reads Redis: keep that off the event loop.
        body = await anyio.to_thread.run_sync(generate_latest, registry)
        return Response(body, media_type=CONTENT_TYPE_LATEST, headers=NO_STORE)

    return [Route("/metrics", metrics_page, methods=["GET"])]
