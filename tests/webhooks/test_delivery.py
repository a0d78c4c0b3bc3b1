"""Events to signed deliveries on a real receiver: attempts as RQ jobs, retries with
back-off, giving up, errors in words, and the SSRF check again at each attempt."""

from __future__ import annotations

import ipaddress
import socket
from datetime import timedelta
from typing import Any

from prometheus_client import generate_latest

from stb_origin import eventlog
from stb_origin.app.metrics import build_registry
from stb_origin.assets.announce import asset_changed
from stb_origin.db.types import new_id, utcnow
from stb_origin.queues import webhook_queue
from stb_origin.services import Services
from stb_origin.webhooks import attempt, deliveries, subscriptions
from stb_origin.webhooks.consumer import Consumer, dispatch
from stb_origin.webhooks.models import Delivery
from stb_origin.webhooks.sender import post
from stb_origin.webhooks.targets import Target, parse
from tests.drm.support import new_asset
from tests.webhooks.conftest import Receiver, call, changed, run_attempts


def add_webhook(services: Services, url: str, events: list[str],
                active: bool = True) -> tuple[str, str]:
    with services.db.session() as session:
        webhook, secret = subscriptions.create(session, services.envelope, url, events, active)
        return webhook.id, secret


def delivery_log(services: Services, webhook_id: str) -> list[dict[str, Any]]:
    with services.db.session() as session:
        return deliveries.log_page(session, webhook_id, 100, None)


def started(services: Services) -> Consumer:
    """A consumer whose group exists: it hears every event published from now on."""
    consumer = Consumer(services, name="test")
    consumer.turn(1)
    return consumer


def deliver_all(services: Services, consumer: Consumer, rounds: int = 12) -> None:
    """Turn events into deliveries, then run attempts (and retries as they fall due)."""
    consumer.turn(1)
    for _ in range(rounds):
        run_attempts(services)
        if not dispatch(services):
            with services.db.session() as session:
                if not deliveries.pending_count(session):
                    return


def test_an_asset_turning_ready_is_delivered_signed(hook_services: Services,
                                                    receiver: Receiver) -> None:
    consumer = started(hook_services)
    webhook_id, receiver.secret = add_webhook(hook_services, receiver.url, ["asset.ready"])
    asset_id = new_id()
    asset_changed(hook_services.redis, asset_id, "processing", 0)
    asset_changed(hook_services.redis, asset_id, "processing", 40)
    offset = eventlog.publish(hook_services.redis, eventlog.ASSETS,
                              {"asset": asset_id, "status": "ready", "progress": 100,
                               "error": None}, key=asset_id)
    deliver_all(hook_services, consumer)

    [got] = receiver.wait(1)
    assert got.verified
    assert got.path == "/hook?src=stb"
    assert got.headers["Content-Type"] == "application/json"
    assert got.headers["X-Stb-Event"] == "asset.ready"
    body = got.json
    assert set(body) == {"id", "type", "created_at", "data"}
    assert body["id"] == offset and body["type"] == "asset.ready"
    assert body["data"] == {"asset": asset_id, "status": "ready", "progress": 100, "error": None}
    assert body["created_at"].endswith("+00:00")
    [logged] = delivery_log(hook_services, webhook_id)
    assert logged["id"] == got.headers["X-Stb-Delivery"]
    assert logged["state"] == "delivered" and logged["event_id"] == offset
    [tried] = logged["attempts"]
    assert tried["status_code"] == 200 and tried["error"] is None and tried["number"] == 1


def test_a_signature_under_another_secret_or_an_altered_body_fails_the_readme_check(
        local_services: Services, receiver: Receiver) -> None:
    # The receiver's check can fail: a test of the test.
    consumer = started(local_services)
    add_webhook(local_services, receiver.url, ["asset.failed"])
    receiver.secret = "whsec_not-the-one"
    asset_changed(local_services.redis, new_id(), "failed", 0, "bad_media")
    deliver_all(local_services, consumer)
    [got] = receiver.wait(1)
    assert not got.verified


def test_each_webhook_hears_only_the_types_it_asked_for_while_active(
        local_services: Services, receiver: Receiver) -> None:
    consumer = started(local_services)
    channels, _ = add_webhook(local_services, receiver.url, ["channel.no_signal", "title.created"])
    failures, _ = add_webhook(local_services, receiver.url, ["asset.failed"])
    paused, _ = add_webhook(local_services, receiver.url, ["channel.no_signal"], active=False)
    channel = new_id()
    for status in ("starting", "live", "no_signal"):
        eventlog.publish(local_services.redis, eventlog.CHANNELS,
                         {"channel": channel, "status": status, "message": None}, key=channel)
    eventlog.send_command(local_services.redis, new_id(), new_id(), "resync")  # never a webhook
    deliver_all(local_services, consumer)
    assert [d["type"] for d in delivery_log(local_services, channels)] == ["channel.no_signal"]
    assert delivery_log(local_services, failures) == []
    assert delivery_log(local_services, paused) == []
    assert [r.json["type"] for r in receiver.wait(1)] == ["channel.no_signal"]


def test_a_failing_target_is_retried_until_it_answers_2xx(hook_services: Services,
                                                          receiver: Receiver) -> None:
    consumer = started(hook_services)
    webhook_id, receiver.secret = add_webhook(hook_services, receiver.url, ["asset.ready"])
    receiver.answers = [500, 302, 503]  # a redirect is not followed: just not a 2xx
    asset_changed(hook_services.redis, new_id(), "ready", 100)
    deliver_all(hook_services, consumer)

    got = receiver.wait(4)
    assert len(got) == 4 and all(r.verified for r in got)
    assert len({r.body for r in got}) == 1  # every attempt sends the same event
    [logged] = delivery_log(hook_services, webhook_id)
    assert logged["state"] == "delivered"
    assert [(a["number"], a["status_code"]) for a in logged["attempts"]] == [
        (1, 500), (2, 302), (3, 503), (4, 200)]


def test_a_delivery_gives_up_after_its_attempts_and_counts_in_metrics(
        hook_services: Services, receiver: Receiver) -> None:
    with changed(hook_services, webhooks_max_attempts=3) as services:
        consumer = started(services)
        webhook_id, _ = add_webhook(services, receiver.url, ["asset.failed"])
        receiver.answers = [500] * 10
        asset_changed(services.redis, new_id(), "failed", 0, "bad_media")
        deliver_all(services, consumer)
        [logged] = delivery_log(services, webhook_id)
        assert logged["state"] == "failed" and logged["next_attempt_at"] is None
        assert [a["status_code"] for a in logged["attempts"]] == [500, 500, 500]
        assert len(receiver.received) == 3
        dispatch(services)
        run_attempts(services)
        assert len(receiver.received) == 3  # given up: nothing more is sent
        text = generate_latest(build_registry(services)).decode()
        assert 'stb_webhook_deliveries_total{outcome="retrying"} 2.0' in text
        assert 'stb_webhook_deliveries_total{outcome="gave_up"} 1.0' in text
        assert 'stb_webhook_backlog{stage="deliveries"} 0.0' in text


def test_a_delivery_past_its_maximum_age_gives_up_at_its_next_failure(
        local_services: Services) -> None:
    with local_services.db.session() as session:
        webhook, _ = subscriptions.create(session, local_services.envelope,
                                          "https://hooks.example.com/", ["asset.ready"], True)
        long_ago = utcnow().replace(year=2000)
        deliveries.add(session, [deliveries.NewDelivery(webhook.id, "1-0", "asset.ready", "{}")],
                       long_ago)
        delivery_id = session.query(Delivery.id).scalar()
    limits = deliveries.Limits(max_attempts=100, max_age_s=3600, backoff_s=1)
    with local_services.db.session() as session:
        state = deliveries.record(session, delivery_id, 1, attempt.Outcome(500, None, 3), limits)
    assert state == "failed"


def test_network_errors_and_time_outs_are_logged_in_words(local_services: Services) -> None:
    silent = socket.create_server(("127.0.0.1", 0))  # accepts into its backlog, never answers
    closed = socket.create_server(("127.0.0.1", 0))
    closed_port = closed.getsockname()[1]
    closed.close()
    with changed(local_services, webhooks_timeout_s=0.5) as services:
        consumer = started(services)
        hung, _ = add_webhook(services, f"http://127.0.0.1:{silent.getsockname()[1]}/",
                              ["title.created"])
        refused, _ = add_webhook(services, f"http://127.0.0.1:{closed_port}/",
                                 ["title.created"])
        eventlog.publish(services.redis, eventlog.CATALOG, {"title": new_id(),
                                                            "change": "created"})
        consumer.turn(1)
        dispatch(services)
        run_attempts(services)
        [hung_log] = delivery_log(services, hung)
        [refused_log] = delivery_log(services, refused)
        assert hung_log["attempts"][0]["error"] == "no answer within 0.5 s"
        assert hung_log["attempts"][0]["status_code"] is None
        assert refused_log["attempts"][0]["error"] == "connection refused"
        assert hung_log["state"] == refused_log["state"] == "pending"  # retried later
    silent.close()


def test_a_target_that_now_resolves_inside_is_refused_at_the_attempt(
        local_services: Services, receiver: Receiver) -> None:
    # Allowed when made (the setting was on); the workers' settings say no now.
    consumer = started(local_services)
    webhook_id, _ = add_webhook(local_services, receiver.url.replace("127.0.0.1", "localhost"),
                                ["asset.ready"])
    asset_changed(local_services.redis, new_id(), "ready", 100)
    consumer.turn(1)  # made the delivery and queued its first attempt
    [job] = webhook_queue(local_services.redis, local_services.settings).jobs
    delivery_id, number = job.args
    with changed(local_services, webhooks_allow_private=False) as strict:
        assert attempt.run(strict, delivery_id, number) == "pending"
        assert attempt.run(strict, delivery_id, number) == "skipped"  # recorded once
    [logged] = delivery_log(local_services, webhook_id)
    assert logged["attempts"][0]["error"].startswith("refused: url: the host resolves to a")
    assert receiver.received == []


def test_the_attempt_connects_to_the_address_it_checked_not_a_new_lookup(
        receiver: Receiver) -> None:
    # A name that resolves nowhere: only the checked address can have been used.
    port = parse(receiver.url, True).port
    outcome = post(Target("http", "rebound.invalid", port, "/hook"),
                   ipaddress.ip_address("127.0.0.1"), {}, b"{}", 5.0)
    assert outcome.status_code == 200
    [got] = receiver.wait(1)
    assert got.headers["Host"] == f"rebound.invalid:{port}"


def test_an_attempt_whose_job_was_lost_is_handed_out_again_once_its_claim_lapses(
        hook_services: Services) -> None:
    with hook_services.db.session() as session:
        webhook, _ = subscriptions.create(session, hook_services.envelope,
                                          "https://hooks.example.com/", ["asset.ready"], True)
        now = utcnow()
        deliveries.add(session, [deliveries.NewDelivery(webhook.id, "1-0", "asset.ready", "{}")],
                       now)
    with hook_services.db.session() as session:
        [(delivery_id, number)] = deliveries.claim_due(session, now, claim_s=60)
    with hook_services.db.session() as session:
        # Claimed: nobody hands it out again meanwhile (its job may be waiting).
        assert deliveries.claim_due(session, now + timedelta(seconds=59), claim_s=60) == []
    with hook_services.db.session() as session:
        # The job never reported (Redis lost it, or its worker died): the same attempt again.
        assert deliveries.claim_due(session, now + timedelta(seconds=61), claim_s=60) == [
            (delivery_id, number)]


def test_an_asset_deleted_over_the_api_is_delivered_as_asset_deleted(
        local_services: Services, hook_api: str, receiver: Receiver) -> None:
    consumer = started(local_services)
    webhook_id, receiver.secret = add_webhook(local_services, receiver.url, ["asset.deleted"])
    asset_id, _key = new_asset(local_services)
    writer = local_services.signer.issue(["assets:write"])
    assert call(hook_api, "DELETE", f"/v1/assets/{asset_id}", writer).status_code == 204
    deliver_all(local_services, consumer)
    [got] = receiver.wait(1)
    assert got.verified and got.headers["X-Stb-Event"] == "asset.deleted"
    assert got.json["data"] == {"asset": asset_id, "status": "deleted", "progress": 0,
                                "error": None}
    assert [d["type"] for d in delivery_log(local_services, webhook_id)] == ["asset.deleted"]
    # A second DELETE finds nothing and announces nothing.
    assert call(hook_api, "DELETE", f"/v1/assets/{asset_id}", writer).status_code == 404
    deliver_all(local_services, consumer)
    assert len(delivery_log(local_services, webhook_id)) == 1
