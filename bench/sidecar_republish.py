"""What a sidecar dub costs when it republishes an asset: the ladder's ffmpeg run for
the master alone next to the same run with one sidecar WAV as another input (what
the pipeline runs after POST /v1/assets/{id}/tracks), side by side, alternating.

A republish encodes the whole ladder again (the video renditions are not reused),
so the figure to read is the ratio: the extra audio rendition's share on top of a
full encode of the master.

    .venv/bin/python bench/sidecar_republish.py                     # 30 s 1080p30, 3 rounds
    .venv/bin/python bench/sidecar_republish.py --seconds 10 --size 1280x720 --repeat 2
"""

from __future__ import annotations

import argparse
import dataclasses

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
from ladder_one_vs_many import timed

from stb_origin import proc
from stb_origin.settings import Settings
from stb_origin.transcode import build_argv, plan_ladder, probe, probe_audio_file


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add_source_arguments(parser, seconds=30)
    parser.add_argument("--preset", default=Settings().x264_preset,
                        help="x264 preset (default: the Settings default)")
    args = parser.parse_args()

    settings = Settings(x264_preset=args.preset)
    source_path = source_clip(args.seconds, args.size, args.fps)
    dub = OUT / f"dub-{args.seconds:g}s.wav"
    if not dub.exists():
        proc.run(["ffmpeg", "-nostdin", "-v", "error", "-y", "-f", "lavfi", "-i",
                  f"sine=frequency=660:sample_rate=48000:duration={args.seconds:g}",
                  "-ac", "2", "-c:a", "pcm_s16le", str(dub)], timeout=60)
    source = probe(source_path, settings)
    track = dataclasses.replace(probe_audio_file(dub, settings).track, input_index=1,
                                language="de", title="Deutsch")
    out = OUT / "sidecar_republish"
    forms = {
        "master alone": build_argv(source_path, source, plan_ladder(source, settings),
                                   out, settings),
        "master + WAV dub": build_argv(
            source_path, source, plan_ladder(source, settings, sidecar_audio=[track]), out,
            settings, audio_files=[dub]),
    }
    timeout = 600 + 60 * source.duration_s

    print(machine_facts())
    warn_if_busy()
    print(f"source: {source_path.name}, {source.duration_s:g} s; x264 preset {args.preset}")
    other_cpu = OtherCpu()
    walls: dict[str, list[float]] = {name: [] for name in forms}
    cpus: dict[str, list[float]] = {name: [] for name in forms}
    for round_ in range(args.repeat):
        order = list(forms) if round_ % 2 == 0 else list(reversed(forms))
        for name in order:
            wall, cpu = timed([forms[name]], out, timeout)
            walls[name].append(wall)
            cpus[name].append(cpu)
            print(f"  round {round_ + 1}: {name}: {wall:.1f} s wall, {cpu:.1f} s CPU",
                  flush=True)

    print()
    print_table(["form", "wall s (median)", "CPU s (median)"],
                [[name, median(walls[name]), median(cpus[name])] for name in forms])
    wall_ratio = median(walls["master + WAV dub"]) / median(walls["master alone"])
    cpu_ratio = median(cpus["master + WAV dub"]) / median(cpus["master alone"])
    print(f"\nwith the dub: {wall_ratio:.3f}x the wall time, {cpu_ratio:.3f}x the CPU time"
          f" of the master alone (medians of {args.repeat}); a republish costs a whole"
          " encode of the master plus that")
    print(other_cpu.report())


if __name__ == "__main__":
    main()
