"""Loudness normalisation, end to end: a quiet and a loud master are measured,
transcoded with and without normalisation and packaged; every audio rendition is
then played over HTTP through its encrypted playlist and measured with ffmpeg's
ebur128 filter (EBU R128: -23 LUFS, true peak at most -1 dBTP)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import pytest

from stb_origin import proc
from stb_origin.drm.keys import generate_key
from stb_origin.packager.package import (
    AudioInput,
    PackageResult,
    VariantInput,
    count_segments,
    keys_needed,
    package,
)
from stb_origin.settings import Settings
from stb_origin.transcode import Ladder, SourceInfo, plan_ladder, probe, transcode
from stb_origin.transcode.normalise import normalised
from tests.packager import support
from tests.support.media import make_level_clip

SECONDS = 5
TOLERANCE_LU = 1.0
# volume (dB) of make_level_clip, the loudness it comes to, and its audio tracks' channels:
# quiet is stereo and mono; loud is stereo and 5.1 (an AAC stereo fold and an E-AC-3 5.1
# rendition). The level is the first track's: five channels of it are louder still.
MASTERS = {"quiet": (-20.0, -35.0, (2, 1)), "loud": (5.0, -10.0, (2, 6))}


@dataclass(frozen=True)
class Packaged:
    out: Path
    result: PackageResult
    keys: dict[str, bytes]


@dataclass(frozen=True)
class Made:
    kind: str  # a key of MASTERS
    master: Path
    ladder: Ladder  # as measured
    normalised: Packaged
    plain: Packaged  # the same master with normalisation turned off


def key_uri(key_id: str) -> str:
    return f"/keys/{key_id}"


@pytest.fixture(scope="module", params=sorted(MASTERS))
def made(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Made:
    support.ffmpeg()
    tmp = tmp_path_factory.mktemp(request.param)
    volume, _, channels = MASTERS[request.param]
    master = make_level_clip(tmp / "master.mkv", volume, channels, seconds=SECONDS)
    settings = Settings(x264_preset="ultrafast", segment_seconds=2.0)
    info = probe(master, settings)
    plain = plan_ladder(info, settings)
    measured = normalised([master], plain, settings)
    return Made(request.param, master, measured,
                normalised=_made(master, info, measured, settings, tmp / "on"),
                plain=_made(master, info, plain, settings, tmp / "off"))


def _made(master: Path, info: SourceInfo, ladder: Ladder, settings: Settings, tmp: Path
          ) -> Packaged:
    transcode(master, info, ladder, tmp / "work", settings)
    keys = [generate_key() for _ in range(keys_needed(count_segments(tmp / "work"), 2))]
    result = package(
        tmp / "work", [VariantInput(r.name, r.width, r.height, ladder.fps)
                       for r in ladder.renditions],
        keys, key_uri, 2, tmp / "out",
        audio=[AudioInput(a.name, a.group, a.label, a.language, a.channels, a.default)
               for a in ladder.audio])
    return Packaged(tmp / "out", result, {key_uri(k.key_id): k.key for k in keys})


def ebur128(url_or_path: str, channels: int) -> tuple[float, float]:
    """(integrated LUFS, true peak dBTP) of the first audio stream, decoded to the end."""
    # A mono track plays on both speakers: R128 counts it as dual mono.
    options = "peak=true:framelog=verbose" + (":dualmono=true" if channels == 1 else "")
    done = proc.run([support.ffmpeg(), "-nostdin", "-hide_banner", "-nostats", "-i", url_or_path,
                     "-map", "0:a:0", "-af", f"ebur128={options}", "-f", "null", "-"],
                    timeout=support.TIMEOUT)
    summary = done.stderr_tail[done.stderr_tail.rindex("Summary:"):]
    integrated = re.search(r"I:\s+(-?[\d.]+) LUFS", summary)
    peak = re.search(r"True peak:\s+Peak:\s+(-?[\d.]+|-inf) dBFS", summary)
    assert integrated and peak, summary
    return float(integrated.group(1)), float(peak.group(1))


def test_the_masters_are_as_quiet_and_as_loud_as_claimed(made: Made) -> None:
    integrated, peak = ebur128(str(made.master), 2)
    assert abs(integrated - MASTERS[made.kind][1]) <= 1.5, integrated
    if made.kind == "loud":
        assert peak > -2.0, "the loud master peaks near full scale"


def test_each_rendition_is_measured_and_given_the_gain_to_the_target(made: Made) -> None:
    for audio in made.ladder.audio:
        assert audio.loudness is not None, audio.name
        assert audio.loudness.gain_db == pytest.approx(-23.0 - audio.loudness.input_i, abs=0.01)
        # Both masters need one fixed gain, no dynamic processing.
        assert audio.loudness.linear, audio.name
    measured = {a.name: a.loudness.input_i for a in made.ladder.audio if a.loudness}
    claimed = MASTERS[made.kind][1]
    # The stereo fold of a 5.1 track is quieter than the 5.1 itself: measured apart.
    assert all(abs(i - claimed) <= 9 for i in measured.values()), measured
    assert abs(measured["audio0_aac"] - claimed) <= 1.5, measured


def test_every_rendition_plays_at_the_target_through_the_encrypted_package(made: Made) -> None:
    packaged = made.normalised
    with support.serve(packaged.out) as server:
        server.keys.update(packaged.keys)
        for audio in packaged.result.audio:
            integrated, peak = ebur128(f"{server.base}/{audio.name}/index.m3u8", audio.channels)
            assert abs(integrated - -23.0) <= TOLERANCE_LU, (audio.name, integrated)
            assert peak <= -1.0, (audio.name, peak)
        assert set(packaged.keys) <= set(server.requests), "played through its keys"


def test_plain_renditions_keep_the_masters_level(made: Made) -> None:
    # What the normalised test would see if normalisation did nothing.
    claimed = MASTERS[made.kind][1]
    aac = next(a for a in made.plain.result.audio if a.name == "audio0_aac")
    with support.serve(made.plain.out) as server:
        server.keys.update(made.plain.keys)
        integrated, _ = ebur128(f"{server.base}/{aac.name}/index.m3u8", aac.channels)
    assert abs(integrated - -23.0) > 5, integrated
    assert abs(integrated - claimed) <= 9, integrated


def test_normalisation_leaves_every_sample_count_unchanged(made: Made) -> None:
    counts = {}
    for name, packaged in (("on", made.normalised), ("off", made.plain)):
        with support.serve(packaged.out) as server:
            server.keys.update(packaged.keys)
            counts[name] = {a.name: support.decoded_audio(f"{server.base}/{a.name}/index.m3u8")
                            for a in packaged.result.audio}
    assert counts["on"] == counts["off"]
    for samples, _, codec in counts["on"].values():
        # The master's FLAC decodes to exactly SECONDS * 48 kHz samples.
        assert samples == support.encoded_samples(codec, SECONDS * 48_000)
