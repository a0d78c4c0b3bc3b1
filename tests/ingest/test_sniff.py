import pytest

from stb_origin.ingest.sniff import container_of


@pytest.mark.parametrize("head, expected", [
    (b"\x00\x00\x00\x20ftypisom\x00\x00\x02\x00", "mp4"),
    (b"\x00\x00\x00\x14ftypqt  \x00\x00\x00\x00", "mp4"),
    (b"\x1a\x45\xdf\xa3\x9f\x42\x86\x81", "matroska"),
    (b"RIFF\x00\x10\x00\x00AVI LIST", "avi"),
    (b"FLV\x01\x05\x00\x00\x00\x09", "flv"),
    (b"\x06\x0e\x2b\x34\x02\x05\x01\x01", "mxf"),
    (b"\x00\x00\x01\xba\x44\x00\x04\x00", "mpeg-ps"),
    ((b"\x47" + b"\x00" * 187) * 4, "mpegts"),
    ((b"\x00\x00\x00\x00\x47" + b"\x00" * 187) * 4, "mpegts"),
])
def test_media_containers_are_recognised(head, expected):
    assert container_of(head) == expected


@pytest.mark.parametrize("head", [
    b"",
    b"hello, this is a text file\n" * 10,
    b"#EXTM3U\n#EXTINF:10,\nfile:///etc/passwd\n",
    b"ffconcat version 1.0\nfile '/etc/passwd'\n",
    b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR",
    b"PK\x03\x04\x14\x00\x00\x00",
    b"\x47" + b"\x00" * 100,  # one sync byte is not a transport stream
    b"<?xml version='1.0'?><MPD/>",
])
def test_non_media_is_not_recognised(head):
    assert container_of(head) is None
