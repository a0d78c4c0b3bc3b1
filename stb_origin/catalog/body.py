"""Title bodies from the content team: JSON fields to checked ``TitleFields``."""

from __future__ import annotations

from starlette.requests import Request

from stb_origin.accounts.errors import InvalidValue
from stb_origin.catalog.models import Kind
from stb_origin.catalog.titles import (
    MAX_EPISODE,
    MAX_SEASON,
    NULLABLE,
    TitleFields,
    check_description,
    check_genre_list,
    check_int,
    check_name,
    check_rating,
)
from stb_origin.db.types import ID
from stb_origin.web.errors import ApiError
from stb_origin.web.jsonbody import Fields, read_object

FIELDS = ("kind", "name", "description", "series", "season", "episode", "rating",
          "available_from", "available_until", "genres")


async def read_title(request: Request, creating: bool) -> TitleFields:
    body = await read_object(request, FIELDS)
    try:
        return _fields(body, creating)
    except InvalidValue as exc:
        raise ApiError(400, "bad_request", str(exc)) from None


def _fields(body: Fields, creating: bool) -> TitleFields:
    fields = TitleFields(given={name for name in FIELDS if name in body})
    for name in fields.given - set(NULLABLE) - {"series", "season", "episode"}:
        if body.raw(name) is None:
            raise InvalidValue(f"{name}: may not be null")
    if creating:
        fields.kind = body.text("kind")
        fields.name = check_name(body.text("name"))
    else:
        fields.kind = body.optional_text("kind")
        new_name = body.optional_text("name")
        fields.name = check_name(new_name) if new_name is not None else None
    if fields.kind is not None and fields.kind not in set(Kind):
        raise InvalidValue(f"kind: one of {', '.join(Kind)}")
    description = body.optional_text("description")
    fields.description = check_description(description) if description is not None else None
    series = body.optional_text("series")
    if series is not None and not ID.fullmatch(series):
        raise InvalidValue("series: a title id (32 hex digits)")
    fields.series = series
    if body.raw("season") is not None:
        fields.season = check_int("season", body.raw("season"), 0, MAX_SEASON)
    if body.raw("episode") is not None:
        fields.episode = check_int("episode", body.raw("episode"), 1, MAX_EPISODE)
    fields.rating = check_rating(body.raw("rating"))
    fields.available_from = body.optional_time("available_from")
    fields.available_until = body.optional_time("available_until")
    if "genres" in fields.given:
        fields.genres = check_genre_list(body.raw("genres"))
    return fields
