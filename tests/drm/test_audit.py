"""GET /v1/key-audit over real HTTP: admins only, newest first, filtered, page by page."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from stb_origin.accounts.models import Role
from stb_origin.drm import audit
from stb_origin.services import Services
from tests.drm.support import household

ASSETS = ("a" * 32, "b" * 32)
DEVICES = ("box-1", "box-2")
START = datetime(2030, 1, 1, tzinfo=UTC)


@pytest.fixture
def rows(services: Services) -> list[str]:
    """Six audit rows, one a minute, assets and devices alternating; oldest first."""
    ids = []
    with services.db.session() as session:
        for n in range(6):
            request = audit.KeyRequest(
                subject="operator", device_id=DEVICES[n % 2], client_id=None,
                asset_id=ASSETS[n // 3], key_id=f"k{n}", client_address="127.0.0.1",
                forwarded_for=None, request_id=None)
            audit.record(session, request, audit.DELIVERED, START + timedelta(minutes=n))
        session.flush()
        ids = [r.id for r in audit.page(session, 10, None)][::-1]
    return ids


def _get(api: str, path: str, token: str | None, **params: Any) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    # params=None: an empty dict would drop the query string of a next link.
    return httpx.get(api + path, headers=headers, params=params or None, timeout=10)


def _all(api: str, token: str, **params: Any) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    url: str | None = "/v1/key-audit"
    while url:
        response = _get(api, url, token, **(params if url == "/v1/key-audit" else {}))
        assert response.status_code == 200, response.text
        assert response.headers["cache-control"] == "no-store"
        items += response.json()["items"]
        url = response.json()["next"]
    return items


def test_admins_page_through_the_audit_newest_first(api, services, rows):
    token = services.signer.issue(["admin"])
    items = _all(api, token, limit=4)
    assert [i["id"] for i in items] == rows[::-1]
    assert items[0]["key_id"] == "k5" and items[0]["at"] == (START + timedelta(minutes=5)
                                                              ).isoformat()
    first = _get(api, "/v1/key-audit", token, limit=4).json()
    assert len(first["items"]) == 4 and first["next"].startswith("/v1/key-audit?")


def test_the_audit_is_filtered_by_asset_and_device(api, services, rows):
    admin = household(services, role=Role.ADMIN, scopes=("admin",))
    by_asset = _all(api, admin.token, asset=ASSETS[0], limit=1)
    assert [i["key_id"] for i in by_asset] == ["k2", "k1", "k0"]
    by_both = _all(api, admin.token, asset=ASSETS[1], device=DEVICES[1], limit=1)
    assert [i["key_id"] for i in by_both] == ["k5", "k3"]


def test_only_admins_may_read_the_audit(api, services, rows):
    subscriber = household(services, scopes=("account", "playback"))
    assert _get(api, "/v1/key-audit", subscriber.token).status_code == 403
    not_admin = household(services, scopes=("admin",))  # the scope without the role
    assert _get(api, "/v1/key-audit", not_admin.token).status_code == 403
    assert _get(api, "/v1/key-audit", None).status_code == 401


@pytest.mark.parametrize("params", [
    {"asset": "../etc"}, {"device": "x" * 65}, {"limit": "0"}, {"after": "f" * 32},
])
def test_bad_parameters_are_400(api, services, rows, params):
    response = _get(api, "/v1/key-audit", services.signer.issue(["admin"]), **params)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "bad_request"


def test_purge_removes_only_rows_older_than_the_cut_in_batches(services: Services,
                                                               rows: list[str]) -> None:
    cut = START + timedelta(minutes=3, seconds=30)  # rows 0-3 are older
    removed = []
    while True:
        with services.db.session() as session:
            removed.append(audit.purge(session, cut, batch=3))
        if removed[-1] == 0:
            break
    assert removed == [3, 1, 0]
    with services.db.session() as session:
        assert [r.id for r in audit.page(session, 10, None)][::-1] == rows[4:]


def test_the_cli_purges_by_age(services: Services, capsys: pytest.CaptureFixture[str]) -> None:
    from stb_origin.db.types import utcnow
    from tests.support.cli import run_cli

    now = utcnow()
    with services.db.session() as session:
        for age_days in (40, 31, 29, 1):
            request = audit.KeyRequest(
                subject="operator", device_id=None, client_id=None, asset_id=ASSETS[0],
                key_id=f"age{age_days}", client_address=None, forwarded_for=None,
                request_id=None)
            audit.record(session, request, audit.DELIVERED, now - timedelta(days=age_days))
    settings = services.settings
    assert run_cli(settings, "key-audit", "purge", "--older-than-days", "30") == 0
    assert "removed 2 key audit rows" in capsys.readouterr().out
    with services.db.session() as session:
        assert sorted(r.key_id for r in audit.page(session, 10, None)) == ["age1", "age29"]
    assert run_cli(settings, "key-audit", "purge", "--older-than-days", "0") == 1
