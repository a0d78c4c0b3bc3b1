"""The console's files: one build id in every URL, cached for ever, gzipped, typed,
nothing outside the folder; the vendored libraries are the locked npm packages."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import httpx
import pytest

from stb_origin.console import static
from tests.console.conftest import Browser, Person

ROOT = Path(__file__).parents[2]
VENDORED = {  # npm package -> its files copied by scripts/build-console
    "hls.js": {"dist/hls.min.mjs": "hls.min.mjs", "LICENSE": "LICENSE"},
    "tus-js-client": {"dist/tus.min.js": "tus.min.js", "LICENSE": "LICENSE"},
}
LICENCES = {"hls.js": "Apache License, Version 2.0", "tus-js-client": "The MIT License"}


def test_files_are_served_immutable_gzipped_and_typed(api: str) -> None:
    bundle = static.load()
    for path, content_type in [("app.js", "text/javascript"), ("console.css", "text/css"),
                               ("vendor/hls.js/hls.min.mjs", "text/javascript"),
                               ("vendor/tus-js-client/LICENSE", "text/plain")]:
        response = httpx.get(api + bundle.url(path), timeout=10,
                             headers={"Accept-Encoding": "gzip"})
        assert response.status_code == 200
        assert response.headers["content-type"].startswith(content_type)
        assert response.headers["cache-control"] == "public, max-age=31536000, immutable"
        assert response.headers["content-encoding"] == "gzip"
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.content == (static.DIRECTORY / path).read_bytes()  # httpx unzips
    plain = httpx.get(api + bundle.url("app.js"), timeout=10,
                      headers={"Accept-Encoding": "identity"})
    assert "content-encoding" not in plain.headers
    assert plain.content == (static.DIRECTORY / "app.js").read_bytes()


def test_the_build_id_changes_with_any_file(tmp_path: Path) -> None:
    (tmp_path / "a.js").write_text("one")
    first = static.load(tmp_path)
    assert static.load(tmp_path).build == first.build
    assert first.files["a.js"].gzipped == gzip.compress(b"one", 9, mtime=0)
    (tmp_path / "a.js").write_text("two")
    assert static.load(tmp_path).build != first.build


@pytest.mark.parametrize("path", [
    "/console/static/{build}/../visit.py", "/console/static/{build}/%2e%2e/visit.py",
    "/console/static/{build}/..%2fvisit.py", "/console/static/{build}//etc/passwd",
    "/console/static/{build}/pages/../../visit.py", "/console/static/{build}/nothing.js",
    "/console/static/0000000000000000/app.js", "/console/static/{build}/",
])
def test_nothing_outside_the_bundle_or_of_another_build_is_served(api: str, path: str) -> None:
    url = api + path.format(build=static.load().build)
    response = httpx.get(url, timeout=10, follow_redirects=True)
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


def test_the_shell_names_this_builds_files(browser: Browser, editor: Person) -> None:
    browser.sign_in(editor)
    shell = browser.open().text
    build = static.load().build
    for path in ("app.js", "console.css", "api.js"):
        assert f"/console/static/{build}/{path}" in shell


def test_the_vendored_libraries_are_the_locked_packages_with_their_licences() -> None:
    lock = json.loads((ROOT / "console" / "package-lock.json").read_text())
    wanted = json.loads((ROOT / "console" / "package.json").read_text())["dependencies"]
    installed = ROOT / "console" / "node_modules"
    if not installed.is_dir():
        pytest.fail("console/node_modules is missing: (cd console && npm ci), as scripts/test"
                    " does", pytrace=False)
    for package, files in VENDORED.items():
        locked = lock["packages"][f"node_modules/{package}"]
        assert locked["version"] == wanted[package]
        # npm ci checked what it installed against the lock's integrity hash;
        # the vendored copies must be those bytes.
        meta = json.loads((installed / package / "package.json").read_text())
        assert meta["version"] == locked["version"], f"run npm ci in console/ ({package})"
        for source, copy in files.items():
            vendored = static.DIRECTORY / "vendor" / package / copy
            assert vendored.read_bytes() == (installed / package / source).read_bytes(), (
                f"{vendored} is not {package}@{locked['version']}'s {source}:"
                " run scripts/build-console")
        licence = (static.DIRECTORY / "vendor" / package / "LICENSE").read_text()
        assert LICENCES[package] in licence
    # Nothing else is vendored unchecked.
    vendor = static.DIRECTORY / "vendor"
    assert {p.relative_to(vendor).as_posix() for p in vendor.rglob("*") if p.is_file()} == {
        f"{package}/{copy}" for package, files in VENDORED.items() for copy in files.values()}
