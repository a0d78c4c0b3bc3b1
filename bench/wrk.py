"""wrk on loopback, with its figures (requests/s, p50/p99, errors) as one JSON line."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from common import OUT
from servers import require

SCRIPT = OUT / "wrk" / "bench.lua"
WRK_TIMEOUT_S = 5

# Prints the figures as one JSON line; "issued" is how many requests the script
# sent, to tell whether a cold list ran out and started over (warm again).
WRK_SCRIPT = r"""
paths = {}
issued = 0
local threads = {}

function setup(thread)
    table.insert(threads, thread)
end

function init(args)
    if args[1] then
        for line in io.lines(args[1]) do paths[#paths + 1] = line end
    end
    -- A body to POST (bench/catalog_page.py's GraphQL query), else GET.
    local body_file = os.getenv("WRK_BODY_FILE")
    if body_file then
        local f = io.open(body_file, "rb")
        wrk.body = f:read("*a")
        f:close()
        wrk.method = "POST"
    end
end

function request()
    issued = issued + 1
    if #paths == 0 then
        return wrk.format(wrk.method)
    end
    return wrk.format(wrk.method, paths[((issued - 1) % #paths) + 1])
end

function done(summary, latency, requests)
    local sent = 0
    for _, t in ipairs(threads) do sent = sent + t:get("issued") end
    local e = summary.errors
    io.write(string.format(
        'WRK {"requests": %d, "duration_us": %d, "bytes": %d, "p50_us": %d, "p99_us": %d,' ..
        ' "errors": %d, "status_errors": %d, "issued": %d}\n',
        summary.requests, summary.duration, summary.bytes, latency:percentile(50),
        latency:percentile(99), e.connect + e.read + e.write + e.timeout, e.status, sent))
end
"""


@dataclass
class Figure:
    requests_s: float
    p50_ms: float
    p99_ms: float
    errors: int
    note: str = ""


def wrk(port: int, path: str, connections: int, duration: float,
        paths_file: Path | None = None, headers: Mapping[str, str] | None = None,
        cpu: int | None = None, body_file: Path | None = None) -> Figure:
    """wrk -t1 on loopback: GET path (or each line of paths_file in turn; POST the
    contents of body_file when given); cpu: pin wrk to that CPU (away from a pinned
    server)."""
    SCRIPT.parent.mkdir(parents=True, exist_ok=True)
    if not SCRIPT.exists() or SCRIPT.read_text() != WRK_SCRIPT:
        SCRIPT.write_text(WRK_SCRIPT)
    pin = [require("taskset", "apt-get install -y util-linux"), "-c", str(cpu)] if (
        cpu is not None) else []
    argv = [*pin, require("wrk", "apt-get install -y wrk"), "-t1", f"-c{connections}",
            f"-d{duration:g}s", f"--timeout={WRK_TIMEOUT_S}s", "-s", str(SCRIPT)]
    for name, value in (headers or {}).items():
        argv += ["-H", f"{name}: {value}"]
    argv.append(f"http://127.0.0.1:{port}{path}")
    if paths_file is not None:
        argv += ["--", str(paths_file)]
    env = {**os.environ, "WRK_BODY_FILE": str(body_file)} if body_file is not None else None
    done = subprocess.run(argv, capture_output=True, text=True, timeout=duration + 60,
                          check=False, env=env)
    line = next((x for x in done.stdout.splitlines() if x.startswith("WRK ")), None)
    if line is None:
        raise RuntimeError(f"wrk failed ({done.returncode}): {done.stdout}\n{done.stderr}")
    r = json.loads(line[4:])
    note = ""
    if paths_file is not None:
        distinct = len(paths_file.read_text().split())
        if r["issued"] > distinct:
            note = f"ran out: {r['issued'] - distinct} of {r['issued']} repeats"
    return Figure(r["requests"] / (r["duration_us"] / 1e6), r["p50_us"] / 1000,
                  r["p99_us"] / 1000, r["errors"] + r["status_errors"], note)
