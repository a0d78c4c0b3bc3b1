"""The XMLTV parser: times to UTC across offsets and DST changes, and hostile or
broken files refused with a clear error."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from stb_origin.guide.xmltv import XmltvError, parse, parse_time
from tests.guide.conftest import Show, document


def _utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


@pytest.mark.parametrize(("value", "expected"), [
    ("20260615200000 +0100", _utc(2026, 6, 15, 19, 0)),
    ("20260615200000 -0500", _utc(2026, 6, 16, 1, 0)),
    ("20260615200000 +0530", _utc(2026, 6, 15, 14, 30)),
    ("20260615200000+0100", _utc(2026, 6, 15, 19, 0)),
    ("202606152000 +0100", _utc(2026, 6, 15, 19, 0)),  # no seconds
    ("20260615200000", _utc(2026, 6, 15, 20, 0)),  # no offset: UTC
    ("20260615200000 UTC", _utc(2026, 6, 15, 20, 0)),
])
def test_times_come_out_in_utc(value: str, expected: datetime) -> None:
    assert parse_time(value) == expected


@pytest.mark.parametrize("value", ["", "2026", "20261315200000 +0000", "20260615250000",
                                   "20260615200000 +2500", "20260615200000 CEST",
                                   "yesterday"])
def test_unreadable_times_are_none(value: str) -> None:
    assert parse_time(value) is None


def test_a_london_schedule_across_both_dst_changes(tmp_path: Path) -> None:
    # Europe/London: 29 March 2026 01:00 GMT the clocks go to 02:00 BST; 25 October
    # 2026 02:00 BST they go back to 01:00 GMT. Local times repeat or vanish; the
    # offsets say which is meant.
    shows = [
        Show("bbc1", "20260329003000 +0000", "20260329023000 +0100", "Across spring"),
        Show("bbc1", "20260329023000 +0100", "20260329030000 +0100", "After spring"),
        Show("bbc1", "20261025013000 +0100", "20261025013000 +0000", "Across autumn"),
        Show("bbc1", "20261025013000 +0000", "20261025020000 +0000", "After autumn"),
    ]
    path = tmp_path / "london.xml"
    path.write_bytes(document(shows, ["bbc1"]))
    parsed = parse(path)
    assert parsed.channels == {"bbc1": "bbc1"}
    times = [(item.title, item.start, item.stop) for item in parsed.listings]
    assert times == [
        ("Across spring", _utc(2026, 3, 29, 0, 30), _utc(2026, 3, 29, 1, 30)),  # one hour
        ("After spring", _utc(2026, 3, 29, 1, 30), _utc(2026, 3, 29, 2, 0)),
        ("Across autumn", _utc(2026, 10, 25, 0, 30), _utc(2026, 10, 25, 1, 30)),  # one hour
        ("After autumn", _utc(2026, 10, 25, 1, 30), _utc(2026, 10, 25, 2, 0)),
    ]


def test_the_details_of_a_programme(tmp_path: Path) -> None:
    extra = ("<sub-title>The return</sub-title><desc>A &lt;b&gt;bold&lt;/b&gt; story"
             "</desc><category>Drama</category><category>Film</category>"
             '<episode-num system="xmltv_ns">1.4.</episode-num>'
             '<icon src="https://img.example/1.png"/><rating system="BBFC"><value>15</value>'
             "</rating>")
    path = tmp_path / "one.xml"
    path.write_bytes(document([Show("c", "20260615200000", "20260615210000", "T", extra),
                               Show("c", "20260615210000", None, "U",
                                    '<icon src="javascript:alert(1)"/>')]))
    first, second = parse(path).listings
    assert (first.subtitle, first.description, first.categories, first.episode,
            first.icon_url, first.rating) == ("The return", "A <b>bold</b> story",
                                               ("Drama", "Film"), "S2 E5",
                                               "https://img.example/1.png", "15")
    assert first.line == 4
    assert second.stop is None and second.raw_stop is None
    assert second.icon_url is None  # only http(s) icons reach a box


BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE tv [
 <!ENTITY lol "lol">
 <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol9 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
]>
<tv><programme start="20260615200000" stop="20260615210000" channel="c">
<title>&lol9;</title></programme></tv>
"""
EXTERNAL_ENTITY = b"""<?xml version="1.0"?>
<!DOCTYPE tv [<!ENTITY secret SYSTEM "file:///etc/passwd">]>
<tv><programme start="20260615200000" stop="20260615210000" channel="c">
<title>&secret;</title></programme></tv>
"""
EXTERNAL_DTD = b"""<?xml version="1.0"?>
<!DOCTYPE tv SYSTEM "http://127.0.0.1:9/evil.dtd">
<tv></tv>
"""
PARAMETER_ENTITY = b"""<?xml version="1.0"?>
<!DOCTYPE tv [<!ENTITY % remote SYSTEM "file:///etc/passwd"> %remote;]>
<tv></tv>
"""


@pytest.mark.parametrize(("body", "says"), [
    (BILLION_LAUGHS, "internal subset"),
    (EXTERNAL_ENTITY, "internal subset"),
    (EXTERNAL_DTD, "external DTD"),
    (PARAMETER_ENTITY, "internal subset"),
])
def test_hostile_documents_are_refused(tmp_path: Path, body: bytes, says: str) -> None:
    path = tmp_path / "hostile.xml"
    path.write_bytes(body)
    with pytest.raises(XmltvError) as refused:
        parse(path)
    assert refused.value.code == "unsafe_xml"
    assert says in refused.value.message and "line 2" in refused.value.message
    assert "root:" not in refused.value.message


def test_broken_xml_names_its_line(tmp_path: Path) -> None:
    body = document([Show("c", "20260615200000", "20260615210000", "Fine")]).replace(
        b"</title>", b"</titel>")
    path = tmp_path / "broken.xml"
    path.write_bytes(body)
    with pytest.raises(XmltvError) as refused:
        parse(path)
    assert refused.value.code == "invalid_xml"
    assert refused.value.line == 5
    assert "line 5" in refused.value.message and "mismatched tag" in refused.value.message


def test_a_document_that_is_not_xmltv_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "other.xml"
    path.write_bytes(b"<?xml version='1.0'?>\n<rss><channel/></rss>")
    with pytest.raises(XmltvError) as refused:
        parse(path)
    assert refused.value.code == "invalid_xmltv" and "<rss>" in refused.value.message
