"""A channel's source URLs: which ones are taken, what ffmpeg is told to read them, and
how they appear in logs.

Only live feeds are sources: UDP and RTP (MPEG-TS, unicast or multicast), SRT
(caller, listener or rendezvous), RTMP(S) pulled from a server, RTMP pushed to
us and HLS pulled over HTTP(S). Whatever else ffmpeg can open (``file:``, ``concat:``,
``subfile:``, ``pipe:``, ``data:``, ``hls+http:``, ``crypto:``, ``tcp:``...) is
refused when the channel is saved, and each source's ffmpeg also gets a
``-protocol_whitelist`` of exactly the protocols its scheme needs: a remote HLS
playlist naming ``file:///etc/passwd`` cannot make ffmpeg open a file, since
the demuxer opens every playlist and segment under the same whitelist.

A listener waits for an encoder to come to it: ``srt://ADDRESS:PORT?mode=listener``
(the encoder calls) and ``rtmp://ADDRESS:PORT/APP/STREAMKEY?mode=listener`` (the
encoder publishes, as OBS does; ``mode`` is ours and never reaches ffmpeg). Its
host is the local address it binds, an IP literal, and its port is given. Only
one process can hold that port, so a listener is read through its relay
(``live.relay``), never probed directly. There is no rtmps listener: it would need a
certificate to serve.

A stalled source must make ffmpeg fail rather than hang, with each protocol's
own I/O time-out (ffmpeg 5.1, ``ffmpeg -h protocol=NAME``): ``timeout`` (µs)
for udp and srt, the generic ``rw_timeout`` (µs) for rtmp and http, which the
HLS demuxer hands on to every playlist and segment it opens. ``timeout`` is no
I/O time-out for rtmp: there it means "listen for a publisher", so it is never
given. The RTP demuxer opens its URL without the command line's options, so
rtp gets ``timeout=`` in its URL instead. A listener waits for its encoder as
long as it takes; once one is there, the time-out holds. (The runner also replaces an
ffmpeg that lists no segment for a while: these time-outs only make a dead pull end
sooner and visibly.)

Secrets ride in source URLs (user:password@, SRT's ``passphrase=``, tokens in
the query, an RTMP stream key in the last segment of its path): ``redacted`` is how a
source is written anywhere but the admin API, and ``secret_parts`` what to scrub from
what ffmpeg says about it.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import parse_qsl, unquote, urlsplit

MAX_LENGTH = 2000
# A source URL -> ffmpeg's input options for it (``input_args``, or a run's wrapper).
InputArgs = Callable[[str], list[str]]
ACCEPTED = ("udp://host:port, rtp://host:port, srt://host:port, rtmp:// or rtmps:// (a pull"
            " from a server), rtmp://address:port/app/streamkey?mode=listener (a push to us)"
            " and http:// or https:// to an HLS playlist (.m3u8)")
IO_TIMEOUT_US = 5_000_000
# Reloads of an HLS playlist that brought no new segment before ffmpeg gives up
# (ffmpeg's default, 1000, waits most of an hour).
HLS_HOLD_RELOADS = 10

# RFC 3986's characters and nothing else: no spaces, quotes, pipes, backslashes or
# control characters, which ffmpeg's own URL splitting reads in its own ways.
_URL_CHARS = re.compile(r"[A-Za-z0-9\-._~:/?#\[\]@!$&'()*+,;=%]*")
_PERCENT = re.compile(r"%(?![0-9A-Fa-f]{2})")
_LABEL = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?")
_REDACTED = "***"
_WHITELISTS = {
    "udp": "udp",
    "rtp": "rtp,udp",
    "srt": "srt",
    "rtmp": "rtmp,tcp",
    "rtmps": "rtmps,tls,tcp",
    "http": "http,https,tcp,tls,crypto",
    "https": "http,https,tcp,tls,crypto",
}
# The options each socket scheme may carry in its query (what ffmpeg reads there);
# rtmp and http queries belong to the server and are passed on untouched.
_UDP_OPTIONS = frozenset({"timeout", "overrun_nonfatal", "fifo_size", "buffer_size",
                          "localaddr", "sources", "block", "reuse", "pkt_size"})
_QUERY_OPTIONS: dict[str, frozenset[str]] = {
    "udp": _UDP_OPTIONS,
    "rtp": frozenset({"timeout", "buffer_size", "localaddr", "sources", "block", "pkt_size",
                      "rtcpport", "localrtpport", "localrtcpport", "connect"}),
    "srt": frozenset({"mode", "latency", "rcvlatency", "peerlatency", "passphrase",
                      "pbkeylen", "enforced_encryption", "streamid", "srt_streamid", "timeout",
                      "connect_timeout", "listen_timeout", "pkt_size", "payload_size",
                      "maxbw", "tlpktdrop", "nakreport", "rcvbuf", "recv_buffer_size",
                      "lossmaxttl"}),
}
# Query values that say nothing secret, shown as they are by ``redacted``.
_PLAIN_OPTIONS = (_UDP_OPTIONS | _QUERY_OPTIONS["rtp"] | _QUERY_OPTIONS["srt"]) - {
    "passphrase", "streamid", "srt_streamid"}
_SRT_MODES = frozenset({"caller", "listener", "rendezvous"})
LISTENER = "listener"
# What a listener binds: two listeners of one transport may not share a port.
TRANSPORTS = {"srt": "udp", "rtmp": "tcp"}
# A stream key as ffmpeg's RTMP server compares it: the URL's last segment, as written.
_PATH_NAME = re.compile(r"[A-Za-z0-9._~-]+")


class SourceError(ValueError):
    """A source URL that is not taken; the message never repeats the URL."""


@dataclass(frozen=True)
class Source:
    url: str
    scheme: str
    host: str
    port: int | None
    listens: bool = False  # an encoder comes to us: the run reads it through a relay

    @property
    def binds(self) -> tuple[str, int] | None:
        """The transport and port a listener holds (None for a pull)."""
        if not self.listens or self.port is None:
            return None
        return TRANSPORTS[self.scheme], self.port


def parse_source(url: object) -> Source:
    """The source, or SourceError saying what is wrong with it."""
    if not isinstance(url, str):
        raise SourceError("a source must be a URL string")
    if not url:
        raise SourceError(f"a source may not be empty; accepted: {ACCEPTED}")
    if len(url) > MAX_LENGTH:
        raise SourceError(f"a source URL may be at most {MAX_LENGTH} characters")
    scheme, sep, _ = url.partition("://")
    if not sep or scheme not in _WHITELISTS:
        shown = scheme.partition(":")[0][:20] if sep or ":" in scheme else ""
        named = f' "{shown}"' if re.fullmatch(r"[a-z0-9+.-]+", shown) else ""
        raise SourceError(f"source scheme{named} not accepted; accepted: {ACCEPTED}")
    if not _URL_CHARS.fullmatch(url) or _PERCENT.search(url):
        raise SourceError("a source URL may hold only URL characters (RFC 3986: no spaces,"
                          " quotes, control characters or stray %)")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise SourceError("the source's host or port cannot be read") from None
    if parts.fragment or "#" in url:
        raise SourceError("a source URL may not have a #fragment")
    host = parts.hostname or ""
    _check_host(host, parts.netloc)
    _check_decoded(parts.path, parts.query)
    listens = False
    if scheme in ("udp", "rtp", "srt"):
        listens = _check_socket_source(scheme, parts.username, parts.password, port,
                                       parts.path, parts.query)
    elif scheme in ("rtmp", "rtmps"):
        if not parts.path.strip("/"):
            raise SourceError("an RTMP source names its application and stream:"
                              " rtmp://host[:port]/app/stream")
        listens = _rtmp_mode(parts.query) == LISTENER
        if listens:
            _check_rtmp_listener(scheme, parts.username, parts.password, port, parts.path,
                                 parts.query)
    else:
        if not parts.path.lower().endswith(".m3u8"):
            raise SourceError("an HTTP(S) source is an HLS playlist: its path ends in .m3u8")
    if port == 0:
        raise SourceError("the source's port must be 1 to 65535")
    if listens:
        _check_bind_address(host)
    return Source(url, scheme, host, port, listens)


def _check_host(host: str, netloc: str) -> None:
    if not host:
        raise SourceError("a source URL names its host (an address or a name)")
    if netloc.rpartition("@")[2].startswith("["):
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            raise SourceError("the source's host is not an IPv6 address") from None
        return
    labels = host.split(".")
    if len(host) > 253 or not all(_LABEL.fullmatch(label) for label in labels):
        raise SourceError("the source's host is not a valid address or name")


def _check_decoded(path: str, query: str) -> None:
    """What ffmpeg will see once it decodes %XX: no control characters, no path tricks."""
    decoded = unquote(path + "?" + query)
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in decoded):
        raise SourceError("a source URL may not encode control characters")
    if "\\" in decoded or any(seg in (".", "..") for seg in unquote(path).split("/")):
        raise SourceError("a source URL's path may not hold . or .. segments or backslashes")


def _check_socket_source(scheme: str, username: str | None, password: str | None,
                         port: int | None, path: str, query: str) -> bool:
    """Checks a udp, rtp or srt source; whether it is an SRT listener."""
    if username is not None or password is not None:
        raise SourceError(f"a {scheme} source takes no user or password before the host")
    if port is None:
        raise SourceError(f"a {scheme} source names its port: {scheme}://host:port")
    if path not in ("", "/"):
        raise SourceError(f"a {scheme} source has no path: {scheme}://host:port[?options]")
    try:
        options = parse_qsl(query, keep_blank_values=True, strict_parsing=bool(query))
    except ValueError:
        raise SourceError("the source's options (after ?) are not name=value pairs") from None
    names = [name for name, _ in options]
    unknown = sorted(set(names) - _QUERY_OPTIONS[scheme])
    if unknown:
        shown = ", ".join(n for n in unknown if re.fullmatch(r"[a-z_]{1,30}", n)) or "?"
        raise SourceError(f"{scheme} option not accepted: {shown}; accepted:"
                          f" {', '.join(sorted(_QUERY_OPTIONS[scheme]))}")
    if len(set(names)) != len(names):
        raise SourceError("a source option is given twice")
    mode = dict(options).get("mode")
    if scheme == "srt" and mode is not None and mode not in _SRT_MODES:
        raise SourceError("srt mode: caller, listener or rendezvous")
    return scheme == "srt" and mode == LISTENER


def _rtmp_mode(query: str) -> str | None:
    """An RTMP URL's mode: listener (a push to us), or None (a pull; the rest of the
    query is the server's)."""
    modes = [value for name, value in parse_qsl(query, keep_blank_values=True)
             if name == "mode"]
    if not modes:
        return None
    if modes != [LISTENER]:
        raise SourceError("rtmp mode: listener (an encoder publishes to us), or no mode (a"
                          " pull from a server)")
    return LISTENER


def _check_rtmp_listener(scheme: str, username: str | None, password: str | None,
                         port: int | None, path: str, query: str) -> None:
    if scheme == "rtmps":
        raise SourceError("an rtmps listener is not offered (it would need a TLS certificate"
                          " to serve): take the push on rtmp:// over a trusted network, or"
                          " use srt:// with a passphrase")
    form = "rtmp://address:port/app/streamkey?mode=listener"
    if username is not None or password is not None:
        raise SourceError(f"an RTMP listener takes no user or password: {form}")
    if port is None:
        raise SourceError(f"an RTMP listener names its port: {form}")
    names = path.split("/")[1:]
    if len(names) != 2 or not all(_PATH_NAME.fullmatch(name) for name in names):
        raise SourceError(f"an RTMP listener's path is its application and stream key, each"
                          f" of letters, digits and - . _ ~: {form}")
    if query != f"mode={LISTENER}":
        raise SourceError(f"an RTMP listener takes no option but mode: {form}")


def _check_bind_address(host: str) -> None:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        raise SourceError("a listener's host is the local address it binds: an IP address"
                          " (0.0.0.0, ::, 127.0.0.1 or one of this machine's), not a name"
                          ) from None


def input_args(url: str) -> list[str]:
    """ffmpeg's (and ffprobe's) input options for a source, ending with ``-i URL``. For
    a listener, they make the one ffmpeg that waits for the encoder (``live.relay``)."""
    source = parse_source(url)
    whitelist = ["-protocol_whitelist", _WHITELISTS[source.scheme]]
    if source.scheme == "udp":
        options = ["-timeout", str(IO_TIMEOUT_US), "-overrun_nonfatal", "1"]
    elif source.scheme == "rtp":
        # The RTP demuxer opens the URL with options of its own, not ours: the wait for
        # the first packet is bounded only by the URL's own timeout= (a later silence is
        # the runner's to notice).
        return [*whitelist, "-i", _with_option(source.url, "timeout", str(IO_TIMEOUT_US))]
    elif source.scheme == "srt":
        options = ["-timeout", str(IO_TIMEOUT_US)]
    elif source.listens:  # rtmp: its own "listen" option, not our mode
        url = urlsplit(source.url)._replace(query="").geturl()
        return [*whitelist, "-rw_timeout", str(IO_TIMEOUT_US), "-listen", "1", "-i", url]
    elif source.scheme in ("rtmp", "rtmps"):
        options = ["-rw_timeout", str(IO_TIMEOUT_US), "-rtmp_live", "live"]
    else:
        options = ["-f", "hls", "-rw_timeout", str(IO_TIMEOUT_US),
                   "-m3u8_hold_counters", str(HLS_HOLD_RELOADS)]
    return [*whitelist, *options, "-i", source.url]


def _with_option(url: str, name: str, value: str) -> str:
    if name in dict(parse_qsl(urlsplit(url).query)):
        return url
    return f"{url}{'&' if '?' in url else '?'}{name}={value}"


def redacted(url: object) -> str:
    """The URL with what may be secret replaced by ***: the user and password, every
    query value but the plain socket options (timeout, mode, latency...) and an RTMP
    URL's last path segment (its stream key, pulled or pushed)."""
    if not isinstance(url, str):
        return "<not a URL>"
    try:
        parts = urlsplit(url[:MAX_LENGTH])
        hostport = parts.netloc.rpartition("@")[2]
    except ValueError:
        return "<unreadable URL>"
    userinfo = f"{_REDACTED}@" if "@" in parts.netloc else ""
    query = "&".join(
        f"{name}={value if name in _PLAIN_OPTIONS else _REDACTED}" if sep else name
        for name, sep, value in _query_pairs(parts.query))
    path = parts.path
    if parts.scheme in ("rtmp", "rtmps") and path.rpartition("/")[2]:
        path = f"{path.rpartition('/')[0]}/{_REDACTED}"
    shown = f"{parts.scheme}://{userinfo}{hostport}{path}"
    if query:
        shown += f"?{query}"
    if parts.fragment:
        shown += f"#{_REDACTED}"
    # Whatever it was, the answer is one printable line.
    return "".join(c if c.isprintable() and c != " " else "%" + f"{ord(c):02X}"[-2:]
                   for c in shown)


def secret_parts(url: str) -> list[str]:
    """What ``redacted`` hides in a source URL, as written and decoded: the strings to
    scrub from any text that may quote it."""
    parts = urlsplit(url)
    found = [parts.netloc.rpartition("@")[0]] if "@" in parts.netloc else []
    found += [value for name, sep, value in _query_pairs(parts.query)
              if sep and name not in _PLAIN_OPTIONS]
    if parts.scheme in ("rtmp", "rtmps"):
        found.append(parts.path.rpartition("/")[2])
    found.append(parts.fragment)
    found += [unquote(secret) for secret in found]
    # Longest first, so that a secret holding another is scrubbed whole.
    return sorted({secret for secret in found if secret}, key=len, reverse=True)


def _query_pairs(query: str) -> list[tuple[str, str, str]]:
    return [pair.partition("=") for pair in query.split("&") if pair]
