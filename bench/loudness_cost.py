"""What loudness normalisation costs: the ladder encode as the pipeline runs it with
normalisation off, next to pass one (transcode/normalise.py, audio only) plus the
encode with loudnorm in it; wall and CPU seconds of each, and the ratios.

    .venv/bin/python bench/loudness_cost.py                   # 30 s 1080p30, 3 rounds
    .venv/bin/python bench/loudness_cost.py --seconds 5 --repeat 1   # quick
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
    children_cpu_s,
    machine_facts,
    median,
    print_table,
    source_clip,
    warn_if_busy,
)

from stb_origin.settings import Settings
from stb_origin.transcode import plan_ladder, probe, transcode
from stb_origin.transcode.normalise import normalised


def timed(run: Callable[[], None]) -> tuple[float, float]:
    """(wall seconds, CPU seconds of the processes run) of one call."""
    cpu_before = children_cpu_s()
    start = time.perf_counter()
    run()
    return time.perf_counter() - start, children_cpu_s() - cpu_before



def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=30, help="source length (default 30)")
    parser.add_argument("--size", default="1920x1080", help="source size (default 1920x1080)")
    parser.add_argument("--repeat", type=int, default=3, help="rounds (default 3)")
    parser.add_argument("--preset", default=Settings().x264_preset,
                        help="x264 preset (default: the Settings default)")
    args = parser.parse_args()

    settings = Settings(x264_preset=args.preset)
    source_path = source_clip(args.seconds, args.size, 30)
    source = probe(source_path, settings)
    plain = plan_ladder(source, settings)
    out = OUT / "loudness_cost"

    def encode(ladder_name: str) -> Callable[[], None]:
        def run() -> None:
            shutil.rmtree(out, ignore_errors=True)
            ladder = plain if ladder_name == "off" else normalised([source_path], plain, settings)
            transcode(source_path, source, ladder, Path(out), settings)
        return run

    def pass_one() -> None:
        normalised([source_path], plain, settings)

    print(machine_facts())
    warn_if_busy()
    print(f"source: {source_path.name}, {source.duration_s:g} s,"
          f" {len(plain.audio)} audio rendition(s); x264 preset {settings.x264_preset}")
    other_cpu = OtherCpu()
    forms = {"normalisation off": encode("off"), "pass one alone": pass_one,
             "pass one + encode with loudnorm": encode("on")}
    walls: dict[str, list[float]] = {name: [] for name in forms}
    cpus: dict[str, list[float]] = {name: [] for name in forms}
    for round_ in range(args.repeat):
        order = list(forms) if round_ % 2 == 0 else list(reversed(forms))
        for name in order:
            wall, cpu = timed(forms[name])
            walls[name].append(wall)
            cpus[name].append(cpu)
            print(f"  round {round_ + 1}: {name}: {wall:.2f} s wall, {cpu:.2f} s CPU", flush=True)
    shutil.rmtree(out, ignore_errors=True)

    print()
    print_table(["form", "wall s (median)", "CPU s (median)"],
                [[name, median(walls[name]), median(cpus[name])] for name in forms])
    base_wall, base_cpu = median(walls["normalisation off"]), median(cpus["normalisation off"])
    on = "pass one + encode with loudnorm"
    print(f"\nnormalisation makes the transcode stage {median(walls[on]) / base_wall:.3f}x as long"
          f" and costs {median(cpus[on]) / base_cpu:.3f}x the CPU (medians of {args.repeat});"
          f" pass one alone is {median(walls['pass one alone']) / base_wall:.3f}x the encode")
    print(other_cpu.report())


if __name__ == "__main__":
    main()
