"""What subtitles and captions add to an asset's processing, next to what it costs
anyway: the probe's caption check (decoding the first seconds of video) as a
share of the whole probe, and the subtitle stage (one ffmpeg demuxing the master
for every text track, then reading the cues back) as a share of the transcode.

The master is bench/common.py's 1080p clip remuxed (-c copy) into Matroska with
three SubRip tracks of a cue every two seconds.

    .venv/bin/python bench/subtitles_cost.py                  # 30 s 1080p30, 3 rounds
    .venv/bin/python bench/subtitles_cost.py --seconds 5 --repeat 1   # quick
"""

from __future__ import annotations

import argparse
import shutil
import time
from collections.abc import Callable
from pathlib import Path

from common import (
    OUT,
    OtherCpu,
    add_source_arguments,
    machine_facts,
    median,
    print_table,
    source_clip,
    warn_if_busy,
)

from stb_origin import proc
from stb_origin.settings import Settings
from stb_origin.transcode import plan_ladder, probe, transcode
from stb_origin.transcode.probe import has_captions
from stb_origin.transcode.subtitles import master_subtitles, plan_subtitles, read_cues

TRACKS = ("eng", "fre", "ger")


def with_subtitles(clip: Path, seconds: float) -> Path:
    path = OUT / f"{clip.stem}-subtitles.mkv"
    if path.exists():
        return path
    srt = OUT / "cues.srt"
    srt.write_text("".join(
        f"{n + 1}\n00:{n * 2 // 60:02d}:{n * 2 % 60:02d},500 --> 00:{n * 2 // 60:02d}:"
        f"{n * 2 % 60 + 1:02d},500\nline {n}\n\n" for n in range(int(seconds // 2))))
    argv = ["ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-y", "-i", str(clip)]
    for _ in TRACKS:
        argv += ["-i", str(srt)]
    argv += ["-map", "0", *(a for n in range(len(TRACKS)) for a in ("-map", f"{n + 1}:s")),
             "-c", "copy", "-c:s", "srt"]
    for n, language in enumerate(TRACKS):
        argv += [f"-metadata:s:s:{n}", f"language={language}"]
    proc.run([*argv, str(path)], timeout=600)
    return path


def timed(action: Callable[[], object]) -> float:
    start = time.perf_counter()
    action()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add_source_arguments(parser, seconds=30)
    args = parser.parse_args()

    print(machine_facts())
    warn_if_busy()
    master = with_subtitles(source_clip(args.seconds, args.size, args.fps), args.seconds)
    settings = Settings()
    work = OUT / "subtitles-work"
    rows: dict[str, list[float]] = {name: [] for name in
                                    ("probe", "caption check", "transcode", "subtitle stage")}
    info = probe(master, settings)
    ladder = plan_ladder(info, settings)
    planned = plan_subtitles(master_subtitles(info))
    other = OtherCpu()
    for _ in range(args.repeat):
        rows["probe"].append(timed(lambda: probe(master, settings)))
        rows["caption check"].append(timed(lambda: has_captions(master, info, settings)))
        shutil.rmtree(work, ignore_errors=True)
        rows["transcode"].append(timed(lambda: transcode(master, info, ladder, work / "enc",
                                                         settings)))
        rows["subtitle stage"].append(timed(lambda: read_cues(master, info, planned,
                                                              work / "subs", settings)))
    shutil.rmtree(work, ignore_errors=True)
    print_table(["step", "wall s (median)"], [(k, f"{median(v):.2f}") for k, v in rows.items()])
    probe_s, check_s = median(rows["probe"]), median(rows["caption check"])
    encode_s, subs_s = median(rows["transcode"]), median(rows["subtitle stage"])
    print(f"caption check / probe: {check_s / probe_s:.0%};"
          f" subtitle stage ({len(TRACKS)} tracks) / transcode: {subs_s / encode_s:.1%}")
    print(other.report())


if __name__ == "__main__":
    main()
