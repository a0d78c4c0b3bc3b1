"""Settings reach a subprocess as environment variables and come back unchanged."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from stb_origin.settings import Settings, SettingsError, from_env

EVERY_FIELD_SET = Settings(
    data_dir=Path("/srv/stb data"),
    redis_url="redis://10.0.0.5:6380/3",
    database_url="postgresql://stb@db/stb",
    storage_url="s3://media/prefix",
    s3_endpoint="minio:9000",
    s3_access_key="access",
    s3_secret_key="secret",
    s3_region="eu-west-3",
    s3_secure=True,
    segment_seconds=2.5,
    segment_format="ts",
    key_rotation_segments=3,
    x264_preset="ultrafast",
    loudness_normalisation=False,
    x265_preset="superfast",
    hevc=False,
    hevc_min_height=1080,
    uhd_rung=False,
    per_title=False,
    max_upload_bytes=1234567,
    max_source_seconds=99.125,
    probe_timeout_s=7.5,
    transcode_timeout_s=0.1 + 0.2,  # a float whose short str() would lose digits
    chunk_above_s=600.0,
    span_seconds=45.0,
    job_retries=1,
    run_lease_s=7.5,
    reconcile_interval_s=2.5,
    retired_version_keep_s=120.0,
    queue_name="pipeline-x",
    key_encryption_key="a2V5",
    jwt_key_encryption_key="and0",
    jwt_key_activation_delay_s=60,
    jwt_issuer="https://id.example.com",
    jwt_audience="boxes",
    key_uri_base="https://keys.example.com",
    public_base_url="https://tv.example.com",
    worker_grace_s=12.0,
    playlist_max_age_s=6,
    metrics_token="scrape",
    max_devices_per_account=2,
    access_token_ttl_s=60,
    refresh_token_ttl_s=3600,
    device_code_ttl_s=120,
    device_poll_interval_s=2,
    key_requests_per_minute=10,
    cors_origins=("https://a.example", "https://b.example"),
    origin_secrets=("cdn-1", "cdn-2"),
    url_signing_secrets=("sign-1",),
    playback_url_ttl_s=600,
    temp_stale_after_s=90.5,
    live_preset="faster",
    live_window_s=30.5,
    runner_lease_s=7.5,
    runner_max_channels=12,
    max_streams_per_account=2,
    stream_idle_s=300,
    activity_report_interval_s=30,
    sync_cursor_days=7,
    graphql_introspection=True,
    events_heartbeat_s=2.5,
    events_per_device=3,
    events_per_subject=7,
    events_queue=64,
    console_idle_timeout_s=900,
    console_token_ttl_s=120,
    webhooks_allow_private=True,
    webhooks_allow_http=True,
    webhooks_timeout_s=3.5,
    webhooks_max_attempts=4,
    webhooks_max_age_s=600.0,
    webhooks_backoff_s=2.5,
    upload_expires_s=3600,
    uploads_per_user=3,
    webhooks_log_days=7,
)


def test_the_example_sets_every_field() -> None:
    # A new setting must be added above, so that the round trip covers it.
    defaults = Settings()
    same = [f.name for f in dataclasses.fields(Settings)
            if getattr(EVERY_FIELD_SET, f.name) == getattr(defaults, f.name)]
    assert same == []


def test_every_setting_round_trips_through_the_environment() -> None:
    assert from_env(EVERY_FIELD_SET.to_env()) == EVERY_FIELD_SET
    assert from_env(Settings().to_env()) == Settings()


def test_unset_values_override_what_the_parent_environment_had() -> None:
    inherited = {"STB_REDIS_URL": "redis://stale:6379/0", "STB_JWT_ISSUER": "https://old"}
    assert from_env({**inherited, **Settings().to_env()}) == Settings()


@pytest.mark.parametrize("changes", [{"upload_expires_s": 59}, {"uploads_per_user": 0}])
def test_resumable_upload_limits_are_checked(changes: dict[str, int]) -> None:
    with pytest.raises(SettingsError, match="STB_UPLOAD"):
        Settings(**changes)  # type: ignore[arg-type]
