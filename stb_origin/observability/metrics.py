"""Prometheus metrics: every metric the services export is declared here, once.

Two kinds: in-process metrics (prometheus_client objects) for what the HTTP
process itself does, and shared metrics kept in Redis (``redis_metrics``) for
what RQ jobs do in short-lived processes on any machine. Label values always
come from small fixed sets, never from paths or ids.
"""

from __future__ import annotations

from prometheus_client import Counter, Histogram, disable_created_metrics

from stb_origin.observability.redis_metrics import (
    QueueGauges,
    ScrapedGauge,
    SharedCounter,
    SharedHistogram,
    SharedMetric,
)

# A _created series beside every counter and histogram doubles the series
# count for a timestamp no dashboard here uses.
disable_created_metrics()

# -- HTTP (in-process, per HTTP replica) -----------------------------------------

ROUTE_CLASSES = ("hls_playlist", "hls_segment", "keys", "ingest", "health", "metrics", "other")

HTTP_REQUESTS = Counter(
    "stb_http_requests_total",
    "HTTP requests answered, by route class, method and status code.",
    ["route", "method", "status"],
)
HTTP_REQUEST_DURATION = Histogram(
    "stb_http_request_duration_seconds",
    "Time from request to the last body byte handed to the server, by route class,"
    " method and status class (2xx, 3xx, 4xx, 5xx).",
    ["route", "method", "status_class"],
    buckets=(0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 60),
)
HTTP_RESPONSE_BYTES = Counter(
    "stb_http_response_bytes_total",
    "Response body bytes sent (HEAD sends none), by route class.",
    ["route"],
)

# The origin's in-process cache (playlists and small hot objects): hit ratio =
# hits / (hits + misses).
ORIGIN_CACHE_REQUESTS = Counter(
    "stb_origin_cache_requests_total",
    "Lookups in the origin's in-process object cache, by result (hit, miss).",
    ["result"],
)

# -- storage (in-process: the serving path of this replica) ----------------------

STORAGE_OPERATION_DURATION = Histogram(
    "stb_storage_operation_duration_seconds",
    "Time a storage call takes, by operation (the Storage method); for read_chunks"
    " and list_keys, the time to the first item.",
    ["operation"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
STORAGE_ERRORS = Counter(
    "stb_storage_errors_total",
    "Storage calls that raised, by operation and error"
    " (not_found, invalid_key, full: no space left, unavailable, other).",
    ["operation", "error"],
)

# -- leftovers of dead writers (in-process: the sweep this replica ran) ------------

TEMP_SWEPT_FILES = Counter(
    "stb_temp_swept_files_total",
    "Temporary files a dead writer left that the sweep removed, by kind (upload: partial"
    " uploads; storage: the storage's temporary files or unfinished S3 multipart uploads;"
    " resumable: tus uploads past their expiry).",
    ["kind"],
)
TEMP_SWEPT_BYTES = Counter(
    "stb_temp_swept_bytes_total",
    "Bytes those swept temporary files held, by kind (upload, storage, resumable).",
    ["kind"],
)

# -- key delivery (in-process) ----------------------------------------------------

KEY_DELIVERIES = Counter(
    "stb_key_deliveries_total",
    "Content keys delivered to a holder of a playback token.",
)
KEY_REFUSALS = Counter(
    "stb_key_refusals_total",
    "Key requests refused, by reason: the token (unauthorized, forbidden: no playback"
    " scope, unavailable: revocations unreadable), the caller (wrong_asset, not_a_user,"
    " unknown_user, device_revoked, no_device, not_entitled), rate_limited, not_found.",
    ["reason"],
)
KEY_AUDIT_LOST = Counter(
    "stb_key_audit_lost_total",
    "Key audit rows dropped unwritten: the database refused them for longer than the"
    " writer's buffer lasts, or at shutdown.",
)

# -- jobs (shared: written by RQ work horses to Redis, exposed by every replica) --

JOB_DURATION = SharedHistogram(
    "stb_job_duration_seconds",
    "Wall time of one pipeline job attempt, by outcome (ready; queued: failed, the next"
    " attempt is due later; failed: no attempt left or bad media; deleted: the asset"
    " went away; skipped: another live run holds it; superseded: a newer run took it;"
    " error: raised before the run could say).",
    ("outcome",),
    buckets=(1, 5, 15, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200, 14400, 21600),
)
PIPELINE_STAGE_DURATION = SharedHistogram(
    "stb_pipeline_stage_duration_seconds",
    "Wall time of each completed pipeline stage"
    " (download, probe, complexity, loudness, transcode, subtitles, package, publish).",
    ("stage",),
    buckets=(0.1, 0.5, 1, 5, 15, 30, 60, 120, 300, 600, 1200, 3600, 7200, 21600),
)
TRANSCODE_REALTIME_FACTOR = SharedHistogram(
    "stb_transcode_realtime_factor",
    "Media seconds transcoded per wall-clock second of the transcode stage,"
    " by the ladder's top rendition (e.g. 1080p; audio for an audio-only ladder).",
    ("top_rendition",),
    buckets=(0.1, 0.25, 0.5, 0.75, 1, 1.5, 2, 3, 5, 8, 13, 21, 34, 55, 100),
)
JOB_FINAL_FAILURES = SharedCounter(
    "stb_job_final_failures_total",
    "Pipeline jobs that failed for good (no retries left); their asset is marked failed.",
)

SPANS_ENCODED = SharedCounter(
    "stb_spans_encoded_total",
    "Spans of long masters encoded (stb_origin.chunked), by who encoded them: the run"
    " that holds the asset, or a helper job on another worker.",
    ("by",),
)
SPANS_REQUEUED = SharedCounter(
    "stb_spans_requeued_total",
    "Spans put back on the list because the worker encoding them stopped renewing its"
    " claim (it died): only these are encoded again.",
)

# -- live (shared: written by channel runners) ---------------------------------------

LIVE_SEGMENTS = SharedCounter(
    "stb_live_segments_total",
    "Live segments listed (every rendition stored, then indexed), by what was on air:"
    " source or slate.",
    ("on_air",),
)
LIVE_SWITCHES = SharedCounter(
    "stb_live_switches_total",
    "Changes of what a channel puts on air, by reason: failover (the source went silent"
    " or broke), slate (no source left), back (a better source is stable again),"
    " restart (configuration changed), takeover (a runner took the channel over).",
    ("reason",),
)

# -- webhooks (shared: attempts are made by RQ work horses) ------------------------

WEBHOOK_DELIVERIES = SharedCounter(
    "stb_webhook_deliveries_total",
    "Webhook delivery attempts, by outcome: delivered (a 2xx), retrying (failed, another"
    " attempt is due later), gave_up (failed, and the delivery is out of attempts or time).",
    ("outcome",),
)
WEBHOOK_BACKLOG = ScrapedGauge(
    "stb_webhook_backlog",
    "Webhook work waiting, by stage: events (in the event log, not yet turned into"
    " deliveries) and deliveries (pending: due, queued or waiting out a back-off).",
    ("stage",),
)

SHARED: tuple[SharedMetric, ...] = (
    JOB_DURATION, PIPELINE_STAGE_DURATION, TRANSCODE_REALTIME_FACTOR, JOB_FINAL_FAILURES,
    SPANS_ENCODED, SPANS_REQUEUED, LIVE_SEGMENTS, LIVE_SWITCHES,
    WEBHOOK_DELIVERIES,
)

# -- queue (read from Redis at scrape time) ---------------------------------------

QUEUE = QueueGauges(
    jobs=ScrapedGauge(
        "stb_queue_jobs",
        "Jobs per RQ queue and state: queued (waiting), scheduled (delayed by RQ),"
        " started, deferred, failed (kept for inspection).",
        ("queue", "state"),
    ),
    workers=ScrapedGauge(
        "stb_queue_workers",
        "RQ workers listening on each queue (with a live heartbeat).",
        ("queue",),
    ),
    redis_up=ScrapedGauge(
        "stb_redis_up",
        "1 if this scrape could read job and queue metrics from Redis, else 0.",
    ),
)
