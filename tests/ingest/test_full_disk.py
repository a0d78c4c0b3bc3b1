"""An upload that does not fit on the disk: 507 insufficient_storage, nothing left
behind, and the server goes on serving. On a real 8 MB tmpfs."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from stb_origin.services import Services
from stb_origin.settings import Settings
from tests.support.media import make_clip
from tests.support.tmpfs import mounted_tmpfs

MB = 1024 * 1024


@pytest.fixture
def settings(settings: Settings, tmp_path: Path) -> Iterator[Settings]:
    """Uploads and storage on an 8 MB disk; the database stays on the roomy one."""
    with mounted_tmpfs(tmp_path / "small-disk", "8m") as disk:
        yield settings.with_(data_dir=disk, database_url=settings.resolved_database_url)


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    return make_clip(tmp_path_factory.mktemp("media") / "clip.mp4", seconds=1,
                     size="320x180").read_bytes()


def _upload(api: str, token: str, content: bytes) -> httpx.Response:
    return httpx.post(f"{api}/v1/assets", files={"file": ("big.mp4", content)},
                      headers={"Authorization": f"Bearer {token}"}, timeout=60)


def _files_on(disk: Path) -> list[str]:
    return sorted(str(p.relative_to(disk)) for p in disk.rglob("*") if p.is_file()
                  and p.parent != disk / "secrets")


@pytest.mark.parametrize("padding_mb, where", [
    (12, "the upload's own file fills the disk"),
    (5, "the upload fits, its copy into storage does not"),
])
def test_an_upload_bigger_than_the_free_space_is_507_and_leaves_nothing(
        api: str, services: Services, clip: bytes, padding_mb: int, where: str) -> None:
    token = services.signer.issue(["assets:write", "assets:read"])
    disk = services.settings.data_dir

    response = _upload(api, token, clip + b"\0" * padding_mb * MB)

    assert response.status_code == 507, (where, response.text)
    error = response.json()["error"]
    assert error["code"] == "insufficient_storage"
    assert "out of storage space" in error["message"]
    assert _files_on(disk) == [], where
    assert httpx.get(f"{api}/v1/assets", headers={"Authorization": f"Bearer {token}"},
                     timeout=10).json()["items"] == []
    # Still serving, and with the space back, an upload that fits goes through.
    assert httpx.get(f"{api}/healthz", timeout=10).status_code == 200
    assert _upload(api, token, clip).status_code == 202
