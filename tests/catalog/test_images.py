"""catalog.images: the argv it builds, and real ffmpeg on real and hostile images."""

from __future__ import annotations

from pathlib import Path

import pytest

from stb_origin import proc
from stb_origin.catalog import images
from stb_origin.catalog.images import JPEG, PNG, BadImage
from tests.catalog.images import make_image, png_claiming, probe_size


def test_every_read_names_its_demuxer_and_only_local_files() -> None:
    argv = images.scale_argv(PNG, Path("/w/in"), [(960, Path("/w/960.png")),
                                                  (480, Path("/w/480.png"))])
    assert argv[argv.index("-f"):argv.index("-i") + 2] == ["-f", "png_pipe", "-i", "file:/w/in"]
    assert argv[argv.index("-protocol_whitelist") + 1] == "file"
    assert argv[argv.index("-filter_complex") + 1] == (
        "[0:v]split=2[s0][s1];[s0]scale=960:-1[o0];[s1]scale=480:-1[o1]")
    assert argv.count("-map_metadata") == 2 and "-q:v" not in argv
    probe = images.probe_argv(JPEG, Path("/w/in"))
    assert probe[probe.index("-f") + 1] == "jpeg_pipe"
    assert probe[probe.index("-protocol_whitelist") + 1] == "file"


@pytest.mark.parametrize(("width", "widths"), [
    (4000, [1920, 960, 480]), (1920, [1920, 960, 480]), (1000, [960, 480]), (300, [300]),
])
def test_no_size_is_wider_than_the_upload(width: int, widths: list[int]) -> None:
    assert images.widths_for(width) == widths


@pytest.mark.parametrize(("head", "fmt"), [(b"\xff\xd8\xff\xe0rest", JPEG),
                                           (b"\x89PNG\r\n\x1a\nrest", PNG)])
def test_the_magic_decides_the_format(head: bytes, fmt: images.Format) -> None:
    assert images.sniff(head) is fmt


@pytest.mark.parametrize("head", [b"#EXTM3U\n#EXT-X-VERSION:3", b"<svg xmlns=", b"GIF89a",
                                  b"RIFF\x00\x00\x00\x00WEBP", b"", b"\xff\xd8"])
def test_anything_else_is_refused(head: bytes) -> None:
    with pytest.raises(BadImage, match="not a JPEG or PNG"):
        images.sniff(head)


def test_a_jpeg_is_scaled_to_each_width_keeping_its_aspect(tmp_path: Path) -> None:
    source = tmp_path / "in.jpg"
    make_image(source, 2400, 1350)
    made = images.scale(JPEG, source, tmp_path)
    assert [(w, h) for w, h, _ in made] == [(1920, 1080), (960, 540), (480, 270)]
    for width, height, path in made:
        assert probe_size(path) == ("mjpeg", width, height)


def test_a_png_stays_a_png_with_its_alpha(tmp_path: Path) -> None:
    source = tmp_path / "in.png"
    make_image(source, 640, 360, alpha=True)
    ((width, height, path),) = images.scale(PNG, source, tmp_path)
    assert probe_size(path) == ("png", 480, 270)
    pixel_format = proc.run(["ffprobe", "-v", "error", "-show_entries", "stream=pix_fmt",
                             "-of", "csv=p=0", str(path)], timeout=30).stdout.strip()
    assert pixel_format == "rgba"


@pytest.mark.parametrize(("width", "height", "message"), [
    # Past what ffprobe itself takes: refused by it already.
    (60000, 60000, "not a readable PNG"),
    (8192, 8192, "8192x8192: each side"), (9000, 100, "9000x100: each side"),
    (10, 10, "10x10: each side")])
def test_sizes_out_of_bounds_are_refused_before_decoding(tmp_path: Path, width: int,
                                                         height: int, message: str) -> None:
    bomb = tmp_path / "bomb.png"
    bomb.write_bytes(png_claiming(width, height))
    with pytest.raises(BadImage, match=message):
        images.scale(PNG, bomb, tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bomb.png"]  # nothing was decoded


def test_a_truncated_image_is_refused_not_filled_in(tmp_path: Path) -> None:
    source = tmp_path / "in.jpg"
    whole = make_image(source, 1280, 720)
    source.write_bytes(whole[: len(whole) // 3])
    with pytest.raises(BadImage, match="damaged or truncated"):
        images.scale(JPEG, source, tmp_path / "out")


def test_a_playlist_behind_a_jpeg_magic_is_not_read_as_one(tmp_path: Path) -> None:
    local = tmp_path / "secret.jpg"
    make_image(local, 640, 360)
    fake = tmp_path / "fake.jpg"
    fake.write_bytes(b"\xff\xd8\xff" + f"\n#EXTM3U\n#EXTINF:1,\nfile:{local}\n".encode())
    with pytest.raises(BadImage, match="not a readable JPG"):
        images.scale(JPEG, fake, tmp_path)
