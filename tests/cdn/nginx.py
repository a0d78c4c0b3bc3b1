"""deploy/cdn/nginx.conf rendered and run by a real nginx, for tests and bench/cdn_offload.py.

The rendering follows the rules the official nginx image applies to its
templates (envsubst with a list of variable names): ``${NAME}`` for the names
in VARIABLES becomes the value, everything else is left alone. The harness
wraps the rendered http-level file in a minimal main config, as the image's
own nginx.conf does, with every path inside one folder: no root needed, no
system paths touched. The main config loads the njs module and the folder gets
deploy/cdn/urlsign.js where the template imports it from (njs/urlsign.js).
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import string
import subprocess
import time
from collections.abc import Mapping
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
TEMPLATE = REPO / "deploy" / "cdn" / "nginx.conf"
URLSIGN_JS = REPO / "deploy" / "cdn" / "urlsign.js"
VARIABLES = ("STB_CDN_UPSTREAM", "STB_CDN_LISTEN", "STB_CDN_CACHE_DIR",
             "STB_CDN_CACHE_MAX_SIZE", "STB_CDN_ORIGIN_SECRET", "STB_CDN_URL_SIGNING_SECRETS")
INSTALL_HINT = "apt-get install -y nginx libnginx-mod-http-js"
# Where Debian's libnginx-mod-http-js and the nginx.org packages put the njs module.
JS_MODULES = (Path("/usr/lib/nginx/modules/ngx_http_js_module.so"),
              Path("/etc/nginx/modules/ngx_http_js_module.so"),
              Path("/usr/local/nginx/modules/ngx_http_js_module.so"))
START_TIMEOUT_S = 10.0


# Only ${STB_CDN_...}: nginx's own $variables, and $$, pass through untouched, as
# with `envsubst '${STB_CDN_UPSTREAM} ...'`.
_PLACEHOLDER = r"""
    \$(?:
      (?P<escaped>(?!))                     |
      (?P<named>(?!))                       |
      \{(?P<braced>STB_CDN_[A-Z0-9_]+)\}    |
      (?P<invalid>(?!))
    )
"""


class CdnTemplate(string.Template):
    pattern = _PLACEHOLDER  # type: ignore[assignment]  # Template compiles it
    flags = re.VERBOSE


def placeholders(text: str) -> set[str]:
    return {m.group("braced") for m in re.finditer(_PLACEHOLDER, text, re.VERBOSE)
            if m.group("braced")}


def render(values: Mapping[str, str], template: Path = TEMPLATE) -> str:
    unknown = set(values) - set(VARIABLES)
    missing = set(VARIABLES) - set(values)
    if unknown or missing:
        raise KeyError(f"CDN template values: unknown {sorted(unknown)}, missing {sorted(missing)}")
    return CdnTemplate(template.read_text()).substitute(values)


def nginx_binary() -> str:
    found = shutil.which("nginx") or next(
        (p for p in ("/usr/sbin/nginx", "/usr/local/sbin/nginx") if os.access(p, os.X_OK)), None)
    if found is None:
        raise FileNotFoundError(f"nginx is required for the CDN tests: {INSTALL_HINT}")
    return found


def js_module() -> Path:
    found = next((p for p in JS_MODULES if p.is_file()), None)
    if found is None:
        raise FileNotFoundError(
            f"the nginx njs module is required for the CDN tests: {INSTALL_HINT}")
    return found


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _main_config(folder: Path, http_conf: Path, workers: int) -> str:
    temp = folder / "temp"
    # Root's workers would otherwise switch to nobody and lose the folder.
    user = "user root root;\n" if os.geteuid() == 0 else ""
    return (
        f"load_module {js_module()};\n"
        f"{user}worker_processes {workers};\n"
        "daemon off;\n"
        f"pid {folder / 'nginx.pid'};\n"
        f"error_log {folder / 'error.log'} info;\n"
        "events { worker_connections 4096; }\n"
        "http {\n"
        f"    client_body_temp_path {temp / 'body'};\n"
        f"    proxy_temp_path {temp / 'proxy'};\n"
        f"    fastcgi_temp_path {temp / 'fastcgi'};\n"
        f"    uwsgi_temp_path {temp / 'uwsgi'};\n"
        f"    scgi_temp_path {temp / 'scgi'};\n"
        f"    include {http_conf};\n"
        "}\n"
    )


class Nginx:
    """nginx with the CDN config in ``folder``: logs there, the cache under it."""

    def __init__(self, folder: Path, upstream: str, *, origin_secret: str = "",
                 url_signing_secrets: str = "", cache_max_size: str = "1g",
                 workers: int = 1) -> None:
        self.folder = folder
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.cache_dir = folder / "cache"
        self.access_log = folder / "access.log"  # nginx's stdout: the config logs to /dev/stdout
        self.stderr_log = folder / "stderr.log"
        self.error_log = folder / "error.log"
        self.values = {
            "STB_CDN_UPSTREAM": upstream,
            "STB_CDN_LISTEN": f"127.0.0.1:{self.port}",
            "STB_CDN_CACHE_DIR": str(self.cache_dir),
            "STB_CDN_CACHE_MAX_SIZE": cache_max_size,
            "STB_CDN_ORIGIN_SECRET": origin_secret,
            "STB_CDN_URL_SIGNING_SECRETS": url_signing_secrets,
        }
        self.workers = workers
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> Nginx:
        binary = nginx_binary()
        (self.folder / "temp").mkdir(parents=True, exist_ok=True)
        (self.folder / "njs").mkdir(exist_ok=True)
        shutil.copyfile(URLSIGN_JS, self.folder / "njs" / "urlsign.js")
        http_conf = self.folder / "cdn.conf"
        http_conf.write_text(render(self.values))
        main_conf = self.folder / "nginx.conf"
        main_conf.write_text(_main_config(self.folder, http_conf, self.workers))
        with open(self.access_log, "ab") as out, open(self.stderr_log, "ab") as err:
            # -e: the log for start-up, before the config names its own.
            self.process = subprocess.Popen(
                [binary, "-p", str(self.folder), "-c", str(main_conf),
                 "-e", str(self.error_log)],
                stdout=out, stderr=err, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError("nginx exited during start-up:\n" + self.log_tail())
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return self
            except OSError:
                time.sleep(0.02)
        self.stop()
        raise RuntimeError("nginx did not start listening in time:\n" + self.log_tail())

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)  # fast shutdown
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def log_tail(self, lines: int = 30) -> str:
        out = []
        for path in (self.error_log, self.stderr_log):
            if path.exists():
                tail = path.read_text(errors="replace").splitlines()[-lines:]
                out.append(f"--- {path.name}\n" + "\n".join(tail))
        return "\n".join(out)

    def __enter__(self) -> Nginx:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()
