"""Source URLs: what is taken, what ffmpeg is told, what is refused, what logs show;
listeners (an RTMP push, an SRT listener) and the ports they bind."""

from __future__ import annotations

import pytest

from stb_origin.live.sources import (
    ACCEPTED,
    MAX_LENGTH,
    SourceError,
    input_args,
    parse_source,
    redacted,
    secret_parts,
)

ACCEPTED_SOURCES = [
    "udp://127.0.0.1:5000",
    "udp://239.1.1.1:1234?overrun_nonfatal=1&fifo_size=1000000",
    "udp://239.1.1.1:1234?localaddr=10.0.0.2&sources=10.0.0.9",
    "udp://0.0.0.0:5000/",
    "udp://[ff02::1]:5000",
    "udp://127.0.0.1:5000?timeout=3000000&overrun_nonfatal=1",
    "rtp://239.0.0.1:5004",
    "rtp://127.0.0.1:5004?localrtpport=5004",
    "srt://127.0.0.1:9000",
    "srt://encoder.example.net:9000?mode=caller&latency=200000",
    "srt://0.0.0.0:9000?mode=listener&passphrase=correct-horse-battery",
    "srt://10.0.0.5:9000?streamid=%23%21%3A%3Ar%3Dlive%2Cu%3Dbob",
    "rtmp://media.example.com/live/channel1",
    "rtmp://media.example.com:1936/live/channel1?token=abc",
    "rtmp://user:secret@media.example.com/live/channel1",
    "rtmps://media.example.com/app/stream",
    "rtmp://0.0.0.0:1935/live/Str3am-key_9.x~y?mode=listener",
    "rtmp://127.0.0.1:1936/app/key?mode=listener",
    "rtmp://[::]:1935/live/key?mode=listener",
    "srt://[::1]:9000?mode=listener&passphrase=correct-horse-battery",
    "http://cdn.example.com/live/master.m3u8",
    "https://cdn.example.com/live/index.m3u8?token=abc&expires=123",
    "https://user:pw@cdn.example.com:8443/a/b/c.M3U8",
    "http://127.0.0.1:8080/ch1/playlist.m3u8",
]


@pytest.mark.parametrize("url", ACCEPTED_SOURCES)
def test_every_accepted_form_parses(url: str) -> None:
    source = parse_source(url)
    assert source.url == url
    assert url.startswith(source.scheme + "://")
    assert source.host


@pytest.mark.parametrize(("url", "says"), [
    # other ffmpeg protocols
    ("file:///etc/passwd", "not accepted"),
    ("file:/etc/passwd", "not accepted"),
    ("/etc/passwd", "not accepted"),
    ("concat:http://a/x.ts|file:///etc/passwd", "not accepted"),
    ("subfile,,start,0,end,100,,:/etc/passwd", "not accepted"),
    ("pipe:0", "not accepted"),
    ("data:text/plain;base64,AAAA", "not accepted"),
    ("hls+http://cdn.example.com/x.m3u8", "not accepted"),
    ("crypto+http://cdn.example.com/x.m3u8", "not accepted"),
    ("crypto:http://cdn.example.com/x.m3u8", "not accepted"),
    ("tcp://127.0.0.1:5000", "not accepted"),
    ("rtsp://cam.example.com/stream", "not accepted"),
    ("ftp://example.com/x.m3u8", "not accepted"),
    ("gopher://example.com/", "not accepted"),
    ("UDP://127.0.0.1:5000", "not accepted"),
    ("async:udp://127.0.0.1:5000", "not accepted"),
    ("", "empty"),
    # HLS: only playlists, and no path tricks
    ("http://cdn.example.com/video.ts", ".m3u8"),
    ("https://cdn.example.com/", ".m3u8"),
    ("http://cdn.example.com/a/../../etc/passwd.m3u8", ".."),
    ("http://cdn.example.com/a/%2e%2e/x.m3u8", ".."),
    ("http://cdn.example.com/./x.m3u8", ".."),
    ("http://cdn.example.com/x.m3u8%00.ts", "control"),
    ("http://cdn.example.com/a%5c..%5cx.m3u8", "backslash"),
    ("http://cdn.example.com/x.m3u8#frag", "fragment"),
    ("http://cdn.example.com/x.m3u8\n", "URL characters"),
    ("http://cdn.example.com/x y.m3u8", "URL characters"),
    ("http://cdn.example.com/x.m3u8|file:", "URL characters"),
    ("http://cdn.example.com/x\\y.m3u8", "URL characters"),
    ('http://cdn.example.com/"x".m3u8', "URL characters"),
    ("http://cdn.example.com/%zz.m3u8", "URL characters"),
    ("http://cdn.exämple.com/x.m3u8", "URL characters"),
    ("http:///x.m3u8", "host"),
    ("http://bad_host.example/x.m3u8", "host"),
    ("http://-bad.example/x.m3u8", "host"),
    ("http://[zz::1]/x.m3u8", "host"),
    # sockets: host and port, no credentials, no path, known options only
    ("udp://127.0.0.1", "port"),
    ("udp://127.0.0.1:0", "port"),
    ("udp://127.0.0.1:70000", "port"),
    ("udp://127.0.0.1:abc", "port"),
    ("udp://user:pw@127.0.0.1:5000", "user"),
    ("udp://@239.0.0.1:5000", "user"),
    ("udp://127.0.0.1:5000/x", "no path"),
    ("udp://127.0.0.1:5000?localport=1&foo=bar", "option not accepted"),
    ("udp://127.0.0.1:5000?timeout=1&timeout=2", "twice"),
    ("udp://127.0.0.1:5000?timeout", "name=value"),
    ("rtp://127.0.0.1", "port"),
    ("srt://127.0.0.1:9000?mode=server", "caller, listener or rendezvous"),
    ("srt://127.0.0.1:9000?protocol_whitelist=file", "option not accepted"),
    ("srt://u:p@127.0.0.1:9000", "user"),
    ("rtmp://media.example.com", "application and stream"),
    ("rtmp://media.example.com/", "application and stream"),
    ("rtmp://media.example.com/live/../x", ".."),
    # listeners: a local address and a port; RTMP: /app/streamkey and only mode
    ("srt://encoder.example.net:9000?mode=listener", "IP address"),
    ("rtmp://media.example.com:1935/live/key?mode=listener", "IP address"),
    ("rtmp://0.0.0.0/live/key?mode=listener", "names its port"),
    ("rtmps://0.0.0.0:1935/live/key?mode=listener", "TLS certificate"),
    ("rtmp://user:pw@0.0.0.0:1935/live/key?mode=listener", "no user or password"),
    ("rtmp://0.0.0.0:1935/key?mode=listener", "application and stream key"),
    ("rtmp://0.0.0.0:1935/live/key/more?mode=listener", "application and stream key"),
    ("rtmp://0.0.0.0:1935/live//key?mode=listener", "application and stream key"),
    ("rtmp://0.0.0.0:1935/live/k%2Fey?mode=listener", "application and stream key"),
    ("rtmp://0.0.0.0:1935/live/key?mode=listener&timeout=5", "no option but mode"),
    ("rtmp://0.0.0.0:1935/live/key?mode=server", "rtmp mode: listener"),
    ("rtmp://0.0.0.0:1935/live/key?mode=listener&mode=listener", "rtmp mode: listener"),
    ("rtmp://media.example.com/live/key?mode=caller", "rtmp mode: listener"),
    ("http://" + "a" * MAX_LENGTH + ".m3u8", "at most"),
])
def test_every_refused_form_is_refused_with_a_clear_message(url: str, says: str) -> None:
    with pytest.raises(SourceError) as refused:
        parse_source(url)
    message = str(refused.value)
    assert says in message
    if "not accepted" in says and "option" not in says:
        assert ACCEPTED in message  # names the accepted schemes
    # A refusal never repeats the URL (it may hold a secret).
    if len(url) > 12:
        assert url not in message


@pytest.mark.parametrize("value", [None, 5, ["udp://127.0.0.1:5000"], {"url": "x"}])
def test_a_source_that_is_not_a_string_is_refused(value: object) -> None:
    with pytest.raises(SourceError, match="string"):
        parse_source(value)


def test_hostile_strings_are_refused_and_never_echoed() -> None:
    for url in ("udp://127.0.0.1:5000\x00", "http://x/\x1b[31m.m3u8", "udp://127.0.0.1:5000\r\n",
                "\u202ehttp://x/a.m3u8", "http://x/a.m3u8\u2028", "srt://127.0.0.1:9000?mode=%0a"):
        with pytest.raises(SourceError) as refused:
            parse_source(url)
        assert all(c.isprintable() for c in str(refused.value))


def test_ffmpeg_gets_only_the_protocols_each_scheme_needs_and_an_io_timeout() -> None:
    def options(url: str) -> dict[str, str]:
        argv = input_args(url)
        assert argv[-2:] == ["-i", url]
        pairs = argv[:-2]
        return dict(zip(pairs[::2], pairs[1::2], strict=True))

    udp = options("udp://127.0.0.1:5000")
    assert udp["-protocol_whitelist"] == "udp"
    assert udp["-timeout"] == "5000000" and udp["-overrun_nonfatal"] == "1"
    # The RTP demuxer reads no command-line time-out: it goes in the URL, unless given.
    assert input_args("rtp://127.0.0.1:5004") == [
        "-protocol_whitelist", "rtp,udp", "-i", "rtp://127.0.0.1:5004?timeout=5000000"]
    assert input_args("rtp://127.0.0.1:5004?localrtpport=5004")[-1] == (
        "rtp://127.0.0.1:5004?localrtpport=5004&timeout=5000000")
    assert input_args("rtp://127.0.0.1:5004?timeout=1")[-1] == "rtp://127.0.0.1:5004?timeout=1"
    srt = options("srt://127.0.0.1:9000?mode=listener")
    assert srt["-protocol_whitelist"] == "srt" and srt["-timeout"] == "5000000"
    rtmp = options("rtmp://media.example.com/live/a")
    assert rtmp["-protocol_whitelist"] == "rtmp,tcp"
    # rtmp's own "timeout" means "listen": its I/O time-out is the generic one.
    assert rtmp["-rw_timeout"] == "5000000" and "-timeout" not in rtmp
    assert options("rtmps://media.example.com/live/a")["-protocol_whitelist"] == "rtmps,tls,tcp"
    # An RTMP listener: ffmpeg's own -listen, and our mode gone from the URL it is given.
    assert input_args("rtmp://0.0.0.0:1935/live/key?mode=listener") == [
        "-protocol_whitelist", "rtmp,tcp", "-rw_timeout", "5000000", "-listen", "1",
        "-i", "rtmp://0.0.0.0:1935/live/key"]
    for url in ("http://cdn.example.com/x.m3u8", "https://cdn.example.com/x.m3u8"):
        hls = options(url)
        # No file, pipe, data, concat...: a hostile playlist cannot reach them.
        assert hls["-protocol_whitelist"] == "http,https,tcp,tls,crypto"
        assert hls["-f"] == "hls" and hls["-rw_timeout"] == "5000000"
        assert int(hls["-m3u8_hold_counters"]) <= 20


def test_input_args_refuses_what_parse_refuses() -> None:
    with pytest.raises(SourceError):
        input_args("file:///etc/passwd")


@pytest.mark.parametrize(("url", "shown"), [
    ("udp://127.0.0.1:5000?timeout=3000000&overrun_nonfatal=1",
     "udp://127.0.0.1:5000?timeout=3000000&overrun_nonfatal=1"),
    ("srt://0.0.0.0:9000?mode=listener&passphrase=correct-horse-battery",
     "srt://0.0.0.0:9000?mode=listener&passphrase=***"),
    ("srt://10.0.0.5:9000?streamid=%23%21%3A%3Au%3Dbob&latency=200",
     "srt://10.0.0.5:9000?streamid=***&latency=200"),
    ("rtmp://user:secret@media.example.com/live/ch?token=abc",
     "rtmp://***@media.example.com/live/***?token=***"),
    # An RTMP stream key is the last segment of the path, pushed or pulled.
    ("rtmp://0.0.0.0:1935/live/s3cr3t-key?mode=listener",
     "rtmp://0.0.0.0:1935/live/***?mode=listener"),
    ("rtmps://media.example.com/app/stream", "rtmps://media.example.com/app/***"),
    ("https://u:pw@cdn.example.com:8443/a/x.m3u8?token=abc&expires=9",
     "https://***@cdn.example.com:8443/a/x.m3u8?token=***&expires=***"),
    ("http://cdn.example.com/x.m3u8", "http://cdn.example.com/x.m3u8"),
    ("http://cdn.example.com/x.m3u8#secret", "http://cdn.example.com/x.m3u8#***"),
])
def test_redacted_hides_credentials_passphrases_and_query_tokens(url: str, shown: str) -> None:
    assert redacted(url) == shown


@pytest.mark.parametrize("value", [None, 3, "http://[::1", "\x00\x1b[31m", "a b\nc"])
def test_redacted_takes_anything_and_answers_one_printable_line(value: object) -> None:
    shown = redacted(value)
    assert isinstance(shown, str)
    assert all(c.isprintable() and c != " " for c in shown) or shown.startswith("<")
    assert "\n" not in shown


@pytest.mark.parametrize(("url", "binds"), [
    ("rtmp://0.0.0.0:1935/live/key?mode=listener", ("tcp", 1935)),
    ("srt://0.0.0.0:9000?mode=listener", ("udp", 9000)),
    ("srt://127.0.0.1:9000?mode=caller", None),
    ("srt://127.0.0.1:9000", None),
    ("rtmp://127.0.0.1:1935/live/key", None),
    ("udp://0.0.0.0:5000", None),
])
def test_a_listener_says_which_port_it_binds(url: str, binds: tuple[str, int] | None) -> None:
    source = parse_source(url)
    assert source.binds == binds
    assert source.listens == (binds is not None)


def test_secret_parts_are_what_redacted_hides_as_written_and_decoded() -> None:
    url = "rtmp://user:pw@media.example.com:1935/live/k3y?token=a%2Fb&timeout=10"
    found = secret_parts(url)
    assert {"user:pw", "a%2Fb", "a/b", "k3y"} <= set(found)
    assert "10" not in found  # a plain option
    assert found == sorted(found, key=len, reverse=True)
    assert secret_parts("srt://0.0.0.0:9000?mode=listener&passphrase=correct-horse") == [
        "correct-horse"]
    assert secret_parts("udp://127.0.0.1:5000?timeout=1") == []
