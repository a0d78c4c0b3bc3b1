"""ffmpeg's -progress output (key=value lines) to a fraction of the source duration."""

from __future__ import annotations


def progress_fraction(line: str, duration_s: float) -> float | None:
    """0..1 for the lines that say how far ffmpeg got; None for every other line."""
    key, _, value = line.partition("=")
    if key == "progress" and value.strip() == "end":
        return 1.0
    # out_time_ms is microseconds too (a long-standing ffmpeg misnomer); prefer out_time_us.
    if key != "out_time_us" or duration_s <= 0:
        return None
    try:
        micros = int(value)
    except ValueError:  # "N/A" before the first frame is out
        return None
    return min(1.0, max(0.0, micros / 1e6 / duration_s))
