"""The OpenAPI document: valid, served, and listing exactly the app's routes."""

from __future__ import annotations

import re

import httpx
import jsonschema
import pytest
from openapi_spec_validator import validate
from starlette.routing import Route, WebSocketRoute

from stb_origin.app import create_app
from stb_origin.services import Services
from stb_origin.web.openapi import build_document

_CONVERTER = re.compile(r"\{(\w+):\w+\}")
_METHODS = {"get", "put", "post", "delete", "options", "head", "patch", "trace"}


def _documented(document: dict[str, object]) -> set[tuple[str, str]]:
    paths = document["paths"]
    assert isinstance(paths, dict)
    return {(method.upper(), path) for path, item in paths.items()
            for method in item if method in _METHODS}


def _served(services: Services) -> tuple[set[tuple[str, str]], set[tuple[str, str]]]:
    """(method, path) of every route of the real app, without and with the HEAD
    that Starlette adds to every GET route."""
    served, heads = set(), set()
    for route in create_app(services).routes:
        if isinstance(route, WebSocketRoute):
            continue  # OpenAPI has no WebSockets: its GET operation describes the Upgrade
        assert isinstance(route, Route), f"describe {route!r} in the document and here"
        path = _CONVERTER.sub(r"{\1}", route.path)
        for method in route.methods or ():
            (heads if method == "HEAD" else served).add((method, path))
    return served, heads


def test_the_document_is_valid_openapi_3_1() -> None:
    document = build_document()
    assert document["openapi"] == "3.1.0"
    validate(document)


def test_every_route_is_documented_and_every_documented_route_exists(
        services: Services) -> None:
    served, heads = _served(services)
    documented = _documented(build_document())
    # HEAD is listed where it means something of its own (the origin); every
    # GET route answers it anyway.
    documented_heads = {op for op in documented if op[0] == "HEAD"}
    assert documented_heads <= heads
    documented -= documented_heads
    assert sorted(served - documented) == [], "routes missing from the document"
    assert sorted(documented - served) == [], "documented routes the app does not have"


def test_the_app_serves_the_document(api: str) -> None:
    response = httpx.get(api + "/openapi.json", timeout=10)
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.json() == build_document()


def test_an_upload_the_disk_cannot_hold_is_documented() -> None:
    document = build_document()
    responses = document["paths"]["/v1/assets"]["post"]["responses"]
    assert responses["507"] == {"$ref": "#/components/responses/InsufficientStorage"}
    described = document["components"]["responses"]
    assert "insufficient_storage" in described["InsufficientStorage"]["description"]
    assert "storage_unavailable" in described["Unavailable"]["description"]


def test_every_kind_of_rendition_an_asset_lists_fits_the_schema() -> None:
    rendition = build_document()["components"]["schemas"]["Asset"]["properties"][
        "renditions"]["items"]
    video = {"type": "video", "name": "360p", "bandwidth": 900_000, "average_bandwidth": 800_000,
             "codecs": "avc1.64001e", "segment_count": 3, "width": 640, "height": 360,
             "frame_rate": 25.0}
    subtitles = {"type": "subtitles", "name": "subs0", "group": "subs", "label": "English",
                 "language": "en", "forced": False, "cue_count": 2, "segment_count": 3}
    for item in (video, subtitles):
        jsonschema.validate(item, rendition)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({**subtitles, "forced": "yes"}, rendition)
