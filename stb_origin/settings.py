"""Settings, read once from the environment (``STB_*``) and passed down.

Every setting has an embedded default so that a laptop needs no set-up.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any


class SettingsError(ValueError):
    pass


SEGMENT_FORMATS = ("fmp4", "ts")


@dataclass(frozen=True)
class Settings:
    data_dir: Path = Path("./data")
    redis_url: str | None = None
    database_url: str | None = None
    storage_url: str | None = None
    s3_endpoint: str = "127.0.0.1:9000"
    s3_access_key: str = ""
    s3_secret_key: str = field(default="", repr=False)
    s3_region: str = "us-east-1"
    s3_secure: bool = False
    segment_seconds: float = 4.0
    segment_format: str = "fmp4"
    key_rotation_segments: int = 10
    x264_preset: str = "veryfast"
    # Two-pass loudnorm of every audio rendition to EBU R128 (transcode/loudness.py);
    # off: the audio keeps the level it was mastered at.
    loudness_normalisation: bool = True
    # x265 is far dearer than x264: at "fast" the 1080p and 720p HEVC rungs take
    # about 2.2x the CPU of the whole H.264 ladder at veryfast (bench/codec_cost.py).
    x265_preset: str = "fast"
    # An HEVC ladder beside the H.264 one (fMP4 only: HEVC is never put in MPEG-TS,
    # Apple's HLS authoring spec 1.5). False: H.264 only, HDR masters tone-mapped.
    hevc: bool = True
    # The rungs at least this many lines high (as a landscape box) also get HEVC:
    # HEVC's bits saved are most where bit rates are highest. 0: every rung.
    # HDR masters get HEVC on every rung whatever this says, so an HDR box never
    # has to leave HDR to step down.
    hevc_min_height: int = 720
    # A 2160p rung, HEVC only, for sources that are 4K (H.264 stops at 1080p).
    uhd_rung: bool = True
    # Per-title ladders: a quick probe encode of the source sets each rung's bit rate
    # under its cap (transcode/complexity.py); off, every title gets the caps.
    per_title: bool = True
    max_upload_bytes: int = 50 * 1024**3
    max_source_seconds: float = 6 * 3600.0
    probe_timeout_s: float = 60.0
    transcode_timeout_s: float = 6 * 3600.0
    # Masters at least this long are cut into spans that any idle worker encodes
    # (transcode/spans.py); 0 turns it off. Below it one run is as quick: a span
    # costs its worker a source download, a seek and an ffmpeg start (a few
    # seconds), and a 5-minute master is a few minutes' work on one worker.
    chunk_above_s: float = 300.0
    # About how long each span is, in whole segments. Shorter spans leave less for
    # one worker to finish alone at the end (bench/chunked.py); each costs a seek
    # and an ffmpeg start, about 1 % of a 30 s span's encode.
    span_seconds: float = 30.0
    job_retries: int = 3
    # A run that has not said it is alive for this long is dead (its worker was
    # killed): the reconciler gives its asset the next attempt.
    run_lease_s: float = 60.0
    # How often the reconciler (in the HTTP server) compares the database with the
    # queue; 0 turns it off (tests that drive it themselves).
    reconcile_interval_s: float = 10.0
    # How long a replaced version of an asset is kept: longer than a viewer can
    # keep playing a playlist fetched just before the switch (a film, paused),
    # plus the playlists' max-age and the CDN's cache time.
    retired_version_keep_s: float = 6 * 3600.0
    queue_name: str = "pipeline"
    # base64 of 32 bytes; unset means a key file generated under data_dir/secrets
    key_encryption_key: str | None = field(default=None, repr=False)
    # base64 of 32 bytes wrapping the token-signing keys (kept apart from the content
    # KEK so that workers, which never sign, cannot mint tokens); unset: a key file
    jwt_key_encryption_key: str | None = field(default=None, repr=False)
    # a new signing key is published (JWKS) this long before it signs: verifiers
    # that cache the JWKS have it by then
    jwt_key_activation_delay_s: int = 900
    # `iss` of tokens and the authorization server's issuer (RFC 8414, RFC 9068):
    # unset means public_base_url, as the metadata document requires
    jwt_issuer: str | None = None
    jwt_audience: str = "stb-origin"
    # prefix for key URIs written into playlists; "" means same host as the playlist
    key_uri_base: str = ""
    public_base_url: str = "http://127.0.0.1:8000"
    # how long a stopping worker lets its running job finish before requeueing it;
    # orchestrators must wait longer (deploy/ gives 1800 s)
    worker_grace_s: float = 1740.0
    playlist_max_age_s: int = 30  # Cache-Control max-age (and stale-while-revalidate) of playlists
    # bearer token Prometheus sends to /metrics; unset: loopback clients only
    metrics_token: str | None = field(default=None, repr=False)
    max_devices_per_account: int = 5  # active devices; registering one more answers 409
    # --- identity (OAuth 2.0 / JWT) ---
    access_token_ttl_s: int = 600  # short: a revoked grant stops working within this
    refresh_token_ttl_s: int = 30 * 86400
    device_code_ttl_s: int = 600  # RFC 8628 expires_in
    device_poll_interval_s: int = 5  # RFC 8628 interval
    # --- key and playback protection ---
    key_requests_per_minute: int = 120  # per device; past it /keys answers 429
    # web-player origins allowed to send credentials to /keys (CORS); empty: none
    cors_origins: tuple[str, ...] = ()
    # X-Origin-Secret values accepted from the CDN (first is current, the rest
    # still accepted while rotating); empty: the header is not required
    origin_secrets: tuple[str, ...] = field(default=(), repr=False)
    # HMAC secrets for signed playback URLs (first signs, all verify); empty: off
    url_signing_secrets: tuple[str, ...] = field(default=(), repr=False)
    playback_url_ttl_s: int = 6 * 3600
    # A temporary file (partial upload, storage temporary file, unfinished S3
    # multipart upload) nobody has written to for this long is a dead process's and
    # is swept. Live writers touch theirs far more often: an upload writes every MiB
    # received and touches its file every minute while storage copies it; a storage
    # copy writes all the time. An hour without a byte is a dead client or process.
    temp_stale_after_s: float = 3600.0
    # --- live channels ---
    # x264 preset of live ladders: each channel must encode in real time, always.
    live_preset: str = "veryfast"
    # How much a live playlist lists: hls.js starts 3 target durations from its end.
    live_window_s: float = 60.0
    # A channel runner that stops renewing its channels' leases loses them after
    # this long; another runner takes them over at its next look (every second).
    runner_lease_s: float = 5.0
    # How many channels one runner takes at most (0: a fair share of them all).
    runner_max_channels: int = 0
    # --- offline sync ---
    # A box's sync cursor stays good this long; the change log keeps a day more.
    sync_cursor_days: int = 30
    # --- GraphQL ---
    # The schema is public in the source; off, a probe learns no more than it asks.
    graphql_introspection: bool = False
    # --- activity and concurrent streams ---
    # Boxes of one account playing at once, checked at key delivery (drm.streams);
    # 0: no limit.
    max_streams_per_account: int = 4
    # A box whose last key fetch (or progress report) is this old no longer plays:
    # players fetch a key at each rotation, and a live channel rotates every 600 s
    # by default, so two of its periods.
    stream_idle_s: int = 1200
    # At most one progress (and one stop) report per box and item in this many seconds.
    activity_report_interval_s: int = 10
    # --- real-time events (GET /v1/events) ---
    # A heartbeat (WebSocket message, SSE comment) when nothing else was sent for this long.
    events_heartbeat_s: float = 15.0
    # Open event connections at once, across every server: per device, per token subject.
    events_per_device: int = 2
    events_per_subject: int = 50
    # Events waiting for one connection; a client that lets more pile up is dropped.
    events_queue: int = 256
    # --- the console (/console) ---
    # A signed-in console session with no request for this long is ended.
    console_idle_timeout_s: int = 1800
    # Lifetime of the access tokens the console's pages get (renewed before expiry).
    console_token_ttl_s: int = 300
    # --- resumable (tus) uploads ---
    # An unfinished upload nobody has written to for this long expires and its bytes
    # are deleted; a finished one's record (HEAD names its asset) goes after as long.
    upload_expires_s: int = 86400
    # Unfinished, unexpired uploads one user may have at once.
    uploads_per_user: int = 10
    # --- webhooks ---
    # Targets on private, loopback, link-local, ... addresses (SSRF); on under
    # `stb-origin dev`, where receivers run on the laptop.
    webhooks_allow_private: bool = False
    # http:// targets (the body and its signature in the clear); on under `stb-origin dev`.
    webhooks_allow_http: bool = False
    # One delivery attempt's HTTP call, connect to last header byte.
    webhooks_timeout_s: float = 10.0
    # A delivery gives up after this many attempts, or once its next one would come
    # this long after its first.
    webhooks_max_attempts: int = 10
    webhooks_max_age_s: float = 24 * 3600.0
    # The wait before the first retry; each one after doubles it (with jitter, at most 1 h).
    webhooks_backoff_s: float = 10.0
    # Finished deliveries (delivered or given up) stay in the delivery log this long.
    webhooks_log_days: int = 30

    def __post_init__(self) -> None:
        if self.segment_format not in SEGMENT_FORMATS:
            raise SettingsError(
                f"STB_SEGMENT_FORMAT must be one of {', '.join(SEGMENT_FORMATS)},"
                f" not {self.segment_format!r}"
            )
        if not 1.0 <= self.segment_seconds <= 20.0:
            raise SettingsError("STB_SEGMENT_SECONDS must be between 1 and 20")
        if self.key_rotation_segments < 1:
            raise SettingsError("STB_KEY_ROTATION_SEGMENTS must be at least 1")
        if self.span_seconds < self.segment_seconds:
            raise SettingsError("STB_SPAN_SECONDS must be at least STB_SEGMENT_SECONDS")
        if self.hevc_min_height < 0:
            raise SettingsError("STB_HEVC_MIN_HEIGHT must be 0 or more")
        if self.temp_stale_after_s <= 0:
            raise SettingsError("STB_TEMP_STALE_AFTER_S must be positive")
        if self.live_window_s < 6:
            raise SettingsError("STB_LIVE_WINDOW_S must be at least 6")
        if self.runner_lease_s < 1:
            raise SettingsError("STB_RUNNER_LEASE_S must be at least 1")
        if self.sync_cursor_days < 1:
            raise SettingsError("STB_SYNC_CURSOR_DAYS must be at least 1")
        if self.max_streams_per_account < 0:
            raise SettingsError("STB_MAX_STREAMS_PER_ACCOUNT must be 0 (no limit) or more")
        if self.stream_idle_s < 1:
            raise SettingsError("STB_STREAM_IDLE_S must be at least 1")
        if self.activity_report_interval_s < 1:
            raise SettingsError("STB_ACTIVITY_REPORT_INTERVAL_S must be at least 1")
        if self.events_heartbeat_s <= 0:
            raise SettingsError("STB_EVENTS_HEARTBEAT_S must be positive")
        if min(self.events_per_device, self.events_per_subject, self.events_queue) < 1:
            raise SettingsError("STB_EVENTS_PER_DEVICE, STB_EVENTS_PER_SUBJECT and"
                                " STB_EVENTS_QUEUE must be at least 1")
        if min(self.console_idle_timeout_s, self.console_token_ttl_s) < 60:
            raise SettingsError("STB_CONSOLE_IDLE_TIMEOUT_S and STB_CONSOLE_TOKEN_TTL_S must"
                                " be at least 60")
        if self.upload_expires_s < 60 or self.uploads_per_user < 1:
            raise SettingsError("STB_UPLOAD_EXPIRES_S must be at least 60 and"
                                " STB_UPLOADS_PER_USER at least 1")
        if not 0 < self.webhooks_timeout_s <= 60:
            raise SettingsError("STB_WEBHOOKS_TIMEOUT_S must be above 0 and at most 60")
        if self.webhooks_max_attempts < 1:
            raise SettingsError("STB_WEBHOOKS_MAX_ATTEMPTS must be at least 1")
        if self.webhooks_max_age_s <= 0 or self.webhooks_backoff_s <= 0:
            raise SettingsError("STB_WEBHOOKS_MAX_AGE_S and STB_WEBHOOKS_BACKOFF_S must be"
                                " positive")
        if self.webhooks_log_days < 1:
            raise SettingsError("STB_WEBHOOKS_LOG_DAYS must be at least 1")

    # Derived values: embedded defaults under the data dir.
    @property
    def resolved_database_url(self) -> str:
        return self.database_url or f"sqlite:///{(self.data_dir / 'stb.db').resolve()}"

    @property
    def resolved_storage_url(self) -> str:
        return self.storage_url or (self.data_dir / "storage").resolve().as_uri()

    @property
    def issuer(self) -> str:
        return (self.jwt_issuer or self.public_base_url).rstrip("/")

    @property
    def secrets_dir(self) -> Path:
        return self.data_dir / "secrets"

    @property
    def work_dir(self) -> Path:
        return self.data_dir / "work"

    def with_(self, **changes: Any) -> Settings:
        return replace(self, **changes)

    def to_env(self) -> dict[str, str]:
        """Every setting as the ``STB_*`` variable ``from_env`` reads back to an equal
        object: the one way settings reach a subprocess. Unset values are "" so that
        they override a stale variable inherited from the parent's environment."""
        return {_env_name(name): _to_text(getattr(self, name))
                for name in self.__dataclass_fields__}


def _env_name(field_name: str) -> str:
    return "STB_" + field_name.upper()


def _to_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, tuple):
        return ",".join(value)
    # repr keeps every digit of a float; str(Path) is the path as given
    return repr(value) if isinstance(value, float) else str(value)


def _list(value: str) -> tuple[str, ...]:
    return tuple(item.strip() for item in value.split(",") if item.strip())


def _bool(value: str) -> bool:
    lowered = value.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"expected a boolean, got {value!r}")


_CASTS: dict[str, Any] = {
    "data_dir": Path,
    "s3_secure": _bool,
    "loudness_normalisation": _bool,
    "per_title": _bool,
    "segment_seconds": float,
    "key_rotation_segments": int,
    "hevc": _bool,
    "hevc_min_height": int,
    "uhd_rung": _bool,
    "max_upload_bytes": int,
    "max_source_seconds": float,
    "probe_timeout_s": float,
    "transcode_timeout_s": float,
    "chunk_above_s": float,
    "span_seconds": float,
    "job_retries": int,
    "run_lease_s": float,
    "reconcile_interval_s": float,
    "retired_version_keep_s": float,
    "jwt_key_activation_delay_s": int,
    "playlist_max_age_s": int,
    "worker_grace_s": float,
    "max_devices_per_account": int,
    "access_token_ttl_s": int,
    "refresh_token_ttl_s": int,
    "device_code_ttl_s": int,
    "device_poll_interval_s": int,
    "key_requests_per_minute": int,
    "cors_origins": _list,
    "origin_secrets": _list,
    "url_signing_secrets": _list,
    "playback_url_ttl_s": int,
    "temp_stale_after_s": float,
    "live_window_s": float,
    "runner_lease_s": float,
    "runner_max_channels": int,
    "sync_cursor_days": int,
    "graphql_introspection": _bool,
    "max_streams_per_account": int,
    "stream_idle_s": int,
    "activity_report_interval_s": int,
    "events_heartbeat_s": float,
    "events_per_device": int,
    "events_per_subject": int,
    "events_queue": int,
    "console_idle_timeout_s": int,
    "console_token_ttl_s": int,
    "upload_expires_s": int,
    "uploads_per_user": int,
    "webhooks_allow_private": _bool,
    "webhooks_allow_http": _bool,
    "webhooks_timeout_s": float,
    "webhooks_max_attempts": int,
    "webhooks_max_age_s": float,
    "webhooks_backoff_s": float,
    "webhooks_log_days": int,
}


def from_env(environ: Mapping[str, str] | None = None) -> Settings:
    env = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    for name in Settings.__dataclass_fields__:
        raw = env.get(_env_name(name))
        if raw is None or raw == "":
            continue
        cast = _CASTS.get(name, str)
        try:
            values[name] = cast(raw)
        except ValueError as exc:
            raise SettingsError(f"{_env_name(name)}: {exc}") from None
    return Settings(**values)
