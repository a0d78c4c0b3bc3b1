"""Per-title ladders against the fixed one, on four generated clips of very different
complexity (tests/support/media.py make_content_clip: slides, cartoon, talking head,
high motion + noise): bits each ladder spends, and the quality of every rung.

Both ladders are made by the pipeline's own code: plan_ladder (without, then with
the complexity analysis) and transcode (the one ffmpeg run of build_argv). Quality
is ffmpeg's ssim and psnr filters, each rendition against the source scaled to the
rendition's size (bicubic, like the ladder's scale), whole clip, every frame. The
analysis is timed against the fixed ladder's transcode: its cost as a share of it.

"At equal quality": a rung keeps its quality when per-title is at least as good as
the fixed ladder, or when both are past the point where more bits are not seen
(SSIM >= 0.99 and PSNR >= 45 dB; the visually lossless range). Bits saved are
shown per clip, with whether every rung the two ladders share keeps its quality. A
per-title ladder can have rungs the fixed one lacks: the fixed one drops a rung its
source's own bit rate caps to the rate of the rung above, and per-title rates are
lower. Those rungs' bits count.

    .venv/bin/python bench/per_title.py                       # 1280x720, 12 s clips
    .venv/bin/python bench/per_title.py --seconds 6 --size 640x360    # quick
"""

from __future__ import annotations

import argparse
import re
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from common import (
    OUT,
    REPO,
    SOURCE_VIDEO_BITRATE,
    OtherCpu,
    children_cpu_s,
    machine_facts,
    median,
    print_table,
    warn_if_busy,
)

from stb_origin import proc
from stb_origin.settings import Settings
from stb_origin.storage.layout import MEDIA_PLAYLIST
from stb_origin.transcode import (
    Ladder,
    Rendition,
    SourceInfo,
    analyse,
    plan_ladder,
    probe,
    transcode,
)
from stb_origin.transcode.complexity import WINDOW_SECONDS, WINDOWS, Complexity

sys.path.insert(0, str(REPO))
from tests.support.media import CONTENT_KINDS, make_content_clip  # noqa: E402

# Past these, more bits buy nothing a viewer sees (SSIM 0.99 / PSNR 45 dB are the
# usual "visually lossless" marks).
TRANSPARENT_SSIM = 0.99
TRANSPARENT_PSNR = 45.0
SSIM_ALL = re.compile(r"SSIM .* All:([0-9.]+)")
PSNR_AVERAGE = re.compile(r"PSNR .* average:([0-9.]+|inf)")


@dataclass(frozen=True)
class Measured:
    rendition: Rendition
    kbps: float  # what was written: every segment (and init section) of the rendition
    ssim: float
    psnr: float


def encode(source_path: Path, source: SourceInfo, ladder: Ladder, out: Path,
           settings: Settings) -> tuple[float, float]:
    """The pipeline's transcode of the ladder; (wall s, CPU s)."""
    shutil.rmtree(out, ignore_errors=True)
    cpu, start = children_cpu_s(), time.perf_counter()
    transcode(source_path, source, ladder, out, settings)
    return time.perf_counter() - start, children_cpu_s() - cpu


def measure(source_path: Path, source: SourceInfo, ladder: Ladder, out: Path) -> list[Measured]:
    found = []
    for rendition in ladder.renditions:
        folder = out / rendition.name
        size = sum(p.stat().st_size for p in folder.iterdir() if p.name != MEDIA_PLAYLIST)
        ssim, psnr = quality(folder / MEDIA_PLAYLIST, source_path, rendition, ladder.fps)
        found.append(Measured(rendition, 8 * size / source.duration_s / 1000, ssim, psnr))
    return found


def quality(playlist: Path, source_path: Path, rendition: Rendition, fps: float
            ) -> tuple[float, float]:
    """(SSIM All, PSNR average) of the rendition against the source at its size."""
    reference = (f"[1:v]fps={fps},scale={rendition.width}:{rendition.height}:flags=bicubic,"
                 "format=yuv420p,setsar=1,setpts=PTS-STARTPTS,split[r1][r2]")
    encoded = "[0:v]format=yuv420p,setsar=1,setpts=PTS-STARTPTS,split[d1][d2]"
    graph = f"{encoded};{reference};[d1][r1]ssim;[d2][r2]psnr"
    done = proc.run(["ffmpeg", "-nostdin", "-hide_banner", "-nostats", "-loglevel", "info",
                     "-i", str(playlist), "-i", str(source_path),
                     "-lavfi", graph, "-f", "null", "-"], timeout=600)
    ssim = SSIM_ALL.search(done.stderr_tail)
    psnr = PSNR_AVERAGE.search(done.stderr_tail)
    if ssim is None or psnr is None:
        raise RuntimeError(f"no SSIM/PSNR summary from ffmpeg: {done.stderr_tail[-500:]}")
    return float(ssim.group(1)), float(psnr.group(1))


def keeps_quality(fixed: Measured, own: Measured) -> bool:
    transparent = own.ssim >= TRANSPARENT_SSIM and own.psnr >= TRANSPARENT_PSNR
    return transparent or (own.ssim >= fixed.ssim - 0.0005 and own.psnr >= fixed.psnr - 0.05)



def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=12, help="clip length (default 12)")
    parser.add_argument("--size", default="1280x720", help="clip size (default 1280x720)")
    parser.add_argument("--fps", type=int, default=30, help="clip frame rate (default 30)")
    parser.add_argument("--kinds", default=",".join(CONTENT_KINDS),
                        help=f"which clips (default {','.join(CONTENT_KINDS)})")
    args = parser.parse_args()

    settings = Settings()
    work = OUT / "per_title"
    work.mkdir(parents=True, exist_ok=True)
    print(machine_facts())
    warn_if_busy()
    print(f"clips: {args.size}, {args.seconds:g} s, {args.fps} fps; x264 preset"
          f" {settings.x264_preset}; both ladders by plan_ladder + transcode")
    other_cpu = OtherCpu()

    summary, rungs = [], []
    per_second: list[float] = []  # analysis CPU per sampled s / transcode CPU per source s
    for kind in args.kinds.split(","):
        clip = work / f"{kind}-{args.size}-{args.fps}fps-{args.seconds:g}s.mp4"
        if not clip.exists():
            print(f"making {clip.name} ...", flush=True)
            make_content_clip(clip, kind, seconds=args.seconds, size=args.size, fps=args.fps,
                              bitrate=SOURCE_VIDEO_BITRATE)
        source = probe(clip, settings)
        cpu, start = children_cpu_s(), time.perf_counter()
        complexity = analyse(clip, source, settings)
        analysis_wall, analysis_cpu = time.perf_counter() - start, children_cpu_s() - cpu
        if complexity is None:
            raise RuntimeError(f"the analysis of {clip.name} failed")
        fixed_ladder = plan_ladder(source, settings)
        own_ladder = plan_ladder(source, settings, complexity)
        fixed_wall, fixed_cpu = encode(clip, source, fixed_ladder, work / "fixed", settings)
        encode(clip, source, own_ladder, work / "per-title", settings)
        fixed = measure(clip, source, fixed_ladder, work / "fixed")
        own = measure(clip, source, own_ladder, work / "per-title")
        print(f"  {kind}: {_describe(complexity)}; analysis {analysis_wall:.2f} s wall,"
              f" {analysis_cpu:.2f} s CPU", flush=True)

        per_second.append((analysis_cpu / complexity.sampled_seconds)
                          / (fixed_cpu / source.duration_s))
        fixed_by_name = {m.rendition.name: m for m in fixed}
        own_by_name = {m.rendition.name: m for m in own}
        both = [name for name in own_by_name if name in fixed_by_name]
        kept = all(keeps_quality(fixed_by_name[n], own_by_name[n]) for n in both)
        fixed_bits, own_bits = sum(m.kbps for m in fixed), sum(m.kbps for m in own)
        summary.append([kind, f"{complexity.bits_per_pixel:.4f}", len(fixed), len(own),
                        fixed_bits, own_bits, f"{100 * (1 - own_bits / fixed_bits):.0f}%",
                        "yes" if kept else "NO",
                        f"{100 * analysis_cpu / fixed_cpu:.1f}%",
                        f"{100 * analysis_wall / fixed_wall:.1f}%"])
        names = sorted({*fixed_by_name, *own_by_name},
                       key=lambda n: -(fixed_by_name.get(n) or own_by_name[n]).rendition.height)
        for name in names:
            f, o = fixed_by_name.get(name), own_by_name.get(name)
            kept_here = "-" if f is None or o is None else "yes" if keeps_quality(f, o) else "NO"
            rungs.append([kind, name, *_cells(f), *_cells(o), kept_here])

    shutil.rmtree(work / "fixed", ignore_errors=True)
    shutil.rmtree(work / "per-title", ignore_errors=True)
    print("\nper clip (kb/s summed over the rungs, as written)")
    print_table(["clip", "bits/pixel", "fixed rungs", "per-title rungs", "fixed kb/s",
                 "per-title kb/s", "saved", "equal quality", "analysis CPU", "analysis wall"],
                summary)
    print("\nper rung (SSIM All, PSNR average, against the source at the rung's size)")
    print_table(["clip", "rung", "fixed kb/s", "SSIM", "PSNR", "per-title kb/s", "SSIM",
                 "PSNR", "equal quality"], rungs)
    print("\nanalysis CPU / wall: as a share of the fixed ladder's transcode of the same clip")
    rate = median(per_second)
    print(f"a sampled second costs {rate:.2f}x the CPU of a transcoded second (median);"
          f" a title over {WINDOWS * WINDOW_SECONDS:g} s samples {WINDOWS * WINDOW_SECONDS:g} s,"
          f" so a 2-hour title's analysis costs about"
          f" {100 * rate * WINDOWS * WINDOW_SECONDS / 7200:.2f}% of its transcode"
          " (plus decoding from the key frame before each window)")
    print(other_cpu.report())


def _cells(m: Measured | None) -> list[object]:
    """kb/s, SSIM, PSNR of a rung; dashes for a rung the ladder does not have."""
    return ["-"] * 3 if m is None else [m.kbps, f"{m.ssim:.4f}", f"{m.psnr:.2f}"]


def _describe(c: Complexity) -> str:
    return (f"{c.bits_per_pixel:.4f} bits/pixel at {c.probe_width}x{c.probe_height},"
            f" {c.sampled_seconds:g} s sampled")


if __name__ == "__main__":
    main()
