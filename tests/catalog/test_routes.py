"""The content team's catalog API over real HTTP: CRUD, strict bodies, tokens."""

from __future__ import annotations

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from stb_origin.db.types import new_id
from stb_origin.services import Services
from tests.catalog.conftest import add_asset, call

TITLES = "/v1/catalog/titles"


def _create(api: str, token: str, **body: object) -> dict[str, object]:
    response = call(api, "POST", TITLES, token, json=body)
    assert response.status_code == 201, response.text
    return response.json()


def test_titles_are_made_read_changed_listed_and_deleted(api: str, editor: str,
                                                         services: Services) -> None:
    assert call(api, "PUT", "/v1/catalog/genres/drama", editor,
                json={"name": "Drama"}).status_code == 201
    made = call(api, "POST", TITLES, editor, json={
        "kind": "movie", "name": "  Night <b>Train</b>  ", "genres": ["drama"],
        "rating": {"scheme": "BBFC", "age_limit": 15},
        "available_from": "2026-01-01T01:00:00+01:00"})
    assert made.status_code == 201, made.text
    assert made.headers["cache-control"] == "no-store"
    title = made.json()
    assert made.headers["location"] == f"{TITLES}/{title['id']}"
    # Kept as text, trimmed; JSON escapes it, whoever shows it escapes it for HTML.
    assert title["name"] == "Night <b>Train</b>"
    assert (title["kind"], title["genres"], title["rating"], title["revision"]) == (
        "movie", ["drama"], {"scheme": "BBFC", "age_limit": 15}, 1)
    assert title["available_from"] == "2026-01-01T00:00:00+00:00"
    assert title["available_until"] is None and title["assets"] == [] and title["artwork"] == {}

    asset = add_asset(services.db)
    linked = call(api, "PUT", f"{TITLES}/{title['id']}/assets/{asset}", editor,
                  json={"role": "main"})
    assert linked.status_code == 201, linked.text
    assert linked.json()["assets"] == [{"id": asset, "role": "main"}]

    changed = call(api, "PATCH", f"{TITLES}/{title['id']}", editor,
                   json={"description": "A night.\nA train.", "available_from": None})
    assert changed.status_code == 200, changed.text
    assert changed.json()["description"] == "A night.\nA train."
    assert changed.json()["available_from"] is None
    assert changed.json()["revision"] == 3

    got = call(api, "GET", f"{TITLES}/{title['id']}", editor)
    assert got.json() == changed.json()
    listed = call(api, "GET", f"{TITLES}?kind=movie&q=TRAIN", editor).json()
    assert [t["id"] for t in listed["items"]] == [title["id"]]
    assert call(api, "GET", f"{TITLES}?kind=series", editor).json()["items"] == []

    assert call(api, "DELETE", f"{TITLES}/{title['id']}/assets/{asset}",
                editor).status_code == 204
    assert call(api, "DELETE", f"{TITLES}/{title['id']}/assets/{asset}",
                editor).status_code == 404
    assert call(api, "DELETE", f"{TITLES}/{title['id']}", editor).status_code == 204
    assert call(api, "GET", f"{TITLES}/{title['id']}", editor).status_code == 404


def test_episodes_list_under_their_series_and_pages_follow_next(api: str,
                                                                editor: str) -> None:
    series = _create(api, editor, kind="series", name="Harbour")
    for number in range(1, 6):
        _create(api, editor, kind="episode", name=f"Ep {number}", series=series["id"],
                season=1, episode=number)
    seen: list[str] = []
    path: str | None = f"{TITLES}?series={series['id']}&limit=2"
    while path is not None:
        page = call(api, "GET", path, editor).json()
        seen += [t["name"] for t in page["items"]]
        path = page["next"]
    assert sorted(seen) == [f"Ep {n}" for n in range(1, 6)]
    assert call(api, "GET", f"{TITLES}?after={new_id()}", editor).status_code == 400


BAD_BODIES = [
    ({"kind": "movie", "name": "M", "titel": "x"}, 'unknown field "titel"'),
    ({"kind": "movie"}, 'missing required field "name"'),
    ({"kind": "film", "name": "M"}, "kind: one of movie, series, episode"),
    ({"kind": "movie", "name": 5}, "name: expected a string"),
    ({"kind": "movie", "name": "x" * 501}, "name: 1 to 500"),
    ({"kind": "movie", "name": "   "}, "name: 1 to 500"),
    ({"kind": "movie", "name": "a\x00b"}, "no control characters"),
    ({"kind": "movie", "name": "M", "description": "d" * 5001}, "description: at most 5000"),
    ({"kind": "movie", "name": "M", "available_from": "2026-01-01T00:00:00"},
     "available_from: expected an ISO 8601 time with an offset"),
    ({"kind": "movie", "name": "M", "available_until": 1767225600},
     "available_until: expected a string"),
    ({"kind": "movie", "name": "M", "rating": {"scheme": "FSK", "age_limit": "12"}},
     "rating.age_limit: an integer from 0 to 21"),
    ({"kind": "movie", "name": "M", "rating": {"scheme": "FSK", "age_limit": True}},
     "rating.age_limit: an integer"),
    ({"kind": "movie", "name": "M", "rating": {"scheme": "fsk<script>", "age_limit": 1}},
     "rating.scheme"),
    ({"kind": "movie", "name": "M", "rating": {"scheme": "FSK"}}, "rating: an object"),
    ({"kind": "movie", "name": "M", "genres": "drama"}, "genres: a list"),
    ({"kind": "movie", "name": "M", "genres": ["../x"]}, "genres: a list"),
    ({"kind": "movie", "name": "M", "genres": ["nope"]}, "no such genre 'nope'"),
    ({"kind": "movie", "name": "M", "genres": [f"g{n}" for n in range(21)]},
     "up to 20 genre slugs"),
    ({"kind": "episode", "name": "E", "series": "../../etc", "season": 1, "episode": 1},
     "series: a title id"),
    ({"kind": "episode", "name": "E", "series": "a" * 32, "season": 1.5, "episode": 1},
     "season: an integer"),
    ({"kind": "episode", "name": "E", "series": "a" * 32, "season": 1, "episode": 0},
     "episode: an integer from 1"),
    ({"kind": "movie", "name": None}, "name: may not be null"),
]


@pytest.mark.parametrize(("body", "message"), BAD_BODIES,
                         ids=[m for _, m in BAD_BODIES])
def test_bad_bodies_are_refused_with_the_field_named(api: str, editor: str,
                                                     body: dict[str, object],
                                                     message: str) -> None:
    response = call(api, "POST", TITLES, editor, json=body)
    assert response.status_code == 400, response.text
    assert message in response.json()["error"]["message"]
    assert call(api, "GET", TITLES, editor).json()["items"] == []


def test_unknown_series_and_asset_are_404_and_bodies_must_be_json(api: str,
                                                                  editor: str) -> None:
    missing = call(api, "POST", TITLES, editor, json={
        "kind": "episode", "name": "E", "series": new_id(), "season": 1, "episode": 1})
    assert missing.status_code == 404
    movie = _create(api, editor, kind="movie", name="M")
    link = call(api, "PUT", f"{TITLES}/{movie['id']}/assets/{new_id()}", editor,
                json={"role": "main"})
    assert (link.status_code, link.json()["error"]["message"]) == (404, "no such asset")
    bad_role = call(api, "PUT", f"{TITLES}/{movie['id']}/assets/{new_id()}", editor,
                    json={"role": 3})
    assert bad_role.status_code == 400
    form = call(api, "POST", TITLES, editor, content=b"kind=movie",
                headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert form.status_code == 415
    huge = call(api, "POST", TITLES, editor, content=b'{"name": "' + b"x" * 70_000 + b'"}',
                headers={"Content-Type": "application/json"})
    assert huge.status_code == 413
    for path in (f"{TITLES}/..%2F..%2Fetc", f"{TITLES}/{'A' * 32}", "/v1/catalog/genres/%2e%2e"):
        assert call(api, "GET" if "titles" in path else "DELETE", path,
                    editor).status_code == 404


def test_a_kind_cannot_change_and_a_used_genre_cannot_go(api: str, editor: str) -> None:
    call(api, "PUT", "/v1/catalog/genres/comedy", editor, json={"name": "Comedy"})
    movie = _create(api, editor, kind="movie", name="M", genres=["comedy"])
    changed = call(api, "PATCH", f"{TITLES}/{movie['id']}", editor, json={"kind": "series"})
    assert changed.status_code == 400
    assert call(api, "DELETE", "/v1/catalog/genres/comedy", editor).status_code == 409
    renamed = call(api, "PUT", "/v1/catalog/genres/comedy", editor, json={"name": "Comedies"})
    assert (renamed.status_code, renamed.json()["name"]) == (200, "Comedies")
    genres = call(api, "GET", "/v1/catalog/genres", editor).json()
    assert [g["slug"] for g in genres["items"]] == ["comedy"]
    bad = call(api, "PUT", "/v1/catalog/genres/Comedy", editor, json={"name": "C"})
    assert bad.status_code == 404


def forged_tokens(services: Services, scopes: list[str]) -> list[str]:
    """Our own claims signed with another key, and with no key at all (alg "none")."""
    claims = jwt.decode(services.signer.issue(scopes), options={"verify_signature": False})
    other = ec.generate_private_key(ec.SECP256R1())
    return [jwt.encode(claims, other, algorithm="ES256", headers={"typ": "at+jwt"}),
            jwt.encode(claims, None, algorithm="none")]


@pytest.mark.parametrize(("method", "path"), [
    ("POST", TITLES), ("GET", TITLES), ("GET", f"{TITLES}/{'a' * 32}"),
    ("PATCH", f"{TITLES}/{'a' * 32}"), ("DELETE", f"{TITLES}/{'a' * 32}"),
    ("PUT", f"{TITLES}/{'a' * 32}/assets/{'b' * 32}"), ("PUT", "/v1/catalog/genres/drama"),
])
def test_who_may_do_what(api: str, services: Services, method: str, path: str) -> None:
    body = {"json": {}} if method in ("POST", "PATCH", "PUT") else {}
    expired = services.signer.issue(["assets:read", "assets:write"], ttl_s=-120)
    for token in (None, expired, *forged_tokens(services, ["assets:read", "assets:write"])):
        assert call(api, method, path, token, **body).status_code == 401
    box = services.signer.issue(["playback"])
    refused = call(api, method, path, box, **body)
    assert refused.status_code == 403
    assert refused.json()["error"]["code"] == "insufficient_scope"
    if method != "GET":
        reader = services.signer.issue(["assets:read"])
        assert call(api, method, path, reader, **body).status_code == 403
