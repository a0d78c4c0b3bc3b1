"""What an import decides, before anything is written: each listing accepted or
skipped with its reason."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from stb_origin.guide.plan import Plan, plan_import
from stb_origin.guide.xmltv import Document, Listing, parse_time

NOW = datetime(2026, 6, 15, 12, 0, tzinfo=UTC)
MAPPING = {"one": "c1", "two": "c2"}


def _listing(channel: str, start: str, stop: str | None, title: str) -> Listing:
    return Listing(xmltv_channel=channel, raw_start=start, raw_stop=stop,
                   start=parse_time(start), stop=parse_time(stop) if stop else None,
                   title=title, line=1)


def _plan(*listings: Listing) -> Plan:
    return plan_import(Document(listings=list(listings)), MAPPING, NOW)


def _reasons(plan: Plan) -> dict[str, str]:
    return {s.listing.title: s.reason for s in plan.skipped}


def test_each_kind_of_problem_is_skipped_with_its_reason() -> None:
    plan = _plan(
        _listing("one", "20260615200000", "20260615210000", "fine"),
        _listing("nowhere", "20260615200000", "20260615210000", "unmapped"),
        _listing("one", "20260615220000", "20260615220000", "empty"),
        _listing("one", "20260615230000", "20260615223000", "backwards"),
        _listing("one", "19690101000000", "19690101010000", "too old"),
        _listing("one", "20280101000000", "20280101010000", "too far ahead"),
        _listing("two", "20260601000000", "20260603000000", "two days long"),
        _listing("two", "20260615xx0000", "20260615210000", "garbled"),
        _listing("two", "20260615200000", None, "last without a stop"),
    )
    assert [a.listing.title for a in plan.accepted] == ["fine"]
    assert _reasons(plan) == {
        "unmapped": "unknown_channel", "empty": "end_before_start",
        "backwards": "end_before_start", "too old": "absurd_time",
        "too far ahead": "absurd_time", "two days long": "absurd_time",
        "garbled": "bad_time", "last without a stop": "no_stop"}
    report = plan.report(replaced=0)
    assert report["imported"] == 1 and report["skipped"] == 8
    assert report["skipped_by_reason"]["absurd_time"] == 3
    assert {p["title"] for p in report["problems"]} == set(_reasons(plan))


def test_an_overlap_keeps_the_programme_already_on_air() -> None:
    plan = _plan(
        _listing("one", "20260615200000 +0000", "20260615210000 +0000", "first"),
        _listing("one", "20260615203000 +0000", "20260615213000 +0000", "overlapping"),
        _listing("one", "20260615210000 +0000", "20260615220000 +0000", "next"),
        _listing("one", "20260615210000 +0000", "20260615220000 +0000", "same start"),
        # the same moment in another zone, on another channel: no overlap there
        _listing("two", "20260615220000 +0200", "20260615230000 +0200", "elsewhere"),
    )
    assert [a.listing.title for a in plan.accepted] == ["first", "next", "elsewhere"]
    overlap = {s.listing.title: s.message for s in plan.skipped if s.reason == "overlap"}
    assert set(overlap) == {"overlapping", "same start"}
    assert "'first'" in overlap["overlapping"] and "which is kept" in overlap["overlapping"]


def test_a_missing_stop_is_the_next_start() -> None:
    plan = _plan(_listing("one", "20260615200000", None, "a"),
                 _listing("one", "20260615203000", "20260615210000", "b"))
    first = plan.accepted[0]
    assert first.end - first.start == timedelta(minutes=30)
    assert plan.spans() == {"c1": (datetime(2026, 6, 15, 20, tzinfo=UTC),
                                   datetime(2026, 6, 15, 21, tzinfo=UTC))}
