"""What the HEVC ladder and HDR cost to encode: the pipeline's one ffmpeg command
for the same 1080p clip as H.264 only, as H.264 + HEVC (the default policy) and,
for a PQ (HDR10) version of the clip, as tone-mapped SDR H.264 + HEVC Main10 on
every rung; wall and CPU seconds side by side and their ratios to H.264 only.

Every command comes from the project's own probe + plan_ladder + build_argv at
the Settings defaults (x264 and x265 presets included), so it is what a worker
runs. The PQ clip is the SDR clip's pictures as 10-bit HEVC tagged BT.2020/PQ
with HDR10 metadata; decoding it costs a little more than the H.264 source, so
"PQ, H.264 only" (HEVC off: only the tone-mapped ladder) is listed as well,
which separates the tone-map from the HEVC Main10 encodes.

    .venv/bin/python bench/codec_cost.py                        # 10 s 1080p30, 2 rounds
    .venv/bin/python bench/codec_cost.py --seconds 4 --repeat 1  # quick
"""

from __future__ import annotations

import argparse
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
from stb_origin.transcode import build_argv, plan_ladder, probe

# HDR10 static metadata of the PQ clip (P3 primaries in a BT.2020 container, 1000 nits).
MASTER_DISPLAY = "G(13250,34500)B(7500,3000)R(34000,16000)WP(15635,16450)L(10000000,50)"


def pq_clip(sdr: Path) -> Path:
    """The SDR clip re-encoded as a 10-bit PQ HEVC master, made once and cached."""
    path = sdr.with_name(sdr.stem + "-pq.mp4")
    if path.exists():
        return path
    partial = path.with_name(path.stem + ".partial.mp4")
    print(f"making the PQ clip {path.name} ...", flush=True)
    params = ("colorprim=bt2020:transfer=smpte2084:colormatrix=bt2020nc:hdr10=1"
              f":master-display={MASTER_DISPLAY}:max-cll=1000,400:log-level=error")
    proc.run(["ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-y", "-i", str(sdr),
              "-map", "0", "-c:a", "copy", "-pix_fmt", "yuv420p10le", "-c:v", "libx265",
              "-preset", "ultrafast", "-b:v", "20M", "-x265-params", params,
              "-color_primaries", "bt2020", "-color_trc", "smpte2084", "-colorspace", "bt2020nc",
              str(partial)], timeout=3600)
    partial.rename(path)
    return path


def timed(argv: list[str], out: Path, timeout: float) -> tuple[float, float]:
    """(wall seconds, CPU seconds of ffmpeg) of one run."""
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    cpu_before = children_cpu_s()
    start = time.perf_counter()
    proc.run(argv, timeout=timeout)
    wall = time.perf_counter() - start
    shutil.rmtree(out, ignore_errors=True)
    return wall, children_cpu_s() - cpu_before


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add_source_arguments(parser, seconds=10, repeat=2)
    args = parser.parse_args()

    defaults = Settings()
    sdr_path = source_clip(args.seconds, args.size, args.fps)
    pq_path = pq_clip(sdr_path)
    sdr, pq = probe(sdr_path, defaults), probe(pq_path, defaults)
    if pq.video_range != "PQ" or pq.colour.mastering_display is None:
        raise SystemExit(f"the PQ clip probed as {pq.video_range}: {pq.colour}")
    out = OUT / "codec_cost"
    forms = {}
    for name, path, source, settings in (
            ("SDR, H.264 only", sdr_path, sdr, defaults.with_(hevc=False)),
            ("SDR, H.264 + HEVC", sdr_path, sdr, defaults),
            ("PQ, H.264 only (tone-mapped)", pq_path, pq, defaults.with_(hevc=False)),
            ("PQ, tone-mapped H.264 + HEVC Main10", pq_path, pq, defaults)):
        ladder = plan_ladder(source, settings)
        forms[name] = (build_argv(path, source, ladder, out, settings),
                       " ".join(r.name for r in ladder.renditions))
    timeout = 600 + 120 * args.seconds

    print(machine_facts())
    warn_if_busy()
    print(f"source: {sdr_path.name} and {pq_path.name}, {sdr.duration_s:g} s;"
          f" x264 {defaults.x264_preset}, x265 {defaults.x265_preset},"
          f" HEVC from {defaults.hevc_min_height} lines (HDR: every rung)")
    for name, (_, rungs) in forms.items():
        print(f"  {name}: {rungs} + trick play")
    other_cpu = OtherCpu()
    walls: dict[str, list[float]] = {name: [] for name in forms}
    cpus: dict[str, list[float]] = {name: [] for name in forms}
    for round_ in range(args.repeat):
        order = list(forms) if round_ % 2 == 0 else list(reversed(forms))
        for name in order:
            wall, cpu = timed(forms[name][0], out, timeout)
            walls[name].append(wall)
            cpus[name].append(cpu)
            print(f"  round {round_ + 1}: {name}: {wall:.1f} s wall, {cpu:.1f} s CPU",
                  flush=True)

    base_wall, base_cpu = median(walls["SDR, H.264 only"]), median(cpus["SDR, H.264 only"])
    rows = [[name, median(walls[name]), median(cpus[name]), median(walls[name]) / base_wall,
             median(cpus[name]) / base_cpu, sdr.duration_s / median(walls[name])]
            for name in forms]
    print()
    print_table(["ladder", "wall s", "CPU s", "wall ratio", "CPU ratio", "realtime factor"],
                rows)
    print(f"\nmedians of {args.repeat}; ratios are to SDR, H.264 only. CPU seconds barely"
          " move when other work shares the machine; wall time does.")
    print(other_cpu.report())


if __name__ == "__main__":
    main()
