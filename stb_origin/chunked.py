"""The chunked path of the pipeline: a long master's spans encoded by any idle worker.

The run that holds the asset (``pipeline.py``) plans the spans
(``transcode/spans.py``), puts their numbers on a to-do list in Redis and queues
helper jobs; then it encodes the audio, whole, and works through the list
itself like every helper. A worker takes a span by popping it and holding a
claim (a Redis key that it renews while it encodes); it stores the encoded span
under ``spans/{asset}/{plan}/{span}/`` with a marker written last. The run waits
until every span has its marker, putting back on the list any span whose claim
lapsed (its worker died): only that span is encoded again. Stored spans are
named by the plan (source, ladder, spans, format), so when the run's own worker
dies, the next attempt reuses every span already stored. Then the run stitches
the spans (``transcode/stitch.py``) and packages them as usual.

Redis only coordinates: losing it loses no stored span, and the run's lease on
the asset (``assets.runs``) still decides which run may publish.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import logging
import secrets
import shutil
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from redis import Redis
from rq import Queue

from stb_origin.assets import runs
from stb_origin.observability import metrics
from stb_origin.queues import pipeline_queue
from stb_origin.services import Services
from stb_origin.storage import layout
from stb_origin.storage.base import ObjectNotFound, guess_content_type
from stb_origin.transcode import Ladder, SourceInfo, probe
from stb_origin.transcode.run import finish, transcode_audio, transcode_span
from stb_origin.transcode.spans import Span, plan_spans
from stb_origin.transcode.stitch import stitch

log = logging.getLogger("stb_origin.chunked")

PLAN_TTL_S = 24 * 3600
POLL_S = 0.5
MAX_HELPERS = 32
DONE_MARKER = "done"

# Pop a span and claim it in one step: a span is always on the list, claimed,
# or stored, never in between (the run would take it for a dead worker's).
_TAKE = """
local index = redis.call('LPOP', KEYS[1])
if index then
  redis.call('SET', KEYS[2] .. index, ARGV[1], 'PX', ARGV[2])
end
return index
"""


@dataclass(frozen=True)
class Plan:
    asset_id: str
    token: int  # the run's fencing token: helpers of a superseded run stop
    source_key: str
    ladder: Ladder
    spans: tuple[Span, ...]
    segment_format: str

    @property
    def name(self) -> str:
        """What names its stored spans: the same for every attempt of the same work."""
        work = {"source": self.source_key, "ladder": self.ladder.to_json(),
                "spans": [asdict(s) for s in self.spans], "format": self.segment_format}
        return hashlib.sha256(json.dumps(work, sort_keys=True).encode()).hexdigest()[:16]

    def to_json(self) -> str:
        return json.dumps({"asset_id": self.asset_id, "token": self.token,
                           "source_key": self.source_key, "ladder": self.ladder.to_json(),
                           "spans": [asdict(s) for s in self.spans],
                           "segment_format": self.segment_format})

    @classmethod
    def from_json(cls, text: str) -> Plan:
        data: dict[str, Any] = json.loads(text)
        return cls(asset_id=data["asset_id"], token=data["token"],
                   source_key=data["source_key"], ladder=Ladder.from_json(data["ladder"]),
                   spans=tuple(Span(**s) for s in data["spans"]),
                   segment_format=data["segment_format"])


def worth_it(source: SourceInfo, ladder: Ladder, services: Services) -> bool:
    """Long enough to share out, and with video to share (audio is encoded whole)."""
    limit = services.settings.chunk_above_s
    return bool(ladder.renditions) and limit > 0 and source.duration_s >= limit


def transcode(services: Services, run: runs.Run, source_path: Path, source: SourceInfo,
              ladder: Ladder, out_dir: Path, on_progress: Callable[[float], None],
              audio_files: Sequence[Path] = (),
              measure: Callable[[Ladder], Ladder] = lambda ladder: ladder) -> None:
    """What ``transcode.transcode`` does, with the spans' video encoded by any worker.
    ``on_progress`` also raises Superseded when the run lost its asset; audio_files:
    sidecar audio, encoded with the master's audio by this run; ``measure``: the
    ladder with its audio's loudness measured, done here once the helpers have their
    spans (the video does not need it)."""
    settings = services.settings
    plan = Plan(run.asset_id, run.token, run.source_key,
                ladder, plan_spans(ladder, source.duration_s, settings.span_seconds),
                settings.segment_format)
    stored = _stored(services, plan)
    todo = [s.index for s in plan.spans if s.index not in stored]
    keys = _Keys(plan.asset_id, plan.token)
    with services.redis.pipeline() as pipe:
        pipe.delete(keys.todo)
        if todo:
            pipe.rpush(keys.todo, *todo)
        pipe.set(keys.plan, plan.to_json(), ex=PLAN_TTL_S)
        pipe.expire(keys.todo, PLAN_TTL_S)
        pipe.execute()
    _queue_helpers(pipeline_queue(services.redis, settings), plan, len(todo) - 1,
                   int(settings.transcode_timeout_s))
    log.info("long master in spans", extra={"spans": len(plan.spans), "stored": len(stored)})

    transcode_audio(source_path, source, measure(ladder), out_dir, settings, audio_files)
    spans_dir = out_dir.parent / "spans"
    while True:
        done = len(stored) / len(plan.spans)
        on_progress(done)
        if len(stored) == len(plan.spans):
            break
        _requeue_lost(services, plan)
        if not work_through(services, plan, source_path, source, spans_dir, "run",
                            functools.partial(on_progress, done)):
            time.sleep(POLL_S)
        stored = _stored(services, plan)

    dirs = [_fetched(services, plan, span, spans_dir) for span in plan.spans]
    stitch(dirs, plan.spans, ladder, out_dir)
    finish(out_dir, ladder, settings, source.duration_s)
    services.redis.delete(keys.todo, keys.plan)


def forget(services: Services, asset_id: str) -> None:
    """Remove the asset's stored spans: it is published, or deleted."""
    services.storage.delete_prefix(layout.spans_prefix(asset_id))


def help_with_spans(services: Services, asset_id: str, token: int) -> int:
    """The helper job: encode spans of the run's list until it is empty; how many."""
    keys = _Keys(asset_id, token)
    raw = services.redis.get(keys.plan)
    if raw is None or not runs.holds(services.db, asset_id, token):
        return 0  # the run finished, failed or was superseded
    if not services.redis.llen(keys.todo):
        # Every span taken (the run queued a helper per span, not knowing how many
        # workers there are): no need to fetch the master. A span whose worker dies
        # later goes back on the list, and the run itself works through it.
        return 0
    plan = Plan.from_json(raw.decode() if isinstance(raw, bytes) else raw)
    settings = services.settings
    # Named by the asset, as the run's own: the worker's sweeps know whose it is.
    work = settings.work_dir / f"{asset_id}-{secrets.token_hex(4)}"
    work.mkdir(parents=True)
    try:
        source_path = work / ("source" + Path(plan.source_key).suffix)
        services.storage.download(plan.source_key, source_path)
        source = probe(source_path, settings)

        def check() -> None:
            if not runs.holds(services.db, asset_id, token):
                raise runs.Superseded(f"run {token} of {asset_id} is over")

        return work_through(services, plan, source_path, source, work / "spans", "helper",
                            check)
    except runs.Superseded:
        return 0
    finally:
        shutil.rmtree(work, ignore_errors=True)


def work_through(services: Services, plan: Plan, source_path: Path, source: SourceInfo,
                 spans_dir: Path, by: str, check: Callable[[], None]) -> int:
    """Take spans off the list and encode and store each; how many."""
    keys = _Keys(plan.asset_id, plan.token)
    take = services.redis.register_script(_TAKE)
    holder = secrets.token_hex(8)
    # A claim not renewed for half a run's lease is a dead worker's: noticed as
    # soon as the run would be (assets.runs).
    ttl_ms = max(2000, int(services.settings.run_lease_s * 500))
    count = 0
    while True:
        check()
        taken = take(keys=[keys.todo, keys.claim_prefix], args=[holder, ttl_ms])
        if taken is None:
            return count
        span = plan.spans[int(taken)]
        with _claimed(services.redis, keys.claim(span.index), holder, ttl_ms):
            span_dir = spans_dir / str(span.index)
            transcode_span(source_path, source, plan.ladder, span, span_dir,
                           services.settings)
            _store(services, plan, span, span_dir)
        metrics.SPANS_ENCODED.inc(services.redis, by=by)
        count += 1


@dataclass(frozen=True)
class _Keys:
    asset_id: str
    token: int

    @property
    def base(self) -> str:
        return f"stb:spans:{self.asset_id}:{self.token}"

    @property
    def todo(self) -> str:
        return self.base + ":todo"

    @property
    def plan(self) -> str:
        return self.base + ":plan"

    @property
    def claim_prefix(self) -> str:
        return self.base + ":claim:"

    def claim(self, index: int) -> str:
        return f"{self.claim_prefix}{index}"


def _queue_helpers(queue: Queue, plan: Plan, count: int, timeout_s: int) -> None:
    for n in range(min(count, MAX_HELPERS)):
        queue.enqueue("stb_origin.workers.jobs.help_with_spans", plan.asset_id, plan.token,
                      job_id=f"spans-{plan.asset_id}-{plan.token}-{n}",
                      job_timeout=timeout_s, result_ttl=3600, failure_ttl=24 * 3600)


@contextlib.contextmanager
def _claimed(redis: Redis, key: str, holder: str, ttl_ms: int) -> Iterator[None]:
    """Renew the claim from a thread while the span is encoded; then let it go."""
    stop = threading.Event()

    def renew() -> None:
        while not stop.wait(ttl_ms / 4000):
            with contextlib.suppress(Exception):  # Redis away: the claim may lapse
                redis.set(key, holder, px=ttl_ms)

    thread = threading.Thread(target=renew, name=f"claim-{key}", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=5)
        with contextlib.suppress(Exception):
            redis.delete(key)


def _requeue_lost(services: Services, plan: Plan) -> None:
    """Put back the spans neither listed, claimed nor stored: their worker died."""
    redis, keys = services.redis, _Keys(plan.asset_id, plan.token)
    listed = {int(i) for i in redis.lrange(keys.todo, 0, -1)}
    for span in plan.spans:
        if span.index in listed or redis.exists(keys.claim(span.index)):
            continue
        # Asked after the claim: a worker stores its span, then lets the claim go.
        if _is_stored(services, plan, span.index):
            continue
        redis.rpush(keys.todo, span.index)
        metrics.SPANS_REQUEUED.inc(redis)
        log.warning("span put back: its worker stopped", extra={"span": span.index})


def _prefix(plan: Plan, index: int | None = None) -> str:
    base = f"{layout.spans_prefix(plan.asset_id)}{plan.name}/"
    return base if index is None else f"{base}{index}/"


def _stored(services: Services, plan: Plan) -> set[int]:
    """The spans whose marker is in storage."""
    base = _prefix(plan)
    return {int(key[len(base):].split("/", 1)[0])
            for key in services.storage.list_keys(base) if key.endswith("/" + DONE_MARKER)}


def _is_stored(services: Services, plan: Plan, index: int) -> bool:
    try:
        services.storage.stat(_prefix(plan, index) + DONE_MARKER)
    except ObjectNotFound:
        return False
    return True


def _store(services: Services, plan: Plan, span: Span, span_dir: Path) -> None:
    prefix = _prefix(plan, span.index)
    for path in sorted(span_dir.rglob("*")):
        if path.is_file():
            key = prefix + path.relative_to(span_dir).as_posix()
            services.storage.put_file(key, path, guess_content_type(key))
    services.storage.put_bytes(prefix + DONE_MARKER, b"", "text/plain")


def _fetched(services: Services, plan: Plan, span: Span, spans_dir: Path) -> Path:
    """The span's folder: encoded here already, or downloaded from storage."""
    span_dir = spans_dir / str(span.index)
    if span_dir.is_dir():
        return span_dir
    prefix = _prefix(plan, span.index)
    for key in services.storage.list_keys(prefix):
        name = key[len(prefix):]
        if name != DONE_MARKER:
            target = span_dir / name
            target.parent.mkdir(parents=True, exist_ok=True)
            services.storage.download(key, target)
    return span_dir
