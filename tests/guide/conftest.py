"""XMLTV documents written in tests, channels made directly in the database, tokens."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from xml.sax.saxutils import escape, quoteattr

import pytest

from stb_origin.assets.channels import Channel
from stb_origin.db.types import new_id
from stb_origin.guide.models import ChannelMapping
from stb_origin.services import Services


def xmltv_time(moment: datetime, offset_minutes: int = 0) -> str:
    """``moment`` as XMLTV writes it in a zone ``offset_minutes`` east of UTC."""
    zone = timezone(timedelta(minutes=offset_minutes))
    local = moment.astimezone(zone)
    sign = "-" if offset_minutes < 0 else "+"
    hours, minutes = divmod(abs(offset_minutes), 60)
    return f"{local:%Y%m%d%H%M%S} {sign}{hours:02d}{minutes:02d}"


@dataclass
class Show:
    channel: str
    start: str
    stop: str | None
    title: str
    extra: str = ""


def document(shows: Iterable[Show], channels: Iterable[str] = (),
             head: str = '<?xml version="1.0" encoding="UTF-8"?>\n'
                         '<!DOCTYPE tv SYSTEM "xmltv.dtd">\n') -> bytes:
    lines = [head + '<tv generator-info-name="tests">']
    for channel in channels:
        lines.append(f"  <channel id={quoteattr(channel)}><display-name>{escape(channel)}"
                     "</display-name></channel>")
    for show in shows:
        stop = f" stop={quoteattr(show.stop)}" if show.stop is not None else ""
        lines.append(f"  <programme start={quoteattr(show.start)}{stop}"
                     f" channel={quoteattr(show.channel)}>\n"
                     f"    <title lang=\"en\">{escape(show.title)}</title>{show.extra}\n"
                     "  </programme>")
    lines.append("</tv>\n")
    return "\n".join(lines).encode()


def make_channel(services: Services, name: str, number: int | None = None,
                 dvr_window_s: int = 4 * 3600, xmltv_id: str | None = None) -> str:
    channel_id = new_id()
    with services.db.session() as session:
        session.add(Channel(id=channel_id, name=name, number=number,
                            sources=["srt://127.0.0.1:9000"], ladder="auto",
                            dvr_window_s=dvr_window_s))
        session.flush()
        if xmltv_id is not None:
            session.add(ChannelMapping(xmltv_id=xmltv_id, channel_id=channel_id))
    return channel_id


@pytest.fixture
def operator(services: Services) -> str:
    return services.signer.issue(["admin"])


@pytest.fixture
def box(services: Services) -> str:
    """A box's token: playback only. The guide asks for no more than a valid token."""
    return services.signer.issue(["playback"])
