"""What key frames every 2 s cost: the default ladder with 2 s GOPs next to 4 s GOPs.

Both forms are the project's own plan_ladder + transcode of the same testsrc2 master,
4 s segments without short first ones (dataclasses.replace(ladder,
first_segments=1)), so only the GOP length differs: gop_seconds 2.0 (what the
ladder plans, Apple's authoring spec 1.9) or 4.0 (one key frame per segment, as
before). The rungs are rate-controlled (-b:v with a VBV cap), so the cost shows
in both columns: bytes (how close each rung stays to its target) and quality
(PSNR of each rung against the source scaled to the rung's size, ffmpeg's psnr
filter). Also printed: the bytes of the I-frame tracks, one per resolution tier,
as a share of the renditions' bytes.

    .venv/bin/python bench/gop_cost.py                   # 30 s 1080p30
    .venv/bin/python bench/gop_cost.py --seconds 10      # quick
"""

from __future__ import annotations

import argparse
import dataclasses
import re
import shutil
from pathlib import Path

from common import OUT, OtherCpu, machine_facts, print_table, source_clip, warn_if_busy

from stb_origin import proc
from stb_origin.settings import Settings
from stb_origin.transcode import Ladder, plan_ladder, probe, transcode
from stb_origin.transcode.inputs import input_args

_PSNR = re.compile(r"PSNR y:[0-9.inf]+ u:[0-9.inf]+ v:[0-9.inf]+ average:([0-9.inf]+)")


def track_bytes(track_dir: Path) -> int:
    return sum(p.stat().st_size for p in track_dir.iterdir() if p.name != "index.m3u8")


def psnr(rendition_dir: Path, source: Path, width: int, height: int, fps: float) -> float:
    """Average PSNR (all planes) of a rendition against the source at its size and rate."""
    done = proc.run([
        "ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "info",
        "-i", str(rendition_dir / "index.m3u8"), *input_args(source),
        "-lavfi", f"[1:v]fps={fps},scale={width}:{height},format=yuv420p[ref];"
                  "[0:v]format=yuv420p[out];[out][ref]psnr",
        "-f", "null", "-",
    ], timeout=1800)
    match = _PSNR.search(done.stderr_tail)
    if match is None:
        raise RuntimeError(f"no PSNR in ffmpeg's output: {done.stderr_tail[-500:]}")
    return float(match.group(1))


def encode(source: Path, ladder: Ladder, settings: Settings, out: Path) -> None:
    shutil.rmtree(out, ignore_errors=True)
    transcode(source, probe(source, settings), ladder, out, settings)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--size", default="1920x1080")
    parser.add_argument("--fps", type=int, default=30)
    args = parser.parse_args()

    print(machine_facts())
    warn_if_busy()
    source = source_clip(args.seconds, args.size, args.fps)
    settings = Settings()
    planned = dataclasses.replace(plan_ladder(probe(source, settings), settings),
                                  first_segments=1)
    forms = {"2 s GOPs": planned, "4 s GOPs": dataclasses.replace(planned, gop_seconds=4.0)}
    other = OtherCpu()
    sizes: dict[str, dict[str, int]] = {}
    quality: dict[str, dict[str, float]] = {}
    for form, ladder in forms.items():
        out = OUT / "gop_cost" / form.replace(" ", "-")
        print(f"encoding {form} ...", flush=True)
        encode(source, ladder, settings, out)
        sizes[form] = {r.name: track_bytes(out / r.name) for r in ladder.renditions}
        sizes[form] |= {t.name: track_bytes(out / t.name) for t in ladder.iframes}
        quality[form] = {r.name: psnr(out / r.name, source, r.width, r.height, ladder.fps)
                         for r in ladder.renditions}

    two, four = forms
    rows: list[list[object]] = []
    for r in planned.renditions:
        a, b = sizes[two][r.name], sizes[four][r.name]
        rows.append([r.name, f"{b * 8 / args.seconds / 1000:.0f}",
                     f"{a * 8 / args.seconds / 1000:.0f}", f"{a / b:.3f}",
                     f"{quality[four][r.name]:.2f}", f"{quality[two][r.name]:.2f}",
                     f"{quality[two][r.name] - quality[four][r.name]:+.2f}"])
    total_two = sum(sizes[two][r.name] for r in planned.renditions)
    total_four = sum(sizes[four][r.name] for r in planned.renditions)
    rows.append(["all rungs", f"{total_four * 8 / args.seconds / 1000:.0f}",
                 f"{total_two * 8 / args.seconds / 1000:.0f}", f"{total_two / total_four:.3f}",
                 "", "", ""])
    print()
    print_table(["rung", "4 s GOP kb/s", "2 s GOP kb/s", "bytes 2s/4s",
                 "PSNR 4 s dB", "PSNR 2 s dB", "PSNR change"], rows)
    tricks = sum(sizes[two][t.name] for t in planned.iframes)
    print(f"\nI-frame tracks ({', '.join(t.name for t in planned.iframes)}):"
          f" {tricks * 8 / args.seconds / 1000:.0f} kb/s in all,"
          f" {100 * tricks / total_two:.1f}% of the renditions' bytes")
    print(other.report())


if __name__ == "__main__":
    main()
