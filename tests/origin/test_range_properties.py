"""Range headers, whatever a client sends: a slice of the object, a 416 or the whole."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stb_origin.origin import build_app
from stb_origin.origin.conditional import ByteRange, RangeNotSatisfiable, parse_range
from stb_origin.storage import LocalStorage
from tests.support.http import run_server

ASSET = "0123456789abcdef0123456789abcdef"
SEGMENT = bytes(range(256)) * 5 + b"end"
URL = f"/hls/{ASSET}/v1/720p/seg_00001.m4s"

DIGITS = st.integers(min_value=0, max_value=2 * len(SEGMENT)).map(str) | st.just("") | \
    st.text("0123456789", min_size=18, max_size=25)
# Near misses of the grammar: the shapes a parser gets wrong.
SPEC = st.builds(lambda a, sep, b: f"{a}{sep}{b}", DIGITS, st.sampled_from(["-", "--", " - ", ""]),
                 DIGITS)
RANGE_HEADER = st.one_of(
    st.builds(lambda unit, eq, specs: f"{unit}{eq}{','.join(specs)}",
              st.sampled_from(["bytes", "BYTES", " bytes ", "items", ""]),
              st.sampled_from(["=", "", "=="]), st.lists(SPEC, max_size=3)),
    # Anything h11 lets through as a header value.
    st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7e), max_size=60),
)


def _check(header: str, size: int) -> ByteRange | None:
    try:
        chosen = parse_range(header, size)
    except RangeNotSatisfiable as exc:
        assert exc.content_range == f"bytes */{size}"
        return None
    if chosen is not None:
        assert 0 <= chosen.start <= chosen.end < size
    return chosen


@settings(max_examples=200)
@given(header=RANGE_HEADER, size=st.integers(min_value=0, max_value=10**12))
def test_any_header_is_a_range_inside_the_object_a_416_or_the_whole(header, size):
    _check(header, size)


@settings(max_examples=200)
@given(size=st.integers(min_value=1, max_value=10**6), data=st.data())
def test_a_valid_range_is_honoured_as_asked(size, data):
    start = data.draw(st.integers(min_value=0, max_value=size - 1))
    last = data.draw(st.integers(min_value=start, max_value=2 * size))
    assert parse_range(f"bytes={start}-{last}", size) == ByteRange(start, min(last, size - 1))
    assert parse_range(f"bytes={start}-", size) == ByteRange(start, size - 1)
    suffix = data.draw(st.integers(min_value=1, max_value=2 * size))
    assert parse_range(f"bytes=-{suffix}", size) == ByteRange(max(size - suffix, 0), size - 1)


@pytest.fixture(scope="module")
def origin(tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    store = tmp_path_factory.mktemp("store")
    storage = LocalStorage(Path(store))
    storage.put_bytes(f"hls/{ASSET}/v1/720p/seg_00001.m4s", SEGMENT, "video/iso.segment")
    with run_server(build_app(storage)) as base_url, \
            httpx.Client(base_url=base_url, timeout=10) as http:
        yield http


@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(header=RANGE_HEADER)
def test_the_origin_answers_every_range_with_the_bytes_it_names(origin, header):
    header = header.strip(" ")  # HTTP drops it around a value; h11 will not send it
    response = origin.get(URL, headers={"Range": header})
    expected = _check(header, len(SEGMENT))
    if expected is not None:
        assert response.status_code == 206
        assert response.content == SEGMENT[expected.start:expected.end + 1]
        assert response.headers["content-range"] == expected.content_range(len(SEGMENT))
    elif response.status_code == 416:
        assert response.headers["content-range"] == f"bytes */{len(SEGMENT)}"
        assert response.json()["error"]["code"] == "range_not_satisfiable"
    else:
        assert response.status_code == 200 and response.content == SEGMENT
