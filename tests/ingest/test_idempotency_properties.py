"""Idempotency-Key values, whatever a client sends: a key, or a 400 naming the header."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stb_origin.ingest.idempotency import HEADER, MAX_KEY_CHARS, parse_key
from stb_origin.web.errors import ApiError

PRINTABLE = st.characters(min_codepoint=0x20, max_codepoint=0x7e)
KEY = st.text(PRINTABLE, min_size=1, max_size=MAX_KEY_CHARS).filter(
    lambda k: k == k.strip(" ") and not k.startswith('"'))


def _quoted(key: str) -> str:
    return '"' + key.replace("\\", "\\\\").replace('"', '\\"') + '"'


@settings(max_examples=200)
@given(value=st.text(max_size=300) | st.text(PRINTABLE, max_size=300))
def test_any_value_is_a_printable_key_or_a_400_naming_the_header(value):
    try:
        key = parse_key([value])
    except ApiError as exc:
        assert exc.status == 400 and exc.code == "invalid_idempotency_key"
        assert HEADER in exc.message
        return
    assert key is not None and 1 <= len(key) <= MAX_KEY_CHARS
    assert all(" " <= c <= "~" for c in key)


@settings(max_examples=200)
@given(key=KEY)
def test_a_key_bare_or_quoted_is_the_same_key(key):
    assert parse_key([key]) == key
    assert parse_key([_quoted(key)]) == key


@settings(max_examples=100)
# Spaces around a bare value are the header's, not the key's (HTTP's OWS).
@given(key=st.text(PRINTABLE, min_size=MAX_KEY_CHARS + 1, max_size=400).filter(
    lambda k: k == k.strip(" ")))
def test_a_key_over_255_characters_is_refused_quoted_or_not(key):
    for value in (key, _quoted(key)):
        with pytest.raises(ApiError):
            parse_key([value])


def test_a_blank_key_is_refused():
    for value in ("", "   ", '""'):
        with pytest.raises(ApiError):
            parse_key([value])


def test_no_header_is_no_key():
    assert parse_key([]) is None
