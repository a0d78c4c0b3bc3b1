"""What a running dev chose reaches other commands on its data dir, under what the user set."""

from __future__ import annotations

from pathlib import Path

from stb_origin import devenv
from stb_origin.settings import Settings, from_env


def test_commands_on_a_dev_data_dir_follow_its_redis_and_issuer(tmp_path: Path) -> None:
    chosen = Settings(data_dir=tmp_path, redis_url="redis://127.0.0.1:41234/0",
                      public_base_url="http://127.0.0.1:18080", s3_secret_key="hush")
    devenv.write(chosen)
    assert "hush" not in (tmp_path / devenv.FILE_NAME).read_text()

    settings = from_env(devenv.with_dev_choices({"STB_DATA_DIR": str(tmp_path)}))
    assert settings.redis_url == "redis://127.0.0.1:41234/0"
    assert settings.issuer == "http://127.0.0.1:18080"


def test_what_the_user_set_wins(tmp_path: Path) -> None:
    devenv.write(Settings(data_dir=tmp_path, public_base_url="http://127.0.0.1:18080"))
    environ = {"STB_DATA_DIR": str(tmp_path), "STB_PUBLIC_BASE_URL": "https://tv.example.com"}
    assert from_env(devenv.with_dev_choices(environ)).issuer == "https://tv.example.com"


def test_without_a_running_dev_nothing_changes(tmp_path: Path) -> None:
    devenv.write(Settings(data_dir=tmp_path, public_base_url="http://127.0.0.1:18080"))
    devenv.remove(tmp_path)  # as dev does when it stops
    environ = {"STB_DATA_DIR": str(tmp_path)}
    assert devenv.with_dev_choices(environ) == environ
