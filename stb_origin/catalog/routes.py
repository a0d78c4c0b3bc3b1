"""The content team's catalog API: titles, their genres and assets, and the genre list.

Reads take ``assets:read``, changes ``assets:write``: the people who upload the
assets are the ones who describe them, and editors' tokens already carry both.
"""

from __future__ import annotations

import logging

from sqlalchemy.orm import Session
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from stb_origin import scopes
from stb_origin.accounts.caller import Caller
from stb_origin.accounts.http import claims_with, run_as_caller
from stb_origin.catalog import announce, titles
from stb_origin.catalog.body import read_title
from stb_origin.catalog.models import Kind
from stb_origin.catalog.titles import MAX_SEARCH, SLUG
from stb_origin.catalog.view import editor_json
from stb_origin.db.types import ID
from stb_origin.web.errors import ApiError
from stb_origin.web.headers import NO_STORE
from stb_origin.web.http import Json, json_response, path_id, services_of
from stb_origin.web.jsonbody import read_object
from stb_origin.web.paging import page_params, paged

log = logging.getLogger("stb_origin.catalog")

TITLES = "/v1/catalog/titles"
GENRES = "/v1/catalog/genres"


def _base_url(request: Request) -> str:
    return services_of(request).settings.public_base_url


def _slug(request: Request) -> str:
    value: str = request.path_params["slug"]
    if not SLUG.fullmatch(value):
        raise ApiError(404, "not_found", "no such genre")
    return value


def list_filters(request: Request) -> tuple[str | None, str | None, str | None]:
    """kind, series and q, the filters both listings take, checked."""
    kind = request.query_params.get("kind") or None
    if kind is not None and kind not in set(Kind):
        raise ApiError(400, "bad_request", f"kind: one of {', '.join(Kind)}")
    series = request.query_params.get("series") or None
    if series is not None and not ID.fullmatch(series):
        raise ApiError(400, "bad_request", "series: a title id (32 hex digits)")
    search = request.query_params.get("q") or None
    if search is not None and (len(search) > MAX_SEARCH or not search.isprintable()):
        raise ApiError(400, "bad_request", f"q: at most {MAX_SEARCH} printable characters")
    return kind, series, search


def cursor_param(after: str | None) -> str | None:
    if after is not None and not ID.fullmatch(after):
        raise ApiError(400, "bad_request", "after: a title id, as `next` gives it")
    return after


# --- titles ---------------------------------------------------------------------------

async def create_title(request: Request) -> Response:
    claims = await claims_with(request, scopes.ASSETS_WRITE)
    fields = await read_title(request, creating=True)
    base_url = _base_url(request)

    def work(session: Session, _caller: Caller) -> Json:
        title = titles.create_title(session, fields)
        return editor_json(session, [title], base_url)[0]

    title = await run_as_caller(request, claims, work)
    await announce.title_changed(request, title["id"], "created")
    log.info("title created", extra={"title_id": title["id"], "subject": claims.subject})
    return json_response(title, 201, f"{TITLES}/{title['id']}")


async def list_titles(request: Request) -> Response:
    claims = await claims_with(request, scopes.ASSETS_READ)
    limit, after = page_params(request)
    after = cursor_param(after)
    kind, series, search = list_filters(request)
    base_url = _base_url(request)

    def work(session: Session, _caller: Caller) -> list[Json]:
        found = titles.page_titles(session, limit + 1, after, kind, series, search)
        return editor_json(session, found, base_url)

    items = await run_as_caller(request, claims, work)
    return paged(items, limit, TITLES, "id", {"kind": kind, "series": series, "q": search})


async def get_title(request: Request) -> Response:
    claims = await claims_with(request, scopes.ASSETS_READ)
    title_id = path_id(request, "title_id", "title")
    base_url = _base_url(request)

    def work(session: Session, _caller: Caller) -> Json:
        return editor_json(session, [titles.get_title(session, title_id)], base_url)[0]

    return json_response(await run_as_caller(request, claims, work))


async def update_title(request: Request) -> Response:
    claims = await claims_with(request, scopes.ASSETS_WRITE)
    title_id = path_id(request, "title_id", "title")
    fields = await read_title(request, creating=False)
    base_url = _base_url(request)

    def work(session: Session, _caller: Caller) -> Json:
        title = titles.update_title(session, title_id, fields)
        return editor_json(session, [title], base_url)[0]

    updated = await run_as_caller(request, claims, work)
    await announce.title_changed(request, title_id, "updated")
    return json_response(updated)


async def delete_title(request: Request) -> Response:
    claims = await claims_with(request, scopes.ASSETS_WRITE)
    title_id = path_id(request, "title_id", "title")
    await run_as_caller(request, claims,
                        lambda session, _caller: titles.delete_title(session, title_id))
    await announce.title_changed(request, title_id, "deleted")
    log.info("title deleted", extra={"title_id": title_id, "subject": claims.subject})
    return Response(status_code=204, headers=NO_STORE)


# --- asset links ----------------------------------------------------------------------

async def link_asset(request: Request) -> Response:
    claims = await claims_with(request, scopes.ASSETS_WRITE)
    title_id = path_id(request, "title_id", "title")
    asset_id = path_id(request, "asset_id", "asset")
    body = await read_object(request, {"role"})
    role = body.text("role")
    base_url = _base_url(request)

    def work(session: Session, _caller: Caller) -> tuple[Json, bool]:
        created = titles.link_asset(session, title_id, asset_id, role)
        return editor_json(session, [titles.get_title(session, title_id)], base_url)[0], created

    title, created = await run_as_caller(request, claims, work)
    await announce.title_changed(request, title_id, "updated")
    return json_response(title, 201 if created else 200)


async def unlink_asset(request: Request) -> Response:
    claims = await claims_with(request, scopes.ASSETS_WRITE)
    title_id = path_id(request, "title_id", "title")
    asset_id = path_id(request, "asset_id", "asset")
    await run_as_caller(request, claims, lambda session, _caller: titles.unlink_asset(
        session, title_id, asset_id))
    await announce.title_changed(request, title_id, "updated")
    return Response(status_code=204, headers=NO_STORE)


# --- genres ---------------------------------------------------------------------------

async def put_genre(request: Request) -> Response:
    claims = await claims_with(request, scopes.ASSETS_WRITE)
    slug = _slug(request)
    body = await read_object(request, {"name"})
    name = body.text("name")

    def work(session: Session, _caller: Caller) -> tuple[Json, bool]:
        genre, created = titles.put_genre(session, slug, name)
        return genre.to_json(), created

    genre, created = await run_as_caller(request, claims, work)
    return json_response(genre, 201 if created else 200)


async def list_genres(request: Request) -> Response:
    claims = await claims_with(request, scopes.ASSETS_READ, scopes.PLAYBACK)
    limit, after = page_params(request)
    if after is not None and not SLUG.fullmatch(after):
        raise ApiError(400, "bad_request", "after: a genre slug, as `next` gives it")

    def work(session: Session, _caller: Caller) -> list[Json]:
        return [g.to_json() for g in titles.page_genres(session, limit + 1, after)]

    return paged(await run_as_caller(request, claims, work), limit, GENRES, "slug")


async def delete_genre(request: Request) -> Response:
    claims = await claims_with(request, scopes.ASSETS_WRITE)
    slug = _slug(request)
    await run_as_caller(request, claims,
                        lambda session, _caller: titles.delete_genre(session, slug))
    return Response(status_code=204, headers=NO_STORE)


ROUTES = [
    Route(TITLES, create_title, methods=["POST"]),
    Route(TITLES, list_titles, methods=["GET"]),
    Route(TITLES + "/{title_id:str}", get_title, methods=["GET"]),
    Route(TITLES + "/{title_id:str}", update_title, methods=["PATCH"]),
    Route(TITLES + "/{title_id:str}", delete_title, methods=["DELETE"]),
    Route(TITLES + "/{title_id:str}/assets/{asset_id:str}", link_asset, methods=["PUT"]),
    Route(TITLES + "/{title_id:str}/assets/{asset_id:str}", unlink_asset, methods=["DELETE"]),
    Route(GENRES, list_genres, methods=["GET"]),
    Route(GENRES + "/{slug:str}", put_genre, methods=["PUT"]),
    Route(GENRES + "/{slug:str}", delete_genre, methods=["DELETE"]),
]
