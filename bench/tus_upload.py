"""The same master through tus (tuspy, 8 MiB PATCHes) and through a plain upload
(`curl -F file=@master POST /v1/assets`), against one real `stb-origin serve`:
the throughput of each, their ratio, and the server's peak RSS during the tus
upload (VmRSS from /proc, sampled every 20 ms; VmHWM is the process's lifetime
peak, printed too).

    .venv/bin/python bench/tus_upload.py            # 1 GiB
    .venv/bin/python bench/tus_upload.py --gib 2    # the issue's 2 GiB figure

A third row sends the whole file in one PATCH with curl (`curl -X PATCH -T`): what
the protocol costs on the server, apart from tuspy's per-chunk requests. The
master is an MP4 head and filler (accepted and queued; no worker runs), written
to disk once. Storage is the local folder backend (appended file, one rename).
Needs: apt-get install -y redis-server ffmpeg curl; tuspy (the test extras).
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
from common import OUT, machine_facts, warn_if_busy
from servers import Process, require, start_redis, start_uvicorn, stb_env
from tusclient import client as tus_client

from stb_origin import proc
from stb_origin.auth.tokens import load_signer
from stb_origin.migrations import open_database
from stb_origin.settings import Settings

WORK = OUT / "tus_upload"
MIB = 1024 * 1024
CHUNK = 8 * MIB
SAMPLE_S = 0.02


def mp4_head() -> bytes:
    """The first bytes of a real (tiny) MP4, what the container sniff looks at."""
    path = WORK / "head.mp4"
    proc.run(["ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-y",
              "-f", "lavfi", "-i", "testsrc2=size=320x180:rate=30:duration=1",
              "-c:v", "libx264", "-preset", "ultrafast", "-movflags", "+faststart",
              str(path)], timeout=60)
    return path.read_bytes()[:64 * 1024]


def write_master(path: Path, size: int, head: bytes) -> None:
    filler = bytes(MIB)
    with open(path, "wb") as out:
        out.write(head)
        left = size - len(head)
        while left > 0:
            left -= out.write(filler[:min(MIB, left)])


def status_kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"no {field} in /proc/{pid}/status")


class RssSampler(threading.Thread):
    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.pid = pid
        self.peak_kib = 0
        self.stopping = threading.Event()

    def run(self) -> None:
        while not self.stopping.is_set():
            self.peak_kib = max(self.peak_kib, status_kib(self.pid, "VmRSS"))
            time.sleep(SAMPLE_S)

    def stop(self) -> int:
        self.stopping.set()
        self.join(timeout=5)
        return self.peak_kib


def plain(base_url: str, token: str, master: Path) -> float:
    curl = require("curl", "apt-get install -y curl")
    started = time.monotonic()
    out = subprocess.run([curl, "-sS", "-o", "/dev/null", "-w", "%{http_code}",
                          "-H", f"Authorization: Bearer {token}",
                          "-F", f"file=@{master}", base_url + "/v1/assets"],
                         capture_output=True, text=True, check=True, timeout=3600)
    if out.stdout != "202":
        raise RuntimeError(f"plain upload answered {out.stdout}: {out.stderr}")
    return time.monotonic() - started


def tuspy(base_url: str, token: str, master: Path) -> float:
    started = time.monotonic()
    uploader = tus_client.TusClient(base_url + "/v1/uploads", headers={
        "Authorization": f"Bearer {token}"}).uploader(str(master), chunk_size=CHUNK,
                                                      metadata={"filename": "master.mp4"})
    uploader.upload()
    seconds = time.monotonic() - started
    finished(base_url, token, uploader.url)
    return seconds


def curl_patch(base_url: str, token: str, master: Path) -> float:
    curl = require("curl", "apt-get install -y curl")
    auth = {"Authorization": f"Bearer {token}", "Tus-Resumable": "1.0.0"}
    started = time.monotonic()
    created = httpx.post(base_url + "/v1/uploads", headers={
        **auth, "Upload-Length": str(master.stat().st_size)})
    url = base_url + created.headers["location"]
    out = subprocess.run([curl, "-sS", "-o", "/dev/null", "-w", "%{http_code}", "-X", "PATCH",
                          "-T", str(master), "-H", f"Authorization: Bearer {token}",
                          "-H", "Tus-Resumable: 1.0.0", "-H", "Upload-Offset: 0",
                          "-H", "Content-Type: application/offset+octet-stream", url],
                         capture_output=True, text=True, check=True, timeout=3600)
    if out.stdout != "204":
        raise RuntimeError(f"the PATCH answered {out.stdout}: {out.stderr}")
    seconds = time.monotonic() - started
    finished(base_url, token, url)
    return seconds


def finished(base_url: str, token: str, url: str) -> None:
    head = httpx.head(url, headers={"Authorization": f"Bearer {token}",
                                    "Tus-Resumable": "1.0.0"})
    if "stb-asset" not in head.headers:
        raise RuntimeError(f"the upload did not become an asset: {head.headers}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--gib", type=float, default=1.0, help="master size in GiB (1 or 2)")
    args = parser.parse_args()
    if not 0 < args.gib <= 8:
        parser.error("--gib must be in (0, 8]")
    print(machine_facts())
    warn_if_busy()
    shutil.rmtree(WORK, ignore_errors=True)
    WORK.mkdir(parents=True)
    size = int(args.gib * 1024**3)
    master = WORK / "master.mp4"
    head = mp4_head()
    write_master(master, size, head)
    data = WORK / "data"
    redis, redis_url = start_redis(WORK / "redis")
    processes: list[Process] = [redis]
    try:
        server, port = start_uvicorn(stb_env({
            "STB_DATA_DIR": str(data), "STB_REDIS_URL": redis_url,
            "STB_RECONCILE_INTERVAL_S": "0"}), WORK / "logs", "serve")
        processes.append(server)
        base_url = f"http://127.0.0.1:{port}"
        settings = Settings(data_dir=data)
        token = load_signer(settings, open_database(settings.resolved_database_url)).issue(
            ["assets:write"], subject="bench", ttl_s=3600)
        warm = WORK / "warm.mp4"
        write_master(warm, 4 * MIB, head)
        plain(base_url, token, warm)  # imports and allocations every upload uses
        tuspy(base_url, token, warm)

        seconds_plain = plain(base_url, token, master)
        baseline_kib = status_kib(server.pid, "VmRSS")
        sampler = RssSampler(server.pid)
        sampler.start()
        seconds_tus = tuspy(base_url, token, master)
        peak_kib = sampler.stop()
        seconds_patch = curl_patch(base_url, token, master)
        hwm_kib = status_kib(server.pid, "VmHWM")
    finally:
        for process in reversed(processes):
            process.stop()
        shutil.rmtree(WORK, ignore_errors=True)

    mib = size / MIB
    print(f"\n{args.gib:g} GiB master, one `stb-origin serve` (uvicorn), folder storage,"
          f" loopback")
    rows = [("plain POST /v1/assets (curl -F)", seconds_plain),
            ("tus, tuspy, 8 MiB PATCHes", seconds_tus),
            ("tus, one PATCH (curl -X PATCH -T)", seconds_patch)]
    for label, seconds in rows:
        print(f"  {label:38} {seconds:6.1f} s  {mib / seconds:6.0f} MiB/s"
              f"  x{seconds_plain / seconds:.2f} of plain")
    print(f"  server RSS during the tus upload: baseline {baseline_kib / 1024:.0f} MiB,"
          f" peak {peak_kib / 1024:.0f} MiB ({(peak_kib - baseline_kib) / 1024:+.0f} MiB);"
          f" VmHWM over the whole run {hwm_kib / 1024:.0f} MiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
