"""deploy/cdn/nginx.conf as a template: one file, the same rendering as the nginx image's."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.cdn.nginx import TEMPLATE, VARIABLES, Nginx, nginx_binary, placeholders, render

VALUES = {
    "STB_CDN_UPSTREAM": "origin:8000",
    "STB_CDN_LISTEN": "8080",
    "STB_CDN_CACHE_DIR": "/var/cache/nginx/stb",
    "STB_CDN_CACHE_MAX_SIZE": "10g",
    "STB_CDN_ORIGIN_SECRET": "s3cret-value",
    "STB_CDN_URL_SIGNING_SECRETS": "new-secret,old-secret",
}


def test_the_template_uses_exactly_the_documented_variables() -> None:
    text = TEMPLATE.read_text()
    assert placeholders(text) == set(VARIABLES)
    # envsubst would also replace the unbraced form; the renderer only knows braces.
    assert not re.search(r"\$STB_CDN_", text)
    for name in VARIABLES:
        assert f"#   {name}" in text  # documented in the header


def test_rendering_replaces_only_the_placeholders() -> None:
    rendered = render(VALUES)
    directives = [line for line in rendered.splitlines() if not line.lstrip().startswith("#")]
    assert not any("${" in line for line in directives)
    assert "server origin:8000;" in rendered
    assert "listen 8080;" in rendered
    assert 'proxy_set_header X-Origin-Secret "s3cret-value";' in rendered
    assert 'js_var $stb_url_signing_secrets "new-secret,old-secret";' in rendered
    # nginx's own variables are left alone.
    for variable in ("$uri", "$upstream_cache_status", "$http_authorization", "$request_id"):
        assert variable in rendered


def test_rendering_matches_envsubst() -> None:
    envsubst = shutil.which("envsubst")
    if envsubst is None:
        pytest.fail("envsubst is required for this test: apt-get install -y gettext-base",
                    pytrace=False)
    # What the nginx image's 20-envsubst-on-templates.sh runs, with the filter set.
    names = " ".join(f"${{{name}}}" for name in VARIABLES)
    out = subprocess.run([envsubst, names], input=TEMPLATE.read_text(), capture_output=True,
                         text=True, check=True, timeout=10,
                         env={**os.environ, **VALUES, "uri": "NOT-AN-NGINX-VARIABLE"})
    assert out.stdout == render(VALUES)


def test_rendering_refuses_missing_or_unknown_values() -> None:
    with pytest.raises(KeyError):
        render({k: v for k, v in VALUES.items() if k != "STB_CDN_UPSTREAM"})
    with pytest.raises(KeyError):
        render({**VALUES, "STB_CDN_OTHER": "x"})


def test_nginx_accepts_the_rendered_config(tmp_path: Path) -> None:
    try:
        binary = nginx_binary()
    except FileNotFoundError as exc:
        pytest.fail(str(exc), pytrace=False)
    server = Nginx(tmp_path, "127.0.0.1:9")
    server.start()
    server.stop()
    result = subprocess.run([binary, "-t", "-p", str(tmp_path), "-c", str(tmp_path / "nginx.conf"),
                             "-e", str(tmp_path / "error.log")],
                            capture_output=True, text=True, timeout=30, check=False)
    assert result.returncode == 0, result.stderr
    assert "[warn]" not in result.stderr and "[emerg]" not in result.stderr


def test_compose_renders_this_file_with_these_variables() -> None:
    text = (TEMPLATE.parents[2] / "compose.yaml").read_text()
    assert "./deploy/cdn/nginx.conf:/etc/nginx/templates/" in text
    for name in VARIABLES:
        assert f"{name}:" in text, name


def test_the_image_main_config_loads_njs_and_includes_the_rendered_template() -> None:
    main = (TEMPLATE.parent / "main.conf").read_text()
    directives = [line.strip() for line in main.splitlines()
                  if line.strip() and not line.lstrip().startswith("#")]
    assert directives[0] == "load_module modules/ngx_http_js_module.so;"
    assert "include /etc/nginx/conf.d/*.conf;" in directives
    # The template imports the script from where the README says to put it.
    assert "js_import stb_urlsign from njs/urlsign.js;" in TEMPLATE.read_text()
