from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from stb_origin.origin.conditional import (
    ByteRange,
    RangeNotSatisfiable,
    evaluate_preconditions,
    http_date,
    if_range_allows,
    parse_etags,
    parse_http_date,
    parse_range,
    strong_match,
    weak_match,
)

ETAG = '"abc-1"'
MODIFIED = datetime(2024, 5, 6, 7, 8, 9, 654321, tzinfo=UTC)
MODIFIED_HTTP = "Mon, 06 May 2024 07:08:09 GMT"
EARLIER = "Mon, 06 May 2024 07:08:08 GMT"
LATER = "Mon, 06 May 2024 07:08:10 GMT"


# -- dates ---------------------------------------------------------------------------


def test_http_date_is_imf_fixdate_in_gmt() -> None:
    assert http_date(MODIFIED) == MODIFIED_HTTP
    plus_two = MODIFIED.astimezone(timezone(timedelta(hours=2)))
    assert http_date(plus_two) == MODIFIED_HTTP


@pytest.mark.parametrize("value", [
    MODIFIED_HTTP, "Monday, 06-May-24 07:08:09 GMT", "Mon May  6 07:08:09 2024"])
def test_parse_http_date_forms(value: str) -> None:
    assert parse_http_date(value) == MODIFIED.replace(microsecond=0)


@pytest.mark.parametrize("value", [None, "", "garbage", "Mon, 99 Foo 2024 07:08:09 GMT"])
def test_parse_http_date_rejects(value: str | None) -> None:
    assert parse_http_date(value) is None


# -- entity tags ---------------------------------------------------------------------


@pytest.mark.parametrize(("header", "tags"), [
    ('"a"', ['"a"']),
    ('W/"a"', ['W/"a"']),
    (' "a" , W/"b","c" ', ['"a"', 'W/"b"', '"c"']),
    ('"a,b", "c"', ['"a,b"', '"c"']),
    ("*", ["*"]),
    (' * ', ["*"]),
    ('""', ['""']),
])
def test_parse_etags(header: str, tags: list[str]) -> None:
    assert parse_etags(header) == tags


@pytest.mark.parametrize("header", ["a", '"a', 'w/"a"', '"a" "b"', "", '"a", *', '"a",,x'])
def test_parse_etags_malformed(header: str) -> None:
    assert parse_etags(header) is None


def test_weak_and_strong_comparison() -> None:
    # RFC 9110 §8.8.3.2 table
    assert not strong_match('W/"1"', 'W/"1"') and weak_match('W/"1"', 'W/"1"')
    assert not strong_match('W/"1"', 'W/"2"') and not weak_match('W/"1"', 'W/"2"')
    assert not strong_match('W/"1"', '"1"') and weak_match('W/"1"', '"1"')
    assert strong_match('"1"', '"1"') and weak_match('"1"', '"1"')


# -- preconditions -------------------------------------------------------------------


def check(method: str = "GET", **headers: str) -> int | None:
    return evaluate_preconditions(method, ETAG, MODIFIED, **headers)


@pytest.mark.parametrize("value", [ETAG, 'W/"abc-1"', "*", '"x", "abc-1"', '"x",W/"abc-1"'])
def test_if_none_match_hits(value: str) -> None:
    assert check(if_none_match=value) == 304
    assert check("HEAD", if_none_match=value) == 304


@pytest.mark.parametrize("value", ['"x"', 'W/"x", "y"', "abc-1", "garbage"])
def test_if_none_match_misses(value: str) -> None:
    assert check(if_none_match=value) is None


def test_if_none_match_on_unsafe_method_is_412() -> None:
    assert check("PUT", if_none_match=ETAG) == 412


def test_if_modified_since() -> None:
    assert check(if_modified_since=MODIFIED_HTTP) == 304  # sub-second part ignored
    assert check(if_modified_since=LATER) == 304
    assert check(if_modified_since=EARLIER) is None
    assert check(if_modified_since="not a date") is None
    assert check("POST", if_modified_since=LATER) is None


def test_if_none_match_takes_precedence_over_if_modified_since() -> None:
    assert check(if_none_match='"other"', if_modified_since=LATER) is None
    assert check(if_none_match=ETAG, if_modified_since=EARLIER) == 304


def test_if_match() -> None:
    assert check(if_match=ETAG) is None
    assert check(if_match='"x", ' + ETAG) is None
    assert check(if_match="*") is None
    assert check(if_match='"x"') == 412
    assert check(if_match='W/"abc-1"') == 412  # If-Match compares strongly
    assert check(if_match="garbage") is None


def test_if_unmodified_since() -> None:
    assert check(if_unmodified_since=MODIFIED_HTTP) is None
    assert check(if_unmodified_since=EARLIER) == 412
    # If-Match wins over If-Unmodified-Since
    assert check(if_match=ETAG, if_unmodified_since=EARLIER) is None
    # 412 before 304
    assert check(if_match='"x"', if_none_match=ETAG) == 412


def test_no_conditions() -> None:
    assert check() is None


# -- If-Range ------------------------------------------------------------------------


def test_if_range() -> None:
    assert if_range_allows(None, ETAG, MODIFIED)
    assert if_range_allows(ETAG, ETAG, MODIFIED)
    assert if_range_allows(f" {ETAG} ", ETAG, MODIFIED)
    assert if_range_allows(MODIFIED_HTTP, ETAG, MODIFIED)
    assert not if_range_allows('"other"', ETAG, MODIFIED)
    assert not if_range_allows('W/"abc-1"', ETAG, MODIFIED)
    assert not if_range_allows(LATER, ETAG, MODIFIED)  # only an exact date validates
    assert not if_range_allows(EARLIER, ETAG, MODIFIED)
    assert not if_range_allows("garbage", ETAG, MODIFIED)


# -- Range ---------------------------------------------------------------------------


@pytest.mark.parametrize(("header", "expected"), [
    ("bytes=0-0", (0, 0)),
    ("bytes=0-99", (0, 99)),
    ("bytes=10-", (10, 99)),
    ("bytes=99-", (99, 99)),
    ("bytes=-1", (99, 99)),
    ("bytes=-30", (70, 99)),
    ("bytes=-500", (0, 99)),
    ("bytes=50-500", (50, 99)),
    ("Bytes=1-2", (1, 2)),
    (" bytes = 1-2 ", (1, 2)),
    ("bytes=1-2,", (1, 2)),
])
def test_parse_range(header: str, expected: tuple[int, int]) -> None:
    result = parse_range(header, 100)
    assert result == ByteRange(*expected)
    assert result.length == expected[1] - expected[0] + 1
    assert result.content_range(100) == f"bytes {expected[0]}-{expected[1]}/100"


@pytest.mark.parametrize("header", [
    None, "", "bytes", "bytes=", "bytes=-", "bytes=a-b", "bytes=5-1", "bytes=1-2-3",
    "bytes=+1-2", "bytes=1 - 2", "items=0-1", "0-1", "bytes=0-1,3-4", "bytes=0-1, -5",
    "bytes=1-" + "9" * 30, "bytes=0x1-2",
])
def test_parse_range_ignored(header: str | None) -> None:
    assert parse_range(header, 100) is None


@pytest.mark.parametrize(("header", "size"), [
    ("bytes=100-", 100), ("bytes=100-200", 100), ("bytes=-0", 100), ("bytes=0-", 0),
    ("bytes=0-0", 0),
])
def test_parse_range_unsatisfiable(header: str, size: int) -> None:
    with pytest.raises(RangeNotSatisfiable) as caught:
        parse_range(header, size)
    assert caught.value.content_range == f"bytes */{size}"


def test_suffix_of_empty_object_sends_it_whole() -> None:
    assert parse_range("bytes=-5", 0) is None
