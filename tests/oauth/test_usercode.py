from __future__ import annotations

import pytest

from stb_origin.oauth.usercode import ALPHABET, display, new_user_code, normalize


def test_alphabet_is_the_rfcs_twenty_consonants() -> None:
    assert ALPHABET == "BCDFGHJKLMNPQRSTVWXZ" and len(set(ALPHABET)) == 20


def test_new_codes_are_eight_letters_of_the_alphabet_and_vary() -> None:
    codes = {new_user_code() for _ in range(200)}
    assert len(codes) == 200
    assert all(len(c) == 8 and set(c) <= set(ALPHABET) for c in codes)


def test_display_groups_by_four() -> None:
    assert display("BCDFGHJK") == "BCDF-GHJK"


@pytest.mark.parametrize("typed", ["BCDF-GHJK", "bcdf-ghjk", "bcdfghjk", " BCDF GHJK ",
                                   "bc-df-gh-jk", "BCDF\u2003GHJK"])
def test_normalize_forgives_case_dashes_and_spaces(typed: str) -> None:
    assert normalize(typed) == "BCDFGHJK"


@pytest.mark.parametrize("typed", ["", "BCDF-GHJ", "BCDF-GHJKL", "ABCD-EFGH", "BCDF-GHJ1",
                                   "BCDF_GHJK", "ＢＣＤＦＧＨＪＫ"])
def test_normalize_refuses_what_cannot_be_a_code(typed: str) -> None:
    assert normalize(typed) is None
