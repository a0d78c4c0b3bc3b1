"""The webhooks API over the real app: admins only, the secret shown once, URLs
checked (SSRF) at creation and change, bad input refused with a reason, the
delivery log paged, and redelivery."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from stb_origin import eventlog
from stb_origin.assets.announce import asset_changed
from stb_origin.db.types import new_id
from stb_origin.services import Services
from stb_origin.web.openapi import WEBHOOK_EVENT_TYPES
from stb_origin.webhooks import signing, subscriptions
from stb_origin.webhooks.consumer import Consumer
from stb_origin.webhooks.event_types import EVENT_TYPES
from stb_origin.webhooks.models import Webhook
from stb_origin.webhooks.subscriptions import MAX_WEBHOOKS
from tests.webhooks.conftest import Receiver, call, changed, run_attempts

HOOK = "https://hooks.example.com/in"


def _error(response: Any, status: int, code: str, words: str = "") -> None:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["code"] == code and words in error["message"], error


def test_the_documented_event_types_are_the_ones_there_are() -> None:
    assert list(EVENT_TYPES) == WEBHOOK_EVENT_TYPES


def test_an_admin_makes_reads_changes_and_deletes_a_webhook(
        hook_api: str, operator: str, local_services: Services) -> None:
    made = call(hook_api, "POST", "/v1/webhooks", operator,
                json={"url": "http://127.0.0.1:9/in", "events": ["asset.ready", "asset.ready",
                                                                 "channel.no_signal"]})
    assert made.status_code == 201, made.text
    body = made.json()
    assert made.headers["Location"] == f"/v1/webhooks/{body['id']}"
    assert body["events"] == ["asset.ready", "channel.no_signal"] and body["active"] is True
    assert body["secret"].startswith("whsec_") and len(body["secret"]) > 40
    # Kept only sealed: the row holds no clear secret, and it opens to the one shown.
    with local_services.db.session() as session:
        row = session.get(Webhook, body["id"])
        assert row is not None and body["secret"].encode() not in row.wrapped_secret
        assert signing.unseal(local_services.envelope, row.id, row.wrapped_secret) == \
            body["secret"]
    path = f"/v1/webhooks/{body['id']}"
    shown = call(hook_api, "GET", path, operator).json()
    assert "secret" not in shown and shown["url"] == "http://127.0.0.1:9/in"
    changed_ = call(hook_api, "PATCH", path, operator, json={"active": False,
                                                             "events": ["title.created"]})
    assert changed_.status_code == 200
    assert changed_.json()["active"] is False and changed_.json()["events"] == ["title.created"]
    rotated = call(hook_api, "POST", path + "/secret", operator).json()
    assert rotated["secret"] != body["secret"] and rotated["id"] == body["id"]
    assert call(hook_api, "DELETE", path, operator).status_code == 204
    _error(call(hook_api, "GET", path, operator), 404, "not_found")
    _error(call(hook_api, "DELETE", path, operator), 404, "not_found")


def test_webhooks_are_listed_newest_first_page_by_page(hook_api: str, operator: str) -> None:
    ids = [call(hook_api, "POST", "/v1/webhooks", operator,
                json={"url": f"http://127.0.0.1:9/{n}", "events": ["asset.ready"]}).json()["id"]
           for n in range(3)]
    first = call(hook_api, "GET", "/v1/webhooks?limit=2", operator).json()
    assert [w["id"] for w in first["items"]] == ids[::-1][:2]
    second = call(hook_api, "GET", first["next"], operator).json()
    assert [w["id"] for w in second["items"]] == [ids[0]] and second["next"] is None
    _error(call(hook_api, "GET", "/v1/webhooks?after=../../x", operator), 400, "bad_request")
    _error(call(hook_api, "GET", f"/v1/webhooks?after={new_id()}", operator), 400,
           "bad_request")


def test_only_admins_may_touch_webhooks(hook_api: str, local_services: Services) -> None:
    editor = local_services.signer.issue(["assets:read", "assets:write", "playback"])
    made = call(hook_api, "POST", "/v1/webhooks", local_services.signer.issue(["admin"]),
                json={"url": HOOK.replace("https://hooks.example.com", "http://127.0.0.1:9"),
                      "events": ["asset.ready"]}).json()
    for method, path in [("POST", "/v1/webhooks"), ("GET", "/v1/webhooks"),
                         ("GET", f"/v1/webhooks/{made['id']}"),
                         ("PATCH", f"/v1/webhooks/{made['id']}"),
                         ("DELETE", f"/v1/webhooks/{made['id']}"),
                         ("POST", f"/v1/webhooks/{made['id']}/secret"),
                         ("GET", f"/v1/webhooks/{made['id']}/deliveries"),
                         ("POST", f"/v1/webhooks/{made['id']}/deliveries/{new_id()}/redeliver")]:
        _error(call(hook_api, method, path, editor, json={"url": HOOK}), 403,
               "insufficient_scope")
        _error(call(hook_api, method, path, json={"url": HOOK}), 401, "unauthorized")
        _error(call(hook_api, method, path, "not.a.token"), 401, "invalid_token")


@pytest.mark.parametrize(("body", "code", "words"), [
    ({"url": HOOK}, "bad_request", "url and events are required"),
    ({"events": ["asset.ready"]}, "bad_request", "url and events are required"),
    ({"url": HOOK, "events": []}, "bad_request", "non-empty list"),
    ({"url": HOOK, "events": "asset.ready"}, "bad_request", "non-empty list"),
    ({"url": HOOK, "events": ["asset.exploded"]}, "bad_request", "unknown event type"),
    ({"url": HOOK, "events": ["<script>" * 100]}, "bad_request", "unknown event type"),
    ({"url": HOOK, "events": [1, 2]}, "bad_request", "event type names"),
    ({"url": HOOK, "events": ["asset.ready"] * 500}, "bad_request",
     f"at most {len(EVENT_TYPES)}"),
    ({"url": HOOK, "events": ["asset.ready"], "active": "yes"}, "bad_request", "true or false"),
    ({"url": HOOK, "events": ["asset.ready"], "secret": "mine"}, "bad_request",
     'unknown field "secret"'),
    ({"url": 7, "events": ["asset.ready"]}, "bad_target", "expected a string"),
    ({"url": "not a url", "events": ["asset.ready"]}, "bad_target", "printable ASCII"),
    ({"url": "javascript:alert(1)", "events": ["asset.ready"]}, "bad_target", "scheme"),
    ({"url": "https://" + "a" * 3000 + ".com/", "events": ["asset.ready"]}, "bad_target",
     "at most 2048"),
])
def test_bad_bodies_are_refused_with_a_reason(hook_api: str, operator: str,
                                              body: dict[str, Any], code: str,
                                              words: str) -> None:
    _error(call(hook_api, "POST", "/v1/webhooks", operator, json=body), 400, code, words)


def test_bodies_that_are_not_small_json_objects_are_refused(hook_api: str,
                                                            operator: str) -> None:
    _error(call(hook_api, "POST", "/v1/webhooks", operator,
                json={"url": HOOK, "events": ["asset.ready"], "pad": "x" * 70_000}),
           413, "payload_too_large")
    _error(call(hook_api, "POST", "/v1/webhooks", operator, content=b'{"url": "https://a',
                headers={"Content-Type": "application/json"}), 400, "bad_request", "not valid")
    _error(call(hook_api, "POST", "/v1/webhooks", operator, content=b"[]",
                headers={"Content-Type": "application/json"}), 400, "bad_request", "object")
    _error(call(hook_api, "POST", "/v1/webhooks", operator, content=b"url=x",
                headers={"Content-Type": "application/x-www-form-urlencoded"}), 415,
           "unsupported_media_type")
    _error(call(hook_api, "GET", "/v1/webhooks/..%2F..%2Fetc", operator), 404, "not_found")


@pytest.mark.parametrize("url", [
    "https://127.0.0.1/in", "https://10.0.0.8/in", "https://169.254.169.254/latest/meta-data",
    "https://[::1]/in", "https://[::ffff:127.0.0.1]/in", "https://localhost/in",
"https://0.0.0.0/in", "https://[fe80::1]/in",
])
def test_an_inside_target_is_refused_at_creation_and_change(
        hook_api: str, operator: str, local_services: Services, url: str) -> None:
    with changed(local_services, webhooks_allow_private=False) as strict:
        local_services.settings = strict.settings  # what the running app reads
        _error(call(hook_api, "POST", "/v1/webhooks", operator,
                    json={"url": url, "events": ["asset.ready"]}), 400, "bad_target",
               "resolves to a private")
        with local_services.db.session() as session:
            assert session.query(Webhook).count() == 0


def test_http_targets_need_the_setting(hook_api: str, operator: str,
                                       local_services: Services) -> None:
    made = call(hook_api, "POST", "/v1/webhooks", operator,
                json={"url": "http://127.0.0.1:9/", "events": ["asset.ready"]}).json()
    with changed(local_services, webhooks_allow_http=False) as strict:
        local_services.settings = strict.settings
        _error(call(hook_api, "PATCH", f"/v1/webhooks/{made['id']}", operator,
                    json={"url": "http://127.0.0.1:9/other"}), 400, "bad_target",
               "scheme must be https")
    _error(call(hook_api, "PATCH", f"/v1/webhooks/{made['id']}", operator,
                json={"url": None}), 400, "bad_target", "expected a string")


def test_the_webhook_count_is_capped(hook_api: str, operator: str,
                                     local_services: Services) -> None:
    with local_services.db.session() as session:
        for n in range(MAX_WEBHOOKS - 1):
            subscriptions.create(session, local_services.envelope, f"http://127.0.0.1:9/{n}",
                                 ["asset.ready"], True)
    body = {"url": "http://127.0.0.1:9/x", "events": ["asset.ready"]}
    assert call(hook_api, "POST", "/v1/webhooks", operator, json=body).status_code == 201
    _error(call(hook_api, "POST", "/v1/webhooks", operator, json=body), 409,
           "too_many_webhooks")


def test_the_delivery_log_pages_and_a_delivery_is_sent_again_on_request(
        hook_api: str, operator: str, local_services: Services, receiver: Receiver) -> None:
    consumer = Consumer(local_services, name="test")
    consumer.turn(1)
    made = call(hook_api, "POST", "/v1/webhooks", operator,
                json={"url": receiver.url, "events": ["asset.ready", "asset.failed"]}).json()
    receiver.secret = made["secret"]
    path = f"/v1/webhooks/{made['id']}/deliveries"
    asset_changed(local_services.redis, new_id(), "ready", 100)
    asset_changed(local_services.redis, new_id(), "failed", 0, "bad_media")
    consumer.turn(1)
    run_attempts(local_services)
    receiver.wait(2)

    first = call(hook_api, "GET", path + "?limit=1", operator).json()
    second = call(hook_api, "GET", first["next"], operator).json()
    logged = first["items"] + second["items"]
    assert second["next"] is None
    assert {d["type"] for d in logged} == {"asset.ready", "asset.failed"}
    assert all(d["state"] == "delivered" and len(d["attempts"]) == 1 for d in logged)
    attempt = logged[0]["attempts"][0]
    assert attempt["status_code"] == 200 and attempt["duration_ms"] >= 0

    again = call(hook_api, "POST", f"{path}/{logged[0]['id']}/redeliver", operator)
    assert again.status_code == 202 and again.json()["state"] == "pending"
    run_attempts(local_services)
    got = receiver.wait(3)
    assert got[2].verified and got[2].json["id"] == logged[0]["event_id"]
    redone = call(hook_api, "GET", f"/v1/webhooks/{made['id']}/deliveries", operator).json()
    [entry] = [d for d in redone["items"] if d["id"] == logged[0]["id"]]
    assert entry["state"] == "delivered" and [a["number"] for a in entry["attempts"]] == [1, 2]
    _error(call(hook_api, "POST", f"{path}/{new_id()}/redeliver", operator), 404, "not_found")
    other = call(hook_api, "POST", "/v1/webhooks", operator,
                 json={"url": receiver.url, "events": ["asset.ready"]}).json()
    # A delivery is reached only through its own webhook.
    _error(call(hook_api, "POST", f"/v1/webhooks/{other['id']}/deliveries/{logged[0]['id']}"
                "/redeliver", operator), 404, "not_found")
    _error(call(hook_api, "GET", f"/v1/webhooks/{new_id()}/deliveries", operator), 404,
           "not_found")


def test_a_url_with_a_token_in_its_query_never_reaches_the_logs(
        hook_api: str, operator: str, local_services: Services, receiver: Receiver,
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    consumer = Consumer(local_services, name="test")
    consumer.turn(1)
    url = receiver.url + "&token=sekrit-query-token"
    made = call(hook_api, "POST", "/v1/webhooks", operator,
                json={"url": url, "events": ["guide.imported"]}).json()
    eventlog.publish(local_services.redis, eventlog.GUIDE, {"imported": 1, "replaced": 0,
                                                            "channels": 1})
    consumer.turn(1)
    run_attempts(local_services)
    receiver.wait(1)
    logged = "\n".join(str(r.__dict__) for r in caplog.records)
    assert made["id"] in logged  # the attempt was logged, by the webhook's id
    assert "sekrit-query-token" not in logged and made["secret"] not in logged
