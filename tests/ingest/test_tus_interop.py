"""tus interop with an independent client, tuspy (PyPI): an upload cut by killing
the client mid-way and resumed from another process, through tuspy's own URL
store, gives a byte-identical master and one asset."""

from __future__ import annotations

import hashlib
import io
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import httpx
import pytest
from tusclient import client as tus_client
from tusclient.storage.filestorage import FileStorage

from stb_origin.assets.records import Asset
from stb_origin.services import Services
from tests.support.tus import Tus, master_bytes

MB = 1024 * 1024

# The first client: tuspy with 1 MiB chunks and its URL store, a pause before each
# PATCH so that it is still going when it is killed.
CLIENT = textwrap.dedent("""
    import sys, time
    import requests
    from tusclient import client
    from tusclient.storage.filestorage import FileStorage

    base_url, token, path, store = sys.argv[1:5]
    send = requests.patch
    def slow_patch(*args, **kwargs):
        time.sleep(0.05)
        return send(*args, **kwargs)
    requests.patch = slow_patch
    uploader = client.TusClient(base_url + "/v1/uploads", headers={
        "Authorization": "Bearer " + token}).uploader(
        path, chunk_size=1024 * 1024, store_url=True, url_storage=FileStorage(store),
        metadata={"filename": "match.mp4", "title": "Cup final"})
    uploader.upload()
""")


class _Stream(io.BufferedReader):
    """The file for tuspy in this process: given a path, tuspy opens it once per
    request and never closes it; given a stream, it closes it after reading its
    fingerprint. So a stream whose close waits for the test's."""

    def __init__(self, path: Path) -> None:
        super().__init__(io.FileIO(path))

    def close(self) -> None:
        pass

    def really_close(self) -> None:
        super().close()


@pytest.fixture
def master(tmp_path: Path) -> Path:
    path = tmp_path / "match.mp4"
    path.write_bytes(master_bytes(24 * MB + 321))
    return path


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_a_killed_upload_resumes_from_another_process(api: str, services: Services,
                                                      master: Path, tmp_path: Path) -> None:
    token = services.signer.issue(["assets:write"], subject="editor-1")
    store = tmp_path / "tus-urls.json"
    script = tmp_path / "client.py"
    script.write_text(CLIENT)
    client = subprocess.Popen([sys.executable, str(script), api, token, str(master),
                               str(store)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    tus = Tus(api, token)
    try:
        url = _wait_for_url(store, client)
        _wait_for_offset(tus, url, 6 * MB, client)
    finally:
        os.kill(client.pid, signal.SIGKILL)
        output = client.communicate(timeout=30)[0]
    assert client.returncode == -signal.SIGKILL, output.decode(errors="replace")
    cut_at = int(tus.head(url).headers["upload-offset"])
    assert 6 * MB <= cut_at < master.stat().st_size, "the upload was not cut mid-way"
    with services.db.session() as session:
        assert session.query(Asset).count() == 0

    # Another process (this one), another chunk size, checksums on: tuspy finds the
    # URL in its store by the file's fingerprint and goes on from the server's offset.
    urls, stream = FileStorage(str(store)), _Stream(master)
    try:
        uploader = tus_client.TusClient(api + "/v1/uploads", headers={
            "Authorization": f"Bearer {token}"}).uploader(
            file_stream=stream, chunk_size=5 * MB, store_url=True, url_storage=urls,
            upload_checksum=True)
        assert uploader.url == url and uploader.offset == cut_at
        uploader.upload()
    finally:
        urls.close()
        stream.really_close()

    head = tus.head(url)
    asset_id = head.headers["stb-asset"]
    with services.db.session() as session:
        [asset] = session.query(Asset).all()
    assert (asset.id, asset.title, asset.status) == (asset_id, "Cup final", "queued")
    assert _sha256(services.storage.get_bytes(asset.source_key)) == _sha256(
        master.read_bytes())
    assert services.queue.job_ids == [f"pipeline-{asset_id}-1"]


def _wait_for_url(store: Path, client: subprocess.Popen[bytes]) -> str:
    deadline = time.monotonic() + 30
    while True:
        assert client.poll() is None, client.communicate()[0].decode(errors="replace")
        assert time.monotonic() < deadline, "the client never created its upload"
        if store.exists() and "http" in store.read_text():
            storage = FileStorage(str(store))
            try:
                # tuspy stores None first, then the URL of the upload it created.
                urls = [row["url"] for row in storage._db.all() if row.get("url")]
            finally:
                storage.close()
            if urls:
                return str(urls[0])
        time.sleep(0.02)


def _wait_for_offset(tus: Tus, url: str, at_least: int,
                     client: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while int(tus.head(url).headers["upload-offset"]) < at_least:
        assert client.poll() is None, client.communicate()[0].decode(errors="replace")
        assert time.monotonic() < deadline, "the client sent too little"
        time.sleep(0.01)


def test_tuspy_uploads_a_whole_file_in_one_request(api: str, services: Services,
                                                   master: Path) -> None:
    token = services.signer.issue(["assets:write"])
    stream = _Stream(master)
    try:
        uploader = tus_client.TusClient(api + "/v1/uploads", headers={
            "Authorization": f"Bearer {token}"}).uploader(file_stream=stream, metadata={
                "filename": "whole.mp4"})
        uploader.upload()
    finally:
        stream.really_close()
    head = httpx.head(uploader.url, headers={"Tus-Resumable": "1.0.0",
                                             "Authorization": f"Bearer {token}"})
    with services.db.session() as session:
        asset = session.get(Asset, head.headers["stb-asset"])
        assert asset is not None
    assert _sha256(services.storage.get_bytes(asset.source_key)) == _sha256(
        master.read_bytes())
