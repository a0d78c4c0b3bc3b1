"""Metrics kept in Redis, read at scrape time by the HTTP app's collector.

Jobs run in RQ work-horse processes that live for one job, on any number of
machines, so whatever they count has to outlive them and meet in one place.
They already share Redis: a job adds to counters and histogram buckets there
with HINCRBY (one MULTI per observation), and every HTTP process exposes the
totals at ``/metrics``. The same collector reads RQ's queue lengths.

Prometheus' multiprocess mode would only join processes of one host, and a
Pushgateway would be one more service to run; this needs nothing new. Each
HTTP replica exposes the same cluster-wide totals, so dashboards aggregate
these series with ``max``, not ``sum``.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field

from prometheus_client.metrics_core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.utils import floatToGoString
from redis import Redis
from redis.exceptions import RedisError
from rq import Queue
from rq.worker_registration import WORKERS_BY_QUEUE_KEY

log = logging.getLogger("stb_origin.observability.metrics")

KEY_PREFIX = "stb:metrics:"
_COUNT, _SUM = "count", "sum"


def _label_key(labelnames: Sequence[str], labels: Mapping[str, str]) -> str:
    if set(labels) != set(labelnames):
        raise ValueError(f"expected labels {sorted(labelnames)}, got {sorted(labels)}")
    return json.dumps([str(labels[name]) for name in labelnames])


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _write(redis: Redis, name: str, increments: Iterable[tuple[str, float]]) -> None:
    """Add to fields of one hash in a single transaction; never raises."""
    try:
        with redis.pipeline(transaction=True) as pipe:
            for field_name, amount in increments:
                if isinstance(amount, int):
                    pipe.hincrby(KEY_PREFIX + name, field_name, amount)
                else:
                    pipe.hincrbyfloat(KEY_PREFIX + name, field_name, amount)
            pipe.execute()
    except RedisError as exc:
        # Losing a sample is better than failing the job that produced it.
        log.warning("could not record a metric", extra={"metric": name, "error": str(exc)})


@dataclass(frozen=True)
class SharedCounter:
    name: str  # ends in _total, as exposed
    documentation: str
    labelnames: tuple[str, ...] = ()

    def inc(self, redis: Redis, amount: int = 1, **labels: str) -> None:
        _write(redis, self.name, [(_label_key(self.labelnames, labels), amount)])

    def family(self, stored: Mapping[str, str]) -> Metric:
        metric = CounterMetricFamily(self.name, self.documentation, labels=self.labelnames)
        for key, value in sorted(stored.items()):
            try:
                metric.add_metric(json.loads(key), float(value))
            except (ValueError, TypeError):
                continue  # a field some other version wrote: skip, don't break the scrape
        return metric


@dataclass(frozen=True)
class SharedHistogram:
    name: str
    documentation: str
    labelnames: tuple[str, ...]
    buckets: tuple[float, ...]  # upper bounds, ascending, without +Inf

    def observe(self, redis: Redis, value: float, **labels: str) -> None:
        key = _label_key(self.labelnames, labels)
        # Buckets are stored non-cumulative (one field per observation);
        # cumulated at scrape time. Past the last bound only count grows.
        bound = next((b for b in self.buckets if value <= b), None)
        increments: list[tuple[str, float]] = [(f"{key}|{_COUNT}", 1),
                                               (f"{key}|{_SUM}", float(value))]
        if bound is not None:
            increments.append((f"{key}|{floatToGoString(bound)}", 1))
        _write(redis, self.name, increments)

    def family(self, stored: Mapping[str, str]) -> Metric:
        series: dict[str, dict[str, float]] = {}
        for name, value in stored.items():
            key, _, part = name.rpartition("|")
            try:
                series.setdefault(key, {})[part] = float(value)
            except ValueError:
                continue
        metric = HistogramMetricFamily(self.name, self.documentation, labels=self.labelnames)
        for key, parts in sorted(series.items()):
            try:
                labels = json.loads(key)
            except ValueError:
                continue
            if len(labels) != len(self.labelnames) or _COUNT not in parts:
                continue
            cumulative, buckets = 0.0, []
            for bound in self.buckets:
                cumulative += parts.get(floatToGoString(bound), 0.0)
                buckets.append((floatToGoString(bound), cumulative))
            buckets.append(("+Inf", parts[_COUNT]))
            metric.add_metric(labels, buckets, parts.get(_SUM, 0.0))
        return metric


SharedMetric = SharedCounter | SharedHistogram


@dataclass(frozen=True)
class ScrapedGauge:
    """A gauge whose value is read from Redis when Prometheus scrapes."""

    name: str
    documentation: str
    labelnames: tuple[str, ...] = ()

    def family(self, values: Iterable[tuple[Sequence[str], float]] = ()) -> Metric:
        metric = GaugeMetricFamily(self.name, self.documentation, labels=self.labelnames)
        for labels, value in values:
            metric.add_metric(list(labels), value)
        return metric


@dataclass(frozen=True)
class QueueGauges:
    jobs: ScrapedGauge  # labels: queue, state
    workers: ScrapedGauge  # labels: queue
    redis_up: ScrapedGauge


def _queue_states(queue: Queue) -> dict[str, tuple[str, str]]:
    """State name -> (Redis type, key). Only O(1) reads: LLEN and ZCARD, no
    registry clean-up (which moves jobs around) at scrape time."""
    return {
        "queued": ("list", queue.key),
        "scheduled": ("zset", queue.scheduled_job_registry.key),
        "started": ("zset", queue.started_job_registry.key),
        "deferred": ("zset", queue.deferred_job_registry.key),
        "failed": ("zset", queue.failed_job_registry.key),
    }


@dataclass(eq=False)  # registries key collectors by identity
class RedisCollector:
    """Shared job metrics and queue depths: one pipelined round trip per scrape,
    plus one EXISTS per queue that has workers."""

    redis: Redis
    shared: Sequence[SharedMetric]
    queue_gauges: QueueGauges
    queues: Sequence[Queue] = field(default_factory=list)

    def collect(self) -> Iterator[Metric]:
        try:
            stored, depths, workers = self._read()
        except RedisError as exc:
            log.warning("metrics: Redis unavailable at scrape", extra={"error": str(exc)})
            yield self.queue_gauges.redis_up.family([((), 0.0)])
            for metric in self.shared:
                yield metric.family({})
            yield self.queue_gauges.jobs.family()
            yield self.queue_gauges.workers.family()
            return
        yield self.queue_gauges.redis_up.family([((), 1.0)])
        for metric in self.shared:
            yield metric.family(stored[metric.name])
        yield self.queue_gauges.jobs.family(depths)
        yield self.queue_gauges.workers.family(workers)

    def _read(self) -> tuple[dict[str, dict[str, str]], list[tuple[tuple[str, str], float]],
                             list[tuple[tuple[str], float]]]:
        states = [(queue.name, state, kind, key) for queue in self.queues
                  for state, (kind, key) in _queue_states(queue).items()]
        with self.redis.pipeline(transaction=False) as pipe:
            for metric in self.shared:
                pipe.hgetall(KEY_PREFIX + metric.name)
            for _queue, _state, kind, key in states:
                if kind == "list":
                    pipe.llen(key)
                else:
                    pipe.zcard(key)
            for queue in self.queues:
                pipe.smembers(WORKERS_BY_QUEUE_KEY % queue.name)
            results = pipe.execute()
        hashes = results[:len(self.shared)]
        counts = results[len(self.shared):len(self.shared) + len(states)]
        members = results[len(self.shared) + len(states):]
        stored = {metric.name: {_text(k): _text(v) for k, v in raw.items()}
                  for metric, raw in zip(self.shared, hashes, strict=True)}
        depths = [((queue, state), float(count))
                  for (queue, state, _kind, _key), count in zip(states, counts, strict=True)]
        # Count only workers whose heartbeat key still exists: a crashed worker
        # stays in the set until RQ cleans it up.
        workers = [((queue.name,), float(self.redis.exists(*keys) if keys else 0))
                   for queue, keys in zip(self.queues, members, strict=True)]
        return stored, depths, workers
