"""Which channel listens on which port.

A listener source (an RTMP push, an SRT listener: ``live.sources``) binds its port
on the runner that holds its channel, and a port holds one listener: two
channels listening on one port of one transport would take each other's
encoders, or one would never bind. The API refuses the second (``take``); the
table's key keeps that true when two requests race.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import ForeignKey, Integer, String, delete, select, tuple_
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, Session, mapped_column

from stb_origin.accounts.errors import AlreadyExists
from stb_origin.assets.channels import Channel
from stb_origin.db import Base
from stb_origin.live.sources import parse_source


class ChannelListener(Base):
    __tablename__ = "channel_listeners"

    transport: Mapped[str] = mapped_column(String(3), primary_key=True)  # tcp or udp
    port: Mapped[int] = mapped_column(Integer, primary_key=True)
    channel_id: Mapped[str] = mapped_column(ForeignKey(Channel.id, ondelete="CASCADE"),
                                            index=True)


def ports_of(sources: Sequence[str]) -> list[tuple[str, int]]:
    """The transports and ports the listeners among ``sources`` bind."""
    return [binds for url in sources if (binds := parse_source(url).binds) is not None]


def take(session: Session, channel_id: str, sources: Sequence[str]) -> None:
    """Hold the ports of the channel's listeners (and no other), or AlreadyExists
    naming the channel that holds one of them. The channel's row is flushed."""
    wanted = set(ports_of(sources))
    if wanted:
        holder = session.execute(
            select(ChannelListener.transport, ChannelListener.port, ChannelListener.channel_id)
            .where(tuple_(ChannelListener.transport, ChannelListener.port).in_(sorted(wanted)),
                   ChannelListener.channel_id != channel_id)
            .order_by(ChannelListener.transport, ChannelListener.port).limit(1)).first()
        if holder is not None:
            raise AlreadyExists(f"{holder.transport} port {holder.port} is taken: channel"
                                f" {holder.channel_id} listens on it")
    held = {(transport, port) for transport, port in session.execute(
        select(ChannelListener.transport, ChannelListener.port)
        .where(ChannelListener.channel_id == channel_id))}
    for transport, port in held - wanted:
        session.execute(delete(ChannelListener).where(ChannelListener.transport == transport,
                                                      ChannelListener.port == port))
    session.add_all(ChannelListener(transport=transport, port=port, channel_id=channel_id)
                    for transport, port in sorted(wanted - held))
    try:
        session.flush()
    except IntegrityError:
        # Another channel took it between the check and now.
        raise AlreadyExists("a listener's port was just taken by another channel") from None
