"""/metrics over a real server, real Redis and a real RQ worker: labels, sums, access."""

from __future__ import annotations

import json
import re
import secrets
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from prometheus_client import REGISTRY, CollectorRegistry, generate_latest
from prometheus_client.metrics_core import Metric
from prometheus_client.parser import text_string_to_metric_families
from redis import Redis
from rq import SimpleWorker

from stb_origin import pipeline
from stb_origin.ingest.service import accept_source
from stb_origin.observability import metrics
from stb_origin.observability.redis_metrics import RedisCollector, SharedHistogram
from stb_origin.observability.request_metrics import route_class
from stb_origin.queues import enqueue_pipeline
from stb_origin.services import Services
from stb_origin.storage import LocalStorage, ObjectNotFound
from stb_origin.storage.instrumented import InstrumentedStorage
from stb_origin.workers import jobs
from tests.support.media import make_clip

DASHBOARD = Path(__file__).resolve().parents[2] / "deploy" / "grafana" / "stb-origin.json"
STORAGE_OPERATIONS = {"put_file", "put_bytes", "stat", "read_chunks", "get_bytes", "download",
                      "list_keys", "delete_prefix", "delete_keys", "check", "sweep_temporary",
                      "begin_append", "open_append", "finish_append", "abort_append"}

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


class Scrape:
    def __init__(self, text: str) -> None:
        self.families: list[Metric] = list(text_string_to_metric_families(text))
        self.samples: Samples = {
            (s.name, frozenset(s.labels.items())): s.value
            for family in self.families for s in family.samples}

    def value(self, name: str, **labels: str) -> float:
        return self.samples.get((name, frozenset(labels.items())), 0.0)

    def total(self, name: str, **labels: str) -> float:
        """Sum over every series of name whose labels include these."""
        wanted = set(labels.items())
        return sum(v for (n, ls), v in self.samples.items() if n == name and wanted <= ls)

    def label_values(self, name: str, label: str) -> set[str]:
        return {dict(ls)[label] for (n, ls) in self.samples if n == name and label in dict(ls)}


def scrape(api: str) -> Scrape:
    response = httpx.get(f"{api}/metrics", timeout=10)
    assert response.status_code == 200, response.text
    return Scrape(response.text)


def eventually(check: Callable[[], None], timeout_s: float = 3.0) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            check()
            return
        except AssertionError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def _hls(services: Services) -> tuple[str, dict[str, bytes]]:
    """A published-looking asset: a playlist and a segment, straight into storage."""
    asset_id = secrets.token_hex(16)
    files = {
        "master.m3u8": b"#EXTM3U\n#EXT-X-VERSION:7\n",
        "v0a1b2c3/360p/seg_00001.m4s": secrets.token_bytes(70_000),
    }
    for name, data in files.items():
        services.storage.put_bytes(f"hls/{asset_id}/{name}", data, "application/octet-stream")
    return asset_id, files


# -- HTTP requests ---------------------------------------------------------------


@pytest.mark.parametrize("path, expected", [
    ("/hls/ab/master.m3u8", "hls_playlist"),
    ("/hls/ab/v1/360p/index.m3u8", "hls_playlist"),
    ("/hls/ab/v1/360p/seg_00001.m4s", "hls_segment"),
    ("/hls/ab/v1/360p/init.mp4", "hls_segment"),
    ("/keys/ab/k1", "keys"),
    ("/v1/assets", "ingest"),
    ("/v1/assets/ab", "ingest"),
    ("/v1/assetsX", "other"),
    ("/healthz", "health"),
    ("/readyz", "health"),
    ("/metrics", "metrics"),
    ("/", "other"),
    ("/wp-login.php", "other"),
])
def test_route_class_comes_from_a_fixed_set(path, expected):
    assert route_class(path) == expected
    assert expected in metrics.ROUTE_CLASSES


def test_requests_of_each_class_are_counted_with_route_and_status(api, services):
    asset_id, _files = _hls(services)
    requests = [
        ("/healthz", "health", "200"),
        ("/readyz", "health", "200"),
        (f"/hls/{asset_id}/master.m3u8", "hls_playlist", "200"),
        (f"/hls/{asset_id}/v0a1b2c3/360p/seg_00001.m4s", "hls_segment", "200"),
        (f"/hls/{asset_id}/v0a1b2c3/360p/seg_00002.m4s", "hls_segment", "404"),
        (f"/keys/{asset_id}/k1", "keys", "401"),
        (f"/v1/assets/{asset_id}", "ingest", "401"),
        ("/no/such/page", "other", "404"),
    ]
    before = scrape(api)
    for path, _route, status in requests:
        assert httpx.get(api + path, timeout=10).status_code == int(status), path
    after = scrape(api)

    for path, route, status in requests:
        key = {"route": route, "method": "GET", "status": status}
        expected = sum(1 for _p, r, s in requests if (r, s) == (route, status))
        assert after.value("stb_http_requests_total", **key) \
            - before.value("stb_http_requests_total", **key) == expected, path
        timed = {"route": route, "method": "GET", "status_class": status[0] + "xx"}
        assert after.value("stb_http_request_duration_seconds_count", **timed) \
            > before.value("stb_http_request_duration_seconds_count", **timed), path
    # The first scrape was itself a request of the metrics class.
    metrics_key = {"route": "metrics", "method": "GET", "status": "200"}
    assert after.value("stb_http_requests_total", **metrics_key) \
        - before.value("stb_http_requests_total", **metrics_key) == 1

    assert after.label_values("stb_http_requests_total", "route") <= set(metrics.ROUTE_CLASSES)
    for (_name, labels) in after.samples:
        for _label, value in labels:
            assert not value.startswith("/") and asset_id not in value, "a raw path as a label"


def test_bytes_served_add_up(api, services):
    asset_id, files = _hls(services)
    segment = f"{api}/hls/{asset_id}/v0a1b2c3/360p/seg_00001.m4s"
    before = scrape(api)
    received = {"hls_playlist": 0, "hls_segment": 0}
    received["hls_playlist"] += len(httpx.get(f"{api}/hls/{asset_id}/master.m3u8",
                                              timeout=10).content)
    received["hls_segment"] += len(httpx.get(segment, timeout=10).content)
    ranged = httpx.get(segment, headers={"Range": "bytes=100-1099"}, timeout=10)
    assert ranged.status_code == 206 and len(ranged.content) == 1000
    received["hls_segment"] += len(ranged.content)
    assert httpx.head(segment, timeout=10).status_code == 200  # a HEAD sends no body
    after = scrape(api)

    assert received == {"hls_playlist": len(files["master.m3u8"]),
                        "hls_segment": len(files["v0a1b2c3/360p/seg_00001.m4s"]) + 1000}
    for route, count in received.items():
        assert after.value("stb_http_response_bytes_total", route=route) \
            - before.value("stb_http_response_bytes_total", route=route) == count
    assert after.value("stb_http_requests_total", route="hls_segment", method="HEAD",
                       status="200") == before.value("stb_http_requests_total",
                                                     route="hls_segment", method="HEAD",
                                                     status="200") + 1


def test_storage_calls_are_timed_by_operation(api, services):
    asset_id, _files = _hls(services)
    before = scrape(api)
    httpx.get(f"{api}/hls/{asset_id}/v0a1b2c3/360p/seg_00001.m4s", timeout=10)
    httpx.get(f"{api}/readyz", timeout=10)
    after = scrape(api)

    name = "stb_storage_operation_duration_seconds_count"
    assert after.value(name, operation="check") - before.value(name, operation="check") == 1
    assert after.total(name) - before.total(name) >= 2, "the segment was read from storage"
    assert after.total("stb_storage_operation_duration_seconds_sum") \
        > before.total("stb_storage_operation_duration_seconds_sum")
    assert after.label_values(name, "operation") <= STORAGE_OPERATIONS


def test_the_storage_wrapper_classifies_errors_and_stays_lazy(tmp_path):
    storage = InstrumentedStorage(LocalStorage(tmp_path))

    def sample(name: str, **labels: str) -> float:
        return REGISTRY.get_sample_value(name, labels) or 0.0

    missing_before = sample("stb_storage_errors_total", operation="stat", error="not_found")
    reads_before = sample("stb_storage_operation_duration_seconds_count",
                          operation="read_chunks")

    with pytest.raises(ObjectNotFound):
        storage.stat("hls/nothing/here.m3u8")
    assert sample("stb_storage_errors_total", operation="stat", error="not_found") \
        == missing_before + 1

    storage.put_bytes("a/b.ts", b"x" * 10, "video/mp2t")
    chunks = storage.read_chunks("a/b.ts", chunk_size=4)
    assert sample("stb_storage_operation_duration_seconds_count", operation="read_chunks") \
        == reads_before, "nothing is read until the first chunk is asked for"
    assert next(chunks) == b"xxxx"
    assert sample("stb_storage_operation_duration_seconds_count", operation="read_chunks") \
        == reads_before + 1
    chunks.close()  # type: ignore[attr-defined]
    assert b"".join(storage.read_chunks("a/b.ts", 2, 5)) == b"xxxx"
    assert list(storage.list_keys("a/")) == ["a/b.ts"]
    with pytest.raises(ObjectNotFound):
        b"".join(storage.read_chunks("a/missing.ts"))
    assert sample("stb_storage_errors_total", operation="read_chunks", error="not_found") >= 1


# -- keys ------------------------------------------------------------------------


def test_key_deliveries_and_refusals_are_counted_by_reason(api, services):
    from stb_origin.drm import keystore
    from stb_origin.drm.keys import generate_key

    asset_id = secrets.token_hex(16)
    key = generate_key()
    with services.db.session() as session:
        keystore.store(session, asset_id, [key], services.envelope)
    playback = services.signer.issue(["playback"])
    wrong_scope = services.signer.issue(["assets:read"])

    def get(path: str, token: str | None = None) -> int:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.get(api + path, headers=headers, timeout=10).status_code

    before = scrape(api)
    assert get(f"/keys/{asset_id}/{key.key_id}") == 401
    assert get(f"/keys/{asset_id}/{key.key_id}", "not-a-token") == 401
    assert get(f"/keys/{asset_id}/{key.key_id}", wrong_scope) == 403
    assert get(f"/keys/{asset_id}/nosuchkey", playback) == 404
    assert get(f"/keys/NOT-AN-ID/{key.key_id}", playback) == 404
    assert get(f"/keys/{asset_id}/{key.key_id}", playback) == 200
    after = scrape(api)

    def delta(name: str, **labels: str) -> float:
        return after.value(name, **labels) - before.value(name, **labels)

    assert delta("stb_key_refusals_total", reason="unauthorized") == 2
    assert delta("stb_key_refusals_total", reason="forbidden") == 1
    assert delta("stb_key_refusals_total", reason="not_found") == 2
    assert delta("stb_key_deliveries_total") == 1


# -- queue and jobs (shared through Redis) ---------------------------------------------


def test_queue_depth_reflects_enqueued_jobs(api, services):
    for _ in range(3):
        enqueue_pipeline(services.queue, services.settings, secrets.token_hex(16))
    services.queue.enqueue_in(timedelta(minutes=5), "stb_origin.workers.jobs.process_asset",
                              secrets.token_hex(16))
    result = scrape(api)
    queue = services.settings.queue_name
    assert result.value("stb_queue_jobs", queue=queue, state="queued") == 3
    assert result.value("stb_queue_jobs", queue=queue, state="scheduled") == 1
    assert result.value("stb_queue_jobs", queue=queue, state="started") == 0
    assert result.value("stb_queue_jobs", queue=queue, state="failed") == 0
    assert result.value("stb_queue_workers", queue=queue) == 0
    assert result.value("stb_redis_up") == 1


def _ingest(services: Services, path: Path) -> str:
    return str(accept_source(services, path, path.suffix, path.stem, path.stat().st_size)["id"])


def test_a_worker_run_records_outcomes_durations_and_realtime_factor(api, services, tmp_path,
                                                                    worker_env):
    clip = make_clip(tmp_path / "clip.mp4", seconds=2, size="416x234", fps=15, audio=False)
    jobs.use_settings(services.settings.with_(job_retries=0))  # what the worker runs with
    good = _ingest(services, clip)
    lost = _ingest(services, clip)
    services.storage.delete_prefix(f"sources/{lost}/")  # this job raises: no source
    SimpleWorker([services.queue], connection=services.redis).work(burst=True)

    result = scrape(api)
    assert result.value("stb_job_duration_seconds_count", outcome="ready") == 1
    # The run turned its own failure into the asset's (no attempt left): "failed".
    assert result.value("stb_job_duration_seconds_count", outcome="failed") == 1
    assert result.value("stb_job_duration_seconds_sum", outcome="ready") > 0
    assert result.value("stb_job_duration_seconds_bucket", outcome="ready", le="+Inf") == 1
    assert result.value("stb_job_final_failures_total") == 1
    for stage in ("download", "probe", "transcode", "subtitles", "package", "publish"):
        assert result.value("stb_pipeline_stage_duration_seconds_count", stage=stage) == 1, stage
    assert result.value("stb_transcode_realtime_factor_count", top_rendition="234p") == 1
    assert result.value("stb_transcode_realtime_factor_sum", top_rendition="234p") > 0
    # The database holds the failure, with its cause; RQ only carried the job.
    assert result.value("stb_queue_jobs", queue=services.settings.queue_name,
                        state="failed") == 0
    assert good != lost


def test_bad_media_is_recorded_as_a_failed_job(api, services, tmp_path):
    fake = tmp_path / "fake.mp4"
    fake.write_bytes(b"\x00\x00\x00\x18ftypisom" + b"x" * 4000)
    assert pipeline.process(services, _ingest(services, fake)) == "failed"
    assert pipeline.process(services, secrets.token_hex(16)) == "deleted"  # no such asset
    result = scrape(api)
    assert result.value("stb_job_duration_seconds_count", outcome="failed") == 1
    assert result.value("stb_job_duration_seconds_count", outcome="deleted") == 1
    assert result.value("stb_pipeline_stage_duration_seconds_count", stage="download") == 1
    assert result.value("stb_pipeline_stage_duration_seconds_count", stage="transcode") == 0


def test_shared_histograms_cumulate_buckets_across_writers(redis_url):
    histogram = SharedHistogram("stb_test_seconds", "test", ("kind",), buckets=(1.0, 10.0))
    writers = [Redis.from_url(redis_url) for _ in range(2)]  # two "processes"
    try:
        histogram.observe(writers[0], 0.5, kind="a")
        histogram.observe(writers[1], 5, kind="a")
        histogram.observe(writers[1], 50, kind="a")
        registry = CollectorRegistry()
        registry.register(RedisCollector(writers[0], [histogram], metrics.QUEUE))
        result = Scrape(generate_latest(registry).decode())
    finally:
        for writer in writers:
            writer.close()
    assert [result.value("stb_test_seconds_bucket", kind="a", le=le)
            for le in ("1.0", "10.0", "+Inf")] == [1, 2, 3]
    assert result.value("stb_test_seconds_sum", kind="a") == 55.5
    assert result.value("stb_test_seconds_count", kind="a") == 3


def test_redis_down_still_scrapes_and_says_so():
    gone = Redis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=1)
    registry = CollectorRegistry()
    registry.register(RedisCollector(gone, metrics.SHARED, metrics.QUEUE))
    result = Scrape(generate_latest(registry).decode())
    assert result.value("stb_redis_up") == 0
    assert {f.name for f in result.families} >= {"stb_job_duration_seconds", "stb_queue_jobs"}


# -- access ----------------------------------------------------------------------


def test_metrics_are_never_cached_and_without_a_token_only_for_loopback(api):
    response = httpx.get(f"{api}/metrics", timeout=10)
    assert response.status_code == 200
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["content-type"].startswith("text/plain")
    for header in ({"X-Forwarded-For": "203.0.113.9"}, {"Via": "1.1 cdn"},
                   {"Forwarded": "for=203.0.113.9"}):
        refused = httpx.get(f"{api}/metrics", headers=header, timeout=10)
        assert refused.status_code == 403, header
        assert refused.headers["cache-control"] == "no-store"
        assert "stb_" not in refused.text


def test_with_a_token_set_metrics_need_it(api, services):
    services.settings = services.settings.with_(metrics_token="s3cret-metrics")
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "Basic s3cret"}):
        refused = httpx.get(f"{api}/metrics", headers=headers, timeout=10)
        assert refused.status_code == 401, headers
        assert refused.headers["cache-control"] == "no-store"
    allowed = httpx.get(f"{api}/metrics", timeout=10,
                        headers={"Authorization": "Bearer s3cret-metrics",
                                 "X-Forwarded-For": "203.0.113.9"})
    assert allowed.status_code == 200
    assert allowed.headers["cache-control"] == "no-store"


# -- the dashboard -----------------------------------------------------------------

_NOT_METRICS = {"by", "without", "on", "ignoring", "group_left", "group_right", "bool", "and",
                "or", "unless", "offset", "inf", "nan"}


def metric_names(expr: str) -> set[str]:
    """Metric names a PromQL expression selects (enough PromQL for a dashboard)."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"', "", expr)  # label values
    text = re.sub(r"\{[^}]*\}", "", text)  # label matchers
    text = re.sub(r"\[[^\]]*\]", "", text)  # ranges
    text = re.sub(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", text)
    names = set()
    for match in re.finditer(r"[A-Za-z_:][A-Za-z0-9_:]*", text):
        following = text[match.end():].lstrip()
        start = match.start()
        if following.startswith("(") or match.group() in _NOT_METRICS:
            continue  # a function or an operator
        if start and (text[start - 1].isdigit() or text[start - 1] == "."):
            continue  # an exponent or unit inside a number
        names.add(match.group())
    return names


def _queries(node: object) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "expr" and isinstance(value, str):
                yield value
            elif key == "query" and isinstance(value, str):  # template variables
                yield from re.findall(r"label_values\(\s*([A-Za-z_:][A-Za-z0-9_:]*)", value)
            else:
                yield from _queries(value)
    elif isinstance(node, list):
        for item in node:
            yield from _queries(item)


def test_metric_names_parser():
    assert metric_names('histogram_quantile(0.95, sum by (route, le) (rate('
                        'stb_x_bucket{job=~"$job", a="b"}[$__rate_interval])))') == {"stb_x_bucket"}
    assert metric_names("max by (q) (stb_a) / on (q) group_left sum(stb_b offset 1h) * 1e3") \
        == {"stb_a", "stb_b"}


def test_dashboard_uses_only_metric_names_the_app_exports(api, services):
    asset_id, _files = _hls(services)
    httpx.get(f"{api}/hls/{asset_id}/master.m3u8", timeout=10)
    httpx.get(f"{api}/keys/{asset_id}/k1", timeout=10)
    result = scrape(api)
    exported = {s_name for (s_name, _labels) in result.samples}
    for family in result.families:  # also families with no series yet (no job ran)
        suffixes = {"counter": ["_total"], "histogram": ["_bucket", "_count", "_sum"],
                    "summary": ["_count", "_sum", ""]}.get(family.type, [""])
        exported |= {family.name + suffix for suffix in suffixes}

    dashboard = json.loads(DASHBOARD.read_text())
    queries = list(_queries(dashboard))
    assert len(queries) > 15
    used: set[str] = set()
    for query in queries:
        names = metric_names(query) if "(" in query or "{" in query else {query}
        assert names, f"no metric in {query!r}"
        assert names <= exported, f"{query!r} uses {sorted(names - exported)}"
        used |= names
    families = {f.name for f in result.families if f.name.startswith("stb_")}
    missing = {f for f in families if not any(n.startswith(f) for n in used)}
    assert not missing, f"exported but on no panel: {sorted(missing)}"
