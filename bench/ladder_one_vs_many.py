"""The default ladder in ONE ffmpeg process (what the pipeline runs) next to one ffmpeg
run per rung, with identical encoding settings; prints realtime factors (media
seconds per wall second), CPU seconds and the ratios.

Both forms come from the project's own plan_ladder + build_argv. The per-rung
commands are the same plan with a single rendition each
(dataclasses.replace(ladder, renditions=(r,))), so every rung gets the same
x264 options, GOP, rate control and hls muxer settings as in the one-process
command. build_argv always adds the trick-play track, so each per-rung run also
makes one: five extra tracks of one 416x234 frame per segment, a few milliseconds
of encoding next to a whole decode of the source per run.

    .venv/bin/python bench/ladder_one_vs_many.py                 # 30 s 1080p30, 3 rounds
    .venv/bin/python bench/ladder_one_vs_many.py --seconds 5 --repeat 1   # quick
"""

from __future__ import annotations

import argparse
import dataclasses
import shutil
import time
from pathlib import Path

from common import (
    OUT,
    OtherCpu,
    add_source_arguments,
    children_cpu_s,
    machine_facts,
    median,
    print_table,
    source_clip,
    warn_if_busy,
)

from stb_origin import proc
from stb_origin.settings import Settings
from stb_origin.transcode import Ladder, SourceInfo, build_argv, plan_ladder, probe


def one_process(source_path: Path, source: SourceInfo, ladder: Ladder, settings: Settings,
                out: Path) -> list[list[str]]:
    return [build_argv(source_path, source, ladder, out / "all", settings)]


def per_rung(source_path: Path, source: SourceInfo, ladder: Ladder, settings: Settings,
             out: Path) -> list[list[str]]:
    return [build_argv(source_path, source, dataclasses.replace(ladder, renditions=(r,)),
                       out / r.name, settings)
            for r in ladder.renditions]


def timed(commands: list[list[str]], out: Path, timeout: float) -> tuple[float, float]:
    """Run the commands one after the other; (wall seconds, CPU seconds of ffmpeg)."""
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    cpu_before = children_cpu_s()
    start = time.perf_counter()
    for argv in commands:
        proc.run(argv, timeout=timeout)
    wall = time.perf_counter() - start
    cpu = children_cpu_s() - cpu_before
    shutil.rmtree(out, ignore_errors=True)
    return wall, cpu



def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add_source_arguments(parser, seconds=30)
    parser.add_argument("--preset", default=Settings().x264_preset,
                        help="x264 preset (default: the Settings default)")
    args = parser.parse_args()

    settings = Settings(x264_preset=args.preset)
    source_path = source_clip(args.seconds, args.size, args.fps)
    source = probe(source_path, settings)
    ladder = plan_ladder(source, settings)
    out = OUT / "ladder_one_vs_many"
    timeout = 600 + 60 * source.duration_s
    forms = {
        "one process": one_process(source_path, source, ladder, settings, out),
        "one run per rung": per_rung(source_path, source, ladder, settings, out),
    }

    print(machine_facts())
    warn_if_busy()
    print(f"source: {source_path.name}, {source.duration_s:g} s; ladder:"
          f" {', '.join(r.name for r in ladder.renditions)} + trick play;"
          f" x264 preset {settings.x264_preset}")
    other_cpu = OtherCpu()
    walls: dict[str, list[float]] = {name: [] for name in forms}
    cpus: dict[str, list[float]] = {name: [] for name in forms}
    for round_ in range(args.repeat):
        order = list(forms) if round_ % 2 == 0 else list(reversed(forms))
        for name in order:
            wall, cpu = timed(forms[name], out, timeout)
            walls[name].append(wall)
            cpus[name].append(cpu)
            print(f"  round {round_ + 1}: {name}: {wall:.1f} s wall, {cpu:.1f} s CPU",
                  flush=True)

    rows = []
    for name, commands in forms.items():
        wall = median(walls[name])
        rows.append([name, len(commands), wall, median(cpus[name]), source.duration_s / wall])
    print()
    print_table(["form", "ffmpeg runs", "wall s (median)", "CPU s", "realtime factor"], rows)
    ratio = median(walls["one run per rung"]) / median(walls["one process"])
    cpu_ratio = median(cpus["one run per rung"]) / median(cpus["one process"])
    print(f"\none process is {ratio:.2f}x as fast as one run per rung (medians of {args.repeat})")
    # CPU seconds hardly move when other work shares the machine; wall time does.
    print(f"one run per rung needs {cpu_ratio:.2f}x the CPU time of one process")
    print(other_cpu.report())


if __name__ == "__main__":
    main()
